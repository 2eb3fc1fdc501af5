#!/usr/bin/env bash
# The echo and spawn comparison (issue 10, item 4; method and results in BENCHMARKS.md).
#
# Echo: the servers in bench/examples/echo_{shrapnel,tokio,may,epoll,uring}.rs and
# bench/go/echo.go (Go, GOMAXPROCS=1, if golang-go is installed or installable with apt)
# behave identically: accept on 127.0.0.1; per connection read up to 4096 bytes and write
# them back until EOF. Two have no runtime at all and are the floors: `epoll`, a raw
# edge-triggered readiness loop, and `uring`, a raw io_uring completion loop (one system
# call per loop turn for every connection's receive and send; a kernel that refuses
# io_uring makes its runs fail, reported as such). The report sets them against tokio.
# shrapnel runs twice: `shrapnel` with a guarded stack per connection coroutine, and
# `shrapnel-shared` (`echo_shrapnel --shared`) with every connection coroutine on the
# scheduler's shared run stack.
# For each round, each connection count C and each server in turn (A B C … A B C …: the
# servers interleaved, not one after the other), a fresh server runs pinned to CPU 0
# (`taskset -c 0`) and bench/examples/echo_load.rs pinned to CPU 1 keeps C connections in a
# closed loop of 100-byte requests. Measured per run:
#   - req/s, p50 and p99 latency over a window after a warm-up (echo_load);
#   - the server's CPU time per request: utime + stime of the whole process from
#     /proc/PID/stat at the window's edges, divided by the requests in the window;
#   - system calls per request, in a second, shorter window of the same server:
#     `perf stat -e raw_syscalls:sys_enter -p PID` (every thread), or `strace -c -f -p PID`
#     where perf cannot count (then requests = the server's response writes strace saw:
#     strace attaches late and slows the server, so its numbers are rougher);
# and per round and server, RSS per idle connection: the server's VmRSS with IDLE held idle
# connections (each served one request first, then idle IDLE_SECONDS, default 3) minus its
# VmRSS with none, over IDLE.
# The report is the median over the rounds, and beside each peer's value the ratios
# shrapnel/peer and shrapnel-shared/peer.
#
# Spawn: bench/examples/spawn_{shrapnel,tokio}.rs spawn N coroutines / current-thread tasks
# that each sleep 1 s (N = 10k, 100k, 1M), a fresh process per case and round: time to
# spawn, total time, peak RSS (getrusage maxrss). A case that fails (shrapnel's guarded
# stacks run out of kernel memory mappings past ~30k) is reported as `failed: <its error>`.
# `spawn_shrapnel --mode guarded` gives each coroutine its own guarded stack, `--mode shared`
# runs them all on the shared run stack.
#
# Cores (issue 12, item 5): `--cores N` (or a list, `--cores 1,2`) runs instead the echo
# servers with N threads each: shrapnel with `--cores N` (run_per_core, scheduler i pinned
# to CPU i when the load generator has CPUs of its own, else unpinned like the peers'
# threads; an SO_REUSEPORT listener per scheduler), tokio with `--workers N` (a
# multi-thread runtime; N = 1 keeps the current-thread one), may with `--workers N`, Go
# with GOMAXPROCS=N, the floors `epoll` and `uring` with `--workers N` (a thread and an
# SO_REUSEPORT listener each); and `shrapnel-spin`, the same shrapnel server with each scheduler
# spinning up to IDLE_SPIN_US (30) µs before it blocks (`RuntimeConfig::idle_spin`, set
# through SHRAPNEL_BENCH_IDLE_SPIN_US); C = 100 and 1000 connections, no idle or spawn runs. The server runs
# on CPUs 0..N-1 (`taskset -c 0-(N-1)`); the load generator on the CPUs left (N..) if
# there are any, else unpinned, sharing the server's CPUs (2 server cores on a 2-CPU
# machine). It drives the connections from min(N, CPUs left) threads (LOAD_THREADS to
# choose; 1 when it shares the server's CPUs, so it takes as little from the server as it
# can). Its own CPU use over each window is measured (getrusage) and reported beside the
# server's, as a percentage of one CPU. Results in bench/target/echo/cores.txt.
#
# With --profiling (issue 13): what a running CPU profile costs. Two servers only,
# `shrapnel` and `shrapnel-profiled` (the same server with a CPU profile running the whole
# time, SHRAPNEL_BENCH_PROFILE=1: 99 Hz of CPU time per scheduler thread), interleaved at
# 100 and 1,000 connections; the profiled one's cells carry shrapnel / shrapnel-profiled.
# Results in bench/target/echo/profiling.txt.
#
# Usage: bench/echo.sh [--echo-only | --spawn-only | --cores N[,N...] | --profiling] [--quick]
#   --quick: one round, 1 s windows, C = 1 and 100 (100 with --cores), 1 000 idle
#   connections, N up to 100k (for trying the script; not for numbers).
# Env: ROUNDS (3), SECONDS_PER_RUN (3), SYSCALL_SECONDS (1), IDLE (10000),
#      SYSCALL_TOOL (perf, strace or none; default perf if it can count, else strace),
#      LOAD_THREADS (with --cores: the load generator's threads; default above),
#      IDLE_SPIN_US (with --cores: shrapnel-spin's window, 30).
# Output: markdown tables on stdout; raw lines in bench/target/echo/results.txt.
# Installs what it needs with apt (taskset, python3, strace if perf cannot count, golang-go).
# About 8 minutes on 2 CPUs, the build excluded; `--cores 1,2` about 9.
set -euo pipefail

