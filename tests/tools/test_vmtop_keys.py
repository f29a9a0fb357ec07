#!/usr/bin/python3
"""vmtop's live view driven as an operator would, in tmux (keys sent,
the pane read back), over fake QMP peers and a real TCG guest: help,
filter, the columns chosen (f) and ordered (o), sorts, the choice saved
(W) and found again at the next start, a terminal narrower than a line.
And the batch side of the same choices: --csv, --columns, --filter, a
config file that is wrong (said, left as it is), VMs grouped by host."""

import csv
import io
import os
import shlex
import subprocess
import sys
import tempfile
import unittest

from ocvm import VM, VMTestCase, wait_until

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_vmtop import Peers, VMTOP  # noqa: E402

STATES = ('full-run', 'full-cont', 'hazard', 'blocked', 'part-run',
          'part-cont')
TITLES = ('NAME', 'HOST', 'STATE', 'FULL%', 'CONT%', 'HAZ%', 'BLK%', 'PRUN%',
          'PCON%', 'CTN%', 'VCPU', 'RUN%', 'RDY%', 'CSTP%', 'LHP', 'MEM!',
          'ACTUAL', 'TOTAL', 'AVAIL', 'FREE', 'MAJF/s', 'SWAPIN/s', 'AGE',
          'UNRESP', 'BAL', 'PV', 'SRC')


class Pane:
    """vmtop in a tmux session of its own server, read back as text."""

    count = 0

    def __init__(self, tmp, args, env, width=160, height=40):
        # a server of its own (the last one may still be going away)
        Pane.count += 1
        self.sock = os.path.join(tmp, 'tmux-%d.sock' % Pane.count)
        self.status = os.path.join(tmp, 'vmtop.status')
        if os.path.exists(self.status):
            os.unlink(self.status)
        cmd = 'env %s %s %s; echo $? > %s' % (
            ' '.join('%s=%s' % (k, shlex.quote(v)) for k, v in env.items()),
            shlex.quote(VMTOP), ' '.join(shlex.quote(a) for a in args),
            shlex.quote(self.status))
        self.tmux('new-session', '-d', '-x', str(width), '-y', str(height),
                  cmd)

    def tmux(self, *args):
        return subprocess.run(['tmux', '-S', self.sock] + list(args),
                              check=True, capture_output=True,
                              text=True).stdout

    def keys(self, *keys):
        self.tmux('send-keys', *keys)

    def type(self, text):
        self.tmux('send-keys', '-l', text)

    def lines(self):
        return self.tmux('capture-pane', '-p').splitlines()

    def wait(self, predicate, what, timeout=60):
        """The pane's lines once predicate(lines) holds."""
        def seen():
            lines = self.lines()
            return lines if predicate(lines) else None
        try:
            return wait_until(seen, timeout, 0.1, what)
        except Exception:
            print('pane:\n' + '\n'.join(self.lines()))
            raise

    def exit_status(self):
        wait_until(lambda: os.path.exists(self.status) and
                   open(self.status).read().strip(), 30, 0.1, 'vmtop to exit')
        return int(open(self.status).read())

    def close(self):
        subprocess.run(['tmux', '-S', self.sock, 'kill-server'],
                       capture_output=True)


def vm_lines(lines):
    """{name: cells} of the VM lines of a pane or a text frame."""
    out = {}
    for line in lines[2:]:
        cells = line.split()
        if cells and not line.startswith((' ', '==', 'last:', 'h help',
                                          'Left/Right')):
            out[cells[0]] = cells
    return out


def state_of(lines, name):
    cells = vm_lines(lines).get(name, [])
    return cells[1] if len(cells) > 1 else None


def titles(lines):
    return lines[1].split()


