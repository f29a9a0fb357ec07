"""What the balloon daemon's tests share: a simulated host's /proc/meminfo,
a free loopback port, and the daemon's Prometheus page and its samples."""

import os
import re
import socket
import urllib.request


def meminfo(path, available_kb, total_kb=16000000):
    """Write a /proc/meminfo-like file (renamed over: one change)."""
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        f.write('MemTotal:       %d kB\nMemFree:        %d kB\n'
                'MemAvailable:   %d kB\n' % (total_kb, available_kb, available_kb))
    os.rename(tmp, path)


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def metrics(port):
    with urllib.request.urlopen('http://127.0.0.1:%d/metrics' % port, timeout=5) as r:
        return r.read().decode()


def sample(text, name, **labels):
    """The value of metric @name with exactly @labels, or None."""
    want = ','.join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(r'^(\w+)(?:\{(.*)\})? (\S+)$', line)
        if m and m.group(1) == name:
            have = ','.join(sorted(p for p in (m.group(2) or '').split(',') if p))
            if have == want:
                return float(m.group(3))
    return None
