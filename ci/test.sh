#!/usr/bin/env bash
# Everything CI checks, in one command (the README's test command). Installs what it needs
# (apt packages, rustup components and targets), so a machine with only the Rust
# toolchain passes. Meant to finish well under 40 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/apt.sh

step() { printf '\n==> %s\n' "$*"; }
start=$(date +%s)

rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy

step "format"
cargo fmt --all -- --check

step "clippy (all features, all targets)"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --workspace --all-targets --features latency,stacks,backdoor-script -- -D warnings

step "tests"
# The backdoor tests and the examples' tests drive real clients.
apt_install socat netcat-openbsd curl openssl
cargo test --workspace
step "tests with the debug features on"
cargo test -p shrapnel-core --features std,latency,stacks
# The context switch with the FP control words switched per coroutine (x86_64 MXCSR/x87 CW).
cargo test -p shrapnel-core --features std,fp-control
cargo clippy -p shrapnel-core --all-targets --features std,fp-control -- -D warnings
cargo test -p shrapnel --features latency,stacks
cargo test -p shrapnel --features backdoor-script,latency
# Debug output as log records; tracing spans per coroutine (tests/logging.rs).
cargo test -p shrapnel --features log,tracing,latency --test logging

step "the core's semantics, sync and interruption suites again, every coroutine on the shared stack"
SHRAPNEL_TEST_SHARED_STACK=1 cargo test -p shrapnel-core --features std,latency,stacks \
    --test semantics --test sync --test interrupt --test latency --test shared_stack \
    --test parallel --test coro_local --test wait_for --test wait_profile --test channel

step "docs"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --features latency,stacks,backdoor-script

step "packaging: cargo package for every crate, --all-features build and clippy"
bash ci/package.sh

step "no_std build of the core"
cargo build -p shrapnel-core --no-default-features

step "FreeBSD and macOS builds (kqueue)"
bash ci/cross.sh

step "kqueue backend run on Linux against libkqueue (userspace kqueue, built from ../shared/vendor)"
bash ci/kqueue.sh

step "aarch64 Linux under qemu-aarch64"
bash ci/aarch64.sh

step "riscv64 Linux under qemu-riscv64"
bash ci/riscv64.sh

step "Cortex-M: the core in QEMU (lm3s6965evb, mps2-an386)"
bash ci/embedded.sh

step "RISC-V bare metal: the core in QEMU (virt, RV32IMAC and RV32IMAFC)"
bash ci/riscv-embedded.sh

step "echo example against 100 nc clients"
bash ci/echo_nc.sh

step "fuzz the backdoor's line decoder and command parser for 60 s"
bash ci/fuzz.sh

# Something on this kind of machine once replaced /dev/null with a regular file; if a test
# does it, say so here instead of failing mysteriously later.
[ -c /dev/null ] || { echo "ci/test.sh: /dev/null is no longer a character device: a step replaced it" >&2; exit 1; }

printf '\nci/test.sh: all passed in %ss\n' "$(( $(date +%s) - start ))"
