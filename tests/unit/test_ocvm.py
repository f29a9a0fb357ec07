#!/usr/bin/python3
"""Unit tests of the test library's QMP client and guest-shell protocol,
against fake peers on socket pairs (no QEMU needed); its wait helper, VM
arguments and VMTestCase."""

import contextlib
import io
import json
import os
import socket
import sys
import threading
import time
import unittest
import unittest.mock

import ocvm


class FakeQMP(threading.Thread):
    """Speaks the server side of QMP from a script of (request -> replies)."""

    def __init__(self, sock, handler):
        super().__init__(daemon=True)
        self.sock = sock
        self.handler = handler

    def run(self):
        f = self.sock.makefile('rw')
        f.write(json.dumps({'QMP': {'version': {}, 'capabilities': []}}) + '\n')
        f.flush()
        for line in f:
            req = json.loads(line)
            for msg in self.handler(req):
                f.write(json.dumps(msg) + '\n')
                f.flush()


def handler(req):
    cmd = req['execute']
    if cmd == 'qmp_capabilities':
        return [{'return': {}, 'id': req['id']}]
    if cmd == 'with-event':
        return [{'event': 'E1', 'data': {'n': 1}}, {'return': 7, 'id': req['id']}]
    if cmd == 'fail':
        return [{'error': {'class': 'GenericError', 'desc': 'no'}, 'id': req['id']}]
    if cmd == 'silent':
        return []
    if cmd == 'later-event':
        return [{'return': {}, 'id': req['id']}, {'event': 'E2', 'data': {}}]
    if cmd == 'child-then-device':
        return [{'return': {}, 'id': req['id']},
                {'event': 'DEVICE_DELETED', 'data': {'path': '/p/c1/lapic'}},
                {'event': 'DEVICE_DELETED',
                 'data': {'device': 'c1', 'path': '/p/c1'}}]
    return [{'return': req.get('arguments', {}), 'id': req['id']}]


class QMPClientTest(unittest.TestCase):

    def setUp(self):
        a, b = socket.socketpair()
        FakeQMP(b, handler).start()
        self.qmp = ocvm.QMP(a, timeout=5)

    def tearDown(self):
        self.qmp.close()

    def test_arguments_round_trip(self):
        self.assertEqual(self.qmp.command('echo', x=1, y='z'), {'x': 1, 'y': 'z'})
        # a QMP argument may be called like the library's own keywords
        self.assertEqual(self.qmp.command('echo', {'timeout': 5, 'wait': 1}),
                         {'timeout': 5, 'wait': 1})

    def test_event_during_command_is_kept(self):
        self.assertEqual(self.qmp.command('with-event'), 7)
        self.assertEqual(self.qmp.event('E1', timeout=1)['data'], {'n': 1})
        self.assertEqual(self.qmp.events, [])

    def test_error_raises_with_class(self):
        with self.assertRaises(ocvm.QMPError) as cm:
            self.qmp.command('fail')
        self.assertEqual(cm.exception.cls, 'GenericError')

    def test_no_answer_times_out(self):
        t0 = time.monotonic()
        with self.assertRaises(ocvm.VMError):
            self.qmp.command('silent', wait=0.3)
        self.assertLess(time.monotonic() - t0, 2)

    def test_event_after_answer(self):
        self.qmp.command('later-event')
        self.assertEqual(self.qmp.event('E2', timeout=2)['event'], 'E2')
        with self.assertRaises(ocvm.VMError):
            self.qmp.event('E3', timeout=0.2)

    def test_event_matching_data(self):
        self.qmp.command('child-then-device')
        ev = self.qmp.event('DEVICE_DELETED', timeout=2, match={'device': 'c1'})
        self.assertEqual(ev['data']['path'], '/p/c1')
        # the child's event was skipped, not consumed
        self.assertEqual(self.qmp.event('DEVICE_DELETED', timeout=1)['data'],
                         {'path': '/p/c1/lapic'})
        with self.assertRaises(ocvm.VMError):
            self.qmp.event('DEVICE_DELETED', timeout=0.2, match={'device': 'c2'})


