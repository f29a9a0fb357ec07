#!/usr/bin/python3
"""Benchmark: vCPU runstate accounting (prints numbers; not a test).

1. host CPU cost of the sampler thread ("vcpu-runstates") at the default
   period, with 4 and with 64 vCPUs, as a share of one host core;
2. query-vcpu-runstates latency (QMP round trip) at 64 vCPUs.

The VMs run SeaBIOS only (TCG): the sampler's work does not depend on
what the guest does.  Targets: 1. <= 0.5 % of a core at 4 vCPUs;
2. <= 1 ms at 64 vCPUs.
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'tests', 'guest'))
from ocvm import VM  # noqa: E402


def thread_named(pid, name):
    for tid in os.listdir('/proc/%d/task' % pid):
        with open('/proc/%d/task/%s/comm' % (pid, tid)) as f:
            if f.read().strip() == name:
                return int(tid)
    raise SystemExit('no thread %r in %d' % (name, pid))


def oncpu_ns(pid, tid):
    with open('/proc/%d/task/%d/schedstat' % (pid, tid)) as f:
        return int(f.read().split()[0])


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def sampler_cost(smp, seconds):
    with VM(smp=smp, memory=256, guest='none', balloon=False,
            args=['-name', 'bench,debug-threads=on']) as vm:
        time.sleep(1)
        tid = thread_named(vm.proc.pid, 'vcpu-runstates')
        r0, c0, t0 = vm.qmp('query-vcpu-runstates'), oncpu_ns(vm.proc.pid, tid), time.monotonic()
        time.sleep(seconds)
        r1, c1, t1 = vm.qmp('query-vcpu-runstates'), oncpu_ns(vm.proc.pid, tid), time.monotonic()
        share = (c1 - c0) / ((t1 - t0) * 1e9) * 100
        samples = r1['samples'] - r0['samples']
        print('sampler cost, %2d vCPUs, period %d ms: %.3f %% of one core '
              '(%d samples, %.1f us per sample)%s'
              % (smp, r1['period-ms'], share, samples,
                 (c1 - c0) / 1000 / max(1, samples),
                 '  [target <= 0.5 %]' if smp == 4 else ''))
        if smp == 64:
            ms = []
            for _ in range(300):
                t = time.perf_counter()
                vm.qmp('query-vcpu-runstates')
                ms.append((time.perf_counter() - t) * 1000)
            print('query-vcpu-runstates at 64 vCPUs: n=%d avg=%.3f median=%.3f '
                  'p99=%.3f max=%.3f ms  [target <= 1 ms]'
                  % (len(ms), sum(ms) / len(ms), pct(ms, 50), pct(ms, 99), max(ms)))


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10
    sampler_cost(4, seconds)
    sampler_cost(64, seconds)
    return 0


if __name__ == '__main__':
    sys.exit(main())
