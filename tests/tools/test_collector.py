#!/usr/bin/python3
"""The host's one collector (qemu-oc-balloond --serve) and its readers,
against fake QMP peers, good and misbehaving: every reader sees every VM
while each VM has one connection only (the collector's); a slow reader is
told what it skipped and a stuck one is dropped, while another reader
gets every frame; the socket's permissions; a collector that goes and
comes back; a collector that misbehaves (docs/collector.md)."""

import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from ocvm import VMTestCase, wait_until

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DAEMON = os.environ.get('QEMU_OC_BALLOOND',
                        os.path.join(TOP, 'build', 'tools', 'qemu-oc-balloond'))
VMTOP = os.environ.get('QEMU_OC_VMTOP', os.path.join(TOP, 'build', 'tools', 'vmtop'))
FAKE = os.path.join(TOP, 'tests', 'tools', 'fake_qmp.py')
GOOD = ['vm1', 'vm2', 'vm3']
STALL_S = 10            # tools/balloond/collector.h COLLECTOR_STALL_S


def meminfo(path, avail_kib):
    with open(path + '.tmp', 'w') as f:
        f.write('MemTotal: 16000000 kB\nMemAvailable: %d kB\n' % avail_kib)
    os.rename(path + '.tmp', path)


class Reader:
    """A raw reader of the collector's socket: messages, one per line."""

    def __init__(self, path, rcvbuf=None):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect(path)
        self.buf = b''

    def message(self, timeout=10):
        self.sock.settimeout(timeout)
        while b'\n' not in self.buf:
            data = self.sock.recv(1 << 16)
            if not data:
                return None
            self.buf += data
        line, self.buf = self.buf.split(b'\n', 1)
        return json.loads(line)

    def close(self):
        self.sock.close()


