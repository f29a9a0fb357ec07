#!/bin/bash
# Build qemu-oc: fetch and verify upstream, lay our files and patches over it,
# configure once, build qemu-system-x86_64 (and, when asked, qtests) with
# ccache. The emulator ends up at build/qemu-system-x86_64.
#
# usage: build.sh [NINJA-TARGET...]   (extra targets, e.g. tests/qtest/qmp-test)
#
# With QEMU_OC_SANITIZERS=1 the same source is built with ASan and UBSan
# (configure --enable-sanitizers) in its own directory, build/asan, and
# the emulator is build/asan/qemu-system-x86_64 (scripts/sanitize.sh).
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
B=$TOP/build
. "$TOP/scripts/upstream.conf"
PKGVERSION="qemu-oc $(cat "$TOP/VERSION") (Debian $VERSION)"

export PYTHON=/usr/bin/python3
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/qemu-oc/ccache}
export CCACHE_BASEDIR=$B

. "$TOP/scripts/steps.sh"
"$TOP/scripts/deps.sh"

# one build at a time in this tree (helpers and make targets may overlap)
mkdir -p "$B"
exec 9>"$B/.build.lock"
flock 9
"$TOP/scripts/fetch-upstream.sh" "$B/pristine"
"$TOP/scripts/prepare-src.sh" "$B/pristine" "$B/src"

QBUILD=$B/qemu
VARIANT_ARGS=()
if [ "${QEMU_OC_SANITIZERS:-0}" = 1 ]; then
    QBUILD=$B/asan
    # (the D-Bus display's generated code goes into a non-PIC static
    # library that its module cannot link under the sanitizers)
    VARIANT_ARGS=(--enable-sanitizers --disable-dbus-display)
fi

# Debian's feature set for its system emulators: the options debian/rules
# takes from debian/control (debian/extract-config-opts) and its own
# (modules, no Xen); the packages are in scripts/deps.sh.  No docs, and
# no bzip2 (Debian has none; a host with libbz2-dev would get it)
mapfile -t DEBIAN_ARGS < <(cd "$B/pristine" &&
    sh debian/extract-config-opts linux-amd64 debian/control |
    tr ' ' '\n' | grep -v -e '^--enable-docs$' -e '^$')
# Installed as Debian installs its own (prefix /usr, firmware and keymaps
# from Debian's packages), but with our own suffix: modules in
# /usr/lib/x86_64-linux-gnu/qemu-oc, never Debian's qemu/ (a module is tied
# to the exact build), data in /usr/share/qemu-oc (scripts/install.sh)
CONFIGURE_ARGS=(
    "${VARIANT_ARGS[@]}"
    --prefix=/usr --sysconfdir=/etc --localstatedir=/var
    --libdir=/usr/lib/x86_64-linux-gnu --libexecdir=/usr/lib/qemu-oc
    --with-suffix=qemu-oc
    --firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu
    --disable-install-blobs
    --target-list=x86_64-softmmu
    "${DEBIAN_ARGS[@]}" --enable-modules --disable-xen --disable-bzip2
    --disable-docs --disable-werror --disable-tools --disable-guest-agent
    --disable-user --with-pkgversion="$PKGVERSION"
    --cc="ccache-gcc"
)
# configure wants a compiler name without spaces: a tiny ccache wrapper.
# It adds -Werror for our own C files (prepare-src.sh's list of them): a
# warning in our code fails the build, upstream's stay warnings
# (--disable-werror above)
mkdir -p "$B/bin"
cat > "$B/bin/ccache-gcc.new" <<EOF
#!/bin/sh
for a in "\$@"; do
    case "\$a" in
    ../src/*.c)
        if grep -qxF "\${a#../src/}" "$B/src/.git/qemu-oc-overlay"; then
            set -- "\$@" -Werror
        fi
        break ;;
    esac
done
exec ccache gcc "\$@"
EOF
chmod +x "$B/bin/ccache-gcc.new"
cmp -s "$B/bin/ccache-gcc.new" "$B/bin/ccache-gcc" ||
    mv "$B/bin/ccache-gcc.new" "$B/bin/ccache-gcc"
rm -f "$B/bin/ccache-gcc.new"
export PATH=$B/bin:$PATH

stamp="$QBUILD/.qemu-oc-configure"
want="${CONFIGURE_ARGS[*]}"
if [ ! -f "$QBUILD/build.ninja" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    rm -rf "$QBUILD" "$(step_log configure)"
    mkdir -p "$QBUILD"
    (cd "$QBUILD" &&
     step_run configure "configuring ${QBUILD#"$TOP"/}" \
         "$B/src/configure" "${CONFIGURE_ARGS[@]}")
    echo "$want" > "$stamp"
fi

# the emulator and its modules (the .so files beside it: block drivers,
# displays, audio, USB, ...), which it loads from its own directory
mapfile -t MODULES < <(ninja -C "$QBUILD" -t targets all |
    sed -n 's/^\([a-z0-9_-]*\.so\): .*/\1/p')
TARGETS=(qemu-system-x86_64 "${MODULES[@]}" "$@")
work=$(ninja -C "$QBUILD" -n "${TARGETS[@]}")
if grep -q '^\[' <<< "$work"; then
    step_ninja build "building qemu-system-x86_64, ${#MODULES[@]} modules${1:+ and $# more targets}" \
        -C "$QBUILD" "${TARGETS[@]}"
fi

# (a build-tree emulator finds its data under qemu-bundle/<datadir>)
"$TOP/scripts/link-firmware.sh" "$QBUILD/qemu-bundle/usr/share/qemu-oc"
if [ "$QBUILD" = "$B/qemu" ]; then
    ln -sfn qemu/qemu-system-x86_64 "$B/qemu-system-x86_64"
    # the host tools (vmtop, ...) at build/tools/
    "$TOP/scripts/build-tools.sh"
fi
