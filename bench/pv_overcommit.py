#!/usr/bin/python3
"""Benchmark: lock-heavy guest throughput under CPU overcommit, KVM PV
spinlocks and yield on vs off (prints numbers; not a test).

For each overcommit factor F in 1..4, F VMs of 4 vCPUs each run a
lock-heavy workload (all vCPUs contending on shared locks) for a fixed
time on the same host CPUs; the score is the total work done.  Run once
with -machine kvm-pv=on and once with kvm-pv=off.

This needs a host where KVM boots Linux.  On a host where it does not
(such as a nested, software KVM that emulates every instruction), the
script says so and exits with status 77, measuring nothing.
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'tests', 'guest'))
from ocvm import VM, VMError  # noqa: E402

BOOT_LIMIT = 60


def kvm_boots_linux():
    """Can KVM bring the test guest to its shell within BOOT_LIMIT s?"""
    if not os.access('/dev/kvm', os.R_OK | os.W_OK):
        return False, '/dev/kvm is not available'
    t0 = time.monotonic()
    try:
        with VM(smp=1, memory=256, accel='kvm', boot_timeout=BOOT_LIMIT) as vm:
            vm.shell('true')
    except VMError as e:
        return False, ('KVM did not boot the Debian guest to its shell within '
                       '%d s (%s)' % (BOOT_LIMIT, e))
    return True, 'booted in %.1f s' % (time.monotonic() - t0)


def run(factor, pv, seconds):
    vms = [VM(smp=4, memory=512, accel='kvm', machine='pc,kvm-pv=%s' % pv)
           for _ in range(factor)]
    try:
        for vm in vms:
            vm.start()
        # each guest: 4 threads hammering shared locks (flock on one file)
        loop = ('i=0; end=$(($(date +%%s)+%d)); while [ $(date +%%s) -lt $end ]; '
                'do flock /tmp/l true; i=$((i+1)); done; echo $i' % seconds)
        for vm in vms:
            vm.serial.send('for t in 1 2 3 4; do (%s) > /tmp/n$t & done; wait\n' % loop)
        time.sleep(seconds + 2)
        return sum(int(vm.shell('cat /tmp/n1 /tmp/n2 /tmp/n3 /tmp/n4 | '
                                'awk "{s+=\\$1} END {print s}"')) for vm in vms)
    finally:
        for vm in vms:
            vm.shutdown()


def main():
    ok, why = kvm_boots_linux()
    if not ok:
        print('pv_overcommit: CANNOT RUN on this host: %s.' % why)
        print('The PV spinlock/yield comparison needs guests that run at '
              'native speed under KVM; see docs/kvm-pv.md.')
        return 77
    print('pv_overcommit: KVM %s' % why)
    for factor in (1, 2, 3, 4):
        scores = {pv: run(factor, pv, 30) for pv in ('on', 'off')}
        print('overcommit %dx (%d vCPUs on %d host CPUs): kvm-pv=on %d, off %d, '
              'gain %+.1f %%' % (factor, 4 * factor, os.cpu_count(), scores['on'],
                                 scores['off'],
                                 100.0 * (scores['on'] - scores['off']) / max(1, scores['off'])))
    return 0


if __name__ == '__main__':
    sys.exit(main())
