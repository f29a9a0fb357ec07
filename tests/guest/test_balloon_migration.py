#!/usr/bin/python3
"""Migration of the balloon statistics state, and what runstates report
across it.

- qemu-oc -> stock QEMU 7.2 on the upstream machine types (pc-i440fx-7.2,
  pc-q35-7.2) after the guest reported statistics: the stream is stock's,
  the destination runs, upstream polling works there;
- stock QEMU 7.2 -> qemu-oc (same machine type);
- qemu-oc -> qemu-oc on the -oc type while a refresh is in flight (the
  latest statistics travel), and on an upstream type (they come back from
  the guest's buffer);
- which machine types carry qemu-oc's subsection (x-oc-stats-migration);
- runstates on the destination restart with the destination process.
"""

import os
import unittest

from ocvm import VM, VMTestCase, wait_until

STOCK = '/usr/bin/qemu-system-x86_64'
MACHINE = 'pc-i440fx-7.2'
OC_MACHINE = 'pc-i440fx-7.2-oc'
BALLOON = '/machine/peripheral/balloon0'
BACKEND = BALLOON + '/virtio-backend'
PROP = 'x-oc-stats-migration'
SUBSECTION = b'virtio-balloon-device/qemu-oc-stats'
VCPU_STATES = ['running', 'runnable', 'blocked', 'offline']
VM_STATES = ['full-run', 'full-contention', 'concurrency-hazard', 'blocked',
             'partial-run', 'partial-contention']


def migrate(src, dst):
    uri = 'unix:%s/migrate.sock' % dst.dir
    dst.qmp('migrate-incoming', uri=uri)
    src.qmp('migrate', uri=uri)
    wait_until(lambda: src.qmp('query-migrate').get('status') in ('completed', 'failed'),
               60, 0.1, 'migration to finish')
    st = src.qmp('query-migrate')
    if st['status'] != 'completed':
        raise AssertionError('migration failed: %r' % st)
    # the destination may fail to load a stream the source completed
    wait_until(lambda: dst.proc.poll() is not None or
               dst.qmp('query-status')['status'] == 'running',
               30, 0.1, 'destination to run')
    if dst.proc.poll() is not None:
        dst.stderr.flush()
        dst.stderr.seek(0)
        raise AssertionError('destination exited with %d after the source completed: %s'
                             % (dst.proc.returncode, dst.stderr.read().strip()))


def after_new_sample(vm, last):
    """vm's query-vcpu-runstates once its sampler has published a sample
    after @last (an earlier answer of the same process)."""
    return wait_until(lambda: (lambda r: r if r['samples'] > last['samples']
                                else None)(vm.qmp('query-vcpu-runstates')),
                      30, 0.05, message='no new runstates sample')


def save_stream(vm, path):
    """Migrate vm into a file; returns the stream's bytes."""
    vm.qmp('migrate', uri='exec:cat > %s' % path)
    wait_until(lambda: vm.qmp('query-migrate').get('status') in ('completed', 'failed'),
               60, 0.1, 'migration to a file')
    if vm.qmp('query-migrate')['status'] != 'completed':
        raise AssertionError('migration to a file failed')
    with open(path, 'rb') as f:
        return f.read()


def reported(vm):
    """Make the guest report statistics; returns query-balloon's answer."""
    r = vm.qmp('query-balloon', refresh='sync')
    if not r.get('fresh'):
        raise AssertionError('guest did not report statistics: %r' % r)
    return r


