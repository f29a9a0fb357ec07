#!/bin/bash
# Lay qemu-oc over a pristine upstream tree.
#
# usage: prepare-src.sh PRISTINE SRC
#
# SRC is a git work tree: tag "pristine" is Debian's source as unpacked, and
# each patch of patches/series is one commit on top (message = patch file
# name). The series is re-applied only when patches/ changed; only the files
# that differ get new mtimes, so ninja rebuilds what the change touched.
# Our own files are symlinked into SRC at their paths, so editing one of them
# needs no re-copy at all.
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
PRISTINE=$(cd "${1:?usage: prepare-src.sh PRISTINE SRC}" && pwd)
SRC=${2:?usage: prepare-src.sh PRISTINE SRC}
# the series to apply (scripts/check-series.sh passes a prefix of ours)
PATCHES=${QEMU_OC_PATCHES:-$TOP/patches}

# Directories of ours that mirror QEMU's tree and are laid over it.
OVERLAY_DIRS="accel balloon hw include monitor qapi target tests/qtest vcpu-runstates"

git_src() {
    git -C "$SRC" -c user.name=qemu-oc -c user.email=qemu-oc@localhost \
        -c advice.detachedHead=false "$@"
}

if [ ! -d "$SRC/.git" ]; then
    echo "prepare-src: creating $SRC from $PRISTINE"
    rm -rf "$SRC"
    cp -a "$PRISTINE" "$SRC"
    rm -f "$SRC/.qemu-oc-pristine"
    git_src init -q
    git_src add -A -f .
    git_src commit -q -m pristine
    git_src tag pristine
fi

# 1. the patch series
want=$(cd "$PATCHES" && cat series $(grep -v '^#' series) 2>/dev/null | sha256sum | cut -d' ' -f1)
have=$(cat "$SRC/.git/qemu-oc-series" 2>/dev/null || true)
if [ "$want" != "$have" ]; then
    echo "prepare-src: applying patches/series"
    git_src reset -q --hard pristine
    while read -r p; do
        case "$p" in ''|'#'*) continue ;; esac
        if ! git_src apply --index --whitespace=nowarn "$PATCHES/$p"; then
            echo "prepare-src: patch $p does not apply" >&2
            git_src reset -q --hard
            exit 1
        fi
        git_src commit -q --allow-empty -m "$p"
    done < "$PATCHES/series"
    echo "$want" > "$SRC/.git/qemu-oc-series"
fi

# 2. our files, as symlinks
list="$SRC/.git/qemu-oc-overlay"
new=$(mktemp)
(cd "$TOP" && for d in $OVERLAY_DIRS; do
    if [ -d "$d" ]; then
        find "$d" -type f ! -name '*~' ! -name '.*'
    fi
done) | sort > "$new"
if [ -f "$list" ]; then
    # drop links to files we no longer have
    comm -23 "$list" "$new" | while read -r f; do
        [ -L "$SRC/$f" ] && rm -f "$SRC/$f"
    done
fi
while read -r f; do
    if [ -e "$SRC/$f" ] && [ ! -L "$SRC/$f" ]; then
        echo "prepare-src: $f exists upstream; change it with a patch instead" >&2
        exit 1
    fi
    if [ "$(readlink "$SRC/$f" 2>/dev/null)" != "$TOP/$f" ]; then
        mkdir -p "$SRC/$(dirname "$f")"
        ln -sfn "$TOP/$f" "$SRC/$f"
    fi
done < "$new"
mv "$new" "$list"
