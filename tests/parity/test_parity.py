#!/usr/bin/python3
"""Feature parity with Debian's own emulator, checked mechanically.

qemu-oc must offer everything Debian's qemu-system-x86_64 (the same
7.2.22 source, with qemu-system-gui and qemu-block-extra) offers: the
names listed by -device help, -machine help, -accel help, -audiodev help,
-display help, -cpu help and -drive format=help, and the QMP commands,
events and enumeration values of query-qmp-schema.  What stock has and we
lack fails, unless tests/parity/exceptions.txt lists it with a reason;
an exception that is no longer needed fails too (the list stays true).
What we add is printed, not checked.

Environment: QEMU_OC_BINARY (ours), QEMU_OC_STOCK (default
/usr/bin/qemu-system-x86_64).
"""

import json
import os
import re
import subprocess
import unittest

from ocvm import BINARY

STOCK = os.environ.get('QEMU_OC_STOCK', '/usr/bin/qemu-system-x86_64')
HERE = os.path.dirname(os.path.abspath(__file__))
EXCEPTIONS = os.path.join(HERE, 'exceptions.txt')

# (kind, command line): every line of the output that names something
LISTINGS = {
    'device': ['-device', 'help'],
    'machine': ['-machine', 'help'],
    'accel': ['-accel', 'help'],
    'audiodev': ['-audiodev', 'help'],
    'display': ['-display', 'help'],
    'cpu': ['-cpu', 'help'],
    'block': ['-drive', 'format=help'],
}


def names(kind, text):
    """The names a help listing offers"""
    out = set()
    for line in text.splitlines():
        if kind == 'device':
            m = re.match(r'name "([^"]+)"', line)
        elif kind == 'machine':
            m = re.match(r'(\S+)\s{2,}', line) if not line.startswith('Supported') else None
        elif kind == 'cpu':
            m = re.match(r'x86\s+(\S+)', line)
        elif kind == 'block':
            if line.startswith('Supported formats:'):
                out.update(line.split(':', 1)[1].split())
            continue
        else:       # accel, audiodev, display: one name per line after a title
            m = re.match(r'([a-z0-9_-]+)$', line)
        if m:
            out.add(m.group(1))
    return out


def listing(binary, kind):
    p = subprocess.run([binary] + LISTINGS[kind] + ['-nodefaults'],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=60)
    return names(kind, p.stdout)


def schema(binary):
    """query-qmp-schema: commands, events, and every enum's values

    stdin stays open until the answer is read: at the end of its input the
    monitor drops the requests it has not run yet, so writing every command
    and closing at once would lose the answer whenever QEMU reads them all
    before it runs the first.
    """
    p = subprocess.Popen([binary, '-machine', 'none', '-display', 'none',
                          '-nodefaults', '-S', '-qmp', 'stdio'],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        p.stdin.write('{"execute":"qmp_capabilities"}\n'
                      '{"execute":"query-qmp-schema"}\n')
        p.stdin.flush()
        for line in p.stdout:
            msg = json.loads(line)
            if 'error' in msg:
                raise AssertionError('%s: %s' % (binary, msg['error']))
            if isinstance(msg.get('return'), list):
                out = set()
                for e in msg['return']:
                    if e['meta-type'] in ('command', 'event'):
                        out.add('%s:%s' % (e['meta-type'], e['name']))
                    elif e['meta-type'] == 'enum':
                        out.update('enum-value:%s' % v for v in e.get('values', []))
                return out
        raise AssertionError('%s: ended without a query-qmp-schema answer: %s'
                             % (binary, p.stderr.read()[-500:]))
    finally:
        try:
            p.communicate('{"execute":"quit"}\n', timeout=60)
        except (subprocess.TimeoutExpired, BrokenPipeError):
            p.kill()
            p.communicate()


def exceptions():
    """kind -> {name: reason} from exceptions.txt ("KIND NAME REASON")"""
    out = {}
    with open(EXCEPTIONS) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            parts = line.split(None, 2)
            if len(parts) < 3:
                raise AssertionError('%s:%d: KIND NAME REASON expected' % (EXCEPTIONS, n))
            out.setdefault(parts[0], {})[parts[1]] = parts[2]
    return out


class ParityTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not os.access(STOCK, os.X_OK):
            raise AssertionError('no stock emulator at %s (scripts/deps.sh installs '
                                 'qemu-system-x86)' % STOCK)
        cls.allowed = exceptions()

    def compare(self, kind, stock, ours):
        allowed = self.allowed.get(kind, {})
        missing = sorted(stock - ours - set(allowed))
        stale = sorted(n for n in allowed if n in ours or n not in stock)
        print('%s: stock %d, ours %d; we add %d; excepted %d'
              % (kind, len(stock), len(ours), len(ours - stock), len(allowed)))
        for n in sorted(set(allowed) & (stock - ours)):
            print('  excepted: %s %s (%s)' % (kind, n, allowed[n]))
        self.assertEqual(missing, [], '%s: stock has, qemu-oc lacks' % kind)
        self.assertEqual(stale, [], '%s: listed in exceptions.txt but not a difference'
                         % kind)

    def test_listings(self):
        for kind in LISTINGS:
            with self.subTest(kind=kind):
                stock = listing(STOCK, kind)
                self.assertTrue(stock, '%s: nothing parsed from stock' % kind)
                self.compare(kind, stock, listing(BINARY, kind))

    def test_qmp_schema(self):
        stock, ours = schema(STOCK), schema(BINARY)
        self.compare('qmp', stock, ours)


if __name__ == '__main__':
    unittest.main()
