#!/usr/bin/python3
#
# qemu-oc host tools tests: a fake QMP server, good or misbehaving
#
# fake_qmp.py SOCKET_PATH BEHAVIOUR [--delay SECONDS] [--lifetime SECONDS]
#             [--memory-mib MIB] [--used-mib MIB] [--touch-mib MIB
#             [--balloon-mib-s RATE] [--grow-mib MIB --grow-mib-s RATE
#             --grow-when FILE]]
#
# Listens on SOCKET_PATH (bound under a temporary name, then renamed: once
# the path exists, connect() succeeds) and serves every connection in its
# own thread.  Behaviours:
#
#   good             greets like qemu-oc 7.2, answers qmp_capabilities,
#                    query-balloon (refresh async: a stale reply, then a
#                    BALLOON_STATS event ~50 ms later), query-vcpu-runstates,
#                    query-version, query-memory-size-summary (--memory-mib,
#                    default 1024) and balloon (the guest's size follows at
#                    once; it uses --used-mib, default 256, of it, the rest
#                    is available), stop, cont and query-status; anything
#                    else is CommandNotFound.  With --touch-mib the guest's
#                    RAM is real (fake_ram.py): that much is resident, a
#                    balloon gives it back at --balloon-mib-s (0: at once),
#                    and --grow-mib more is touched at --grow-mib-s once
#                    the file --grow-when exists, while not stopped
#   no-greeting      accepts and says nothing
#   silent           greets and never answers
#   slow             answers qmp_capabilities at once, anything else after
#                    --delay seconds (default 3)
#   invalid-json     answers every command after qmp_capabilities with
#                    invalid JSON
#   huge-line        after the greeting streams a 100 MB line without '\n'
#   deep-nesting     answers every command with a value nested 100000 deep
#   wrong-types      values of the wrong type for the vm-snapshot parsers
#                    (query-balloon returns 5, ...), and malformed messages
#                    for the client: x-bad-error, x-bad-event,
#                    x-bad-timestamp, x-far-timestamp, x-no-return,
#                    x-wrong-id, x-not-object
#   error-always     every command but qmp_capabilities gets GenericError
#   event-flood      answers like good and sends events (X-FLOOD, data
#                    {"n": 0, 1, ...}) as fast as it can
#   close-mid-reply  sends half of its first reply after qmp_capabilities
#                    and closes
#   reset            answers qmp_capabilities, then closes with the next
#                    command unread: the client's read fails with a reset
#
# With --good-until FILE, every behaviour that greets answers like good
# until FILE exists (a VM that had data, then misbehaves).  With --log
# FILE, each connection ("connect") and each command ("command NAME") is
# appended to FILE as a line (how many clients a VM really has).
#
# The server exits after --lifetime seconds (default 120) in case the test
# that started it died.  Python 3 standard library only.
#
# Copyright (c) 2026 qemu-oc developers
#
# SPDX-License-Identifier: GPL-2.0-or-later

import argparse
import json
import os
import select
import socket
import threading
import time

from fake_ram import FakeRam

PACKAGE = 'qemu-oc 0.1 (Debian 1:7.2+dfsg-7+deb12u18)'
VERSION = {'qemu': {'major': 7, 'minor': 2, 'micro': 22}, 'package': PACKAGE}
GREETING = {'QMP': {'version': VERSION, 'capabilities': ['oob']}}
START = time.monotonic()
MIB = 1024 * 1024


def timestamp():
    now = time.time()
    return {'seconds': int(now), 'microseconds': int(now * 1e6) % 1000000}


