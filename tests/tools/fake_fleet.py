#!/usr/bin/python3
#
# qemu-oc host tools tests: a fleet of fake QMP servers in one process
#
# fake_fleet.py DIR N [--prefix vm] [--lifetime S] [--frozen K]
#               [--garbage K]
#
# Serves N fake VMs, each a QMP socket DIR/PREFIXNNNN (vm0000, vm0001,
# ...; bound under a temporary name, then renamed, as fake_qmp.py does:
# once the path exists, connect() succeeds), from one asyncio event loop:
# no process nor thread per VM or connection, so that a test or a
# benchmark can put a thousand VMs before the host tools.  Each socket
# serves any number of connections at once; a VM's state (its balloon,
# whether it runs) is shared by its connections, as a QEMU's is.
#
#   good       (the first N - K) answers as fake_qmp.py's good behaviour
#              does, byte for byte: the greeting of qemu-oc 7.2,
#              qmp_capabilities, query-balloon (refresh async: a stale
#              reply, then a BALLOON_STATS event ~50 ms later),
#              query-vcpu-runstates (counters advancing with time),
#              query-version, query-memory-size-summary (1024 MiB),
#              balloon (the guest's size follows at once; it uses
#              256 MiB of it), stop, cont and query-status; anything
#              else is CommandNotFound
#   frozen     (--frozen K: the last K of the N) greets and never answers
#              (fake_qmp.py's silent)
#   garbage    (--garbage K: K more, numbered after the N) answers every
#              command after qmp_capabilities with invalid JSON
#              (fake_qmp.py's invalid-json)
#
# Prints "ready M" (M: every socket, N + the garbage ones) on stdout once
# every socket exists, and on SIGUSR1 "stats connections C open O
# commands Q events E dropped D" (totals since the start).  A client that
# sends a line longer than 1 MiB, or anything but JSON objects, is
# dropped.  SIGTERM or SIGINT: the sockets are removed and the fleet
# exits; so it does after --lifetime seconds (default 600) in case
# whatever started it died.  Python 3 standard library only.
#
# Copyright (c) 2026 qemu-oc developers
#
# SPDX-License-Identifier: GPL-2.0-or-later

import argparse
import asyncio
import json
import os
import resource
import signal
import socket
import sys
import time

from fake_qmp import GREETING, VERSION, runstates_answer, timestamp

MIB = 1024 * 1024
LINE_MAX = MIB          # a longer line from a client drops it
BACKLOG = 64
class Stats:
    connections = 0
    open = 0
    commands = 0
    events = 0
    dropped = 0

    def line(self):
        return ('stats connections %d open %d commands %d events %d '
                'dropped %d' % (self.connections, self.open, self.commands,
                                self.events, self.dropped))


STATS = Stats()


class Conn:
    """One client connection: replies and events (as fake_qmp.py's)."""

    def __init__(self, writer):
        self.writer = writer

    def send_raw(self, data):
        """Send @data; whether sent (not if the client went away)"""
        if self.writer.is_closing():
            return False
        self.writer.write(data)
        return True

    def send(self, obj):
        return self.send_raw(json.dumps(obj).encode() + b'\r\n')

    def reply(self, cmd, value):
        self.send({'return': value, 'id': cmd.get('id')})

    def error(self, cmd, cls, desc):
        self.send({'error': {'class': cls, 'desc': desc}, 'id': cmd.get('id')})

    def event(self, name, data):
        if self.send({'event': name, 'data': data,
                      'timestamp': timestamp()}):
            STATS.events += 1


