#!/usr/bin/python3
"""Benchmark: live migration cost (prints numbers; not a test).

query-migrate's downtime and total-time of the same guest (Debian, TCG,
2 vCPUs, 512 MiB) migrated over a unix socket on this host, idle and busy
(`oc-load spin 2`: both vCPUs in a busy loop), for:

  qemu-oc -> qemu-oc on pc-i440fx-7.2     (stock's stream)
  qemu-oc -> qemu-oc on pc-i440fx-7.2-oc  (plus qemu-oc's balloon subsection)
  stock 7.2 -> stock 7.2 on pc-i440fx-7.2 (Debian's /usr/bin/qemu-system-x86_64)

The VM moves back and forth between two processes (one boot per
configuration); before each migration the guest reports balloon
statistics (qemu-oc: query-balloon refresh=sync), so the subsection is
really sent where it can be.  Migration parameters are QEMU's defaults.
Prints median, min and max in ms for each case.
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'tests', 'guest'))
from ocvm import BINARY, VM, wait_until  # noqa: E402

STOCK = '/usr/bin/qemu-system-x86_64'
CONFIGS = [
    ('qemu-oc -> qemu-oc', BINARY, 'pc-i440fx-7.2'),
    ('qemu-oc -> qemu-oc', BINARY, 'pc-i440fx-7.2-oc'),
    ('stock   -> stock', STOCK, 'pc-i440fx-7.2'),
]


def migrate_once(src, binary, machine):
    """Migrate src into a new process; returns (dst, query-migrate)."""
    dst = VM(binary=binary, machine=machine, incoming='defer')
    dst.__enter__()
    try:
        uri = 'unix:%s/migrate.sock' % dst.dir
        dst.qmp('migrate-incoming', uri=uri)
        src.qmp('migrate', uri=uri)
        wait_until(lambda: src.qmp('query-migrate').get('status') in
                   ('completed', 'failed'), 120, 0.02, 'migration')
        info = src.qmp('query-migrate')
        if info['status'] != 'completed':
            raise SystemExit('migration failed: %r' % info)
        wait_until(lambda: dst.qmp('query-status')['status'] == 'running',
                   30, 0.02, 'destination to run')
    except BaseException:
        dst.__exit__(*sys.exc_info())
        raise
    return dst, info


def run_config(binary, machine, reps):
    results = {}
    vm = VM(binary=binary, machine=machine)
    vm.__enter__()
    try:
        params = vm.qmp('query-migrate-parameters')
        for load in ('idle', 'busy'):
            if load == 'busy':
                vm.spin(2)
                time.sleep(1)
            rows = []
            for _ in range(reps):
                if binary != STOCK:
                    vm.qmp('query-balloon', refresh='sync')
                dst, info = migrate_once(vm, binary, machine)
                vm.__exit__(None, None, None)
                vm = dst
                rows.append(info)
                time.sleep(0.5)
            results[load] = rows
        vm.shell('true')        # the guest shell followed the VM
    finally:
        vm.__exit__(*sys.exc_info())
    return results, params


def fmt(values):
    return '%7.1f %7.1f %7.1f' % (statistics.median(values), min(values), max(values))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('-n', type=int, default=7, help='migrations per case')
    args = ap.parse_args()
    if not os.access(STOCK, os.X_OK):
        raise SystemExit('Debian qemu-system-x86 is missing (scripts/deps.sh installs it)')
    t0 = time.monotonic()
    out = []
    params = None
    for name, binary, machine in CONFIGS:
        results, params = run_config(binary, machine, args.n)
        out.append((name, machine, results))
    print('live migration over a unix socket, TCG, 2 vCPUs, 512 MiB, Debian guest; '
          'n=%d per case; downtime-limit %d ms, max-bandwidth %d MiB/s (defaults)'
          % (args.n, params['downtime-limit'], params['max-bandwidth'] >> 20))
    print('%-20s %-18s %-5s %-25s %-25s %s' % ('peers', 'machine', 'guest',
                                             'downtime ms med/min/max',
                                             'total-time ms med/min/max', 'MiB sent (med)'))
    for name, machine, results in out:
        for load, rows in results.items():
            print('%-20s %-18s %-5s %-25s %-25s %6.1f' % (
                name, machine, load,
                fmt([r['downtime'] for r in rows]),
                fmt([r['total-time'] for r in rows]),
                statistics.median(r['ram']['transferred'] for r in rows) / 2**20))
    print('(%.0f s)' % (time.monotonic() - t0))
    return 0


if __name__ == '__main__':
    sys.exit(main())
