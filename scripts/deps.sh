#!/bin/bash
# Install the Debian packages qemu-oc needs to fetch, build and test.
# Idempotent: does nothing when every package is already installed.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
. "$TOP/scripts/steps.sh"

PKGS=(
    # upstream source fetch and unpack (dpkg-dev is deliberately absent:
    # we unpack the 3.0 (quilt) source ourselves)
    ca-certificates xz-utils patch git
    # QEMU build
    meson ninja-build pkg-config gcc make ccache
    libglib2.0-dev libpixman-1-dev libfdt-dev libslirp-dev zlib1g-dev
    # the features Debian builds qemu-system-x86 and qemu-block-extra with
    # (debian/control's Build-Depends for the x86_64 emulator; build.sh
    # configures with Debian's options): disassembler, aio, io_uring,
    # audio, eBPF, braille, capabilities, block drivers (curl, iSCSI, NFS,
    # ssh, rbd, gluster), FUSE, TLS and crypto, GTK/VTE, SDL, curses,
    # OpenGL and virgl, NUMA, smartcards, SPICE, RDMA, USB host and
    # redirection, zstd, VDE, udev, VNC SASL/JPEG/PNG, pmem, seccomp
    libcapstone-dev libaio-dev liburing-dev libjack-dev libpulse-dev
    libasound2-dev libbpf-dev libbrlapi-dev libcap-ng-dev
    libcurl4-gnutls-dev libiscsi-dev libnfs-dev libssh-dev librbd-dev
    libglusterfs-dev libfuse3-dev libgnutls28-dev nettle-dev
    libgtk-3-dev libvte-2.91-dev libsdl2-dev libncurses-dev
    libepoxy-dev libdrm-dev libgbm-dev libvirglrenderer-dev libva-dev
    libnuma-dev libcacard-dev libspice-server-dev
    librdmacm-dev libibverbs-dev libibumad-dev libusb-1.0-0-dev
    libusbredirparser-dev libzstd-dev libvdeplug-dev libsasl2-dev
    libjpeg-dev libpng-dev libpmem-dev libseccomp-dev uuid-dev
    libudev-dev
    # firmware the emulator loads
    seabios ipxe-qemu qemu-system-data
    # guest image: busybox userland for the initramfs; lz4 and zstd
    # to extract the uncompressed kernel
    busybox-static lz4 zstd
    # tests: Debian's python3, 32-bit toolchain for tiny KVM guests,
    # Debian's stock QEMU 7.2 as the migration source of reference and,
    # with its GUI modules and extra block drivers, the feature set to match
    python3 gcc-multilib qemu-system-x86 qemu-system-gui qemu-block-extra
    # the fuzz target (scripts/fuzz.sh): clang with libFuzzer and sanitizers
    clang-14 libclang-rt-14-dev
    # libvirt integration tests (libvirtd is started by hand: no systemd)
    libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients python3-libvirt
    # host tools (tools/): QMP on json-c, libvirt's C API, the terminal
    # view, the metrics endpoint; Prometheus to check and scrape metrics
    libjson-c-dev libvirt-dev libncurses-dev libmicrohttpd-dev prometheus
    # vmtop's live view is tested in a terminal multiplexer
    tmux
    # packages (make deb): build them, check them
    fakeroot lintian
    # libvirt's defaults: the domains virt-install writes, on qcow2 disks
    virtinst qemu-utils
)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
        missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
step_run deps "apt-get update" apt-get update
# libudev-dev must match the installed libudev1 exactly: a newer one would
# upgrade systemd and its libraries on the host (if the archive no longer
# has that version, the newer one it is)
for i in "${!missing[@]}"; do
    if [ "${missing[$i]}" = libudev-dev ]; then
        v=$(dpkg-query -W -f='${Version}' libudev1 2>/dev/null || true)
        if [ -n "$v" ] &&
            apt-cache madison libudev-dev 2>/dev/null | grep -q "| $v |"; then
            missing[$i]="libudev-dev=$v"
        fi
    fi
done
step_run deps "installing ${#missing[@]} Debian packages (${missing[*]:0:4} ...)" \
    apt-get install -y --no-install-recommends --no-upgrade "${missing[@]}"
