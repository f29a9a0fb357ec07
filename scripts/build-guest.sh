#!/bin/bash
# Build the test guest: Debian's current cloud kernel (extracted, never
# installed on the host) and a busybox initramfs with the virtio modules,
# oc-load and a shell on the serial console.
#
# usage: build-guest.sh OUTDIR   -> OUTDIR/vmlinuz, OUTDIR/initramfs.gz
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:?usage: build-guest.sh OUTDIR}
IMG=$TOP/tests/guest/image
CACHE=${QEMU_OC_CACHE:-$HOME/.cache/qemu-oc}/guest
mkdir -p "$OUT" "$CACHE"

# Resolve the kernel the metapackage points at today.
resolve() {
    apt-cache depends linux-image-cloud-amd64 2>/dev/null |
        awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}
pkg=$(resolve)
if [ -z "$pkg" ]; then
    apt-get update -qq
    pkg=$(resolve)
fi
[ -n "$pkg" ] || { echo "build-guest: cannot resolve linux-image-cloud-amd64" >&2; exit 1; }

TINY=$TOP/tests/guest/tiny
inputs=$(cat "$IMG/init" "$IMG/modules" "$IMG/oc-load.c" "$TINY/tiny.S" "$0" \
    "$TOP/scripts/extract-vmlinux.py" |
    sha256sum | cut -c1-16)
stamp="$OUT/.stamp"
if [ "$(cat "$stamp" 2>/dev/null)" = "$pkg $inputs" ] &&
    [ -f "$OUT/vmlinuz" ] && [ -f "$OUT/initramfs.gz" ]; then
    exit 0
fi

deb=$(ls "$CACHE/$pkg"_*.deb 2>/dev/null | tail -n 1 || true)
if [ -z "$deb" ]; then
    echo "build-guest: downloading $pkg"
    (cd "$CACHE" && apt-get download -qq "$pkg")
    deb=$(ls "$CACHE/$pkg"_*.deb | tail -n 1)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dpkg -x "$deb" "$work/kernel"
kver=${pkg#linux-image-}
moddir="$work/kernel/lib/modules/$kver/kernel"

root="$work/root"
mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,lib/modules}
cp /bin/busybox "$root/bin/busybox"
cp "$IMG/init" "$root/init"
chmod +x "$root/init"
cp "$IMG/modules" "$root/etc/oc-modules"
while read -r m; do
    [ -n "$m" ] || continue
    f=$(find "$moddir" -name "$m.ko" | head -n 1)
    [ -n "$f" ] || { echo "build-guest: module $m not in $pkg" >&2; exit 1; }
    cp "$f" "$root/lib/modules/"
done < "$IMG/modules"
gcc -O2 -static -pthread -o "$root/bin/oc-load" "$IMG/oc-load.c"

# tiny multiboot guests for KVM tests
for v in halt spin cpuid; do
    gcc -m32 -nostdlib -ffreestanding -static -Wl,-Ttext=0x100000 \
        -Wl,--build-id=none -DTINY_${v^^} -o "$OUT/tiny-$v.elf" "$TINY/tiny.S"
done

cp "$work/kernel/boot/vmlinuz-$kver" "$OUT/vmlinuz"
# the uncompressed kernel, for PVH boots under the (slow, nested) KVM
/usr/bin/python3 "$TOP/scripts/extract-vmlinux.py" "$OUT/vmlinuz" "$OUT/vmlinux"
(cd "$root" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -9) > "$OUT/initramfs.gz"
echo "$kver" > "$OUT/kernel-version"
echo "$pkg $inputs" > "$stamp"
echo "build-guest: $OUT/vmlinuz ($kver), vmlinux, initramfs.gz, tiny-*.elf"
