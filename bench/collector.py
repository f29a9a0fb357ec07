#!/usr/bin/python3
"""Benchmark: the host tools' cost per VM, up to 1000 VMs (prints
numbers; not a test).

For N in 50, 250 and 1000 (BENCH_COUNTS, e.g. "50,250", overrides): N
fake VMs served by one process (tests/tools/fake_fleet.py: one QMP socket
each, answering as fake_qmp.py's good behaviour does, from one asyncio
loop, so that the fakes themselves cost little); beside them, in the
same directory, 2 frozen fakes and 2 answering garbage (a fleet of their
own, so that the good fleet's counters are the good VMs' own) and
BENCH_GUESTS (default 1) real TCG guests; and qemu-oc-balloond
--interval 2 --log-json on the directory, started as a service is (a
soft limit of 1,024 open files: prlimit), with host memory from files
of ours (--host-meminfo: plenty available, and a --host-psi file that
stays at 0, as bench/balloond.py does: nothing to do, the daemon only
collects, until the last step).  Once the daemon says "settled:", it is
measured for BENCH_SECONDS (default 30) seconds:

- its CPU as a share of one core (/proc/PID/stat utime + stime), and
  that share split by thread (/proc/PID/task/*/schedstat, ns): the VM
  workers' event loops (loop:*, one per 64 VMs), the main thread (where
  the plans are made) and the watchers; and how long its threads
  waited for a CPU (schedstat's run-queue time: the host is shared);
- its threads and resident memory (/proc/PID/status Threads, VmRSS) at
  the start and the end;
- its wake-ups: voluntary + involuntary context switches summed over
  its threads (/proc/PID/task/*/status), per second;
- the fleet's CPU (it must not be the bottleneck), and the QMP commands
  and events it served per second (SIGUSR1: its counters) against the
  expected 2 commands (query-balloon, query-vcpu-runstates) and one
  BALLOON_STATS event per VM per interval: whether the workers keep
  their rounds; the connections opened in the window (reconnections:
  the daemon drops a VM that misses a deadline) and the daemon's log
  lines per second.

Then, the daemon still running, vmtop --once --json on the same
directory: its wall time, the VMs in its frame (and how many
responsive: not the real guests, whose QMP socket serves one client, the
daemon), its CPU and peak RSS.  The daemon is the host's collector
too (--serve): READERS (default 10) readers attach to its socket for
READER_SECONDS (default 10) s, reading every frame; printed: the delay
from each frame's publication (its time-ms) to its arrival at a reader
(p50, p99, max over every frame of every reader), frames and skips per
reader, the daemon's CPU meanwhile, and the connections the VMs saw
opened (none: readers cost the VMs nothing); and vmtop --once attached
to the collector (its wall time, its VMs; in its frame, the misbehaving
fakes must be unresponsive and the real guests responsive with their
vCPUs).  Last, host memory turns short (the meminfo file renamed over
with 4.7 % available) for BENCH_PRESSURE_S (default 10) s: the balloon
commands the daemon sends, to how many VMs, and their decision latency
on fresh reports (from the guest's report to the command sent, the
daemon's --log-json "sent" lines; the target, as at 50 VMs in
bench/balloond.py: p99 <= 50 ms).  The daemon is stopped with SIGTERM
(its stop time shown), then the fleet.  The two binaries are copies
of build/tools/ taken at the start (a build beside the benchmark may
replace them).  Printed: a table per N, and one line per N at the end.

Run: /usr/bin/python3 bench/collector.py (BENCH_COUNTS=50
BENCH_SECONDS=10 for a quick check).  BENCH_KEEP=DIR keeps the
daemon's logs there (DIR/N-daemon.stderr, N-daemon.json); with it,
BENCH_PERF=1 also records the daemon with perf (call graphs) over the
window and while memory is short: DIR/N-steady.data and
DIR/N-pressure.data (perf report -i ...).
"""

