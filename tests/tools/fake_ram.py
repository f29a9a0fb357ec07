#
# qemu-oc host tools tests: the guest RAM of a fake QMP server (fake_qmp.py)
#
# The host's side of a guest's memory, for real: one anonymous mapping of
# the guest's size (so qemu-oc-balloond finds it as guest RAM in
# /proc/PID/smaps), of which the pages the guest "touched" are resident
# and charged to the memory cgroup the fake runs in.  A balloon target
# goes through the untouched memory at once (it costs the host nothing)
# and then gives the touched pages back (MADV_DONTNEED) at a set rate, as
# a guest drops its page cache for its balloon; the balloon's actual
# follows.  A
# "grower" touches more pages at a set rate once a trigger file exists,
# and stops touching while the VM is paused (QMP stop; cont resumes).
#
# Copyright (c) 2026 qemu-oc developers
#
# SPDX-License-Identifier: GPL-2.0-or-later

import mmap
import os
import threading
import time

MIB = 1024 * 1024
STEP = 4 * MIB          # pages given back or touched at a time
PAGES = b'\x01' * STEP


class FakeRam:

    def __init__(self, memory, args):
        """@memory: fake_qmp's MEMORY dict (base, actual, used; bytes)."""
        self.memory = memory
        # private, as QEMU's: MADV_DONTNEED frees its pages
        self.map = mmap.mmap(-1, memory['base'],
                             flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.running = True
        self.touched = 0
        self.target = memory['base']
        self.balloon_rate = args.balloon_mib_s * MIB
        self.touch(args.touch_mib * MIB)
        threading.Thread(target=self.balloon_loop, daemon=True).start()
        if args.grow_mib:
            threading.Thread(target=self.grow_loop, daemon=True,
                             args=(args.grow_mib * MIB, args.grow_mib_s * MIB,
                                   args.grow_when)).start()

    def touch(self, n, use=False):
        """The guest writes @n more bytes of its memory (the host holds
        them), as much as fits below its balloon: page cache it can drop,
        or with @use memory it uses."""
        end = min(self.touched + n, self.memory['actual'])
        while self.touched < end:
            step = min(STEP, end - self.touched)
            self.map[self.touched:self.touched + step] = PAGES[:step]
            self.touched += step
            if use:
                self.memory['used'] += step

    def set_target(self, value):
        """The balloon's new target (bytes)."""
        with self.lock:
            self.target = min(value, self.memory['base'])
            if self.target >= self.memory['actual'] or not self.balloon_rate:
                self.memory['actual'] = self.target
                self.give_back()
            self.changed.notify_all()

    def give_back(self):
        """Pages above the balloon's actual go back to the host."""
        actual = self.memory['actual']
        if self.touched > actual:
            self.map.madvise(mmap.MADV_DONTNEED, actual, self.touched - actual)
            self.touched = actual
            self.memory['used'] = min(self.memory['used'], actual)

    def balloon_loop(self):
        """Inflate toward the target: through the untouched memory at once,
        through the touched at balloon_rate."""
        while True:
            with self.lock:
                while self.memory['actual'] <= self.target:
                    self.changed.wait()
                actual = max(self.target, min(self.memory['actual'],
                                              self.touched))
                if actual == self.memory['actual']:
                    actual = max(self.target, actual - STEP)
                self.memory['actual'] = actual
                self.give_back()
            time.sleep(STEP / self.balloon_rate)

    def set_running(self, running):
        with self.lock:
            self.running = running
            self.changed.notify_all()

    def grow_loop(self, n, rate, when):
        """Once @when exists, touch @n more bytes at @rate, only while
        running."""
        while not os.path.exists(when):
            time.sleep(0.02)
        goal = self.touched + n
        due = time.monotonic()
        while self.touched < goal:
            with self.lock:
                while not self.running:
                    self.changed.wait()
                    due = time.monotonic()
                self.touch(min(STEP, goal - self.touched), use=True)
            due += STEP / rate
            time.sleep(max(0.0, due - time.monotonic()))
