#!/usr/bin/python3
"""qemu-oc's Debian packages install, run libvirt's VMs, and purge clean.

Builds both packages (scripts/make-deb.sh: make deb, lintian included
when it is installed), installs them with apt-get, defines a libvirt
domain (libvirtd started by hand) whose emulator is the installed
/usr/bin/qemu-oc-system-x86_64, boots the test guest in it, and checks:
the domain runs under libvirt's seccomp sandbox; the installed vmtop
--once reads it through libvirt; the installed qemu-oc-balloond
--dry-run with the installed default configuration decides on it and
stops cleanly.  Then purges both packages and checks that no file they
installed is left, nor their configuration directory, and that Debian's
own qemu-system-x86_64 still runs.
"""

import json
import os
import signal
import subprocess
import tempfile
import unittest

from ocvm import VMTestCase, wait_until
from oclibvirt import Libvirtd, domain_xml, read_text

try:
    import libvirt
except ImportError:             # reported by the test
    libvirt = None

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEB = os.path.join(TOP, 'build', 'deb')
PACKAGES = ('qemu-oc-system-x86', 'qemu-oc-tools')
EMULATOR = '/usr/bin/qemu-oc-system-x86_64'
APT_ENV = dict(os.environ, DEBIAN_FRONTEND='noninteractive')


def run(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, **kwargs)


def installed(package):
    p = run(['dpkg-query', '-W', '-f', '${db:Status-Status}', package])
    return p.returncode == 0 and p.stdout == 'installed'


class PackagesTest(VMTestCase):

    def setUp(self):
        super().setUp()
        if libvirt is None:
            self.fail('python3-libvirt is missing (scripts/deps.sh installs it)')
        for p in PACKAGES:
            self.assertFalse(installed(p), '%s is installed already: the test '
                             'would remove it' % p)
        build = run([os.path.join(TOP, 'scripts', 'make-deb.sh')])
        self.assertEqual(build.returncode, 0, build.stdout + build.stderr)
        print(build.stdout.strip())
        self.debs = sorted(os.path.join(DEB, f) for f in os.listdir(DEB)
                           if f.endswith('.deb'))
        self.assertEqual([os.path.basename(d).split('_')[0] for d in self.debs],
                         list(PACKAGES))
        self.files = []
        for d in self.debs:
            listing = run(['dpkg-deb', '-c', d], check=True).stdout
            self.files += [line.split(None, 5)[5].split(' -> ')[0][1:]
                           for line in listing.splitlines()
                           if not line.startswith('d')]
        self.assertIn(EMULATOR, self.files)
        self.assertIn('/usr/sbin/qemu-oc-balloond', self.files)
        self.assertEqual([f for f in self.files if os.path.lexists(f)], [],
                         'files of the packages exist before they are installed')
        self.addCleanup(self.purge_if_installed)

    def purge_if_installed(self):
        if any(installed(p) for p in PACKAGES):
            run(['apt-get', 'purge', '-y'] + list(PACKAGES), env=APT_ENV)

    def test_install_run_purge(self):
        p = run(['apt-get', 'install', '-y', '--no-install-recommends'] + self.debs,
                env=APT_ENV)
        self.assertEqual(p.returncode, 0, p.stdout[-3000:] + p.stderr[-3000:])
        for pkg in PACKAGES:
            self.assertTrue(installed(pkg), pkg)
        version = run([EMULATOR, '--version'], check=True).stdout
        self.assertIn('qemu-oc', version)
        self.assertIn('qxl-vga', run([EMULATOR, '-device', 'help'], check=True).stdout)
        self.run_domain()
        p = run(['apt-get', 'purge', '-y'] + list(PACKAGES), env=APT_ENV)
        self.assertEqual(p.returncode, 0, p.stdout[-3000:] + p.stderr[-3000:])
        for pkg in PACKAGES:
            self.assertFalse(installed(pkg), pkg)
        self.assertEqual([f for f in self.files if os.path.lexists(f)], [])
        for d in ('/etc/qemu-oc', '/usr/lib/x86_64-linux-gnu/qemu-oc',
                  '/usr/share/doc/qemu-oc-tools', '/var/log/qemu-oc'):
            self.assertFalse(os.path.exists(d), d)
        # Debian's own emulator is untouched
        stock = run(['/usr/bin/qemu-system-x86_64', '--version'])
        self.assertEqual(stock.returncode, 0, stock.stderr)
        self.assertNotIn('qemu-oc', stock.stdout)
        self.assertIn('qxl-vga', run(['/usr/bin/qemu-system-x86_64', '-device',
                                      'help'], check=True).stdout)

    def run_domain(self):
        """A libvirt domain on the installed emulator, read by the
        installed tools."""
        daemon = Libvirtd()
        if daemon.error:
            self.fail('libvirtd cannot start here: %s' % daemon.error)
        conn = dom = None
        try:
            conn = libvirt.open('qemu:///system')
            name = 'qemu-oc-pkg-%d' % os.getpid()
            dom = conn.defineXML(domain_xml(name, EMULATOR))
            dom.create()
            pid = int(read_text('/run/libvirt/qemu/%s.pid' % name))
            self.assertIn(EMULATOR, read_text('/proc/%d/cmdline' % pid))
            # libvirt found seccomp in the installed binary: the sandbox is on
            self.assertRegex(read_text('/proc/%d/status' % pid), r'Seccomp:\s+2')
            wait_until(lambda: dom.memoryStats().get('unused', -1) > 0, 120, 0.5,
                       'memoryStats from the guest')
            top = run(['/usr/bin/vmtop', '--connect', 'qemu:///system', '--once',
                       '--json', '--interval', '1.5'], timeout=60)
            self.assertEqual(top.returncode, 0, top.stderr[-2000:])
            vms = {v['name']: v for v in json.loads(top.stdout.splitlines()[-1])['vms']}
            self.assertTrue(vms[name]['responsive'], vms[name])
            self.assertGreater(vms[name]['stats']['total-memory'], 100 << 20)
            self.run_daemon(name)
        finally:
            if dom is not None:
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
            if conn is not None:
                conn.close()
            daemon.stop()

    def run_daemon(self, name):
        """The installed daemon, its installed configuration, a dry run:
        it decides on the domain, then stops on SIGTERM."""
        with tempfile.TemporaryFile('w+') as err:
            proc = subprocess.Popen(
                ['/usr/sbin/qemu-oc-balloond', '--connect', 'qemu:///system',
                 '--config', '/etc/qemu-oc/balloond.conf', '--dry-run',
                 '--interval', '0.5'], stderr=err, text=True)

            def text():
                err.seek(0)
                return err.read()
            try:
                wait_until(lambda: '%s: steady' % name in text() and
                           'settled:' in text(), 60, 0.2,
                           message='the daemon did not decide on the domain: %s'
                           % text()[-2000:])
            finally:
                proc.send_signal(signal.SIGTERM)
                code = proc.wait(30)
            self.assertEqual(code, 0, text()[-2000:])
            self.assertIn('dry run', text())


if __name__ == '__main__':
    unittest.main()
