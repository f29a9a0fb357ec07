#!/bin/bash
# Fetch Debian's qemu source package, verify it, and unpack it with Debian's
# own patches applied into a pristine tree.
#
# usage: fetch-upstream.sh DEST
#   DEST becomes the pristine tree (created once; left alone if complete).
# Downloads are cached in $QEMU_OC_CACHE (default ~/.cache/qemu-oc/dl) so a
# fresh clone on the same machine does not download again.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/upstream.conf
. "$HERE/upstream.conf"

DEST=${1:?usage: fetch-upstream.sh DEST}
CACHE=${QEMU_OC_CACHE:-$HOME/.cache/qemu-oc}/dl

if [ -f "$DEST/.qemu-oc-pristine" ]; then
    exit 0
fi

verify() {
    local f=$1 want=$2 got
    got=$(sha256sum "$CACHE/$f" | cut -d' ' -f1)
    if [ "$got" != "$want" ]; then
        echo "fetch-upstream: sha256 mismatch for $f" >&2
        echo "  want $want" >&2
        echo "  got  $got" >&2
        return 1
    fi
}

all_verified() {
    verify "$DSC" "$DSC_SHA256" 2>/dev/null &&
        verify "$ORIG" "$ORIG_SHA256" 2>/dev/null &&
        verify "$DEBIAN" "$DEBIAN_SHA256" 2>/dev/null
}

enable_deb_src() {
    local src=/etc/apt/sources.list.d/debian.sources
    local dst=/etc/apt/sources.list.d/qemu-oc-deb-src.sources
    if [ -f "$dst" ] || grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ ||
        grep -qs '^deb-src' /etc/apt/sources.list; then
        return 0
    fi
    echo "fetch-upstream: enabling deb-src in $dst"
    sed 's/^Types: deb$/Types: deb-src/' "$src" > "$dst"
    apt-get update -qq
}

mkdir -p "$CACHE"
if ! all_verified; then
    enable_deb_src
    echo "fetch-upstream: downloading qemu=$VERSION"
    (cd "$CACHE" && apt-get source --download-only -qq "qemu=$VERSION") || {
        # the deb-src list may be stale
        apt-get update -qq
        (cd "$CACHE" && apt-get source --download-only -qq "qemu=$VERSION")
    }
    verify "$DSC" "$DSC_SHA256"
    verify "$ORIG" "$ORIG_SHA256"
    verify "$DEBIAN" "$DEBIAN_SHA256"
fi

# Unpack as dpkg-source -x does for a 3.0 (quilt) package: the orig tarball,
# then debian/ over it, then debian/patches/series applied in order.
tmp="$DEST.tmp"
rm -rf "$tmp"
mkdir -p "$tmp"
echo "fetch-upstream: unpacking into $DEST"
tar -xJf "$CACHE/$ORIG" -C "$tmp" --strip-components=1
tar -xJf "$CACHE/$DEBIAN" -C "$tmp"
while read -r p opts; do
    case "$p" in ''|'#'*) continue ;; esac
    patch -d "$tmp" -s -p1 -f --no-backup-if-mismatch $opts \
        < "$tmp/debian/patches/$p" || {
        echo "fetch-upstream: Debian patch $p does not apply" >&2
        exit 1
    }
done < "$tmp/debian/patches/series"
touch "$tmp/.qemu-oc-pristine"
rm -rf "$DEST"
mv "$tmp" "$DEST"
