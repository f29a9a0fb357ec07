#!/usr/bin/python3
"""qemu-oc-balloond saves every VM of a real memory cgroup under a squeeze.

Three Debian TCG guests of 1024 MiB run with their QEMUs in one memory
cgroup of this machine (occgroup.MemCgroup, created under the test's own
memory cgroup and removed after) limited to 1600 MiB: what the guests
really need fits, what their QEMUs hold does not.  Two guests hold 400 MiB
and free it (idle, but their QEMUs still hold it); then the third
allocates, gradually (100 MiB every 3.5 s up to 700 MiB) or in one burst
(600 MiB at once), once the daemon has restored its reserve (its own
metrics say so).  Without a daemon the kernel OOM-kills a QEMU
(test_squeeze_cgroup.py shows it); here the daemon runs with its defaults,
finds the cgroup from each VM's QEMU process, and:

- no QEMU dies and the cgroup counts no OOM kill;
- the idle guests' balloons go down (domain-short decisions) and their
  QEMUs' RSS falls;
- the allocating guest is not shrunk while it allocates; if the brake
  pauses it (the burst), it pauses only that guest, and resumes it;
- killed (SIGKILL) and started again in the middle of the gradual
  squeeze, the daemon picks up where it was and nobody dies;
- the daemon's own oom_score_adj is -900 (or, without CAP_SYS_RESOURCE,
  the daemon says it could not lower it).

The host's memory is simulated as plentiful (--host-meminfo), so the
cgroup is the only thing short.  Numbers go to stderr.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import occgroup
from balloondctl import free_port, metrics, sample
import squeeze
from ocvm import VM, VMTestCase, wait_until

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DAEMON = os.environ.get('QEMU_OC_BALLOOND',
                        os.path.join(TOP, 'build', 'tools', 'qemu-oc-balloond'))

MIB = 1 << 20
LIMIT_MIB = 1600
GUEST_MIB = 1024
IDLE_MIB = 400
BURST_MIB = 600
NAMES = ('g0', 'g1', 'g2')


def log(fmt, *args):
    sys.stderr.write('squeeze: ' + (fmt % args) + '\n')
    sys.stderr.flush()


def has_sys_resource():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('CapEff:'):
                return bool(int(line.split()[1], 16) >> 24 & 1)
    return False


class Daemon:
    """The daemon on the guests' QMP sockets; its JSON log and stderr."""

    def __init__(self, tmp, qmp_dir, tag='', args=()):
        self.json = os.path.join(tmp, 'decisions%s.jsonl' % tag)
        self.err_path = os.path.join(tmp, 'balloond%s.log' % tag)
        meminfo = os.path.join(tmp, 'meminfo')
        with open(meminfo, 'w') as f:
            f.write('MemTotal: 64000000 kB\nMemFree: 60000000 kB\n'
                    'MemAvailable: 60000000 kB\n')
        self.err = open(self.err_path, 'w')
        self.port = free_port()
        self.proc = subprocess.Popen(
            [DAEMON, '--qmp-dir', qmp_dir, '--interval', '0.5',
             '--host-meminfo', meminfo, '--log-json', self.json,
             '--metrics', '127.0.0.1:%d' % self.port] + list(args),
            stderr=self.err)

    def domain(self, path):
        """(headroom, reserve) of the memory domain at @path, bytes, from
        the daemon's metrics; None before it has read it"""
        try:
            text = metrics(self.port)
        except OSError:
            return None
        headroom = sample(text, 'qemu_oc_domain_headroom_bytes', domain=path)
        reserve = sample(text, 'qemu_oc_domain_memory_bytes', domain=path,
                         kind='reserve')
        return None if headroom is None or reserve is None else (headroom, reserve)

    def text(self):
        with open(self.err_path) as f:
            return f.read()

    def decisions(self, vm=None):
        if not os.path.exists(self.json):
            return []
        with open(self.json) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        return [r for r in rows if 'reason' in r and (vm is None or r['vm'] == vm)]

    def brakes(self):
        """The brake's log lines (applied, released)"""
        if not os.path.exists(self.json):
            return []
        with open(self.json) as f:
            return [r for r in map(json.loads, filter(str.strip, f))
                    if 'brake' in r]

    def decisions_text(self):
        """The balloon changes it decided, a line each"""
        return '\n'.join('%6d ms %s %s %d->%d (stats age %d ms) %s' % (
            x['time-ms'] % 1000000, x['vm'], x['reason'], x['current-mib'],
            x['target-mib'], x['stats-age-ms'], x['action'])
            for x in self.decisions() if x['target-mib'] != x['current-mib'])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
        self.err.close()


