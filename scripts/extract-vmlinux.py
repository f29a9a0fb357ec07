#!/usr/bin/python3
"""Extract the uncompressed vmlinux (ELF) from an x86 bzImage.

usage: extract-vmlinux.py BZIMAGE VMLINUX

The payload's place comes from the boot protocol's setup header
(payload_offset, payload_length); its last 4 bytes are the uncompressed
size.  gzip and xz are decompressed here; lz4 and zstd with Debian's lz4
and zstd commands.  QEMU boots the result through its PVH entry, which
skips the kernel's self-decompression (slow where KVM emulates every
instruction).
"""

import gzip
import lzma
import struct
import subprocess
import sys


def main():
    src, dst = sys.argv[1:3]
    with open(src, 'rb') as f:
        img = f.read()
    if img[0x202:0x206] != b'HdrS':
        sys.exit('extract-vmlinux: %s is not a bzImage' % src)
    setup_sects = img[0x1f1] or 4
    start = (setup_sects + 1) * 512
    offset, length = struct.unpack_from('<II', img, 0x248)
    payload = img[start + offset:start + offset + length - 4]
    if payload.startswith(b'\x1f\x8b'):
        out = gzip.decompress(payload)
    elif payload.startswith(b'\xfd7zXZ\x00'):
        out = lzma.decompress(payload)
    elif payload.startswith(b'\x02\x21\x4c\x18'):
        out = subprocess.run(['lz4', '-dc'], input=payload, check=True,
                             capture_output=True).stdout
    elif payload.startswith(b'\x28\xb5\x2f\xfd'):
        out = subprocess.run(['zstd', '-dc'], input=payload, check=True,
                             capture_output=True).stdout
    else:
        sys.exit('extract-vmlinux: unknown compression %s' % payload[:6].hex())
    if not out.startswith(b'\x7fELF'):
        sys.exit('extract-vmlinux: the payload is not an ELF image')
    with open(dst, 'wb') as f:
        f.write(out)


if __name__ == '__main__':
    main()