class CollectorTest(VMTestCase):

    def setUp(self):
        super().setUp()
        for path in (DAEMON, VMTOP):
            if not os.access(path, os.X_OK):
                self.fail('%s is not built (make build)' % path)
        self.tmp = tempfile.TemporaryDirectory(prefix='collector-')
        self.dir = os.path.join(self.tmp.name, 'qmp')
        os.mkdir(self.dir)
        self.sock = os.path.join(self.tmp.name, 'collector.sock')
        self.meminfo = os.path.join(self.tmp.name, 'meminfo')
        meminfo(self.meminfo, 8000000)
        self.procs = []
        self.daemons = []

    def tearDown(self):
        for d, log in self.daemons:
            if d.poll() is None:
                d.send_signal(signal.SIGTERM)
                d.wait(10)
            log.close()
        for p in self.procs:
            p.kill()
            p.wait()
        self.tmp.cleanup()
        super().tearDown()

    def fake(self, name, behaviour='good'):
        path = os.path.join(self.dir, name)
        log = os.path.join(self.tmp.name, name + '.log')
        self.procs.append(subprocess.Popen(
            ['/usr/bin/python3', FAKE, path, behaviour, '--log', log,
             '--lifetime', '300']))
        wait_until(lambda: os.path.exists(path), 10, 0.05, 'fake %s' % name)
        return log

    def fakes(self):
        logs = {name: self.fake(name) for name in GOOD}
        self.fake('frozen', 'silent')
        self.fake('garbage', 'invalid-json')
        return logs

    def daemon(self, *args, settle=True):
        path = os.path.join(self.tmp.name, 'balloond-%d.log' %
                            len(self.daemons))
        log = open(path, 'w')
        d = subprocess.Popen(
            [DAEMON, '--no-protect', '--qmp-dir', self.dir, '--host-meminfo',
             self.meminfo, '--interval', '0.2'] + list(args), stderr=log)
        self.daemons.append((d, log))
        d.log_path = path
        if settle:
            self.wait_log(d, 'settled:')
        return d

    def log_text(self, d):
        with open(d.log_path) as f:
            return f.read()

    def wait_log(self, d, text, count=1):
        def seen():
            if d.poll() is not None:
                self.fail('the daemon exited (%d): %s' %
                          (d.returncode, self.log_text(d)[-2000:]))
            return self.log_text(d).count(text) >= count
        wait_until(seen, 60, 0.05, 'daemon log: %r' % text)

    def vmtop(self, *args):
        return subprocess.run([VMTOP, '--collector', self.sock] + list(args),
                              capture_output=True, text=True, timeout=60)

    @staticmethod
    def connects(log):
        if not os.path.exists(log):
            return 0            # (written at the first connection)
        with open(log) as f:
            return f.read().splitlines().count('connect')

    @staticmethod
    def commands(log):
        with open(log) as f:
            return [line.split()[1] for line in f
                    if line.startswith('command ')]

    def test_readers_share_the_collectors_connection(self):
        logs = self.fakes()
        meminfo(self.meminfo, 400000)       # the host is short of memory
        self.daemon('--serve', self.sock, '--policy', 'off')
        outs = []

        def run():
            outs.append(self.vmtop('-b', '-n', '3', '--json'))
        threads = [threading.Thread(target=run) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len(outs), 5)
        for out in outs:
            self.assertEqual(out.returncode, 0, out.stderr)
            frames = [json.loads(line) for line in out.stdout.splitlines()]
            self.assertEqual(len(frames), 3)
            seqs = [f['source']['seq'] for f in frames]
            self.assertEqual(seqs, sorted(set(seqs)), 'frames move on')
            for f in frames:
                self.assertEqual(f['source']['mode'], 'collector')
                self.assertEqual(f['source']['policy'], 'off')
                vms = {vm['name']: vm for vm in f['vms']}
                self.assertEqual(sorted(vms), sorted(GOOD + ['frozen',
                                                             'garbage']))
                for name in GOOD:
                    self.assertTrue(vms[name]['responsive'])
                    self.assertIn('shares', vms[name]['runstates'])
                    self.assertIn('available-memory', vms[name]['stats'])
                self.assertFalse(vms['frozen']['responsive'])
                self.assertFalse(vms['garbage']['responsive'])
        # five readers, and each VM has had one client: the collector
        for name, log in logs.items():
            self.assertEqual(self.connects(log), 1, name)
            # policy off: nothing changed, although the host is short
            self.assertFalse({'balloon', 'stop', 'cont'} &
                             set(self.commands(log)), name)
        # (the count is real: a direct vmtop is one client more)
        out = subprocess.run([VMTOP, '--qmp-dir', self.dir, '--once'],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn('via direct', out.stdout)
        for name, log in logs.items():
            self.assertEqual(self.connects(log), 2, name)

    def test_slow_reader_skips_stuck_reader_dropped(self):
        self.fakes()
        d = self.daemon('--serve', self.sock)
        fast = Reader(self.sock)
        self.assertEqual(fast.message()['collector']['version'], 1)
        self.wait_log(d, 'reader 1 attached')
        slow = Reader(self.sock, rcvbuf=4096)
        self.wait_log(d, 'reader 2 attached')
        stuck = Reader(self.sock, rcvbuf=4096)
        self.wait_log(d, 'reader 3 attached')
        seqs, others = [], []
        stop = threading.Event()

        def read_fast():
            while not stop.is_set():
                m = fast.message()
                if m and 'frame' in m:
                    seqs.append(m['frame']['seq'])
                else:
                    others.append(m)
        t = threading.Thread(target=read_fast)
        t.start()
        try:
            # the slow reader reads nothing until the collector says it is
            # behind, then everything: it is told what it skipped
            self.wait_log(d, 'reader 2 is behind')
            msgs = []
            while True:
                m = slow.message()
                msgs.append(m)
                if 'skipped' in m:
                    break
            after = slow.message()
            before = [m['frame']['seq'] for m in msgs if 'frame' in m]
            self.assertGreater(m['skipped']['frames'], 0)
            self.assertEqual(after['frame']['seq'] - before[-1] - 1,
                             m['skipped']['frames'])
            # the stuck one never reads: dropped, the others go on
            self.wait_log(d, 'reader 3 dropped: it read nothing for')
            n = len(seqs)
            wait_until(lambda: len(seqs) > n + 2, 30, 0.05, 'more frames')
        finally:
            stop.set()
            t.join()
        self.assertEqual(others, [], 'the fast reader skipped nothing')
        self.assertEqual(seqs, list(range(seqs[0], seqs[0] + len(seqs))),
                         'the fast reader got every frame')
        for r in (fast, slow, stuck):
            r.close()

    def connect_as(self, group):
        return subprocess.run(
            ['setpriv', '--reuid=nobody', '--regid=' + group,
             '--clear-groups', '/usr/bin/python3', '-c',
             'import socket, sys\n'
             's = socket.socket(socket.AF_UNIX)\n'
             'try:\n'
             '    s.connect(sys.argv[1])\n'
             'except PermissionError:\n'
             '    sys.exit(13)\n'
             'print(s.recv(100).decode())\n', self.sock],
            capture_output=True, text=True, timeout=30)

    def test_permissions(self):
        os.chmod(self.tmp.name, 0o711)
        self.fake('vm1')
        d = self.daemon('--serve', self.sock)
        st = os.stat(self.sock)
        self.assertEqual(st.st_mode & 0o777, 0o600)
        self.assertEqual(self.connect_as('nogroup').returncode, 13)
        d.send_signal(signal.SIGTERM)
        self.assertEqual(d.wait(10), 0)
        self.assertFalse(os.path.exists(self.sock), 'removed at exit')

        self.daemon('--serve', self.sock, '--serve-group', 'users')
        st = os.stat(self.sock)
        self.assertEqual(st.st_mode & 0o777, 0o660)
        self.assertEqual(st.st_gid, 100)        # users
        self.assertEqual(self.connect_as('nogroup').returncode, 13)
        out = self.connect_as('users')
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn('"collector"', out.stdout)

    def test_collector_goes_and_comes_back(self):
        self.fake('vm1')
        d = self.daemon('--serve', self.sock)
        # a second collector never takes a live one's socket
        d2 = self.daemon('--serve', self.sock, settle=False)
        self.assertEqual(d2.wait(30), 1)
        self.assertIn('another collector serves', self.log_text(d2))
        vmtop = subprocess.Popen(
            [VMTOP, '--collector', self.sock, '-b', '--json', '-d', '0.1'],
            stdout=subprocess.PIPE, text=True)
        try:
            def source():
                return json.loads(vmtop.stdout.readline())['source']
            self.assertTrue(source()['attached'])
            d.send_signal(signal.SIGKILL)       # its socket stays behind
            d.wait()
            wait_until(lambda: not source()['attached'], 60, 0,
                       'vmtop sees the collector gone')
            lost = source()
            self.assertTrue(lost['error'])
            self.assertGreater(lost['seq'], 0, 'the last frame is kept')
            self.daemon('--serve', self.sock)   # takes the stale socket
            wait_until(lambda: source()['attached'], 60, 0,
                       'vmtop attached again')
        finally:
            vmtop.kill()
            vmtop.wait()
            vmtop.stdout.close()

    def serve_fake_collector(self, messages):
        """A collector of the test's own that sends @messages and waits."""
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(self.sock)
        srv.listen(4)

        def serve():
            conn, _ = srv.accept()
            for m in messages:
                conn.sendall(m.encode() + b'\n')
            conn.recv(1)
            conn.close()
        t = threading.Thread(target=serve, daemon=True)
        t.start()
        self.addCleanup(srv.close)

    def test_dead_vm_logged_once(self):
        """A VM that fails every retry the same way is logged once, then
        counted: the count is said when it fails otherwise, and when it
        answers again"""
        log = self.fake('frozen', 'silent')
        d = self.daemon(settle=False)
        wait_until(lambda: self.connects(log) >= 3, 60, 0.1,
                   'three tries of the frozen VM')
        said = [x for x in self.log_text(d).splitlines() if 'frozen:' in x]
        self.assertEqual(len(said), 1, said)
        self.assertIn('qmp_capabilities', said[0])
        # it answers again (a good peer takes its socket over)
        self.procs[-1].kill()
        self.procs[-1].wait()
        self.fake('frozen', 'good')
        self.wait_log(d, 'frozen: answering again, after')
        said = [x for x in self.log_text(d).splitlines() if 'frozen:' in x]
        said = said[:[i for i, x in enumerate(said) if 'answering' in x][0]]
        # the first failure; (once it closed) the count and the new one
        self.assertLessEqual(len(said), 3, said)
        self.assertIn('repeated', ''.join(said))

    def test_memory_flags(self):
        """MEM! from the collector's frames: a balloon over 64 MiB from
        the target set more than 2 minutes ago is not following (N), one
        set just now is still on its way (ok); a guest with under 5 % of
        its memory available is in distress (D); without statistics nor
        target, nothing is known (-); a target without its time is
        refused.  And the daemon's own frames carry the targets it set."""
        now = int(time.time() * 1000)
        base = {'where': 'x', 'taken-us': 1, 'responsive': True,
                'balloon-actual': 2 << 30}
        stats = {'update-ms': now, 'values': {'total-memory': 1000 << 20,
                                              'available-memory': 500 << 20}}
        vms = [dict(base, name='lagging', **{'balloon-target': 1 << 30,
                                             'balloon-target-ms': now - 600000}),
               dict(base, name='on-its-way', **{'balloon-target': 1 << 30,
                                                'balloon-target-ms': now}),
               dict(base, name='distressed', stats=dict(stats, values={
                   'total-memory': 1000 << 20,
                   'available-memory': 20 << 20})),
               dict(base, name='fine', stats=stats),
               dict(base, name='unknown'),
               dict(base, name='half', **{'balloon-target': 1 << 30})]
        self.serve_fake_collector([json.dumps({'collector': {'version': 1}}),
                                   json.dumps({'frame': {'seq': 1,
                                                         'time-ms': now,
                                                         'vms': vms}})])
        out = self.vmtop('--once', '--columns', 'memf,actual')
        self.assertEqual(out.returncode, 0, out.stderr)
        cells = {x.split()[0]: x.split()[1] for x in out.stdout.splitlines()[2:]
                 if x.strip()}
        self.assertEqual(cells, {'lagging': 'N', 'on-its-way': 'ok',
                                 'distressed': 'D', 'fine': 'ok',
                                 'unknown': '-'})
        os.unlink(self.sock)

        # the daemon's frames: a short host makes it set targets
        self.fakes()
        meminfo(self.meminfo, 400000)
        self.daemon('--serve', self.sock)

        def targets():
            o = self.vmtop('--once', '--json')
            if o.returncode:
                return None
            got = {vm['name']: vm.get('balloon-target')
                   for vm in json.loads(o.stdout)['vms']}
            return got if all(got.get(n) for n in GOOD) else None
        got = wait_until(targets, 60, 0.5, 'targets in the frames')
        for name in GOOD:
            self.assertLess(got[name], 1 << 30, name)

    def test_misbehaving_collector(self):
        hello = {'collector': {'version': 1, 'interval-ms': 1000}}
        good = {'name': 'good', 'where': 'x', 'taken-us': 1,
                'responsive': True, 'balloon-actual': 1 << 30}
        bad = [dict(good, name='bad1', responsive='yes'),
               dict(good, name='bad2', stats={'update-ms': 5,
                                              'values': {'free-memory': -1}}),
               dict(good, name='bad3', runstates={'cur': {'vcpus': []}}),
               {'name': 'bad4'}, 7]
        self.serve_fake_collector([json.dumps(hello), json.dumps(
            {'frame': {'seq': 1, 'time-ms': 1, 'vms': [good] + bad}})])
        out = self.vmtop('--once', '--json')
        self.assertEqual(out.returncode, 0, out.stderr)
        frame = json.loads(out.stdout)
        self.assertEqual([vm['name'] for vm in frame['vms']], ['good'])
        os.unlink(self.sock)

        self.serve_fake_collector([json.dumps(
            {'collector': {'version': 2}})])
        out = self.vmtop('--once')
        self.assertEqual(out.returncode, 1)
        self.assertIn('protocol version 2', out.stderr)
        os.unlink(self.sock)

        self.serve_fake_collector([json.dumps(hello), '{"frame": [[[[' +
                                   '[' * 100])
        out = self.vmtop('--once')
        self.assertEqual(out.returncode, 1)
        self.assertIn('invalid JSON', out.stderr)


if __name__ == '__main__':
    unittest.main()
