#!/usr/bin/python3
"""make demo: boot a demo VM with qemu-oc and show what an operator sees:
its identity, balloon statistics on demand, and its runstates; then the
balloon policy daemon deciding for it and three fake VMs while the host's
memory goes from plenty to little and back (a dry run: nothing changes)."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'tests', 'guest'))
from ocvm import VM, wait_until  # noqa: E402

BALLOON = '/machine/peripheral/balloon0'
ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                     '..'))
BALLOOND = os.path.join(ROOT, 'build', 'tools', 'qemu-oc-balloond')
VMTOP = os.path.join(ROOT, 'build', 'tools', 'vmtop')
FAKE_QMP = os.path.join(ROOT, 'tests', 'tools', 'fake_qmp.py')
FAKE_USED_MIB = (600, 1200, 1900)   # of 2048 MiB each
MAX_LOG_LINES = 20


def show(title, value):
    print('== %s' % title)
    print(value if isinstance(value, str) else json.dumps(value, indent=2))


def write_meminfo(path, available_mib, total_mib=16384):
    """A /proc/meminfo-format file, replaced at once (rename)."""
    with open(path + '.new', 'w') as f:
        f.write('MemTotal: %d kB\nMemFree: %d kB\nMemAvailable: %d kB\n'
                % (total_mib << 10, available_mib << 10, available_mib << 10))
    os.rename(path + '.new', path)


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(path, seconds):
    deadline = time.monotonic() + seconds
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)


def interesting(lines):
    """The daemon's lines, a decision only when its VM's reason or target
    changes (a dry run repeats itself on every fresh report)."""
    last = {}
    for line in lines:
        line = line.replace('** Message: ', '', 1)
        words = line.split()
        if len(words) > 5 and words[1].endswith(':') and words[4] == '->':
            key = tuple(words[2:6])             # reason current -> target
            if last.get(words[1]) == key:
                continue
            last[words[1]] = key
        yield line


def balloond_demo(base, qmp_dir):
    """qemu-oc-balloond --dry-run on the demo VM and three fake VMs while
    the host's MemAvailable goes from plenty to little and back."""
    print('== qemu-oc-balloond: fresh statistics in, decisions out (dry run)')
    if not os.access(BALLOOND, os.X_OK):
        print('%s is missing (make build builds it): skipping this part'
              % os.path.relpath(BALLOOND, ROOT))
        return
    meminfo = os.path.join(base, 'meminfo')
    psi = os.path.join(base, 'pressure-memory')
    write_meminfo(meminfo, 8192)
    with open(psi, 'w') as f:          # calm: the real host's PSI stays out
        f.write('some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n'
                'full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n')
    procs = []
    try:
        for i, used in enumerate(FAKE_USED_MIB):
            sock = os.path.join(qmp_dir, 'fake%d' % (i + 1))
            procs.append(subprocess.Popen(
                [sys.executable, FAKE_QMP, sock, 'good', '--memory-mib', '2048',
                 '--used-mib', str(used), '--lifetime', '60']))
            wait_for(sock, 5)
        print('VMs in %s: demo (the guest above, 512 MiB), fake1..fake3 '
              '(2048 MiB, using %s MiB)' % (
                  qmp_dir, ', '.join(str(u) for u in FAKE_USED_MIB)))
        if os.access(VMTOP, os.X_OK):
            print('-- vmtop --once')
            try:
                r = subprocess.run([VMTOP, '--qmp-dir', qmp_dir, '--once',
                                    '--interval', '1'], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, timeout=30,
                                   universal_newlines=True)
                print(r.stdout.rstrip())
            except subprocess.TimeoutExpired:
                print('vmtop gave no frame in 30 s')
        log = open(os.path.join(base, 'balloond.log'), 'w+')
        daemon = subprocess.Popen(
            [BALLOOND, '--dry-run', '--qmp-dir', qmp_dir,
             '--host-meminfo', meminfo, '--host-psi', psi, '--interval', '1'],
            stdout=log, stderr=log)
        procs.append(daemon)
        print('-- host MemAvailable 8192 of 16384 MiB, then 1024 MiB for 3 s '
              '(pressure: below 10%), then 8192 again')
        time.sleep(2.5)
        write_meminfo(meminfo, 1024)
        time.sleep(3)
        write_meminfo(meminfo, 8192)
        time.sleep(2.5)
        stop(daemon)
        log.seek(0)
        lines = log.read().splitlines()
        log.close()
        shown = list(interesting(lines))
        print('-- qemu-oc-balloond --dry-run: %d log lines, %d shown '
              '(repeats of a decision left out)'
              % (len(lines), min(len(shown), MAX_LOG_LINES)))
        for line in shown[:MAX_LOG_LINES]:
            print('    ' + line)
        if daemon.returncode not in (0, -15):
            print('qemu-oc-balloond ended with status %d' % daemon.returncode)
    finally:
        for p in procs:
            stop(p)


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
        balloond_demo(base, qmp_dir)


if __name__ == '__main__':
    sys.exit(main())
