#!/usr/bin/python3
"""Migration of the balloon statistics state: stock QEMU 7.2 to qemu-oc
(same machine type), and qemu-oc to qemu-oc while a refresh is in flight.
The guest keeps answering on the destination."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ocvm import VM, wait_until  # noqa: E402

STOCK = '/usr/bin/qemu-system-x86_64'
MACHINE = 'pc-i440fx-7.2'


def migrate(src, dst):
    uri = 'unix:%s/migrate.sock' % dst.dir
    dst.qmp('migrate-incoming', uri=uri)
    src.qmp('migrate', uri=uri)
    wait_until(lambda: src.qmp('query-migrate').get('status') in ('completed', 'failed'),
               60, 0.1, 'migration to finish')
    st = src.qmp('query-migrate')
    if st['status'] != 'completed':
        raise AssertionError('migration failed: %r' % st)
    wait_until(lambda: dst.qmp('query-status')['status'] == 'running',
               30, 0.1, 'destination to run')


class BalloonMigrationTest(unittest.TestCase):

    def test_stock_qemu_to_qemu_oc(self):
        if not os.access(STOCK, os.X_OK):
            self.fail('Debian qemu-system-x86 is missing (scripts/deps.sh installs it)')
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
        with VM(machine=MACHINE) as src:
            first = src.qmp('query-balloon', refresh='sync')
            self.assertTrue(first['fresh'])
            with VM(machine=MACHINE, incoming='defer') as dst:
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


if __name__ == '__main__':
    unittest.main()
