#!/bin/bash
# Run one x86_64 qtest of the QEMU build through QEMU's own meson harness.
# usage: run-qtest.sh QEMU_BUILD_DIR NAME
set -euo pipefail
B=${1:?usage: run-qtest.sh QEMU_BUILD_DIR NAME}
NAME=${2:?usage: run-qtest.sh QEMU_BUILD_DIR NAME}
if [ ! -x "$B/tests/qtest/$NAME" ]; then
    echo "run-qtest: $B/tests/qtest/$NAME is not built (make check builds it)" >&2
    exit 1
fi
export PYTHON=/usr/bin/python3
exec meson test -C "$B" --no-rebuild --print-errorlogs "qtest-x86_64/$NAME"
