#!/usr/bin/python3
"""vCPU and VM runstates against ground truth known by construction: the
Debian guest under TCG (idle; all vCPUs spinning, each on its own host
core; 1 of 2 spinning; N spinning vCPUs pinned to fewer host cores; a
spinning vCPU sharing its core with a host hog), tiny guests under KVM,
the qtest accelerator, stop/cont, bad input, the exact source's lost
records (a tiny ring) and its fallback, and vCPU hot-plug and unplug (once
while another monitor queries, and repeated plug/unplug cycles).  VM
states are asserted within 5 points of the truth."""

import os
import subprocess
import time
import unittest

from ocvm import BINARY, GUEST, VM, QMPError, VMTestCase, wait_until

VM_STATES = ['full-run', 'full-contention', 'concurrency-hazard', 'blocked',
             'partial-run', 'partial-contention']
VCPU_STATES = ['running', 'runnable', 'blocked', 'offline']


def interval(vm, seconds):
    """Fractions of each VM and vCPU state over the next `seconds`."""
    a = vm.qmp('query-vcpu-runstates')
    time.sleep(seconds)
    b = vm.qmp('query-vcpu-runstates')
    span = b['elapsed-ns'] - a['elapsed-ns']
    vmf = {s: (b['vm'][s + '-ns'] - a['vm'][s + '-ns']) / span for s in VM_STATES}
    vcpus = []
    for va, vb in zip(a['vcpus'], b['vcpus']):
        tot = sum(vb[s + '-ns'] - va[s + '-ns'] for s in VCPU_STATES)
        vcpus.append({s: (vb[s + '-ns'] - va[s + '-ns']) / tot if tot else 0
                      for s in VCPU_STATES})
    report = ' '.join('%s=%.1f%%' % (s, 100 * f) for s, f in vmf.items() if f >= 0.005)
    report += ' | ' + ' / '.join(' '.join('%s=%.0f%%' % (s[:4], 100 * v[s])
                                          for s in VCPU_STATES) for v in vcpus)
    print('  ' + report)
    return vmf, vcpus, b


def vcpu_tids(vm):
    return [v['thread-id'] for v in vm.qmp('query-vcpu-runstates')['vcpus']]


def pin(vm, cores):
    """Pin vCPU i's thread to host core cores[i]."""
    for tid, core in zip(vcpu_tids(vm), cores):
        subprocess.run(['taskset', '-p', '-c', str(core), str(tid)],
                       check=True, stdout=subprocess.DEVNULL)


# a host thread that wakes every ~20 us: it preempts the vCPU on its core
WAKER = ('import time\nend = time.time() + %d\n'
         'while time.time() < end: time.sleep(0.00002)')


def host_on_core(core, code):
    return subprocess.Popen(['taskset', '-c', str(core), '/usr/bin/python3',
                             '-c', code])


def plug_vcpu(vm, dev_id, core_id):
    """device_add a vCPU, then wait until the guest has processed its ACPI
    insert (_OST device check, status 0): QEMU drops an eject request sent
    before that, and the vCPU would never go away."""
    vm.qmp('device_add', driver='qemu64-x86_64-cpu', id=dev_id,
           **{'socket-id': 0, 'core-id': core_id, 'thread-id': 0})
    wait_until(lambda: any(s.get('device') == dev_id and s['source'] == 1 and
                           s['status'] == 0
                           for s in vm.qmp('query-acpi-ospm-status')),
               30, 0.1, 'the guest to process the insert of %s' % dev_id)


def unplug_vcpu(vm, dev_id, timeout=30):
    """device_del a vCPU and wait for its own DEVICE_DELETED (the lapic
    child's comes first and has only a path)."""
    vm.qmp('device_del', id=dev_id)
    return vm.event('DEVICE_DELETED', timeout, match={'device': dev_id})


def hotpluggable_paths(vm):
    """{core-id: qom-path or None} of query-hotpluggable-cpus"""
    return {c['props']['core-id']: c.get('qom-path')
            for c in vm.qmp('query-hotpluggable-cpus')}