import json
import os
import queue
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, 'tests', 'guest'))
from ocvm import VM  # noqa: E402
BUILT = {name: os.path.join(TOP, 'build', 'tools', name)
         for name in ('qemu-oc-balloond', 'vmtop')}
# copies of the two, taken at the start (see main)
BIN = dict(BUILT)
FLEET = os.path.join(TOP, 'tests', 'tools', 'fake_fleet.py')
PYTHON = '/usr/bin/python3'
COUNTS = [int(n) for n in
          os.environ.get('BENCH_COUNTS', '50,250,1000').split(',') if n]
SECONDS = float(os.environ.get('BENCH_SECONDS', '30'))
INTERVAL = 2
READERS = int(os.environ.get('BENCH_READERS', '10'))
READER_SECONDS = float(os.environ.get('BENCH_READER_SECONDS', '10'))
# beside the good fakes: frozen ones (greet, never answer), ones that
# answer garbage, and real TCG guests
FROZEN, GARBAGE = 2, 2
GUESTS = int(os.environ.get('BENCH_GUESTS', '1'))
TOTAL_KIB = 64 << 20                # a 64 GiB host
PLENTY_KIB = 48 << 20               # 75 % available: no pressure
LOW_KIB = 3 << 20                   # 4.7 %: below the 10 % low mark
PRESSURE_S = float(os.environ.get('BENCH_PRESSURE_S', '10'))
KEEP_DIR = os.environ.get('BENCH_KEEP')
PERF = KEEP_DIR and os.environ.get('BENCH_PERF') == '1'
TICK = os.sysconf('SC_CLK_TCK')


def write_file(path, text):
    tmp = path + '.new'
    with open(tmp, 'w') as f:
        f.write(text)
    os.rename(tmp, path)


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:         # (a thread or process that just went)
        return None


def stat_fields(text):
    """comm and the fields after it of a /proc stat file"""
    head, tail = text.rsplit(')', 1)
    return head.split('(', 1)[1], tail.split()


def cpu_s(pid):
    """utime + stime of @pid (all its threads), seconds"""
    _, f = stat_fields(read('/proc/%d/stat' % pid))
    return (int(f[11]) + int(f[12])) / TICK


def status(pid):
    """Threads and VmRSS (MiB) of @pid"""
    out = {}
    for line in read('/proc/%d/status' % pid).splitlines():
        key, _, value = line.partition(':')
        if key == 'Threads':
            out['threads'] = int(value)
        elif key == 'VmRSS':
            out['rss'] = int(value.split()[0]) / 1024.0
    return out


def tasks(pid):
    """Per thread of @pid: tid -> (comm, CPU ns, run-queue wait ns,
    voluntary, involuntary context switches).  CPU from schedstat (ns:
    the ticks of stat, truncated per thread, would lose up to one tick
    a thread over the window), else stat."""
    out = {}
    for tid in os.listdir('/proc/%d/task' % pid):
        base = '/proc/%d/task/%s/' % (pid, tid)
        st, ss = read(base + 'stat'), read(base + 'status')
        sched = read(base + 'schedstat')
        if st is None or ss is None:
            continue
        comm, f = stat_fields(st)
        if sched:
            run_ns, wait_ns = (int(x) for x in sched.split()[:2])
        else:
            run_ns = (int(f[11]) + int(f[12])) * 10**9 // TICK
            wait_ns = 0
        sw = {}
        for line in ss.splitlines():
            key, _, value = line.partition(':')
            if key.endswith('voluntary_ctxt_switches'):
                sw[key] = int(value)
        out[int(tid)] = (comm, run_ns, wait_ns,
                         sw.get('voluntary_ctxt_switches', 0),
                         sw.get('nonvoluntary_ctxt_switches', 0))
    return out


def timed(fn, *args):
    """fn(*args), and the monotonic time halfway through it (reading
    a thousand threads' files takes a while)"""
    t0 = time.monotonic()
    out = fn(*args)
    return out, (t0 + time.monotonic()) / 2


