#!/usr/bin/env bash
# Run the README's test command (`.ci/run`) while competing CPU load keeps every CPU busy, to
# check that no test fails or times out only because the host was busy.
#
#   scripts/loaded-ci.sh                     one round, one busy loop per CPU
#   scripts/loaded-ci.sh --rounds 5          five rounds in a row, same load throughout
#   scripts/loaded-ci.sh --load 2            two busy loops per CPU (load average ~ 2 x nproc)
#   scripts/loaded-ci.sh --max-minutes 90    stop the load after 90 minutes even if a round hangs
#
# The load is `nproc x LOAD` shell busy loops at normal priority, each under `timeout` so none
# outlives the bound even if this script is killed with SIGKILL. They are stopped when the
# script exits, on success, failure or Ctrl-C. Prints one line per round (pass/fail, wall time)
# and exits 0 only when every round passed.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=1
load=1
max_minutes=240
usage() {
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds="${2:?--rounds needs a number}"; shift 2 ;;
        --load) load="${2:?--load needs a number}"; shift 2 ;;
        --max-minutes) max_minutes="${2:?--max-minutes needs a number}"; shift 2 ;;
        -h|--help) usage ;;
        *) echo "loaded-ci: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
done
for n in "$rounds" "$load" "$max_minutes"; do
    case "$n" in
        ''|*[!0-9]*|0) echo "loaded-ci: $n is not a positive whole number" >&2; exit 2 ;;
    esac
done

loops=$(( $(nproc) * load ))
pids=()
child=""
stop_load() {
    [ "${#pids[@]}" -gt 0 ] || return 0
    # `timeout` passes the TERM on to its busy loop; wait reaps both.
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
    pids=()
}
# A signal stops the running round first (its whole process group: cargo, nextest and the
# tests, as Ctrl-C on `.ci/run` would), then the load.
on_signal() {
    if [ -n "$child" ]; then
        kill "-$1" -- "-$child" 2>/dev/null || true
        wait "$child" 2>/dev/null || true
    fi
    stop_load
    exit "$2"
}
trap stop_load EXIT
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM

for _ in $(seq "$loops"); do
    timeout "${max_minutes}m" sh -c 'while :; do :; done' &
    pids+=("$!")
done
echo "loaded-ci: $loops busy loops on $(nproc) CPUs (stopped on exit, at the latest after" \
     "${max_minutes} min); $rounds round(s) of .ci/run"

failed=0
summary=()
for round in $(seq "$rounds"); do
    echo "loaded-ci: round $round/$rounds starts, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    start=$(date +%s)
    # In its own process group, so a signal to this script can stop the whole round; `wait`
    # (unlike a foreground command) lets the traps run at once.
    setsid .ci/run &
    child=$!
    if wait "$child"; then result=pass; else result="FAIL (exit $?)"; failed=$((failed + 1)); fi
    child=""
    secs=$(( $(date +%s) - start ))
    line="round $round/$rounds: $result in $((secs / 60))m$((secs % 60))s, load average at the end"
    line="$line $(cut -d' ' -f1-3 /proc/loadavg)"
    summary+=("$line")
    echo "loaded-ci: $line"
done

echo "loaded-ci: summary"
printf '  %s\n' "${summary[@]}"
[ "$failed" -eq 0 ]