class RunstatesTest(VMTestCase):

    def check_counters(self, r):
        for v in r['vcpus']:
            total = sum(v[s + '-ns'] for s in VCPU_STATES)
            self.assertAlmostEqual(total / r['elapsed-ns'], 1, delta=0.02)
        vm_total = sum(r['vm'][s + '-ns'] for s in VM_STATES)
        self.assertAlmostEqual(vm_total / r['elapsed-ns'], 1, delta=0.01)

    def test_tcg_scenarios(self):
        with VM(smp=2, memory=256) as vm:
            r = vm.qmp('query-vcpu-runstates')
            self.assertEqual(r['method'], 'tcg')
            self.assertEqual(r['source'], 'exact')
            self.assertNotIn('source-reason', r)
            self.assertEqual(r['period-ms'], 100)
            self.assertEqual([v['cpu-index'] for v in r['vcpus']], [0, 1])
            self.assertTrue(all(v['thread-id'] > 0 for v in r['vcpus']))

            print('idle guest')
            vmf, vcpus, r = interval(vm, 3)
            self.assertGreaterEqual(vmf['blocked'], 0.95)
            self.check_counters(r)

            print('2 of 2 vCPUs spinning, each on its own host core')
            pin(vm, [0, 1])
            pid = vm.spin(2)
            vmf, vcpus, r = interval(vm, 3)
            vm.kill(pid)
            self.assertGreaterEqual(vmf['full-run'], 0.95)
            for v in vcpus:
                self.assertGreater(v['running'], 0.95)

            print('1 of 2 vCPUs spinning')
            pid = vm.spin(1)
            vmf, vcpus, r = interval(vm, 3)
            self.assertEqual(r['vm']['state'], 'partial-run')
            self.assertEqual([v['state'] for v in r['vcpus']], ['running', 'blocked'])
            vm.kill(pid)
            self.assertGreaterEqual(vmf['partial-run'], 0.95)
            self.assertGreater(vcpus[0]['running'], 0.95)
            self.assertGreater(vcpus[1]['blocked'], 0.95)
            self.check_counters(r)

    def test_spinning_vcpus_on_fewer_host_cores(self):
        """At every instant some vCPUs run and the others wait for the
        same cores: concurrency-hazard all the time (sampling, which takes
        the vCPUs as independent, said 50 % here)."""
        with VM(smp=2, memory=256) as vm:
            pin(vm, [0, 0])
            pid = vm.spin(2)
            print('2 spinning vCPUs pinned to one host core')
            vmf, vcpus, r = interval(vm, 3)
            vm.kill(pid)
            self.assertGreaterEqual(vmf['concurrency-hazard'], 0.95)
            for v in vcpus:
                self.assertAlmostEqual(v['running'], 0.5, delta=0.05)
                self.assertAlmostEqual(v['runnable'], 0.5, delta=0.05)
            self.check_counters(r)
        with VM(smp=3, memory=256) as vm:
            pin(vm, [0, 1, 0])
            pid = vm.spin(3)
            print('3 spinning vCPUs on 2 host cores')
            vmf, vcpus, r = interval(vm, 3)
            vm.kill(pid)
            self.assertGreaterEqual(vmf['concurrency-hazard'], 0.95)
            self.check_counters(r)

    def test_four_vcpus_on_two_cores(self):
        if os.cpu_count() < 2:
            self.fail('this scenario needs 2 host cores, not %d' % os.cpu_count())
        with VM(smp=4, memory=256) as vm:
            # two vCPUs on each of two cores, whatever the host's size
            pin(vm, [0, 0, 1, 1])
            pid = vm.spin(4)
            print('4 vCPUs spinning on 2 host cores')
            vmf, vcpus, r = interval(vm, 4)
            vm.kill(pid)
            self.assertGreaterEqual(vmf['concurrency-hazard'], 0.95)
            for v in vcpus:
                self.assertGreater(v['runnable'], 0.3)
                self.assertLess(v['runnable'], 0.7)

    def test_vcpu_sharing_a_core_with_a_host_hog(self):
        with VM(smp=2, memory=256) as vm:
            tid = vcpu_tids(vm)[0]
            subprocess.run(['taskset', '-p', '-c', '0', str(tid)], check=True,
                           stdout=subprocess.DEVNULL)
            hog = subprocess.Popen(['taskset', '-c', '0', '/usr/bin/python3', '-c',
                                    'import time\nt=time.time()+60\n'
                                    'print("hogging", flush=True)\n'
                                    'while time.time()<t: pass'],
                                   stdout=subprocess.PIPE, text=True)
            try:
                self.assertEqual(hog.stdout.readline().strip(), 'hogging')
                pid = vm.spin(1)    # on vCPU 0
                print('vCPU 0 pinned with a host hog on its core')
                vmf, vcpus, r = interval(vm, 4)
                vm.kill(pid)
            finally:
                hog.kill()
                hog.wait()
            self.assertAlmostEqual(vcpus[0]['runnable'], 0.5, delta=0.05)
            self.assertAlmostEqual(vcpus[0]['running'], 0.5, delta=0.05)
            # vCPU 1 idles: the VM alternates between these two
            self.assertAlmostEqual(vmf['partial-run'], 0.5, delta=0.05)
            self.assertAlmostEqual(vmf['partial-contention'], 0.5, delta=0.05)
            self.check_counters(r)

    def test_lost_records_are_missed_changes(self):
        """A one-page switch record ring, and a sampler thread that hardly
        gets a CPU (SCHED_IDLE on the busy core), cannot keep up with a
        vCPU preempted thousands of times a second: the records Linux
        drops are counted as missed changes, and the counters still add
        up.  The test waits for the count to move (when the ring first
        overflows depends on the host's scheduling, not on a window)."""
        with VM(smp=2, memory=256, machine='pc,x-vcpu-runstates-ring-pages=1',
                args=['-name', 'lost,debug-threads=on']) as vm:
            pin(vm, [0, 1])
            sampler = [t for t in os.listdir('/proc/%d/task' % vm.proc.pid)
                       if open('/proc/%d/task/%s/comm' % (vm.proc.pid, t))
                       .read().strip() == 'vcpu-runstates'][0]
            subprocess.run(['taskset', '-p', '-c', '0', sampler], check=True,
                           stdout=subprocess.DEVNULL)
            subprocess.run(['chrt', '--idle', '-p', '0', sampler], check=True)
            pid = vm.spin(1)
            a = vm.qmp('query-vcpu-runstates')
            waker = host_on_core(0, WAKER % 120)

            def missed():
                r = vm.qmp('query-vcpu-runstates')
                return r if r['vm']['missed-changes'] > a['vm']['missed-changes'] \
                    else None

            try:
                b = wait_until(missed, 90, 0.2, 'a missed change counted')
            finally:
                waker.kill()
                waker.wait()
            vm.kill(pid)
            print('  1-page ring: %d missed changes after %d transitions in %.1f s'
                  % (b['vm']['missed-changes'] - a['vm']['missed-changes'],
                     b['vcpus'][0]['transitions'] - a['vcpus'][0]['transitions'],
                     (b['elapsed-ns'] - a['elapsed-ns']) / 1e9))
            self.assertEqual(b['source'], 'exact')
            self.check_counters(b)

    def test_fallback_to_sampling(self):
        """vcpu-runstates-exact=off forces the sampled source (as a kernel
        that refuses context-switch records does); it says so, and why."""
        with VM(smp=2, memory=256, machine='pc,vcpu-runstates-exact=off') as vm:
            r = vm.qmp('query-vcpu-runstates')
            self.assertEqual(r['source'], 'sampled')
            self.assertIn('vcpu-runstates-exact', r['source-reason'])
            text = vm.hmp('info runstates')
            self.assertIn('source sampled', text)
            self.assertIn('not exact: the machine property vcpu-runstates-exact',
                          text)
            pid = vm.spin(1)
            vmf, vcpus, r = interval(vm, 2)
            vm.kill(pid)
            self.assertGreater(vmf['partial-run'], 0.8)
            self.check_counters(r)
        for bad in ['x-vcpu-runstates-ring-pages=3', 'vcpu-runstates-exact=maybe']:
            p = subprocess.run([BINARY,
                                '-machine', 'pc,' + bad, '-display', 'none',
                                '-accel', 'tcg'],
                               capture_output=True, text=True, timeout=30)
            self.assertNotEqual(p.returncode, 0, bad)
            self.assertIn(bad.split('=')[0], p.stderr)

    def test_stop_cont_offline_and_monotonic(self):
        with VM(smp=2, memory=256) as vm:
            before = vm.qmp('query-vcpu-runstates')
            vm.qmp('stop')
            time.sleep(0.5)
            vmf, vcpus, r = interval(vm, 1.5)
            self.assertEqual([v['state'] for v in r['vcpus']], ['offline', 'offline'])
            for v in vcpus:
                self.assertGreater(v['offline'], 0.95)
            self.assertGreater(vmf['blocked'], 0.95)
            vm.qmp('cont')
            time.sleep(0.5)
            after = vm.qmp('query-vcpu-runstates')
            for a, b in zip(before['vcpus'], after['vcpus']):
                for s in VCPU_STATES:
                    self.assertGreaterEqual(b[s + '-ns'], a[s + '-ns'])
                self.assertGreater(b['transitions'], a['transitions'])
            self.assertNotEqual([v['state'] for v in after['vcpus']], ['offline'] * 2)
            self.check_counters(after)

    def test_period_and_bad_input(self):
        with VM(smp=1, memory=256) as vm:
            vm.qmp('set-vcpu-runstates-period', {'period-ms': 20})
            r0 = vm.qmp('query-vcpu-runstates')
            self.assertEqual(r0['period-ms'], 20)
            time.sleep(1)
            r1 = vm.qmp('query-vcpu-runstates')
            self.assertGreater(r1['samples'] - r0['samples'], 30)
            for bad in [{'period-ms': 9}, {'period-ms': 10001}, {'period-ms': 'x'}, {}]:
                with self.assertRaises(QMPError, msg=bad):
                    vm.qmp('set-vcpu-runstates-period', bad)
            with self.assertRaises(QMPError) as cm:
                vm.qmp('query-vcpu-runstates', {'cpu': 0})
            self.assertIn('cpu', cm.exception.desc)
            text = vm.hmp('info runstates')
            self.assertIn('VM: ', text)
            self.assertRegex(text, r'\n +0 +\d+ +(running|runnable|blocked) ')

    def test_new_period_takes_effect_at_once(self):
        """Lowering the period counts no missed change, and the sampler
        does not finish the old, long sleep first."""
        with VM(smp=1, memory=256) as vm:
            vm.qmp('set-vcpu-runstates-period', {'period-ms': 10000})
            wait_until(lambda: vm.qmp('query-vcpu-runstates')['samples'] >= 1, 5)
            for period in [20, 10000, 1000, 20, 5000, 50]:
                r0 = vm.qmp('query-vcpu-runstates')
                vm.qmp('set-vcpu-runstates-period', {'period-ms': period})
                if period >= 1000:
                    continue
                # a sample closes the old interval at once, then one per
                # new period: samples arrive long before the old sleep ends
                wait_until(lambda: vm.qmp('query-vcpu-runstates')['samples']
                           >= r0['samples'] + 5, 5)
            r1 = vm.qmp('query-vcpu-runstates')
            self.assertEqual(r1['vm']['missed-changes'], 0)
            self.assertEqual(r1['period-ms'], 50)

    def test_vcpu_hotplug_and_unplug_during_queries(self):
        import threading
        with VM(smp='1,maxcpus=2', memory=256, extra_qmp=1) as vm:
            r = vm.qmp('query-vcpu-runstates')
            self.assertEqual([(v['cpu-index'], v['thread-id'], v['state'])
                              for v in r['vcpus']][1], (1, 0, 'offline'))
            plug_vcpu(vm, 'c1', 1)
            wait_until(lambda: vm.qmp('query-vcpu-runstates')['vcpus'][1]['thread-id'],
                       10, 0.1, 'the new vCPU thread')
            stop = threading.Event()
            counts = [0]

            def hammer():
                while not stop.is_set():
                    vm.qmps[0].command('query-vcpu-runstates')
                    counts[0] += 1
            t = threading.Thread(target=hammer)
            t.start()
            try:
                ev = unplug_vcpu(vm, 'c1')
                self.assertEqual(ev['data']['path'], '/machine/peripheral/c1')
                time.sleep(0.5)
            finally:
                stop.set()
                t.join(10)
            self.assertGreater(counts[0], 10)
            self.assertIsNone(vm.proc.poll())
            a = vm.qmp('query-vcpu-runstates')['vcpus'][1]
            time.sleep(0.5)
            b = vm.qmp('query-vcpu-runstates')['vcpus'][1]
            self.assertEqual(b['state'], 'offline')
            self.assertGreater(b['offline-ns'] - a['offline-ns'], 300000000)
            self.check_counters(vm.qmp('query-vcpu-runstates'))
            self.assertEqual(vm.shell('echo alive'), 'alive')

    def test_vcpu_plug_unplug_cycles(self):
        """Resize a running guest again and again (how an overcommitted host
        gives and takes vCPUs): each cycle plugs a vCPU, the guest brings it
        online and runs on it, the vCPU is unplugged and its own
        DEVICE_DELETED arrives.  Under TCG, 7.2 corrupted its heap on the
        second device_add and never deleted the vCPU."""
        cycles = 6
        with VM(smp='1,maxcpus=2', memory=256) as vm:
            tids = []
            last = vm.qmp('query-vcpu-runstates')['vcpus'][1]
            for i in range(cycles):
                plug_vcpu(vm, 'c1', 1)
                self.assertEqual(hotpluggable_paths(vm)[1], '/machine/peripheral/c1')
                fast = {c['cpu-index']: c['thread-id'] for c in vm.qmp('query-cpus-fast')}
                self.assertEqual(sorted(fast), [0, 1])
                vm.shell('echo 1 > /sys/devices/system/cpu/cpu1/online')
                self.assertEqual(vm.read_file('/sys/devices/system/cpu/online'), '0-1')

                # the guest runs on the new vCPU; the runstates follow its thread
                pid = vm.spin(2)
                a = vm.qmp('query-vcpu-runstates')['vcpus'][1]
                time.sleep(1)
                b = vm.qmp('query-vcpu-runstates')['vcpus'][1]
                vm.kill(pid)
                self.assertEqual(b['thread-id'], fast[1])
                busy = sum(b[s + '-ns'] - a[s + '-ns'] for s in ('running', 'runnable'))
                total = sum(b[s + '-ns'] - a[s + '-ns'] for s in VCPU_STATES)
                print('  cycle %d: vCPU 1 thread %d, busy %.0f%%'
                      % (i, fast[1], 100 * busy / total))
                self.assertGreater(busy / total, 0.5)
                for s in VCPU_STATES:       # the slot's counters go on
                    self.assertGreaterEqual(b[s + '-ns'], last[s + '-ns'])
                tids.append(fast[1])

                ev = unplug_vcpu(vm, 'c1')
                self.assertEqual(ev['data']['path'], '/machine/peripheral/c1')
                self.assertIsNone(vm.proc.poll())
                self.assertIsNone(hotpluggable_paths(vm)[1])
                self.assertEqual([c['cpu-index'] for c in vm.qmp('query-cpus-fast')], [0])
                self.assertIn({'slot': '1', 'slot-type': 'CPU', 'source': 3, 'status': 0},
                              vm.qmp('query-acpi-ospm-status'))
                last = wait_until(
                    lambda: [v for v in [vm.qmp('query-vcpu-runstates')['vcpus'][1]]
                             if v['state'] == 'offline'],
                    5, 0.1, 'vCPU 1 offline in the runstates')[0]
                self.assertEqual(vm.read_file('/sys/devices/system/cpu/online'), '0')
            self.assertEqual(len(set(tids)), cycles)    # a new thread each time
            self.assertEqual(vm.shell('echo alive'), 'alive')
            self.assertEqual(vm.qmp('query-status')['status'], 'running')

    def test_qtest_accelerator(self):
        with VM(smp=2, accel='qtest', guest='none', balloon=False) as vm:
            r = vm.qmp('query-vcpu-runstates')
            self.assertEqual(r['method'], 'none')
            self.assertEqual(r['samples'], 0)
            self.assertEqual(r['vm']['state'], 'blocked')
            self.assertEqual([v['state'] for v in r['vcpus']], ['offline', 'offline'])
            self.assertTrue(all(v['running-ns'] == 0 for v in r['vcpus']))

    def kvm_guest(self, name):
        out = os.path.join(GUEST, 'debugcon-%s-%d.txt' % (name, os.getpid()))
        vm = VM(smp=1, memory=64, accel='kvm', guest='kernel',
                kernel=os.path.join(GUEST, 'tiny-%s.elf' % name),
                balloon=False, cpu='qemu64', args=['-debugcon', 'file:' + out])
        return vm, out

    def test_kvm_tiny_guests(self):
        self.need_kvm()
        for name, state in [('halt', 'blocked'), ('spin', 'running')]:
            vm, out = self.kvm_guest(name)
            with vm:
                def started():
                    if not os.path.exists(out):
                        return False
                    with open(out) as f:
                        return name.upper() in f.read()
                wait_until(started, 30, 0.2, 'the tiny guest to start')
                time.sleep(0.5)
                print('KVM tiny guest: %s' % name)
                vmf, vcpus, r = interval(vm, 2)
                self.assertEqual(r['method'], 'kvm')
                self.assertEqual(r['source'], 'exact')
                self.assertGreater(vcpus[0][state], 0.9, vcpus[0])
                self.assertEqual(r['vcpus'][0]['state'], state)
            os.unlink(out)


if __name__ == '__main__':
    unittest.main()