cd "$(dirname "$0")/.."

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d' >&2
    exit 2
}

do_echo=1
do_spawn=1
quick=0
profiling=0
cores_list=()
while [ $# -gt 0 ]; do
    case "$1" in
        --echo-only) do_spawn=0 ;;
        --spawn-only) do_echo=0 ;;
        --quick) quick=1 ;;
        --profiling) profiling=1 do_spawn=0 ;;
        --cores)
            [ $# -ge 2 ] && [[ "$2" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || usage
            IFS=, read -r -a cores_list <<<"$2"
            do_spawn=0
            shift
            ;;
        *) usage ;;
    esac
    shift
done

ROUNDS="${ROUNDS:-3}"
SECONDS_PER_RUN="${SECONDS_PER_RUN:-3}"
SYSCALL_SECONDS="${SYSCALL_SECONDS:-1}"
IDLE="${IDLE:-10000}"
CONNS=(1 100 1000)
SPAWN_NS=(10000 100000 1000000)
if [ "$quick" = 1 ]; then
    ROUNDS=1 SECONDS_PER_RUN=1 IDLE=1000
    CONNS=(1 100)
    SPAWN_NS=(10000 100000)
fi
# With --cores: a single connection would keep one core busy at most. With --profiling:
# the loaded cases.
if [ "${#cores_list[@]}" -gt 0 ] || [ "$profiling" = 1 ]; then
    CONNS=(100 1000)
    [ "$quick" = 1 ] && CONNS=(100)
fi

say() { echo "echo.sh: $*" >&2; }

