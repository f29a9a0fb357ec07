"""The memory policies bench/overcommit.py compares (not a test).

Two fixed-cycle controllers that reimplement, in our own words, the balloon
rules the daemons in use today publish (the facts are in the project's
design notes, "Published policies to compare against"), and a wrapper of
qemu-oc-balloond.  The controllers run in a thread of the benchmark and
talk to each VM on its own extra QMP monitor (VM(extra_qmp=1), vm.qmps[0]),
so they never share a connection with the workload.  Like the originals
on a host whose VMs live in a memory cgroup, they take the cgroup's
limit - usage for the host's free memory: they know no better.

- MomPolicy (oVirt MOM): samples every 5 s (cgroup free; each guest's
  balloon size and MemFree via query-balloon), decides every 10 s on
  averages of the last 10 samples.  The cgroup's free below 20 % of its
  limit is pressure: every guest shrinks toward its used memory (balloon
  size - MemFree) + 20 % of its size, at most 5 % of its size per step.
  Without pressure every guest grows back toward its maximum, at most 5 %
  per step, and at least to used + 20 % of its maximum.  Changes of under
  0.25 % of the size are skipped.  MomRawPolicy: the same on the latest
  sample alone, without the averaging.  (MOM's scaling of the guests' free
  target by the host's pressure and its "critical" level below 5 %, which
  aims at negative guest free memory, are left out: with no swap in the
  guests they would only OOM guest processes.)
- ProxmoxPolicy (Proxmox VE auto-ballooning): one 10 s cycle; the goal is
  80 % of the limit - the cgroup's usage (page cache counts as used),
  ignored under 10 MiB.  The goal is shared out equally (equal shares)
  between the VMs' balloons, each between its minimum (MIN_MIB) and its
  maximum, moving each VM at most 100 MiB per cycle and never against the
  goal.  Growing serves first the VMs with memory pressure (MemFree under
  12 % of their maximum), shrinking first the VMs with MemFree above 25 %
  of their minimum; the others only if those cannot move.
- Balloond: build/tools/qemu-oc-balloond with its defaults, --interval
  0.5, a --host-meminfo file with plenty of memory (only the cgroup is
  short), on a directory of the VMs' QMP sockets.

Each policy records its balloon commands: commands = [(t monotonic, vm
index, current MiB, target MiB)].
"""

import json
import os
import re
import signal
import subprocess
import threading
import time

MIB = 1 << 20
TICK = os.sysconf('SC_CLK_TCK')
TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DAEMON = os.path.join(TOP, 'build', 'tools', 'qemu-oc-balloond')

SAMPLE_S = 5.0          # MOM and Proxmox: guest statistics every 5 s
CYCLE_S = 10.0          # ... a decision every 10 s
MIN_MIB = 512           # Proxmox balloon minimum


