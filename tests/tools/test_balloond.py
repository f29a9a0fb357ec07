#!/usr/bin/python3
"""qemu-oc-balloond against fake QMP peers (guests whose size follows the
balloon) and real TCG guests with small RAM: simulated host pressure
(--host-meminfo) shrinks the guests with free memory within their floors,
a guest that then allocates gets memory back, the end of pressure brings
every guest back to its ceiling; frozen, killed, slow and garbage-sending
VMs are flagged and never shrunk while the others are served;
a restart takes the current sizes (nothing jumps); the metrics pass
promtool and are scraped by a real Prometheus server; bad configuration
is refused."""

import json
import os
import re
import signal
import subprocess
import tempfile
import time
import urllib.request

from balloondctl import free_port, meminfo, metrics, sample
from ocvm import VM, VMTestCase, wait_until

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DAEMON = os.environ.get('QEMU_OC_BALLOOND',
                        os.path.join(TOP, 'build', 'tools', 'qemu-oc-balloond'))
FAKE = os.path.join(TOP, 'tests', 'tools', 'fake_qmp.py')

PLENTY = 8000000      # host MemAvailable, kB
SHORT = 400000


class Daemon:
    def __init__(self, tmp, *args):
        self.log = os.path.join(tmp, 'decisions.jsonl')
        self.port = free_port()
        self.stderr = open(os.path.join(tmp, 'balloond.log'), 'a')
        self.proc = subprocess.Popen(
            [DAEMON, '--log-json', self.log, '--metrics',
             '127.0.0.1:%d' % self.port, '--interval', '0.5'] + list(args),
            stderr=self.stderr)
        wait_until(lambda: self.scrape(), 10, 0.1, 'the metrics endpoint')

    def scrape(self):
        try:
            return metrics(self.port)
        except OSError:
            return None

    def actual_mib(self, vm):
        v = sample(self.scrape() or '', 'qemu_oc_balloon_actual_bytes', vm=vm)
        return None if v is None else int(v) >> 20

    def lines(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [json.loads(line) for line in f if line.strip()]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)
        self.stderr.close()


