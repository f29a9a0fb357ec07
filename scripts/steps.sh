# Shared by the build scripts (sourced): a long step says what it does and
# how far it is, and its tools' output goes to a log file under build/logs/
# whose path is printed when the step fails (with the log's last lines).
#
#   step_run NAME WHAT CMD...     run CMD, output to build/logs/NAME.log
#   step_ninja NAME WHAT ARGS...  run ninja ARGS the same way, printing
#                                 "NAME: DONE/TOTAL" as it goes (in place on
#                                 a terminal, else at every tenth)
#
# The caller sets TOP (the repository).

STEP_LOGS=$TOP/build/logs

step_log() {
    mkdir -p "$STEP_LOGS"
    echo "$STEP_LOGS/$1.log"
}

step_failed() {
    local name=$1 log=$2
    echo "$name: failed; the end of ${log#"$TOP"/}:" >&2
    tail -n 30 "$log" | sed 's/^/  | /' >&2
    echo "$name: full log: ${log#"$TOP"/}" >&2
}

step_run() {
    local name=$1 what=$2 log
    shift 2
    log=$(step_log "$name")
    echo "$name: $what (log: ${log#"$TOP"/})"
    if ! "$@" >> "$log" 2>&1; then
        step_failed "$name" "$log"
        return 1
    fi
}

# ninja's "[DONE/TOTAL] ..." lines on stdin: progress on stdout
step_progress() {
    local name=$1 tty=$2 line done total last=-1 shown=0
    while IFS= read -r line; do
        case "$line" in
        \[*/*\]*) ;;
        *) continue ;;
        esac
        done=${line#[}; done=${done%%/*}
        total=${line#*/}; total=${total%%]*}
        case "$done$total" in *[!0-9]*|'') continue ;; esac
        if [ "$tty" = 1 ]; then
            printf '\r%s: %s/%s' "$name" "$done" "$total"
            shown=1
        elif [ $((done * 10 / total)) -gt "$last" ]; then
            last=$((done * 10 / total))
            echo "$name: $done/$total"
        fi
    done
    [ "$shown" = 1 ] && printf '\n'
    return 0
}

step_ninja() {
    local name=$1 what=$2 log tty=0 rc
    shift 2
    log=$(step_log "$name")
    [ -t 1 ] && tty=1
    echo "$name: $what (log: ${log#"$TOP"/})"
    set +e
    ninja "$@" 2>&1 | tee -a "$log" | step_progress "$name" "$tty"
    rc=${PIPESTATUS[0]}
    set -e
    if [ "$rc" -ne 0 ]; then
        step_failed "$name" "$log"
        return 1
    fi
}
