#!/usr/bin/python3
"""The memory squeeze part of make demo: three small guests whose QEMUs
live in a real memory cgroup of this machine (created under the demo's own
memory cgroup, removed after), limited so that what the guests need fits
but what their QEMUs hold does not.  Two guests use 400 MiB and free it;
then the third takes 600 MiB at once.

Twice: without a daemon (the kernel's OOM killer kills a whole QEMU), and
with qemu-oc-balloond (no VM dies): its decisions and vmtop beside it.
Each line says what happens; tool output goes to files under BASE."""

import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'tests', 'guest'))
import occgroup  # noqa: E402
import squeeze  # noqa: E402
from ocvm import VM, wait_until  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                     '..'))
BALLOOND = os.path.join(ROOT, 'build', 'tools', 'qemu-oc-balloond')
VMTOP = os.path.join(ROOT, 'build', 'tools', 'vmtop')
MIB = 1 << 20
LIMIT_MIB, GUEST_MIB, IDLE_MIB, BURST_MIB = 1600, 1024, 400, 600
NAMES = ('idle1', 'idle2', 'busy')


def say(fmt, *args):
    print(fmt % args if args else fmt, flush=True)


def rss(vm):
    r = squeeze.qemu_rss(vm)
    return '-' if r is None else '%d' % (r // MIB)


def boot(cg, qmp_dir):
    """The guests, with a QMP socket for the daemon in qmp_dir and one for
    vmtop in qmp_dir + '-vmtop' (a QMP socket serves one client)"""
    vms = []
    os.mkdir(qmp_dir + '-vmtop')
    for name in NAMES:
        vm = VM(smp=1, memory=GUEST_MIB, boot_timeout=120, wrapper=[cg.wrapper()],
                args=['-qmp', 'unix:%s,server=on,wait=off'
                      % os.path.join(qmp_dir, name),
                      '-qmp', 'unix:%s,server=on,wait=off'
                      % os.path.join(qmp_dir + '-vmtop', name)])
        vm.start()
        vms.append(vm)
    say('   3 guests of %d MiB booted, their QEMUs in %s (limit %d MiB)',
        GUEST_MIB, cg.path, LIMIT_MIB)
    for vm in vms[:2]:
        squeeze.idle_then_free(vm, IDLE_MIB)
    say('   idle1 and idle2 used %d MiB and freed it; QEMU RSS %s MiB; '
        'cgroup %d of %d MiB', IDLE_MIB, ' / '.join(rss(vm) for vm in vms),
        cg.usage() // MIB, LIMIT_MIB)
    return vms


def vmtop_once(qmp_dir, path):
    with open(path, 'w') as out:
        r = subprocess.run([VMTOP, '--qmp-dir', qmp_dir, '--once',
                            '--interval', '1'], stdout=out,
                           stderr=subprocess.STDOUT, timeout=60)
    with open(path) as f:
        for line in f.read().splitlines():
            say('     %s', line[:120])
    return r.returncode


def phase(base, with_daemon):
    title = 'with qemu-oc-balloond' if with_daemon else 'without a daemon'
    say('== memory squeeze %s', title)
    qmp_dir = os.path.join(base, 'qmp-%s' % ('daemon' if with_daemon else 'none'))
    os.mkdir(qmp_dir)
    daemon = None
    with occgroup.MemCgroup('demo', LIMIT_MIB) as cg:
        vms = []
        try:
            vms = boot(cg, qmp_dir)
            kills = cg.oom_kills()
            if with_daemon:
                meminfo = os.path.join(base, 'meminfo')
                with open(meminfo, 'w') as f:   # the host is fine: only the
                    f.write('MemTotal: 64000000 kB\n'       # cgroup is short
                            'MemAvailable: 60000000 kB\n')
                log = os.path.join(base, 'balloond.jsonl')
                err = open(os.path.join(base, 'balloond.log'), 'w')
                conf = os.path.join(base, 'balloond.conf')
                with open(conf, 'w') as f:      # the reserve: the burst
                    f.write('[policy]\nreserve-mib = %d\n' % BURST_MIB)
                daemon = subprocess.Popen(
                    [BALLOOND, '--qmp-dir', qmp_dir, '--interval', '0.5',
                     '--host-meminfo', meminfo, '--log-json', log,
                     '--config', conf], stderr=err)
                wait_until(lambda: open(err.name).read().count(
                    'memory domain(s)') == 3, 60, 0.2,
                    message='the daemon did not find the VMs\' cgroup')
                say('   qemu-oc-balloond found the cgroup from each QEMU '
                    '(log: %s); it keeps a reserve of %d MiB free in it, '
                    'taken from the idle guests', err.name, BURST_MIB)
                # (the daemon counts the QEMUs' page cache as headroom too)
                wait_until(lambda: LIMIT_MIB * MIB - cg.usage() >=
                           (BURST_MIB - 64) * MIB, 60, 0.2,
                           message='the reserve was not restored')
                say('   reserve restored: cgroup %d of %d MiB; QEMU RSS %s MiB',
                    cg.usage() // MIB, LIMIT_MIB,
                    ' / '.join(rss(vm) for vm in vms))
            say('   busy takes %d MiB at once ...', BURST_MIB)
            with squeeze.Watch(cg, vms) as watch:
                squeeze.burst(vms[2], BURST_MIB)
                if not with_daemon:
                    # the kernel's verdict: a QEMU killed, whichever it is
                    wait_until(lambda: any(squeeze.qemu_exit(vm) is not None
                                           for vm in vms), 30, 0.1,
                               message='no QEMU was killed')
            dead = [NAMES[i] for i in watch.deaths]
            say('   %s; cgroup peak %d of %d MiB; OOM kills %d',
                'QEMU of %s KILLED by the kernel' % ', '.join(dead) if dead
                else 'no VM died', watch.peak_usage // MIB, LIMIT_MIB,
                cg.oom_kills() - kills)
            say('   QEMU RSS now %s MiB', ' / '.join(rss(vm) for vm in vms))
            if with_daemon:
                rows = [json.loads(x) for x in open(log) if '"reason"' in x]
                sets = [x for x in rows if x.get('action') == 'set']
                say('   the daemon set %d balloons; its first decisions:', len(sets))
                for x in sets[:6]:
                    say('     %s: %s %d -> %d MiB', x['vm'], x['reason'],
                        x['current-mib'], x['target-mib'])
                say('   vmtop --once beside it:')
                vmtop_once(qmp_dir + '-vmtop', os.path.join(base, 'vmtop.txt'))
        finally:
            if daemon:
                daemon.send_signal(signal.SIGTERM)
                daemon.wait(10)
            for vm in vms:
                vm.shutdown()


def main(base):
    reason = occgroup.reason_unavailable(LIMIT_MIB)
    if reason:
        say('== memory squeeze: skipped: %s', reason)
        return 1
    t0 = time.monotonic()
    phase(base, False)
    phase(base, True)
    say('== memory squeeze: %.0f s', time.monotonic() - t0)
    return 0


if __name__ == '__main__':
    import tempfile
    sys.exit(main(tempfile.mkdtemp(prefix='qemu-oc-squeeze-')))
