#!/usr/bin/python3
"""make demo: boot a demo VM with qemu-oc and show what an operator sees:
its identity, balloon statistics on demand, and its runstates; then a real
memory squeeze (scripts/demo_squeeze.py): three guests in a memory cgroup
of this machine, once without the balloon daemon (the kernel kills a QEMU)
and once with it (none dies), with its decisions and vmtop beside it."""

import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'tests', 'guest'))
from ocvm import VM, wait_until  # noqa: E402
import demo_squeeze  # noqa: E402

BALLOON = '/machine/peripheral/balloon0'
ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                     '..'))


def show(title, value):
    print('== %s' % title)
    print(value if isinstance(value, str) else json.dumps(value, indent=2))


def main():
    base = tempfile.mkdtemp(prefix='qemu-oc-demo-')
    qmp_dir = os.path.join(base, 'qmp')
    os.mkdir(qmp_dir)
    try:
        demo(base, qmp_dir)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


def demo(base, qmp_dir):
    with VM(smp=2, memory=512,
            args=['-qmp', 'unix:%s/demo,server=on,wait=off' % qmp_dir]) as vm:
        ver = vm.qmp('query-version')
        print('qemu-oc demo: %s, QEMU %d.%d.%d, guest booted in %.1f s' % (
            ver['package'], ver['qemu']['major'], ver['qemu']['minor'],
            ver['qemu']['micro'], vm.boot_seconds))
        show('query-balloon refresh=sync (fresh statistics from the guest)',
             vm.qmp('query-balloon', refresh='sync'))
        pid = vm.hold(128)
        r = vm.qmp('query-balloon', refresh='sync')
        print('guest now holds 128 MiB: free-memory=%d MiB'
              % (r['stats']['free-memory'] >> 20))
        vm.kill(pid)
        show('query-balloon refresh=async', vm.qmp('query-balloon', refresh='async'))
        show('event', vm.event('BALLOON_STATS', 10))
        show('HMP info balloon', vm.hmp('info balloon').strip())
        show('HMP info balloon -n (latest known, with age)',
             vm.hmp('info balloon -n').strip())
        vm.qom_set(BALLOON, 'guest-stats-polling-interval', 1)
        wait_until(lambda: vm.qom_get(BALLOON, 'guest-stats')['last-update'] > 0,
                   15, 0.2, 'guest statistics')
        show('qom-get balloon0 guest-stats (upstream polling, 1 s)',
             vm.qom_get(BALLOON, 'guest-stats'))
        vm.qom_set(BALLOON, 'guest-stats-polling-interval', 0)

        vm.hmp('info runstates')            # starts an interval
        print('== runstates: guest idle for 2 s')
        time.sleep(2)
        print(vm.hmp('info runstates'))
        print('== runstates: one of two vCPUs spinning for 2 s')
        pid = vm.spin(1)
        time.sleep(2)
        print(vm.hmp('info runstates'))
        vm.kill(pid)
        r = vm.qmp('query-vcpu-runstates')
        show('query-vcpu-runstates (vm part)', r['vm'])
    # the demo VM is gone: the squeeze has the machine to itself
    demo_squeeze.main(base)


if __name__ == '__main__':
    sys.exit(main())
