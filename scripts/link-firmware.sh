#!/bin/bash
# Point a build-tree emulator at Debian's firmware: QEMU looks for it in
# <dir of binary>/qemu-bundle/<datadir> (the dfsg source ships no blobs).
set -euo pipefail
DIR=${1:?usage: link-firmware.sh DATADIR}
mkdir -p "$DIR"
for f in /usr/share/seabios/*.bin /usr/lib/ipxe/qemu/*.rom \
         /usr/share/qemu/kvmvapic.bin /usr/share/qemu/linuxboot*.bin \
         /usr/share/qemu/multiboot*.bin /usr/share/qemu/pvh.bin; do
    [ -e "$f" ] && ln -sfn "$f" "$DIR/$(basename "$f")"
done
# VNC's keymaps (qemu-system-data)
[ -e "$DIR/keymaps" ] || ln -sfn /usr/share/qemu/keymaps "$DIR/keymaps"
[ -e "$DIR/bios-256k.bin" ] || { echo "link-firmware: no SeaBIOS found" >&2; exit 1; }
