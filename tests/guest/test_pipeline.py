#!/usr/bin/python3
"""End-to-end proof of the fork pipeline: our binary names itself qemu-oc,
boots the Debian guest kernel, and the in-guest virtio-balloon driver's
statistics arrive through upstream's QOM guest-stats polling."""

import os
import unittest

from ocvm import GUEST, VM, VMTestCase, wait_until

BALLOON = '/machine/peripheral/balloon0'


class PipelineTest(VMTestCase):

    def test_identity_and_upstream_guest_stats(self):
        with VM(smp=2, memory=512) as vm:
            ver = vm.qmp('query-version')
            self.assertIn('qemu-oc', ver['package'])
            self.assertEqual((ver['qemu']['major'], ver['qemu']['minor'],
                              ver['qemu']['micro']), (7, 2, 22))
            # (how fast: bench/; the boot's own deadline is VM's)
            print('guest booted in %.2f s' % vm.boot_seconds)

            release = vm.read_file('/proc/sys/kernel/osrelease').strip()
            with open(os.path.join(GUEST, 'kernel-version')) as f:
                self.assertEqual(release, f.read().strip())
            self.assertIn('virtio_balloon', vm.read_file('/proc/modules'))

            vm.qom_set(BALLOON, 'guest-stats-polling-interval', 1)

            def reported():
                st = vm.qom_get(BALLOON, 'guest-stats')
                return st if st['last-update'] > 0 else None
            st = wait_until(reported, 15, 0.2, 'first guest-stats')['stats']

            guest = vm.meminfo()
            total = st['stat-total-memory']
            # the driver reports MemTotal in bytes
            self.assertEqual(total, guest['MemTotal'])
            self.assertGreater(total, 400 << 20)
            self.assertLessEqual(total, 512 << 20)
            free = st['stat-free-memory']
            self.assertGreater(free, 0)
            self.assertLess(free, total)
            self.assertGreater(st['stat-available-memory'], 0)
            print('guest-stats: total=%d free=%d available=%d'
                  % (total, free, st['stat-available-memory']))

            # upstream keeps polling: last-update advances
            first = vm.qom_get(BALLOON, 'guest-stats')['last-update']
            wait_until(lambda: vm.qom_get(BALLOON, 'guest-stats')['last-update'] > first,
                       10, 0.2, 'a second poll')


if __name__ == '__main__':
    unittest.main()
