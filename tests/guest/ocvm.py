"""ocvm: boot and drive qemu-oc virtual machines from tests.

Python standard library only; run with Debian's /usr/bin/python3.

    with VM(smp=2, memory=512) as vm:        # Linux guest under TCG
        vm.qmp('query-balloon')
        vm.hmp('info balloon')
        vm.shell('cat /proc/meminfo')
        pid = vm.hold(100)                    # allocate and hold 100 MiB

Every wait has a timeout, and goes through wait_until(). When a VM exits
with an exception pending, the tail of the guest console and of QEMU's
stderr is printed; tests derived from VMTestCase print them for the VMs
a failing test started or still runs.

Environment:
    QEMU_OC_BINARY  emulator (default: <repo>/build/qemu-system-x86_64)
    QEMU_OC_GUEST   guest image dir (default: <repo>/build/guest)
    QEMU_OC_REQUIRE_KVM=1  a host without /dev/kvm fails the KVM tests
                    instead of reporting them as not runnable here
"""

import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get('QEMU_OC_BINARY',
                        os.path.join(TOP, 'build', 'qemu-system-x86_64'))
GUEST = os.environ.get('QEMU_OC_GUEST', os.path.join(TOP, 'build', 'guest'))


class VMError(Exception):
    """A VM did not do what was expected in time."""


class QMPError(Exception):
    """A QMP command answered with an error."""

    def __init__(self, cmd, error):
        super().__init__('%s: %s: %s' % (cmd, error.get('class'), error.get('desc')))
        self.cls = error.get('class')
        self.desc = error.get('desc')


