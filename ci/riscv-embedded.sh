#!/usr/bin/env bash
# shrapnel-core on bare-metal RISC-V: build the core for riscv32imac-unknown-none-elf and
# riscv32imafc-unknown-none-elf, run examples/riscv in QEMU's virt board in machine mode (the
# demo with the latency warning, the core's portable test suites and the context-switch
# test on RV32IMAC, and the suites and the switch test with fs0-fs11 on RV32IMAFC), check
# every expected line and the exit status the test finisher hands QEMU, and report the
# demo's size and the core's share of .text.
#
# Installs what it needs when missing (qemu-system-misc, which has qemu-system-riscv32, and
# the riscv64 binutils, which read RV32 ELFs too, through apt; the Rust targets through
# rustup), so a fresh machine passes. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/apt.sh
. ci/portable-suites.sh

step() { printf '\n==> riscv-embedded: %s\n' "$*"; }
fail() {
    echo "ci/riscv-embedded.sh: FAILED: $*" >&2
    exit 1
}

apt_install qemu-system-misc binutils-riscv64-linux-gnu python3
targets=(riscv32imac-unknown-none-elf riscv32imafc-unknown-none-elf)
for t in "${targets[@]}"; do
    rustup target list --installed | grep -qx "$t" || rustup target add "$t"
done
# The example's .cargo/config.toml sets target rustflags (frame pointers), which a RUSTFLAGS
# from the environment would replace.
unset RUSTFLAGS CARGO_BUILD_RUSTFLAGS

step "shrapnel-core for ${targets[*]}"
for t in "${targets[@]}"; do
    cargo build -p shrapnel-core --target "$t" --no-default-features
done
# core/src/arch/riscv.rs compiles only for RISC-V: lint it for RV32 (soft and single float).
for t in "${targets[@]}"; do
    cargo clippy -p shrapnel-core --target "$t" --no-default-features -- -D warnings
done

example=examples/riscv
export CARGO_TARGET_DIR="$PWD/$example/target"
features=(--features latency)

step "example: release build (riscv32imac; the switch test also for riscv32imafc)"
(cd "$example" && cargo build --release --bins "${features[@]}")
(cd "$example" && cargo build --release --target riscv32imafc-unknown-none-elf --bin switch \
    --bin suites "${features[@]}")

out_dir=$(mktemp -d)
trap 'rm -rf "$out_dir"' EXIT

# run NAME TARGET BIN: boot BIN in QEMU through the example's cargo runner, with a time limit;
# the output goes to $out_dir/NAME.txt and is shown; a non-zero exit status (the test
# finisher's fail code, or a timeout) fails the script.
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

step "demo (QEMU virt, RV32IMAC, machine mode)"
run demo riscv32imac-unknown-none-elf shrapnel-riscv
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
expect demo "spawned #10 'busy'" \
    "High Latency: \(0\.1[0-9]{2}s\) for <coro #10 name='busy' dead=0 started=1"
expect demo "^\[ *[0-9]+ ms\] where_all:$" \
    "^  #[0-9]+ 'sleepy' blocked: sleeping \([0-9]+\.[0-9]{3}s left\) for [0-9.]+s at .*main\.rs:[0-9]+$" \
    "^  #[0-9]+ 'listener' blocked: fifo for [0-9.]+s at .*main\.rs:[0-9]+$" \
    "^  #[0-9]+ 'reporter' running: running" \
    "demo: all phases done"

step "the core's portable suites (core/tests/portable: semantics, sync, interruption, channel, in_parallel, coro_local), RV32IMAC"
run suites-imac riscv32imac-unknown-none-elf suites
check_portable_suites suites-imac "$out_dir/suites-imac.txt"

step "the same suites on RV32IMAFC (fs0-fs11 saved at each switch)"
run suites-imafc riscv32imafc-unknown-none-elf suites
check_portable_suites suites-imafc "$out_dir/suites-imafc.txt"

step "context switch test, RV32IMAC (s0-s11)"
run switch-imac riscv32imac-unknown-none-elf switch
expect switch-imac "INIT_SIZE 80 bytes" "s0-s11 survive both ways: ok" \
    "frame records chain into the resumer: ok" "switch: all [0-9]+ checks passed"

step "context switch test, RV32IMAFC (s0-s11, fs0-fs11)"
run switch-imafc riscv32imafc-unknown-none-elf switch
expect switch-imafc "INIT_SIZE 128 bytes" "s0-s11 and fs0-fs11 survive both ways: ok" \
    "frame records chain into the resumer: ok" "switch: all [0-9]+ checks passed"

step "size of the demo (release, riscv32imac, with the latency feature; no budget)"
elf="$CARGO_TARGET_DIR/riscv32imac-unknown-none-elf/release/shrapnel-riscv"
riscv64-linux-gnu-size "$elf"
SIZE=riscv64-linux-gnu-size NM=riscv64-linux-gnu-nm OBJDUMP=riscv64-linux-gnu-objdump \
    python3 examples/cortex-m/size_report.py "$elf" core/src

printf '\nci/riscv-embedded.sh: all passed\n'
