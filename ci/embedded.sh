#!/usr/bin/env bash
# shrapnel-core on Cortex-M: build the core for thumbv7m-none-eabi and thumbv7em-none-eabihf,
# run examples/cortex-m in QEMU (the demo, the canary test, the context-switch test on a
# Cortex-M3 and, for the FPU registers, on a Cortex-M4F), check every expected line and exit
# status, and report flash/RAM use and the core's share of .text.
#
# Installs what it needs when missing (qemu-system-arm and binutils-arm-none-eabi through
# apt, the Rust targets through rustup), so a fresh machine passes. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/apt.sh

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

apt_install qemu-system-arm:qemu-system-arm arm-none-eabi-size:binutils-arm-none-eabi \
    python3:python3
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

step "demo (Cortex-M3, lm3s6965evb)"
run demo thumbv7m-none-eabi shrapnel-cortex-m
expect demo "spawned #1 'sleeper-30'" "spawned #2 'sleeper-10'" "spawned #3 'sleeper-20'" \
    "sleeper-10 woke after 1[0-9] ms" "sleeper-20 woke after 2[0-9] ms" \
    "sleeper-30 woke after 3[0-9] ms"
expect demo "spawned #4 'ping'" "spawned #5 'pong'" \
    "\] ping 0$" "\] pong 0$" "\] ping 1$" "\] pong 1$" "\] ping 2$" "\] pong 2$"
expect demo "spawned #6 'holder'" "spawned #7 'waiter'" "holder: locked the mutex" \
    "waiter: with_timeout\(5 ms\) fired after [0-9]+ ms waiting for the mutex \(owner #6\)" \
    "holder: unlocking" "waiter: got the mutex from holder after [0-9]+ ms \(hand-off\)"
expect demo "spawned #8 'consumer'" "spawned #9 'producer'" \
    "producer: pushing item 1" "consumer: got item 1 from the fifo" \
    "producer: pushing item 2" "consumer: got item 2 from the fifo" \
    "producer: pushing item 3" "consumer: got item 3 from the fifo"
if [ "$LATENCY" = 1 ]; then
    expect demo "spawned #10 'busy'" \
        "High Latency: \(0\.1[0-9]{2}s\) for <coro #10 name='busy' dead=0 started=1"
fi
expect demo "^\[ *[0-9]+ ms\] where_all:$" \
    "^  #[0-9]+ 'sleepy' blocked: sleeping \([0-9]+\.[0-9]{3}s left\) for [0-9.]+s at .*main\.rs:[0-9]+$" \
    "^  #[0-9]+ 'listener' blocked: fifo for [0-9.]+s at .*main\.rs:[0-9]+$" \
    "^  #[0-9]+ 'reporter' running: running" \
    "demo: all phases done"

step "canary test (a coroutine overruns its stack)"
run overflow thumbv7m-none-eabi overflow
expect overflow "spawned #1 'deep'" \
    "^coroutine #1 'deep' overflowed its stack \(4 KiB\): the canary at its limit was overwritten$" \
    "^coroutine #1 'deep' overflowed its stack \(4 KiB\)$" \
    "overflow: passed, the canary caught 'deep'"

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

printf '\nci/embedded.sh: all passed\n'