class Conn:
    """One client connection: line I/O, replies, events."""

    def __init__(self, sock, args):
        self.sock = sock
        self.args = args
        self.lock = threading.Lock()
        self.reader = sock.makefile('rb')

    def send_raw(self, data):
        with self.lock:
            self.sock.sendall(data)

    def send(self, obj):
        self.send_raw(json.dumps(obj).encode() + b'\r\n')

    def reply(self, cmd, value):
        self.send({'return': value, 'id': cmd.get('id')})

    def error(self, cmd, cls, desc):
        self.send({'error': {'class': cls, 'desc': desc}, 'id': cmd.get('id')})

    def event(self, name, data):
        self.send({'event': name, 'data': data, 'timestamp': timestamp()})

    def commands(self):
        """The client's commands (dicts) until it closes.  With
        --good-until FILE, those after qmp_capabilities are answered as a
        good qemu-oc would until FILE exists: the behaviour starts then."""
        for line in self.reader:
            if not line.strip():
                continue
            cmd = json.loads(line)
            log_line(self.args, 'command %s' % cmd.get('execute'))
            if self.args.good_until and cmd.get('execute') != 'qmp_capabilities' \
                    and not os.path.exists(self.args.good_until):
                answer_good(self, cmd)
                continue
            yield cmd

    def negotiate(self):
        """Greet and answer qmp_capabilities; False if the client left."""
        self.send(GREETING)
        for cmd in self.commands():
            if cmd.get('execute') == 'qmp_capabilities':
                self.reply(cmd, {})
                return True
            self.error(cmd, 'CommandNotFound', "Expecting capabilities "
                       "negotiation with 'qmp_capabilities'")
        return False


# Answers of a good qemu-oc

# the guest's memory (bytes): its size follows the balloon at once; and
# when the guest last reported (wall clock ms)
MEMORY = {'base': 1 << 30, 'actual': 1 << 30, 'used': 256 << 20,
          'reported': int(time.time() * 1000) - 1000}
# the guest's RAM for real (--touch-mib), and whether its vCPUs run
RAM = [None]
STATE = {'running': True}


def balloon_stats():
    up = time.monotonic() - START
    total = MEMORY['actual'] - (24 << 20)       # what the kernel keeps
    avail = max(0, total - MEMORY['used'])
    return {'free-memory': max(0, avail - (3 << 20)),
            'total-memory': total, 'available-memory': avail,
            'disk-caches': 3141632, 'major-faults': int(up * 3),
            'minor-faults': 968 + int(up * 100), 'swap-in': 0,
            'swap-out': 0, 'hugetlb-allocations': 0, 'hugetlb-failures': 0}


def balloon(conn, cmd):
    value = cmd.get('arguments', {}).get('value')
    if not isinstance(value, int) or value <= 0:
        conn.error(cmd, 'GenericError', "Parameter 'value' expects a size")
        return
    if RAM[0]:
        RAM[0].set_target(value)
    else:
        MEMORY['actual'] = min(value, MEMORY['base'])
    conn.reply(cmd, {})


def set_running(conn, cmd, running):
    STATE['running'] = running
    if RAM[0]:
        RAM[0].set_running(running)
    conn.reply(cmd, {})
    conn.event('RESUME' if running else 'STOP', {})


def query_status(conn, cmd):
    conn.reply(cmd, {'status': 'running' if STATE['running'] else 'paused',
                     'running': STATE['running'], 'singlestep': False})


def query_balloon(conn, cmd):
    refresh = cmd.get('arguments', {}).get('refresh', 'none')
    now_ms = int(time.time() * 1000)
    ret = {'actual': MEMORY['actual'], 'stats': balloon_stats(),
           'last-update': MEMORY['reported']}
    if refresh == 'sync':
        MEMORY['reported'] = now_ms
        ret.update({'fresh': True, 'age': 0, 'last-update': now_ms})
    else:
        ret.update({'fresh': False, 'age': now_ms - MEMORY['reported'],
                    'stale-reason':
                    'pending' if refresh == 'async' else 'not-requested'})
    conn.reply(cmd, ret)
    if refresh == 'async':
        def later():
            time.sleep(0.05)
            MEMORY['reported'] = int(time.time() * 1000)
            conn.event('BALLOON_STATS', {
                'actual': MEMORY['actual'], 'stats': balloon_stats(),
                'last-update': MEMORY['reported']})
        threading.Thread(target=guard, args=(later,), daemon=True).start()


def split(total, shares):
    """@total split by @shares (fractions); the last part is the rest."""
    parts = [int(total * s) for s in shares[:-1]]
    return parts + [total - sum(parts)]


# KVM's per-vCPU counters a fake VM shows (--kvm), per second: directed
# yields asked and done, preemptions reported and not; and its co-stop
KVM_RATES = {
    'quiet': (1, 1, 5, 0, 0.01),
    'lhp': (100, 40, 200, 3, 0.08),
}


