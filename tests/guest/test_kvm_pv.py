#!/usr/bin/python3
"""KVM PV spinlocks and PV yield: the CPUID leaf 0x40000001 the guest will
see (QOM feature-words of each vCPU) for the machine property kvm-pv on,
off and absent, named models, old machine types, the dedicated hint and
explicit per-feature properties; a tiny guest of ours reading the leaf
under KVM; TCG's refusal of kvm-pv=on; and the visibility in
query-vcpu-runstates."""

import os
import subprocess
import unittest

from ocvm import BINARY, GUEST, NOT_ON_THIS_HOST, VM, VMTestCase, wait_until

STEAL, UNHALT, YIELD = 1 << 5, 1 << 7, 1 << 13
PV = STEAL | UNHALT | YIELD
# qemu-oc's own type: the default machine, KVM PV on by default
OC = 'pc-i440fx-7.2-oc'


def kvm_eax(vm, path=None):
    """CPUID 0x40000001 EAX of the vCPU at QOM path (default: the first)"""
    path = path or vm.qmp('query-cpus-fast')[0]['qom-path']
    for w in vm.qom_get(path, 'feature-words'):
        if w['cpuid-input-eax'] == 0x40000001 and w['cpuid-register'] == 'EAX':
            return w['features']
    raise AssertionError('no CPUID 0x40000001 EAX in feature-words')


def vcpu_cpu_ns(vm, tid):
    """CPU time of vCPU thread @tid of @vm so far (the host's
    schedstat: nanoseconds on a CPU)"""
    with open('/proc/%d/task/%d/schedstat' % (vm.proc.pid, tid)) as f:
        return int(f.read().split()[0])


def kvm_vcpu_stats(vm, names):
    """{name: value} of KVM's statistics @names of the first vCPU"""
    path = vm.qmp('query-cpus-fast')[0]['qom-path']
    r = vm.qmp('query-stats', target='vcpu', vcpus=[path],
               providers=[{'provider': 'kvm', 'names': names}])
    return {s['name']: s['value'] for s in r[0]['stats']}


def kvm_module():
    """The host's KVM modules, by name"""
    mods = [m for m in ('kvm_intel', 'kvm_amd', 'kvm_pvm')
            if os.path.isdir('/sys/module/' + m)]
    return ', '.join(mods) or 'no known module'


# CPU time a vCPU may spend at its hypercalls without KVM completing one
# before the host's KVM counts as unable to (a working KVM completes one
# in microseconds)
STUCK_CPU_NS = 1000 * 1000 * 1000


def stopped_vm(**kw):
    kw.setdefault('accel', 'kvm')
    kw.setdefault('cpu', 'qemu64')
    return VM(guest='none', balloon=False, args=['-S'], memory=128, **kw)


