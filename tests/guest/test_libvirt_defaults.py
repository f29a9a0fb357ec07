#!/usr/bin/python3
"""The domains Debian's virt-install writes run on qemu-oc.

libvirtd is started by hand (no systemd here).  virt-install (package
virtinst) prints the domain it would create for a Linux guest: its
defaults (q35, USB tablet, serial console, virtio balloon, ...) with the
devices a desktop VM has, SPICE graphics with QXL video, a spicevmc
channel and two usb-redir devices, ICH9 sound, a virtio RNG, a virtio
qcow2 disk with cache='none' io='native', virtio-net (user networking);
the test points its emulator at qemu-oc and boots the Debian test guest
in it (direct kernel boot).  It checks that the domain starts, libvirt
ran it with its seccomp sandbox (-sandbox on the command line, Seccomp 2
in the QEMU process), and the guest answers its balloon statistics.
Then on that running domain: an external qcow2 disk snapshot, and
virsh save / restore.  And the same domain with VNC graphics instead.
"""

import os
import re
import socket
import subprocess
import unittest

from ocvm import BINARY, GUEST, wait_until
from oclibvirt import LibvirtCase, libvirt, read_text

DESKTOP = ['--graphics', 'spice', '--video', 'qxl', '--channel', 'spicevmc',
           '--redirdev', 'usb,type=spicevmc', '--redirdev', 'usb,type=spicevmc',
           '--sound', 'ich9', '--rng', '/dev/urandom']


class VirtInstallTest(LibvirtCase):

    def setUp(self):
        super().setUp()
        for tool in ('/usr/bin/virt-install', '/usr/bin/qemu-img'):
            if not os.access(tool, os.X_OK):
                self.fail('%s is missing (scripts/deps.sh installs it)' % tool)

    def virt_install_xml(self, name, extra):
        """The domain virt-install would create, on a fresh qcow2 disk."""
        disk = os.path.join(self.tmp, name + '.qcow2')
        subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', disk, '64M'],
                       check=True)
        p = subprocess.run(
            ['virt-install', '--connect', 'qemu:///system', '--print-xml',
             '--name', name, '--memory', '512', '--vcpus', '2',
             '--virt-type', 'qemu', '--osinfo', 'linux2022',
             '--disk', 'path=%s,format=qcow2,bus=virtio,cache=none,io=native' % disk,
             '--network', 'user,model=virtio',
             '--memballoon', 'virtio,stats.period=1',
             '--boot', 'kernel=%s/vmlinuz,initrd=%s/initramfs.gz,'
             'kernel_args=console=ttyS0 panic=-1 quiet' % (GUEST, GUEST),
             '--noautoconsole'] + extra,
            capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        return re.sub(r'<emulator>[^<]*</emulator>',
                      '<emulator>%s</emulator>' % os.path.realpath(BINARY), p.stdout)

    def start(self, name, extra):
        xml = self.virt_install_xml(name, extra)
        self.domains.append(name)
        dom = self.conn.defineXML(xml)
        dom.create()
        pid = int(read_text('/run/libvirt/qemu/%s.pid' % name))
        cmdline = read_text('/proc/%d/cmdline' % pid).split('\0')
        self.assertEqual(cmdline[0], os.path.realpath(BINARY))
        self.assertIn('-sandbox', cmdline)
        self.assertRegex(read_text('/proc/%d/status' % pid), r'Seccomp:\s+2')
        self.wait_guest(dom)
        return dom, ' '.join(cmdline)

    @staticmethod
    def wait_guest(dom):
        wait_until(lambda: dom.memoryStats().get('unused', -1) > 0, 120, 0.5,
                   'balloon statistics from the guest')

    def test_desktop_domain_snapshot_save_restore(self):
        name = 'qemu-oc-virtinst-%d' % os.getpid()
        dom, cmdline = self.start(name, DESKTOP)
        for what in ('qxl-vga', '-spice', 'usb-redir', 'spicevmc', 'ich9-intel-hda',
                     'virtio-rng', 'virtio-net', '"aio":"native"', 'pc-q35-7.2'):
            self.assertIn(what, cmdline)
        # an external disk snapshot of the running domain: a new qcow2
        # overlay over the disk, the guest running on
        overlay = os.path.join(self.tmp, name + '.snap.qcow2')
        dom.snapshotCreateXML(
            "<domainsnapshot><disks><disk name='vda' snapshot='external'>"
            "<source file='%s'/></disk></disks></domainsnapshot>" % overlay,
            libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY |
            libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA |
            libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC)
        self.assertIn(overlay, dom.XMLDesc(0))
        info = subprocess.run(['qemu-img', 'info', '-U', overlay], check=True,
                              capture_output=True, text=True).stdout
        self.assertIn('file format: qcow2', info)
        self.assertIn(name + '.qcow2', info)        # its backing file
        self.wait_guest(dom)
        # save and restore
        image = os.path.join(self.tmp, name + '.save')
        dom.save(image)
        self.assertFalse(dom.isActive())
        self.conn.restore(image)
        dom = self.conn.lookupByName(name)
        self.assertTrue(dom.isActive())
        self.wait_guest(dom)

    def test_vnc_domain(self):
        name = 'qemu-oc-virtinst-vnc-%d' % os.getpid()
        dom, cmdline = self.start(name, ['--graphics', 'vnc,listen=127.0.0.1'])
        self.assertIn('-vnc', cmdline)
        port = re.search(r"<graphics type='vnc' port='(\d+)'", dom.XMLDesc(0))
        self.assertIsNotNone(port, dom.XMLDesc(0))
        # the VNC server greets (RFB): keymaps and all found
        with socket.create_connection(('127.0.0.1', int(port.group(1))), 10) as s:
            self.assertTrue(s.recv(12).startswith(b'RFB '))


if __name__ == '__main__':
    unittest.main()
