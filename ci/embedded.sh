#!/usr/bin/env bash
# shrapnel-core on Cortex-M: build the core for thumbv7m-none-eabi and thumbv7em-none-eabihf,
# run examples/cortex-m in QEMU (the demo, the canary test, the channel test, the core's
# portable test suites in two parts, and the context-switch test on a Cortex-M3; for the FPU
# registers, the suites and the switch test again on a Cortex-M4F), check every expected
# line and exit status, and report flash/RAM use and the core's share of .text. Then the
# same demo and canary test again with feature `defmt`: the output is a defmt stream over
# semihosting, decoded on the host with defmt-print and checked against the same lines.
#
# Installs what it needs when missing (qemu-system-arm and binutils-arm-none-eabi through
# apt, the Rust targets through rustup, defmt-print through cargo install), so a fresh machine
# passes. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/apt.sh
. ci/portable-suites.sh

# Set to 1 once shrapnel-core's `latency` feature builds for thumbv7m-none-eabi (today its
# SliceProbe uses AtomicU64, which ARMv7-M does not have); the demo then runs a coroutine past
# the threshold and this script checks for the High Latency warning.
LATENCY=${SHRAPNEL_EMBEDDED_LATENCY:-1}
# The budget for shrapnel-core's .text in the demo's release build (issue 5).
BUDGET_KIB=${SHRAPNEL_CORE_TEXT_BUDGET_KIB:-16}

step() { printf '\n==> embedded: %s\n' "$*"; }
fail() {
    echo "ci/embedded.sh: FAILED: $*" >&2
    exit 1
}

apt_install qemu-system-arm binutils-arm-none-eabi python3
targets=(thumbv7m-none-eabi thumbv7em-none-eabihf)
for t in "${targets[@]}"; do
    rustup target list --installed | grep -qx "$t" || rustup target add "$t"
done
# The example's .cargo/config.toml passes the linker script (-Tlink.x) in target rustflags,
# which a RUSTFLAGS from the environment would replace.
unset RUSTFLAGS CARGO_BUILD_RUSTFLAGS

step "shrapnel-core for ${targets[*]}"
for t in "${targets[@]}"; do
    cargo build -p shrapnel-core --target "$t" --no-default-features
done

example=examples/cortex-m
export CARGO_TARGET_DIR="$PWD/$example/target"
features=()
[ "$LATENCY" = 1 ] && features=(--features latency)

step "example: release build (thumbv7m-none-eabi; the switch test also for thumbv7em-none-eabihf)"
(cd "$example" && cargo build --release --bins "${features[@]}")
(cd "$example" && cargo build --release --target thumbv7em-none-eabihf --bin switch)

out_dir=$(mktemp -d)
trap 'rm -rf "$out_dir"' EXIT

# run NAME TARGET BIN: boot BIN in QEMU through the example's cargo runner, with a time limit;
# the output goes to $out_dir/NAME.txt and is shown; a non-zero exit status fails the script.
run() {
    local name=$1 target=$2 bin=$3 status=0
    (cd "$example" && timeout 60 cargo run -q --release --target "$target" --bin "$bin" \
        "${features[@]}") >"$out_dir/$name.txt" 2>&1 || status=$?
    sed 's/^/    /' "$out_dir/$name.txt"
    [ "$status" -eq 0 ] || fail "$name exited with status $status (124 = timed out after 60 s)"
}

# expect NAME PATTERN...: each extended regex matches a line of NAME's output, in this order.
expect() {
    local name=$1 file="$out_dir/$1.txt" after=0 pattern line
    shift
    for pattern in "$@"; do
        line=$(tail -n +"$((after + 1))" "$file" | grep -n -m1 -E -- "$pattern" | cut -d: -f1) ||
            true
        [ -n "$line" ] || fail "$name: no line matching /$pattern/ after line $after"
        after=$((after + line))
    done
}

