#!/bin/bash
# Run every qemu-oc test suite (or the suites named) through our meson
# project and finish with one line "N passed, N failed, N skipped" that
# counts test cases (tests that print TAP report each case; an exit-code
# test is one case). Failed and skipped cases are named first; a skip
# counts against the run (CI treats a skipped required test as a failure).
# A case that skips with a reason starting "not on this host:" needs
# something this host lacks (the KVM tests without /dev/kvm: they are
# required where it exists, see tests/guest/ocvm.py); it is named under
# NOT RUN, counted apart, and does not fail the run.
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

/usr/bin/python3 - "$OC/meson-logs/testlog.json" "$OC/meson-logs/testlog.junit.xml" <<'PY'
# Count test cases: meson 1.0's testlog.json has one entry per test program
# (its overall result); the per-case results of TAP tests are in its JUnit
# log, as one <testsuite name="PROJECT.TEST"> per TAP test. A program that
# fails (exit status, crash, timeout, missing plan) without a failed case
# counts one failure more; an exit-code test counts as one case.
# Each failed case is named with the last lines of its failure text (the
# "# " lines after its "not ok" line), so that the end of a CI log says
# why, not only what.
import json, os, re, sys
import xml.etree.ElementTree as ET
PASS, SKIP = ('OK', 'EXPECTEDFAIL'), ('SKIP',)
cases = {}
if os.path.exists(sys.argv[2]):
    for suite in ET.parse(sys.argv[2]).getroot().iter('testsuite'):
        if '.' not in suite.get('name'):
            continue                  # exit-code tests: one suite per project
        got = []
        for case in suite.iter('testcase'):
            out = case.find('system-out')
            why = out.text if out is not None and out.text else ''
            for kind in ('skipped', 'failure', 'error'):
                if case.find(kind) is not None:
                    got.append((kind, case.get('name'), why))
                    break
            else:
                got.append(('passed', case.get('name'), why))
        cases[suite.get('name').split('.', 1)[1]] = got
HOST = 'not on this host:'
TAIL = 3                          # lines of a failure text in the summary


def failure_texts(tap):
    """{case name: [failure text lines]} of the failed cases in @tap,
    named as meson's JUnit log names them ("2 - Class.test_name")."""
    texts, current = {}, None
    for line in (tap or '').splitlines():
        m = re.match(r'not ok\s+(\d+)\s*([^#]*)', line)
        if m:
            name = '%s %s' % (m.group(1), m.group(2).strip())
            current = texts.setdefault(name, [])
        elif current is not None and line.startswith('#'):
            current.append(line[1:].strip())
        else:
            current = None
    return texts


def why_failed(texts, case):
    lines = [l for l in texts.get(case, []) if l]
    return ''.join('\n        %s' % l[:200] for l in lines[-TAIL:])


counts = {'passed': 0, 'failed': 0, 'skipped': 0}
failed, skipped, absent = [], [], []
for line in open(sys.argv[1]):
    r = json.loads(line)
    name, res = r['name'], r['result']
    got = cases.get(name, [])
    texts = failure_texts(r.get('stdout'))
    for kind, case, why in got:
        if kind == 'passed':
            counts['passed'] += 1
        elif kind == 'skipped' and why.startswith(HOST):
            absent.append('%s: %s: %s' % (name, case, why[len(HOST):].strip()))
        elif kind == 'skipped':
            counts['skipped'] += 1
            skipped.append('%s: %s: %s' % (name, case, why or 'no reason given'))
        else:
            counts['failed'] += 1
            failed.append('%s: %s%s' % (name, case, why_failed(texts, case)))
    if not got or (res not in PASS + SKIP and
                   not any(k in ('failure', 'error') for k, _, _ in got)):
        if res in PASS:
            counts['passed'] += 1
        elif res in SKIP:
            counts['skipped'] += 1
            skipped.append('%s: skipped as a whole (its log says why)' % name)
        else:
            counts['failed'] += 1
            failed.append('%s: %s%s' % (name, res, ' after %d test cases' % len(got)
                                        if got else ''))
for f in failed:
    print('FAILED  ' + f)
for s in skipped:
    print('SKIPPED ' + s + ' (a skip fails the run)')
for s in absent:
    print('NOT RUN ' + s)
print('%(passed)d passed, %(failed)d failed, %(skipped)d skipped' % counts
      + (' (%d not runnable on this host, named above)' % len(absent)
         if absent else ''))
sys.exit(1 if counts['failed'] or counts['skipped'] else 0)
PY
summary=$?
[ $rc -eq 0 ] && [ $summary -eq 0 ]