# apt-get, as root or through sudo; `apt-get update` once per run, before the first install.
apt_updated=0
apt_install() {
    local as_root=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || return 1
        as_root=(sudo)
    fi
    if [ "$apt_updated" = 0 ]; then
        "${as_root[@]}" apt-get update -qq >/dev/null || return 1
        apt_updated=1
    fi
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

for tool in taskset:util-linux python3:python3; do
    if ! command -v "${tool%%:*}" >/dev/null 2>&1; then
        say "installing ${tool#*:}"
        apt_install "${tool#*:}" || { say "cannot install ${tool#*:}"; exit 1; }
    fi
done

out_dir=bench/target/echo
mkdir -p "$out_dir"
results="$out_dir/results.txt"
[ "${#cores_list[@]}" -gt 0 ] && results="$out_dir/cores.txt"
[ "$profiling" = 1 ] && results="$out_dir/profiling.txt"
: >"$results"

# Build everything first, so no build runs beside a measurement.
cargo build --release --manifest-path bench/Cargo.toml \
    --example echo_shrapnel --example echo_tokio --example echo_may --example echo_epoll \
    --example echo_uring --example echo_load --example spawn_shrapnel --example spawn_tokio >&2
bin=bench/target/release/examples

servers=(shrapnel shrapnel-shared tokio may epoll uring)
# With --cores, the servers that take a number of threads.
[ "${#cores_list[@]}" -gt 0 ] && servers=(shrapnel shrapnel-spin tokio may epoll uring)
[ "$profiling" = 1 ] && servers=(shrapnel shrapnel-profiled)
if [ "$do_echo" = 1 ] && [ "$profiling" = 0 ]; then
    if ! command -v go >/dev/null 2>&1; then
        say "installing golang-go"
        apt_install golang-go || true
    fi
    go_bin="$PWD/$out_dir/echo_go"
    # No module dependencies: nothing is downloaded (GOPROXY off, the local toolchain).
    if command -v go >/dev/null 2>&1 &&
        (cd bench/go && GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-mod=mod \
            GOCACHE="$PWD/../target/go-cache" GOPATH="$PWD/../target/go-path" \
            go build -o "$go_bin" .) >&2; then
        servers+=(go)
    else
        say "no Go toolchain (golang-go not installable here): the Go server is skipped"
        echo "skipped go: no Go toolchain" >>"$results"
    fi
fi

# How system calls are counted: perf if it can read the syscall tracepoint, else strace.
syscall_tool=${SYSCALL_TOOL:-}
if [ "$do_echo" = 1 ] && [ -z "$syscall_tool" ]; then
    syscall_tool=none
    if command -v perf >/dev/null 2>&1 &&
        perf stat -e raw_syscalls:sys_enter -x, -o /dev/null -- true >/dev/null 2>&1; then
        syscall_tool=perf
    else
        command -v strace >/dev/null 2>&1 || { say "installing strace"; apt_install strace || true; }
        command -v strace >/dev/null 2>&1 && syscall_tool=strace
    fi
fi
if [ "$do_echo" = 1 ]; then
    say "system calls counted with: $syscall_tool"
    echo "syscall_tool $syscall_tool" >>"$results"
fi

# Enough descriptors for IDLE connections in the server and in the load generator.
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt $((IDLE + 100)) ]; then
    IDLE=$((hard - 100))
    say "descriptor limit $hard: holding $IDLE idle connections instead"
fi
ulimit -n "$hard"

