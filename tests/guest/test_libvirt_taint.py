#!/usr/bin/python3
"""The host tools through libvirt keep to libvirt's own APIs where they
can: a domain of Debian's stock QEMU is read through libvirt's statistics
(balloon, vCPU time and run-queue delay), never sent a monitor command,
so libvirt never marks it tainted; a domain of qemu-oc is sent the
monitor commands only it answers (its runstates), and libvirt marks it
"custom-monitor" (documented in docs/libvirt.md).  vmtop leaves libvirtd
without an I/O error in its log when it exits."""

import json
import os
import subprocess
import unittest

from ocvm import wait_until
from oclibvirt import DomainConsole, LibvirtCase, domain_xml, read_text

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VMTOP = os.path.join(TOP, 'build', 'tools', 'vmtop')
STOCK = '/usr/bin/qemu-system-x86_64'
LOG_DIR = '/var/log/libvirt/qemu'
LIBVIRTD_LOG = '/tmp/qemu-oc-test-libvirtd-%d.log' % os.getpid()


class LibvirtTaintTest(LibvirtCase):

    LIBVIRTD_CONF = 'listen_tls = 0\nlog_outputs = "3:file:%s"\n' % LIBVIRTD_LOG

    def setUp(self):
        if os.path.exists(LIBVIRTD_LOG):
            os.unlink(LIBVIRTD_LOG)
        super().setUp()
        self.addCleanup(lambda: os.path.exists(LIBVIRTD_LOG) and
                        os.unlink(LIBVIRTD_LOG))
        if not os.access(STOCK, os.X_OK):
            self.fail('%s is missing (scripts/deps.sh installs '
                      'qemu-system-x86)' % STOCK)

    def start(self, name, emulator=None):
        self.domains.append(name)
        dom = self.conn.defineXML(domain_xml(name, emulator))
        dom.create()
        return dom

    @staticmethod
    def wait_stats(dom):
        wait_until(lambda: dom.memoryStats().get('unused', -1) > 0, 120,
                   0.5, 'memoryStats from %s' % dom.name())

    def domain_log(self, name):
        return read_text(os.path.join(LOG_DIR, name + '.log'))

    def test_stock_read_untainted_qemu_oc_read_in_full(self):
        stock = self.start('stock-%d' % os.getpid(), STOCK)
        oc = self.start('oc-%d' % os.getpid())
        self.wait_stats(stock)
        self.wait_stats(oc)
        # a vCPU of the stock guest runs all through vmtop's interval:
        # libvirt counts vCPU time in clock ticks (10 ms), which an idle
        # guest's vCPUs may not reach in 1.5 s
        console = DomainConsole(self.conn, stock)
        self.addCleanup(console.close)
        console.spin(1)
        p = subprocess.run([VMTOP, '--connect', 'qemu:///system', '--once',
                            '--json', '--interval', '1.5'],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        vms = {v['name']: v for v in json.loads(p.stdout)['vms']}

        s = vms[stock.name()]
        self.assertTrue(s['responsive'], s)
        self.assertNotIn('error', s)
        self.assertEqual(s['balloon-actual'], 512 << 20)
        self.assertGreater(s['stats']['total-memory'], 100 << 20)
        self.assertGreater(s['stats']['available-memory'], 0)
        rs = s['runstates']
        self.assertEqual(rs['source'], 'libvirt')
        self.assertNotIn('shares', rs, 'no VM states without qemu-oc')
        self.assertEqual(len(rs['vcpus']), 2)
        for c in rs['vcpus']:
            self.assertAlmostEqual(sum(c['shares'].values()), 1, delta=0.01)
        self.assertGreater(max(c['shares']['running'] for c in rs['vcpus']),
                           0, 'the spinning vCPU ran')

        o = vms[oc.name()]
        self.assertTrue(o['responsive'], o)
        self.assertEqual(o['runstates']['source'], 'exact')
        self.assertAlmostEqual(sum(o['runstates']['shares'].values()), 1,
                               delta=0.02)

        self.assertNotIn('custom-monitor', self.domain_log(stock.name()))
        self.assertIn('custom-monitor', self.domain_log(oc.name()),
                      'the check can see a taint')
        # vmtop closed its connection: libvirtd saw no broken client
        log = read_text(LIBVIRTD_LOG) if os.path.exists(LIBVIRTD_LOG) else ''
        self.assertNotIn('Input/output error', log)
        self.assertNotIn('End of file while reading', log)


if __name__ == '__main__':
    unittest.main()
