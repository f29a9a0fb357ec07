#!/usr/bin/python3
"""Write the seed corpus of tests/fuzz/fuzz-balloon-stats.c.

Each seed is a short scenario in the fuzzer's input encoding
(tests/fuzz/README.md); libFuzzer mutates from there.  Run it after
changing the encoding: it rewrites tests/fuzz/corpus/.
"""

import os
import struct
import sys

OPS = ['post', 'ask-sync', 'ask-async', 'advance', 'timeout', 'reset',
       'driver-ok', 'broken', 'unplug', 'plug', 'stop', 'cont', 'poll',
       'stray-answer', 'lost', 'nest', 'endian']
OP = {name: i for i, name in enumerate(OPS)}

# what Linux 6.1 reports: tags 0..9
LINUX = [(t, 1000 * (t + 1)) for t in range(10)]


def u16(v):
    return struct.pack('<H', v)


def driver_ok(feature=True):
    return bytes([OP['driver-ok'], 0 if feature else 0x80])


def entries(stats, big_endian=False):
    fmt = '>HQ' if big_endian else '<HQ'
    return b''.join(struct.pack(fmt, t, v) for t, v in stats)


def post(stats=LINUX, big_endian=False, raw=None, segs=None, in_num=0):
    """The guest posts a buffer: entries, or @raw bytes of any length,
    split into len(segs) + 1 descriptors of @segs bytes (the last takes
    the rest)."""
    segs = segs or []
    data = raw if raw is not None else entries(stats, big_endian)
    flags = len(segs) | (in_num << 2)
    if raw is not None or len(data) % 10 or len(data) > 2550:
        flags |= 0x80
        size = u16(len(data))
    else:
        size = bytes([len(data) // 10])
    return (bytes([OP['post'], flags]) + size + data +
            b''.join(u16(s) for s in segs))


def ask_sync(timeout=1000, can_wait=True):
    return bytes([OP['ask-sync']]) + u16(timeout - 1) + \
        bytes([0 if can_wait else 0x80])


def ask_async():
    return bytes([OP['ask-async']]) + u16(0)


def advance(ms):
    return bytes([OP['advance']]) + u16(ms)


def timeout(k):
    return bytes([OP['timeout'], k])


def plug(replace=False):
    return bytes([OP['plug'], 1 if replace else 0])


def stray(b=1):
    return bytes([OP['stray-answer'], b])


def lost(why, other=False):
    return bytes([OP['lost'], why | (0x80 if other else 0)])


def nest(n):
    return bytes([OP['nest'], n - 1])


def op(name):
    return bytes([OP[name]])


READY = driver_ok() + post()

SEEDS = {
    # a sync request the guest answers; then one it never answers
    'answer': READY + ask_sync() + post() + ask_sync(500) + advance(600),
    # several waiters and an async request share one round trip
    'concurrent': READY + ask_sync(100) + ask_sync(2000) + ask_async() +
    ask_sync(3000, can_wait=False) + post() + advance(5000),
    # timers fire one at a time, also after their waiter completed
    'timeouts': READY + ask_sync(10) + ask_sync(20) + timeout(1) +
    advance(15) + timeout(0) + post() + timeout(1),
    # the driver resets while waiters wait, then comes back
    'reset': READY + ask_sync() + ask_async() + op('reset') + ask_sync() +
    driver_ok() + post() + ask_sync() + post(),
    # the device breaks: waiters complete, new requests answer at once
    'broken': READY + ask_sync() + op('broken') + ask_sync() + op('reset') +
    driver_ok() + post() + ask_sync() + post(),
    # unplug with waiters, requests without a device, plug again
    'unplug': READY + ask_sync() + ask_sync() + op('unplug') + ask_sync() +
    ask_async() + stray() + plug() + driver_ok() + post() + ask_sync() +
    post(),
    # the VM stops while a request waits; an async one survives the stop
    'stopped': READY + ask_async() + ask_sync() + op('stop') + ask_sync() +
    op('cont') + post() + ask_sync() + post(),
    # upstream's polling returns the buffer; answers from other devices
    'poll': READY + op('poll') + ask_sync() + stray(2) + lost(5, True) +
    post() + op('poll') + post(),
    # the driver without the stats feature, then with it
    'unsupported': driver_ok(False) + post() + ask_sync() + ask_async() +
    driver_ok() + post() + ask_sync() + post(),
    # malformed buffers: writable parts, partial entries, none
    'malformed': driver_ok() + post(in_num=1) + post(raw=b'\x01' * 7) +
    post(raw=b'') + post(raw=b'\x02' * 25, segs=[7]) + ask_sync() +
    advance(1001),
    # the most entries a buffer may have, and one more (each seed stays
    # below the fuzzer's -max_len of 4096 bytes)
    'entries-256': driver_ok() +
    post(stats=[(t % 16, t) for t in range(256)]) + ask_sync() + post(),
    'entries-257': driver_ok() + post() + ask_sync() +
    post(stats=[(t % 16, t) for t in range(257)]) + advance(1001),
    # entries straddling descriptors, unknown tags, big-endian
    'layout': driver_ok() + post(segs=[3, 0, 11]) +
    post(stats=[(16, 1), (0xffff, 2), (3, 3), (3, 4)], segs=[25]) +
    op('endian') + post(stats=LINUX, big_endian=True, segs=[9, 1]) +
    ask_sync() + post(stats=[(15, 7)], big_endian=True),
    # completions that call back in: new requests, a reset, a timeout
    'nested': READY + ask_sync() + ask_sync() + ask_sync() + nest(2) +
    post() + ask_sync() + timeout(2) + nest(1) + op('reset') + ask_sync() +
    driver_ok() + post() + ask_sync() + nest(3) + op('unplug') + plug() +
    driver_ok() + post(),
    # registering a device replaces the one registered
    'replace': READY + ask_sync() + ask_async() + plug(replace=True) +
    ask_sync() + stray(0) + driver_ok() + post() + ask_sync() + post(),
    # while a replacement completes the old device's waiters, devices
    # come and go from the completions, and one is asked
    'replug': READY + ask_sync() + ask_sync() + ask_sync() + nest(4) +
    plug(replace=True) + plug() + op('unplug') + nest(4) + op('cont') +
    plug() + driver_ok() + post() + ask_sync() + post(),
}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus')
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), 'wb') as f:
            f.write(data)
    print('%d seeds in %s' % (len(SEEDS), out), file=sys.stderr)


if __name__ == '__main__':
    main()