def runstates_answer(start, kvm=None):
    """query-vcpu-runstates of a VM that started at @start (monotonic);
    @kvm: None (TCG: no KVM counters) or a key of KVM_RATES."""
    elapsed = int((time.monotonic() - start) * 1e9)
    names = ['full-run', 'full-contention', 'concurrency-hazard',
             'blocked', 'partial-run', 'partial-contention']
    hazard = KVM_RATES[kvm][4] if kvm else 0.01
    vm = dict(zip([n + '-ns' for n in names],
                  split(elapsed, [0.5, 0.02, hazard, 0.25, 0.2, None])))
    vm.update({'state': 'full-run', 'entered': int(time.time() * 1000),
               'missed-changes': 0})
    vcpus = []
    for i in range(2):
        ns = split(elapsed, [0.6 - 0.1 * i, 0.05, 0.0, None])
        vcpus.append({'cpu-index': i, 'thread-id': 4711 + i,
                      'state': 'running', 'running-ns': ns[0],
                      'runnable-ns': ns[1], 'offline-ns': ns[2],
                      'blocked-ns': ns[3], 'transitions': elapsed // 10**7})
        if kvm:
            r = [int(x * elapsed / 1e9) for x in KVM_RATES[kvm][:4]]
            vcpus[-1]['kvm'] = {
                'halt-exits': 0, 'halt-wakeups': 0, 'halt-wait-ns': 0,
                'directed-yield-attempted': r[0],
                'directed-yield-successful': r[1],
                'preemption-reported': r[2], 'preemption-other': r[3]}
    return {'method': 'kvm' if kvm else 'tcg', 'source': 'exact',
            'period-ms': 100,
            'samples': elapsed // (100 * 10**6),
            'elapsed-ns': elapsed, 'vm': vm, 'vcpus': vcpus}


def query_vcpu_runstates(conn, cmd):
    conn.reply(cmd, runstates_answer(START, conn.args.kvm))


GOOD = {
    'balloon': balloon,
    'query-memory-size-summary':
        lambda conn, cmd: conn.reply(cmd, {'base-memory': MEMORY['base']}),
    'query-balloon': query_balloon,
    'query-vcpu-runstates': query_vcpu_runstates,
    'query-version': lambda conn, cmd: conn.reply(cmd, VERSION),
    'stop': lambda conn, cmd: set_running(conn, cmd, False),
    'cont': lambda conn, cmd: set_running(conn, cmd, True),
    'query-status': query_status,
}


def answer_good(conn, cmd):
    handler = GOOD.get(cmd.get('execute'))
    if handler:
        handler(conn, cmd)
    else:
        conn.error(cmd, 'CommandNotFound', 'The command %s has not been found'
                   % cmd.get('execute'))


# Behaviours: each serves one connection

def serve_good(conn):
    if conn.negotiate():
        for cmd in conn.commands():
            answer_good(conn, cmd)


def serve_no_greeting(conn):
    for _ in conn.commands():
        pass


def serve_silent(conn):
    conn.send(GREETING)
    serve_no_greeting(conn)


def serve_slow(conn):
    if conn.negotiate():
        for cmd in conn.commands():
            time.sleep(conn.args.delay)
            answer_good(conn, cmd)


def serve_invalid_json(conn):
    if conn.negotiate():
        for cmd in conn.commands():
            conn.send_raw(b'{"return": {"actual": 1,, }, "id": %d}\n'
                          % cmd.get('id', 0))


def serve_huge_line(conn):
    conn.send(GREETING)
    chunk = b'x' * (64 * 1024)
    conn.send_raw(b'{"return": "')
    for _ in range(100 * MIB // len(chunk)):
        conn.send_raw(chunk)


def serve_deep_nesting(conn):
    if conn.negotiate():
        for cmd in conn.commands():
            depth = 100000
            conn.send_raw(b'{"return": ' + b'[' * depth + b']' * depth +
                          b', "id": %d}\n' % cmd.get('id', 0))


WRONG = {
    'query-balloon': lambda conn, cmd: conn.reply(cmd, 5),
    'query-vcpu-runstates': lambda conn, cmd: conn.reply(cmd, {
        'elapsed-ns': 'long', 'vm': [], 'vcpus': {'0': 1}}),
    'query-version': lambda conn, cmd: conn.reply(cmd, {'qemu': '7.2'}),
    'x-bad-error': lambda conn, cmd: conn.send({'error': 'oops',
                                                'id': cmd.get('id')}),
    'x-bad-event': lambda conn, cmd: conn.send({
        'event': 5, 'timestamp': timestamp()}),
    'x-bad-timestamp': lambda conn, cmd: conn.send({
        'event': 'STOP', 'timestamp': 'now'}),
    'x-far-timestamp': lambda conn, cmd: conn.send({
        'event': 'STOP', 'timestamp': {'seconds': 2**62, 'microseconds': 0}}),
    'x-no-return': lambda conn, cmd: conn.send({'id': cmd.get('id')}),
    'x-wrong-id': lambda conn, cmd: conn.send({'return': {},
                                               'id': 'someone else'}),
    'x-not-object': lambda conn, cmd: conn.send([1, 2, 3]),
}


def serve_wrong_types(conn):
    if conn.negotiate():
        for cmd in conn.commands():
            name = cmd.get('execute')
            WRONG.get(name, answer_good)(conn, cmd)
            if name == 'query-balloon':
                conn.event('BALLOON_STATS', {'actual': '512M',
                                             'stats': [1, 2],
                                             'last-update': None})


def serve_error_always(conn):
    if conn.negotiate():
        for cmd in conn.commands():
            conn.error(cmd, 'GenericError', 'fake_qmp always fails %s'
                       % cmd.get('execute'))


def serve_event_flood(conn):
    if not conn.negotiate():
        return

    def flood():
        n = 0
        while True:
            conn.event('X-FLOOD', {'n': n})
            n += 1
    threading.Thread(target=guard, args=(flood,), daemon=True).start()
    for cmd in conn.commands():
        answer_good(conn, cmd)


def serve_close_mid_reply(conn):
    if conn.negotiate():
        for cmd in conn.commands():
            line = json.dumps({'return': VERSION, 'id': cmd.get('id')})
            conn.send_raw(line[:len(line) // 2].encode())
            return


def serve_reset(conn):
    if conn.negotiate():
        # (the command waits in the socket, not in the line reader)
        select.select([conn.sock], [], [])
        conn.reader.close()     # (it holds the descriptor open)
        conn.sock.close()


BEHAVIOURS = {name[len('serve_'):].replace('_', '-'): fn
              for name, fn in globals().items() if name.startswith('serve_')}


LOG_LOCK = threading.Lock()


def log_line(args, text):
    if args.log:
        with LOG_LOCK, open(args.log, 'a') as f:
            f.write(text + '\n')


def guard(fn, *args):
    """Run @fn; a client that goes away is no error of the server."""
    try:
        fn(*args)
    except (OSError, ValueError):
        pass


def serve(sock, args):
    conn = Conn(sock, args)
    try:
        guard(BEHAVIOURS[args.behaviour], conn)
    finally:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()


def main():
    parser = argparse.ArgumentParser(description='a fake QMP server')
    parser.add_argument('path')
    parser.add_argument('behaviour', choices=sorted(BEHAVIOURS))
    parser.add_argument('--delay', type=float, default=3.0)
    parser.add_argument('--lifetime', type=float, default=120.0)
    parser.add_argument('--memory-mib', type=int, default=1024)
    parser.add_argument('--used-mib', type=int, default=256)
    parser.add_argument('--touch-mib', type=int)
    parser.add_argument('--balloon-mib-s', type=float, default=0)
    parser.add_argument('--grow-mib', type=int, default=0)
    parser.add_argument('--grow-mib-s', type=float, default=100)
    parser.add_argument('--grow-when')
    parser.add_argument('--good-until')
    parser.add_argument('--log')
    parser.add_argument('--kvm', choices=sorted(KVM_RATES),
                        help='KVM counters in the runstates (default: none, '
                        'as under TCG)')
    args = parser.parse_args()
    MEMORY['base'] = MEMORY['actual'] = args.memory_mib << 20
    MEMORY['used'] = args.used_mib << 20
    if args.touch_mib is not None:
        RAM[0] = FakeRam(MEMORY, args)

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tmp = args.path + '.tmp'
    if os.path.exists(tmp):
        os.unlink(tmp)
    listener.bind(tmp)
    listener.listen(8)
    os.rename(tmp, args.path)
    threading.Timer(args.lifetime, os._exit, args=(0,)).start()
    while True:
        sock, _ = listener.accept()
        log_line(args, 'connect')
        threading.Thread(target=serve, args=(sock, args), daemon=True).start()


if __name__ == '__main__':
    main()
