#!/usr/bin/python3
"""qemu-oc-balloond's brake, in a real memory cgroup, against fake VMs
whose guest RAM is real (fake_qmp.py with fake_ram.py).

Three fake VMs of 1024 MiB run in one memory cgroup of this machine
limited to 1200 MiB (created under the test's own, removed after): two
hold 400 MiB of page cache each that their balloons give back at only
20 MiB/s each, and the third then takes 500 MiB at 200 MiB/s, faster
than the balloons can follow.  What they need fits in the limit; what
they hold does not, and the balloons alone come too late: about 340 MiB
of headroom and 100 MiB of relief in the 2.5 s of the burst.  The daemon
(its defaults):

- pauses the bursting VM (QMP stop) and only it, while the others'
  balloons come, resumes it (cont), and nobody dies: no OOM kill in the
  cgroup, every fake alive, the burst held in full;
- stopped (SIGTERM) while it holds a VM paused, resumes it first;
- killed (SIGKILL) while it holds one, leaves its name in --state-file,
  and the next daemon resumes it (even with the brake turned off).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile

import occgroup
from balloondctl import free_port, meminfo, metrics, sample
from ocvm import QMP, VMTestCase, wait_until

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DAEMON = os.environ.get('QEMU_OC_BALLOOND',
                        os.path.join(TOP, 'build', 'tools', 'qemu-oc-balloond'))
FAKE = os.path.join(TOP, 'tests', 'tools', 'fake_qmp.py')

MIB = 1 << 20
LIMIT_MIB = 1200
CACHE_MIB = 400
BURST_MIB = 500


def log(fmt, *args):
    sys.stderr.write('brake: ' + (fmt % args) + '\n')
    sys.stderr.flush()


class BrakeTest(VMTestCase):

    def setUp(self):
        super().setUp()
        if not os.access(DAEMON, os.X_OK):
            self.fail('%s is not built (make build)' % DAEMON)
        reason = occgroup.reason_unavailable(LIMIT_MIB)
        if reason:
            self.skipTest('needs a memory cgroup: ' + reason)
        self.tmp = tempfile.TemporaryDirectory(prefix='balloond-brake-')
        self.addCleanup(self.tmp.cleanup)
        self.qmp_dir = os.path.join(self.tmp.name, 'qmp')
        os.mkdir(self.qmp_dir)
        self.meminfo = os.path.join(self.tmp.name, 'meminfo')
        meminfo(self.meminfo, 60000000, 64000000)
        self.go = os.path.join(self.tmp.name, 'go')
        self.cg = occgroup.MemCgroup('brake', LIMIT_MIB)
        self.addCleanup(self.cg.remove)
        self.daemons = []
        self.addCleanup(self.stop_daemons)

    def fakes(self, balloon_mib_s):
        """cache-a, cache-b and burst in the cgroup, ready."""
        common = ['good', '--memory-mib', '1024', '--used-mib', '32',
                  '--lifetime', '300']
        for name in ('cache-a', 'cache-b'):
            self.cg.popen(['/usr/bin/python3', FAKE, os.path.join(self.qmp_dir, name)] +
                          common + ['--touch-mib', str(CACHE_MIB),
                                    '--balloon-mib-s', str(balloon_mib_s)])
        self.burst_log = os.path.join(self.tmp.name, 'burst.log')
        self.burst = self.cg.popen(['/usr/bin/python3', FAKE,
                                    os.path.join(self.qmp_dir, 'burst')] +
                                   common + ['--log', self.burst_log,
                                             '--touch-mib', '16',
                                             '--grow-mib', str(BURST_MIB),
                                             '--grow-mib-s', '200',
                                             '--grow-when', self.go])
        wait_until(lambda: len(os.listdir(self.qmp_dir)) == 3, 30, 0.05,
                   message='the fakes did not listen')

    def daemon(self, tag, config='', args=()):
        conf = os.path.join(self.tmp.name, 'balloond%s.conf' % tag)
        with open(conf, 'w') as f:
            f.write('[policy]\n' + config)
        d = {'port': free_port(),
             'json': os.path.join(self.tmp.name, 'decisions%s.jsonl' % tag),
             'err': os.path.join(self.tmp.name, 'balloond%s.log' % tag)}
        with open(d['err'], 'w') as err:
            d['proc'] = subprocess.Popen(
                [DAEMON, '--qmp-dir', self.qmp_dir, '--interval', '0.5',
                 '--host-meminfo', self.meminfo, '--log-json', d['json'],
                 '--metrics', '127.0.0.1:%d' % d['port'], '--config', conf]
                + list(args), stderr=err)
        self.daemons.append(d)
        # every fake placed in the cgroup, and heard from (the daemon's
        # markers)
        wait_until(lambda: self.text(d).count('is in 1 memory domain(s)') == 3
                   and 'settled:' in self.text(d), 30, 0.1,
                   message='the daemon did not place the fakes in the '
                   'cgroup and settle: %s' % self.text(d)[-2000:])
        return d

    def stop_daemons(self):
        for d in self.daemons:
            if d['proc'].poll() is None:
                d['proc'].kill()
                d['proc'].wait()
            log('daemon log:\n%s', self.text(d)[-3000:])

    @staticmethod
    def text(d):
        with open(d['err']) as f:
            return f.read()

    @staticmethod
    def brakes(d):
        if not os.path.exists(d['json']):
            return []
        with open(d['json']) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        return [(r['vm'], r['brake']) for r in rows if 'brake' in r]

    def status(self, name):
        """The fake's runstate, asked on a connection of our own."""
        s = socket.socket(socket.AF_UNIX)
        s.connect(os.path.join(self.qmp_dir, name))
        q = QMP(s)
        try:
            return q.command('query-status')['status']
        finally:
            q.close()

    def cont_after_stop(self):
        """The burst's fake was sent cont after its last stop."""
        with open(self.burst_log) as f:
            cmds = [line.split()[1] for line in f if line.startswith('command ')]
        return 'stop' in cmds and 'cont' in cmds[len(cmds) - cmds[::-1].index('stop'):]

    def braked(self, d, name):
        try:
            return sample(metrics(d['port']), 'qemu_oc_vm_braked', vm=name) == 1
        except OSError:
            return False

    def start_burst(self, d):
        """Once the domain has its reserve (the daemon's figures), go."""
        where = os.path.realpath(self.cg.path)

        def calm():
            text = metrics(d['port'])
            h = sample(text, 'qemu_oc_domain_headroom_bytes', domain=where)
            r = sample(text, 'qemu_oc_domain_memory_bytes', domain=where,
                       kind='reserve')
            return h is not None and r is not None and h >= r
        wait_until(calm, 30, 0.1, message='the domain is short before the burst')
        self.kills = self.cg.oom_kills()
        open(self.go, 'w').close()

    def burst_rss_mib(self):
        with open('/proc/%d/statm' % self.burst.pid) as f:
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') // MIB

    def test_burst_is_braked_and_nobody_dies(self):
        self.fakes(balloon_mib_s=20)
        d = self.daemon('')
        self.start_burst(d)
        # the burst holds all it asked for: 16 + 400 MiB
        wait_until(lambda: self.burst_rss_mib() >= 16 + BURST_MIB, 120, 0.1,
                   message='the burst never got its memory')
        wait_until(lambda: not self.braked(d, 'burst'), 30, 0.1,
                   message='the burst stayed braked')
        log('brakes: %s; cgroup peak %d of %d MiB', self.brakes(d),
            self.cg.max_usage() // MIB, LIMIT_MIB)
        self.assertEqual(self.cg.oom_kills(), self.kills)
        self.assertEqual(len(self.cg.pids()), 3)
        got = self.brakes(d)
        self.assertIn(('burst', 'applied'), got)
        self.assertEqual([b for b in got if b[0] != 'burst'], [])
        # every pause ended with a resume, and the VM runs (the resume is
        # the VM's worker's next command: it follows)
        self.assertEqual(sum(1 for b in got if b[1] == 'applied'),
                         sum(1 for b in got if b[1] != 'applied'))
        wait_until(lambda: self.status('burst') == 'running', 30, 0.05,
                   message='the released burst was never resumed')
        text = metrics(d['port'])
        self.assertGreaterEqual(sample(text, 'qemu_oc_brakes_total', vm='burst'), 1)
        self.assertEqual(sample(text, 'qemu_oc_brakes_total', vm='cache-a'), 0)

    def hold_braked(self, d):
        """The burst paused by @d (balloons too slow to ever recover)."""
        self.start_burst(d)
        wait_until(lambda: self.braked(d, 'burst'), 60, 0.05,
                   message='the burst was never braked: %s' % self.text(d)[-2000:])
        # (the pause is the VM's worker's next command: it follows)
        wait_until(lambda: self.status('burst') == 'paused', 30, 0.05,
                   message='the braked burst was never paused')

    def test_stopped_daemon_resumes_first(self):
        self.fakes(balloon_mib_s=1)
        d = self.daemon('', 'brake-max-ms = 120000\n')
        self.hold_braked(d)
        d['proc'].send_signal(signal.SIGTERM)
        self.assertEqual(d['proc'].wait(30), 0)
        self.assertIn('brake released (the daemon stops)', self.text(d))
        self.assertEqual(self.status('burst'), 'running')

    def test_killed_daemon_is_undone_by_the_next(self):
        self.fakes(balloon_mib_s=1)
        state = os.path.join(self.tmp.name, 'braked')
        d = self.daemon('', 'brake-max-ms = 120000\n', ['--state-file', state])
        self.hold_braked(d)
        with open(state) as f:
            self.assertEqual(f.read(), 'burst\n')
        d['proc'].kill()
        d['proc'].wait()
        self.assertEqual(self.status('burst'), 'paused')
        d2 = self.daemon('-next', 'brake-max-ms = 0\n', ['--state-file', state])
        # (the fake's own record of the resume: once resumed, the burst
        # grows on, and with this daemon's brake off the squeeze may kill
        # it before anyone could ask it how it runs)
        wait_until(lambda: self.cont_after_stop(), 30, 0.1,
                   message='the next daemon did not resume the burst')
        self.assertIn('burst: resumed: a daemon that stopped left it braked',
                      self.text(d2))
        with open(state) as f:
            self.assertEqual(f.read(), '')


if __name__ == '__main__':
    import unittest
    unittest.main()
