#!/usr/bin/python3
"""Soak: the host's collector for SOAK_SECONDS (default 1800, 30 min)
while everything around it comes and goes (prints numbers; not a test).

qemu-oc-balloond --serve SOCKET --dry-run --interval 1 on a directory of
QMP sockets and on a libvirt connection (libvirtd started by hand, as the
libvirt tests do), with, all the time:

- fake VMs coming and going: FAKES (default 20) fake QMP peers
  (tests/tools/fake_qmp.py good), one replaced by a new one every 10 s;
  and one that never answers (silent), replaced every minute;
- real TCG guests: two with a QMP socket in the directory, one of them
  shut down and booted again every 5 minutes; and a libvirt domain;
- libvirtd stopped and started again every 10 minutes (the domain runs
  on without it);
- readers attaching and leaving: vmtop --once --json on the collector
  every 5 s, a reader that reads 3 frames and leaves every 2 s, and a
  reader that never reads (the collector drops it) every minute; the
  last two stuck ones are closed before the end is measured.

Printed at the start (once the daemon is settled) and every minute, and
compared at the end: the collector's open file descriptors, threads and
resident memory (/proc/PID/fd, /proc/PID/status), with the VMs it sees
at that moment (the same count each time: FAKES + silent + 2 guests + the
domain).  Flat means: at the end, no more descriptors than at the start,
no more threads but the few idle ones the pool of libvirt calls keeps
for a while (POOL_IDLE: GLib keeps 2 unused threads of its pools for
15 s, and the thread that spawns them), and RSS within 10 % (or 4 MiB)
of it.  Also: frames read,
reader drops, vmtop runs that failed, and the daemon's exit on SIGTERM.

Run: /usr/bin/python3 bench/soak.py (SOAK_SECONDS=120 for a quick look;
SOAK_DAEMON=build/oc-asan/tools/qemu-oc-balloond for leaks).
"""

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, 'tests', 'guest'))
from ocvm import VM  # noqa: E402
from oclibvirt import Libvirtd, domain_xml  # noqa: E402

# (SOAK_DAEMON: another build of it, say build/oc-asan's: its
# LeakSanitizer report, if any, is printed at the end)
DAEMON = os.environ.get('SOAK_DAEMON', os.path.join(TOP, 'build', 'tools',
                                                    'qemu-oc-balloond'))
VMTOP = os.path.join(TOP, 'build', 'tools', 'vmtop')
FAKE = os.path.join(TOP, 'tests', 'tools', 'fake_qmp.py')
SECONDS = float(os.environ.get('SOAK_SECONDS', '1800'))
FAKES = int(os.environ.get('SOAK_FAKES', '20'))
# threads the pool of libvirt calls may keep idle (see the top)
POOL_IDLE = 3


def say(fmt, *args):
    print(fmt % args, flush=True)


def proc_numbers(pid):
    fds = len(os.listdir('/proc/%d/fd' % pid))
    out = {'fds': fds}
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            key, _, value = line.partition(':')
            if key == 'Threads':
                out['threads'] = int(value)
            elif key == 'VmRSS':
                out['rss_mib'] = int(value.split()[0]) / 1024.0
    return out


