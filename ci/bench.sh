#!/usr/bin/env bash
# Run the comparison benchmarks (bench/, targets in BENCHMARKS.md) and print the ratios as a markdown
# table: workload | shrapnel | peer | ratio | target | met?
#
# Every workload is one criterion group holding our implementation and its peer, so both
# run in the same process one after the other. After the main run, the yield benchmark is
# built and run again with the `latency` debug feature on and saved as the criterion
# baseline `latency`, for the "latency on vs off" row; then `where_all` over 10 000
# suspended coroutines runs with the `stacks` feature (target: under 100 ms), its first,
# cold call printed by the bench and kept in $CRITERION_HOME/where_all_cold.txt.
# The main run includes the channel ping-pong (bench/benches/channel.rs): a round trip
# between two pinned schedulers against tokio's mpsc (a 2-worker multi-thread runtime, and
# two current-thread runtimes on two threads) and std's mpsc between two threads; the
# share of tokio's multi-thread receives that crossed threads is kept in
# $CRITERION_HOME/channel_crossings.txt.
# Last, bench/examples/first_panic.rs measures how long the first coroutine panic of a
# process stalls the others, in three fresh release processes (target: under 20 ms), and
# bench/examples/console_10k.rs times the backdoor's where_all --json, ps --json,
# deadlocks and contention on 10,000 coroutines.
#
# Then bench/echo.sh: echo servers (shrapnel on guarded stacks and on the shared stack,
# tokio, may, Go, and the floors: a raw epoll loop and a raw io_uring loop) under the same
# closed-loop load, and spawning 10k–1M sleeping coroutines (guarded and shared stacks)
# against tokio tasks; then `bench/echo.sh --cores 1,2`: the echo servers with 1 and 2
# threads each (shrapnel run_per_core, tokio and may with N workers, Go with
# GOMAXPROCS=N, the floors with N threads); then `bench/echo.sh --profiling`: the shrapnel
# echo server with and without a CPU profile running; each prints its own tables (method
# in its header and in BENCHMARKS.md).
#
# Usage: ci/bench.sh               run everything (about 21 minutes on 2 cores, builds included)
#        ci/bench.sh --no-servers  only the criterion benches and the first-panic runs (about 5)
#        ci/bench.sh --servers     only bench/echo.sh, then with --cores 1,2 (about 16)
#        ci/bench.sh --report      only print the tables from the last runs' results
#
# The code size of the switch path with each debug feature is bench/code-size.sh.
#
# Times are criterion's median per-iteration estimates, read from estimates.json under
# $CRITERION_HOME (default bench/target/criterion): the main run from the baseline `base`
# (criterion's default; `new` is overwritten by every run, the latency one included), the
# latency run from the baseline `latency`. Installs python3 through apt if missing.
set -euo pipefail

cd "$(dirname "$0")/.."

export CRITERION_HOME="${CRITERION_HOME:-$PWD/bench/target/criterion}"

if ! command -v python3 >/dev/null 2>&1; then
    as_root=()
    if [ "$(id -u)" -ne 0 ]; then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "ci/bench.sh: python3 missing, and neither root nor sudo to install it" >&2
            exit 1
        fi
        as_root=(sudo)
    fi
    echo "ci/bench.sh: installing python3"
    "${as_root[@]}" apt-get update
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends python3
fi

mode="${1:-}"
case "$mode" in
    "" | --report | --servers | --no-servers) ;;
    *)
        echo "usage: ci/bench.sh [--report | --servers | --no-servers]" >&2
        exit 2
        ;;
esac

if [ "$mode" = --servers ]; then
    bench/echo.sh
    bench/echo.sh --cores 1,2
    exec bench/echo.sh --profiling
fi

if [ "$mode" = "" ] || [ "$mode" = --no-servers ]; then
    cargo bench --manifest-path bench/Cargo.toml -- --noplot
    cargo bench --manifest-path bench/Cargo.toml --features latency --bench scheduler -- \
        --noplot --save-baseline latency 'yield/shrapnel'
    cargo bench --manifest-path bench/Cargo.toml --features stacks --bench debug -- --noplot |
        tee /dev/stderr | grep '^where_all cold' > "$CRITERION_HOME/where_all_cold.txt" || true
    # The first panic's stall needs a fresh process per measurement: three, the worst kept.
    cargo build --release --manifest-path bench/Cargo.toml --example first_panic
    for _ in 1 2 3; do bench/target/release/examples/first_panic; done |
        tee /dev/stderr > "$CRITERION_HOME/first_panic.txt"
    # The backdoor's heavy commands on 10,000 coroutines, timed by a client.
    cargo build --release --manifest-path bench/Cargo.toml --features backdoor,stacks \
        --example console_10k
    bench/target/release/examples/console_10k | tee /dev/stderr > "$CRITERION_HOME/console_10k.txt"
