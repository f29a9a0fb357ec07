#!/usr/bin/python3
"""libvirt's calls have no deadline of their own: a libvirtd that stops
answering (SIGSTOP) must mark its VMs unresponsive after the tools'
--timeout, never hold up the frames or another VM, and its VMs come
back when it answers again (SIGCONT).  A qemu-oc domain through libvirt
beside a fake QMP peer, under one vmtop."""

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import unittest

from ocvm import wait_until
from oclibvirt import LibvirtCase, domain_xml

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VMTOP = os.path.join(TOP, 'build', 'tools', 'vmtop')
FAKE = os.path.join(TOP, 'tests', 'tools', 'fake_qmp.py')


class Frames:
    """vmtop -b --json in the background: its frames, one at a time."""

    def __init__(self, args):
        self.q = queue.Queue()
        self.proc = subprocess.Popen([VMTOP, '-b', '--json'] + args,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.err = []
        threading.Thread(target=self.read, daemon=True).start()
        threading.Thread(target=self.read_err, daemon=True).start()

    def read(self):
        for line in self.proc.stdout:
            self.q.put({v['name']: v for v in json.loads(line)['vms']})
        self.q.put(None)

    def read_err(self):
        for line in self.proc.stderr:
            self.err.append(line)

    def until(self, predicate, what, timeout=120):
        """The first frame for which predicate holds."""
        def one(left):
            try:
                f = self.q.get(timeout=max(left, 0.01))
            except queue.Empty:
                return None
            if f is None:
                raise AssertionError('vmtop ended: %s' % ''.join(self.err[-20:]))
            return f if predicate(f) else None
        return wait_until(one, timeout, 0, what, blocking=True)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


class LibvirtDeadlineTest(LibvirtCase):

    def test_stopped_libvirtd_marks_its_vms_only(self):
        name = 'deadline-%d' % os.getpid()
        self.domains.append(name)
        dom = self.conn.defineXML(domain_xml(name))
        dom.create()
        wait_until(lambda: dom.memoryStats().get('unused', -1) > 0, 120,
                   0.5, 'memoryStats from %s' % name)

        qmp = tempfile.mkdtemp(prefix='deadline-qmp-', dir=self.tmp)
        log = os.path.join(self.tmp, 'fake.log')
        fake = subprocess.Popen(['/usr/bin/python3', FAKE,
                                 os.path.join(qmp, 'fake-1'), 'good',
                                 '--lifetime', '600', '--log', log])
        self.addCleanup(lambda: (fake.kill(), fake.wait()))
        wait_until(lambda: os.path.exists(os.path.join(qmp, 'fake-1')), 10,
                   0.02, 'the fake peer')

        frames = Frames(['--interval', '0.5', '--timeout', '500',
                         '--connect', 'qemu:///system', '--qmp-dir', qmp])
        self.addCleanup(frames.stop)
        frames.until(lambda f: f.get(name, {}).get('responsive') and
                     'runstates' in f[name] and
                     f.get('fake-1', {}).get('responsive'),
                     'both VMs answering')

        pid = self.libvirtd.proc.pid
        os.kill(pid, signal.SIGSTOP)
        self.addCleanup(lambda: os.kill(pid, signal.SIGCONT))
        f = frames.until(lambda f: not f[name]['responsive'],
                         'the domain unresponsive')
        self.assertIn('no answer within 500 ms (the call still waits)',
                      f[name]['error'])
        self.assertTrue(f['fake-1']['responsive'], f['fake-1'])
        # frames keep coming, and the fake VM keeps being asked
        def asked():
            with open(log) as fl:
                return fl.read().count('command query-vcpu-runstates')
        before = asked()
        for i in range(3):
            f = frames.until(lambda f: True, 'a frame')
            self.assertFalse(f[name]['responsive'], f[name])
            self.assertTrue(f['fake-1']['responsive'], f['fake-1'])
        frames.until(lambda f: asked() > before + 2,
                     'the fake VM asked again while libvirtd is stopped')

        os.kill(pid, signal.SIGCONT)
        f = frames.until(lambda f: f[name]['responsive'],
                         'the domain answering again')
        self.assertNotIn('still waits', f[name].get('error', ''))


if __name__ == '__main__':
    unittest.main()