class BalloonMigrationTest(VMTestCase):

    def need_stock(self):
        if not os.access(STOCK, os.X_OK):
            self.fail('Debian qemu-system-x86 is missing (scripts/deps.sh installs it)')

    def check_upstream_polling(self, dst):
        """guest-stats-polling-interval works on the destination."""
        dst.qom_set(BALLOON, 'guest-stats-polling-interval', 1)
        first = dst.qom_get(BALLOON, 'guest-stats')['last-update']
        later = wait_until(
            lambda: dst.qom_get(BALLOON, 'guest-stats')['last-update'] > first and
            dst.qom_get(BALLOON, 'guest-stats'), 10, 0.2, 'upstream poll on the destination')
        dst.qom_set(BALLOON, 'guest-stats-polling-interval', 0)
        return later

    def qemu_oc_to_stock(self, machine):
        self.need_stock()
        with VM(machine=machine) as src:
            self.assertIn('qemu-oc', src.qmp('query-version')['package'])
            first = reported(src)
            with VM(binary=STOCK, machine=machine, incoming='defer') as dst:
                self.assertNotIn('qemu-oc', dst.qmp('query-version')['package'])
                migrate(src, dst)
                self.assertEqual(dst.qmp('query-status')['status'], 'running')
                self.assertEqual(dst.shell('echo alive'), 'alive')
                stats = self.check_upstream_polling(dst)
                self.assertEqual(stats['stats']['stat-total-memory'],
                                 first['stats']['total-memory'])
                self.assertIsNone(dst.proc.poll())

    def test_qemu_oc_to_stock_i440fx(self):
        self.qemu_oc_to_stock('pc-i440fx-7.2')

    def test_qemu_oc_to_stock_q35(self):
        self.qemu_oc_to_stock('pc-q35-7.2')

    def test_stock_qemu_to_qemu_oc(self):
        self.need_stock()
        with VM(binary=STOCK, machine=MACHINE) as src:
            self.assertNotIn('qemu-oc', src.qmp('query-version')['package'])
            total = src.meminfo()['MemTotal']
            with VM(machine=MACHINE, incoming='defer') as dst:
                migrate(src, dst)
                self.assertIn('qemu-oc', dst.qmp('query-version')['package'])
                # the guest shell followed the VM
                self.assertEqual(dst.shell('echo alive'), 'alive')
                r = dst.qmp('query-balloon', refresh='sync')
                self.assertTrue(r['fresh'], r)
                self.assertEqual(r['stats']['total-memory'], total)
                self.assertTrue(dst.qmp('query-balloon', refresh='sync')['fresh'])

    def test_qemu_oc_to_qemu_oc_mid_request(self):
        """The -oc type: the latest statistics travel in the subsection."""
        with VM(machine=OC_MACHINE) as src:
            first = reported(src)
            with VM(machine=OC_MACHINE, incoming='defer') as dst:
                # a refresh in flight when the VM moves
                src.qmp('query-balloon', refresh='async')
                migrate(src, dst)
                r = dst.qmp('query-balloon')
                self.assertIn('stats', r, 'latest statistics lost in migration')
                self.assertGreaterEqual(r['last-update'], first['last-update'])
                self.assertEqual(r['stats']['total-memory'],
                                 first['stats']['total-memory'])
                for _ in range(3):
                    fresh = dst.qmp('query-balloon', refresh='sync', timeout=5000)
                    self.assertTrue(fresh['fresh'], fresh)
                self.assertGreater(fresh['last-update'], first['last-update'])
                self.assertEqual(dst.shell('echo alive'), 'alive')

    def test_qemu_oc_to_qemu_oc_upstream_type(self):
        """An upstream type: no subsection; the destination re-reads the
        buffer the guest had posted, as stock QEMU does."""
        with VM(machine=MACHINE) as src:
            first = reported(src)
            with VM(machine=MACHINE, incoming='defer') as dst:
                migrate(src, dst)
                r = wait_until(lambda: 'stats' in dst.qmp('query-balloon') and
                               dst.qmp('query-balloon'), 10, 0.1,
                               'statistics on the destination')
                self.assertEqual(r['stats']['total-memory'],
                                 first['stats']['total-memory'])
                self.assertTrue(reported(dst)['fresh'])
                self.assertEqual(dst.shell('echo alive'), 'alive')

    def test_stream_per_machine_type(self):
        """The subsection is in the stream of the -oc types only, also
        after the guest reported statistics."""
        for machine, expect in [('pc-i440fx-7.2', False), ('pc-q35-7.2', False),
                                ('pc-i440fx-7.1', False), ('pc-q35-6.2', False),
                                (OC_MACHINE, True), ('pc-q35-7.2-oc', True)]:
            with self.subTest(machine=machine):
                with VM(machine=machine, memory=256) as vm:
                    reported(vm)
                    data = save_stream(vm, os.path.join(vm.dir, 'stream'))
                    self.assertEqual(SUBSECTION in data, expect)

    def test_property_per_machine_type(self):
        """x-oc-stats-migration: on for the -oc types, off for every
        upstream pc-i440fx and pc-q35 type (and the pc and q35 aliases)."""
        with VM(accel='qtest', guest='none', balloon=False) as vm:
            machines = vm.qmp('query-machines')
        names = [m['name'] for m in machines if m['name'].startswith('pc-')]
        self.assertGreater(len(names), 40)
        for name in names:
            with self.subTest(machine=name):
                with VM(accel='qtest', guest='none', machine=name) as vm:
                    value = vm.qom_get(BACKEND, PROP)
                self.assertEqual(value, name.endswith('-oc'))

    def test_runstates_restart_on_destination(self):
        """docs/runstates.md: the destination's counters start with the
        destination process, not with the VM's arrival, and carry nothing
        of the source's; its vCPUs are offline until the VM arrives.
        Asserted by orders between queries, each after a new sample of the
        process it reads (samples, not sleeps)."""
        with VM(machine=OC_MACHINE) as src:
            # (src's process started before dst's: it booted its guest)
            with VM(machine=OC_MACHINE, incoming='defer') as dst:
                waiting = after_new_sample(dst, dst.qmp('query-vcpu-runstates'))
                self.assertEqual(waiting['vm']['state'], 'blocked')
                for v in waiting['vcpus']:
                    self.assertEqual(v['state'], 'offline')
                    self.assertGreater(v['offline-ns'], 0)
                migrate(src, dst)
                r = after_new_sample(dst, dst.qmp('query-vcpu-runstates'))
                src_later = after_new_sample(src, src.qmp('query-vcpu-runstates'))
                # from the destination's start: nothing of its wait lost,
                # nothing of the source's longer life added
                self.assertGreater(r['elapsed-ns'], waiting['elapsed-ns'])
                self.assertLess(r['elapsed-ns'], src_later['elapsed-ns'])
                for v, w in zip(r['vcpus'], waiting['vcpus']):
                    total = sum(v[s + '-ns'] for s in VCPU_STATES)
                    self.assertAlmostEqual(total / r['elapsed-ns'], 1, delta=0.02)
                    self.assertGreaterEqual(v['offline-ns'], w['offline-ns'])
                    # and it ran since: online from the VM's arrival
                    self.assertGreater(sum(v[s + '-ns'] - w[s + '-ns'] for s in
                                           ('running', 'runnable', 'blocked')), 0)
                vm_total = sum(r['vm'][s + '-ns'] for s in VM_STATES)
                self.assertAlmostEqual(vm_total / r['elapsed-ns'], 1, delta=0.01)


if __name__ == '__main__':
    unittest.main()
