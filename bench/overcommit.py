#!/usr/bin/python3
"""Benchmark: the same guests and workloads under each host memory policy,
side by side, in a real memory cgroup (prints numbers; not a test).

Three Debian TCG guests of 1024 MiB (smp 1) run with their QEMUs in one
memory cgroup of this machine limited to 1600 MiB (tests/guest/occgroup.py:
created under our own memory cgroup, removed after): 1.9x overcommit.
Every run boots them afresh, starts the policy, runs the workload's set-up,
waits SETTLE_S, runs the load, waits TAIL_S, and measures.

Policies (bench/overcommit_policies.py has the details):
  a none       nothing moves the balloons
  b fpr        free page reporting alone (free-page-reporting=on)
  c mom        oVirt MOM's published balloon rules, 5 s samples, 10 s cycle
  d proxmox    Proxmox VE's published auto-ballooning, 10 s cycle
  e balloond   qemu-oc-balloond (defaults, --interval 0.5) + free page reporting
  f balloond   qemu-oc-balloond without free page reporting
  g, h         e and f with the reserve sized for the workloads' largest burst
               (reserve-mib = BURST_RESERVE_MIB: 600 MiB taken at once)
  m mom-raw    (only when asked for) MOM's rules without their 10-sample
               averaging, deciding on the latest sample

Workloads (the arithmetic is in the comments at the WORKLOADS table):
  gradual    g0 and g1 hold 400 MiB and free it; g2 allocates 100 MiB
             every 3.5 s up to 700 MiB
  burst      the same set-up; g2 takes 600 MiB at once
  pagecache  g0 and g1 fill 400 MiB of page cache (reading a disk); g2
             takes 600 MiB at once
  staggered  each guest in turn holds 400 MiB for 5 s and frees it, while
             the next one grows by 2 x 50 MiB (kept); 5 s between spikes

Figures per policy and workload: the QEMUs killed (which, and when after
the load began), the cgroup's OOM kills, the live guests' own OOM kills
and allocation stalls (/proc/vmstat), the cgroup's peak usage against the limit,
the memory reclaimed from the idle guests (their QEMUs' RSS when they held
their memory minus at the end, MiB and % of what they held; staggered:
each guest's peak RSS minus its end RSS), the time from the load's start
to its allocation being held (staggered: the slowest of the three spikes),
the balloon's changes of direction per VM (and the number of balloon
commands), the daemon's brakes (VMs paused while the others' balloons
came; how many, the longest), and the policy's CPU time (the daemon's utime + stime; the
controllers' thread time).  One table per workload, then a verdict.

usage: /usr/bin/python3 bench/overcommit.py [--workloads gradual,burst,...]
           [--policies a,b,...] [--settle S]
Progress lines go to stderr, the details to
build/bench/overcommit-<date>-<time>/overcommit.log (and the daemon's logs
in a folder per run beside it), the tables to stdout.  Exit 77 when no
memory cgroup can be created here (the reason is printed).
"""

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TOP, 'tests', 'guest'))
sys.path.insert(0, HERE)
import occgroup  # noqa: E402
import squeeze  # noqa: E402
from ocvm import VM, VMError  # noqa: E402
import overcommit_policies as pol  # noqa: E402

MIB = 1 << 20
LIMIT_MIB = 1600
GUEST_MIB = 1024
NAMES = ('g0', 'g1', 'g2')
IDLE_MIB = 400
SETTLE_S = 10.0         # set-up done -> load starts (the policy is running)
TAIL_S = 5.0            # load held -> measured
FPR = ['-device', 'virtio-balloon-pci,id=balloon0,free-page-reporting=on']
DISK_MIB = 512

# what an operator expecting bursts of 600 MiB sets: docs/balloond.md,
# "Memory domains" (the reserve must cover what a guest takes faster than
# balloons give)
BURST_RESERVE_MIB = 640
BURST_CONFIG = '[policy]\nreserve-mib = %d\n' % BURST_RESERVE_MIB

