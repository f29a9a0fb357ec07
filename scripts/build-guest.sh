#!/bin/bash
# Build the test guest: Debian's current cloud kernel (extracted, never
# installed on the host) and a busybox initramfs with the virtio modules,
# oc-load and a shell on the serial console.
#
# usage: build-guest.sh OUTDIR [SUITE]
#   -> OUTDIR/vmlinuz, OUTDIR/initramfs.gz, OUTDIR/kernel-version
#
# Without SUITE the kernel is the host's own Debian release's (the host's
# apt sources). With SUITE (e.g. trixie: Debian 13) it is that suite's
# linux-image-cloud-amd64, resolved and downloaded with apt under a private
# configuration in the cache (its own sources list, package lists and
# status; the host's apt state is neither read for packages nor changed,
# and nothing is installed). apt verifies the suite's Release file against
# Debian's archive keyring, and the .deb against it. The suite's package
# lists are fetched once; remove ~/.cache/qemu-oc/guest/apt-SUITE to look
# for a newer kernel. apt's output goes to OUTDIR/build-guest.log.
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:?usage: build-guest.sh OUTDIR [SUITE]}
SUITE=${2:-}
IMG=$TOP/tests/guest/image
CACHE=${QEMU_OC_CACHE:-$HOME/.cache/qemu-oc}/guest
mkdir -p "$OUT" "$CACHE"

APT_OPTS=()
if [ -n "$SUITE" ]; then
    case "$SUITE" in
    *[!a-z0-9-]*) echo "build-guest: bad suite name '$SUITE'" >&2; exit 2 ;;
    esac
    LOG=$OUT/build-guest.log
    aptdir=$CACHE/apt-$SUITE
    mkdir -p "$aptdir"/{lists/partial,cache,archives/partial,parts.d}
    : >> "$aptdir/status"
    keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    mirror=${QEMU_OC_DEBIAN_MIRROR:-http://deb.debian.org/debian}
    {
        echo "deb [signed-by=$keyring] $mirror $SUITE main"
        case "$SUITE" in
        sid|unstable|experimental) ;;
        *)  echo "deb [signed-by=$keyring] $mirror $SUITE-updates main"
            echo "deb [signed-by=$keyring] ${QEMU_OC_DEBIAN_SECURITY:-${mirror}-security} $SUITE-security main" ;;
        esac
    } > "$aptdir/sources.list"
    cat > "$aptdir/apt.conf" <<EOF
// build-guest.sh: apt for Debian $SUITE's kernel, apart from the host's
Dir::Etc::sourcelist "$aptdir/sources.list";
Dir::Etc::sourceparts "$aptdir/parts.d";
Dir::Etc::preferences "$aptdir/preferences";
Dir::Etc::preferencesparts "$aptdir/parts.d";
Dir::State::Lists "$aptdir/lists";
Dir::State::status "$aptdir/status";
Dir::Cache "$aptdir/cache";
Dir::Cache::archives "$aptdir/archives";
#clear APT::Update::Pre-Invoke;
#clear APT::Update::Post-Invoke;
#clear APT::Update::Post-Invoke-Success;
#clear APT::Architectures;
APT::Architectures { "amd64"; };
EOF
    APT_OPTS=(-c "$aptdir/apt.conf")
fi

# Resolve the kernel the metapackage points at today.
resolve() {
    apt-cache ${APT_OPTS[@]+"${APT_OPTS[@]}"} depends linux-image-cloud-amd64 2>/dev/null |
        awk '/Depends: linux-image-[0-9]/ { print $2; exit }' || true
}
pkg=$(resolve)
if [ -z "$pkg" ]; then
    if [ -n "$SUITE" ]; then
        echo "build-guest: resolving linux-image-cloud-amd64 in Debian $SUITE (log: $LOG)"
        apt-get "${APT_OPTS[@]}" update >> "$LOG" 2>&1 ||
            { echo "build-guest: apt-get update for $SUITE failed: see $LOG" >&2; exit 1; }
    else
        apt-get update -qq
    fi
    pkg=$(resolve)
fi
[ -n "$pkg" ] || { echo "build-guest: cannot resolve linux-image-cloud-amd64${SUITE:+ in $SUITE}" >&2; exit 1; }

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
    if [ -n "$SUITE" ]; then
        (cd "$CACHE" && apt-get "${APT_OPTS[@]}" download "$pkg") >> "$LOG" 2>&1 ||
            { echo "build-guest: downloading $pkg failed: see $LOG" >&2; exit 1; }
    else
        (cd "$CACHE" && apt-get download -qq "$pkg")
    fi
    deb=$(ls "$CACHE/$pkg"_*.deb | tail -n 1)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dpkg -x "$deb" "$work/kernel"
kver=${pkg#linux-image-}
moddir="$work/kernel/lib/modules/$kver"
[ -d "$moddir" ] || moddir="$work/kernel/usr/lib/modules/$kver"   # merged /usr (Debian 13)

root="$work/root"
mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,lib/modules}
cp /bin/busybox "$root/bin/busybox"
cp "$IMG/init" "$root/init"
chmod +x "$root/init"
: > "$root/etc/oc-modules"
while read -r m; do
    [ -n "$m" ] || continue
    f=$(find "$moddir/kernel" -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" |
        head -n 1)
    if [ -z "$f" ]; then
        # built into the kernel (Debian 13's cloud kernel: virtio, virtio_pci...)
        grep -q "/$m\.ko\$" "$moddir/modules.builtin" 2>/dev/null && continue
        echo "build-guest: module $m not in $pkg" >&2; exit 1
    fi
    case "$f" in      # busybox insmod takes plain modules: decompress here
    *.xz)  xz -dc "$f" > "$root/lib/modules/$m.ko" ;;
    *.zst) zstd -dcq "$f" > "$root/lib/modules/$m.ko" ;;
    *)     cp "$f" "$root/lib/modules/" ;;
    esac
    echo "$m" >> "$root/etc/oc-modules"
done < "$IMG/modules"
gcc -O2 -static -pthread -o "$root/bin/oc-load" "$IMG/oc-load.c"

# tiny multiboot guests for KVM tests
for v in halt spin cpuid yield; do
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
