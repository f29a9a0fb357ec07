#!/usr/bin/python3
"""The deferred monitor reply mechanism (monitor/deferred.c), exercised
through query-balloon refresh=sync against a real guest, made not to
answer where needed by starving its kernel workers: reply order, a client
that disconnects mid-wait, shutdown with requests pending, many monitors
at once."""

import json
import os
import shutil
import socket
import tempfile
import time
import unittest

from ocvm import VM, LineSocket, VMError, VMTestCase, wait_until

RECONNECT_CYCLES = 300


def server_monitors(d):
    """Arguments for a QMP and an HMP monitor that QEMU serves in d."""
    return ['-chardev', 'socket,id=rq,path=%s/rq.sock,server=on,wait=off' % d,
            '-mon', 'chardev=rq,mode=control',
            '-chardev', 'socket,id=rh,path=%s/rh.sock,server=on,wait=off' % d,
            '-mon', 'chardev=rh,mode=readline']


class Deferrals:
    """QEMU's trace of the requests its monitors defer (-trace
    monitor_deferred_defer into a file): wait(n) returns once n have been
    deferred, i.e. QEMU read them and they wait for the guest."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='oc-deferrals-')
        self.path = os.path.join(self.dir, 'trace.log')
        self.args = ['-trace', 'enable=monitor_deferred_defer',
                     '-D', self.path]

    def count(self):
        try:
            with open(self.path) as f:
                return f.read().count('monitor_deferred_defer')
        except FileNotFoundError:
            return 0

    def wait(self, n, timeout=30):
        wait_until(lambda: self.count() >= n, timeout, 0.05,
                   '%d deferred requests (trace %s)' % (n, self.path))

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return LineSocket(s)


def qmp_line(conn, what, timeout=5):
    line = conn.readline(timeout)
    if line is None:
        raise VMError('QMP: no %s within %d s' % (what, timeout))
    msg = json.loads(line)
    return msg


def hmp_until_prompt(sock, timeout=5):
    """HMP output up to the next prompt (which ends no line)."""
    sock.settimeout(timeout)
    data = b''
    while not data.endswith(b'(qemu) '):
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            raise VMError('HMP: no prompt within %d s: %r' % (timeout, data))
        if not chunk:
            raise VMError('HMP: connection closed: %r' % data)
        data += chunk
    return data.decode(errors='replace')


class DeferredMonitorTest(VMTestCase):

    def test_many_monitors_at_once(self):
        with VM(extra_qmp=8, hmp_monitor=True) as vm:
            mons = [vm.qmp_conn] + vm.qmps
            for _ in range(3):
                before = int(time.time() * 1000)
                ids = [m.send('query-balloon', refresh='sync') for m in mons]
                vm.hmp_send('info balloon')
                replies = [m.response(i, 10) for m, i in zip(mons, ids)]
                line = vm.hmp_read(r'balloon: actual=.*').group(0)
                self.assertTrue(all(r['fresh'] for r in replies), replies)
                self.assertTrue(all(r['last-update'] >= before - 5 for r in replies))
                self.assertNotIn('age=', line)
                # (requests waiting together share one round trip: the qtest
                # counts that exactly; a real guest may answer the first
                # before the last is dispatched)

    def test_reply_order_on_the_waiting_monitor(self):
        with VM(extra_qmp=1) as vm:
            vm.starve(6)        # (returns once the guest is starved)
            m = vm.qmp_conn
            ids = [m.send('query-balloon', refresh='sync', timeout=3000),
                   m.send('query-status'),
                   m.send('query-balloon'),
                   m.send('query-version')]
            # the other monitor is served meanwhile
            vm.qmps[0].command('query-status')
            self.assertFalse(m.reply_arrived(), 'the other monitor waited')
            got = []
            while len(got) < len(ids):
                msg = m._read(30)
                if 'event' not in msg:
                    got.append(msg)
            self.assertEqual([msg['id'] for msg in got], ids)
            # the guest did not answer: the first waited for it in vain
            self.assertEqual(got[0]['return']['stale-reason'], 'timeout')
            vm.starved()

    def test_client_disconnects_mid_wait(self):
        deferrals = Deferrals()
        self.addCleanup(deferrals.cleanup)
        with VM(extra_qmp=1, args=deferrals.args) as vm:
            vm.starve(4)
            vm.qmps[0].send('query-balloon', refresh='sync', timeout=1500)
            deferrals.wait(1)       # QEMU has it, waiting for the guest
            vm.qmps[0].close()
            vm.qmps = []
            # the waiter's timer fires (1.5 s) with nobody to answer, and
            # the starvation (4 s) ends: no crash
            vm.starved()
            self.assertIsNone(vm.proc.poll())
            self.assertEqual(vm.qmp('query-status')['status'], 'running')
            r = vm.qmp('query-balloon')
            self.assertIn('stats', r)
            self.assertTrue(vm.qmp('query-balloon', refresh='sync')['fresh'])

    def test_reconnecting_clients_never_see_earlier_clients(self):
        """Hundreds of clients of one QMP and one HMP monitor ask, while
        the guest cannot answer, and hang up at once: each new client is
        greeted and served at once, and never gets an earlier client's
        reply."""
        d = tempfile.mkdtemp(prefix='oc-reconnect-')
        try:
            with VM(smp=2, args=server_monitors(d)) as vm:
                vm.starve(3600)
                for i in range(RECONNECT_CYCLES):
                    # served while the earlier clients' asks (60 s) are
                    # pending: a monitor that waited for one would take
                    # 60 s; a busy host may take seconds (not a bound)
                    c = connect(os.path.join(d, 'rq.sock'))
                    self.assertIn('QMP', qmp_line(c, 'greeting', 30))
                    c.send(json.dumps({'execute': 'qmp_capabilities',
                                       'id': 'caps-%d' % i}) + '\n')
                    msg = qmp_line(c, 'reply to qmp_capabilities', 30)
                    while 'event' in msg:
                        msg = qmp_line(c, 'reply to qmp_capabilities', 30)
                    self.assertEqual(msg.get('id'), 'caps-%d' % i, msg)
                    c.send(json.dumps({'execute': 'query-balloon',
                                       'arguments': {'refresh': 'sync',
                                                     'timeout': 60000},
                                       'id': 'ask-%d' % i}) + '\n')
                    c.close()
                for i in range(RECONNECT_CYCLES):
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.connect(os.path.join(d, 'rh.sock'))
                    text = hmp_until_prompt(s)
                    self.assertNotIn('balloon:', text)
                    s.sendall(b'info balloon\n')
                    s.close()
                # the last HMP waiters time out (1 s) while a client is on
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(os.path.join(d, 'rh.sock'))
                text = hmp_until_prompt(s)
                time.sleep(1.5)
                s.sendall(b'info status\n')
                text += hmp_until_prompt(s)
                s.close()
                self.assertNotIn('balloon:', text)
                self.assertIn('VM status: running', text)
                self.assertIsNone(vm.proc.poll())
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_shutdown_with_requests_pending(self):
        deferrals = Deferrals()
        self.addCleanup(deferrals.cleanup)
        vm = VM(extra_qmp=1, hmp_monitor=True, args=deferrals.args)
        with vm:
            vm.starve(10)
            wid = vm.qmp_conn.send('query-balloon', refresh='sync', timeout=60000)
            vm.hmp_send('info balloon')
            deferrals.wait(2)       # both wait for the guest
            vm.qmps[0].send('quit')
            # the waiters complete, not silence: the VM stops first, so
            # they get the latest statistics marked stale
            msg = vm.qmp_conn._read(10)
            while 'event' in msg:
                msg = vm.qmp_conn._read(10)
            self.assertEqual(msg.get('id'), wid)
            self.assertEqual(msg['return']['stale-reason'], 'stopped')
            self.assertIn('stats', msg['return'])
            vm.hmp_read(r'balloon: actual=512 .* age=\d+$', 5)
            wait_until(lambda: vm.proc.poll() is not None, 10, 0.1, 'QEMU to exit')
            self.assertEqual(vm.proc.returncode, 0)


if __name__ == '__main__':
    unittest.main()