# expect_demo NAME: the demo's lines, in order (the same for plain text and decoded defmt).
expect_demo() {
    expect "$1" "spawned #1 'sleeper-30'" "spawned #2 'sleeper-10'" "spawned #3 'sleeper-20'" \
        "sleeper-10 woke after 1[0-9] ms" "sleeper-20 woke after 2[0-9] ms" \
        "sleeper-30 woke after 3[0-9] ms"
    expect "$1" "spawned #4 'ping'" "spawned #5 'pong'" \
        "\] ping 0$" "\] pong 0$" "\] ping 1$" "\] pong 1$" "\] ping 2$" "\] pong 2$"
    expect "$1" "spawned #6 'holder'" "spawned #7 'waiter'" "holder: locked the mutex" \
        "waiter: with_timeout\(5 ms\) fired after [0-9]+ ms waiting for the mutex \(owner #6\)" \
        "holder: unlocking" "waiter: got the mutex from holder after [0-9]+ ms \(hand-off\)"
    expect "$1" "spawned #8 'consumer'" "spawned #9 'producer'" \
        "producer: pushing item 1" "consumer: got item 1 from the fifo" \
        "producer: pushing item 2" "consumer: got item 2 from the fifo" \
        "producer: pushing item 3" "consumer: got item 3 from the fifo"
    if [ "$LATENCY" = 1 ]; then
        expect "$1" "spawned #10 'busy'" \
            "High Latency: \(0\.1[0-9]{2}s\) for <coro #10 name='busy' dead=0 started=1"
    fi
    expect "$1" "^\[ *[0-9]+ ms\] where_all:$" \
        "^  #[0-9]+ 'sleepy' blocked: sleeping \([0-9]+\.[0-9]{3}s left\) for [0-9.]+s at .*main\.rs:[0-9]+$" \
        "^  #[0-9]+ 'listener' blocked: fifo for [0-9.]+s at .*main\.rs:[0-9]+$" \
        "^  #[0-9]+ 'reporter' running: running" \
        "demo: all phases done"
}

step "demo (Cortex-M3, lm3s6965evb)"
run demo thumbv7m-none-eabi shrapnel-cortex-m
expect_demo demo

step "canary test (a coroutine overruns its stack)"
# expect_overflow NAME: the canary test's lines, in order.
expect_overflow() {
    expect "$1" "spawned #1 'deep'" \
        "^coroutine #1 'deep' overflowed its stack \(4 KiB\): the canary at its limit was overwritten$" \
        "^panicked: panicked at .*sched/state\.rs:[0-9]+:[0-9]+:$" \
        "^coroutine #1 'deep' overflowed its stack \(4 KiB\)$" \
        "overflow: passed, the canary caught 'deep'"
}
run overflow thumbv7m-none-eabi overflow
expect_overflow overflow

step "channel test (a bounded channel between two coroutines, a timeout, closing)"
run channel thumbv7m-none-eabi channel
expect channel "consumer: recv with a 5 ms timeout: timed out" \
    "producer: sent 1000; dropping the sender closes the channel" \
    "consumer: 1000 messages, sum 499500, at most [0-4] queued; then Closed" "channel: passed"

# The portable suites do not fit the lm3s6965's 256 KiB of flash together: two runners,
# each built with half of them (SHRAPNEL_PORTABLE_SUITES, core/tests/portable/table.rs;
# the first half is the runner's default there).
suite_parts=(semantics,sync,interrupt channel,parallel,coro_local)
for target in thumbv7m-none-eabi thumbv7em-none-eabihf; do
    case $target in
    thumbv7m-*) cpu=m3 board="Cortex-M3" ;;
    *) cpu=m4f board="Cortex-M4F (mps2-an386: the FPU registers saved at each switch)" ;;
    esac
    for part in 1 2; do
        suites=${suite_parts[part - 1]}
        step "the core's portable suites ($suites; core/tests/portable), $board"
        SHRAPNEL_PORTABLE_SUITES=$suites run "suites-$cpu-$part" "$target" suites
        check_portable_suites "suites-$cpu-$part" "$out_dir/suites-$cpu-$part.txt" "$suites"
    done
done

