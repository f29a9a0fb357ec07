#!/bin/bash
# Build the host tools (tools/, our meson project in build/oc) and link
# them at their stable paths: build/tools/vmtop, build/tools/qemu-oc-balloond.  Output goes to
# build/tools.log.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
OC=$TOP/build/oc
LOG=$TOP/build/tools.log
TOOLS=(vmtop qemu-oc-balloond)

mkdir -p "$TOP/build/tools"
echo "tools: building ${TOOLS[*]} (log: build/tools.log)"
{
    if [ ! -f "$OC/build.ninja" ]; then
        meson setup "$OC" "$TOP"
    fi
    meson compile -C "$OC" "${TOOLS[@]}"
} > "$LOG" 2>&1 || {
    echo "tools: build failed; the end of build/tools.log:" >&2
    tail -n 30 "$LOG" >&2
    exit 1
}
for t in "${TOOLS[@]}"; do
    ln -sfn "../oc/tools/$t" "$TOP/build/tools/$t"
done
echo "tools: ready in build/tools/"