class VmtopKeysTest(VMTestCase):

    def setUp(self):
        super().setUp()
        if not os.access(VMTOP, os.X_OK):
            self.fail('%s is not built (make build)' % VMTOP)
        self.tmp = tempfile.TemporaryDirectory(prefix='vmtop-keys-')
        self.dir = os.path.join(self.tmp.name, 'qmp')
        os.mkdir(self.dir)
        self.cfg_home = os.path.join(self.tmp.name, 'config')
        self.cfg = os.path.join(self.cfg_home, 'qemu-oc', 'vmtop.conf')
        self.peers = Peers(self.dir)
        self.more_peers = []
        self.panes = []

    def tearDown(self):
        for p in self.panes:
            p.close()
        self.peers.stop()
        for peers in self.more_peers:
            peers.stop()
        self.tmp.cleanup()
        super().tearDown()

    def pane(self, *args, **kw):
        p = Pane(self.tmp.name, ['--qmp-dir', self.dir, '--interval', '0.5',
                                 '--timeout', '400'] + list(args),
                 {'XDG_CONFIG_HOME': self.cfg_home}, **kw)
        self.panes.append(p)
        return p

    def batch(self, *args, dirs=None):
        cmd = [VMTOP]
        for d in dirs or [self.dir]:
            cmd += ['--qmp-dir', d]
        return subprocess.run(cmd + ['--interval', '0.5', '--timeout', '400']
                              + list(args), capture_output=True, text=True,
                              timeout=60,
                              env=dict(os.environ,
                                       XDG_CONFIG_HOME=self.cfg_home))

    def start_fakes(self):
        for name in ('web-1', 'web-2', 'db-1'):
            self.peers.start(name, 'good', '--lifetime', '600')
        self.peers.start('stuck-1', 'slow', '--lifetime', '600')

    def test_live_view_keys(self):
        """Every key of the live view changes what the pane shows, over
        fakes and a real guest; W's choice is there at the next start"""
        self.start_fakes()
        qmp = os.path.join(self.dir, 'guest-1')
        with VM(smp=2, memory=256,
                args=['-qmp', 'unix:%s,server=on,wait=off' % qmp]):
            p = self.pane()
            # the real guest's runstate and the stuck fake's UNRESP
            p.wait(lambda ls: state_of(ls, 'guest-1') in STATES and
                   state_of(ls, 'stuck-1') == 'UNRESP',
                   'the guest running and the stuck fake UNRESP')
            self.assertEqual(titles(p.lines())[:3], ['NAME', 'STATE', 'FULL%'])

            p.keys('h')
            p.wait(lambda ls: ls[0].startswith('vmtop keys'), 'the help')
            p.keys('x')
            p.wait(lambda ls: ls[1].startswith('NAME'), 'back from help')

            # filter: a part of the name, then a glob, then none
            p.keys('/')
            p.type('web')
            p.keys('Enter')
            ls = p.wait(lambda ls: 'filter: web (2 of 5)' in ls[0],
                        'the filter in the header')
            self.assertEqual(sorted(vm_lines(ls)), ['web-1', 'web-2'])
            p.keys('/')
            p.type('G*')
            p.keys('Enter')
            ls = p.wait(lambda ls: 'filter: G* (1 of 5)' in ls[0], 'a glob')
            self.assertEqual(sorted(vm_lines(ls)), ['guest-1'])

            # Enter: the real guest's vCPUs
            p.keys('Enter')
            ls = p.wait(lambda ls: any(x.strip().startswith('vCPU')
                                       for x in ls), 'the vCPU lines')
            vcpus = [x.split() for x in ls
                     if x.startswith('    ') and x.split()[0] in ('0', '1')]
            self.assertEqual(len(vcpus), 2, ls)
            p.keys('Enter', '/', 'Enter')
            p.wait(lambda ls: len(vm_lines(ls)) == 5 and
                   'filter' not in ls[0], 'no filter')

            # f: hide STATE (b), show CTN% (i); o: CTN% to the front
            p.keys('f')
            p.wait(lambda ls: ls[0].startswith('Columns'), 'the f screen')
            p.keys('b', 'i')
            ls = p.wait(lambda ls: any(x.startswith('* i CTN%') for x in ls),
                        'CTN% shown')
            self.assertIn('  b STATE', '\n'.join(ls))
            p.keys('Escape')
            ls = p.wait(lambda ls: ls[1].startswith('NAME'), 'back from f')
            self.assertNotIn('STATE', titles(ls))
            self.assertIn('CTN%', titles(ls))
            p.keys('o')
            p.wait(lambda ls: ls[0].startswith('Order'), 'the o screen')
            p.keys(*['I'] * 12)
            p.wait(lambda ls: ls[2].split()[:3] == ['1', 'i', 'CTN%'],
                   'CTN% first')
            p.keys('Enter')
            ls = p.wait(lambda ls: ls[1].startswith('NAME'), 'back from o')
            self.assertEqual(titles(ls)[:3], ['NAME', 'CTN%', 'FULL%'])

            # sorts: the next column, a column's key, reversed
            p.keys('>')
            p.wait(lambda ls: 'sort: CTN%' in ls[0], 'sort by CTN%')
            p.keys('Y')
            p.wait(lambda ls: 'sort: RDY%' in ls[0] and
                   '(reversed)' not in ls[0], 'sort by RDY%')
            p.keys('r')
            p.wait(lambda ls: 'sort: RDY% (reversed)' in ls[0], 'reversed')
            ls = p.wait(lambda ls: vm_lines(ls).get('stuck-1'), 'stuck-1')
            # a VM without the value comes last, however the sort goes
            self.assertEqual(list(vm_lines(ls))[-1], 'stuck-1')

            p.keys('W')
            p.wait(lambda ls: any('saved to ' + self.cfg in x for x in ls),
                   'saved')
            saved = open(self.cfg).read()
            self.assertIn('columns=ctn;full;', saved)
            self.assertNotIn('state', saved.split('columns=')[1].split('\n')[0])
            self.assertIn('sort=rdy', saved)
            self.assertIn('reverse=true', saved)

            # a terminal narrower than a line: whole columns, NAME stays
            p.tmux('resize-window', '-x', '60', '-y', '40')
            # (the whole screen redrawn: a capture may catch it halfway)
            ls = p.wait(lambda ls: ls[-1].startswith('Left/Right: columns 1-')
                        and len(ls[1]) <= 60 and set(titles(ls)) <= set(TITLES),
                        'the columns indicator and whole titles')
            first = titles(ls)
            self.assertEqual(first[0], 'NAME')
            self.assertTrue(set(first) <= set(TITLES), first)
            self.assertLessEqual(len(ls[1]), 60)
            self.assertIn('guest-1', vm_lines(ls))
            p.keys('Right')
            ls = p.wait(lambda ls: titles(ls)[1] == first[2],
                        'one column scrolled')
            self.assertTrue(set(titles(ls)) <= set(TITLES), titles(ls))
            p.keys('q')
            self.assertEqual(p.exit_status(), 0)

            # the next start finds the saved choice
            p = self.pane()
            ls = p.wait(lambda ls: ls[1].startswith('NAME') and
                        'sort: RDY% (reversed)' in ls[0], 'saved layout')
            self.assertEqual(titles(ls)[:3], ['NAME', 'CTN%', 'FULL%'])
            p.keys('q')
            self.assertEqual(p.exit_status(), 0)

    def test_batch_csv_config_and_hosts(self):
        """--csv/--columns/--filter in batch; a wrong config file said
        and left as it is; two directories of VMs shown as two groups"""
        self.start_fakes()
        r = self.batch('--once', '--csv', '--columns', 'state,rdy,avail,host',
                       '--filter', 'WEB', '--sort', 'avail')
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        rows = list(csv.reader(io.StringIO(r.stdout)))
        self.assertEqual(rows[0], ['time', 'name', 'state', 'rdy', 'avail',
                                   'host'])
        self.assertEqual(sorted(x[1] for x in rows[1:]), ['web-1', 'web-2'])
        for row in rows[1:]:
            self.assertEqual(row[2], 'full-run')
            float(row[3])
            self.assertGreater(int(row[4]), 0)
            self.assertEqual(row[5], self.dir)

        for bad in (['--columns', 'state,nope'], ['--sort', 'nope'],
                    ['--columns', 'rdy,rdy'], ['--csv']):
            r = self.batch(*bad)
            self.assertEqual(r.returncode, 2, bad)
            self.assertIn('vmtop:', r.stderr)

        os.makedirs(os.path.dirname(self.cfg))
        wrong = '[vmtop]\ncolumns=state;nope\n'
        with open(self.cfg, 'w') as f:
            f.write(wrong)
        r = self.batch('--once')
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.assertIn("columns: unknown column 'nope'", r.stderr)
        self.assertIn('left as it is', r.stderr)
        self.assertEqual(r.stdout.splitlines()[1].split()[:3],
                         ['NAME', 'STATE', 'FULL%'])
        self.assertEqual(open(self.cfg).read(), wrong)

        other = os.path.join(self.tmp.name, 'qmp2')
        os.mkdir(other)
        second = Peers(other)
        self.more_peers.append(second)
        second.start('app-1', 'good', '--lifetime', '600')
        r = self.batch('--once', '--sort', 'name', dirs=[self.dir, other])
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        out = r.stdout.splitlines()
        groups = [x for x in out if x.startswith('== ')]
        self.assertEqual(groups, ['== %s: 4 VMs, 1 unresponsive' % self.dir,
                                  '== %s: 1 VM, 0 unresponsive' % other]
                         if self.dir < other else
                         ['== %s: 1 VM, 0 unresponsive' % other,
                          '== %s: 4 VMs, 1 unresponsive' % self.dir])
        # each group's VMs follow its line
        at = out.index('== %s: 1 VM, 0 unresponsive' % other)
        self.assertTrue(out[at + 1].startswith('app-1 '))


if __name__ == '__main__':
    unittest.main()
