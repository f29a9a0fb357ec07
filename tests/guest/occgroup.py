"""occgroup: real memory cgroups for memory-pressure tests.

Python standard library only; run with Debian's /usr/bin/python3.

    reason = reason_unavailable(1600)        # None, or why not
    with MemCgroup('squeeze', 1600) as cg:   # a child of our own group
        vm = VM(wrapper=[cg.wrapper()])      # QEMU's memory is charged to cg
        ...
        cg.usage(), cg.limit(), cg.oom_kills(), cg.pids()

The group is created under the memory cgroup this process is in (never
elsewhere): with cgroup v1 (a hierarchy mounted with the memory
controller, e.g. /sys/fs/cgroup/memory) under the group named on the
"memory" line of /proc/self/cgroup; with cgroup v2 under the group of the
"0::" line, as a leaf, which needs "memory" in that group's
cgroup.subtree_control (v2's "no internal processes" rule: a group that
holds processes, ours included, cannot enable it, unless it is the root).
"""

import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time

MIB = 1 << 20
V1_UNLIMITED = 1 << 62      # v1 reports "no limit" as about 2^63


class Unavailable(Exception):
    """No memory cgroup can be created here; the message says why."""


def _mounts():
    """[(root, mountpoint, fstype, super options)] of cgroup mounts."""
    found = []
    with open('/proc/self/mountinfo') as f:
        for line in f:
            left, _, right = line.partition(' - ')
            fields, rest = left.split(), right.split()
            if len(rest) >= 3 and rest[0] in ('cgroup', 'cgroup2'):
                found.append((fields[3], fields[4], rest[0], rest[2].split(',')))
    return found


def _under(mount_root, mountpoint, cg_path):
    """Where the group cg_path (as /proc/self/cgroup names it) is in a
    mount of the hierarchy whose root is mount_root."""
    rel = os.path.relpath(cg_path, mount_root)
    if rel.startswith('..'):
        raise Unavailable('our cgroup %s is outside the mounted part %s of the '
                          'hierarchy (at %s)' % (cg_path, mount_root, mountpoint))
    return os.path.normpath(os.path.join(mountpoint, rel))


def locate():
    """(version, directory of our own memory cgroup); raises Unavailable."""
    try:
        with open('/proc/self/cgroup') as f:
            lines = [l.rstrip('\n').split(':', 2) for l in f if l.strip()]
        mounts = _mounts()
    except OSError as e:
        raise Unavailable('cannot read /proc/self/cgroup or mountinfo: %s' % e)
    for hid, controllers, path in lines:
        if hid != '0' and 'memory' in controllers.split(','):
            for root, point, fstype, opts in mounts:
                if fstype == 'cgroup' and 'memory' in opts:
                    return 1, _under(root, point, path)
            raise Unavailable('cgroup v1 memory controller (%s) is not mounted'
                              % path)
    for hid, controllers, path in lines:
        if hid == '0' and controllers == '':
            for root, point, fstype, opts in mounts:
                if fstype != 'cgroup2':
                    continue
                own = _under(root, point, path)
                try:
                    with open(os.path.join(own, 'cgroup.controllers')) as f:
                        avail = f.read().split()
                except OSError:
                    continue
                if 'memory' not in avail:
                    raise Unavailable('cgroup v2 at %s: no memory controller in %s '
                                      '(cgroup.controllers: %s)' % (
                                          point, own, ' '.join(avail) or 'empty'))
                return 2, own
    raise Unavailable('no memory cgroup: no cgroup v1 memory hierarchy in '
                      '/proc/self/cgroup and no cgroup v2 with the memory controller')


def _read(path):
    with open(path) as f:
        return f.read()


def _write(path, text):
    with open(path, 'w') as f:
        f.write(text)


def _v2_enable_memory(own):
    control = os.path.join(own, 'cgroup.subtree_control')
    if 'memory' in _read(control).split():
        return
    try:
        _write(control, '+memory')
    except OSError as e:
        raise Unavailable(
            'cgroup v2: cannot enable the memory controller for children of %s '
            '(%s); the group holds processes (v2 allows no controllers in a group '
            'with processes, the root excepted): run the tests from a delegated '
            'group whose cgroup.subtree_control has +memory' % (own, e.strerror))


_serial = [0]