# wait_for FILE SECONDS REGEX: until a line of FILE matches REGEX, or fail after SECONDS.
wait_for() {
    local i
    for ((i = 0; i < $2 * 20; i++)); do
        grep -qE "$3" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

# Where the server and the load generator run: the server on CPU 0 and the generator on
# CPU 1, or with --cores N (place N) the server on CPUs 0..N-1 and the generator on the
# CPUs left, unpinned if none are left. `cores` is the N of the servers' threads flags.
cpus=$(nproc)
server_cpus=0
load_cmd=(taskset -c 1)
load_threads=1
cores=
# cpu_list FIRST LAST: a CPU list for taskset ("3", or "0-1").
cpu_list() { if [ "$1" = "$2" ]; then echo "$1"; else echo "$1-$2"; fi; }
place() {
    local load_cpus left
    cores=$1
    left=$((cpus - cores))
    if [ "$left" -gt 0 ]; then
        server_cpus=$(cpu_list 0 $((cores - 1)))
        load_cpus=$(cpu_list "$cores" $((cpus - 1)))
        load_cmd=(taskset -c "$load_cpus")
        load_threads=${LOAD_THREADS:-$((left < cores ? left : cores))}
        unset SHRAPNEL_BENCH_PIN
        pinning="pinned, scheduler i to CPU i"
    else
        server_cpus=$(cpu_list 0 $((cpus - 1)))
        load_cmd=()
        load_cpus="shared"
        load_threads=${LOAD_THREADS:-1}
        # The generator shares the server's CPUs: pinned schedulers could not move away
        # from it (a preempted one waits while the other CPU may be free), and no peer's
        # threads are pinned, so shrapnel's are not either (the kernel places them).
        export SHRAPNEL_BENCH_PIN=0
        pinning="unpinned, as the peers' threads"
    fi
    say "$cores server threads on CPUs $server_cpus ($pinning), load generator" \
        "($load_threads threads) on CPUs $load_cpus"
    echo "placement cores=$cores server_cpus=$server_cpus load_cpus=$load_cpus" \
        "load_threads=$load_threads cpus=$cpus shrapnel_schedulers=${pinning%%,*}" >>"$results"
}

server_pid=
server_port=
# start_server NAME: a fresh server pinned to $server_cpus; sets server_pid and server_port.
start_server() {
    local log="$out_dir/server.log"
    # Emptied here, not by the redirection below: that runs in the background child, maybe
    # after wait_for has already found the previous server's `port` line.
    : >"$log"
    if [ "$1" = go ]; then
        GOMAXPROCS=${cores:-1} taskset -c "$server_cpus" "$go_bin" 0 >"$log" 2>&1 &
    elif [ "$1" = shrapnel-profiled ]; then
        SHRAPNEL_BENCH_PROFILE=1 taskset -c "$server_cpus" "$bin/echo_shrapnel" 0 >"$log" 2>&1 &
    elif [ "$1" = shrapnel-shared ]; then
        taskset -c "$server_cpus" "$bin/echo_shrapnel" --shared 0 >"$log" 2>&1 &
    elif [ -n "$cores" ] && [ "$1" = shrapnel ]; then
        taskset -c "$server_cpus" "$bin/echo_shrapnel" --cores "$cores" 0 >"$log" 2>&1 &
    elif [ -n "$cores" ] && [ "$1" = shrapnel-spin ]; then
        SHRAPNEL_BENCH_IDLE_SPIN_US=${IDLE_SPIN_US:-30} taskset -c "$server_cpus" \
            "$bin/echo_shrapnel" --cores "$cores" 0 >"$log" 2>&1 &
    elif [ -n "$cores" ]; then
        taskset -c "$server_cpus" "$bin/echo_$1" --workers "$cores" 0 >"$log" 2>&1 &
    else
        taskset -c "$server_cpus" "$bin/echo_$1" 0 >"$log" 2>&1 &
    fi
    server_pid=$!
    if ! wait_for "$log" 10 '^port [0-9]+'; then
        say "$1 did not start: $(tail -1 "$log")"
        stop_server
        return 1
    fi
    server_port=$(awk '/^port/ {print $2; exit}' "$log")
}
stop_server() {
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
}

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# echo_run NAME C ROUND: throughput, latency and CPU, then system calls, one fresh server.
echo_run() {
    local name=$1 c=$2 round=$3 line count_file cmd calls served
    if ! start_server "$name"; then
        echo "server=$name${cores:+ cores=$cores} conns=$c round=$round failed" >>"$results"
        return
    fi
    if line=$("${load_cmd[@]}" "$bin/echo_load" load "$server_port" "$c" --warmup 0.5 \
        --duration "$SECONDS_PER_RUN" --server-pid "$server_pid" --threads "$load_threads" \
        2>&1 | tail -1) &&
        [[ "$line" == result* ]]; then
        echo "server=$name round=$round${cores:+ cores=$cores} ${line#result }" >>"$results"
    else
        echo "server=$name${cores:+ cores=$cores} conns=$c round=$round failed: $line" >>"$results"
    fi
    count_file="$out_dir/syscalls.txt"
    rm -f "$count_file"
    case "$syscall_tool" in
        perf) cmd="perf stat -e raw_syscalls:sys_enter -x, -o $count_file -p $server_pid -- sleep $SYSCALL_SECONDS" ;;
        strace) cmd="timeout -s INT $SYSCALL_SECONDS strace -c -f -o $count_file -p $server_pid" ;;
        *) cmd= ;;
    esac
    if [ -n "$cmd" ] && line=$("${load_cmd[@]}" "$bin/echo_load" load "$server_port" "$c" \
        --warmup 0.3 --window-cmd "$cmd" --threads "$load_threads" 2>&1 | tail -1) &&
        [[ "$line" == result* ]]; then
        if [ "$syscall_tool" = perf ]; then
            calls=$(awk -F, '/raw_syscalls:sys_enter/ {print $1}' "$count_file")
            served=
        else
            # strace counts from its attach on, later than the window starts, and slows
            # the server: the requests it saw are its count of response writes.
            calls=$(awk '$NF == "total" {print $4}' "$count_file")
            served=$(awk '$NF ~ /^(write|writev|sendto|sendmsg)$/ {n += $4} END {print n + 0}' \
                "$count_file")
            served=" syscall_requests=$served"
        fi
        echo "server=$name round=$round${cores:+ cores=$cores} syscalls=${calls:-0}$served \
${line#result }" | sed 's/ rps=/ syscall_window_rps=/' >>"$results"
    fi
    stop_server
}

