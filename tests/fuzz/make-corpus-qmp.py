#!/usr/bin/python3
"""Seeds of the QMP client's fuzz target (fuzz-qmp-client.c): what the
fake peers of tests/tools/fake_qmp.py send to a client that asks what
the target asks (qmp_capabilities, query-balloon, query-vcpu-runstates
twice, query-memory-size-summary, ids 1 to 5), one file per behaviour,
at most 16 KiB.

usage: make-corpus-qmp.py OUT_DIR"""

import os
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, '..', 'tools', 'fake_qmp.py')
COMMANDS = ['qmp_capabilities', 'query-balloon', 'query-vcpu-runstates',
            'query-vcpu-runstates', 'query-memory-size-summary']
BEHAVIOURS = ['good', 'invalid-json', 'deep-nesting', 'wrong-types',
              'error-always', 'event-flood', 'close-mid-reply']
MAX = 16384
EVENT = (b'{"event": "BALLOON_STATS", "data": {"actual": 1073741824, '
         b'"stats": {"free-memory": 7000000%d, "total-memory": 1048576000, '
         b'"available-memory": 780140544, "major-faults": %d}, '
         b'"last-update": 1796546100533}, '
         b'"timestamp": {"seconds": 1796546101, "microseconds": 5}}\n')


def transcript(behaviour, tmp):
    path = os.path.join(tmp, behaviour)
    p = subprocess.Popen(['/usr/bin/python3', FAKE, path, behaviour,
                          '--lifetime', '30'])
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(path):
            if time.monotonic() > deadline:
                raise SystemExit('%s: no socket' % behaviour)
            time.sleep(0.02)
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        s.settimeout(0.5)
        got = b''
        for i, cmd in enumerate(COMMANDS, 1):
            try:
                s.sendall(b'{"execute": "%s", "id": %d}\n'
                          % (cmd.encode(), i))
            except OSError:
                break
            try:
                while len(got) < MAX:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got += chunk
                    if got.endswith(b'\n') and b'"id": %d' % i in got:
                        break
            except socket.timeout:
                pass
        s.close()
        return got[:MAX]
    finally:
        p.kill()
        p.wait()


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for b in BEHAVIOURS:
            data = transcript(b, tmp)
            with open(os.path.join(out, b + '.txt'), 'wb') as f:
                f.write(data)
            print('%s: %d bytes' % (b, len(data)))
            if b == 'good':
                # then the events a worker waits for
                data += EVENT % (1, 100) + EVENT % (2, 50)
                with open(os.path.join(out, 'good-events.txt'), 'wb') as f:
                    f.write(data)


if __name__ == '__main__':
    main()
