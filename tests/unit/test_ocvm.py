#!/usr/bin/python3
"""Unit tests of the test library's QMP client and guest-shell protocol,
against fake peers on socket pairs (no QEMU needed)."""

import json
import socket
import threading
import time
import unittest

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


if __name__ == '__main__':
    unittest.main()
