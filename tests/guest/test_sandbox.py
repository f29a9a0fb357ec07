#!/usr/bin/python3
"""qemu-oc under libvirt's seccomp sandbox.

libvirt starts QEMU with -sandbox on,obsolete=deny,elevateprivileges=deny,
spawn=deny,resourcecontrol=deny (its default, seccomp_sandbox = 1) when
the binary supports it.  Under it everything of ours keeps working: the
exact runstates source (perf_event_open on the vCPU threads, its ring
mmap, the sampler thread), balloon statistics on demand (a deferred
reply) and the guest's memory stats.  And the sandbox is really on: the
kernel says seccomp filter mode, and a syscall it denies (fork, for a
migration to exec:) kills QEMU with SIGSYS.
"""

import signal
import unittest

from ocvm import VM, VMTestCase, wait_until

SANDBOX = ['-sandbox', 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,'
           'resourcecontrol=deny']


def seccomp_mode(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('Seccomp:'):
                return int(line.split()[1])
    return None


class SandboxTest(VMTestCase):

    def test_ours_under_the_sandbox(self):
        with VM(smp=2, memory=512, args=SANDBOX) as vm:
            self.assertEqual(seccomp_mode(vm.proc.pid), 2)     # filter
            vm.shell('true')
            r = vm.qmp('query-vcpu-runstates')
            self.assertEqual(r['source'], 'exact', r)
            b = vm.qmp('query-balloon', refresh='sync')
            self.assertTrue(b['fresh'], b)
            self.assertGreater(b['stats']['total-memory'], 100 << 20)
            self.assertIn('total-memory', vm.hmp('info balloon'))
            # still filtered after all of it, still alive
            self.assertEqual(seccomp_mode(vm.proc.pid), 2)
            self.assertIsNone(vm.proc.poll())

    def test_a_denied_syscall_kills_qemu(self):
        with VM(smp=1, memory=128, guest='none', balloon=False,
                args=['-S'] + SANDBOX) as vm:
            proc = vm.proc
            vm.qmp_conn.send('migrate', uri='exec:cat > /dev/null')
            code = wait_until(lambda: proc.poll(), 30, 0.1, 'QEMU to die')
            self.assertEqual(code, -signal.SIGSYS)


if __name__ == '__main__':
    unittest.main()
