#!/usr/bin/python3
"""Balloon statistics on demand with the Debian guest kernel's own
virtio-balloon driver: query-balloon refresh none/sync/async, the
BALLOON_STATS event, HMP info balloon, concurrent askers, and upstream's
polling alongside."""

import re
import time
import unittest

from ocvm import VM, VMTestCase, wait_until

BALLOON = '/machine/peripheral/balloon0'
MIB = 1 << 20
HMP_LINE = re.compile(r'^balloon: actual=(\d+)((?: [a-z-]+=\d+)+)$')


def now_ms():
    return int(time.time() * 1000)


class BalloonStatsTest(VMTestCase):

    @classmethod
    def setUpClass(cls):
        cls.vm = VM(smp=2, memory=512, extra_qmp=1, hmp_monitor=True)
        cls.vm.start()

    @classmethod
    def tearDownClass(cls):
        cls.vm.__exit__(None, None, None)

    def sync(self, **args):
        return self.vm.qmp('query-balloon', dict(refresh='sync', **args))

    def test_sync_refresh_is_fresh_and_real(self):
        before = now_ms()
        r = self.sync()
        after = now_ms()
        self.assertTrue(r['fresh'], r)
        self.assertNotIn('stale-reason', r)
        self.assertEqual(r['actual'], 512 * MIB)
        self.assertGreaterEqual(r['last-update'], before - 5)
        self.assertLessEqual(r['last-update'], after + 5)
        self.assertLess(r['age'], 1000)
        st = r['stats']
        self.assertEqual(st['total-memory'], self.vm.meminfo()['MemTotal'])
        self.assertLess(st['free-memory'], st['total-memory'])
        self.assertGreater(st['available-memory'], 100 * MIB)
        # Linux 6.1 reports tags 0..9 only: nothing else may appear
        self.assertEqual(set(st), {
            'swap-in', 'swap-out', 'major-faults', 'minor-faults',
            'free-memory', 'total-memory', 'available-memory', 'disk-caches',
            'hugetlb-allocations', 'hugetlb-failures'})

    def test_refresh_none_is_latest_without_guest_traffic(self):
        fresh = self.sync()
        time.sleep(0.3)
        r = self.vm.qmp('query-balloon')
        self.assertFalse(r['fresh'])
        self.assertEqual(r['stale-reason'], 'not-requested')
        self.assertEqual(r['last-update'], fresh['last-update'])
        self.assertGreaterEqual(r['age'], 250)

    def test_free_memory_drops_while_guest_holds_memory(self):
        base = self.sync()['stats']['free-memory']
        pid = self.vm.hold(200)
        try:
            held = self.sync()['stats']['free-memory']
        finally:
            self.vm.kill(pid)
        back = self.sync()['stats']['free-memory']
        print('free: %d MiB, holding 200 MiB: %d MiB, released: %d MiB'
              % (base // MIB, held // MIB, back // MIB))
        self.assertLess(held, base - 180 * MIB)
        self.assertGreater(back, held + 150 * MIB)

    def test_async_refresh_event(self):
        r = self.vm.qmp('query-balloon', refresh='async')
        self.assertFalse(r['fresh'])
        self.assertEqual(r['stale-reason'], 'pending')
        ev = self.vm.event('BALLOON_STATS', 10)['data']
        self.assertEqual(ev['actual'], 512 * MIB)
        self.assertEqual(ev['stats']['total-memory'], self.vm.meminfo()['MemTotal'])
        self.assertGreaterEqual(ev['last-update'], r.get('last-update', 0))
        after = self.vm.qmp('query-balloon')
        self.assertEqual(after['last-update'], ev['last-update'])
        self.assertEqual(after['stats'], ev['stats'])

    def test_hmp_info_balloon_line(self):
        text = self.vm.hmp('info balloon').strip()
        m = HMP_LINE.match(text)
        self.assertTrue(m, text)
        self.assertEqual(int(m.group(1)), 512)
        fields = dict(kv.split('=') for kv in m.group(2).split())
        self.assertNotIn('age', fields)
        self.assertEqual(int(fields['total-memory']), self.vm.meminfo()['MemTotal'])
        time.sleep(0.2)
        text = self.vm.hmp('info balloon -n').strip()
        m = HMP_LINE.match(text)
        self.assertTrue(m, text)
        fields = dict(kv.split('=') for kv in m.group(2).split())
        self.assertGreaterEqual(int(fields['age']), 150)

    def test_concurrent_askers_all_fresh(self):
        before = now_ms()
        a = self.vm.qmp_conn.send('query-balloon', refresh='sync')
        b = self.vm.qmps[0].send('query-balloon', refresh='sync')
        self.vm.hmp_send('info balloon')
        ra = self.vm.qmp_conn.response(a, 10)
        rb = self.vm.qmps[0].response(b, 10)
        line = self.vm.hmp_read(r'^(?:\(qemu\) )*balloon: .*').group(0)
        self.assertTrue(ra['fresh'] and rb['fresh'], (ra, rb))
        self.assertGreaterEqual(ra['last-update'], before - 5)
        self.assertNotIn('age=', line)
        self.assertIn('free-memory=', line)

    def test_stopped_vm_answers_at_once(self):
        self.vm.qmp('stop')
        try:
            # (a wait for the guest would end in 'timeout')
            r = self.sync(timeout=60000)
            self.assertFalse(r['fresh'])
            self.assertEqual(r['stale-reason'], 'stopped')
            self.assertIn('stats', r)
        finally:
            self.vm.qmp('cont')
        self.assertTrue(self.sync()['fresh'])

    def test_starved_guest_never_answers_others_served(self):
        """The guest's kernel workers are starved, so it never answers: the
        waiter times out with the latest values; meanwhile the other QMP
        monitor and the HMP monitor answer while it waits, and the waiting
        monitor's next request is answered after its balloon reply."""
        vm = self.vm
        last = self.sync()['last-update']
        vm.starve(8)            # (returns once the guest is starved)
        wid = vm.qmp_conn.send('query-balloon', refresh='sync', timeout=4000)
        nid = vm.qmp_conn.send('query-status')
        for _ in range(20):
            self.assertEqual(vm.qmps[0].command('query-status')['status'], 'running')
        vm.hmp_send('info status')
        vm.hmp_read(r'VM status: running', 30)
        # all of it answered before the waiter's reply came
        self.assertFalse(vm.qmp_conn.reply_arrived(), 'other monitors were held up')
        # replies on the waiting monitor keep their order
        r = vm.qmp_conn.response(wid, 30)
        self.assertFalse(r['fresh'])
        self.assertEqual(r['stale-reason'], 'timeout')
        self.assertEqual(r['last-update'], last)
        self.assertGreaterEqual(r['age'], 3900)
        self.assertEqual(vm.qmp_conn.response(nid, 5)['status'], 'running')
        # once the starvation ends the guest answers again
        vm.starved()
        self.assertTrue(self.sync()['fresh'])

    def test_upstream_polling_alongside(self):
        vm = self.vm
        vm.qom_set(BALLOON, 'guest-stats-polling-interval', 1)
        try:
            first = vm.qom_get(BALLOON, 'guest-stats')['last-update']
            for _ in range(20):
                self.assertTrue(self.sync()['fresh'])
            # the polling timer survives on-demand traffic
            self.assertEqual(vm.qom_get(BALLOON, 'guest-stats-polling-interval'), 1)
            wait_until(lambda: vm.qom_get(BALLOON, 'guest-stats')['last-update'] > first,
                       5, 0.2, 'upstream guest-stats to advance')
            qom = vm.qom_get(BALLOON, 'guest-stats')['stats']
            self.assertEqual(qom['stat-total-memory'], vm.meminfo()['MemTotal'])
        finally:
            vm.qom_set(BALLOON, 'guest-stats-polling-interval', 0)
        # with polling off, on-demand still works
        self.assertTrue(self.sync()['fresh'])

    def test_bad_arguments(self):
        from ocvm import QMPError
        for args in [dict(refresh='sync', timeout=0), dict(refresh='sync', timeout=60001),
                     dict(refresh='none', timeout=5), dict(timeout=100),
                     dict(refresh='bogus'), dict(refresh='sync', timeout='x'),
                     dict(refresh=1)]:
            with self.assertRaises(QMPError, msg=args) as cm:
                self.vm.qmp('query-balloon', args)
            self.assertEqual(cm.exception.cls, 'GenericError')
        # the monitor keeps working
        self.assertTrue(self.sync(timeout=60000)['fresh'])


if __name__ == '__main__':
    unittest.main()