class Soak:
    def __init__(self, tmp):
        self.tmp = tmp
        self.qmp = os.path.join(tmp, 'qmp')
        os.mkdir(self.qmp)
        self.sock = os.path.join(tmp, 'collector.sock')
        self.stop = threading.Event()
        self.fakes = {}
        self.serial = 0
        self.counts = {'frames': 0, 'vmtop-ok': 0, 'vmtop-failed': 0,
                       'readers': 0, 'stuck-readers': 0, 'fakes-replaced': 0,
                       'guest-reboots': 0, 'libvirtd-restarts': 0}
        self.lock = threading.Lock()

    def count(self, key, n=1):
        with self.lock:
            self.counts[key] += n

    def fake(self, behaviour='good'):
        self.serial += 1
        name = '%s-%d' % ('fake' if behaviour == 'good' else behaviour,
                          self.serial)
        path = os.path.join(self.qmp, name)
        p = subprocess.Popen([sys.executable, FAKE, path, behaviour,
                              '--lifetime', str(SECONDS + 600)],
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        self.fakes[name] = p
        return name

    def drop_fake(self, name):
        p = self.fakes.pop(name)
        p.kill()
        p.wait()
        try:
            os.unlink(os.path.join(self.qmp, name))
        except OSError:
            pass

    def every(self, seconds, fn):
        def loop():
            while not self.stop.wait(seconds):
                try:
                    fn()
                except Exception as e:      # a churn step failed: say so
                    say('  (%s: %s)', fn.__name__, e)
        t = threading.Thread(target=loop, daemon=True)
        t.start()
        return t

    # churn
    def replace_fake(self):
        name = random.choice([n for n in self.fakes if n.startswith('fake')])
        self.drop_fake(name)
        self.fake()
        self.count('fakes-replaced')

    def replace_silent(self):
        for name in [n for n in self.fakes if n.startswith('silent')]:
            self.drop_fake(name)
        self.fake('silent')

    def reboot_guest(self):
        self.guests[1].__exit__(None, None, None)
        self.guests[1] = self.guest('guest-b')
        self.count('guest-reboots')

    def restart_libvirtd(self):
        self.libvirtd.stop()
        self.libvirtd = Libvirtd()
        self.count('libvirtd-restarts')

    def vmtop(self):
        p = subprocess.run([VMTOP, '--collector', self.sock, '--once',
                            '--json'], capture_output=True, text=True,
                           timeout=60)
        ok = p.returncode == 0 and json.loads(p.stdout)['vms']
        self.count('vmtop-ok' if ok else 'vmtop-failed')

    def reader(self):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect(self.sock)
        f = s.makefile('rb')
        frames = 0
        while frames < 3:
            if b'"frame"' in f.readline():
                frames += 1
        s.close()
        self.count('frames', frames)
        self.count('readers')

    def stuck_reader(self):
        s = socket.socket(socket.AF_UNIX)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(self.sock)
        self.stuck.append(s)                # read nothing, ever
        while len(self.stuck) > 2:
            self.stuck.pop(0).close()
        self.count('stuck-readers')

    def guest(self, name):
        vm = VM(smp=1, memory=128, args=[
            '-qmp', 'unix:%s,server=on,wait=off' % os.path.join(self.qmp,
                                                                 name)])
        vm.__enter__()
        return vm

    def visible(self):
        p = subprocess.run([VMTOP, '--collector', self.sock, '--once',
                            '--json'], capture_output=True, text=True,
                           timeout=60)
        if p.returncode:
            return None
        return len(json.loads(p.stdout)['vms'])

    def run(self):
        import libvirt
        self.stuck = []
        self.libvirtd = Libvirtd()
        if self.libvirtd.error:
            say('soak: libvirtd cannot start here (%s): no libvirt part',
                self.libvirtd.error)
        conn = libvirt.open('qemu:///system')
        dom_name = 'soak-%d' % os.getpid()
        dom = conn.defineXML(domain_xml(dom_name))
        dom.create()
        conn.close()
        try:
            for _ in range(FAKES):
                self.fake()
            self.fake('silent')
            self.guests = [self.guest('guest-a'), self.guest('guest-b')]
            log = open(os.path.join(self.tmp, 'balloond.log'), 'w')
            d = subprocess.Popen(
                [DAEMON, '--no-protect', '--dry-run', '--interval', '1',
                 '--qmp-dir', self.qmp, '--connect', 'qemu:///system',
                 '--serve', self.sock], stderr=log)
            while 'settled:' not in open(log.name).read():
                if d.poll() is not None:
                    raise SystemExit('soak: the daemon exited: %s' %
                                     open(log.name).read()[-2000:])
                time.sleep(0.2)
            start = proc_numbers(d.pid)
            start['vms'] = self.visible()
            say('soak: %d s, %d fakes + 1 silent + 2 guests + 1 domain; '
                'daemon %d', SECONDS, FAKES, d.pid)
            say('  %6s %5s %7s %8s %4s', 'min', 'fds', 'threads', 'rss MiB',
                'VMs')
            say('  %6s %5d %7d %8.1f %4s', 'start', start['fds'],
                start['threads'], start['rss_mib'], start['vms'])
            churn = [self.every(10, self.replace_fake),
                     self.every(60, self.replace_silent),
                     self.every(300, self.reboot_guest),
                     self.every(600, self.restart_libvirtd),
                     self.every(5, self.vmtop), self.every(2, self.reader),
                     self.every(60, self.stuck_reader)]
            t0 = time.monotonic()
            samples = []
            while time.monotonic() - t0 < SECONDS:
                time.sleep(min(60, SECONDS - (time.monotonic() - t0)))
                n = proc_numbers(d.pid)
                n['vms'] = self.visible()
                samples.append(n)
                say('  %6.0f %5d %7d %8.1f %4s',
                    (time.monotonic() - t0) / 60, n['fds'], n['threads'],
                    n['rss_mib'], n['vms'])
            self.stop.set()
            for t in churn:
                t.join(60)
            # (the stuck readers of the last minutes leave too)
            for s in self.stuck:
                s.close()
            self.stuck = []
            deadline = time.monotonic() + 10
            while (proc_numbers(d.pid)['fds'] > start['fds'] and
                   time.monotonic() < deadline):
                time.sleep(0.2)
            end = proc_numbers(d.pid)
            end['vms'] = self.visible()
            t = time.monotonic()
            d.send_signal(signal.SIGTERM)
            rc = d.wait(60)
            say('  %6s %5d %7d %8.1f %4s', 'end', end['fds'], end['threads'],
                end['rss_mib'], end['vms'])
            flat = (end['fds'] <= start['fds'] and
                    end['threads'] <= start['threads'] + POOL_IDLE and
                    abs(end['rss_mib'] - start['rss_mib']) <=
                    max(4, start['rss_mib'] * 0.1))
            say('soak: %s (fds %+d, threads %+d, RSS %+.1f MiB; peak RSS '
                '%.1f MiB)', 'flat' if flat else 'NOT FLAT',
                end['fds'] - start['fds'], end['threads'] - start['threads'],
                end['rss_mib'] - start['rss_mib'],
                max(s['rss_mib'] for s in samples + [start, end]))
            say('soak: %s', ', '.join('%s %d' % kv for kv in
                                      sorted(self.counts.items())))
            say('soak: the daemon stopped on SIGTERM in %.1f s, status %d',
                time.monotonic() - t, rc)
            text = open(log.name).read()
            say('soak: the daemon dropped %d stuck readers',
                text.count('dropped'))
            for word in ('LeakSanitizer', 'AddressSanitizer',
                         'runtime error'):
                if word in text:
                    say('soak: %s report in its log:\n%s', word,
                        text[text.index(word) - 100:][:3000])
        finally:
            self.stop.set()
            for s in self.stuck:
                s.close()
            for name in list(self.fakes):
                self.drop_fake(name)
            for g in getattr(self, 'guests', []):
                g.__exit__(None, None, None)
            conn = libvirt.open('qemu:///system')
            try:
                dom = conn.lookupByName(dom_name)
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
            finally:
                conn.close()
                self.libvirtd.stop()


def main():
    tmp = tempfile.mkdtemp(prefix='soak-')
    try:
        Soak(tmp).run()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