class BalloondSqueezeTest(VMTestCase):

    def setUp(self):
        super().setUp()
        if not os.access(DAEMON, os.X_OK):
            self.fail('%s is not built (make build)' % DAEMON)
        reason = occgroup.reason_unavailable(LIMIT_MIB)
        if reason:
            self.skipTest('needs a memory cgroup: ' + reason)
        self.tmp = tempfile.TemporaryDirectory(prefix='balloond-squeeze-')
        self.addCleanup(self.tmp.cleanup)
        self.qmp_dir = os.path.join(self.tmp.name, 'qmp')
        os.mkdir(self.qmp_dir)
        self.cg = occgroup.MemCgroup('balloond', LIMIT_MIB)
        self.addCleanup(self.cg.remove)     # last: after the VMs' exit

    def boot(self):
        vms = []
        for name in NAMES:
            sock = os.path.join(self.qmp_dir, name)
            vm = VM(smp=1, memory=GUEST_MIB, boot_timeout=120,
                    wrapper=[self.cg.wrapper()],
                    args=['-qmp', 'unix:%s,server=on,wait=off' % sock])
            vm.__enter__()
            self.addCleanup(vm.__exit__, None, None, None)
            vms.append(vm)
        self.assertEqual(sorted(self.cg.pids()), sorted(vm.proc.pid for vm in vms))
        return vms

    def start_daemon(self, vms, tag='', args=()):
        d = Daemon(self.tmp.name, self.qmp_dir, tag, args)
        self.addCleanup(d.stop)
        # every VM found in the cgroup (a marker of the daemon's), and decided on
        wait_until(lambda: d.text().count('is in 1 memory domain(s)') == 3, 60, 0.2,
                   message='the daemon did not place the three QEMUs in the '
                   'cgroup: %s' % d.text()[-2000:])
        self.assertIn('watching memory domain %s' % os.path.realpath(self.cg.path),
                      d.text())
        with open('/proc/%d/oom_score_adj' % d.proc.pid) as f:
            adj = f.read().strip()
        if has_sys_resource():
            self.assertEqual(adj, '-900')
        else:
            # lowering it needs CAP_SYS_RESOURCE (this sandbox's root lacks
            # it): the daemon must say so, not fail silently
            log('no CAP_SYS_RESOURCE: oom_score_adj stays %s', adj)
            self.assertIn('oom_score_adj: Permission denied', d.text())
        return d

    def restart_once_it_acts(self, d, vms, out, args):
        """In a thread: once @d has set a balloon for the cgroup, kill it
        (SIGKILL: no goodbye) and start another one, in out[0]."""
        def acted():
            return any(x['reason'] == 'domain-short' and x['action'] == 'set'
                       for x in d.decisions())

        def run():
            try:
                wait_until(acted, 60, 0.05, message='the daemon never acted')
                d.proc.kill()
                d.proc.wait(10)
                out.append(self.start_daemon(vms, '-restarted', args))
            except Exception as e:      # reported by the test, not lost
                out.append(e)
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    def squeeze(self, load, restart=False, args=()):
        """Free in g0 and g1, start the daemon, then load() on g2 (with
        @restart: the daemon killed and started again once it acts)."""
        vms = self.boot()
        for vm in vms[:2]:
            log('%s', squeeze.idle_then_free(vm, IDLE_MIB).summary())
        held = [squeeze.qemu_rss(vm) for vm in vms]
        kills = self.cg.oom_kills()
        d = self.start_daemon(vms, args=args)
        # a daemon that has been running: the reserve restored from the
        # idle guests (its own figures say so) before the load comes
        where = os.path.realpath(self.cg.path)

        def restored():
            got = d.domain(where)
            return got and got[0] >= got[1]
        wait_until(restored, 60, 0.2, message='the daemon did not restore '
                   'the reserve: %s' % (d.domain(where),))
        log('reserve restored: headroom %d MiB, reserve %d MiB',
            *(int(x) // MIB for x in d.domain(where)))
        watch = squeeze.Watch(self.cg, vms)
        watch.start()
        self.addCleanup(watch.stop)
        restarted = []
        if restart:
            thread = self.restart_once_it_acts(d, vms, restarted, args)
        # what the daemons did, on the test's log whatever happens
        self.addCleanup(lambda: [log('%s', dd.decisions_text())
                                 for dd in [d] + restarted
                                 if not isinstance(dd, Exception)])
        r = load(vms[2])
        # (wall clock, as the daemon's decisions are stamped)
        load_held_ms = time.time() * 1000
        if restart:
            thread.join(120)
            self.assertEqual(len(restarted), 1, 'no restart')
            if isinstance(restarted[0], Exception):
                raise restarted[0]
            d2 = restarted[0]
            # the second daemon took over from the balloons where the first
            # one left them (its first decision on each idle guest starts
            # below its boot size), and grew nobody during the squeeze.  It
            # asks for more only if the domain is still short: the first
            # daemon's asks may already cover the whole load
            rows = [x for x in d2.decisions() if x['vm'] in NAMES[:2]]
            first = {}
            for x in rows:
                if x['current-mib'] > 0:    # (0: its balloon not read yet)
                    first.setdefault(x['vm'], x)
            self.assertEqual(sorted(first), list(NAMES[:2]),
                             'the restarted daemon did not decide on both idle guests')
            for name, x in first.items():
                self.assertLess(x['current-mib'], 1024, 'not picked up: %r' % x)
            # a command that grows (a decision that only asks for fresh
            # statistics grows nothing), during the squeeze: until the load
            # held all it asked for (a slow run may restart the daemon
            # after the domain recovered, where growing an idle guest back
            # is right)
            grew = [x for x in rows if x['target-mib'] > x['current-mib']
                    and x['action'] == 'set'
                    and x['time-ms'] <= load_held_ms]
            self.assertEqual(grew, [], 'the restarted daemon grew a VM '
                             'during the squeeze')
            gave = [x for x in rows if x['reason'] == 'domain-short'
                    and x['action'] == 'set']
            log('restarted daemon: first decisions at %s MiB, %d domain-short '
                'commands', ' / '.join(str(first[n]['current-mib']) for n in NAMES[:2]),
                len(gave))
        log('%s', r.summary())
        watch.stop()
        log('%s', watch.summary())
        daemons = [d] + restarted
        for i, name in enumerate(NAMES):
            rows = [x for dd in daemons for x in dd.decisions(name)]
            log('%s: QEMU RSS %d -> %d MiB; decisions: %s', name, held[i] // MIB,
                (squeeze.qemu_rss(vms[i]) or 0) // MIB,
                ', '.join('%s %d->%d' % (x['reason'], x['current-mib'],
                                         x['target-mib'])
                          for x in rows if x['target-mib'] != x['current-mib']))
        # nobody died
        self.assertIsNone(r.qemu_exit, r.error)
        self.assertEqual(watch.deaths, {})
        self.assertEqual(self.cg.oom_kills(), kills)
        self.assertEqual(r.held_mib, r.mib)
        # the idle guests gave: the daemon shrank them for the cgroup, and
        # their QEMUs hold less than after the frees
        for i in (0, 1):
            gave = [x for dd in daemons for x in dd.decisions(NAMES[i])
                    if x['reason'] == 'domain-short'
                    and x['target-mib'] < x['current-mib']]
            self.assertTrue(gave, 'the daemon never shrank %s' % NAMES[i])
        given = sum(held[i] - (squeeze.qemu_rss(vms[i]) or held[i]) for i in (0, 1))
        self.assertGreater(given, 0)
        log('idle guests gave %d MiB of RSS; cgroup peak %d of %d MiB',
            given // MIB, watch.peak_usage // MIB, LIMIT_MIB)
        return vms, daemons, r

    def assert_not_shrunk_after(self, daemons, r, held_s):
        """No shrink of g2 decided on a report the guest made after it held
        its first allocation (@held_s after r.start): from then on its
        demand is known, and the idle guests have enough to give."""
        wall = time.time() - time.monotonic()
        held_ms = (wall + r.start + held_s) * 1000
        shrunk = [x for d in daemons for x in d.decisions('g2')
                  if x['target-mib'] < x['current-mib'] and x['action'] == 'set'
                  and x['time-ms'] - x['stats-age-ms'] > held_ms]
        self.assertEqual(shrunk, [])

    def test_gradual(self):
        vms, d, r = self.squeeze(
            lambda vm: squeeze.gradual(vm, 100, 3.5, 700), restart=True)
        self.assert_not_shrunk_after(d, r, r.steps[0][0])
        self.assertEqual(vms[2].shell('echo alive'), 'alive')

    def test_burst(self):
        # a TCG guest inflates its balloon at 50 to 100 MiB/s, and the
        # burst takes its 600 MiB at 160 to 550 MiB/s, more than the
        # default reserve (320 MiB): what the balloons cannot bring in
        # time, the brake holds back (test_balloond_brake.py shows it
        # deterministically).  The daemon's defaults
        vms, d, r = self.squeeze(lambda vm: squeeze.burst(vm, BURST_MIB))
        brakes = [x for dd in d for x in dd.brakes()]
        log('brakes: %s', brakes)
        # a brake ends with a resume, and never holds an idle guest
        self.assertEqual([b for b in brakes if b['vm'] != 'g2'], [])
        self.assertEqual(len([b for b in brakes if b['brake'] == 'applied']),
                         len([b for b in brakes if b['brake'] != 'applied']))
        self.assert_not_shrunk_after(d, r, r.seconds)
        self.assertEqual(vms[2].shell('echo alive'), 'alive')


if __name__ == '__main__':
    import unittest
    unittest.main()
