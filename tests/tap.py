#!/usr/bin/python3
"""Run the unittest test cases of one Python test file and print TAP.

usage: tap.py TEST_FILE.py

Our meson project runs every Python test file through this runner
(`protocol: 'tap'`), so the test command counts and names test cases, not
files. It prints the plan `1..N` (N test cases in the file), then one line
per test case as it finishes, in order:

    ok 1 - Class.test_name
    not ok 2 - Class.test_other        (the failure text follows as # lines)
    ok 3 - Class.test_third # SKIP why

A class whose setUpClass fails or raises SkipTest reports each of its test
cases that way. An error outside any test case (tearDownClass,
tearDownModule) is printed as # lines and makes the exit status 1.

Only TAP goes to standard output: while the tests run, file descriptor 1
(print(), child processes) is redirected to standard error.
"""

import importlib.util
import os
import sys
import traceback
import unittest


def case_name(test):
    return '%s.%s' % (type(test).__name__, test._testMethodName)


def flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from flatten(t)
        else:
            yield t


class TAPResult(unittest.TestResult):
    def __init__(self, out, cases):
        super().__init__()
        self.out = out
        self.cases = cases            # every test case, in run order
        self.done = set()             # ids of the test cases reported
        self.number = 0
        self.current = None           # (test, [failure texts], skip reason)
        self.stray = []               # errors outside any test case

    def emit(self, line, details=()):
        self.out.write(line + '\n')
        for text in details:
            for detail in text.rstrip('\n').split('\n'):
                self.out.write('# ' + detail + '\n')
        self.out.flush()

    def report(self, test, failures=(), skip=None):
        self.number += 1
        self.done.add(test.id())
        name = case_name(test)
        if failures:
            self.emit('not ok %d - %s' % (self.number, name), failures)
        elif skip is not None:
            self.emit('ok %d - %s # SKIP %s'
                      % (self.number, name, ' '.join(skip.split())))
        else:
            self.emit('ok %d - %s' % (self.number, name))

    # a test case that runs
    def startTest(self, test):
        super().startTest(test)
        self.current = (test, [], None)

    def stopTest(self, test):
        super().stopTest(test)
        if self.current and self.current[0] is test:
            self.report(*self.current)
        self.current = None

    def _fail(self, test, err, what):
        text = '%s: %s' % (what, self._exc_info_to_string(err, test))
        if self.current and self.current[0] is test:
            self.current[1].append(text)
        else:
            self._outside(test, text)

    def addError(self, test, err):
        super().addError(test, err)
        self._fail(test, err, 'ERROR')

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._fail(test, err, 'FAIL')

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            what = 'FAIL' if issubclass(err[0], test.failureException) else 'ERROR'
            self._fail(test, err, '%s %s' % (what, subtest._subDescription()))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        if self.current and self.current[0] is test:
            self.current = (test, self.current[1], reason)
        else:
            self._outside(test, None, reason)

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._fail(test, None, 'unexpected success')

    def _exc_info_to_string(self, err, test):
        if err is None:
            return 'the test passed but is marked expectedFailure'
        return super()._exc_info_to_string(err, test)

    # an error or skip outside a test case: unittest's _ErrorHolder, whose
    # description is e.g. "setUpClass (test_x.Class)"
    def _outside(self, holder, text, skip=None):
        desc = holder.id() if hasattr(holder, 'id') else str(holder)
        where, _, target = desc.partition(' (')
        target = target.rstrip(')')
        if where in ('setUpClass', 'setUpModule'):
            for test in self.cases:
                if test.id() in self.done:
                    continue
                cls = '%s.%s' % (type(test).__module__, type(test).__qualname__)
                if target in (cls, type(test).__module__):
                    self.report(test, [text] if text else (), skip)
            return
        if skip is None:
            self.stray.append('%s: %s' % (desc, text))
            self.emit('# %s failed' % desc, [text])

    def finish(self):
        for test in self.cases:
            if test.id() not in self.done:
                self.report(test, ['not run (the run stopped before it)'])


def load(path):
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main():
    if len(sys.argv) != 2:
        sys.exit('usage: tap.py TEST_FILE.py')
    path = os.path.abspath(sys.argv[1])
    out = os.fdopen(os.dup(1), 'w')
    sys.stdout.flush()
    os.dup2(2, 1)
    try:
        suite = unittest.defaultTestLoader.loadTestsFromModule(load(path))
    except Exception:
        out.write('1..0\nBail out! %s does not load\n' % path)
        for line in traceback.format_exc().rstrip('\n').split('\n'):
            out.write('# %s\n' % line)
        out.flush()
        return 1
    cases = list(flatten(suite))
    out.write('1..%d\n' % len(cases))
    out.flush()
    result = TAPResult(out, cases)
    suite.run(result)
    result.finish()
    return 1 if result.stray else 0


if __name__ == '__main__':
    sys.exit(main())