class FakeVM:
    """One VM: a behaviour, and the state of a good qemu-oc's guest."""

    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.start = time.monotonic()
        # the guest's memory (bytes): its size follows the balloon at
        # once; and when the guest last reported (wall clock ms)
        self.base = self.actual = 1 << 30
        self.used = 256 << 20
        self.reported = int(time.time() * 1000) - 1000
        self.running = True
        self.good = {
            'balloon': self.balloon,
            'query-memory-size-summary':
                lambda conn, cmd: conn.reply(cmd, {'base-memory': self.base}),
            'query-balloon': self.query_balloon,
            'query-vcpu-runstates': self.query_vcpu_runstates,
            'query-version': lambda conn, cmd: conn.reply(cmd, VERSION),
            'stop': lambda conn, cmd: self.set_running(conn, cmd, False),
            'cont': lambda conn, cmd: self.set_running(conn, cmd, True),
            'query-status': self.query_status,
        }

    # Answers of a good qemu-oc (fake_qmp.py's, for this VM's state)

    def balloon_stats(self):
        up = time.monotonic() - self.start
        total = self.actual - (24 << 20)        # what the kernel keeps
        avail = max(0, total - self.used)
        return {'free-memory': max(0, avail - (3 << 20)),
                'total-memory': total, 'available-memory': avail,
                'disk-caches': 3141632, 'major-faults': int(up * 3),
                'minor-faults': 968 + int(up * 100), 'swap-in': 0,
                'swap-out': 0, 'hugetlb-allocations': 0,
                'hugetlb-failures': 0}

    def balloon(self, conn, cmd):
        value = cmd.get('arguments', {}).get('value')
        if not isinstance(value, int) or value <= 0:
            conn.error(cmd, 'GenericError',
                       "Parameter 'value' expects a size")
            return
        self.actual = min(value, self.base)
        conn.reply(cmd, {})

    def set_running(self, conn, cmd, running):
        self.running = running
        conn.reply(cmd, {})
        conn.event('RESUME' if running else 'STOP', {})

    def query_status(self, conn, cmd):
        conn.reply(cmd, {'status': 'running' if self.running else 'paused',
                         'running': self.running, 'singlestep': False})

    def query_balloon(self, conn, cmd):
        refresh = cmd.get('arguments', {}).get('refresh', 'none')
        now_ms = int(time.time() * 1000)
        ret = {'actual': self.actual, 'stats': self.balloon_stats(),
               'last-update': self.reported}
        if refresh == 'sync':
            self.reported = now_ms
            ret.update({'fresh': True, 'age': 0, 'last-update': now_ms})
        else:
            ret.update({'fresh': False, 'age': now_ms - self.reported,
                        'stale-reason':
                        'pending' if refresh == 'async' else 'not-requested'})
        conn.reply(cmd, ret)
        if refresh == 'async':
            asyncio.get_running_loop().call_later(0.05, self.report, conn)

    def report(self, conn):
        """The guest's statistics arrive (refresh async)"""
        self.reported = int(time.time() * 1000)
        conn.event('BALLOON_STATS', {
            'actual': self.actual, 'stats': self.balloon_stats(),
            'last-update': self.reported})

    def query_vcpu_runstates(self, conn, cmd):
        conn.reply(cmd, runstates_answer(self.start))

    def answer_good(self, conn, cmd):
        handler = self.good.get(cmd.get('execute'))
        if handler:
            handler(conn, cmd)
        else:
            conn.error(cmd, 'CommandNotFound',
                       'The command %s has not been found'
                       % cmd.get('execute'))

    def answer(self, conn, cmd, negotiated):
        """Answer @cmd; whether capabilities are negotiated after it"""
        if self.behaviour == 'frozen':
            return negotiated
        if not negotiated:
            if cmd.get('execute') == 'qmp_capabilities':
                conn.reply(cmd, {})
                return True
            conn.error(cmd, 'CommandNotFound', "Expecting capabilities "
                       "negotiation with 'qmp_capabilities'")
            return False
        if self.behaviour == 'garbage':
            conn.send_raw(b'{"return": {"actual": 1,, }, "id": %d}\n'
                          % cmd.get('id', 0))
        else:
            self.answer_good(conn, cmd)
        return True

    async def serve(self, reader, writer):
        """One connection, until the client leaves or is dropped"""
        conn = Conn(writer)
        negotiated = False
        STATS.connections += 1
        STATS.open += 1
        try:
            conn.send(GREETING)
            while True:
                # (ValueError past LINE_MAX: the client is dropped)
                line = await reader.readline()
                if not line:
                    break
                if not line.strip():
                    continue
                cmd = json.loads(line)
                if not isinstance(cmd, dict):
                    raise ValueError('not a JSON object')
                STATS.commands += 1
                negotiated = self.answer(conn, cmd, negotiated)
                await writer.drain()
        except (OSError, ValueError, AttributeError, TypeError,
                RecursionError):
            # a client that goes away or speaks nonsense: drop it (as a
            # thread of fake_qmp.py dies), no error of the fleet's
            STATS.dropped += 1
        finally:
            STATS.open -= 1
            writer.close()


def listen(path):
    """A listening socket at @path (bound under a temporary name)"""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tmp = path + '.tmp'
    if os.path.exists(tmp):
        os.unlink(tmp)
    sock.bind(tmp)
    sock.listen(BACKLOG)
    os.rename(tmp, path)
    return sock


def raise_fd_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        new = hard if hard == resource.RLIM_INFINITY else max(soft, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


async def run(args):
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    behaviours = (['good'] * (args.n - args.frozen) +
                  ['frozen'] * args.frozen + ['garbage'] * args.garbage)
    # a socket per VM, and some room for the clients of each
    raise_fd_limit(4 * len(behaviours) + 64)
    paths, servers = [], []

    def stop():
        if not done.done():
            done.set_result(None)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    loop.add_signal_handler(
        signal.SIGUSR1, lambda: print(STATS.line(), flush=True))
    loop.call_later(args.lifetime, stop)
    try:
        for i, behaviour in enumerate(behaviours):
            path = os.path.join(args.dir, '%s%04d' % (args.prefix, i))
            vm = FakeVM(behaviour)
            sock = listen(path)
            paths.append(path)
            servers.append(await asyncio.start_unix_server(
                vm.serve, sock=sock, limit=LINE_MAX))
        print('ready %d' % len(paths), flush=True)
        await done
    finally:
        for server in servers:
            server.close()
        for path in paths:
            try:
                os.unlink(path)
            except OSError:
                pass


def main():
    parser = argparse.ArgumentParser(
        description='many fake QMP servers in one process')
    parser.add_argument('dir')
    parser.add_argument('n', type=int)
    parser.add_argument('--prefix', default='vm')
    parser.add_argument('--lifetime', type=float, default=600.0)
    parser.add_argument('--frozen', type=int, default=0)
    parser.add_argument('--garbage', type=int, default=0)
    args = parser.parse_args()
    if args.n < 0 or not 0 <= args.frozen <= args.n or args.garbage < 0:
        parser.error('need 0 <= --frozen <= N and --garbage >= 0')
    asyncio.run(run(args))
    return 0


if __name__ == '__main__':
    sys.exit(main())
