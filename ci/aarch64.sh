#!/usr/bin/env bash
# Run the core and epoll test suites for aarch64 Linux under qemu-aarch64 (user mode).
#
# Installs what it needs when missing (qemu-user and the aarch64 cross gcc, used as the
# linker, through apt; the Rust target through rustup), so a fresh Debian or Ubuntu machine
# passes. Safe to run again: nothing is installed twice. Extra arguments go to `cargo test`.
set -euo pipefail

cd "$(dirname "$0")/.."

target=aarch64-unknown-linux-gnu
sysroot=/usr/aarch64-linux-gnu

. ci/apt.sh
# The cross C library (crt files, libc) is only recommended by the compiler package.
apt_install qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross

if ! rustup target list --installed | grep -qx "$target"; then
    rustup target add "$target"
fi

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L $sysroot"

cargo test --target "$target" -p shrapnel-core -p shrapnel-epoll "$@"
