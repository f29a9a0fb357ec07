#!/bin/bash
# Build the host tools and their tests with AddressSanitizer,
# UndefinedBehaviorSanitizer and LeakSanitizer (build/oc-asan, a meson
# build directory of its own), run the tools suite against them (fake
# peers, real TCG guests, cgroups: the same tests as make check), and
# fail on any sanitizer report.  The emulator is the usual one.
#
# usage: sanitize-tools.sh [TEST...]     (default: the whole tools suite;
#                                         names as meson test lists them)
set -uo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
B=$TOP/build
A=$B/oc-asan
LOGS=$B/oc-asan-reports
LOG=$B/oc-asan.log

echo "sanitize-tools: building the tools with ASan+UBSan in build/oc-asan (log: build/oc-asan.log)"
{
    if [ ! -f "$A/build.ninja" ]; then
        meson setup "$A" "$TOP" -Db_sanitize=address,undefined \
            -Db_lundef=false -Dbuildtype=debug
    fi
    meson compile -C "$A"
} > "$LOG" 2>&1 || {
    tail -30 "$LOG"
    echo "sanitize-tools: build failed (log: build/oc-asan.log)" >&2
    exit 1
}

rm -rf "$LOGS"
mkdir -p "$LOGS"
# every report goes to a file, named by the process; leaks count (a tool
# that exits normally frees what it took); a daemon ended by a signal
# is not asked about leaks.  GLib's and libvirt's caches that live for
# the process are not ours: tests/tools/lsan.supp
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:fast_unwind_on_malloc=0:log_path=$LOGS/asan
export LSAN_OPTIONS=suppressions=$TOP/tests/tools/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$LOGS/ubsan

if [ $# -gt 0 ]; then
    what=("$@")
else
    what=(--suite tools)
fi
echo "sanitize-tools: running ${what[*]} (log: build/oc-asan/meson-logs/testlog.txt)"
meson test -C "$A" --no-rebuild --print-errorlogs "${what[@]}" \
    > "$LOGS/meson-test.log" 2>&1
rc=$?
grep -E '^ *[0-9]+/[0-9]+ ' "$LOGS/meson-test.log" | sed 's/^/  /'

reports=$(grep -lE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' \
          "$LOGS"/asan.* "$LOGS"/ubsan.* 2>/dev/null | sort)
for r in $reports; do
    echo "sanitize-tools: report $r"
    head -40 "$r"
done
n=$(printf '%s' "$reports" | grep -c . || true)
echo "sanitize-tools: tests $([ $rc = 0 ] && echo passed || echo FAILED), $n sanitizer reports"
[ $rc = 0 ] && [ "$n" -eq 0 ]