def cpu_s(pid):
    """utime + stime of pid, seconds (None once it is gone)."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            fields = f.read().rsplit(')', 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


def direction_changes(moves):
    """How often a sequence of (current, target) moves changes direction."""
    signs = [1 if t > c else -1 for c, t in moves if t != c]
    return sum(1 for a, b in zip(signs, signs[1:]) if a != b)


class Controller(threading.Thread):
    """A fixed-cycle balloon controller (a thread): samples every SAMPLE_S,
    decides every CYCLE_S (the second sample of each cycle)."""

    name_ = 'controller'

    def __init__(self, cgroup, vms, log):
        super().__init__(name=self.name_, daemon=True)
        self.cg, self.vms, self.log = cgroup, list(vms), log
        self.limit_mib = cgroup.limit() // MIB
        self.max_mib = [vm.memory for vm in self.vms]
        self.alive = [True] * len(self.vms)
        self.hist = [[] for _ in self.vms]  # per VM: [(actual MiB, free MiB, total MiB)]
        self.host_free = []                 # [cgroup limit - usage, MiB]
        self.commands = []
        self.cpu = 0.0
        self.errors = 0
        self._halt = threading.Event()

    # -- inputs ------------------------------------------------------------

    def _qmp(self, i, cmd, **args):
        """A QMP command on VM i's own monitor; None (and VM i is gone)
        once its QEMU has exited."""
        vm = self.vms[i]
        if not self.alive[i] or vm.proc is None or vm.proc.poll() is not None:
            self.alive[i] = False
            return None
        try:
            return vm.qmps[0].command(cmd, args, wait=5)
        except Exception as e:       # QEMU died meanwhile, or an error
            if vm.proc is None or vm.proc.poll() is not None:
                self.alive[i] = False
            else:
                self.errors += 1
                self.log('%s: %s on VM %d: %s' % (self.name_, cmd, i, e))
            return None

    def sample(self):
        try:
            self.host_free.append(self.limit_mib - self.cg.usage() / MIB)
        except OSError:
            pass
        for i in range(len(self.vms)):
            r = self._qmp(i, 'query-balloon', refresh='sync', timeout=1000)
            if r is None:
                continue
            st = r.get('stats', {})
            self.hist[i].append((r['actual'] / MIB,
                                 st.get('free-memory', 0) / MIB,
                                 st.get('total-memory', 0) / MIB))

    def set_balloon(self, i, target_mib):
        cur = self.hist[i][-1][0]
        target_mib = int(max(1, min(self.max_mib[i], target_mib)))
        if target_mib == int(cur):
            return
        if self._qmp(i, 'balloon', value=target_mib * MIB) is not None:
            self.commands.append((time.monotonic(), i, int(cur), target_mib))
            self.log('%s: VM %d balloon %d -> %d MiB' % (self.name_, i, cur, target_mib))

    # -- the loop ----------------------------------------------------------

    def run(self):
        n = 0
        next_t = time.monotonic()
        while not self._halt.is_set():
            self.sample()
            n += 1
            if n % int(CYCLE_S / SAMPLE_S) == 0:
                self.decide()
            self.cpu = time.thread_time()
            next_t += SAMPLE_S
            self._halt.wait(max(0.0, next_t - time.monotonic()))
        self.cpu = time.thread_time()

    def decide(self):
        raise NotImplementedError

    def stop(self):
        self._halt.set()
        if self.is_alive():
            self.join(15)

    def moves(self, i):
        return [(c, t) for _, j, c, t in self.commands if j == i]


def _avg(values, n=10):
    values = values[-n:]
    return sum(values) / len(values)


class MomPolicy(Controller):
    name_ = 'mom'
    PRESSURE = 0.20         # host free below this share of its memory
    GUEST_FREE = 0.20       # what a guest keeps free
    MAX_CHANGE = 0.05       # most change per decision, share of the size
    MIN_CHANGE = 0.0025     # smaller changes are skipped
    SAMPLES = 10            # moving averages over this many samples

    def decide(self):
        if not self.host_free:
            return
        free_pct = _avg(self.host_free, self.SAMPLES) / self.limit_mib
        pressure = free_pct < self.PRESSURE
        self.log('mom: cgroup free %.1f %% (averaged)%s'
                 % (100 * free_pct, ', pressure' if pressure else ''))
        for i, hist in enumerate(self.hist):
            if not self.alive[i] or not hist:
                continue
            cur, mx = hist[-1][0], self.max_mib[i]
            used = (_avg([h[0] for h in hist], self.SAMPLES)
                    - _avg([h[1] for h in hist], self.SAMPLES))
            if pressure:
                target = max(cur * (1 - self.MAX_CHANGE), used + self.GUEST_FREE * cur)
                if target > cur:
                    continue
            else:
                if cur >= mx:
                    continue
                target = max(min(cur * (1 + self.MAX_CHANGE), mx),
                             used + self.GUEST_FREE * mx)
            if abs(target - cur) > self.MIN_CHANGE * cur:
                self.set_balloon(i, target)


class MomRawPolicy(MomPolicy):
    """MOM's rules on the latest sample, without its smoothing (not in
    the default set: a check that the smoothing is not what decides)."""
    name_ = 'mom-raw'
    SAMPLES = 1


class ProxmoxPolicy(Controller):
    name_ = 'proxmox'
    TARGET = 0.80           # keep the cgroup's use at this share of its limit
    MAX_STEP_MIB = 100      # most change per VM per cycle
    IGNORE_MIB = 10         # smaller goals are ignored

    def share_out(self, res, ids, amount):
        """Spread amount MiB (> 0 grow, < 0 shrink) over the balloons of ids
        in equal shares, each within [MIN_MIB, max], at most MAX_STEP_MIB
        per VM and never against the goal; returns what is left."""
        rest, done = amount, set()
        while abs(rest) >= 1:
            active = [i for i in ids if i not in done]
            if not active:
                break
            alloc = sum(res[i] - MIN_MIB for i in active) + rest
            moved = 0
            for i in active:
                desired = MIN_MIB + alloc / len(active)
                if not MIN_MIB <= desired <= self.max_mib[i]:
                    desired = min(max(desired, MIN_MIB), self.max_mib[i])
                    done.add(i)
                change = desired - res[i]
                if change * amount <= 0:            # not toward the goal
                    done.add(i)
                    continue
                if abs(change) > self.MAX_STEP_MIB - abs(res[i] - self.start[i]):
                    change = (self.MAX_STEP_MIB - abs(res[i] - self.start[i])) \
                        * (1 if change > 0 else -1)
                    done.add(i)
                res[i] += change
                rest -= change
                moved += abs(change)
            if moved < 1:
                break
        return rest

    def decide(self):
        try:
            usage = self.cg.usage() / MIB
        except OSError:
            return
        goal = self.TARGET * self.limit_mib - usage
        self.log('proxmox: cgroup use %d MiB, goal %+d MiB' % (usage, goal))
        if abs(goal) < self.IGNORE_MIB:
            return
        ids = [i for i in range(len(self.vms)) if self.alive[i] and self.hist[i]]
        self.start = {i: self.hist[i][-1][0] for i in ids}
        res = dict(self.start)
        free = {i: self.hist[i][-1][1] for i in ids}
        if goal > 0:
            first = [i for i in ids if free[i] < 0.12 * self.max_mib[i]
                     and res[i] < self.max_mib[i]]
        else:
            first = [i for i in ids if free[i] > 0.25 * MIN_MIB and res[i] >= MIN_MIB]
        rest = self.share_out(res, first, goal)
        if abs(rest) >= abs(goal):          # no progress: every VM
            self.share_out(res, ids, rest)
        for i in ids:
            if int(res[i]) != int(self.start[i]):
                self.set_balloon(i, res[i])


class Balloond:
    """qemu-oc-balloond on the VMs' QMP sockets (qmp_dir/gN), its defaults
    or the configuration text @config, --interval 0.5; logs in out_dir."""

    def __init__(self, out_dir, qmp_dir, names, config=None):
        self.names = list(names)
        self.json = os.path.join(out_dir, 'balloond.jsonl')
        self.err_path = os.path.join(out_dir, 'balloond.stderr')
        meminfo = os.path.join(out_dir, 'meminfo')
        with open(meminfo, 'w') as f:
            f.write('MemTotal: 64000000 kB\nMemFree: 60000000 kB\n'
                    'MemAvailable: 60000000 kB\n')
        args = []
        if config:
            args = ['--config', os.path.join(out_dir, 'balloond.conf')]
            with open(args[1], 'w') as f:
                f.write(config)
        self.err = open(self.err_path, 'w')
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [DAEMON, '--qmp-dir', qmp_dir, '--interval', '0.5',
             '--host-meminfo', meminfo, '--log-json', self.json] + args,
            stdout=subprocess.DEVNULL, stderr=self.err)
        self.cpu = None
        self.wall = None
        self.exited_early = False

    def text(self):
        with open(self.err_path, errors='replace') as f:
            return f.read()

    def ready(self, timeout=60):
        """Wait until every VM is placed in its memory domain."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError('qemu-oc-balloond exited %d: %s'
                                   % (self.proc.returncode, self.text()[-1000:]))
            if self.text().count('is in 1 memory domain(s)') >= len(self.names):
                return
            time.sleep(0.2)
        raise RuntimeError('qemu-oc-balloond did not place the VMs in the cgroup: %s'
                           % self.text()[-1000:])

    def rows(self):
        if not os.path.exists(self.json):
            return []
        out = []
        with open(self.json) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def moves(self, i):
        return [(r['current-mib'], r['target-mib']) for r in self.rows()
                if r.get('vm') == self.names[i] and r.get('action') == 'set']

    @property
    def commands(self):
        wall = time.time() - time.monotonic()
        return [(r['time-ms'] / 1000.0 - wall, self.names.index(r['vm']),
                 r['current-mib'], r['target-mib']) for r in self.rows()
                if r.get('action') == 'set' and r.get('vm') in self.names]

    @property
    def brakes(self):
        """The brake's pauses: (how many, the longest in s)."""
        held = [r.get('braked-ms', 0) / 1000.0 for r in self.rows()
                if r.get('brake') and r['brake'] not in ('applied', 'held')]
        n = sum(1 for r in self.rows() if r.get('brake') == 'applied')
        return n, max(held or [0.0])

    def stop(self):
        if self.cpu is None:
            self.exited_early = self.proc.poll() is not None
            self.cpu = cpu_s(self.proc.pid)
            self.wall = time.monotonic() - self.t0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()

    def around(self, wall_s, span_s=5.0):
        """The daemon's text and JSON log lines within span_s of wall_s."""
        lo, hi = wall_s - span_s, wall_s + span_s
        json_lines = [json.dumps(r) for r in self.rows()
                      if lo * 1000 <= r.get('time-ms', 0) <= hi * 1000]
        text = []
        day = time.strftime('%Y-%m-%d', time.localtime(wall_s))
        for line in self.text().splitlines():
            m = re.search(r'(\d\d):(\d\d):(\d\d\.\d+)', line)
            if not m:
                continue
            t = time.mktime(time.strptime('%s %s:%s:00' % (day, m.group(1), m.group(2)),
                                          '%Y-%m-%d %H:%M:%S')) + float(m.group(3))
            if lo <= t <= hi:
                text.append(line)
        return text, json_lines
