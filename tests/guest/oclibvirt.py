"""What the libvirt tests share: the host set-up libvirtd needs here, a
libvirtd started by hand (no systemd here) and stopped by its pid, and a
small TCG domain booting the Debian test guest."""

import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import uuid

from ocvm import BINARY, GUEST, SPINNING, VMTestCase, spin_command, wait_until

try:
    import libvirt
except ImportError:             # reported by LibvirtCase
    libvirt = None

QEMU_CONF = '/etc/libvirt/qemu.conf'
SOCKET = '/run/libvirt/libvirt-sock'


def read_text(path):
    with open(path, errors='replace') as f:
        return f.read()


def setup_host():
    """What libvirtd needs here (../shared/platform.md): a libvirt-qemu
    user and group, and qemu.conf running QEMU as root (/dev/kvm is
    root-only) with its output in files (no virtlogd)."""
    if subprocess.run(['getent', 'group', 'libvirt-qemu'],
                      stdout=subprocess.DEVNULL).returncode:
        subprocess.run(['groupadd', '-r', 'libvirt-qemu'], check=True)
    if subprocess.run(['getent', 'passwd', 'libvirt-qemu'],
                      stdout=subprocess.DEVNULL).returncode:
        subprocess.run(['useradd', '-r', '-g', 'libvirt-qemu', '-d',
                        '/var/lib/libvirt', '-s', '/usr/sbin/nologin',
                        'libvirt-qemu'], check=True)
    want = 'user = "root"\ngroup = "root"\nstdio_handler = "file"\n'
    os.makedirs(os.path.dirname(QEMU_CONF), exist_ok=True)
    current = read_text(QEMU_CONF) if os.path.exists(QEMU_CONF) else None
    if current != want:
        if current is not None and not os.path.exists(QEMU_CONF + '.qemu-oc-orig'):
            os.rename(QEMU_CONF, QEMU_CONF + '.qemu-oc-orig')
        with open(QEMU_CONF, 'w') as f:
            f.write(want)


def domain_xml(name, emulator=None):
    return """
<domain type='qemu'>
  <name>%(name)s</name>
  <uuid>%(uuid)s</uuid>
  <memory unit='MiB'>512</memory>
  <currentMemory unit='MiB'>512</currentMemory>
  <vcpu>2</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>%(guest)s/vmlinuz</kernel>
    <initrd>%(guest)s/initramfs.gz</initrd>
    <cmdline>console=ttyS0 panic=-1 quiet</cmdline>
  </os>
  <on_reboot>destroy</on_reboot>
  <devices>
    <emulator>%(emulator)s</emulator>
    <serial type='pty'/>
    <memballoon model='virtio'>
      <stats period='1'/>
    </memballoon>
  </devices>
</domain>""" % {'name': name, 'uuid': uuid.uuid4(), 'guest': GUEST,
                'emulator': emulator or os.path.realpath(BINARY)}



class Libvirtd:
    """libvirtd started by hand with the configuration text @conf (None:
    its defaults); .error says why it could not start (None if it did)."""

    def __init__(self, conf=None):
        setup_host()
        if os.path.exists(SOCKET):
            os.unlink(SOCKET)
        self.conf_dir = tempfile.mkdtemp(prefix='libvirtd-conf-')
        path = os.path.join(self.conf_dir, 'libvirtd.conf')
        with open(path, 'w') as f:
            f.write(conf or '')
        # --listen only with a configuration that says how (without one
        # libvirtd would want TLS certificates)
        self.proc = subprocess.Popen(['/usr/sbin/libvirtd', '-f', path] +
                                     (['--listen'] if conf else []),
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        wait_until(lambda: os.path.exists(SOCKET) or self.proc.poll() is not None,
                   15, 0.05, 'libvirtd socket', quiet=True)
        self.error = None
        if self.proc.poll() is not None:
            self.error = self.proc.stderr.read().decode(errors='replace')[-500:]
        elif not os.path.exists(SOCKET):
            self.error = 'no socket'
        if self.error:
            self.stop()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stderr.close()
        shutil.rmtree(self.conf_dir, ignore_errors=True)


class LibvirtCase(VMTestCase):
    """A test case with libvirtd started for each test (skipped, saying
    why, if it cannot start), self.conn on qemu:///system, self.tmp a
    temporary directory, and the domains named in self.domains destroyed
    and undefined at the end.  LIBVIRTD_CONF: libvirtd's configuration
    text (None: its defaults)."""

    LIBVIRTD_CONF = None

    def setUp(self):
        super().setUp()
        if libvirt is None:
            self.fail('python3-libvirt is missing (scripts/deps.sh installs it)')
        daemon = Libvirtd(self.LIBVIRTD_CONF)
        if daemon.error:
            self.skipTest('libvirtd cannot start here: %s' % daemon.error)
        self.addCleanup(daemon.stop)
        self.libvirtd = daemon
        self.conn = libvirt.open('qemu:///system')
        self.addCleanup(self.conn.close)
        tmp = tempfile.TemporaryDirectory(prefix='libvirt-test-')
        self.addCleanup(tmp.cleanup)
        self.tmp = tmp.name
        self.domains = []
        self.addCleanup(self.remove_domains)

    def remove_domains(self):
        for name in self.domains:
            try:
                dom = self.conn.lookupByName(name)
            except libvirt.libvirtError:
                continue
            if dom.isActive():
                dom.destroy()
            dom.undefine()


class DomainConsole:
    """The serial console of a running domain through libvirt's own
    console stream (virDomainOpenConsole, as `virsh console`), so a test
    drives a libvirt guest as ocvm drives its own: a command line in, a
    marker line out.  A thread reads the stream (blocking: a libvirt
    client without an event loop moves a stream's data only in calls)."""

    def __init__(self, conn, dom):
        self.stream = conn.newStream(0)
        dom.openConsole(None, self.stream, 0)
        self.name = dom.name()
        self.lines = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        pending = b''
        try:
            while True:
                data = self.stream.recv(4096)
                if not isinstance(data, bytes) or not data:
                    break
                *lines, pending = (pending + data).split(b'\n')
                for line in lines:
                    self.lines.put(line.decode(errors='replace'))
        except libvirt.libvirtError:
            pass                # aborted, or the domain is gone
        self.lines.put(None)

    def send(self, line):
        data = line.encode()
        while data:
            data = data[self.stream.send(data):]

    def wait_line(self, pattern, timeout=60):
        """Wait for a console line matching pattern; returns the match."""
        rx = re.compile(pattern)

        def matched(left):
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                raise AssertionError('%s: the console closed' % self.name)
            return rx.search(line)

        return wait_until(matched, timeout, 0, blocking=True,
                          message='%s: no console line matching %r within '
                          '%d s' % (self.name, pattern, timeout))

    def spin(self, nthreads):
        """Busy-loop nthreads guest threads until the guest stops, as
        ocvm's VM.spin(); returns the pid once they spin."""
        self.send(spin_command(nthreads))
        return int(self.wait_line(SPINNING).group(1))

    def close(self):
        try:
            self.stream.abort()
        except libvirt.libvirtError:
            pass                # the domain is gone with its console
        self.reader.join(10)