class KvmPvTest(VMTestCase):
    """The cases that start the KVM accelerator call need_kvm(); the
    others (machine types, TCG, parsing) run on any host."""

    def pv_bits(self, **kw):
        with stopped_vm(**kw) as vm:
            words = {kvm_eax(vm, c['qom-path']) & PV
                     for c in vm.qmp('query-cpus-fast')}
            self.assertEqual(len(words), 1, 'vCPUs disagree: %r' % words)
            return words.pop()

    def test_defaults_by_machine_and_smp(self):
        self.need_kvm()
        cases = [
            # (machine, smp, cpu, expected bits)
            (OC, 2, 'qemu64', PV),
            ('pc-q35-7.2-oc', 2, 'qemu64', PV),
            (OC, 4, 'qemu64', PV),
            (OC, 2, 'kvm64', PV),
            (OC, 2, 'Nehalem', PV),
            (OC, 1, 'qemu64', STEAL),                   # single vCPU: upstream
            (OC, '1,maxcpus=2', 'qemu64', PV),          # more possible vCPUs
            ('pc', 2, 'qemu64', STEAL),                 # the aliases: upstream's
            ('q35', 2, 'qemu64', STEAL),
            ('pc-i440fx-7.2', 2, 'qemu64', STEAL),      # old type: upstream ABI
            ('pc-q35-7.2', 2, 'qemu64', STEAL),
            ('pc-i440fx-6.2', 2, 'qemu64', STEAL),
            (OC + ',kvm-pv=off', 2, 'qemu64', 0),
            ('pc,kvm-pv=on', 1, 'qemu64', PV),
            ('pc-i440fx-7.2,kvm-pv=on', 2, 'qemu64', PV),
            ('pc-i440fx-7.2,kvm-pv=off', 2, 'qemu64', 0),
            (OC, 2, 'qemu64,kvm-hint-dedicated=on', STEAL),  # Linux expects
            (OC, 2, 'qemu64,kvm-pv-unhalt=off', STEAL | YIELD),  # explicit wins
            (OC + ',kvm-pv=off', 2, 'qemu64,kvm-pv-unhalt=on', UNHALT),
            ('pc-i440fx-7.2', 2, 'qemu64,kvm-pv-sched-yield=on', STEAL | YIELD),
        ]
        for machine, smp, cpu, want in cases:
            with self.subTest(machine=machine, smp=smp, cpu=cpu):
                got = self.pv_bits(machine=machine, smp=smp, cpu=cpu)
                self.assertEqual(got, want, '%s -smp %s -cpu %s: %#x != %#x'
                                 % (machine, smp, cpu, got, want))

    def test_aliases_keep_upstreams_types(self):
        """pc and q35 name upstream's types (libvirt stores the name an
        alias resolves to: it must be one stock knows); the default
        machine, for a command line without -M, is qemu-oc's."""
        with stopped_vm(accel='tcg') as vm:
            machines = {m['name']: m for m in vm.qmp('query-machines')}
        self.assertEqual(machines['pc-i440fx-7.2'].get('alias'), 'pc')
        self.assertEqual(machines['pc-q35-7.2'].get('alias'), 'q35')
        self.assertNotIn('alias', machines[OC])
        self.assertNotIn('alias', machines['pc-q35-7.2-oc'])
        self.assertTrue(machines[OC].get('is-default'))
        self.assertFalse(machines['pc-i440fx-7.2'].get('is-default'))

    def test_visible_in_runstates(self):
        self.need_kvm()
        for machine, on in [(OC, True), (OC + ',kvm-pv=off', False)]:
            with stopped_vm(machine=machine, smp=2) as vm:
                pv = vm.qmp('query-vcpu-runstates')['kvm-pv']
                self.assertEqual((pv['pv-unhalt'], pv['pv-sched-yield'], pv['steal-time']),
                                 (on, on, on))
                self.assertFalse(pv['dedicated-hint'])
                self.assertIn('pv-unhalt %s' % ('on' if on else 'off'),
                              vm.hmp('info runstates'))

    def test_no_kvm_counters_under_tcg(self):
        """Under TCG KVM's counters do not exist: no "kvm" member (the
        tools then show "-", never 0)"""
        with VM(smp=2, memory=64, accel='tcg', guest='kernel',
                kernel=os.path.join(GUEST, 'tiny-halt.elf'),
                balloon=False) as vm:
            rs = vm.qmp('query-vcpu-runstates')
            self.assertEqual(len(rs['vcpus']), 2)
            for v in rs['vcpus']:
                self.assertNotIn('kvm', v)
            self.assertNotIn('kvm:', vm.hmp('info runstates'))

    def test_tiny_guest_directed_yields_counted(self):
        """A tiny guest of ours asks KVM 1000 times to yield to a vCPU
        that is not running (the hypercall a Linux guest makes when the
        vCPU it waits for is preempted): KVM's counter on its vCPU moves
        by as much, and the preemption counters are reported"""
        self.need_kvm()
        out = os.path.join(GUEST, 'debugcon-yield-%d.txt' % os.getpid())
        self.addCleanup(lambda: os.path.exists(out) and os.unlink(out))
        with VM(smp=2, memory=64, accel='kvm', cpu='qemu64', machine=OC,
                guest='kernel', kernel=os.path.join(GUEST, 'tiny-yield.elf'),
                balloon=False, args=['-debugcon', 'file:' + out]) as vm:
            # A host whose KVM never completes the guest's VMCALL (seen
            # with kvm_pvm) is told apart by CPU time, not by a clock:
            # once the guest is at its hypercalls (YIELDING), vCPU 0 runs
            # on with KVM's count of hypercalls done standing still
            def printed(what):
                return os.path.exists(out) and what in open(out).read()

            wait_until(lambda: printed('YIELDING'), 60, 0.1,
                       'the tiny guest to start yielding')
            tid = vm.qmp('query-cpus-fast')[0]['thread-id']
            last = {'calls': None, 'cpu': 0}

            def yielded_or_host_stuck():
                if printed('YIELDED'):
                    return 'yielded'
                calls = kvm_vcpu_stats(vm, ['hypercalls'])['hypercalls']
                cpu = vcpu_cpu_ns(vm, tid)
                if calls != last['calls']:
                    last.update(calls=calls, cpu=cpu)
                elif cpu - last['cpu'] >= STUCK_CPU_NS:
                    return 'stuck'
                return None

            if wait_until(yielded_or_host_stuck, 120, 0.2,
                          'the tiny guest to yield 1000 times') == 'stuck':
                self.skipTest('%s the host\'s KVM (%s) does not complete a '
                              'guest\'s hypercall: vCPU 0 ran %.1f s of CPU '
                              'time at the tiny guest\'s VMCALL with KVM\'s '
                              'hypercall count standing at %d'
                              % (NOT_ON_THIS_HOST, kvm_module(),
                                 STUCK_CPU_NS / 1e9, last['calls']))
            # (the counters are sampled: wait for a sample after it)
            def counters():
                k = vm.qmp('query-vcpu-runstates')['vcpus'][0].get('kvm')
                return k if k and k['directed-yield-attempted'] >= 1000 \
                    else None
            k = wait_until(counters, 30, 0.2, 'the yields counted')
            self.assertLessEqual(k['directed-yield-successful'],
                                 k['directed-yield-attempted'])
            self.assertIn('preemption-reported', k)
            self.assertIn('preemption-other', k)
            self.assertIn('yield attempted', vm.hmp('info runstates'))

    def test_tiny_guest_reads_the_leaf(self):
        self.need_kvm()
        for machine, want in [(OC, PV), (OC + ',kvm-pv=off', 0)]:
            out = os.path.join(GUEST, 'debugcon-cpuid-%d.txt' % os.getpid())
            with VM(smp=2, memory=64, accel='kvm', cpu='qemu64', machine=machine,
                    guest='kernel', kernel=os.path.join(GUEST, 'tiny-cpuid.elf'), balloon=False,
                    args=['-debugcon', 'file:' + out]) as vm:
                def line():
                    if os.path.exists(out):
                        with open(out) as f:
                            for ln in f:
                                if ln.startswith('CPUID 40000001 EAX='):
                                    return ln
                    return None
                text = wait_until(line, 30, 0.2, 'the tiny guest to print CPUID')
                eax = int(text.split('=')[1], 16)
                self.assertEqual(eax & PV, want, text)
                self.assertEqual(eax, kvm_eax(vm))
            os.unlink(out)

    def test_linux_guest_boot_lines_under_kvm(self):
        """The Debian kernel's own early lines: KVM here cannot finish
        booting Linux, but reaches them (PVH boot of the uncompressed
        kernel: this KVM emulates every instruction).  Read, then stop."""
        self.need_kvm()
        for machine, enabled in [(OC, True), (OC + ',kvm-pv=off', False)]:
            with VM(smp=2, memory=512, accel='kvm', cpu='qemu64', machine=machine,
                    guest='kernel', kernel=os.path.join(GUEST, 'vmlinux'), balloon=False,
                    append='console=ttyS0 earlyprintk=ttyS0 loglevel=7') as vm:
                vm.console_wait(r'kvm-guest: PV spinlocks (enabled|disabled)', 120)
                log = vm.console_log()
                vm.qmp('stop')
            with self.subTest(machine=machine):
                self.assertEqual('kvm-guest: setup PV sched yield' in log, enabled, log[-2000:])
                self.assertEqual('kvm-guest: PV spinlocks enabled' in log, enabled, log[-2000:])
                if not enabled:
                    self.assertIn('kvm-guest: PV spinlocks disabled', log)

    def test_tcg(self):
        # forced on: QEMU refuses to start and names the feature
        p = subprocess.run([BINARY, '-machine', 'pc,kvm-pv=on', '-accel', 'tcg',
                            '-smp', '2', '-display', 'none', '-nodefaults', '-S'],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn('kvm-pv=on: kvm-pv-unhalt needs the KVM accelerator', p.stderr)
        # the default under TCG changes nothing: same CPUID as kvm-pv=off
        words = []
        for machine in [OC, OC + ',kvm-pv=off']:
            with stopped_vm(accel='tcg', machine=machine, smp=2) as vm:
                words.append(vm.qom_get(vm.qmp('query-cpus-fast')[0]['qom-path'],
                                        'feature-words'))
        self.assertEqual(words[0], words[1])

    def test_bad_value(self):
        # refused while the machine's options are parsed, before any
        # accelerator starts
        p = subprocess.run([BINARY, '-machine', 'pc,kvm-pv=maybe', '-accel', 'tcg',
                            '-display', 'none', '-nodefaults', '-S'],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("kvm-pv", p.stderr)


if __name__ == '__main__':
    unittest.main()
