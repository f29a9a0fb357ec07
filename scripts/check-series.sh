#!/bin/bash
# Check that the patch series is bisectable: every prefix of patches/series,
# applied to the pristine source with our files laid over it (as
# prepare-src.sh does), configures and builds qemu-system-x86_64.
#
# Long (one incremental build per patch, the first one full; ccache helps):
# not part of make check.  Uses its own trees, build/series/src and
# build/series/qemu, and takes the build lock, so it never disturbs
# build/src or build/qemu.
#
# usage: check-series.sh [FIRST [LAST]]   (patch numbers in series order,
#                                          1-based; default: all)
set -uo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
B=$TOP/build
S=$B/series
LOG=$S/check.log
mapfile -t PATCHES < <(grep -v '^#' "$TOP/patches/series" | grep .)
FIRST=${1:-1}
LAST=${2:-${#PATCHES[@]}}

[ -d "$B/pristine" ] || { echo "check-series: run make build first" >&2; exit 1; }
mkdir -p "$S"
exec 9>"$B/.build.lock"
flock 9

export PYTHON=/usr/bin/python3
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/qemu-oc/ccache}
export CCACHE_BASEDIR=$B
export PATH=$B/bin:$PATH
: > "$LOG"
echo "check-series: patches $FIRST..$LAST of ${#PATCHES[@]} (log: build/series/check.log)"

failed=0
for ((k = FIRST; k <= LAST; k++)); do
    p=${PATCHES[$((k - 1))]}
    # a series file with the first k patches, in a scratch patches dir
    tmp=$S/patches
    rm -rf "$tmp"
    mkdir -p "$tmp"
    cp "$TOP"/patches/*.patch "$tmp/"
    printf '%s\n' "${PATCHES[@]:0:$k}" > "$tmp/series"
    if ! QEMU_OC_PATCHES=$tmp "$TOP/scripts/prepare-src.sh" "$B/pristine" \
            "$S/src" >> "$LOG" 2>&1; then
        echo "FAIL $k $p: does not apply"
        failed=1
        break
    fi
    if [ ! -f "$S/qemu/build.ninja" ]; then
        mkdir -p "$S/qemu"
        (cd "$S/qemu" && "$S/src/configure" --target-list=x86_64-softmmu \
            --enable-kvm --enable-slirp --disable-docs --disable-werror \
            --disable-tools --disable-guest-agent --disable-user \
            --cc=ccache-gcc) >> "$LOG" 2>&1 ||
            { echo "FAIL $k $p: configure"; failed=1; break; }
    fi
    if ninja -C "$S/qemu" qemu-system-x86_64 >> "$LOG" 2>&1; then
        echo "ok $k $p"
    else
        echo "FAIL $k $p: does not build (see build/series/check.log)"
        failed=1
    fi
done
[ $failed -eq 0 ] && echo "check-series: every prefix builds"
exit $failed
