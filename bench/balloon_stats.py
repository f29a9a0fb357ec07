#!/usr/bin/python3
"""Benchmark: balloon statistics on demand (prints numbers; not a test).

1. refresh round-trip latency: query-balloon refresh=sync on an idle
   guest, N requests (default 200): avg, min, median, p99, max;
2. upstream polling staleness at its 1 s minimum (QOM guest-stats,
   guest-stats-polling-interval=1), measured in the same run: the age of
   the data a reader sees at uniformly spread instants;
3. latency of commands on another QMP monitor while a sync refresh waits
   on a guest that never answers (its kernel workers starved by SCHED_FIFO
   spinners).

Targets (TCG): 1. median <= 5 ms, p99 <= 50 ms; 3. p99 <= 5 ms.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'tests', 'guest'))
from ocvm import VM, wait_until  # noqa: E402

BALLOON = '/machine/peripheral/balloon0'


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def summary(name, ms, target=None):
    line = ('%-44s n=%-4d avg=%7.2f min=%7.2f median=%7.2f p99=%7.2f max=%7.2f ms'
            % (name, len(ms), sum(ms) / len(ms), min(ms), pct(ms, 50),
               pct(ms, 99), max(ms)))
    if target:
        line += '  [%s]' % target
    print(line)


def refresh_latency(vm, n):
    ms = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = vm.qmp('query-balloon', refresh='sync')
        ms.append((time.perf_counter() - t0) * 1000)
        if not r['fresh']:
            raise SystemExit('refresh not fresh: %r' % r)
    return ms


def polling_staleness(vm, seconds):
    """Age of upstream guest-stats at instants spread over `seconds`."""
    vm.qom_set(BALLOON, 'guest-stats-polling-interval', 1)
    try:
        wait_until(lambda: vm.qom_get(BALLOON, 'guest-stats')['last-update'] > 0,
                   5, 0.05, 'first poll')
        updates = []        # host instants at which a new poll was seen
        samples = []        # reader instants
        last = None
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            now = time.monotonic()
            lu = vm.qom_get(BALLOON, 'guest-stats')['last-update']
            if lu != last:
                if last is not None:
                    updates.append(now)
                last = lu
            samples.append(now)
            time.sleep(0.01)
    finally:
        vm.qom_set(BALLOON, 'guest-stats-polling-interval', 0)
    if not updates:
        raise SystemExit('upstream polling never updated')
    ages = [(s - max(u for u in updates if u <= s)) * 1000
            for s in samples if s >= updates[0]]
    return ages, len(updates)


def other_monitor_latency(vm, n):
    """Commands on monitor 2 while monitor 1 waits on a starved guest."""
    vm.starve(6)
    time.sleep(0.5)
    wid = vm.qmp_conn.send('query-balloon', refresh='sync', timeout=4000)
    t_start = time.perf_counter()
    ms = []
    for _ in range(n):
        t0 = time.perf_counter()
        vm.qmps[0].command('query-status')
        ms.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.01)
        if time.perf_counter() - t_start > 3.5:
            break
    r = vm.qmp_conn.response(wid, 10)
    waited = (time.perf_counter() - t_start) * 1000
    if r['fresh'] or r.get('stale-reason') != 'timeout':
        raise SystemExit('the starved guest answered: %r' % r)
    time.sleep(3)
    vm.resync()
    return ms, waited


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('-n', type=int, default=200, help='refresh requests')
    ap.add_argument('--poll-seconds', type=float, default=10)
    args = ap.parse_args()
    with VM(smp=1, memory=512, extra_qmp=1) as vm:
        print('qemu-oc %s, TCG, 1 vCPU, 512 MiB, idle Debian guest'
              % vm.qmp('query-version')['package'])
        refresh_latency(vm, 10)     # warm-up
        summary('refresh=sync round trip', refresh_latency(vm, args.n),
                'target median<=5 p99<=50')
        ages, polls = polling_staleness(vm, args.poll_seconds)
        summary('upstream polling (1 s) staleness', ages,
                '%d polls seen' % polls)
        ms, waited = other_monitor_latency(vm, 300)
        summary('other monitor while a refresh waits', ms,
                'target p99<=5; waiter timed out after %.0f ms' % waited)
    return 0


if __name__ == '__main__':
    sys.exit(main())