class FakeShell(threading.Thread):
    """Answers ocvm's shell protocol as the guest's init shell would."""

    def __init__(self, sock):
        super().__init__(daemon=True)
        self.sock = sock

    def run(self):
        f = self.sock.makefile('rw')
        for line in f:
            # '{ CMD ; } 2>&1; echo "TAG$?"'
            cmd = line[2:line.index(' ; }')]
            tag = line[line.index('echo "') + 6:line.index('$?')]
            if cmd == 'hang':
                continue
            rc = 3 if cmd == 'false' else 0
            f.write('\r\n'.join(['out of %s' % cmd, 'second line']) + '\r\n')
            f.write('%s%d\r\n' % (tag, rc))
            f.flush()


class ShellProtocolTest(unittest.TestCase):

    def setUp(self):
        a, b = socket.socketpair()
        FakeShell(b).start()
        self.vm = ocvm.VM()
        self.vm.serial = ocvm.LineSocket(a)

        class Alive:
            def poll(self):
                return None
        self.vm.proc = Alive()

    def test_output_and_status(self):
        self.assertEqual(self.vm.shell('ls'), 'out of ls\nsecond line')
        self.assertEqual(self.vm.last_rc, 0)

    def test_failure_raises_unless_unchecked(self):
        with self.assertRaises(ocvm.VMError):
            self.vm.shell('false')
        self.vm.shell('false', check=False)
        self.assertEqual(self.vm.last_rc, 3)

    def test_hung_command_times_out(self):
        with self.assertRaises(ocvm.VMError):
            self.vm.shell('hang', timeout=0.5)


class WaitUntilTest(unittest.TestCase):

    def test_returns_value(self):
        n = iter(range(10))
        self.assertEqual(ocvm.wait_until(lambda: next(n) >= 3 and 'ok', 2, 0.01), 'ok')

    def test_times_out(self):
        with self.assertRaises(ocvm.VMError):
            ocvm.wait_until(lambda: False, 0.2, 0.05)

    def test_message_and_quiet(self):
        with self.assertRaisesRegex(ocvm.VMError, '^nothing came$'):
            ocvm.wait_until(lambda: False, 0, message='nothing came')
        with self.assertRaisesRegex(ocvm.VMError, '^the thing not met within 0.0 s$'):
            ocvm.wait_until(lambda: False, 0, what='the thing')
        self.assertIsNone(ocvm.wait_until(lambda: False, 0.1, 0.01, quiet=True))

    def test_blocking_gets_the_time_left(self):
        lefts = []

        def pred(left):
            lefts.append(left)
            time.sleep(min(left, 0.05))
            return False
        self.assertIsNone(ocvm.wait_until(pred, 0.2, interval=0, blocking=True,
                                          quiet=True))
        self.assertGreater(len(lefts), 1)
        self.assertLessEqual(lefts[0], 0.2)
        self.assertEqual(lefts, sorted(lefts, reverse=True))
        self.assertTrue(all(left >= 0 for left in lefts))

    def test_called_once_even_without_time(self):
        self.assertEqual(ocvm.wait_until(lambda left: left == 0 and 'now', 0,
                                         blocking=True), 'now')


class LineSocketTest(unittest.TestCase):

    def setUp(self):
        self.a, self.b = socket.socketpair()
        self.conn = ocvm.LineSocket(self.a)

    def tearDown(self):
        self.a.close()
        self.b.close()

    def test_lines_and_timeout(self):
        self.b.sendall(b'one\r\ntw')
        self.assertEqual(self.conn.readline(1), 'one')
        self.assertIsNone(self.conn.readline(0.1))
        self.b.sendall(b'o\n\nthree\n')
        self.assertEqual(self.conn.readline(1), 'two')
        self.assertEqual(self.conn.readline(0), '')      # already read
        self.assertEqual(self.conn.readline(0), 'three')
        self.assertIsNone(self.conn.readline(0))

    def test_closed(self):
        self.b.close()
        with self.assertRaisesRegex(ocvm.VMError, 'connection closed'):
            self.conn.readline(1)


