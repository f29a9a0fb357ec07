#!/usr/bin/python3
"""The deferred monitor reply mechanism (monitor/deferred.c), exercised
through query-balloon refresh=sync against a real guest, made not to
answer where needed by starving its kernel workers: reply order, a client
that disconnects mid-wait, shutdown with requests pending, many monitors
at once."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ocvm import VM, wait_until  # noqa: E402


class DeferredMonitorTest(unittest.TestCase):

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
            vm.starve(4)
            time.sleep(0.5)
            m = vm.qmp_conn
            ids = [m.send('query-balloon', refresh='sync', timeout=1500),
                   m.send('query-status'),
                   m.send('query-balloon'),
                   m.send('query-version')]
            # the other monitor is served meanwhile
            t = time.monotonic()
            vm.qmps[0].command('query-status')
            self.assertLess(time.monotonic() - t, 0.5)
            got = []
            while len(got) < len(ids):
                msg = m._read(10)
                if 'event' not in msg:
                    got.append(msg['id'])
            self.assertEqual(got, ids)
            time.sleep(3)
            vm.resync()

    def test_client_disconnects_mid_wait(self):
        with VM(extra_qmp=1) as vm:
            vm.starve(4)
            time.sleep(0.5)
            vm.qmps[0].send('query-balloon', refresh='sync', timeout=1500)
            time.sleep(0.2)
            vm.qmps[0].close()
            vm.qmps = []
            # the waiter's timer fires with nobody to answer: no crash
            time.sleep(2)
            self.assertIsNone(vm.proc.poll())
            self.assertEqual(vm.qmp('query-status')['status'], 'running')
            r = vm.qmp('query-balloon')
            self.assertIn('stats', r)
            time.sleep(2)
            vm.resync()
            self.assertTrue(vm.qmp('query-balloon', refresh='sync')['fresh'])

    def test_shutdown_with_requests_pending(self):
        vm = VM(extra_qmp=1, hmp_monitor=True)
        with vm:
            vm.starve(10)
            time.sleep(0.5)
            wid = vm.qmp_conn.send('query-balloon', refresh='sync', timeout=60000)
            vm.hmp_send('info balloon')
            time.sleep(0.3)
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
