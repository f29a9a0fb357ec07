#!/usr/bin/python3
"""A guest near its own OOM, with Debian 13's cloud kernel (Linux 6.12): its
virtio-balloon driver reports the statistics tags 10 to 15 (oom-kills,
alloc-stalls, async-scans, direct-scans, async-reclaims, direct-reclaims)
that Debian 12's 6.1 does not; a guest whose balloon leaves it less than
its programs touch meets its own OOM killer, and the statistics say so; and
qemu-oc-balloond, on a host under (simulated) pressure that makes it shrink
the guest while it is idle, never shrinks it on a report where its OOM
kills or allocation stalls rose, and gives it memory back (guest-pressure);
nor between two of its OOM kills while it meets them over and over.

The guest's own markers (/proc/vmstat oom_kill, dmesg) and the
BALLOON_STATS events of the daemon's refreshes (which every QMP monitor
gets, so the test sees each report the daemon decides on: a decision's
time-ms minus its stats-age-ms is its report's last-update) drive it; it
never sleeps for a guess.

The guest is build/guest-trixie (make guest-trixie):
    QEMU_OC_GUEST_TRIXIE  its directory (default: guest-trixie next to
                          QEMU_OC_GUEST's directory, i.e. build/guest-trixie)
    QEMU_OC_BINARY, QEMU_OC_GUEST as for every real-guest test (ocvm.py)
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import ocvm
from balloondctl import meminfo
from ocvm import VM, VMTestCase, wait_until

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DAEMON = os.environ.get('QEMU_OC_BALLOOND',
                        os.path.join(TOP, 'build', 'tools', 'qemu-oc-balloond'))
TRIXIE = os.environ.get('QEMU_OC_GUEST_TRIXIE') or os.path.join(
    os.path.dirname(os.path.abspath(ocvm.GUEST)), 'guest-trixie')
# every VM of this file boots the 6.12 guest
ocvm.GUEST = TRIXIE

MIB = 1 << 20
NEW_TAGS = ('oom-kills', 'alloc-stalls', 'async-scans', 'direct-scans',
            'async-reclaims', 'direct-reclaims')
OLD_TAGS = ('swap-in', 'swap-out', 'major-faults', 'minor-faults',
            'free-memory', 'total-memory', 'available-memory', 'disk-caches',
            'hugetlb-allocations', 'hugetlb-failures')
# the guest's /proc/vmstat counters behind tags 10..15 (Linux's
# virtio_balloon.c update_balloon_vm_stats(); allocstall_* summed)
VMSTAT = {'oom-kills': ('oom_kill',), 'async-scans': ('pgscan_kswapd',),
          'direct-scans': ('pgscan_direct',), 'async-reclaims': ('pgsteal_kswapd',),
          'direct-reclaims': ('pgsteal_direct',)}
PLENTY = 8000000      # simulated host MemAvailable, kB
SHORT = 400000        # ... under the default host-low-avail-pct (10 % of 16 GB)
SQUEEZED = 200        # MiB the test's balloon leaves the guest
HOLD = 300            # MiB a distressed guest's program touches
MAX_OOMS = 20         # OOM kills the distress lasts at most


def require_guest():
    for f in ('vmlinuz', 'initramfs.gz'):
        if not os.path.exists(os.path.join(TRIXIE, f)):
            raise AssertionError('no Debian 13 test guest in %s: run make guest-trixie'
                                 % TRIXIE)


def vmstat(vm):
    out = {}
    for line in vm.read_file('/proc/vmstat').splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    out['allocstall'] = sum(v for k, v in out.items() if k.startswith('allocstall_'))
    return out


def squeeze(vm, mib):
    """Set the balloon so the guest has mib MiB; wait until it has."""
    vm.qmp('balloon', value=mib * MIB)
    wait_until(lambda: vm.qmp('query-balloon')['actual'] == mib * MIB, 60, 0.2,
               'the balloon to leave the guest %d MiB' % mib)


def overcommit(vm):
    # the default heuristic refuses one allocation larger than the guest's
    # RAM: with 1, oc-load gets its memory and the OOM killer meets it
    vm.shell('echo 1 > /proc/sys/vm/overcommit_memory')


def detached(vm, command):
    """Run command in the guest's background, its parent init, not the
    shell (a shell whose own background job ends is restarted by init)."""
    vm.shell('( ( %s ) </dev/null >/dev/null 2>&1 & )' % command)


class GuestStatsTest(VMTestCase):
    """The 6.12 guest's statistics, then its own OOM (no daemon)."""

    @classmethod
    def setUpClass(cls):
        require_guest()
        cls.vm = VM(smp=1, memory=512)
        cls.vm.start()

    @classmethod
    def tearDownClass(cls):
        cls.vm.__exit__(None, None, None)

    def sync(self):
        r = self.vm.qmp('query-balloon', {'refresh': 'sync'})
        self.assertTrue(r['fresh'], r)
        return r['stats']

    def test_a_reports_tags_10_to_15(self):
        release = self.vm.shell('uname -r')
        self.assertTrue(release.startswith('6.12.'), release)
        st = self.sync()
        print('  %s: %s' % (release, ' '.join('%s=%d' % (k, st[k]) for k in NEW_TAGS)))
        self.assertEqual(set(st), set(OLD_TAGS) | set(NEW_TAGS))
        for name in NEW_TAGS + OLD_TAGS:
            self.assertIsInstance(st[name], int, name)
            self.assertGreaterEqual(st[name], 0, name)
        # the same counters as the guest's own /proc/vmstat (read after:
        # counters only grow)
        vs = vmstat(self.vm)
        for name, keys in VMSTAT.items():
            self.assertLessEqual(st[name], sum(vs[k] for k in keys), name)
        self.assertLessEqual(st['alloc-stalls'], vs['allocstall'])

    def test_b_own_oom_shows_in_the_stats(self):
        vm = self.vm
        overcommit(vm)
        squeeze(vm, SQUEEZED)
        try:
            before_vs = vmstat(vm)
            before = self.sync()
            print('  balloon leaves %d MiB: guest total %d MiB, available %d MiB'
                  % (SQUEEZED, before['total-memory'] // MIB,
                     before['available-memory'] // MIB))
            self.assertLess(before['available-memory'], HOLD * MIB)
            t0 = time.monotonic()
            detached(vm, 'oc-load hold %d' % HOLD)
            # the marker: the guest's own OOM kill counter
            wait_until(lambda: vmstat(vm)['oom_kill'] > before_vs['oom_kill'], 60, 0.2,
                       'the guest\'s OOM killer (/proc/vmstat oom_kill)')
            t_oom = time.monotonic() - t0
            self.assertRegex(vm.shell('dmesg'),
                             r'Out of memory: Killed process \d+ \(oc-load\)')
            wait_until(lambda: not vm.shell('pidof oc-load', check=False), 30, 0.2,
                       'oc-load gone')
            vs = vmstat(vm)
            after = self.sync()
            print('  OOM kill %.1f s after oc-load hold %d: %s'
                  % (t_oom, HOLD, ' '.join('%s %d->%d' % (k, before[k], after[k])
                                           for k in NEW_TAGS)))
            self.assertGreater(after['oom-kills'], before['oom-kills'])
            self.assertEqual(after['oom-kills'], vs['oom_kill'])
            self.assertGreaterEqual(after['alloc-stalls'], before['alloc-stalls'])
            self.assertGreaterEqual(after['alloc-stalls'], vs['allocstall'])
            # the guest reclaimed before it killed
            self.assertGreater(after['alloc-stalls'] + after['direct-scans'] +
                               after['async-scans'],
                               before['alloc-stalls'] + before['direct-scans'] +
                               before['async-scans'])
            self.assertEqual(vm.shell('echo alive'), 'alive')
        finally:
            vm.qmp('balloon', value=512 * MIB)


class Reports:
    """The guest's statistics reports, as the daemon gets them: the
    BALLOON_STATS events of its refreshes, which QEMU sends to every QMP
    monitor (so to the test's own too), by last-update."""

    def __init__(self, vm):
        self.vm = vm
        self.list = []          # (last-update, stats, actual MiB), in order

    def collect(self):
        self.vm.qmp('query-status')       # reads what is queued
        events = self.vm.qmp_conn.events
        for ev in [e for e in events if e['event'] == 'BALLOON_STATS']:
            d = ev['data']
            self.list.append((d['last-update'], d['stats'], d['actual'] // MIB))
        events[:] = [e for e in events if e['event'] != 'BALLOON_STATS']
        return self.list

    def rose(self, update_ms):
        """For the report of update_ms: (index, what rose since the one
        before, both reports), or None if the report is not known."""
        for i, (t, st, _) in enumerate(self.list):
            if t == update_ms:
                if i == 0:
                    return i, [], None, st
                prev = self.list[i - 1][1]
                return i, [k for k in ('oom-kills', 'alloc-stalls')
                           if st.get(k, 0) > prev.get(k, 0)], prev, st
        return None


class DaemonDistressTest(VMTestCase):
    """qemu-oc-balloond and a guest meeting its own OOM killer over and
    over, on a host under pressure: one run (setUpClass), whose decisions
    the tests check."""

    @classmethod
    def setUpClass(cls):
        require_guest()
        if not os.access(DAEMON, os.X_OK):
            raise AssertionError('%s is not built (make build)' % DAEMON)
        cls.tmp = tempfile.TemporaryDirectory(prefix='distress-')
        cls.proc = None
        try:
            cls.run_distress()
        except BaseException:
            cls.print_daemon()
            cls.tearDownClass()
            raise

    @classmethod
    def check_daemon(cls):
        if cls.proc.poll() is not None:
            raise AssertionError('qemu-oc-balloond exited with %d'
                                 % cls.proc.returncode)

    @classmethod
    def print_daemon(cls):
        for name in ('balloond.log', 'decisions.jsonl'):
            try:
                with open(os.path.join(cls.tmp.name, name)) as f:
                    tail = f.read().splitlines()[-30:]
            except OSError:
                continue
            sys.stderr.write('--- %s (last %d lines) ---\n%s\n'
                             % (name, len(tail), '\n'.join(tail)))

    @classmethod
    def tearDownClass(cls):
        if cls.proc and cls.proc.poll() is None:
            cls.proc.send_signal(signal.SIGTERM)
            cls.proc.wait(10)
        cls.tmp.cleanup()

    @classmethod
    def lines(cls):
        if not os.path.exists(cls.log):
            return []
        with open(cls.log) as f:
            return [json.loads(x) for x in f if x.strip()]

    @classmethod
    def decisions(cls, since_ms=0, **match):
        return [x for x in cls.lines() if 'reason' in x and x['time-ms'] >= since_ms
                and all(x.get(k) == v for k, v in match.items())]

    @classmethod
    def run_distress(cls):
        tmp = cls.tmp.name
        qmpdir = os.path.join(tmp, 'qmp')
        os.mkdir(qmpdir)
        cls.log = os.path.join(tmp, 'decisions.jsonl')
        host = os.path.join(tmp, 'meminfo')
        conf = os.path.join(tmp, 'balloond.conf')
        with open(conf, 'w') as f:
            # steps of 10 % (about 20 MiB here) over a 8 MiB hysteresis;
            # the floor below the squeeze, so the daemon can shrink it
            f.write('[policy]\nfloor-mib = 128\nstep-mib = 64\nstep-pct = 10\n'
                    'hysteresis-mib = 8\n')
        # the host turns short once the daemon runs (so the daemon sees
        # the guest before the squeeze; starting short crashed it once:
        # fixed, and checked by check_daemon below)
        meminfo(host, PLENTY)
        sock = os.path.join(qmpdir, 'g0')
        with VM(smp=1, memory=512,
                args=['-qmp', 'unix:%s,server=on,wait=off' % sock]) as vm:
            overcommit(vm)
            squeeze(vm, SQUEEZED)
            reports = cls.reports = Reports(vm)
            reports.collect()
            stderr = os.path.join(tmp, 'balloond.log')
            with open(stderr, 'w') as err:
                cls.proc = subprocess.Popen(
                    [DAEMON, '--qmp-dir', qmpdir, '--host-meminfo', host,
                     '--config', conf, '--log-json', cls.log, '--interval', '0.5',
                     '--no-protect'], stderr=err)

            def started():
                cls.check_daemon()
                with open(stderr) as f:
                    return 'started' in f.read()

            wait_until(started, 10, 0.05, 'the daemon to start')
            meminfo(host, SHORT)

            # the host is short and the idle guest has memory to spare: the
            # daemon shrinks it
            def shrunk():
                cls.check_daemon()
                return [x for x in cls.decisions(vm='g0', reason='host-pressure')
                        if x['target-mib'] < x['current-mib']]

            shrink = wait_until(shrunk, 30, 0.2,
                                'the daemon to shrink the idle guest (host-pressure)')[0]
            print('  idle guest under host pressure: %d -> %d MiB'
                  % (shrink['current-mib'], shrink['target-mib']))

            # now it meets its own OOM killer, over and over: oc-load
            # HOLD MiB, again as soon as it is killed
            cls.t_start = int(time.time() * 1000)
            oom0 = vmstat(vm)['oom_kill']
            detached(vm, 'while [ ! -e /tmp/oc-stop ]; do oc-load hold %d; done' % HOLD)
            wait_until(lambda: vmstat(vm)['oom_kill'] > oom0, 60, 0.2,
                       'the guest\'s OOM killer (/proc/vmstat oom_kill)')

            # it gets memory back until its program fits (oc-load holds
            # its HOLD MiB and is no longer killed), or MAX_OOMS kills
            def progress():
                cls.check_daemon()
                reports.collect()
                out = vm.shell('grep oom_kill /proc/vmstat; for p in $(pidof oc-load); '
                               'do grep VmRSS /proc/$p/status; done', check=False)
                if any(int(m) >= HOLD * 1024
                       for m in re.findall(r'VmRSS:\s+(\d+)', out)):
                    return 'fit'
                kills = re.search(r'oom_kill (\d+)', out)
                if kills and int(kills.group(1)) - oom0 >= MAX_OOMS:
                    return 'cap'
                return None

            cls.outcome = wait_until(progress, 120, 0.3, 'oc-load to hold its %d MiB '
                                     'or %d OOM kills' % (HOLD, MAX_OOMS))
            cls.t_end = int(time.time() * 1000)
            cls.ooms = vmstat(vm)['oom_kill'] - oom0
            vm.shell('touch /tmp/oc-stop; killall oc-load; true')
            wait_until(lambda: not vm.shell('pidof oc-load', check=False), 30, 0.2,
                       'oc-load gone')
            reports.collect()
        cls.check_daemon()
        cls.proc.send_signal(signal.SIGTERM)
        cls.proc.wait(10)

        # every decision from the load's start until the program fits,
        # with the report it was made on
        cls.window = []
        for x in cls.decisions(cls.t_start, vm='g0'):
            if x['time-ms'] > cls.t_end:
                break
            update = x['time-ms'] - x['stats-age-ms']
            cls.window.append((x, update, reports.rose(update)))
        # the distress: from the first report with an OOM kill on
        first = [t for t, st, _ in reports.list
                 if t >= cls.t_start and reports.rose(t)[1].count('oom-kills')]
        cls.t_first_oom = first[0] if first else None
        cls.t_last_oom = first[-1] if first else None
        print('  %d OOM kills in %.1f s, %s; the decisions (ms from the load\'s start):'
              % (cls.ooms, (cls.t_end - cls.t_start) / 1e3,
                 'then the program fit' if cls.outcome == 'fit'
                 else 'the program never fit'))
        for x, update, r in cls.window:
            print('  %6d %-14s %3d -> %3d MiB  avail %5.1f%%  report %+6d ms  rose: %s'
                  % (x['time-ms'] - cls.t_start, x['reason'], x['current-mib'],
                     x['target-mib'], x['guest-available-pct'],
                     update - cls.t_start, ','.join(r[1]) if r else '?'))

    def shrinks(self, since_ms=0, until_ms=None):
        return [(x, r) for x, update, r in self.window
                if x['target-mib'] < x['current-mib'] and update >= since_ms
                and (until_ms is None or update <= until_ms)]

    def test_c1_never_shrunk_on_a_report_where_ooms_or_stalls_rose(self):
        # the rule: a guest whose OOM kills or allocation stalls went up
        # between its last two reports is under pressure (never shrunk)
        bad = [(x, r) for x, r in self.shrinks() if r is None or r[1]]
        if bad:
            self.fail('shrunk on a report where OOM kills or allocation stalls '
                      'rose (or on a report not seen):\n' + self.explain(bad))

    def test_c2_gets_memory_back(self):
        grew = [x for x, _, r in self.window if x['reason'] == 'guest-pressure'
                and x['target-mib'] > x['current-mib'] and r and r[1]]
        self.assertTrue(grew, 'no guest-pressure growth on a report with OOM '
                        'kills or allocation stalls')
        size0 = grew[0]['current-mib']
        sent = [x for x in self.lines() if x.get('vm') == 'g0' and 'sent-mib' in x
                and self.t_start <= x['time-ms'] <= self.t_end]
        self.assertTrue(any(x['ok'] and x['sent-mib'] > size0 for x in sent), sent)

    def test_c3_never_shrunk_between_its_oom_kills(self):
        # a guest that is meeting its OOM killer over and over is near its
        # own OOM all along, also on the reports between two kills
        self.assertIsNotNone(self.t_first_oom, 'no report with an OOM kill')
        bad = self.shrinks(self.t_first_oom, self.t_last_oom)
        if bad:
            self.fail('%d shrinks between its first and last OOM kill (%d kills in '
                      '%.1f s, %s); the first ones:\n%s'
                      % (len(bad), self.ooms, (self.t_end - self.t_start) / 1e3,
                         'then the program fit' if self.outcome == 'fit'
                         else 'the program never fit', self.explain(bad)))

    @staticmethod
    def explain(bad, most=8):
        """The decision lines, each with the report it was made on."""
        out = []
        for x, r in bad[:most]:
            if r is None:
                seen = 'report not seen'
            else:
                seen = 'report: oom-kills %d, alloc-stalls %d; the one before: %s' % (
                    r[3]['oom-kills'], r[3]['alloc-stalls'],
                    '%d, %d' % (r[2]['oom-kills'], r[2]['alloc-stalls']) if r[2] else '-')
            out.append('%s  (%s)' % (json.dumps(x, sort_keys=True), seen))
        return '\n'.join(out)


if __name__ == '__main__':
    unittest.main()