class VMArgumentsTest(unittest.TestCase):
    """Each argument means one thing; the command line follows."""

    def cmd(self, **kw):
        vm = ocvm.VM(**kw)
        vm.dir = '/d'
        return vm.command_line()

    def test_debian_guest(self):
        cmd = self.cmd(append='x=1')
        self.assertIn('-initrd', cmd)
        self.assertEqual(cmd[cmd.index('-append') + 1], 'console=ttyS0 panic=-1 quiet x=1')

    def test_own_kernel(self):
        cmd = self.cmd(guest='kernel', kernel='/k.elf')
        self.assertEqual(cmd[cmd.index('-kernel') + 1], '/k.elf')
        self.assertNotIn('-initrd', cmd)
        self.assertNotIn('-append', cmd)
        cmd = self.cmd(guest='kernel', kernel='/k', append='console=ttyS0')
        self.assertEqual(cmd[cmd.index('-append') + 1], 'console=ttyS0')

    def test_no_guest(self):
        for kw in [dict(guest='none'), dict(guest='none', accel='qtest')]:
            cmd = self.cmd(**kw)
            self.assertNotIn('-kernel', cmd)
            self.assertNotIn('-initrd', cmd)

    def test_contradictions_refused(self):
        for kw in [dict(guest='bogus'), dict(kernel='/k'), dict(guest='kernel'),
                   dict(guest='none', kernel='/k'), dict(accel='qtest'),
                   dict(guest='none', append='x')]:
            with self.subTest(**kw), self.assertRaises(ValueError):
                ocvm.VM(**kw)


class FakeVM:
    """What VMTestCase needs of a VM."""

    def __init__(self, name, running):
        self.dir = name
        self.proc = object() if running else None
        self.tails_printed = False

    def print_tails(self):
        sys.stderr.write('tails of %s\n' % self.dir)
        self.tails_printed = True


class VMTestCaseTest(unittest.TestCase):

    def run_case(self, body):
        class Case(ocvm.VMTestCase):
            def test(self):
                body()
        result = unittest.TestResult()
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            Case('test').run(result)
        return result, err.getvalue()

    def tearDown(self):
        ocvm._started.clear()

    def test_failure_prints_its_vms(self):
        ocvm._started.append(FakeVM('class-vm', running=True))

        def body():
            ocvm._started.append(FakeVM('stopped', running=False))
            printed = FakeVM('printed', running=False)
            printed.tails_printed = True
            ocvm._started.append(printed)
            raise AssertionError('boom')
        result, err = self.run_case(body)
        self.assertEqual(len(result.failures), 1)
        self.assertIn('tails of class-vm', err)
        self.assertIn('tails of stopped', err)
        self.assertNotIn('tails of printed', err)
        # the VMs that shut down are forgotten, the running one stays
        self.assertEqual([vm.dir for vm in ocvm._started], ['class-vm'])

    def test_success_prints_nothing(self):
        def body():
            ocvm._started.append(FakeVM('stopped', running=False))
        result, err = self.run_case(body)
        self.assertTrue(result.wasSuccessful())
        self.assertEqual(err, '')
        self.assertEqual(ocvm._started, [])


class KvmRequirementTest(unittest.TestCase):
    """KVM tests are not runnable only where /dev/kvm is absent and
    QEMU_OC_REQUIRE_KVM is not 1; the reason carries the runner's prefix."""

    def missing(self, require):
        env = dict(os.environ)
        env.pop('QEMU_OC_REQUIRE_KVM', None)
        if require is not None:
            env['QEMU_OC_REQUIRE_KVM'] = require
        with unittest.mock.patch.dict(os.environ, env, clear=True):
            return ocvm.kvm_missing()

    def test_required_by_the_environment(self):
        self.assertIsNone(self.missing('1'))

    def test_by_the_device(self):
        for require in (None, '0'):
            why = self.missing(require)
            if os.path.exists('/dev/kvm'):
                self.assertIsNone(why)
            else:
                self.assertTrue(why.startswith(ocvm.NOT_ON_THIS_HOST), why)
                self.assertIn('/dev/kvm', why)


if __name__ == '__main__':
    unittest.main()