# idle_run NAME ROUND: RSS per held idle connection.
idle_run() {
    local name=$1 round=$2 rss0 rss1 log="$out_dir/idle.log" load_pid
    start_server "$name" || return 0
    sleep 0.3
    rss0=$(rss_kib "$server_pid")
    : >"$log"
    taskset -c 1 "$bin/echo_load" idle "$server_port" "$IDLE" >"$log" 2>&1 &
    load_pid=$!
    if wait_for "$log" 120 '^held'; then
        # Idle for 3 s before RSS is read: connections are held idle, and shrapnel's
        # shared-stack mode compacts the copies of coroutines idle for 1 s or more.
        sleep "${IDLE_SECONDS:-3}"
        rss1=$(rss_kib "$server_pid")
        echo "server=$name round=$round idle=$IDLE rss0_kib=$rss0 rss1_kib=$rss1" >>"$results"
    else
        echo "server=$name round=$round idle failed: $(tail -1 "$log")" >>"$results"
    fi
    kill "$load_pid" 2>/dev/null || true
    wait "$load_pid" 2>/dev/null || true
    stop_server
}

# spawn_run LABEL ROUND N CMD...: one fresh process; its result line, or why it failed.
spawn_run() {
    local label=$1 round=$2 n=$3 output status
    shift 3
    set +e
    output=$(timeout 300 "$@" 2>&1)
    status=$?
    set -e
    if [ "$status" = 0 ] && grep -q '^spawn ' <<<"$output"; then
        echo "case=$label round=$round $(grep '^spawn ' <<<"$output" | tail -1 | sed 's/^spawn //')" >>"$results"
    else
        local why
        why=$(grep -v '^$' <<<"$output" | tail -1)
        [ "$status" -gt 128 ] && why="${why:+$why; }killed by signal $((status - 128))"
        [ "$status" = 124 ] && why="timed out after 300 s"
        why=${why#failed: }
        echo "case=$label round=$round n=$n status=failed: ${why:-exit status $status}" >>"$results"
    fi
}

for ((round = 1; round <= ROUNDS; round++)); do
    if [ "${#cores_list[@]}" -gt 0 ]; then
        for n in "${cores_list[@]}"; do
            place "$n"
            for c in "${CONNS[@]}"; do
                for s in "${servers[@]}"; do
                    say "round $round/$ROUNDS: $s with $n threads, $c connections"
                    echo_run "$s" "$c" "$round"
                done
            done
        done
    elif [ "$do_echo" = 1 ]; then
        for c in "${CONNS[@]}"; do
            for s in "${servers[@]}"; do
                say "round $round/$ROUNDS: $s, $c connections"
                echo_run "$s" "$c" "$round"
            done
        done
        if [ "$profiling" = 0 ]; then
            for s in "${servers[@]}"; do
                say "round $round/$ROUNDS: $s, $IDLE idle connections"
                idle_run "$s" "$round"
            done
        fi
    fi
    if [ "$do_spawn" = 1 ]; then
        for n in "${SPAWN_NS[@]}"; do
            say "round $round/$ROUNDS: spawn $n"
            spawn_run "shrapnel guarded" "$round" "$n" "$bin/spawn_shrapnel" --mode guarded "$n"
            spawn_run "shrapnel shared" "$round" "$n" "$bin/spawn_shrapnel" --mode shared "$n"
            spawn_run "tokio" "$round" "$n" "$bin/spawn_tokio" "$n"
        done
    fi
done

python3 bench/echo_report.py "$results"