class LineSocket:
    """A connected stream socket read line by line, with timeouts."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b''

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def readline(self, timeout):
        """Return one line (without the newline), or None on timeout."""
        if not wait_until(lambda left: b'\n' in self.buf or self._recv(left),
                          timeout, interval=0, blocking=True, quiet=True):
            return None
        line, self.buf = self.buf.split(b'\n', 1)
        return line.decode(errors='replace').rstrip('\r')

    def _recv(self, left):
        """Read what comes within left seconds into buf; a line complete?"""
        if left > 0 and select.select([self.sock], [], [], left)[0]:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise VMError('connection closed')
            self.buf += chunk
        return b'\n' in self.buf

    def close(self):
        self.sock.close()


class QMP:
    """A QMP client on a connected socket."""

    def __init__(self, sock, timeout=10):
        self.conn = LineSocket(sock)
        self.events = []
        self.next_id = 0
        greeting = self._read(timeout)
        if 'QMP' not in greeting:
            raise VMError('no QMP greeting: %r' % greeting)
        self.greeting = greeting['QMP']
        self.command('qmp_capabilities', wait=timeout)

    def _read(self, timeout):
        line = self.conn.readline(timeout)
        if line is None:
            raise VMError('QMP: no answer within %.1f s' % timeout)
        return json.loads(line)

    def send(self, cmd, **args):
        """Send a command without waiting; returns its id."""
        self.next_id += 1
        msg = {'execute': cmd, 'id': self.next_id}
        if args:
            msg['arguments'] = args
        self.conn.send(json.dumps(msg) + '\n')
        return self.next_id

    def response(self, cmd_id, timeout=10, cmd='command'):
        """Wait for the answer to cmd_id; events seen meanwhile are kept."""
        def answer(left):
            msg = self._read(left)
            if 'event' in msg:
                self.events.append(msg)
                return None
            return msg

        msg = wait_until(answer, timeout, interval=0, blocking=True,
                         message='QMP: no answer within %.1f s' % timeout)
        if msg.get('id') != cmd_id:
            raise VMError('QMP: answer for id %r while waiting for %r: %r'
                          % (msg.get('id'), cmd_id, msg))
        if 'error' in msg:
            raise QMPError(cmd, msg['error'])
        return msg['return']

    def reply_arrived(self):
        """Whether a reply (not an event) has arrived, looking without
        waiting: nothing is consumed (response() reads it later)."""
        conn = self.conn
        while select.select([conn.sock], [], [], 0)[0]:
            chunk = conn.sock.recv(65536)
            if not chunk:
                raise VMError('connection closed')
            conn.buf += chunk
        return any(line.strip() and 'event' not in json.loads(line)
                   for line in conn.buf.split(b'\n')[:-1])

    def command(self, cmd, args=None, wait=10, **kwargs):
        """Run a command; arguments come from args (a dict) and kwargs.
        wait: seconds to wait for the answer."""
        return self.response(self.send(cmd, **dict(args or {}, **kwargs)), wait, cmd)

    def event(self, name, timeout=10, match=None):
        """Return (and consume) the first event called name.

        match: a dict the event's data must contain (e.g. {'device': 'c1'}
        for a device's own DEVICE_DELETED, not a child's); other events
        stay queued."""
        def queued():
            for i, ev in enumerate(self.events):
                data = ev.get('data', {})
                if ev['event'] == name and all(
                        data.get(k) == v for k, v in (match or {}).items()):
                    return self.events.pop(i)
            return None

        def arrived(left):
            ev = queued()
            if ev is None and left > 0:
                line = self.conn.readline(left)
                if line is not None:
                    msg = json.loads(line)
                    if 'event' not in msg:
                        raise VMError('QMP: unexpected answer %r' % msg)
                    self.events.append(msg)
                    ev = queued()
            return ev

        return wait_until(arrived, timeout, interval=0, blocking=True,
                          message='QMP: no %s event%s within %.1f s'
                          % (name, ' with %r' % match if match else '', timeout))

    def close(self):
        self.conn.close()


def _listen(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(1)
    return s


GUESTS = ('debian', 'kernel', 'none')


class VM:
    """A qemu-oc VM. By default the Debian guest under multi-threaded TCG.

    guest:        what boots: 'debian' (the Debian test guest: its kernel
                  and initramfs from QEMU_OC_GUEST; start() waits for its
                  shell), 'kernel' (the kernel below, no initramfs; start()
                  waits for nothing) or 'none' (the firmware runs and finds
                  nothing to boot; required with accel='qtest')
    kernel:       path of the kernel to boot (guest='kernel' only)
    append:       kernel command line: added to the Debian guest's own
                  (console=ttyS0 panic=-1 quiet), or the whole one of
                  guest='kernel'
    accel:        'tcg' (multi-threaded), 'kvm', or 'qtest' (no guest code
                  runs)
    smp, memory:  -smp (a count or an option string), -m in MiB
    machine, cpu: -machine, -cpu (None: QEMU's default)
    balloon:      add virtio-balloon-pci with id 'balloon0'
    args:         more QEMU arguments, added last
    boot_timeout: seconds start() waits for the Debian guest's shell
    wait_ready:   whether start() waits for it (Debian guest only)
    extra_qmp:    how many more QMP monitors (self.qmps)
    hmp_monitor:  an HMP monitor (hmp_send, hmp_read)
    binary:       the emulator (default: QEMU_OC_BINARY)
    incoming:     -incoming (start() then waits for no guest)
    wrapper:      argv words put before the emulator (e.g. a script that
                  moves itself into a cgroup and execs the rest)
    """

    def __init__(self, smp=2, memory=512, accel='tcg', guest='debian',
                 kernel=None, balloon=True, append='', args=(), machine='pc',
                 cpu=None, boot_timeout=60, extra_qmp=0, hmp_monitor=False,
                 binary=None, incoming=None, wait_ready=True, wrapper=None):
        if guest not in GUESTS:
            raise ValueError('guest: one of %s, not %r' % (', '.join(GUESTS), guest))
        if (guest == 'kernel') != (kernel is not None):
            raise ValueError('kernel=PATH goes with guest=\'kernel\' (and only with it)')
        if accel == 'qtest' and guest != 'none':
            raise ValueError("accel='qtest' runs no guest: use guest='none'")
        if append and guest == 'none':
            raise ValueError("append: guest='none' boots no kernel")
        self.smp = smp
        self.memory = memory
        self.accel = accel
        self.guest = guest
        self.kernel = kernel
        self.balloon = balloon
        self.append = append
        self.extra = list(args)
        self.machine = machine
        self.cpu = cpu
        self.boot_timeout = boot_timeout
        self.extra_qmp = extra_qmp
        self.hmp_monitor = hmp_monitor
        self.binary = binary or BINARY
        self.incoming = incoming
        self.wait_ready = wait_ready     # wait for the guest shell
        self.wrapper = list(wrapper or [])
        self.qmps = []          # the extra QMP monitors
        self.hmp_conn = None    # the HMP monitor, a LineSocket
        self.dir = None
        self.proc = None
        self.qmp_conn = None
        self.serial = None
        self.seq = 0
        self.boot_seconds = None
        self.stderr = None
        self.saved_tails = None   # the tails, kept when the VM shuts down
        self.tails_printed = False

    # -- life cycle -------------------------------------------------------

    def command_line(self):
        d = self.dir
        cmd = [self.binary, '-nodefaults', '-display', 'none', '-no-user-config',
               '-machine', self.machine, '-m', str(self.memory),
               '-smp', str(self.smp),
               '-chardev', 'socket,id=qmp,path=%s/qmp.sock' % d,
               '-mon', 'chardev=qmp,mode=control',
               '-chardev', 'socket,id=ser,path=%s/serial.sock,logfile=%s/console.log'
               % (d, d),
               '-serial', 'chardev:ser', '-no-reboot']
        for i in range(self.extra_qmp):
            cmd += ['-chardev', 'socket,id=qmp%d,path=%s/qmp%d.sock' % (i, d, i),
                    '-mon', 'chardev=qmp%d,mode=control' % i]
        if self.hmp_monitor:
            cmd += ['-chardev', 'socket,id=hmp,path=%s/hmp.sock' % d,
                    '-mon', 'chardev=hmp,mode=readline']
        if self.incoming:
            cmd += ['-incoming', self.incoming]
        if self.accel == 'tcg':
            cmd += ['-accel', 'tcg,thread=multi']
        else:
            cmd += ['-accel', self.accel]
        if self.cpu:
            cmd += ['-cpu', self.cpu]
        if self.guest == 'debian':
            cmd += ['-kernel', os.path.join(GUEST, 'vmlinuz'),
                    '-initrd', os.path.join(GUEST, 'initramfs.gz'),
                    '-append', ('console=ttyS0 panic=-1 quiet ' + self.append).strip()]
        elif self.guest == 'kernel':
            cmd += ['-kernel', self.kernel]
            if self.append:
                cmd += ['-append', self.append]
        if self.balloon:
            cmd += ['-device', 'virtio-balloon-pci,id=balloon0']
        return self.wrapper + cmd + self.extra

    def start(self, wait_ready=None):
        if wait_ready is None:
            wait_ready = self.wait_ready
        if not os.access(self.binary, os.X_OK):
            raise VMError('no emulator at %s: run make build' % self.binary)
        self.dir = tempfile.mkdtemp(prefix='ocvm-')
        self.saved_tails = None
        self.tails_printed = False
        _started.append(self)
        qmp_l = _listen(os.path.join(self.dir, 'qmp.sock'))
        ser_l = _listen(os.path.join(self.dir, 'serial.sock'))
        extra_l = [_listen(os.path.join(self.dir, 'qmp%d.sock' % i))
                   for i in range(self.extra_qmp)]
        hmp_l = _listen(os.path.join(self.dir, 'hmp.sock')) if self.hmp_monitor else None
        self.stderr = open(os.path.join(self.dir, 'stderr.log'), 'w+')
        t0 = time.monotonic()
        self.proc = subprocess.Popen(self.command_line(), stdin=subprocess.DEVNULL,
                                     stdout=self.stderr, stderr=subprocess.STDOUT)
        try:
            self.serial = LineSocket(self._accept(ser_l))
            qmp_sock = self._accept(qmp_l)
            extra = [self._accept(l) for l in extra_l]
            if hmp_l:
                self.hmp_conn = LineSocket(self._accept(hmp_l))
            self.qmp_conn = QMP(qmp_sock)
            self.qmps = [QMP(c) for c in extra]
        finally:
            for listener in [qmp_l, ser_l, hmp_l] + extra_l:
                if listener:
                    listener.close()
        if self.guest == 'debian' and wait_ready and not self.incoming:
            self.console_wait(r'^OC-GUEST-READY', self.boot_timeout)
            self.shell('true')      # swallows the shell's banner
            self.shell('set +m')    # no job notices in command output
            self.boot_seconds = time.monotonic() - t0
        return self

    def _accept(self, listener):
        def connected():
            if self.proc.poll() is not None:
                raise VMError('QEMU exited with %d at start' % self.proc.returncode)
            if select.select([listener], [], [], 0.1)[0]:
                return listener.accept()[0]
            return None

        return wait_until(connected, 10, interval=0,
                          message='QEMU did not connect to %s' % listener.getsockname())

    def shutdown(self, timeout=10):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.qmp_conn.send('quit')
            except Exception:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for c in [self.qmp_conn, self.serial, self.hmp_conn] + self.qmps:
            if c:
                c.close()
        self.saved_tails = self.tails()
        self.stderr.close()
        self.proc = None

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            # __exit__ will not run: leave no QEMU behind
            self.print_tails()
            self.shutdown()
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.print_tails()
        self.shutdown()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        return False

    def console_log(self):
        try:
            with open(os.path.join(self.dir, 'console.log'), errors='replace') as f:
                return f.read()
        except OSError:
            return ''

    def tails(self, lines=40):
        """The tail of the guest console and of QEMU's stderr, as text; once
        the VM has shut down, as they were then."""
        if self.proc is None and self.saved_tails is not None:
            return self.saved_tails
        tail = self.console_log().splitlines()[-lines:]
        text = '--- guest console (last %d lines) ---\n' % len(tail)
        text += '\n'.join(tail) + '\n'
        if self.stderr and not self.stderr.closed:
            self.stderr.flush()
            self.stderr.seek(0)
            err = self.stderr.read().splitlines()[-lines:]
            self.stderr.seek(0, os.SEEK_END)
            if err:
                text += '--- QEMU stderr ---\n' + '\n'.join(err) + '\n'
        return text + '--- end ---\n'

    def print_tails(self, lines=40):
        sys.stderr.write(self.tails(lines))
        self.tails_printed = True

    # -- monitors ---------------------------------------------------------

    def qmp(self, cmd, args=None, wait=10, **kwargs):
        return self.qmp_conn.command(cmd, args, wait, **kwargs)

    def event(self, name, timeout=10, match=None):
        return self.qmp_conn.event(name, timeout, match)

    def hmp(self, line, wait=10):
        return self.qmp('human-monitor-command', {'command-line': line}, wait)

    def hmp_send(self, line):
        """Type a command on the HMP monitor (hmp_monitor=True)."""
        self.hmp_conn.send(line + '\n')

    def hmp_read(self, pattern, timeout=10):
        """Read HMP monitor output until a line matches; returns the match."""
        return self._wait_line(self.hmp_conn, pattern, timeout, 'HMP')

    def qom_get(self, path, prop):
        return self.qmp('qom-get', path=path, property=prop)

    def qom_set(self, path, prop, value):
        return self.qmp('qom-set', path=path, property=prop, value=value)

    # -- guest console ----------------------------------------------------

    def console_wait(self, pattern, timeout=30):
        """Wait for a console line matching pattern; returns the match."""
        return self._wait_line(self.serial, pattern, timeout, 'console')

    def _wait_line(self, conn, pattern, timeout, what):
        rx = re.compile(pattern)

        def matched(left):
            if self.proc.poll() is not None:
                raise VMError('QEMU exited with %d' % self.proc.returncode)
            line = conn.readline(min(left, 0.5))
            return rx.search(line) if line is not None else None

        return wait_until(matched, timeout, interval=0, blocking=True,
                          message='%s: no line matching %r within %.1f s'
                          % (what, pattern, timeout))

    def shell(self, command, timeout=30, check=True):
        """Run a command in the guest shell; returns its output (str).

        With check, a non-zero exit status raises VMError."""
        self.seq += 1
        tag = '@@OC-%d-' % self.seq
        self.serial.send('{ %s ; } 2>&1; echo "%s$?"\n' % (command, tag))
        out = []

        def status_line(left):
            """The line with the tag (and where the tag is), once read."""
            line = self.serial.readline(min(left, 0.5))
            if line is None:
                if self.proc.poll() is not None:
                    raise VMError('QEMU exited with %d' % self.proc.returncode)
                return None
            i = line.find(tag)
            if i >= 0:
                return line, i
            out.append(line)
            return None

        line, i = wait_until(status_line, timeout, interval=0, blocking=True,
                             message='guest: %r did not finish within %.1f s'
                             % (command, timeout))
        if line[:i]:
            out.append(line[:i])
        rc = int(line[i + len(tag):].strip() or -1)
        text = '\n'.join(out)
        if check and rc != 0:
            raise VMError('guest: %r exited %d: %s' % (command, rc, text))
        self.last_rc = rc
        return text

    def spawn(self, command):
        """Start a command in the guest's background; returns its pid."""
        return int(self.shell('%s >/dev/null 2>&1 & echo $!' % command).split()[-1])

    def kill(self, pid):
        self.shell('kill %d; wait %d 2>/dev/null; true' % (pid, pid))

    def spin(self, nthreads, seconds=0, timeout=60):
        """Busy-loop nthreads guest threads (0 s: until killed); returns
        the pid once every thread spins (the guest's OC-SPINNING marker)."""
        self.serial.send(spin_command(nthreads, seconds))
        return int(self.console_wait(SPINNING, timeout).group(1))

    def hold(self, mib, timeout=60):
        """Allocate, touch and hold mib MiB in the guest; returns the pid."""
        pid = self.spawn('oc-load hold %d' % mib)

        def held():
            rss = self.shell('grep VmRSS /proc/%d/status || echo gone' % pid)
            if 'gone' in rss:
                raise VMError('guest: oc-load hold %d exited' % mib)
            return int(rss.split()[1]) >= mib * 1024

        wait_until(held, timeout, interval=0.2,
                   message='guest: could not hold %d MiB within %d s' % (mib, timeout))
        return pid

    def starve(self, seconds, timeout=60):
        """Starve the guest's kernel workers for `seconds` (oc-load starve):
        the balloon driver cannot answer meanwhile.  Returns once every
        guest CPU spins (the guest's OC-STARVING marker); starved() waits
        for the end.  Started apart from the shell (in a subshell, so that
        init reaps it): the guest's shell exits when a job of its own ends
        while it waits for input."""
        self.serial.send('(setsid oc-load starve %s </dev/null >/dev/null 2>&1 &)\n'
                         % seconds)
        self.console_wait(r'OC-STARVING', timeout)

    def starved(self, timeout=60):
        """Wait for the end of starve() (the guest's OC-STARVED marker),
        then for the guest shell."""
        self.console_wait(r'OC-STARVED', timeout)
        self.resync()

    def resync(self, timeout=20):
        """Wait until the guest shell answers again."""
        failed = []

        def answers():
            try:
                self.shell('true', timeout=2)
                self.shell('set +m', timeout=2)
                return True
            except VMError as e:
                failed[:] = [e]
                return False

        def dropped(left):
            if answers():
                return True
            if left > 0:
                self.serial.send('\x03\n')   # drop any partial line
            return False

        try:
            wait_until(dropped, timeout, interval=0, blocking=True)
        except VMError:
            raise failed[0] from None

    def read_file(self, path):
        return self.shell('cat %s' % path)

    def meminfo(self):
        """Guest /proc/meminfo as {name: bytes}."""
        info = {}
        for line in self.read_file('/proc/meminfo').splitlines():
            parts = line.replace(':', ' ').split()
            if len(parts) >= 2:
                mult = 1024 if len(parts) > 2 and parts[2] == 'kB' else 1
                info[parts[0]] = int(parts[1]) * mult
        return info


# The test guest's busy loop (tests/guest/image/oc-load.c), in the
# background of its shell, and the console line it prints once every
# thread spins (its pid in group 1)
SPINNING = r'OC-SPINNING (\d+)'


def spin_command(nthreads, seconds=0):
    """The shell line that busy-loops nthreads guest threads for seconds
    (0: until killed)"""
    return 'oc-load spin %d %s >/dev/null 2>&1 &\n' % (nthreads, seconds)


def wait_until(predicate, timeout, interval=0.1, what='condition',
               message=None, blocking=False, quiet=False):
    """Call predicate until it returns a true value; returns that value.

    The one wait of this module: predicate is called at least once, then
    again every interval seconds while timeout seconds have not passed.
    blocking: predicate takes the seconds left (0 at the end, never
        negative) and may block up to that long itself (use interval=0)
    On timeout, VMError(message) is raised (by default "<what> not met
    within <timeout> s"), or with quiet None is returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate(max(0.0, deadline - time.monotonic())) if blocking \
            else predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            if quiet:
                return None
            raise VMError(message or '%s not met within %.1f s' % (what, timeout))
        if interval:
            time.sleep(interval)


# A skip reason that starts so names something the host lacks; the test
# runner counts such cases apart (scripts/run-tests.sh): not a failure of
# the code, and not a skip of a test the host could have run.
NOT_ON_THIS_HOST = 'not on this host:'


def kvm_missing():
    """None if the tests may use KVM here; else why not, as a skip reason.
    KVM tests are required wherever /dev/kvm exists (a device that cannot
    be opened fails them) and where QEMU_OC_REQUIRE_KVM=1."""
    if os.path.exists('/dev/kvm') or os.environ.get('QEMU_OC_REQUIRE_KVM') == '1':
        return None
    return ('%s no /dev/kvm (kernel %s); the test needs the KVM accelerator'
            % (NOT_ON_THIS_HOST, os.uname().release))


# The VMs started and not yet forgotten by VMTestCase, oldest first
_started = []


class VMTestCase(unittest.TestCase):
    """A test case that, when a test fails, prints the console tail and
    QEMU's stderr tail of the VMs it started (running or shut down since)
    and of the VMs still running then (e.g. one its class started).  A VM
    that left its `with` block with an exception printed its own already:
    it is not printed twice."""

    def need_kvm(self):
        """Skip (as not runnable on this host) without /dev/kvm; fail if it
        exists but this process cannot open it."""
        why = kvm_missing()
        if why:
            self.skipTest(why)
        if not os.access('/dev/kvm', os.R_OK | os.W_OK):
            self.fail('/dev/kvm cannot be opened for reading and writing')

    def run(self, result=None):
        if result is None:
            return super().run(result)
        first = len(_started)
        bad = len(result.failures) + len(result.errors)
        try:
            return super().run(result)
        finally:
            if len(result.failures) + len(result.errors) > bad:
                for i, vm in enumerate(_started):
                    running = vm.proc is not None
                    if running or (i >= first and not vm.tails_printed):
                        sys.stderr.write('--- %s failed: VM %s (%s) ---\n'
                                         % (self.id(), vm.dir,
                                            'running' if running else 'shut down'))
                        vm.print_tails()
            # forget the VMs that have shut down; running ones stay
            _started[:] = [vm for vm in _started if vm.proc is not None]
