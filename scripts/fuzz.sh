#!/bin/bash
# Build a libFuzzer target (ASan + UBSan, outside the QEMU build) into
# build/fuzz and run it.  See tests/fuzz/README.md.  Targets:
#   balloon-stats (default)  the balloon statistics code:
#       tests/fuzz/fuzz-balloon-stats.c with balloon/stats-buffer.c
#       and balloon/stats-requests.c; their QAPI types (one enum) are
#       generated from qapi/balloon-stats.json by upstream's qapi-gen.py
#       (in build/src: scripts/prepare-src.sh fetches it)
#   snapshot-wire               the host tools' checks of what peers send:
#       tests/fuzz/fuzz-snapshot-wire.c with tools/lib/vm-snapshot.c and
#       tools/lib/vm-snapshot-wire.c
#   qmp-client                  the host tools' QMP client, fed a peer's
#       bytes: tests/fuzz/fuzz-qmp-client.c with tools/lib/qmp-client.c,
#       tools/lib/qmp-wire.c and tools/lib/vm-snapshot.c
#   qmp-async                   the QMP connection the workers use, on an
#       event loop, fed a peer's bytes: tests/fuzz/fuzz-qmp-async.c with
#       tools/lib/qmp-async.c, tools/lib/qmp-wire.c, tools/lib/vm-snapshot.c
#   collector-reader            the reader of the collector's protocol:
#       tests/fuzz/fuzz-collector-reader.c with
#       tools/lib/collector-client.c and the snapshot's wire form
#
# usage: fuzz.sh [--target NAME] [RUNS | --replay]
#        fuzz.sh [RUNS]      fuzz RUNS executions (default 1000000) from
#                            the seeds, the regression inputs and what
#                            earlier runs kept (build/fuzz/corpus); ends
#                            with the number of executions and findings
#        fuzz.sh --replay    run every seed and regression input, then a
#                            short deterministic fuzzing run (make check)
set -uo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
F=$TOP/build/fuzz

target=balloon-stats
if [ "${1:-}" = --target ]; then
    target=${2:-}
    shift 2
fi
case $target in
balloon-stats)
    SRCS=(tests/fuzz/fuzz-balloon-stats.c balloon/stats-buffer.c
          balloon/stats-requests.c)
    DEPS=("${SRCS[@]}" tests/fuzz/shim/qemu/osdep.h
          include/balloon/stats-buffer.h
          include/balloon/stats-requests.h qapi/balloon-stats.json
          scripts/fuzz.sh)
    QAPI_GEN=$F/qapi-gen        # (generated headers: qapi/*.h)
    INCLUDES=(-Itests/fuzz/shim -Iinclude -I"$QAPI_GEN")
    PKGS=(glib-2.0)
    SEEDS=$TOP/tests/fuzz/corpus
    REGRESSIONS=$TOP/tests/fuzz/regressions
    KEPT=$F/corpus
    MAXLEN=4096
    ;;
snapshot-wire)
    SRCS=(tests/fuzz/fuzz-snapshot-wire.c tools/lib/vm-snapshot.c
          tools/lib/vm-snapshot-wire.c)
    DEPS=("${SRCS[@]}" tests/fuzz/fuzz-tools.h tools/lib/vm-snapshot.h
          tools/lib/vm-snapshot-wire.h
          scripts/fuzz.sh)
    INCLUDES=(-Itools/lib)
    PKGS=(glib-2.0 json-c)
    SEEDS=$TOP/tests/fuzz/corpus-snapshot-wire
    REGRESSIONS=$TOP/tests/fuzz/regressions-snapshot-wire
    KEPT=$F/corpus-snapshot-wire
    MAXLEN=16384        # (a frame of a few VMs)
    ;;
