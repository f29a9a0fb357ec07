"""squeeze: memory workloads for Debian test guests, and a watcher of their
QEMUs, for memory-pressure tests and benchmarks.

Python standard library only; run with Debian's /usr/bin/python3.

    with MemCgroup('squeeze', 1600) as cg:
        vms = [VM(memory=1024, wrapper=[cg.wrapper()]).start() for _ in '123']
        with Watch(cg, vms) as watch:
            idle_then_free(vms[0], 400)          # used, freed; QEMU keeps it
            r = gradual(vms[2], 100, 3.5, 700)   # 100 MiB every 3.5 s
        print(r.summary(), watch.summary())

Each workload drives one guest (an ocvm.VM) and returns a Result.  A
workload whose QEMU dies meanwhile (e.g. OOM-killed) does not raise: the
Result has qemu_exit (-9 for SIGKILL) and error set.  Watch only observes:
tests synchronise on conditions (ocvm.wait_until), never on it.
"""

import dataclasses
import subprocess
import threading
import time

from ocvm import VMError, wait_until

MIB = 1 << 20

# The guest kernel has NVMe built in (virtio_blk is a module the image does
# not load): page_cache() reads a disk it sees as /dev/nvme0n1.
DISK = 'nvme0n1'
NO_DISK = (
    'the guest has no disk to read: start the VM with disk_args(MIB) (its own '
    'file systems, the initramfs root and the tmpfs /tmp, are RAM (shmem) that '
    'a guest without swap cannot reclaim, so files there are no page cache)')


class Unavailable(Exception):
    """The workload cannot run on this guest; the message says why."""


