#!/usr/bin/python3
"""Benchmark: vCPU runstate accounting (prints numbers; not a test).

1. host CPU cost of the sampler thread ("vcpu-runstates") at the default
   period, with 4 and with 64 vCPUs, as a share of one host core (the
   VMs run SeaBIOS only: an idle machine);
2. query-vcpu-runstates latency (QMP round trip) at 64 vCPUs;
3. the cost of the exact source under load: the Debian guest with 4
   spinning vCPUs whose threads are preempted about 10,000 times a
   second each (two vCPUs per host core, and beside each vCPU a host
   thread that wakes every 20 us), with the exact source and, in the
   same run, with the sampled one (-machine vcpu-runstates-exact=off).

Targets: 1. <= 0.5 % of a core at 4 vCPUs; 2. <= 1 ms at 64 vCPUs;
3. exact source <= 0.5 % of a core at 4 x 10,000 switches per second.
A 2-core host cannot always preempt 4 vCPUs 10,000 times a second each:
the benchmark prints the rate reached and the cost scaled to 10,000 (the
exact source's cost above the sampled one is per record).
"""

import os
import subprocess
import sys
import tempfile
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


# a host thread that wakes every few microseconds: each wake-up preempts
# the vCPU thread running on its core
WAKER_C = r"""
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>
int main(int argc, char **argv)
{
    struct timespec ts = { 0, 20000 }, end, now;
    prctl(PR_SET_TIMERSLACK, 1UL);
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += atoi(argv[1]);
    do {
        nanosleep(&ts, NULL);
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (now.tv_sec < end.tv_sec);
    return 0;
}
"""


def waker_binary():
    path = os.path.join(tempfile.gettempdir(), 'qemu-oc-bench-waker')
    src = path + '.c'
    with open(src, 'w') as f:
        f.write(WAKER_C)
    subprocess.run(['cc', '-O2', '-o', path, src], check=True)
    return path


WAKERS = int(os.environ.get('BENCH_WAKERS', '6'))


def cost_under_switches(exact, seconds):
    """Sampler CPU with 4 vCPUs preempted ~10,000 times a second each."""
    machine = 'pc' if exact else 'pc,vcpu-runstates-exact=off'
    with VM(smp=4, memory=256, machine=machine,
            args=['-name', 'bench,debug-threads=on']) as vm:
        tid = thread_named(vm.proc.pid, 'vcpu-runstates')
        vcpus = vm.qmp('query-vcpu-runstates')['vcpus']
        for i, v in enumerate(vcpus):
            subprocess.run(['taskset', '-p', '-c', str(i % 2),
                            str(v['thread-id'])], check=True,
                           stdout=subprocess.DEVNULL)
        pid = vm.spin(4)
        waker = waker_binary()
        wakers = [subprocess.Popen(['taskset', '-c', str(i % 2), waker,
                                    str(int(seconds) + 10)])
                  for i in range(WAKERS)]
        try:
            time.sleep(2)
            r0, c0, t0 = (vm.qmp('query-vcpu-runstates'),
                          oncpu_ns(vm.proc.pid, tid), time.monotonic())
            time.sleep(seconds)
            r1, c1, t1 = (vm.qmp('query-vcpu-runstates'),
                          oncpu_ns(vm.proc.pid, tid), time.monotonic())
        finally:
            for w in wakers:
                w.kill()
                w.wait()
        vm.kill(pid)
        span = t1 - t0
        switches = [(b['transitions'] - a['transitions']) / 2 / span
                    for a, b in zip(r0['vcpus'], r1['vcpus'])]
        share = (c1 - c0) / (span * 1e9) * 100
        load = ('%s switches/s per vCPU' % '/'.join('%.0f' % x for x in switches)
                if exact else 'the same load')
        print('source %-7s 4 vCPUs, %s: sampler %.3f %% of one core, missed '
              'changes %d' % (r1['source'], load, share,
                              r1['vm']['missed-changes'] - r0['vm']['missed-changes']))
        return share, sum(switches) / len(switches)


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10
    sampler_cost(4, seconds)
    sampler_cost(64, seconds)
    exact, rate = cost_under_switches(True, seconds)
    sampled, _ = cost_under_switches(False, seconds)
    # the exact source's cost above sampling grows with the switch rate
    print('exact source at 4 x 10,000 switches/s (scaled from %.0f/s): '
          '%.3f %% of one core  [target <= 0.5 %%]; sampled: %.3f %%'
          % (rate, sampled + (exact - sampled) * 10000 / rate, sampled))
    return 0


if __name__ == '__main__':
    sys.exit(main())