fi

python3 - "$CRITERION_HOME" <<'EOF'
import json
import os
import sys

root = sys.argv[1]


def ns(bench, baseline="base"):
    """Median time per iteration in ns of one criterion benchmark, or None if it did not run."""
    path = os.path.join(root, *bench.split("/"), baseline, "estimates.json")
    try:
        with open(path) as f:
            return json.load(f)["median"]["point_estimate"]
    except FileNotFoundError:
        return None


def fmt(t):
    if t is None:
        return "n/a"
    return f"{t:.3g} ns" if t < 1000 else f"{t / 1000:.3g} µs"


rows = []


def ratio_row(workload, ours, peer_name, peer, target):
    """A row with the ratio ours / peer; target None: shown for comparison, no target."""
    a, b = ns(ours), ns(peer)
    goal = "—" if target is None else f"≤ {target}×"
    if a is None or b is None:
        rows.append((workload, fmt(a), f"{peer_name} {fmt(b)}", "n/a", goal, "not run"))
        return
    r = a / b
    met = "—" if target is None else "yes" if r <= target else "**no**"
    rows.append((workload, fmt(a), f"{peer_name} {fmt(b)}", f"{r:.2f}×", goal, met))


ratio_row("raw switch, resume + suspend", "switch/shrapnel", "corosensei",
          "switch/corosensei", 1.1)
ratio_row("yield round trip through the scheduler", "yield/shrapnel", "tokio `yield_now`",
          "yield/tokio", 0.2)
ratio_row("spawn + run + join, empty body", "spawn_join/shrapnel", "tokio spawn + await",
          "spawn_join/tokio", 0.4)
for n, label in [(1000, "1k"), (100000, "100k"), (1000000, "1M")]:
    ratio_row(f"timer insert + cancel, scheduler path (`with_timeout`), {label} pending",
              f"timers/shrapnel/{n}", "tokio `sleep`", f"timers/tokio/{n}", 0.5)
for n, label in [(1000, "1k"), (100000, "100k"), (1000000, "1M")]:
    ratio_row(f"timer insert + cancel, raw `TimerQueue` (no clock, no scheduler), {label} pending",
              f"timers/queue/{n}", "tokio `sleep`", f"timers/tokio/{n}", 0.5)

# Channel ping-pong (issue 12): a round trip between two pinned threads; target ≤ tokio
# mpsc's. tokio's multi-thread runtime mostly keeps the pair on one worker (the share of
# receives that crossed threads is in channel_crossings.txt); two current-thread runtimes
# on two threads cross on every message, as shrapnel's two schedulers do.
try:
    with open(os.path.join(root, "channel_crossings.txt")) as f:
        crossed = f.read().split("(", 1)[1].split(")", 1)[0] + " of receives crossed threads"
except (FileNotFoundError, IndexError):
    crossed = "share of receives crossing threads not measured"
PING = "channel ping-pong round trip"
ratio_row(f"{PING}, two schedulers (`run_per_core`, pinned)", "channel_ping_pong/shrapnel",
          "tokio mpsc, two current-thread runtimes on two threads",
          "channel_ping_pong/tokio-two-runtimes", 1.0)
ratio_row(f"{PING}, two schedulers, idle spin 30 µs", "channel_ping_pong/shrapnel-idle-spin",
          "tokio mpsc, two current-thread runtimes on two threads",
          "channel_ping_pong/tokio-two-runtimes", 1.0)
ratio_row(f"{PING}, two schedulers (`run_per_core`, pinned)", "channel_ping_pong/shrapnel",
          f"tokio mpsc, multi-thread runtime, 2 workers ({crossed})",
          "channel_ping_pong/tokio-multi-thread", 1.0)
ratio_row(f"{PING}, two schedulers (`run_per_core`, pinned)", "channel_ping_pong/shrapnel",
          "std mpsc, two threads", "channel_ping_pong/std", None)
ratio_row(f"{PING}, two coroutines of one scheduler", "channel_ping_pong/shrapnel-same-scheduler",
          "tokio mpsc, multi-thread runtime, 2 workers", "channel_ping_pong/tokio-multi-thread",
          None)

