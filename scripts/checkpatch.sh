#!/bin/bash
# Run upstream's scripts/checkpatch.pl over our C sources and our patches.
#
# Every problem is printed.  An ERROR fails the run; so does a WARNING,
# unless scripts/checkpatch-allow.txt lists it with a reason.  An entry of
# the allow list that matches no warning fails too: what it excused is
# gone, delete it.
#
# Allow list, one entry per line (# starts a comment):
#
#   PATH:REGEX  REASON
#
#   PATH    our file as checked: a .c/.h path, or patches/NAME.patch
#   REGEX   extended regex (bash =~), matched against the warning's message
#           and against the line it is about; no run of two spaces in it
#   REASON  after two or more spaces (or a tab): why the warning must stay
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
CP=${QEMU_OC_SRC:-$TOP/build/src}/scripts/checkpatch.pl
ALLOW=${QEMU_OC_CHECKPATCH_ALLOW:-$TOP/scripts/checkpatch-allow.txt}
[ -f "$CP" ] || { echo "checkpatch: $CP missing (run make build)" >&2; exit 1; }
cd "$TOP"

# The allow list: parallel arrays of path, regex, reason, times used
a_path=() a_re=() a_why=() a_used=() a_line=()
bad_allow=0
if [ -f "$ALLOW" ]; then
    n=0
    while IFS= read -r line || [ -n "$line" ]; do
        n=$((n + 1))
        case "$line" in ''|'#'*) continue ;; esac
        if ! [[ $line =~ ^([^:[:space:]]+):(([^ 	]|' '[^ 	])+)('  '|'	')[[:space:]]*([^[:space:]].*)$ ]]; then
            echo "checkpatch: $ALLOW:$n: not PATH:REGEX  REASON: $line"
            bad_allow=1
            continue
        fi
        a_path+=("${BASH_REMATCH[1]}")
        a_re+=("${BASH_REMATCH[2]}")
        a_why+=("${BASH_REMATCH[5]}")
        a_used+=(0)
        a_line+=("$n")
    done < "$ALLOW"
fi

# checkpatch.pl's report of one file or patch, one problem per line:
# KIND<TAB>WHERE<TAB>MESSAGE<TAB>LINE (WHERE: file:line as it names them)
problems() {
    { perl "$CP" --no-tree "$@" 2>&1 || true; } | awk '
        function emit() {
            if (kind != "") {
                printf "%s\t%s\t%s\t%s\n", kind, where, msg, src
            }
            kind = ""; where = ""; msg = ""; src = ""; have_src = 0
        }
        /^(WARNING|ERROR|CHECK): / {
            emit()
            kind = $0; sub(/:.*/, "", kind)
            msg = $0; sub(/^[A-Z]+: /, "", msg)
            next
        }
        kind != "" && /^#[0-9]+: FILE: / {
            where = $0; sub(/^#[0-9]+: FILE: /, "", where); sub(/:$/, "", where)
            next
        }
        kind != "" && where != "" && !have_src && /^[+ ]/ {
            src = substr($0, 2); gsub(/\t/, " ", src); have_src = 1
            next
        }
        /^$/ || /^total: / { emit() }
        END { emit() }
    '
}

errors=0 unlisted=0 allowed=0
check() {   # PATH [checkpatch.pl arguments]
    local path=$1 kind where msg src i hit
    shift
    while IFS=$'\t' read -r kind where msg src; do
        hit=-1
        if [ "$kind" = WARNING ]; then
            for i in "${!a_path[@]}"; do
                if [ "${a_path[$i]}" = "$path" ] &&
                   { [[ $msg =~ ${a_re[$i]} ]] || [[ $src =~ ${a_re[$i]} ]]; }; then
                    hit=$i
                    break
                fi
            done
        fi
        # a patch's problems are in the upstream file it changes
        [ "${where%%:*}" = "$path" ] || where="$path: $where"
        if [ "$hit" -ge 0 ]; then
            a_used[$hit]=$((a_used[$hit] + 1))
            allowed=$((allowed + 1))
            echo "$where: $kind (allowed: ${a_why[$hit]}): $msg"
        else
            [ "$kind" = ERROR ] && errors=$((errors + 1)) || unlisted=$((unlisted + 1))
            echo "$where: $kind: $msg"
        fi
        [ -z "$src" ] || echo "    $src"
    done < <(problems "$@")
}

files=$(git ls-files -co --exclude-standard -- '*.c' '*.h' | grep -v '^build/' || true)
for f in $files; do
    check "$f" -f "$f"
done
patches=$(grep -v '^#' patches/series)
for p in $patches; do
    check "patches/$p" "patches/$p"
done

stale=0
for i in "${!a_path[@]}"; do
    if [ "${a_used[$i]}" -eq 0 ]; then
        echo "checkpatch: $ALLOW:${a_line[$i]}: matches no warning (delete it): ${a_path[$i]}:${a_re[$i]}"
        stale=$((stale + 1))
    fi
done

nf=$(echo $files | wc -w); np=$(echo $patches | wc -w)
summary="$nf source files, $np patches: $errors errors, $unlisted unlisted warnings, $allowed allowed warnings, $stale stale allow entries"
if [ $((errors + unlisted + stale + bad_allow)) -ne 0 ]; then
    echo "checkpatch: FAIL ($summary)"
    exit 1
fi
echo "checkpatch: clean ($summary)"