POLICIES = {            # key: (name, free page reporting, controller[, config])
    'a': ('none', False, None),
    'b': ('fpr', True, None),
    'c': ('mom', False, pol.MomPolicy),
    'd': ('proxmox', False, pol.ProxmoxPolicy),
    'e': ('balloond+fpr', True, 'balloond'),
    'f': ('balloond', False, 'balloond'),
    'g': ('balloond+fpr reserve %d' % BURST_RESERVE_MIB, True, 'balloond',
          BURST_CONFIG),
    'h': ('balloond reserve %d' % BURST_RESERVE_MIB, False, 'balloond',
          BURST_CONFIG),
    'm': ('mom-raw', False, pol.MomRawPolicy),    # not in the default set
}
DEFAULT_POLICIES = 'a,b,c,d,e,f,g,h'

# What each workload really needs at its peak, with B the RSS of a booted
# idle guest's QEMU (about 220 MiB here; the log says, "booted"):
#   gradual:   3B + 700 = ~1360 MiB of 1600; without reclaim 3B + 800 +
#              700 (g2 reuses nothing of g0/g1's) = ~2160: does not fit
#   burst:     3B + 600 = ~1260; without reclaim ~2060
#   pagecache: 3B + 600 plus whatever cache the idle guests keep (it can all
#              be dropped) = ~1260; without reclaim ~2060
#   staggered: 3B + one 400 MiB spike + the 3 x 100 MiB grown = ~1360;
#              without reclaim each QEMU keeps its spike (and g1, g2 their
#              growth under it): 3B + 400 + 2 x 500 = ~2060.  A spike starts
#              STAG_GAP_S after the one before was freed: back to back, the
#              freed 400 MiB cannot be back yet (free page reporting alone
#              takes 2 to 3 s) and two spikes (~1700) do not fit
STAG_SPIKE_MIB, STAG_HOLD_S, STAG_GAP_S = 400, 5.0, 5.0
STAG_STEP_MIB, STAG_EVERY_S, STAG_GROW_MIB = 50, 1.5, 100


class Log:
    """The detail log (thread-safe), lines stamped with the time."""

    def __init__(self, path):
        self.f = open(path, 'a')
        self.lock = threading.Lock()

    def __call__(self, text):
        with self.lock:
            for line in str(text).splitlines() or ['']:
                self.f.write('%s %s\n' % (time.strftime('%H:%M:%S'), line))
            self.f.flush()


def progress(text):
    sys.stderr.write(text + '\n')
    sys.stderr.flush()


# -- workloads ---------------------------------------------------------------

def _guarded(rec, what, fn):
    """fn(); a failure is recorded: a guest-side one (VMError with QEMU
    alive), or the VM's console or monitor socket broken by its QEMU's
    death (OSError; the Watch records the death)."""
    try:
        return fn()
    except (VMError, OSError) as e:
        rec.setdefault('errors', []).append('%s: %s' % (what, str(e)[:160]))
        return None


def _check(rec, what, r):
    if r is not None and (r.error or r.qemu_exit is not None):
        rec.setdefault('errors', []).append('%s: %s' % (what, r.error or 'QEMU exited'))
    return r


def _setup_idle(workload, vms, rec, log):
    """g0 and g1 run @workload(vm, IDLE_MIB); what they held is kept"""
    rec['idle'] = {}
    for i in (0, 1):
        r = _guarded(rec, 'set-up g%d' % i,
                     lambda: workload(vms[i], IDLE_MIB))
        if _check(rec, 'set-up g%d' % i, r) is not None:
            log(r.summary())
            rec['idle'][i] = r.rss_held


def setup_freed(vms, rec, log):
    _setup_idle(squeeze.idle_then_free, vms, rec, log)


def setup_cache(vms, rec, log):
    _setup_idle(squeeze.page_cache, vms, rec, log)


def load_gradual(vms, rec, log):
    r = _guarded(rec, 'g2 gradual', lambda: squeeze.gradual(vms[2], 100, 3.5, 700))
    if _check(rec, 'g2 gradual', r) is not None:
        log('%s; steps (s, MiB): %s' % (r.summary(),
                                        ' '.join('%.1f:%d' % s for s in r.steps)))
        if r.error is None and r.qemu_exit is None:
            rec['held_s'] = r.seconds