class MemCgroup:
    """A memory cgroup with a hard limit, a child of our own memory cgroup.

    name:      base name; the group is "<name>-<pid>-<n>" (unique)
    limit_mib: hard limit (v1 memory.limit_in_bytes, v2 memory.max)

    The group starts empty: put processes in it with wrapper() (the
    argv of a program run through it is charged to the group from its
    first byte) or popen().  remove() (also at the end of a with block)
    kills only what popen() started, waits until the group is empty and
    deletes it."""

    def __init__(self, name, limit_mib):
        self.version, self.parent = locate()
        if self.version == 2:
            _v2_enable_memory(self.parent)
        _serial[0] += 1
        self.name = '%s-%d-%d' % (name, os.getpid(), _serial[0])
        self.path = os.path.join(self.parent, self.name)
        self.limit_mib = limit_mib
        self._tmp = None
        self._started = []
        try:
            os.mkdir(self.path)
        except OSError as e:
            raise Unavailable('cannot create a memory cgroup in %s: %s'
                              % (self.parent, e.strerror))
        try:
            _write(self._file('memory.limit_in_bytes', 'memory.max'),
                   str(limit_mib * MIB))
        except OSError as e:
            os.rmdir(self.path)
            raise Unavailable('cannot set the limit of %s: %s' % (self.path, e.strerror))

    def _file(self, v1, v2):
        return os.path.join(self.path, v1 if self.version == 1 else v2)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.remove()
        return False

    # -- reading ----------------------------------------------------------

    def usage(self):
        """Memory charged to the group now, bytes."""
        return int(_read(self._file('memory.usage_in_bytes', 'memory.current')))

    def max_usage(self):
        """The kernel's own high-water mark, bytes (None if it keeps none:
        v2 before Linux 5.19)."""
        try:
            return int(_read(self._file('memory.max_usage_in_bytes', 'memory.peak')))
        except OSError:
            return None

    def limit(self):
        """The hard limit, bytes (None: no limit)."""
        text = _read(self._file('memory.limit_in_bytes', 'memory.max')).strip()
        if text == 'max' or int(text) >= V1_UNLIMITED:
            return None
        return int(text)

    def oom_kills(self):
        """How many processes the kernel's OOM killer has killed in the group."""
        for line in _read(self._file('memory.oom_control', 'memory.events')).splitlines():
            key, _, value = line.partition(' ')
            if key == 'oom_kill':
                return int(value)
        raise Unavailable('%s: this kernel does not count OOM kills' % self.path)

    def pids(self):
        """The processes in the group."""
        return [int(p) for p in _read(os.path.join(self.path, 'cgroup.procs')).split()]

    # -- putting processes in ---------------------------------------------

    def wrapper(self):
        """Path of an executable script: `WRAPPER PROGRAM ARGS...` moves
        itself into the group, then execs PROGRAM (same pid)."""
        if self._tmp is None:
            self._tmp = tempfile.mkdtemp(prefix='occgroup-')
        script = os.path.join(self._tmp, 'in-' + self.name)
        if not os.path.exists(script):
            _write(script,
                   '#!/bin/sh\n'
                   '# run "$@" in the memory cgroup %s\n'
                   'echo $$ > %s || { echo "occgroup: cannot join %s" >&2; exit 125; }\n'
                   'exec "$@"\n'
                   % (self.path, shlex.quote(os.path.join(self.path, 'cgroup.procs')),
                      self.path))
            os.chmod(script, 0o755)
        return script

    def popen(self, argv, **kwargs):
        """subprocess.Popen of argv inside the group; remove() kills it."""
        proc = subprocess.Popen([self.wrapper()] + list(argv), **kwargs)
        self._started.append(proc)
        return proc

    # -- removing ---------------------------------------------------------

    def remove(self, timeout=20):
        """Kill what popen() started, wait (up to timeout s) until the group
        is empty, delete it.  Raises RuntimeError naming what is left."""
        for proc in self._started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
        for proc in self._started:
            proc.wait()
        self._started = []
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        if not os.path.isdir(self.path):
            return
        deadline = time.monotonic() + timeout
        while True:
            try:
                left = self.pids()
                if not left:
                    os.rmdir(self.path)
                    return
            except FileNotFoundError:
                return
            except OSError as e:        # EBUSY: the last exit is in progress
                left = ['? (%s)' % e.strerror]
            if time.monotonic() >= deadline:
                raise RuntimeError('cgroup %s not empty after %d s: %s (left in place)'
                                   % (self.path, timeout, left))
            time.sleep(0.05)


def reason_unavailable(limit_mib=None):
    """None if a memory cgroup (with limit_mib, if given) can be created and
    enforced here; else a sentence saying why not."""
    try:
        cg = MemCgroup('probe', limit_mib or 64)
    except Unavailable as e:
        return str(e)
    except OSError as e:
        return 'memory cgroup: %s' % e
    try:
        if cg.limit() != (limit_mib or 64) * MIB:
            return '%s: the limit did not hold (reads %r)' % (cg.path, cg.limit())
        cg.oom_kills()
        cg.usage()
    except (Unavailable, OSError, ValueError) as e:
        return str(e)
    finally:
        cg.remove()
    return None