def group(pid, tid, comm):
    if tid == pid:
        return 'main'
    if comm.startswith('loop:'):
        return 'loop:* (VM workers)'
    if comm.startswith('pool'):
        return 'pool (blocking calls)'
    return comm


class Fleet:
    """fake_fleet.py: its stdout read by a thread, line by line"""

    def __init__(self, qmp, n, *args):
        self.proc = subprocess.Popen(
            [PYTHON, FLEET, qmp, str(n), '--lifetime',
             str(int(SECONDS + 300 + n // 5))] + list(args),
            stdout=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self.pump, daemon=True).start()

    def pump(self):
        for line in self.proc.stdout:
            self.lines.put(line.split())
        self.lines.put(None)

    def expect(self, word, timeout):
        end = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01,
                                                  end - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                raise RuntimeError('the fleet said no "%s" (exit %s)'
                                   % (word, self.proc.poll()))
            if line and line[0] == word:
                return line

    def stats(self):
        """The fleet's counters: connections, open, commands, events,
        dropped"""
        self.proc.send_signal(signal.SIGUSR1)
        words = self.expect('stats', 10)
        return dict(zip(words[1::2], (int(v) for v in words[2::2])))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_for(cond, seconds, proc):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.1)
    return cond()


def run_vmtop(qmp, tmp):
    """vmtop --once --json: wall s, its frame, CPU s, peak RSS MiB"""
    with open(os.path.join(tmp, 'vmtop.stderr'), 'w') as err:
        t0 = time.monotonic()
        p = subprocess.Popen([BIN['vmtop'], '--once', '--json', '--qmp-dir',
                              qmp],
                             stdout=subprocess.PIPE, stderr=err)
        out = p.stdout.read()
        _, st, ru = os.wait4(p.pid, 0)
        wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(st)
    frame = json.loads(out) if out.strip() else {'vms': []}
    tail = (read(os.path.join(tmp, 'vmtop.stderr')) or '').splitlines()[-3:]
    return (wall, frame, p.returncode, ru.ru_utime + ru.ru_stime,
            ru.ru_maxrss / 1024.0, tail)


def read_frames(path, seconds, out):
    """A reader: (arrival - publication) ms of every frame, and skips."""
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    f = s.makefile('rb')
    delays, skipped, end = [], 0, time.monotonic() + seconds
    s.settimeout(5)
    while time.monotonic() < end:
        line = f.readline()
        if not line:
            break
        now_ms = time.time() * 1000
        msg = json.loads(line)
        if 'frame' in msg and msg['frame']['seq'] > 1:
            delays.append(now_ms - msg['frame']['time-ms'])
        skipped += msg.get('skipped', {}).get('frames', 0)
    s.close()
    out.append((delays, skipped))


def readers_window(sock, daemon, fleet, tmp, n_readers, seconds):
    """READERS readers over READER_SECONDS: what they and the VMs see."""
    out = []
    f0, c0, t0 = fleet.stats(), cpu_s(daemon.pid), time.monotonic()
    threads = [threading.Thread(target=read_frames, args=(sock, seconds,
                                                          out))
               for _ in range(n_readers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    cpu = (cpu_s(daemon.pid) - c0) / wall * 100
    new = fleet.stats()['connections'] - f0['connections']
    with open(os.path.join(tmp, 'vmtop-c.stderr'), 'w') as err:
        v0 = time.monotonic()
        p = subprocess.run([BIN['vmtop'], '--once', '--json', '--collector',
                            sock], stdout=subprocess.PIPE, stderr=err)
        v_wall = time.monotonic() - v0
    frame = json.loads(p.stdout) if p.stdout.strip() else {'vms': []}
    delays = sorted(d for ds, _ in out for d in ds)
    return {
        'readers': len(out), 'cpu': cpu, 'new': new,
        'frames': [len(ds) for ds, _ in out],
        'skipped': sum(sk for _, sk in out),
        'p50': delays[len(delays) // 2] if delays else float('nan'),
        'p99': delays[min(len(delays) - 1, int(len(delays) * 0.99))]
        if delays else float('nan'),
        'max': delays[-1] if delays else float('nan'),
        'vmtop': (v_wall, len(frame.get('vms', [])), p.returncode),
        'frame': frame,
    }


def perf_start(daemon, name):
    """With BENCH_PERF: perf records @daemon until perf_stop()"""
    if not PERF:
        return None
    os.makedirs(KEEP_DIR, exist_ok=True)
    out = os.path.join(KEEP_DIR, name + '.data')
    p = subprocess.Popen(['perf', 'record', '-q', '-g', '-o', out,
                          '-p', str(daemon.pid)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return p


def perf_stop(p):
    if p is not None:
        p.send_signal(signal.SIGINT)
        _, err = p.communicate()
        if p.returncode and err.strip():
            sys.stderr.write('perf: %s\n' % err.decode().strip())


def pressure_window(mem, log_path, daemon, n):
    """Host memory turns short for PRESSURE_S: the balloon commands the
    daemon sends, and each one's latency from the guest's report it was
    decided on (its --log-json "sent" lines)"""
    perf = perf_start(daemon, '%d-pressure' % n)
    start_ms = time.time() * 1000
    write_file(mem, 'MemTotal:       %8d kB\nMemFree:        %8d kB\n'
               'MemAvailable:   %8d kB\n' % (TOTAL_KIB, LOW_KIB, LOW_KIB))
    time.sleep(PRESSURE_S)
    perf_stop(perf)
    if daemon.poll() is not None:
        raise RuntimeError('the daemon exited (%d)' % daemon.returncode)
    sent = []
    for line in (read(log_path) or '').splitlines():
        try:
            o = json.loads(line)
        except ValueError:
            continue            # (a line being written)
        if 'sent-mib' in o and o['time-ms'] >= start_ms:
            sent.append(o)
    # a command decided at the switch on the report in hand counts that
    # report's age: shown apart, as bench/balloond.py does
    fresh = sorted(o['latency-ms'] for o in sent
                   if o['time-ms'] - o['latency-ms'] >= start_ms)
    return {'n': len(sent), 'vms': len(set(o['vm'] for o in sent)),
            'failed': sum(1 for o in sent if not o['ok']),
            'fresh': fresh}


def pctl(v, p):
    return v[min(len(v) - 1, int(len(v) * p / 100))] if v else float('nan')


def run(n):
    with tempfile.TemporaryDirectory(prefix='bench-collector-') as tmp:
        qmp = os.path.join(tmp, 'qmp')
        os.mkdir(qmp)
        mem, psi = os.path.join(tmp, 'meminfo'), os.path.join(tmp, 'psi')
        write_file(mem, 'MemTotal:       %8d kB\nMemFree:        %8d kB\n'
                   'MemAvailable:   %8d kB\n'
                   % (TOTAL_KIB, PLENTY_KIB, PLENTY_KIB))
        write_file(psi, 'some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n'
                   'full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n')
        err_path = os.path.join(tmp, 'daemon.stderr')
        log_path = os.path.join(tmp, 'daemon.json')
        sock = os.path.join(tmp, 'collector.sock')
        t0 = time.monotonic()
        fleet = Fleet(qmp, n)
        # the misbehaving apart, so that the fleet's counters are the good
        # VMs' own: bad0000.. frozen, then those answering garbage
        bad_fleet = Fleet(qmp, FROZEN, '--prefix', 'bad', '--frozen',
                          str(FROZEN), '--garbage', str(GARBAGE))
        daemon = None
        guests = [VM(smp=2, memory=256, args=[
            '-qmp', 'unix:%s,server=on,wait=off'
            % os.path.join(qmp, 'guest%d' % i)]) for i in range(GUESTS)]
        # a service's soft limit of open files (systemd's), its hard one
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nofile = '--nofile=1024:%s' % ('unlimited'
                                       if hard == resource.RLIM_INFINITY
                                       else hard)
        try:
            for g in guests:
                g.start()
            fleet.expect('ready', 60 + n / 10)
            bad_fleet.expect('ready', 60)
            ready_s = time.monotonic() - t0
            with open(err_path, 'w') as err:
                t_daemon = time.monotonic()
                daemon = subprocess.Popen(
                    ['prlimit', nofile,
                     BIN['qemu-oc-balloond'], '--log-json', log_path,
                     '--qmp-dir', qmp,
                     '--interval', str(INTERVAL), '--host-meminfo', mem,
                     '--host-psi', psi, '--serve', sock],
                    stdout=subprocess.DEVNULL, stderr=err)
            connected_s = None

            def settled():
                nonlocal connected_s
                if connected_s is None and fleet.stats()['open'] >= n:
                    connected_s = time.monotonic() - t_daemon
                return 'settled:' in read(err_path)
            if not wait_for(settled, 60 + n / 10, daemon):
                raise RuntimeError('the daemon did not settle (exit %s)'
                                   % daemon.poll())
            settled_s = time.monotonic() - t_daemon
            if connected_s is None and fleet.stats()['open'] >= n:
                connected_s = time.monotonic() - t_daemon

            # the window
            f0, t_start = fleet.stats(), time.monotonic()
            lines0 = len(read(err_path).splitlines())
            c0, fc0 = cpu_s(daemon.pid), cpu_s(fleet.proc.pid)
            s0, (k0, tk0) = status(daemon.pid), timed(tasks, daemon.pid)
            perf = perf_start(daemon, '%d-steady' % n)
            time.sleep(SECONDS)
            perf_stop(perf)
            (k1, tk1), s1 = timed(tasks, daemon.pid), status(daemon.pid)
            c1, fc1 = cpu_s(daemon.pid), cpu_s(fleet.proc.pid)
            f1, t_end = fleet.stats(), time.monotonic()
            lines1 = len(read(err_path).splitlines())
            if daemon.poll() is not None:
                raise RuntimeError('the daemon exited (%d)'
                                   % daemon.returncode)
            vmtop = run_vmtop(qmp, tmp)
            rd = readers_window(sock, daemon, fleet, tmp, READERS,
                                READER_SECONDS)
            dl = pressure_window(mem, log_path, daemon, n)

            t_stop = time.monotonic()
            daemon.terminate()
            try:
                rc = daemon.wait(timeout=60)
            except subprocess.TimeoutExpired:
                rc = 'killed after 60 s'
            stop_s = time.monotonic() - t_stop
        except Exception:
            tail = (read(err_path) or '').splitlines()[-10:]
            sys.stderr.write('daemon stderr (tail):\n  %s\n'
                             % '\n  '.join(tail))
            raise
        finally:
            if daemon is not None and daemon.poll() is None:
                daemon.kill()
                daemon.wait()
            fleet.stop()
            bad_fleet.stop()
            for g in guests:
                g.shutdown()
        log = read(err_path).splitlines()
        if KEEP_DIR:
            os.makedirs(KEEP_DIR, exist_ok=True)
            shutil.copy(err_path, os.path.join(KEEP_DIR,
                                               '%d-daemon.stderr' % n))
            shutil.copy(log_path, os.path.join(KEEP_DIR,
                                               '%d-daemon.json' % n))

    wall = t_end - t_start
    # per thread group: CPU (ns) and context switches over the window
    groups, switches, waited = {}, [0, 0], 0
    for tid, (comm, run_ns, wait_ns, vol, invol) in k1.items():
        _, run0, wait0, vol0, invol0 = k0.get(tid, (comm, 0, 0, 0, 0))
        g = groups.setdefault(group(daemon.pid, tid, comm), [0, 0, 0])
        g[0] += run_ns - run0
        g[1] += 1
        g[2] = max(g[2], run_ns - run0)
        waited += wait_ns - wait0
        switches[0] += vol - vol0
        switches[1] += invol - invol0
    pct = (lambda ns: ns / 1e9 / (tk1 - tk0) * 100)
    by_thread = ', '.join(
        '%s%s %.2f %%%s' % (name, ' (%d)' % g[1] if g[1] > 1 else '',
                            pct(g[0]), ' (busiest %.2f %%)' % pct(g[2])
                            if g[1] > 1 else '')
        for name, g in sorted(groups.items(), key=lambda kv: -kv[1][0]))
    by_thread = 'sum %.2f %%: %s' % (pct(sum(g[0] for g in groups.values())),
                                     by_thread)
    cpu = (c1 - c0) / wall * 100
    fleet_cpu = (fc1 - fc0) / wall * 100
    cmds = (f1['commands'] - f0['commands']) / wall
    events = (f1['events'] - f0['events']) / wall
    expected = 2.0 * n / INTERVAL
    v_wall, frame, v_rc, v_cpu, v_rss, v_err = vmtop
    vms = frame.get('vms', [])
    responsive = sum(1 for v in vms if v.get('responsive'))
    # the collector's frame (vmtop attached to it: a direct vmtop cannot
    # have a QEMU's one QMP connection, the daemon has it): what the
    # misbehaving and the guests looked like
    by_name = {v.get('name'): v for v in rd['frame'].get('vms', [])}
    bad = ['bad%04d' % i for i in range(FROZEN + GARBAGE)]
    bad_down = sum(1 for b in bad if b in by_name and
                   not by_name[b].get('responsive'))
    real = ['guest%d' % i for i in range(GUESTS)]
    real_up = sum(1 for g in real if g in by_name and
                  by_name[g].get('responsive') and
                  by_name[g].get('runstates', {}).get('vcpus'))
    source = frame.get('source')        # (newer vmtops: direct, collector)
    if isinstance(source, dict):
        source = source.get('mode', source)

    print('N = %d VMs (fake fleet ready in %.1f s: %d good, %d frozen, %d '
          'answering garbage; and %d real TCG guest%s); qemu-oc-balloond '
          '--interval %d, under a soft limit of 1,024 open files, '
          'measured over %.0f s after "settled:"'
          % (n + FROZEN + GARBAGE + GUESTS, ready_s, n, FROZEN, GARBAGE,
             GUESTS, '' if GUESTS == 1 else 's', INTERVAL, wall))
    rows = [
        ('daemon CPU', '%.2f %% of one core' % cpu),
        ('  by thread', by_thread),
        ('  run-queue wait', '%.2f %% of one core (its threads ready, '
         'waiting for a CPU: the host is shared)' % pct(waited)),
        ('daemon threads', 'start %d, end %d' % (s0['threads'],
                                                 s1['threads'])),
        ('daemon RSS', 'start %.1f MiB, end %.1f MiB' % (s0['rss'],
                                                         s1['rss'])),
        ('daemon wake-ups', '%.0f /s (context switches: %.0f voluntary + '
         '%.0f involuntary /s)' % (sum(switches) / wall, switches[0] / wall,
                                   switches[1] / wall)),
        ('fleet CPU', '%.2f %% of one core' % fleet_cpu),
        ('QMP served', '%.0f commands/s (expected %.0f: 2 per VM per %d s), '
         '%.0f events/s (expected %.0f); %d connections open, %d new '
         'in the window (reconnections), %d dropped'
         % (cmds, expected, INTERVAL, events, n / INTERVAL, f1['open'],
            f1['connections'] - f0['connections'],
            f1['dropped'] - f0['dropped'])),
        ('daemon log', '%.1f lines/s on stderr in the window'
         % ((lines1 - lines0) / wall)),
        ('daemon start', '%s, "settled:" after %.1f s; %d log lines on '
         'stderr in all' % ('every VM connected after %.1f s' % connected_s
                            if connected_s is not None else
                            'not every VM connected by "settled:"',
                            settled_s, len(log))),
        ('vmtop --once --json', '%.2f s wall, %d VMs (%d responsive)%s, '
         'exit %d, CPU %.2f s, peak RSS %.1f MiB%s'
         % (v_wall, len(vms), responsive,
            ' via %s' % source if source else '', v_rc,
            v_cpu, v_rss, '; stderr: %s' % ' | '.join(v_err)
            if v_err and (v_rc or len(vms) < n) else '')),
        ('%d readers' % rd['readers'],
         'frame delay after publication p50 %.1f ms, p99 %.1f ms, max '
         '%.1f ms; frames per reader %s, %d skipped; daemon CPU %.2f %% '
         'of one core meanwhile; %d new connections to the VMs'
         % (rd['p50'], rd['p99'], rd['max'],
            '%d-%d' % (min(rd['frames']), max(rd['frames']))
            if rd['frames'] else '-', rd['skipped'], rd['cpu'], rd['new'])),
        ('vmtop via collector', '%.2f s wall, %d VMs, exit %d'
         % rd['vmtop']),
        ('beside the good ones', '%d of %d misbehaving fakes unresponsive '
         'in the collector\'s frame; %d of %d real guests responsive with '
         'their vCPUs' % (bad_down, len(bad), real_up, len(real))),
        ('host memory short', '%.0f s: %d balloon commands to %d VMs (%d '
         'failed); decision latency on fresh reports (guest report -> '
         'command sent) n=%d, p50 %.0f ms, p99 %.0f ms, max %.0f ms'
         % (PRESSURE_S, dl['n'], dl['vms'], dl['failed'], len(dl['fresh']),
            pctl(dl['fresh'], 50), pctl(dl['fresh'], 99),
            dl['fresh'][-1] if dl['fresh'] else float('nan'))),
        ('daemon stop (SIGTERM)', '%.2f s, exit %s' % (stop_s, rc)),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print('  %-*s  %s' % (width, k, v))
    print()
    sys.stdout.flush()
    return (n, cpu, sum(switches) / wall, s1['threads'], s1['rss'],
            fleet_cpu, cmds, expected, v_wall, len(vms))


def main():
    if not all(os.access(b, os.X_OK) for b in BUILT.values()):
        print('building the host tools (meson compile -C build/oc, '
              'scripts/build-tools.sh)')
        sys.stdout.flush()
        if subprocess.call(['meson', 'compile', '-C',
                            os.path.join(TOP, 'build', 'oc')]) != 0 or \
                subprocess.call([os.path.join(TOP, 'scripts',
                                              'build-tools.sh')]) != 0:
            print('the host tools did not build')
            return 1
    # the binaries as they are now: a build beside the benchmark may
    # replace them while it runs
    bindir = tempfile.mkdtemp(prefix='bench-collector-bin-')
    results = []
    try:
        for name, path in BUILT.items():
            BIN[name] = os.path.join(bindir, name)
            shutil.copy2(path, BIN[name])
        print('binaries: %s' % ', '.join(
            'build/tools/%s (built %s)' % (name, time.strftime(
                '%Y-%m-%d %H:%M:%S', time.localtime(os.stat(path).st_mtime)))
            for name, path in BUILT.items()))
        print()
        for n in COUNTS:
            results.append(run(n))
    except RuntimeError as e:
        print('benchmark failed: %s' % e)
        return 1
    finally:
        shutil.rmtree(bindir, ignore_errors=True)
    print('%6s %10s %11s %8s %8s %10s %15s %8s %9s'
          % ('VMs', 'daemon %', 'wake-ups/s', 'threads', 'RSS MiB',
             'fleet %', 'cmds/s (exp.)', 'vmtop s', 'vmtop VMs'))
    for r in results:
        print('%6d %10.2f %11.0f %8d %8.1f %10.2f %15s %8.2f %9d'
              % (r[0], r[1], r[2], r[3], r[4], r[5],
                 '%.0f (%.0f)' % (r[6], r[7]), r[8], r[9]))
    return 0


if __name__ == '__main__':
    sys.exit(main())
