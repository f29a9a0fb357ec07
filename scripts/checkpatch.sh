#!/bin/bash
# Run upstream's scripts/checkpatch.pl over our C sources and our patches.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
CP=${QEMU_OC_SRC:-$TOP/build/src}/scripts/checkpatch.pl
[ -f "$CP" ] || { echo "checkpatch: $CP missing (run make build)" >&2; exit 1; }
cd "$TOP"
fail=0
files=$(git ls-files -co --exclude-standard -- '*.c' '*.h' | grep -v '^build/' || true)
for f in $files; do
    if ! out=$(perl "$CP" --no-tree --terse -f "$f" 2>&1); then
        echo "$out"
        fail=1
    fi
done
for p in $(grep -v '^#' patches/series); do
    if ! out=$(perl "$CP" --no-tree --terse "patches/$p" 2>&1); then
        echo "$p: $out"
        fail=1
    fi
done
nf=$(echo $files | wc -w); np=$(grep -vc '^#' patches/series || true)
if [ $fail -ne 0 ]; then
    echo "checkpatch: FAIL"
    exit 1
fi
echo "checkpatch: clean ($nf source files, $np patches)"
