#!/bin/bash
# Run one x86_64 qtest of the QEMU build directly, printing TAP (one line per
# test case) for our meson project, with the environment QEMU's own meson
# harness gives it (tests/qtest/meson.build upstream): the binary under test,
# relative to the build directory it runs in, the D-Bus helper for the tests
# that use one, and MALLOC_PERTURB_ (meson's test harness sets it to catch use
# of uninitialised or freed heap memory).
# usage: run-qtest.sh QEMU_BUILD_DIR NAME
set -euo pipefail
B=${1:?usage: run-qtest.sh QEMU_BUILD_DIR NAME}
NAME=${2:?usage: run-qtest.sh QEMU_BUILD_DIR NAME}
if [ ! -x "$B/tests/qtest/$NAME" ]; then
    echo "run-qtest: $B/tests/qtest/$NAME is not built (make check builds it)" >&2
    exit 1
fi
cd "$B"
export QTEST_QEMU_BINARY=./qemu-system-x86_64
export G_TEST_DBUS_DAEMON=$(cd ../src && pwd)/tests/dbus-vmstate-daemon.sh
export MALLOC_PERTURB_=${MALLOC_PERTURB_:-$((RANDOM % 255 + 1))}
exec "tests/qtest/$NAME" --tap -k
