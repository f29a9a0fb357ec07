#!/usr/bin/python3
"""Benchmark: vmtop over many VMs, with and without stuck ones (prints
numbers; not a test).

50 fake QMP peers (tests/tools/fake_qmp.py, behaviour good) in one
directory, vmtop in batch mode (--interval 1, 10 frames, JSON).  Run
twice: alone, and with a silent peer (greets, then never answers) and a
slow one (answers after 3 s) beside them.  Printed per run: the gaps
between frames (a frame must never wait for a stuck VM), the responsive
VMs per frame, the age of the good VMs' statistics, and vmtop's CPU.
Target: the good VMs' figures do not move when stuck VMs are added.
"""

import json
import os
import resource
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VMTOP = os.path.join(TOP, 'build', 'tools', 'vmtop')
FAKE = os.path.join(TOP, 'tests', 'tools', 'fake_qmp.py')
N = int(os.environ.get('BENCH_VMS', '50'))
FRAMES = 10


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def start_peers(d, stuck):
    procs = []
    peers = [('vm%02d' % i, 'good') for i in range(N)]
    if stuck:
        peers += [('stuck-silent', 'silent'), ('stuck-slow', 'slow')]
    for name, behaviour in peers:
        procs.append(subprocess.Popen(['/usr/bin/python3', FAKE,
                                       os.path.join(d, name), behaviour]))
    end = time.monotonic() + 30
    while len(os.listdir(d)) < len(peers) and time.monotonic() < end:
        time.sleep(0.05)
    return procs


def run(stuck):
    with tempfile.TemporaryDirectory(prefix='bench-vmtop-') as d:
        procs = start_peers(d, stuck)
        try:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.monotonic()
            p = subprocess.Popen([VMTOP, '--qmp-dir', d, '--batch',
                                  '--iterations', str(FRAMES), '--interval',
                                  '1', '--timeout', '500', '--json'],
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True)
            arrivals, frames = [], []
            for line in p.stdout:
                arrivals.append(time.monotonic())
                frames.append(json.loads(line))
            p.wait()
            wall = time.monotonic() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
        finally:
            for q in procs:
                q.kill()
                q.wait()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    gaps = [(b - a) * 1000 for a, b in zip(arrivals, arrivals[1:])]
    good = [[v for v in f['vms'] if v['name'].startswith('vm')] for f in frames]
    responsive = [sum(v['responsive'] for v in g) for g in good[1:]]
    ages = [v['stats-age-ms'] for g in good[1:] for v in g if 'stats-age-ms' in v]
    stuck_state = ''
    if stuck:
        last = {v['name']: v for v in frames[-1]['vms']}
        stuck_state = ', stuck VMs responsive: %s' % [
            last[n]['responsive'] for n in ('stuck-silent', 'stuck-slow')]
    print('%-18s %d frames: gap median %.0f ms, max %.0f ms; good VMs '
          'responsive per frame %d..%d of %d; stats age median %d ms, p99 %d '
          'ms; vmtop CPU %.2f %% of one core%s'
          % ('with 2 stuck VMs:' if stuck else 'without stuck VMs:',
             len(frames), pct(gaps, 50), max(gaps), min(responsive),
             max(responsive), N, pct(ages, 50), pct(ages, 99),
             cpu / wall * 100 if wall else 0, stuck_state))


def main():
    if not os.access(VMTOP, os.X_OK):
        print('%s is not built (make build)' % VMTOP)
        return 1
    run(False)
    run(True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
