#!/bin/bash
# Build the emulator and our qtests with AddressSanitizer and
# UndefinedBehaviorSanitizer (build/asan, its own build directory), run our
# qtests and the real-guest tests against it, and fail on any sanitizer
# report.  Long (a full build, then slower tests): not part of make check.
#
# usage: sanitize.sh [GUEST-TEST...]   (default: every real-guest test that
#                                       runs our emulator; names as in
#                                       tests/guest/test_NAME.py)
set -uo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
B=$TOP/build
A=$B/asan
LOGS=$B/asan-reports
GUEST_TESTS=("$@")
[ ${#GUEST_TESTS[@]} -gt 0 ] ||
    GUEST_TESTS=(balloon_stats monitor_deferred balloon_migration runstates)
QTESTS=$(grep -v '^#' "$TOP/tests/oc-qtests.list")

echo "sanitize: building the emulator and our qtests with ASan+UBSan in build/asan"
echo "sanitize: (a full build: 10 to 20 minutes on 2 cores; log: build/asan-build.log)"
mkdir -p "$B"
if ! QEMU_OC_SANITIZERS=1 "$TOP/scripts/build.sh" \
        $(printf 'tests/qtest/%s ' $QTESTS) > "$B/asan-build.log" 2>&1; then
    tail -30 "$B/asan-build.log"
    echo "sanitize: build failed (log: build/asan-build.log)" >&2
    exit 1
fi
"$TOP/scripts/build-guest.sh" "$B/guest" >> "$B/asan-build.log" 2>&1 || {
    echo "sanitize: guest image build failed (log: build/asan-build.log)" >&2
    exit 1
}

rm -rf "$LOGS"
mkdir -p "$LOGS"
# every report goes to a file; leaks at exit are not counted (QEMU does
# not free everything when it quits)
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:log_path=$LOGS/asan
export UBSAN_OPTIONS=print_stacktrace=1:log_path=$LOGS/ubsan
export QEMU_OC_BINARY=$A/qemu-system-x86_64
export QEMU_OC_GUEST=$B/guest
export PYTHONDONTWRITEBYTECODE=1
export PYTHONPATH=$TOP/tests/guest

failed=()
for t in $QTESTS; do
    echo "sanitize: qtest $t"
    (cd "$A" && QTEST_QEMU_BINARY=./qemu-system-x86_64 \
        "tests/qtest/$t" --tap) > "$LOGS/qtest-$t.log" 2>&1 ||
        failed+=("qtest $t")
    grep -E '^(ok|not ok)' "$LOGS/qtest-$t.log" | sed 's/^/  /'
done
for t in "${GUEST_TESTS[@]}"; do
    echo "sanitize: guest test $t"
    /usr/bin/python3 "$TOP/tests/guest/test_$t.py" > "$LOGS/guest-$t.log" 2>&1 ||
        failed+=("guest $t")
    tail -3 "$LOGS/guest-$t.log" | sed 's/^/  /'
done

# ASan writes a file per process for its notice that QEMU's coroutines
# switch stacks (makecontext/swapcontext): only errors count
reports=$(grep -lE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' \
          "$LOGS"/asan.* "$LOGS"/ubsan.* 2>/dev/null | sort)
for r in $reports; do
    echo "sanitize: report $r"
    head -40 "$r"
done
n=$(printf '%s' "$reports" | grep -c . || true)
echo "sanitize: ${#failed[@]} failed test runs${failed:+ (${failed[*]})}, $n sanitizer reports"
[ ${#failed[@]} -eq 0 ] && [ "$n" -eq 0 ]
