#!/bin/bash
# Run every qemu-oc test suite (or the suites named) through our meson
# project and finish with one line "N passed, N failed, N skipped".
# Skipped tests print why; a skip counts against the run (CI treats a
# skipped required test as a failure).
#
# usage: run-tests.sh [--suite NAME]...
set -uo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
OC=$TOP/build/oc
export PYTHON=/usr/bin/python3

if [ ! -f "$OC/build.ninja" ]; then
    meson setup "$OC" "$TOP" >/dev/null || exit 1
fi
# tests run one at a time: the real-guest tests use both host cores
meson test -C "$OC" --num-processes 1 --print-errorlogs "$@"
rc=$?

/usr/bin/python3 - "$OC/meson-logs/testlog.json" <<'PY'
import json, sys
counts = {'passed': 0, 'failed': 0, 'skipped': 0}
for line in open(sys.argv[1]):
    r = json.loads(line)['result']
    if r in ('OK', 'EXPECTEDFAIL'):
        counts['passed'] += 1
    elif r == 'SKIP':
        counts['skipped'] += 1
    else:
        counts['failed'] += 1
print('%(passed)d passed, %(failed)d failed, %(skipped)d skipped' % counts)
sys.exit(1 if counts['failed'] or counts['skipped'] else 0)
PY
summary=$?
[ $rc -eq 0 ] && [ $summary -eq 0 ]
