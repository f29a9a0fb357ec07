"""ocvm: boot and drive qemu-oc virtual machines from tests.

Python standard library only; run with Debian's /usr/bin/python3.

    with VM(smp=2, memory=512) as vm:        # Linux guest under TCG
        vm.qmp('query-balloon')
        vm.hmp('info balloon')
        vm.shell('cat /proc/meminfo')
        pid = vm.hold(100)                    # allocate and hold 100 MiB

Every wait has a timeout. When a VM exits with an exception pending, the
tail of the guest console and of QEMU's stderr is printed.

Environment:
    QEMU_OC_BINARY  emulator (default: <repo>/build/qemu-system-x86_64)
    QEMU_OC_GUEST   guest image dir (default: <repo>/build/guest)
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
        deadline = time.monotonic() + timeout
        while b'\n' not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                continue
            chunk = self.sock.recv(65536)
            if not chunk:
                raise VMError('connection closed')
            self.buf += chunk
        line, self.buf = self.buf.split(b'\n', 1)
        return line.decode(errors='replace').rstrip('\r')

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
        deadline = time.monotonic() + timeout
        while True:
            msg = self._read(max(0.0, deadline - time.monotonic()))
            if 'event' in msg:
                self.events.append(msg)
                continue
            if msg.get('id') != cmd_id:
                raise VMError('QMP: answer for id %r while waiting for %r: %r'
                              % (msg.get('id'), cmd_id, msg))
            if 'error' in msg:
                raise QMPError(cmd, msg['error'])
            return msg['return']

    def command(self, cmd, args=None, wait=10, **kwargs):
        """Run a command; arguments come from args (a dict) and kwargs.
        wait: seconds to wait for the answer."""
        return self.response(self.send(cmd, **dict(args or {}, **kwargs)), wait, cmd)

    def event(self, name, timeout=10, match=None):
        """Return (and consume) the first event called name.

        match: a dict the event's data must contain (e.g. {'device': 'c1'}
        for a device's own DEVICE_DELETED, not a child's); other events
        stay queued."""
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.events):
                data = ev.get('data', {})
                if ev['event'] == name and all(
                        data.get(k) == v for k, v in (match or {}).items()):
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise VMError('QMP: no %s event%s within %.1f s'
                              % (name, ' with %r' % match if match else '',
                                 timeout))
            line = self.conn.readline(left)
            if line is not None:
                msg = json.loads(line)
                if 'event' not in msg:
                    raise VMError('QMP: unexpected answer %r' % msg)
                self.events.append(msg)

    def close(self):
        self.conn.close()


def _listen(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(1)
    return s


class VM:
    """A qemu-oc VM. By default a Linux guest under multi-threaded TCG.

    accel:   'tcg' (multi-threaded), 'kvm', or 'qtest' (no guest runs)
    kernel:  None for the Debian test guest; a path for a guest of our own
             (then no initramfs, and boot waits for nothing); False for
             none (the firmware runs and finds nothing to boot)
    balloon: add virtio-balloon-pci with id 'balloon0'
    """

    def __init__(self, smp=2, memory=512, accel='tcg', kernel=None,
                 balloon=True, append='', args=(), machine='pc',
                 cpu=None, timeout=60, extra_qmp=0, hmp_monitor=False,
                 binary=None, incoming=None, wait_ready=True):
        self.smp = smp
        self.memory = memory
        self.accel = accel
        self.kernel = kernel
        self.balloon = balloon
        self.append = append
        self.extra = list(args)
        self.machine = machine
        self.cpu = cpu
        self.timeout = timeout
        self.extra_qmp = extra_qmp
        self.hmp_monitor = hmp_monitor
        self.binary = binary or BINARY
        self.incoming = incoming
        self.wait_ready = wait_ready     # wait for the guest shell
        self.qmps = []          # the extra QMP monitors
        self.hmp_conn = None    # the HMP monitor, a LineSocket
        self.dir = None
        self.proc = None
        self.qmp_conn = None
        self.serial = None
        self.seq = 0
        self.boot_seconds = None

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
        if self.accel == 'qtest' or self.kernel is False:
            pass        # no guest code runs, or the firmware only
        elif self.kernel is None:
            cmd += ['-kernel', os.path.join(GUEST, 'vmlinuz'),
                    '-initrd', os.path.join(GUEST, 'initramfs.gz'),
                    '-append', ('console=ttyS0 panic=-1 quiet ' + self.append).strip()]
        else:
            cmd += ['-kernel', self.kernel]
        if self.balloon:
            cmd += ['-device', 'virtio-balloon-pci,id=balloon0']
        return cmd + self.extra

    def start(self, wait_ready=None):
        if wait_ready is None:
            wait_ready = self.wait_ready
        if not os.access(self.binary, os.X_OK):
            raise VMError('no emulator at %s: run make build' % self.binary)
        self.dir = tempfile.mkdtemp(prefix='ocvm-')
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
        if (self.kernel is None and wait_ready and not self.incoming and
                self.accel != 'qtest'):
            self.console_wait(r'^OC-GUEST-READY', self.timeout)
            self.shell('true')      # swallows the shell's banner
            self.shell('set +m')    # no job notices in command output
            self.boot_seconds = time.monotonic() - t0
        return self

    def _accept(self, listener):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise VMError('QEMU exited with %d at start' % self.proc.returncode)
            ready, _, _ = select.select([listener], [], [], 0.1)
            if ready:
                conn, _ = listener.accept()
                return conn
        raise VMError('QEMU did not connect to %s' % listener.getsockname())

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

    def print_tails(self, lines=40):
        tail = self.console_log().splitlines()[-lines:]
        sys.stderr.write('--- guest console (last %d lines) ---\n' % len(tail))
        sys.stderr.write('\n'.join(tail) + '\n')
        if self.stderr and not self.stderr.closed:
            self.stderr.flush()
            self.stderr.seek(0)
            err = self.stderr.read().splitlines()[-lines:]
            if err:
                sys.stderr.write('--- QEMU stderr ---\n' + '\n'.join(err) + '\n')
        sys.stderr.write('--- end ---\n')

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
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise VMError('%s: no line matching %r within %.1f s'
                              % (what, pattern, timeout))
            if self.proc.poll() is not None:
                raise VMError('QEMU exited with %d' % self.proc.returncode)
            line = conn.readline(min(left, 0.5))
            if line is not None:
                m = rx.search(line)
                if m:
                    return m

    def shell(self, command, timeout=30, check=True):
        """Run a command in the guest shell; returns its output (str).

        With check, a non-zero exit status raises VMError."""
        self.seq += 1
        tag = '@@OC-%d-' % self.seq
        self.serial.send('{ %s ; } 2>&1; echo "%s$?"\n' % (command, tag))
        out = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise VMError('guest: %r did not finish within %.1f s' % (command, timeout))
            line = self.serial.readline(min(left, 0.5))
            if line is None:
                if self.proc.poll() is not None:
                    raise VMError('QEMU exited with %d' % self.proc.returncode)
                continue
            i = line.find(tag)
            if i >= 0:
                if line[:i]:
                    out.append(line[:i])
                rc = int(line[i + len(tag):].strip() or -1)
                text = '\n'.join(out)
                if check and rc != 0:
                    raise VMError('guest: %r exited %d: %s' % (command, rc, text))
                self.last_rc = rc
                return text
            out.append(line)

    def spawn(self, command):
        """Start a command in the guest's background; returns its pid."""
        return int(self.shell('%s >/dev/null 2>&1 & echo $!' % command).split()[-1])

    def kill(self, pid):
        self.shell('kill %d; wait %d 2>/dev/null; true' % (pid, pid))

    def spin(self, nthreads, seconds=0):
        """Busy-loop nthreads guest threads (0 s: until killed); returns the pid."""
        return self.spawn('oc-load spin %d %s' % (nthreads, seconds))

    def hold(self, mib, timeout=60):
        """Allocate, touch and hold mib MiB in the guest; returns the pid."""
        pid = self.spawn('oc-load hold %d' % mib)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rss = self.shell('grep VmRSS /proc/%d/status || echo gone' % pid)
            if 'gone' in rss:
                raise VMError('guest: oc-load hold %d exited' % mib)
            if int(rss.split()[1]) >= mib * 1024:
                return pid
            time.sleep(0.2)
        raise VMError('guest: could not hold %d MiB within %d s' % (mib, timeout))

    def starve(self, seconds):
        """Starve the guest's kernel workers for `seconds` (oc-load starve):
        the balloon driver cannot answer meanwhile.  The guest shell may be
        restarted by init afterwards: call resync() before using it."""
        self.serial.send('setsid oc-load starve %s </dev/null >/dev/null 2>&1 &\n'
                         % seconds)

    def resync(self, timeout=20):
        """Wait until the guest shell answers again."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.shell('true', timeout=2)
                self.shell('set +m', timeout=2)
                return
            except VMError:
                if time.monotonic() > deadline:
                    raise
                self.serial.send('\x03\n')   # drop any partial line

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


def wait_until(predicate, timeout, interval=0.1, what='condition'):
    """Poll predicate until it returns a true value; returns that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise VMError('%s not met within %.1f s' % (what, timeout))
        time.sleep(interval)