qmp-client)
    SRCS=(tests/fuzz/fuzz-qmp-client.c tools/lib/qmp-client.c
          tools/lib/qmp-wire.c tools/lib/vm-snapshot.c)
    DEPS=("${SRCS[@]}" tests/fuzz/fuzz-tools.h tools/lib/qmp-client.h
          tools/lib/qmp-wire.h tools/lib/vm-snapshot.h
          scripts/fuzz.sh)
    INCLUDES=(-Itools/lib)
    PKGS=(glib-2.0 json-c)
    SEEDS=$TOP/tests/fuzz/corpus-qmp-client
    REGRESSIONS=$TOP/tests/fuzz/regressions-qmp-client
    KEPT=$F/corpus-qmp-client
    MAXLEN=16384        # (less than a socket buffer: written at once)
    ;;
qmp-async)
    SRCS=(tests/fuzz/fuzz-qmp-async.c tools/lib/qmp-async.c
          tools/lib/qmp-client.c tools/lib/qmp-wire.c tools/lib/vm-snapshot.c)
    DEPS=("${SRCS[@]}" tests/fuzz/fuzz-tools.h tools/lib/qmp-async.h
          tools/lib/qmp-client.h tools/lib/qmp-wire.h
          tools/lib/vm-snapshot.h scripts/fuzz.sh)
    INCLUDES=(-Itools/lib)
    PKGS=(glib-2.0 json-c)
    # the same input as qmp-client's: its seeds, and regressions of its own
    SEEDS=$TOP/tests/fuzz/corpus-qmp-client
    REGRESSIONS=$TOP/tests/fuzz/regressions-qmp-async
    KEPT=$F/corpus-qmp-async
    MAXLEN=16384
    ;;
collector-reader)
    SRCS=(tests/fuzz/fuzz-collector-reader.c tools/lib/collector-client.c
          tools/lib/vm-snapshot.c tools/lib/vm-snapshot-wire.c)
    DEPS=("${SRCS[@]}" tests/fuzz/fuzz-tools.h tools/lib/collector-client.h
          tools/lib/vm-snapshot.h
          tools/lib/vm-snapshot-wire.h scripts/fuzz.sh)
    INCLUDES=(-Itools/lib)
    PKGS=(glib-2.0 json-c)
    SEEDS=$TOP/tests/fuzz/corpus-collector-reader
    REGRESSIONS=$TOP/tests/fuzz/regressions-collector-reader
    KEPT=$F/corpus-collector-reader
    MAXLEN=16384
    ;;
*)
    echo "usage: $0 [--target balloon-stats|snapshot-wire|qmp-client|qmp-async|collector-reader] [RUNS | --replay]" >&2
    exit 2
    ;;
esac
BIN=$F/fuzz-$target
# (a target without regression inputs yet has no directory in git)
mkdir -p "$REGRESSIONS"
shopt -s nullglob

mode=fuzz
runs=1000000
case "${1:-}" in
    --replay) mode=replay ;;
    '') ;;
    *[!0-9]*) echo "usage: $0 [RUNS] | --replay" >&2; exit 2 ;;
    *) runs=$1 ;;
esac

CC=$(command -v clang-14 || command -v clang) || {
    echo "fuzz: clang not found (apt-get install clang-14 libclang-rt-14-dev)" >&2
    exit 1
}

# build (again) when a source is newer than the binary
mkdir -p "$F"
cd "$TOP" || exit 1
stale=0
[ -x "$BIN" ] || stale=1
for s in "${DEPS[@]}"; do
    [ "$s" -nt "$BIN" ] && stale=1
done
if [ $stale = 1 ] && [ -n "${QAPI_GEN:-}" ]; then
    # the QAPI module on its own, as the QEMU build generates it
    SRC=$TOP/build/src
    [ -f "$SRC/scripts/qapi-gen.py" ] || {
        echo "fuzz: $SRC/scripts/qapi-gen.py missing (run scripts/prepare-src.sh)" >&2
        exit 1
    }
    rm -rf "$QAPI_GEN"
    mkdir -p "$QAPI_GEN/schema" "$QAPI_GEN/qapi"
    cp qapi/balloon-stats.json "$QAPI_GEN/schema/"
    echo "{ 'include': 'balloon-stats.json' }" > "$QAPI_GEN/schema/fuzz.json"
    /usr/bin/python3 "$SRC/scripts/qapi-gen.py" -b -o "$QAPI_GEN/qapi" \
        "$QAPI_GEN/schema/fuzz.json" || {
        echo "fuzz: qapi-gen.py failed" >&2
        exit 1
    }
    # (and what they include: the real qemu/osdep.h gives typedefs.h)
    mkdir -p "$QAPI_GEN/qemu"
    cp "$SRC/include/qapi/util.h" "$QAPI_GEN/qapi/"
    cp "$SRC/include/qemu/typedefs.h" "$QAPI_GEN/qemu/"