# Flat as n grows: the time at 1M pending over the time at 1k pending.
FLAT = 1.5
for what, bench in [("scheduler path", "shrapnel"), ("raw `TimerQueue`", "queue")]:
    small, large = ns(f"timers/{bench}/1000"), ns(f"timers/{bench}/1000000")
    ps, pl = ns("timers/tokio/1000"), ns("timers/tokio/1000000")
    if None in (small, large, ps, pl):
        rows.append((f"timers flat, 1M vs 1k pending, {what}", "n/a", "n/a", "n/a",
                     f"≤ {FLAT}×", "not run"))
        continue
    g = large / small
    rows.append((f"timers flat, 1M vs 1k pending, {what}", f"{fmt(large)} / {fmt(small)}",
                 f"tokio {fmt(pl)} / {fmt(ps)} = {pl / ps:.2f}×", f"{g:.2f}×", f"≤ {FLAT}×",
                 "yes" if g <= FLAT else "**no**"))

on, off = ns("yield/shrapnel", "latency"), ns("yield/shrapnel")
if on is None or off is None:
    rows.append(("yield, `latency` feature on vs off", fmt(on), fmt(off), "n/a", "≤ 1.05×",
                 "not run"))
else:
    rows.append(("yield, `latency` feature on vs off", f"on {fmt(on)}", f"off {fmt(off)}",
                 f"{on / off:.2f}×", "≤ 1.05×", "yes" if on / off <= 1.05 else "**no**"))

# where_all over 10 000 suspended coroutines with `stacks`: an absolute target, no peer.
WHERE_ALL_MS = 100
for bench, what in [("core_10k", "raw frames (core)"),
                    ("symbolized_10k", "symbolized (`shrapnel::where_all`)"),
                    ("printed_10k", "symbolized and printed")]:
    t = ns(f"where_all/{bench}")
    row = f"`where_all`, 10 000 suspended coroutines, `stacks`, {what}"
    if t is None:
        rows.append((row, "n/a", "—", "n/a", f"< {WHERE_ALL_MS} ms", "not run"))
    else:
        rows.append((row, f"{t / 1e6:.3g} ms", "—", "—", f"< {WHERE_ALL_MS} ms",
                     "yes" if t < WHERE_ALL_MS * 1e6 else "**no**"))
try:
    with open(os.path.join(root, "where_all_cold.txt")) as f:
        line = f.read().strip()
    ms = float(line.split("):", 1)[1].split()[0])
    parts = line.split(" = ", 1)[1] if " = " in line else ""
    rows.append(("`where_all`, 10 000 suspended coroutines, `stacks`, first call in a "
                 f"process ({parts})", f"{ms:.3g} ms", "—", "—", f"< {WHERE_ALL_MS} ms",
                 "yes" if ms < WHERE_ALL_MS else "**no**"))
except (FileNotFoundError, IndexError, ValueError):
    pass

FIRST_PANIC_MS = 20
try:
    with open(os.path.join(root, "first_panic.txt")) as f:
        stalls = [float(l.split("longest stall", 1)[1].split()[0]) for l in f if "stall" in l]
    worst = max(stalls)
    rows.append(("first coroutine panic of a process: longest stall of the others "
                 f"(worst of {len(stalls)})", f"{worst:.3g} ms", "—", "—",
                 f"< {FIRST_PANIC_MS} ms", "yes" if worst < FIRST_PANIC_MS else "**no**"))
except (FileNotFoundError, IndexError, ValueError):
    pass

try:
    with open(os.path.join(root, "console_10k.txt")) as f:
        for line in f:
            if not line.startswith("console ") or " ms (" not in line:
                continue
            cmd, rest = line[len("console "):].split(": ", 1)
            ms, size = rest.split(" ms (", 1)
            rows.append((f"backdoor `{cmd}` on 10 000 coroutines (`stacks`), as a client "
                         f"sees it ({size.strip().rstrip(')')})", f"{float(ms):.3g} ms",
                         "—", "—", "—", "—"))
except (FileNotFoundError, ValueError):
    pass

print("| workload | shrapnel | peer | ratio | target | met? |")
print("| --- | --- | --- | --- | --- | --- |")
for r in rows:
    print("| " + " | ".join(r) + " |")
EOF

if [ "$mode" = "" ]; then
    bench/echo.sh
    bench/echo.sh --cores 1,2
    bench/echo.sh --profiling
elif [ "$mode" = --report ]; then
    for results in bench/target/echo/results.txt bench/target/echo/cores.txt \
        bench/target/echo/profiling.txt; do
        if [ -f "$results" ]; then
            echo
            python3 bench/echo_report.py "$results"
        fi
    done
fi
