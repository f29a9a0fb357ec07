#!/bin/bash
# Install qemu-oc from the build tree (make build first): `make install`.
#
# usage: install.sh [system|tools|all]      (default: all)
#   PREFIX   where to install (default /usr, as Debian's packages do)
#   DESTDIR  a staging root prepended to every path (default: none)
#
# system: the emulator as PREFIX/bin/qemu-oc-system-x86_64 (beside
#         Debian's qemu-system-x86_64, never replacing it), its modules in
#         PREFIX/lib/x86_64-linux-gnu/qemu-oc (never Debian's qemu/: a
#         module is tied to the exact build) and its man page.  Firmware
#         and keymaps are Debian's (qemu-system-data, seabios, ipxe-qemu):
#         the emulator looks for them in PREFIX/share/qemu,
#         PREFIX/share/seabios and PREFIX/lib/ipxe/qemu (QEMU relocates
#         them with the binary), so a PREFIX other than /usr needs them
#         there.
# tools:  vmtop (PREFIX/bin), qemu-oc-balloond (PREFIX/sbin), their man
#         pages, the Prometheus rules (PREFIX/share/qemu-oc/prometheus),
#         the systemd unit and a commented default configuration
#         (SYSCONFDIR/qemu-oc/balloond.conf: /etc with PREFIX /usr, else
#         PREFIX/etc; an existing one is kept).
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
B=$TOP/build
PREFIX=${PREFIX:-/usr}
DESTDIR=${DESTDIR:-}
what=${1:-all}
case "$what" in
    system|tools|all) ;;
    *) echo "usage: install.sh [system|tools|all]" >&2; exit 2 ;;
esac
if [ "$PREFIX" = /usr ]; then
    SYSCONFDIR=/etc
    UNITDIR=/lib/systemd/system
else
    SYSCONFDIR=$PREFIX/etc
    UNITDIR=$PREFIX/lib/systemd/system
fi
D=$DESTDIR$PREFIX

need() {
    [ -e "$1" ] || { echo "install: $1 is missing (make build first)" >&2; exit 1; }
}

if [ "$what" != tools ]; then
    need "$B/qemu/qemu-system-x86_64"
    install -D -m 0755 "$B/qemu/qemu-system-x86_64" "$D/bin/qemu-oc-system-x86_64"
    install -d "$D/lib/x86_64-linux-gnu/qemu-oc"
    install -m 0644 "$B"/qemu/*.so "$D/lib/x86_64-linux-gnu/qemu-oc/"
    install -D -m 0644 "$TOP/docs/man/qemu-oc-system-x86_64.1" \
        "$D/share/man/man1/qemu-oc-system-x86_64.1"
    echo "install: the emulator and $(ls "$B"/qemu/*.so | wc -l) modules in $D"
    if [ "$PREFIX" != /usr ] && [ ! -e "$PREFIX/share/qemu/keymaps" ]; then
        echo "install: note: $PREFIX/share/qemu has no keymaps: the emulator" \
             "looks for firmware and keymaps under $PREFIX (docs/install.md)"
    fi
fi
if [ "$what" != system ]; then
    need "$B/oc/tools/vmtop"
    need "$B/oc/tools/qemu-oc-balloond"
    install -D -m 0755 "$B/oc/tools/vmtop" "$D/bin/vmtop"
    install -D -m 0755 "$B/oc/tools/qemu-oc-balloond" "$D/sbin/qemu-oc-balloond"
    install -D -m 0644 "$TOP/docs/man/vmtop.1" "$D/share/man/man1/vmtop.1"
    install -D -m 0644 "$TOP/docs/man/qemu-oc-balloond.8" \
        "$D/share/man/man8/qemu-oc-balloond.8"
    install -D -m 0644 "$TOP/tools/prometheus/qemu-oc.rules.yml" \
        "$D/share/qemu-oc/prometheus/qemu-oc.rules.yml"
    install -d "$DESTDIR$UNITDIR"
    sed -e "s|@SBINDIR@|$PREFIX/sbin|g" -e "s|@SYSCONFDIR@|$SYSCONFDIR|g" \
        "$TOP/tools/balloond/qemu-oc-balloond.service.in" \
        > "$DESTDIR$UNITDIR/qemu-oc-balloond.service"
    chmod 0644 "$DESTDIR$UNITDIR/qemu-oc-balloond.service"
    if [ -e "$DESTDIR$SYSCONFDIR/qemu-oc/balloond.conf" ]; then
        echo "install: kept $DESTDIR$SYSCONFDIR/qemu-oc/balloond.conf"
    else
        install -D -m 0644 "$TOP/tools/balloond/balloond.conf" \
            "$DESTDIR$SYSCONFDIR/qemu-oc/balloond.conf"
    fi
    echo "install: vmtop, qemu-oc-balloond, its unit and configuration in" \
         "${DESTDIR:-/}"
fi