def load_burst(vms, rec, log):
    r = _guarded(rec, 'g2 burst', lambda: squeeze.burst(vms[2], 600))
    if _check(rec, 'g2 burst', r) is not None:
        log(r.summary())
        if r.error is None and r.qemu_exit is None:
            rec['held_s'] = r.seconds


def load_staggered(vms, rec, log):
    holds = []
    for k in range(3):
        spiker, grower = vms[k], vms[(k + 1) % 3]
        grown = {}

        def grow():
            grown['r'] = _guarded(rec, 'g%d grows' % ((k + 1) % 3), lambda: squeeze.gradual(
                grower, STAG_STEP_MIB, STAG_EVERY_S, STAG_GROW_MIB))
        th = threading.Thread(target=grow, daemon=True)
        th.start()

        def spike():
            t = time.monotonic()
            pid = spiker.hold(STAG_SPIKE_MIB, 60)
            holds.append(time.monotonic() - t)
            log('g%d holds %d MiB after %.1f s' % (k, STAG_SPIKE_MIB, holds[-1]))
            time.sleep(STAG_HOLD_S)
            spiker.kill(pid)
        if squeeze.qemu_exit(spiker) is None:
            _guarded(rec, 'g%d spike' % k, spike)
        else:
            rec.setdefault('errors', []).append('g%d spike: QEMU gone' % k)
        th.join(150)
        if k < 2:
            time.sleep(STAG_GAP_S)
        if _check(rec, 'g%d grows' % ((k + 1) % 3), grown.get('r')) is not None:
            log(grown['r'].summary())
    if len(holds) == 3:
        rec['held_s'] = max(holds)


WORKLOADS = {           # name: (set-up, load, disk for page cache)
    'gradual': (setup_freed, load_gradual, False),
    'burst': (setup_freed, load_burst, False),
    'pagecache': (setup_cache, load_burst, True),
    'staggered': (None, load_staggered, False),
}


# -- one run -------------------------------------------------------------------

def boot(cg, policy, workload, qmp_dir):
    _, fpr, ctl = POLICIES[policy][:3]
    vms = []
    for name in NAMES:
        args = list(FPR) if fpr else []
        if ctl == 'balloond':
            args += ['-qmp', 'unix:%s,server=on,wait=off' % os.path.join(qmp_dir, name)]
        if WORKLOADS[workload][2]:
            args += squeeze.disk_args(DISK_MIB)
        vms.append(VM(smp=1, memory=GUEST_MIB, boot_timeout=240, balloon=not fpr,
                      extra_qmp=1 if ctl not in (None, 'balloond') else 0,
                      wrapper=[cg.wrapper()], args=args))
    errors = []

    def start(vm):
        try:
            vm.start()
        except Exception as e:
            errors.append(e)
    threads = [threading.Thread(target=start, args=(vm,)) for vm in vms]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return vms, errors