class BalloondTest(VMTestCase):

    def setUp(self):
        super().setUp()
        if not os.access(DAEMON, os.X_OK):
            self.fail('%s is not built (make build)' % DAEMON)
        self.tmp = tempfile.TemporaryDirectory(prefix='balloond-')
        self.dir = os.path.join(self.tmp.name, 'qmp')
        os.mkdir(self.dir)
        self.meminfo = os.path.join(self.tmp.name, 'meminfo')
        meminfo(self.meminfo, PLENTY)
        self.procs = []
        self.daemons = []

    def tearDown(self):
        for d in self.daemons:
            if d.proc.poll() is None:
                d.stop()
        for p in self.procs:
            p.send_signal(signal.SIGCONT)
            p.kill()
            p.wait()
        self.tmp.cleanup()
        super().tearDown()

    def fake(self, name, memory_mib, used_mib, *args):
        path = os.path.join(self.dir, name)
        p = subprocess.Popen(['/usr/bin/python3', FAKE, path, 'good',
                              '--memory-mib', str(memory_mib),
                              '--used-mib', str(used_mib)] + list(args))
        self.procs.append(p)
        wait_until(lambda: os.path.exists(path), 10, 0.05, 'fake %s' % name)
        return p

    def config(self, text):
        path = os.path.join(self.tmp.name, 'balloond.conf')
        with open(path, 'w') as f:
            f.write(text)
        return path

    def daemon(self, *args):
        d = Daemon(self.tmp.name, '--qmp-dir', self.dir, '--host-meminfo',
                   self.meminfo, *args)
        self.daemons.append(d)
        return d

    def test_pressure_shrinks_then_grows_back(self):
        for name, used in (('a', 300), ('b', 700), ('c', 1100)):
            self.fake(name, 2048, used)
        conf = self.config('[policy]\nfloor-mib = 768\n[vm c]\nfloor-mib = 1536\n')
        d = self.daemon('--config', conf)
        wait_until(lambda: all(d.actual_mib(n) == 2048 for n in 'abc'), 10, 0.2,
                   'every VM at its size')
        meminfo(self.meminfo, SHORT)
        # each gives down to its floor or what its guest needs, never more
        wait_until(lambda: d.actual_mib('a') <= 800 and d.actual_mib('b') <= 1100,
                   30, 0.2, 'the balloons to inflate under host pressure')
        time.sleep(2)
        sizes = {n: d.actual_mib(n) for n in 'abc'}
        print('  under pressure: %s' % sizes)
        self.assertGreaterEqual(sizes['a'], 768)
        self.assertGreaterEqual(sizes['b'], 768)
        self.assertGreaterEqual(sizes['c'], 1536)    # its own floor
        self.assertGreater(sizes['b'], 700 + 24)     # keeps what it uses
        text = d.scrape()
        self.assertEqual(sample(text, 'qemu_oc_host_memory_pressure'), 1)
        self.assertGreater(sample(text, 'qemu_oc_decisions_total', vm='a',
                                  reason='host-pressure'), 0)
        meminfo(self.meminfo, PLENTY)
        wait_until(lambda: all(d.actual_mib(n) == 2048 for n in 'abc'), 60, 0.2,
                   'every VM back at its ceiling')
        # every decision was logged with its reason and inputs
        lines = d.lines()
        reasons = {x['reason'] for x in lines if 'reason' in x}
        self.assertTrue({'host-pressure', 'grow'} <= reasons, reasons)
        sent = [x for x in lines if 'sent-mib' in x]
        self.assertTrue(sent and all(x['ok'] for x in sent))
        self.assertTrue(all(768 <= x['sent-mib'] <= 2048 for x in sent))

    def test_frozen_vm_is_flagged_never_shrunk(self):
        self.fake('a', 2048, 300)
        frozen = self.fake('frozen', 2048, 300)
        d = self.daemon()
        wait_until(lambda: d.actual_mib('frozen') == 2048, 10, 0.2, 'frozen seen')
        frozen.send_signal(signal.SIGSTOP)
        t_freeze = time.time() * 1000
        wait_until(lambda: sample(d.scrape(), 'qemu_oc_vm_responsive', vm='frozen') == 0,
                   15, 0.2, 'the frozen VM flagged unresponsive')
        meminfo(self.meminfo, SHORT)
        wait_until(lambda: d.actual_mib('a') < 1500, 30, 0.2,
                   'the other VM to give memory')
        lines = d.lines()
        self.assertFalse([x for x in lines if x.get('vm') == 'frozen' and
                          x['time-ms'] > t_freeze and x.get('action') == 'set'])
        self.assertTrue([x for x in lines if x.get('vm') == 'frozen' and
                         x.get('reason') == 'unresponsive'])
        self.assertIsNone(d.proc.poll())

    def test_misbehaving_vms_never_delay_the_others(self):
        """Slow, garbage-sending, half-replying, deeply nesting and killed
        VMs beside a good one, each of which had data the policy could
        have shrunk (2 GiB, 300 MiB used) before it turned bad: they are
        flagged and never shrunk, the good VM is decided on and given
        memory back and forth as usual, and the daemon keeps running."""
        self.fake('good', 2048, 300)
        turn = os.path.join(self.tmp.name, 'misbehave')
        misbehaving = ('slow', 'invalid-json', 'close-mid-reply', 'deep-nesting')
        for name in misbehaving:
            path = os.path.join(self.dir, name)
            p = subprocess.Popen(['/usr/bin/python3', FAKE, path, name,
                                  '--memory-mib', '2048', '--used-mib', '300',
                                  '--good-until', turn])
            self.procs.append(p)
            wait_until(lambda: os.path.exists(path), 10, 0.05, 'fake %s' % name)
        killed = self.fake('killed', 2048, 300)
        d = self.daemon()
        bad = misbehaving + ('killed',)
        for name in bad:
            wait_until(lambda: d.actual_mib(name) == 2048, 10, 0.2, '%s seen' % name)
        open(turn, 'w').close()
        killed.kill()
        killed.wait()
        for name in bad:
            wait_until(lambda: sample(d.scrape(), 'qemu_oc_vm_responsive',
                                      vm=name) == 0, 15, 0.2,
                       '%s flagged unresponsive' % name)
        meminfo(self.meminfo, SHORT)
        wait_until(lambda: d.actual_mib('good') < 1500, 30, 0.2,
                   'the good VM to give memory')
        lines = d.lines()
        self.assertFalse([x for x in lines if x.get('vm') in bad and
                          x.get('action') == 'set'])
        text = d.scrape()
        for name in bad:
            self.assertEqual(sample(text, 'qemu_oc_vm_responsive', vm=name), 0, name)
        sent = [x['latency-ms'] for x in lines if x.get('vm') == 'good' and 'sent-mib' in x]
        self.assertTrue(sent)
        # (how fast: bench/balloond.py, with a frozen VM)
        print('  good VM: %d commands, latency max %d ms' % (len(sent), max(sent)))
        self.assertIsNone(d.proc.poll())

    def test_restart_takes_current_sizes(self):
        self.fake('a', 2048, 300)
        d = self.daemon()
        wait_until(lambda: d.actual_mib('a') == 2048, 10, 0.2, 'a seen')
        meminfo(self.meminfo, SHORT)
        wait_until(lambda: d.actual_mib('a') <= 1400, 30, 0.2, 'a to shrink')
        d.stop()
        meminfo(self.meminfo, PLENTY)
        before = len(d.lines())
        d2 = self.daemon()
        wait_until(lambda: len(d2.lines()) > before, 10, 0.2, 'a decision')
        first = d2.lines()[before]
        print('  after restart: %s' % first)
        self.assertLessEqual(first['current-mib'], 1400)
        self.assertLessEqual(abs(first['target-mib'] - first['current-mib']), 256)

    def test_metrics_promtool_and_prometheus(self):
        self.fake('a', 2048, 300)
        self.fake('b"x\\y', 1024, 200)
        self.fake('lhp', 1024, 200, '--kvm', 'lhp')
        self.fake('quiet', 1024, 200, '--kvm', 'quiet')
        d = self.daemon()
        wait_until(lambda: d.actual_mib('a') == 2048, 10, 0.2, 'a seen')
        text = d.scrape()
        p = subprocess.run(['promtool', 'check', 'metrics'], input=text,
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        for family in ('qemu_oc_vm_state_seconds_total', 'qemu_oc_vcpu_state_seconds_total',
                       'qemu_oc_balloon_actual_bytes', 'qemu_oc_guest_memory_bytes',
                       'qemu_oc_guest_stats_age_seconds', 'qemu_oc_vm_responsive',
                       'qemu_oc_decisions_total'):
            self.assertIn(family, text)
        # CPU ready and co-stop over the last interval: the fake's vCPUs
        # are runnable 5 % of the time, the VM in concurrency-hazard 1 %
        ready = wait_until(lambda: sample(d.scrape() or '', 'qemu_oc_vm_ready_ratio',
                                          vm='a'), 10, 0.2, 'a ready ratio')
        self.assertAlmostEqual(float(ready), 0.05, delta=0.002)
        costop = sample(d.scrape(), 'qemu_oc_vm_costop_ratio', vm='a')
        self.assertAlmostEqual(float(costop), 0.01, delta=0.002)
        # lock-holder preemption: suspected where co-stop (8 %) and 100
        # directed yields a second say so, not where they are low (1 %, 1
        # a second); a VM without KVM counters (TCG) has no sample at all
        wait_until(lambda: sample(d.scrape() or '',
                                  'qemu_oc_vm_lock_holder_preemption_suspected',
                                  vm='quiet') is not None, 10, 0.2,
                   'the KVM VMs judged')
        text = d.scrape()
        self.assertEqual(sample(text, 'qemu_oc_vm_lock_holder_preemption_'
                                'suspected', vm='lhp'), 1)
        self.assertEqual(sample(text, 'qemu_oc_vm_lock_holder_preemption_'
                                'suspected', vm='quiet'), 0)
        self.assertIsNone(sample(text, 'qemu_oc_vm_lock_holder_preemption_'
                                 'suspected', vm='a'))
        self.assertGreater(sample(text, 'qemu_oc_vcpu_directed_yields_total',
                                  vm='lhp', vcpu='0', result='attempted'), 0)
        self.assertIsNotNone(sample(text, 'qemu_oc_vcpu_preemptions_total',
                                    vm='lhp', vcpu='1', kind='reported'))
        self.assertNotIn('qemu_oc_vcpu_directed_yields_total{vm="a"', text)
        # a real Prometheus server scrapes it
        web = free_port()
        conf = os.path.join(self.tmp.name, 'prometheus.yml')
        with open(conf, 'w') as f:
            f.write('global:\n  scrape_interval: 1s\nscrape_configs:\n'
                    '  - job_name: balloond\n    static_configs:\n'
                    "      - targets: ['127.0.0.1:%d']\n" % d.port)
        prom = subprocess.Popen(['prometheus', '--config.file', conf,
                                 '--storage.tsdb.path', os.path.join(self.tmp.name, 'tsdb'),
                                 '--web.listen-address', '127.0.0.1:%d' % web],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(prom)
        url = ('http://127.0.0.1:%d/api/v1/query?query=qemu_oc_vm_responsive' % web)

        def scraped():
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    res = json.loads(r.read())['data']['result']
            except OSError:
                return None
            return {x['metric']['vm']: x['value'][1] for x in res} or None
        got = wait_until(scraped, 60, 0.5, 'Prometheus to scrape the daemon')
        self.assertEqual(got.get('a'), '1')
        self.assertIn('b"x\\y', got)

    def test_real_guests_pressure_and_guest_need(self):
        # a guest is short of memory below 40 % available (a wide margin:
        # a small TCG guest would meet the OOM killer before 10 %)
        conf = self.config('[policy]\nfloor-mib = 320\nstep-mib = 64\n'
                           'guest-low-avail-pct = 40\n')
        vms = [VM(smp=1, memory=512, args=['-qmp', 'unix:%s,server=on,wait=off'
                                           % os.path.join(self.dir, 'g%d' % i)])
               for i in range(2)]
        with vms[0] as g0, vms[1] as g1:
            d = self.daemon('--config', conf)
            wait_until(lambda: all(d.actual_mib(n) == 512 for n in ('g0', 'g1')),
                       30, 0.3, 'both guests seen at 512 MiB')
            meminfo(self.meminfo, SHORT)
            wait_until(lambda: all((d.actual_mib(n) or 999) <= 400 for n in ('g0', 'g1')),
                       60, 0.3, 'both guests to give memory')
            sizes = {n: d.actual_mib(n) for n in ('g0', 'g1')}
            print('  host pressure: %s' % sizes)
            self.assertTrue(all(s >= 320 for s in sizes.values()))
            # g0 needs memory (its available memory falls under its low
            # mark): it gets it back, under host pressure still
            low = d.actual_mib('g0')
            text = d.scrape()
            avail = sample(text, 'qemu_oc_guest_memory_bytes', vm='g0',
                           stat='available') / 2**20
            total = sample(text, 'qemu_oc_guest_memory_bytes', vm='g0',
                           stat='total') / 2**20
            pid = g0.hold(int(avail - 0.25 * total))
            wait_until(lambda: d.actual_mib('g0') > low + 32, 60, 0.3,
                       'g0 to get memory back')
            reasons = {x.get('reason') for x in d.lines() if x.get('vm') == 'g0'}
            self.assertIn('guest-pressure', reasons)
            g0.kill(pid)
            meminfo(self.meminfo, PLENTY)
            wait_until(lambda: all(d.actual_mib(n) == 512 for n in ('g0', 'g1')),
                       90, 0.3, 'both guests back at 512 MiB')
            self.assertEqual(g1.shell('echo alive'), 'alive')

    def test_bad_configuration(self):
        conf = self.config('[policy]\nfloor-mib = -5\n')
        p = subprocess.run([DAEMON, '--qmp-dir', self.dir, '--config', conf],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn('floor-mib', p.stderr)
        p = subprocess.run([DAEMON, '--qmp-dir', self.dir, '--metrics', 'nonsense',
                            '--host-meminfo', self.meminfo],
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn('nonsense', p.stderr)
        for bad in ('127.0.0.1', 'localhost:9100', ':0', ':99999', '[::1]:x',
                    '1.2.3:80'):
            p = subprocess.run([DAEMON, '--qmp-dir', self.dir, '--metrics', bad,
                                '--host-meminfo', self.meminfo],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 1, bad)
            self.assertIn('is not ADDR:PORT', p.stderr, bad)

    def test_metrics_ipv6_and_any(self):
        """The metrics endpoint on IPv6's loopback, and on every address
        (":PORT": IPv6 and IPv4 alike)"""
        for listen, urls in (('[::1]:%d', ['http://[::1]:%d/metrics']),
                             (':%d', ['http://[::1]:%d/metrics',
                                      'http://127.0.0.1:%d/metrics'])):
            port = free_port()
            p = subprocess.Popen([DAEMON, '--qmp-dir', self.dir, '--metrics',
                                  listen % port, '--host-meminfo',
                                  self.meminfo], stderr=subprocess.DEVNULL)
            try:
                for url in urls:
                    def get():
                        try:
                            with urllib.request.urlopen(url % port,
                                                        timeout=5) as r:
                                return r.read().decode()
                        except OSError:
                            return None
                    text = wait_until(get, 10, 0.1, url % port)
                    self.assertIn('qemu_oc_host_memory_pressure', text)
            finally:
                p.send_signal(signal.SIGTERM)
                self.assertEqual(p.wait(10), 0)

    def test_shipped_configuration(self):
        """The default configuration the packages install: taken as it
        is, and with every key of its [policy] group uncommented (each
        names a key the daemon knows, with a value it accepts); the
        daemon starts on both, and stops on SIGTERM with status 0."""
        shipped = os.path.join(TOP, 'tools', 'balloond', 'balloond.conf')
        with open(shipped) as f:
            text = f.read()
        keys = re.findall(r'^#([a-z-]+ = \S+)$', text.split('[policy]')[1]
                          .split('[domain')[0], re.M)
        self.assertGreater(len(keys), 15)
        for conf in (shipped, self.config('[policy]\n' + '\n'.join(keys) + '\n')):
            with self.subTest(conf=conf):
                d = Daemon(self.tmp.name, '--qmp-dir', self.dir, '--config', conf,
                           '--host-meminfo', self.meminfo)
                d.stop()
                self.assertEqual(d.proc.returncode, 0)


if __name__ == '__main__':
    import unittest
    unittest.main()