def qemu_rss(vm):
    """VmRSS of vm's QEMU process, bytes (None once it has exited)."""
    proc = vm.proc
    if proc is None:
        return None
    try:
        with open('/proc/%d/status' % proc.pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def qemu_exit(vm):
    """QEMU's return code once it has exited (-9: SIGKILL), else None."""
    return vm.proc.poll() if vm.proc is not None else None


def _mib(n):
    return '-' if n is None else '%d' % (n // MIB)


@dataclasses.dataclass
class Result:
    """What a workload did to one guest.  Times are time.monotonic()."""
    workload: str
    vm: object = dataclasses.field(repr=False)
    mib: int                    # asked for, MiB
    start: float = 0.0
    end: float = None
    held_mib: int = 0           # what the guest got (allocated or cached)
    holders: list = dataclasses.field(default_factory=list)  # guest pids holding
    steps: list = dataclasses.field(default_factory=list)    # (s, MiB held)
    rss_before: int = None      # QEMU VmRSS, bytes, before the workload
    rss_held: int = None        # ... once the guest held all it got
    rss_after: int = None       # ... at the end (after freeing, if it frees)
    qemu_exit: int = None       # set if QEMU exited meanwhile
    error: str = None

    @property
    def seconds(self):
        return None if self.end is None else self.end - self.start

    def summary(self):
        text = '%s %d MiB: held %d MiB in %.1f s, QEMU RSS %s -> %s -> %s MiB' % (
            self.workload, self.mib, self.held_mib, self.seconds or 0,
            _mib(self.rss_before), _mib(self.rss_held), _mib(self.rss_after))
        if self.qemu_exit is not None:
            text += ', QEMU exited %d' % self.qemu_exit
        if self.error:
            text += ' (%s)' % self.error
        return text


def _run(result, body):
    """Run body(); a VMError because QEMU died is recorded, not raised."""
    result.start = time.monotonic()
    result.rss_before = qemu_rss(result.vm)
    try:
        body()
    except (VMError, OSError) as e:
        # a killed QEMU resets its sockets a moment before it is reaped
        try:
            rc = result.vm.proc.wait(5)
        except subprocess.TimeoutExpired:
            raise e from None
        result.qemu_exit, result.error = rc, str(e)
    result.end = time.monotonic()
    return result


def idle_then_free(vm, mib, timeout=120):
    """Hold mib MiB in the guest, then kill the holder: the guest used and
    freed it (QEMU still holds it unless the guest gives it back)."""
    r = Result('idle_then_free', vm, mib)

    def body():
        pid = vm.hold(mib, timeout)
        r.held_mib, r.rss_held = mib, qemu_rss(vm)
        vm.kill(pid)
        r.rss_after = qemu_rss(vm)
    return _run(r, body)


def burst(vm, mib, timeout=120):
    """One allocation of mib MiB at once, kept (r.holders)."""
    r = Result('burst', vm, mib)

    def body():
        r.holders = [vm.hold(mib, timeout)]
        r.held_mib = mib
        r.rss_held = r.rss_after = qemu_rss(vm)
    return _run(r, body)


_seq = [0]


def gradual(vm, step_mib, every_s, total_mib, timeout=None):
    """A guest allocating step_mib every every_s seconds up to total_mib,
    each step a separate `oc-load hold` process (kept: r.holders).

    The guest paces itself (its own sleep: the workload's rate).  Returns
    once every step holds its memory, or QEMU died (r.qemu_exit)."""
    steps = -(-total_mib // step_mib)
    r = Result('gradual', vm, steps * step_mib)
    _seq[0] += 1
    pids = '/tmp/squeeze-gradual-%d' % _seq[0]
    # The last step is the loop's shell itself (exec): a background job of
    # the guest's shell that exits by itself makes that shell exit, and
    # its other jobs die with it (SIGHUP).
    loop = ('i=1; while [ $i -lt %d ]; do oc-load hold %d & echo $! >>%s; '
            'i=$((i+1)); sleep %s; done; echo $$ >>%s; exec oc-load hold %d'
            % (steps, step_mib, pids, every_s, pids, step_mib))
    if timeout is None:
        timeout = steps * every_s + 120

    def progress():
        """True once every step holds; raises if QEMU or a holder died."""
        if qemu_exit(vm) is not None:
            raise VMError('QEMU exited with %d' % qemu_exit(vm))
        out = vm.shell('for p in $(cat %s 2>/dev/null); do echo "$p $(grep VmRSS '
                       '/proc/$p/status 2>/dev/null || echo gone)"; done' % pids)
        rows = [line.split() for line in out.splitlines() if line.strip()]
        if any(row[1] == 'gone' for row in rows):
            raise VMError('guest: a step of gradual exited: %s' % out)
        kib = [int(row[2]) for row in rows]
        r.holders = [int(row[0]) for row in rows]
        held = sum(min(k // 1024, step_mib) for k in kib)
        if held != r.held_mib:
            r.held_mib = held
            r.steps.append((time.monotonic() - r.start, held))
        return len(kib) == steps and all(k >= step_mib * 1024 for k in kib)

    def body():
        vm.spawn("sh -c '%s'" % loop)
        wait_until(progress, timeout, interval=0.3,
                   message='guest: gradual %d x %d MiB not held within %d s'
                   % (steps, step_mib, timeout))
        r.rss_held = r.rss_after = qemu_rss(vm)
    return _run(r, body)


def disk_args(size_mib, node='squeeze-disk'):
    """QEMU arguments for an NVMe disk of size_mib MiB that reads zeros and
    costs the host nothing (null-co): page_cache() reads it."""
    return ['-blockdev', 'driver=null-co,node-name=%s,size=%d,read-zeroes=on'
            % (node, size_mib * MIB),
            '-device', 'nvme,serial=%s,drive=%s' % (node, node)]


def page_cache(vm, mib, timeout=120):
    """Fill mib MiB of the guest's page cache by reading the VM's disk
    (disk_args()) through the block device's cache: clean, reclaimable
    (meminfo Buffers).  Linux drops a block device's cache at its last
    close: a guest process keeps it open (r.holders; killing it drops
    the cache).  Raises Unavailable where the guest has no disk."""
    size = vm.shell('cat /sys/block/%s/size 2>/dev/null || echo none' % DISK).split()
    if not size or size[-1] == 'none':
        raise Unavailable(NO_DISK)
    if int(size[-1]) * 512 < mib * MIB:
        raise Unavailable('the disk (%d MiB) is smaller than %d MiB'
                          % (int(size[-1]) * 512 // MIB, mib))
    r = Result('page_cache', vm, mib)

    def cached():
        info = vm.meminfo()
        return info['Buffers'] + info['Cached']

    def body():
        before = cached()
        r.holders = [vm.spawn('sleep 2147483647 </dev/%s' % DISK)]
        # read twice: the second read is served from the page cache
        vm.shell('dd if=/dev/{0} of=/dev/null bs=1M count={1} 2>/dev/null && '
                 'dd if=/dev/{0} of=/dev/null bs=1M count={1} 2>/dev/null'
                 .format(DISK, mib), timeout)
        r.held_mib = max(0, cached() - before) // MIB
        r.rss_held = r.rss_after = qemu_rss(vm)
    return _run(r, body)


class Watch(threading.Thread):
    """Samples, every period_s, the cgroup's usage and each QEMU's liveness
    and RSS, until stop(); records the peaks and every QEMU exit.

    samples: [(s since start, usage bytes, [RSS bytes or None per VM])]
    deaths:  {VM index: (s since start, return code)}"""

    def __init__(self, cgroup, vms, period_s=0.1):
        super().__init__(name='squeeze-watch', daemon=True)
        self.cgroup, self.vms, self.period = cgroup, list(vms), period_s
        self.lock = threading.Lock()
        self.samples = []
        self.peak_usage, self.peak_at = 0, None
        self.peak_rss = [0] * len(self.vms)
        self.deaths = {}
        self.limit = cgroup.limit()
        self.oom_kills_before = cgroup.oom_kills()
        self.oom_kills_after = None
        self.kernel_peak = None
        self._stopping = threading.Event()
        self.t0 = time.monotonic()

    def run(self):
        while True:
            self.sample()
            if self._stopping.wait(self.period):
                break
        self.sample()

    def sample(self):
        t = time.monotonic() - self.t0
        try:
            usage = self.cgroup.usage()
        except OSError:
            usage = None
        rss = []
        for i, vm in enumerate(self.vms):
            rc = qemu_exit(vm)
            rss.append(None if rc is not None else qemu_rss(vm))
            with self.lock:
                if rc is not None and i not in self.deaths:
                    self.deaths[i] = (t, rc)
                if rss[-1] and rss[-1] > self.peak_rss[i]:
                    self.peak_rss[i] = rss[-1]
        with self.lock:
            self.samples.append((t, usage, rss))
            if usage is not None and usage > self.peak_usage:
                self.peak_usage, self.peak_at = usage, t

    def stop(self):
        self._stopping.set()
        if self.is_alive():
            self.join(10)
        try:
            self.oom_kills_after = self.cgroup.oom_kills()
            self.kernel_peak = self.cgroup.max_usage()
        except OSError:
            pass
        return self

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        self.stop()
        return False

    def summary(self):
        with self.lock:
            deaths = ', '.join('VM %d exited %d at %.1f s' % (i, rc, t)
                               for i, (t, rc) in sorted(self.deaths.items()))
            return ('cgroup peak %s MiB at %.1f s (kernel high-water %s MiB, limit %s '
                    'MiB), OOM kills %s -> %s, QEMU peak RSS %s MiB, %s' % (
                        _mib(self.peak_usage), self.peak_at or 0,
                        _mib(self.kernel_peak), _mib(self.limit),
                        self.oom_kills_before, self.oom_kills_after,
                        '/'.join(_mib(x) for x in self.peak_rss),
                        deaths or 'no QEMU exited'))
