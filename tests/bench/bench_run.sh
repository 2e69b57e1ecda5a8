# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# Sourced by dns_bench.sh and http_bench.sh: runs a benchmark driver and never
# leaves a server behind.
#
#   bench_run NAME DRIVER.py [driver arguments...]
#
# The driver runs in the background on the client core (so a signal to the
# calling script is handled at once), with TMPDIR a fresh work directory and
# FEDGSLB_BENCH_PIDFILE the list of process groups it keeps current
# (tests/bench/benchproc.py); at exit every group still listed is killed and
# the work directory removed (kept with --keep-tmp). Exits with the driver's
# status.

bench_run() {
    local name=$1 script=$2
    shift 2
    bench_workdir=$(mktemp -d "/tmp/fedgslb-$name-bench.XXXXXX")
    chmod 755 "$bench_workdir" # servers running as another user (nginx) read files in it
    bench_pidfile="$bench_workdir/pids"
    : >"$bench_pidfile"
    bench_driver=
    bench_keep=0
    [[ " $* " == *" --keep-tmp "* ]] && bench_keep=1
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM HUP

    local client_cpu=1
    (($(nproc) >= 2)) || client_cpu=0
    FEDGSLB_BENCH_PIDFILE="$bench_pidfile" TMPDIR="$bench_workdir" taskset -c "$client_cpu" \
        /usr/bin/python3 "$script" --client-cpu "$client_cpu" "$@" &
    bench_driver=$!
    local status=0
    wait "$bench_driver" || status=$?
    bench_driver=
    exit "$status"
}

# shellcheck disable=SC2317 # called from the EXIT trap
bench_cleanup() {
    local pid
    if [[ -n "$bench_driver" ]] && kill -0 "$bench_driver" 2>/dev/null; then
        kill -TERM "$bench_driver" 2>/dev/null || true # it stops its servers itself
        wait "$bench_driver" 2>/dev/null || true
    fi
    # Process groups the driver started and did not stop (a driver killed
    # with SIGKILL).
    while read -r pid; do
        [[ "$pid" =~ ^[0-9]+$ ]] || continue
        kill -KILL -- "-$pid" 2>/dev/null || true
    done <"$bench_pidfile"
    ((bench_keep)) || rm -rf "$bench_workdir"
}
