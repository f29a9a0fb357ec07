#!/bin/bash
# Turn edits of upstream files in build/src into a patch of patches/.
#
# usage: refresh-patch.sh NAME.patch [FILE...]
#
#   Edit upstream files in build/src (a git tree: tag "pristine" plus one
#   commit per applied patch), then:
#   - existing patch: its header is kept, its diff is regenerated against the
#     tree before that patch, for the files it touched plus any FILE given;
#   - new patch: FILEs are required; the diff is taken against the applied
#     series, a header template is written and the patch is added to series.
# Then run `make build`: the series is re-applied from pristine.
# A file should be changed by one patch only; refreshing an earlier patch
# that shares a file with a later one would fold the later change in.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
SRC=$TOP/build/src
NAME=${1:?usage: refresh-patch.sh NAME.patch [FILE...]}
NAME=$(basename "$NAME")
shift
P=$TOP/patches/$NAME

if [ -f "$P" ]; then
    base=$(git -C "$SRC" log --format=%H --grep="^$NAME\$" -n 1)
    [ -n "$base" ] || { echo "refresh-patch: $NAME is not applied in build/src" >&2; exit 1; }
    base="$base^"
    files=$( (sed -n 's|^+++ b/||p' "$P"; printf '%s\n' "$@") | sort -u)
    header=$(sed '/^diff --git /,$d' "$P")
else
    [ $# -gt 0 ] || { echo "refresh-patch: a new patch needs the files it changes" >&2; exit 1; }
    base=HEAD
    files=$(printf '%s\n' "$@" | sort -u)
    header=$(printf 'From: %s\nSubject: %s\n\nWhy this hook is needed, and what it calls in our files.\n\nSigned-off-by: %s\n---' \
        "$(git -C "$TOP" config user.name || echo qemu-oc) <$(git -C "$TOP" config user.email || echo qemu-oc@localhost)>" \
        "${NAME%.patch}" "$(git -C "$TOP" config user.name || echo qemu-oc) <$(git -C "$TOP" config user.email || echo qemu-oc@localhost)>")
    grep -qx "$NAME" "$TOP/patches/series" || echo "$NAME" >> "$TOP/patches/series"
fi
# new files must be known to git to show up in the diff
git -C "$SRC" add -N -- $files 2>/dev/null || true
diff=$(git -C "$SRC" diff --no-color "$base" -- $files)
[ -n "$diff" ] || { echo "refresh-patch: no changes in $files" >&2; exit 1; }
printf '%s\n%s\n' "$header" "$diff" > "$P"
echo "refresh-patch: wrote patches/$NAME ($(echo "$diff" | grep -c '^diff --git') files)"
