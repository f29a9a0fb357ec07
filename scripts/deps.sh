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
    # firmware the emulator loads
    seabios ipxe-qemu qemu-system-data
    # guest image: busybox userland for the initramfs; lz4 and zstd
    # to extract the uncompressed kernel
    busybox-static lz4 zstd
    # tests: Debian's python3, 32-bit toolchain for tiny KVM guests,
    # Debian's stock QEMU 7.2 as the migration source of reference
    python3 gcc-multilib qemu-system-x86
    # the fuzz target (scripts/fuzz.sh): clang with libFuzzer and sanitizers
    clang-14 libclang-rt-14-dev
    # libvirt integration tests (libvirtd is started by hand: no systemd)
    libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients python3-libvirt
    # host tools (tools/): QMP on json-c, libvirt's C API, the terminal
    # view, the metrics endpoint; Prometheus to check and scrape metrics
    libjson-c-dev libvirt-dev libncurses-dev libmicrohttpd-dev prometheus
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
step_run deps "installing ${#missing[@]} Debian packages (${missing[*]:0:4} ...)" \
    apt-get install -y --no-install-recommends "${missing[@]}"
