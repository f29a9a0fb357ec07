#!/usr/bin/python3
"""libvirt 9.0 and python3-libvirt drive qemu-oc unchanged.

Starts libvirtd by hand (no systemd here), defines a TCG domain whose
emulator is build/qemu-system-x86_64 with the Debian test guest, and
checks: libvirt's capability probe of our binary; memory statistics
through memoryStats(), virsh dommemstat and virsh domstats --balloon;
setMemory() with BALLOON_CHANGE events; qemuMonitorCommand() reaching
query-balloon refresh=sync and query-vcpu-runstates; and the
BALLOON_STATS event reaching a qemu-monitor-event callback.  Cleans up:
domains destroyed and undefined, the daemon it started stopped by pid.
Skips only if libvirtd cannot start at all.
"""

import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import unittest

from ocvm import VMTestCase, wait_until
from ocvm import BINARY
from oclibvirt import Libvirtd, domain_xml, read_text

try:
    import libvirt
    import libvirt_qemu
except ImportError:             # reported by setUpClass
    libvirt = None

TCP_PORT = 16599
MIB = 1 << 20


class LibvirtTest(VMTestCase):

    @classmethod
    def setUpClass(cls):
        if libvirt is None:
            raise AssertionError('python3-libvirt is missing (scripts/deps.sh '
                                 'installs it)')
        # also listening on TCP, on the loopback only and without
        # authentication: the remote transport (qemu+tcp://) under test
        cls.daemon = Libvirtd(
            'listen_tls = 0\nlisten_tcp = 1\nlisten_addr = "127.0.0.1"\n'
            'tcp_port = "%d"\nauth_tcp = "none"\n' % TCP_PORT)
        if cls.daemon.error:
            raise unittest.SkipTest('libvirtd cannot start here: %s'
                                    % cls.daemon.error)
        cls.dom = cls.conn = cls.cb_balloon = cls.cb_qmp = None
        try:
            libvirt.virEventRegisterDefaultImpl()
            cls.loop_stop = False
            cls.loop = threading.Thread(target=cls.event_loop, daemon=True)
            cls.loop.start()
            cls.conn = libvirt.open('qemu:///system')
            cls.name = 'qemu-oc-test-%d' % os.getpid()
            cls.dom = cls.conn.defineXML(domain_xml(cls.name))
            cls.balloon_events = []
            cls.qmp_events = []
            cls.cb_balloon = cls.conn.domainEventRegisterAny(
                cls.dom, libvirt.VIR_DOMAIN_EVENT_ID_BALLOON_CHANGE,
                lambda conn, dom, actual, opaque: cls.balloon_events.append(actual), None)
            cls.cb_qmp = libvirt_qemu.qemuMonitorEventRegister(
                cls.conn, cls.dom, 'BALLOON_STATS',
                lambda conn, dom, event, secs, usecs, details, opaque:
                cls.qmp_events.append((event, details)), None, 0)
            cls.dom.create()
        except BaseException:
            # no tearDownClass after a failed setUpClass: clean up here
            cls.cleanup()
            raise

    @classmethod
    def event_loop(cls):
        while not cls.loop_stop:
            libvirt.virEventRunDefaultImpl()

    @classmethod
    def cleanup(cls):
        """Undo what setUpClass got to, even if it failed half-way."""
        try:
            if cls.dom is not None:
                if cls.dom.isActive():
                    cls.dom.destroy()
                cls.dom.undefine()
            if cls.cb_balloon is not None:
                cls.conn.domainEventDeregisterAny(cls.cb_balloon)
            if cls.cb_qmp is not None:
                libvirt_qemu.qemuMonitorEventDeregister(cls.conn, cls.cb_qmp)
            if cls.conn is not None:
                cls.conn.close()
        finally:
            cls.loop_stop = True
            cls.daemon.stop()

    @classmethod
    def tearDownClass(cls):
        cls.cleanup()

    def qmp(self, cmd, **args):
        msg = {'execute': cmd}
        if args:
            msg['arguments'] = args
        reply = json.loads(libvirt_qemu.qemuMonitorCommand(self.dom, json.dumps(msg), 0))
        self.assertNotIn('error', reply, reply)
        return reply['return']

    def wait_stats(self):
        return wait_until(lambda: (lambda s: s if s.get('unused', -1) > 0 else None)(
            self.dom.memoryStats()), 60, 0.5, 'memoryStats from the guest')

    def test_vmtop_through_libvirt(self):
        """vmtop finds the domain through libvirt's lifecycle events and
        reads it through libvirt (commands and BALLOON_STATS events)."""
        top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        vmtop = os.path.join(top, 'build', 'tools', 'vmtop')
        self.wait_stats()
        p = subprocess.run([vmtop, '--connect', 'qemu:///system', '--once',
                            '--json', '--interval', '1.5'],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        vms = {v['name']: v for v in json.loads(p.stdout.splitlines()[-1])['vms']}
        v = vms[self.name]
        self.assertTrue(v['responsive'], v)
        self.assertEqual(v['where'], 'qemu:///system')
        self.assertGreater(v['balloon-actual'], 256 << 20)
        self.assertGreater(v['stats']['total-memory'], 100 << 20)
        self.assertAlmostEqual(sum(v['runstates']['shares'].values()), 1, delta=0.02)

    def test_vmtop_through_remote_libvirt(self):
        """A fleet is reached through libvirt's own remote transport: vmtop
        --connect qemu+tcp://127.0.0.1:PORT/system (libvirtd listening on
        the loopback) names the VM host:domain and reads it."""
        top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        vmtop = os.path.join(top, 'build', 'tools', 'vmtop')
        uri = 'qemu+tcp://127.0.0.1:%d/system' % TCP_PORT
        self.wait_stats()
        p = subprocess.run([vmtop, '--connect', uri, '--once', '--json',
                            '--interval', '1.5'],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        vms = {v['name']: v for v in json.loads(p.stdout.splitlines()[-1])['vms']}
        v = vms['127.0.0.1:' + self.name]
        self.assertTrue(v['responsive'], v)
        self.assertEqual(v['where'], uri)
        self.assertGreater(v['stats']['total-memory'], 100 << 20)

    def test_balloond_through_libvirt(self):
        """qemu-oc-balloond in libvirt mode: under simulated host pressure
        it shrinks the domain through virDomainSetMemory (libvirt's
        current memory follows), within the floor; when the pressure ends
        the domain grows back to its maximum."""
        top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        daemon = os.path.join(top, 'build', 'tools', 'qemu-oc-balloond')
        self.wait_stats()
        tmp = tempfile.mkdtemp(prefix='balloond-libvirt-')
        meminfo = os.path.join(tmp, 'meminfo')
        conf = os.path.join(tmp, 'balloond.conf')
        with open(conf, 'w') as f:
            f.write('[policy]\nfloor-mib = 384\nstep-mib = 64\n')

        def host(available_kb):
            with open(meminfo + '.tmp', 'w') as f:
                f.write('MemTotal: 16000000 kB\nMemFree: %d kB\n'
                        'MemAvailable: %d kB\n' % (available_kb, available_kb))
            os.rename(meminfo + '.tmp', meminfo)

        def current_mib():
            return self.dom.info()[2] >> 10
        host(8000000)
        log = open(os.path.join(tmp, 'balloond.log'), 'w+')
        proc = subprocess.Popen([daemon, '--connect', 'qemu:///system',
                                 '--config', conf, '--host-meminfo', meminfo,
                                 '--interval', '0.5'], stderr=log, text=True)

        def text():
            log.seek(0)
            return log.read()
        try:
            # the pressure comes once the daemon has heard from the domain
            # (its marker), so that it decides in full steps
            wait_until(lambda: 'settled:' in text(), 60, 0.1,
                       message='the daemon did not settle: %s' % text()[-2000:])
            host(400000)
            low = wait_until(lambda: current_mib() <= 448 and current_mib(), 60, 0.3,
                             'the domain to shrink through libvirt')
            self.assertGreaterEqual(low, 384)
            host(8000000)
            wait_until(lambda: current_mib() == 512, 60, 0.3,
                       'the domain back at 512 MiB')
        finally:
            proc.terminate()
            proc.wait(10)
            err = text()
            log.close()
            shutil.rmtree(tmp)
        self.assertIn('%s: host-pressure' % self.name, err)
        self.assertIn('%s: grow' % self.name, err)
        # its QEMU process, from libvirt's pid file: its memory cgroups
        # are its memory domains (found or not, the process is named)
        pid = int(read_text('/run/libvirt/qemu/%s.pid' % self.name))
        line = re.search(r'%s: QEMU process %d(:| is in).*' % (re.escape(self.name), pid), err)
        self.assertIsNotNone(line, err[-2000:])
        print('  %s' % line.group(0))

    def test_capability_probe(self):
        caps = self.conn.getDomainCapabilities(os.path.realpath(BINARY), 'x86_64',
                                               None, 'qemu')
        self.assertIn('<path>%s</path>' % os.path.realpath(BINARY), caps)
        # libvirt's default machine: the one "pc" names, upstream's
        self.assertIn('<machine>pc-i440fx-7.2</machine>', caps)
        # libvirt parsed our version: its probe cache records it
        cached = [f for f in glob.glob('/var/cache/libvirt/qemu/capabilities/*.xml')
                  if '<emulator>%s</emulator>' % os.path.realpath(BINARY) in read_text(f)]
        self.assertTrue(cached, 'no capability cache for our binary')
        text = read_text(cached[0])
        self.assertIn('<version>7002022</version>', text)
        self.assertIn("name='pc-i440fx-7.2-oc'", text)
        self.assertIn("name='pc-i440fx-7.2'", text)

    def test_memory_stats(self):
        st = self.wait_stats()
        self.assertGreater(st['available'], 400 * 1024)      # KiB: total
        self.assertLess(st['unused'], st['available'])        # free
        self.assertGreater(st['usable'], 0)                   # available
        self.assertEqual(st['actual'], 512 * 1024)
        out = subprocess.run(['virsh', '-c', 'qemu:///system', 'dommemstat', self.name],
                             capture_output=True, text=True, check=True).stdout
        vals = dict(line.split() for line in out.splitlines() if line.strip())
        self.assertGreater(int(vals['unused']), 0)
        self.assertGreater(int(vals['available']), int(vals['unused']))
        out = subprocess.run(['virsh', '-c', 'qemu:///system', 'domstats', '--balloon',
                              self.name], capture_output=True, text=True, check=True).stdout
        self.assertRegex(out, r'balloon\.unused=[1-9]\d*')
        self.assertRegex(out, r'balloon\.available=[1-9]\d*')

    def test_set_memory_balloon_change(self):
        self.wait_stats()
        n = len(self.balloon_events)
        self.dom.setMemory(384 * 1024)
        wait_until(lambda: self.dom.info()[2] <= 390 * 1024, 60, 0.5,
                   'the guest to give back memory')
        wait_until(lambda: len(self.balloon_events) > n, 10, 0.1, 'BALLOON_CHANGE')
        self.assertLessEqual(self.balloon_events[-1], 390 * 1024)
        # libvirt's figure follows QEMU's (rate-limited) BALLOON_CHANGE
        # events: it catches up with the balloon once it stops
        wait_until(lambda: self.qmp('query-balloon')['actual'] ==
                   self.dom.info()[2] * 1024, 30, 0.2,
                   "libvirt's current memory to match the balloon's")
        self.dom.setMemory(512 * 1024)
        wait_until(lambda: self.dom.info()[2] >= 510 * 1024, 60, 0.5,
                   'the guest to take memory back')

    def test_qemu_monitor_command_new_commands(self):
        self.wait_stats()
        r = self.qmp('query-balloon', refresh='sync', timeout=5000)
        self.assertTrue(r['fresh'], r)
        self.assertGreater(r['stats']['total-memory'], 400 * MIB)
        rs = self.qmp('query-vcpu-runstates')
        self.assertEqual(rs['method'], 'tcg')
        self.assertEqual(len(rs['vcpus']), 2)
        self.assertGreater(rs['elapsed-ns'], 0)
        hmp = libvirt_qemu.qemuMonitorCommand(
            self.dom, 'info balloon', libvirt_qemu.VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP)
        self.assertRegex(hmp.strip(), r'^balloon: actual=\d+ .*free-memory=\d+')

    def test_balloon_stats_event(self):
        self.wait_stats()
        n = len(self.qmp_events)
        r = self.qmp('query-balloon', refresh='async')
        self.assertEqual(r['stale-reason'], 'pending')
        wait_until(lambda: len(self.qmp_events) > n, 15, 0.1, 'BALLOON_STATS callback')
        event, details = self.qmp_events[-1]
        self.assertEqual(event, 'BALLOON_STATS')
        data = json.loads(details) if isinstance(details, str) else details
        self.assertGreater(data['stats']['total-memory'], 400 * MIB)


if __name__ == '__main__':
    unittest.main()
