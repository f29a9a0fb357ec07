#!/usr/bin/python3
"""A libvirt domain goes from qemu-oc to Debian's QEMU and back
(docs/install.md).

libvirtd is started by hand (no systemd here).  A TCG domain booting the
Debian test guest is defined under qemu-oc with machine='pc', the
default: libvirt stores the type the alias names, which must be one
Debian's QEMU knows (pc-i440fx-7.2).  The running guest is saved, the
image's emulator pointed at Debian's /usr/bin/qemu-system-x86_64 (what
`virsh save-image-edit` does), and the image restored there: the guest
runs on under stock QEMU and answers its balloon statistics.  Then the
way the other way: saved under stock, restored under qemu-oc.
"""

import os
import re
import unittest

from ocvm import BINARY, wait_until
from oclibvirt import LibvirtCase, domain_xml, libvirt, read_text

STOCK = '/usr/bin/qemu-system-x86_64'


class RoundTripTest(LibvirtCase):

    def setUp(self):
        super().setUp()
        self.name = 'qemu-oc-roundtrip-%d' % os.getpid()
        self.domains.append(self.name)

    def emulator_of_running(self):
        pid = int(read_text('/run/libvirt/qemu/%s.pid' % self.name))
        return read_text('/proc/%d/cmdline' % pid).split('\0')[0]

    def wait_guest(self, dom):
        """The guest answers: fresh balloon statistics through libvirt."""
        wait_until(lambda: dom.memoryStats().get('unused', -1) > 0, 120, 0.5,
                   'memoryStats from the guest')

    def move(self, dom, emulator):
        """Save the running domain, point its image at @emulator, restore."""
        image = os.path.join(self.tmp, 'save-%s' % os.path.basename(emulator))
        dom.save(image)
        xml = self.conn.saveImageGetXMLDesc(image, libvirt.VIR_DOMAIN_XML_SECURE)
        xml = re.sub(r'<emulator>[^<]*</emulator>',
                     '<emulator>%s</emulator>' % emulator, xml)
        self.conn.restoreFlags(image, xml, 0)
        os.unlink(image)
        dom = self.conn.lookupByName(self.name)
        self.assertEqual(self.emulator_of_running(), emulator)
        return dom

    def test_defaults_go_back_and_forth(self):
        oc = os.path.realpath(BINARY)
        dom = self.conn.defineXML(domain_xml(self.name, oc))
        # the alias resolved to a type stock QEMU knows
        self.assertIn("machine='pc-i440fx-7.2'", dom.XMLDesc(0))
        dom.create()
        self.wait_guest(dom)
        before = dom.memoryStats()

        dom = self.move(dom, STOCK)
        self.wait_guest(dom)
        self.assertIn("machine='pc-i440fx-7.2'", dom.XMLDesc(0))
        # the guest's own figures of its memory, as before
        self.assertEqual(dom.memoryStats()['available'], before['available'])

        dom = self.move(dom, oc)
        self.wait_guest(dom)
        self.assertEqual(dom.memoryStats()['available'], before['available'])


if __name__ == '__main__':
    unittest.main()