def run_one(workload, policy, run_dir, log):
    pname, fpr, ctl = POLICIES[policy][:3]
    setup, load, _ = WORKLOADS[workload]
    rec = {'workload': workload, 'policy': policy}
    qmp_dir = tempfile.mkdtemp(prefix='oc-bench-')
    cg = occgroup.MemCgroup('overcommit', LIMIT_MIB)
    vms, watch, ctrl = [], None, None
    try:
        vms, errors = boot(cg, policy, workload, qmp_dir)
        if errors:
            raise RuntimeError('boot failed: %s' % errors[0])
        log('booted in %s s; QEMU RSS %s MiB; cgroup %d of %d MiB' % (
            ' / '.join('%.1f' % vm.boot_seconds for vm in vms),
            ' / '.join(str((squeeze.qemu_rss(vm) or 0) // MIB) for vm in vms),
            cg.usage() // MIB, LIMIT_MIB))
        watch = squeeze.Watch(cg, vms)
        watch.start()
        if ctl == 'balloond':
            ctrl = pol.Balloond(run_dir, qmp_dir, NAMES,
                                config=(POLICIES[policy] + (None,))[3])
            ctrl.ready()
        elif ctl is not None:
            ctrl = ctl(cg, vms, log)
            ctrl.start()
        if setup:
            setup(vms, rec, log)
        log('set-up done: QEMU RSS %s MiB, cgroup %d MiB' % (
            ' / '.join(str((squeeze.qemu_rss(vm) or 0) // MIB) for vm in vms),
            cg.usage() // MIB))
        time.sleep(SETTLE_S)
        rec['load_t'] = time.monotonic() - watch.t0
        log('load starts at %.1f s' % rec['load_t'])
        load(vms, rec, log)
        time.sleep(TAIL_S)
        rec['end_rss'] = [squeeze.qemu_rss(vm) for vm in vms]
        rec['guest'] = guest_distress(vms, watch, rec)
        if ctrl is not None:
            ctrl.stop()
            rec['cpu'] = ctrl.cpu
            rec['moves'] = [ctrl.moves(i) for i in range(len(vms))]
            rec['ncmds'] = len(ctrl.commands)
            if isinstance(ctrl, pol.Balloond):
                rec['brakes'] = ctrl.brakes
        watch.stop()
        finish(rec, vms, watch, ctrl, log)
    finally:
        # each step on its own: a failing one must not leave a QEMU behind
        for obj in (ctrl, watch):
            try:
                if obj is not None:
                    obj.stop()
            except Exception as e:
                log('stop: %r' % e)
        for vm in vms:
            try:
                vm.shutdown()
            except Exception as e:
                log('shutdown: %s' % e)
            if vm.dir:
                shutil.rmtree(vm.dir, ignore_errors=True)
        try:
            cg.remove()
        except RuntimeError as e:
            log(str(e))
        shutil.rmtree(qmp_dir, ignore_errors=True)
    return rec


def guest_distress(vms, watch, rec):
    """The live guests' OOM kills and allocation stalls since they booted
    (/proc/vmstat: oom_kill, allocstall_*), summed: (kills, stalls)."""
    kills = stalls = 0
    for i, vm in enumerate(vms):
        if i in watch.deaths:
            continue
        text = _guarded(rec, 'g%d vmstat' % i, lambda: vm.shell('cat /proc/vmstat'))
        for line in (text or '').splitlines():
            key, _, val = line.partition(' ')
            if key == 'oom_kill':
                kills += int(val)
            elif key.startswith('allocstall'):
                stalls += int(val)
    return kills, stalls


def finish(rec, vms, watch, ctrl, log):
    """The figures of a run, into rec; details into the log."""
    rec['killed'] = [(i, t - rec['load_t']) for i, (t, _) in sorted(watch.deaths.items())]
    rec['oom'] = (watch.oom_kills_after or 0) - watch.oom_kills_before
    rec['peak'] = watch.peak_usage // MIB
    log(watch.summary())
    for t, usage, rss in watch.samples[::10]:
        log('  %5.1f s cgroup %s MiB, RSS %s' % (t, (usage or 0) // MIB, '/'.join(
            '-' if x is None else str(x // MIB) for x in rss)))
    end = rec['end_rss']
    held = rec.get('idle')
    if held is None:        # staggered: every guest's peak
        held = {i: watch.peak_rss[i] for i in range(len(vms))}
    alive = [i for i in held if end[i] is not None]
    if alive:
        h = sum(held[i] for i in alive)
        got = sum(held[i] - end[i] for i in alive)
        rec['reclaimed'] = (got // MIB, 100.0 * got / h, len(held) - len(alive))
    for i, vm in enumerate(vms):
        log('g%d: RSS at the end %s MiB%s' % (
            i, '-' if end[i] is None else end[i] // MIB,
            ', held %d MiB' % (held[i] // MIB) if i in held else ''))
        if i in watch.deaths:
            log('g%d died (%d) at %.1f s:\n%s' % (i, watch.deaths[i][1], watch.deaths[i][0],
                                                   vm.tails(30)))
    rec['guest_oom'] = {}
    for i, vm in enumerate(vms):
        if end[i] is None:
            continue
        try:
            n = int(vm.shell('dmesg | grep -c "Killed process" || true', 10).split()[-1])
        except (VMError, OSError, ValueError, IndexError) as e:
            log('g%d: dmesg: %s' % (i, e))
            continue
        if n:
            rec['guest_oom'][i] = n
            log('g%d: guest OOM kills %d:\n%s' % (i, n, vm.shell(
                'dmesg | grep -B2 -A2 "Killed process" | tail -20', 10)))
    for i, moves in enumerate(rec.get('moves', [])):
        log('g%d balloon commands: %s' % (i, ' '.join('%d->%d' % m for m in moves) or '-'))
    if isinstance(ctrl, pol.Balloond):
        log('balloond CPU %.2f s over %.0f s%s' % (
            ctrl.cpu or 0, ctrl.wall, '; it EXITED %d' % ctrl.proc.returncode
            if ctrl.exited_early else ''))
        for i, (t, rc) in sorted(watch.deaths.items()):
            wall = time.time() - time.monotonic() + watch.t0 + t
            text, js = ctrl.around(wall)
            log('balloond lost g%d at %.1f s; its logs within 5 s:\n  %s\n  %s' % (
                i, t, '\n  '.join(text), '\n  '.join(js)))
    for e in rec.get('errors', []):
        log('error: %s' % e)


# -- the tables ----------------------------------------------------------------

COLS = ('policy', 'QEMU killed', 'cg OOM', 'guest OOM/stalls', 'peak/limit MiB',
        'reclaimed MiB', 'load held', 'dir changes (cmds)', 'brakes (longest)',
        'CPU s', 'load result')


def cells(rec):
    if 'fatal' in rec:
        return [rec['fatal'][:40]] + [''] * (len(COLS) - 2)
    killed = ', '.join('g%d %+.1fs' % (i, t) for i, t in rec['killed']) or '-'
    rc = rec.get('reclaimed')
    recl = ('%d (%.0f%%)%s' % (rc[0], rc[1], ' %d dead' % rc[2] if rc[2] else '')
            if rc else 'all dead')
    held = '%.1f s' % rec['held_s'] if rec.get('held_s') is not None else 'not held'
    if 'moves' in rec:
        dirs = '%s (%d)' % ('/'.join(str(pol.direction_changes(m)) for m in rec['moves']),
                            rec['ncmds'])
    else:
        dirs = '-'
    cpu = '%.2f' % rec['cpu'] if rec.get('cpu') is not None else '-'
    brakes = '%d (%.1f s)' % rec['brakes'] if rec.get('brakes') else '-'
    errs = rec.get('errors', [])
    result = []
    if rec['killed']:
        result.append('VM lost')
    elif errs:
        result.append(errs[0].split(':')[0] + ' failed')
    result += ['guest OOM g%d x%d' % kv for kv in sorted(rec.get('guest_oom', {}).items())]
    result = ', '.join(result) or 'ok'
    guest = '%d/%d' % rec['guest'] if rec.get('guest') else '-'
    return [killed, str(rec['oom']), guest, '%d/%d' % (rec['peak'], LIMIT_MIB), recl,
            held, dirs, brakes, cpu, result]


def table(workload, recs):
    rows = [COLS]
    for p, rec in recs:
        rows.append(['%s %s' % (p, POLICIES[p][0])] + cells(rec))
    width = [max(len(r[c]) for r in rows) for c in range(len(COLS))]
    out = ['%s (3 x %d MiB guests, cgroup %d MiB):' % (workload, GUEST_MIB, LIMIT_MIB)]
    for r in rows:
        out.append('  ' + '  '.join(x.ljust(w) for x, w in zip(r, width)).rstrip())
    return '\n'.join(out) + '\n' + verdict(recs)


def verdict(recs):
    by = dict(recs)
    ok = {p: r for p, r in by.items() if 'fatal' not in r}
    lost = [p for p in 'acd' if p in ok and ok[p]['killed']]
    ours = [p for p in 'efgh' if p in ok]
    if not ours:
        return 'verdict: balloond (e to h) not run'
    safe = all(not ok[p]['killed'] and not (ok[p].get('guest') or (0, 0))[0]
               for p in ours)
    if lost:
        first = 'balloond (%s) killed no VM nor guest process where %s lost VMs: %s' % (
            ', '.join(ours), ', '.join(lost), 'YES' if safe else 'NO')
    else:
        first = 'no baseline (a, c, d) lost a VM here; balloond (%s) killed %s' % (
            ', '.join(ours), 'nothing' if safe else 'a VM or a guest process')
    rec, held = [], []
    for p in ours:
        rc = ok[p].get('reclaimed')
        rec.append('%s %s (%s)' % (p, 'YES' if rc and rc[1] >= 25 else 'NO',
                                   '%.0f %%' % rc[1] if rc else 'n/a'))
        res = cells(ok[p])[-1]
        held.append('%s %s' % (p, 'YES' if res == 'ok' else 'NO (%s)' % res))
    return ('verdict: %s; reclaimed >= 25 %% of the idle guests\' memory: %s; '
            'the load ran to the end: %s' % (first, ', '.join(rec), ', '.join(held)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--workloads', default=','.join(WORKLOADS))
    ap.add_argument('--policies', default=DEFAULT_POLICIES)
    ap.add_argument('--settle', type=float, default=SETTLE_S,
                    help='seconds from the set-up to the load (default %(default)s)')
    args = ap.parse_args()
    workloads = [w for w in args.workloads.split(',') if w]
    policies = [p for p in args.policies.split(',') if p]
    bad = [w for w in workloads if w not in WORKLOADS] + \
        [p for p in policies if p not in POLICIES]
    if bad:
        ap.error('unknown workload or policy: %s (workloads: %s; policies: %s)' % (
            ', '.join(bad), ', '.join(WORKLOADS), ', '.join(POLICIES)))
    globals()['SETTLE_S'] = args.settle
    reason = occgroup.reason_unavailable(LIMIT_MIB)
    if reason:
        print('overcommit: CANNOT RUN on this host: %s.' % reason)
        print('The comparison needs a memory cgroup of %d MiB for the guests\' '
              'QEMUs; see docs/balloond.md, "Memory domains".' % LIMIT_MIB)
        return 77
    if any(POLICIES[p][2] == 'balloond' for p in policies) and \
            not os.access(pol.DAEMON, os.X_OK):
        print('%s is not built (make build)' % pol.DAEMON)
        return 1
    out = os.path.join(TOP, 'build', 'bench',
                       'overcommit-' + time.strftime('%Y%m%d-%H%M%S'))
    os.makedirs(out, exist_ok=True)
    log = Log(os.path.join(out, 'overcommit.log'))
    progress('overcommit: details in %s' % os.path.join(out, 'overcommit.log'))
    t_all = time.monotonic()
    total, n = len(workloads) * len(policies), 0
    for w in workloads:
        recs = []
        for p in policies:
            n += 1
            progress('run %d/%d: %s under %s ...' % (n, total, w, POLICIES[p][0]))
            run_dir = os.path.join(out, '%02d-%s-%s' % (n, w, p))
            os.makedirs(run_dir)
            log('=== run %d/%d: %s under %s (%s)' % (n, total, w, p, POLICIES[p][0]))
            t = time.monotonic()
            try:
                rec = run_one(w, p, run_dir, log)
            except Exception as e:
                log('run failed: %r' % e)
                rec = {'fatal': 'run failed: %s' % e}
            recs.append((p, rec))
            progress('  %.0f s: %s' % (time.monotonic() - t, ' | '.join(
                '%s %s' % (c, v) for c, v in zip(COLS[1:], cells(rec)) if v)))
        text = table(w, recs)
        log(text)
        print(text + '\n')
        sys.stdout.flush()
    took = time.monotonic() - t_all
    print('%d runs in %.0f s (%.1f min); details in %s' % (
        total, took, took / 60, os.path.join(out, 'overcommit.log')))
    return 0


if __name__ == '__main__':
    sys.exit(main())
