#!/usr/bin/python3
"""The real-memory-cgroup fixture reproduces the squeeze, with no daemon.

Three Debian TCG guests of 1024 MiB each run with their QEMUs in one memory
cgroup (occgroup.MemCgroup; QEMU started through its wrapper) limited to
1600 MiB: what the guests really need at the end fits (three booted guests
plus 700 MiB), what their QEMUs hold does not.  Two guests hold 400 MiB
and free it; the third allocates 100 MiB every 3.5 s up to 700 MiB.

- without free page reporting the freed memory stays in the two QEMUs and
  the kernel OOM-kills a QEMU (the cgroup's oom_kill count rises, one QEMU
  exits with SIGKILL): the baseline the balloon daemon must prevent;
- with free-page-reporting=on the guests give what they freed back: the
  two QEMUs' RSS falls by most of the 400 MiB, and then nothing is killed.

The numbers (boot, RSS before/after, cgroup peak, deaths) go to stderr.
"""

import signal
import sys
import time
import unittest

import occgroup
import squeeze
from ocvm import VM, VMTestCase, wait_until

MIB = 1 << 20
LIMIT_MIB = 1600        # the cgroup's hard limit
GUEST_MIB = 1024        # -m of each guest
IDLE_MIB = 400          # what guests 0 and 1 hold and free
STEP_MIB, EVERY_S, TOTAL_MIB = 100, 3.5, 700    # guest 2's gradual growth
RETURNED_MIB = 300      # free page reporting gives back at least this much
FPR = ['-device', 'virtio-balloon-pci,id=balloon0,free-page-reporting=on']


def log(fmt, *args):
    sys.stderr.write('squeeze: ' + (fmt % args) + '\n')
    sys.stderr.flush()


def rss_mib(vm):
    rss = squeeze.qemu_rss(vm)
    return -1 if rss is None else rss // MIB


class SqueezeCgroupTest(VMTestCase):

    def setUp(self):
        super().setUp()
        reason = occgroup.reason_unavailable(LIMIT_MIB)
        if reason:
            self.skipTest('needs a memory cgroup: ' + reason)
        self.cg = occgroup.MemCgroup('squeeze', LIMIT_MIB)
        self.addCleanup(self.cg.remove)     # runs last: after the VMs' exit

    def boot(self, **kwargs):
        """Three guests in the cgroup; shut down at the end of the test."""
        vms = []
        for _ in range(3):
            vm = VM(smp=1, memory=GUEST_MIB, boot_timeout=120,
                    wrapper=[self.cg.wrapper()], **kwargs)
            vm.__enter__()
            self.addCleanup(vm.__exit__, None, None, None)
            vms.append(vm)
        log('booted in %s s; QEMU RSS %s MiB; cgroup %d MiB of %d',
            ' / '.join('%.1f' % vm.boot_seconds for vm in vms),
            ' / '.join(str(rss_mib(vm)) for vm in vms),
            self.cg.usage() // MIB, self.cg.limit() // MIB)
        self.assertEqual(sorted(self.cg.pids()), sorted(vm.proc.pid for vm in vms))
        return vms

    def watch(self, vms):
        watch = squeeze.Watch(self.cg, vms)
        watch.start()
        # runs before the VMs' exit; prints the numbers even on failure
        self.addCleanup(lambda: log('%s', watch.stop().summary()))
        return watch

    def free_in_two(self, vms):
        results = []
        for vm in vms[:2]:
            r = squeeze.idle_then_free(vm, IDLE_MIB)
            log('%s', r.summary())
            self.assertIsNone(r.qemu_exit, r.error)
            results.append(r)
        return results

    def test_1_without_reporting_a_qemu_is_oom_killed(self):
        vms = self.boot()
        watch = self.watch(vms)
        kills = self.cg.oom_kills()
        self.free_in_two(vms)
        log('after the frees: QEMU RSS %s MiB, cgroup %d MiB',
            ' / '.join(str(rss_mib(vm)) for vm in vms), self.cg.usage() // MIB)
        t0 = time.monotonic() - watch.t0
        r = squeeze.gradual(vms[2], STEP_MIB, EVERY_S, TOTAL_MIB)
        log('%s; steps (s, MiB): %s', r.summary(),
            ' '.join('%.1f:%d' % s for s in r.steps))

        def killed():
            dead = [i for i, vm in enumerate(vms)
                    if squeeze.qemu_exit(vm) == -signal.SIGKILL]
            return dead if dead and self.cg.oom_kills() > kills else None
        dead = wait_until(killed, 60, 0.1,
                          message='no QEMU OOM-killed within 60 s of the growth')
        watch.stop()
        for i in dead:
            t, _ = watch.deaths[i]
            log('VM %d killed %.1f s after the growth began', i, t - t0)
        self.assertGreater(watch.oom_kills_after, kills)
        self.assertTrue(dead)

    def test_2_with_reporting_freed_memory_goes_back(self):
        vms = self.boot(balloon=False, args=FPR)
        self.assertTrue(vms[0].qom_get('/machine/peripheral/balloon0',
                                       'free-page-reporting'))
        watch = self.watch(vms)
        kills = self.cg.oom_kills()
        for r in self.free_in_two(vms):
            target = r.rss_held - RETURNED_MIB * MIB
            wait_until(lambda: (squeeze.qemu_rss(r.vm) or 0) <= target, 60, 0.1,
                       message='QEMU RSS did not fall by %d MiB within 60 s of the '
                       'guest freeing %d MiB (held %d MiB, now %d MiB)'
                       % (RETURNED_MIB, IDLE_MIB, r.rss_held // MIB, rss_mib(r.vm)))
            log('reported back within %.1f s of the free: QEMU RSS %d -> %d MiB',
                time.monotonic() - r.end, r.rss_held // MIB, rss_mib(r.vm))
        r = squeeze.gradual(vms[2], STEP_MIB, EVERY_S, TOTAL_MIB)
        log('%s', r.summary())
        watch.stop()
        # what the guests hold now fits: with the freed memory back, nothing dies
        self.assertIsNone(r.qemu_exit, r.error)
        self.assertEqual(watch.deaths, {})
        self.assertEqual(self.cg.oom_kills(), kills)


if __name__ == '__main__':
    unittest.main()
