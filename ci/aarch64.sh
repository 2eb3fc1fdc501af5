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

missing=()
command -v qemu-aarch64 >/dev/null 2>&1 || missing+=(qemu-user)
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || missing+=(gcc-aarch64-linux-gnu)
if [ "${#missing[@]}" -gt 0 ]; then
    # apt needs root: use sudo when we are not root and it is there.
    as_root=()
    if [ "$(id -u)" -ne 0 ]; then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "ci/aarch64.sh: ${missing[*]} missing, and neither root nor sudo to install them" >&2
            exit 1
        fi
        as_root=(sudo)
    fi
    echo "ci/aarch64.sh: installing ${missing[*]}"
    "${as_root[@]}" apt-get update
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${missing[@]}"
fi

if ! rustup target list --installed | grep -qx "$target"; then
    rustup target add "$target"
fi

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L $sysroot"

cargo test --target "$target" -p shrapnel-core -p shrapnel-epoll "$@"