fi
if [ $stale = 1 ]; then
    echo "fuzz: building $BIN"
    # shellcheck disable=SC2046
    "$CC" -g -O1 -fno-omit-frame-pointer -Wall -Wextra \
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
        "${INCLUDES[@]}" $(pkg-config --cflags "${PKGS[@]}") \
        "${SRCS[@]}" $(pkg-config --libs "${PKGS[@]}") -o "$BIN.new" || {
        echo "fuzz: build failed" >&2
        exit 1
    }
    mv "$BIN.new" "$BIN"
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

if [ $mode = replay ]; then
    # each input on its own (a failure names it), then fuzz a little
    fail=0
    n=0
    for f in "$SEEDS"/* "$REGRESSIONS"/*; do
        n=$((n + 1))
        if ! out=$("$BIN" "$f" 2>&1); then
            echo "$out" | grep -E 'invariant|ERROR|SUMMARY' | head -5
            echo "fuzz: FAIL ${f#"$TOP"/} (reproduce: FUZZ_TRACE=1 $BIN $f)"
            fail=1
        fi
    done
    echo "fuzz: replayed $n inputs"
    [ $fail = 0 ] || exit 1
    scratch=$(mktemp -d "$F/replay.XXXXXX")
    trap 'rm -rf "$scratch"' EXIT
    out=$("$BIN" -seed=1 -runs=50000 -max_len="$MAXLEN" -timeout=10 \
        -artifact_prefix="$scratch/" -print_final_stats=1 \
        "$scratch" "$SEEDS" "$REGRESSIONS" 2>&1)
    rc=$?
    execs=$(echo "$out" | sed -n 's/^stat::number_of_executed_units: *//p')
    echo "fuzz: short run: ${execs:-0} executions"
    if [ $rc -ne 0 ]; then
        echo "$out" | grep -E 'invariant|ERROR|SUMMARY|Test unit written' | head -10
        exit 1
    fi
    exit 0
fi

# fuzz: new inputs go to $KEPT (build/fuzz/corpus*), findings to
# build/fuzz/findings
mkdir -p "$KEPT" "$F/findings"
before=$(ls "$F/findings")
log=$F/fuzz-$target.log
echo "fuzz: $target: $runs executions (log: build/fuzz/fuzz-$target.log)"
start=$SECONDS
"$BIN" -runs="$runs" -max_len="$MAXLEN" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$F/findings/" -print_final_stats=1 \
    "$KEPT" "$SEEDS" "$REGRESSIONS" > "$log" 2>&1
rc=$?
secs=$((SECONDS - start))
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
new=$(comm -13 <(echo "$before" | sort) <(ls "$F/findings" | sort))
nfind=$(printf '%s' "$new" | grep -c . || true)
if [ $rc -ne 0 ]; then
    grep -E 'invariant|ERROR|SUMMARY' "$log" | head -5
    [ "$nfind" -gt 0 ] || nfind=1      # crashed without an artifact
fi
for f in $new; do
    echo "fuzz: finding build/fuzz/findings/$f"
    echo "      reproduce: FUZZ_TRACE=1 $BIN $F/findings/$f"
done
seed=$(sed -n 's/^INFO: Seed: *//p' "$log" | head -1)
echo "fuzz: ${execs:-0} executions in ${secs} s (seed ${seed:-?}), findings: $nfind"
[ "$nfind" -eq 0 ]