step "context switch test, Cortex-M3 (r4-r11)"
run switch-m3 thumbv7m-none-eabi switch
expect switch-m3 "INIT_SIZE 48 bytes" "r4-r11 survive both ways: ok" \
    "frame records chain into the resumer: ok" "switch: all [0-9]+ checks passed"

step "context switch test, Cortex-M4F on mps2-an386 (r4-r11, d8-d15)"
run switch-m4f thumbv7em-none-eabihf switch
expect switch-m4f "INIT_SIZE 112 bytes" "r4-r11 and d8-d15 survive both ways: ok" \
    "frame records chain into the resumer: ok" "switch: all [0-9]+ checks passed"

step "size of the demo (release, thumbv7m-none-eabi, without the debug feature latency)"
# The budget is for the scheduler and the context switch; the latency feature (timing,
# the warning's formatting) is reported separately.
if [ "$LATENCY" = 1 ]; then
    elf_latency="$CARGO_TARGET_DIR/thumbv7m-none-eabi/release/shrapnel-cortex-m"
    cp "$elf_latency" "$CARGO_TARGET_DIR/shrapnel-cortex-m-latency"
    (cd "$example" && cargo build --release --bin shrapnel-cortex-m)
fi
elf="$CARGO_TARGET_DIR/thumbv7m-none-eabi/release/shrapnel-cortex-m"
arm-none-eabi-size "$elf"
python3 "$example/size_report.py" "$elf" core/src --max-core-kib "$BUDGET_KIB"
if [ "$LATENCY" = 1 ]; then
    step "size with the latency feature on (for comparison; no budget)"
    arm-none-eabi-size "$CARGO_TARGET_DIR/shrapnel-cortex-m-latency"
fi

step "defmt output: the demo and the canary test with --features defmt, decoded by defmt-print"
# The same firmware with feature `defmt`: the core's DefmtSink and the demo's lines are defmt
# messages, framed by defmt-semihosting onto semihosting stdout. QEMU's stdout is kept as
# bytes and decoded with the ELF's table of interned strings.
if ! command -v defmt-print >/dev/null 2>&1; then
    started=$SECONDS
    cargo install defmt-print --locked
    echo "installed defmt-print in $((SECONDS - started)) s"
fi
defmt_features=defmt
[ "$LATENCY" = 1 ] && defmt_features=defmt,latency
(cd "$example" && cargo build --release --bin shrapnel-cortex-m --bin overflow \
    --features "$defmt_features")

# run_defmt NAME BIN: boot BIN (built with $defmt_features) in QEMU with a time limit, keep
# its stdout as $out_dir/NAME.defmt, decode it into $out_dir/NAME.txt and show that; a
# non-zero exit status or a frame defmt-print cannot decode fails the script.
run_defmt() {
    local name=$1 bin=$2 status=0
    (cd "$example" && timeout 60 cargo run -q --release --bin "$bin" \
        --features "$defmt_features") >"$out_dir/$name.defmt" 2>"$out_dir/$name.stderr" ||
        status=$?
    defmt-print -e "$CARGO_TARGET_DIR/thumbv7m-none-eabi/release/$bin" --log-format '{s}' \
        --show-skipped-frames <"$out_dir/$name.defmt" >"$out_dir/$name.txt" 2>&1 ||
        fail "$name: defmt-print could not decode the output"
    echo "    ($(wc -c <"$out_dir/$name.defmt") bytes of defmt frames, decoded:)"
    sed 's/^/    /' "$out_dir/$name.txt" "$out_dir/$name.stderr"
    [ "$status" -eq 0 ] || fail "$name exited with status $status (124 = timed out after 60 s)"
    ! grep -q "malformed frame" "$out_dir/$name.txt" ||
        fail "$name: the defmt stream has frames defmt-print skipped"
}

run_defmt demo-defmt shrapnel-cortex-m
expect_demo demo-defmt
run_defmt overflow-defmt overflow
expect_overflow overflow-defmt

printf '\nci/embedded.sh: all passed\n'
