#!/bin/bash
# Check that patches/series applies, in order, to the pristine upstream
# source (tag "pristine" of build/src), without touching any work tree.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
SRC=${QEMU_OC_SRC:-$TOP/build/src}
git -C "$SRC" rev-parse -q --verify pristine >/dev/null || {
    echo "check-patches: no pristine tree in $SRC (run make build)" >&2
    exit 1
}
export GIT_INDEX_FILE
GIT_INDEX_FILE=$(mktemp)
trap 'rm -f "$GIT_INDEX_FILE"' EXIT
git -C "$SRC" read-tree pristine
n=0
while read -r p; do
    case "$p" in ''|'#'*) continue ;; esac
    [ -f "$TOP/patches/$p" ] || { echo "check-patches: $p is in series but missing" >&2; exit 1; }
    if ! git -C "$SRC" apply --cached "$TOP/patches/$p"; then
        echo "check-patches: FAIL: $p does not apply" >&2
        exit 1
    fi
    echo "ok $p"
    n=$((n + 1))
done < "$TOP/patches/series"
for f in "$TOP"/patches/*.patch; do
    [ -e "$f" ] || continue
    grep -qx "$(basename "$f")" "$TOP/patches/series" ||
        { echo "check-patches: $(basename "$f") is not in series" >&2; exit 1; }
done
echo "check-patches: all $n patches apply to the pristine source"
