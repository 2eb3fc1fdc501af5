#!/usr/bin/env bash
# Build and lint the kqueue side of shrapnel for the BSD and macOS targets this machine
# cannot run: type and API mistakes against libc show up here; behaviour needs a real kernel
# (see backend-kqueue's crate doc).
#
# SHRAPNEL_CROSS_TIER3=1 also type-checks NetBSD, OpenBSD and DragonFly, which have no
# prebuilt standard library: that needs the nightly toolchain with rust-src (-Zbuild-std)
# and takes about a minute per target.
set -euo pipefail

# Packages checked for every target below; add crates here as they gain kqueue code.
PACKAGES="-p shrapnel-kqueue -p shrapnel"
TARGETS="x86_64-unknown-freebsd aarch64-apple-darwin"
TIER3_TARGETS="x86_64-unknown-netbsd x86_64-unknown-openbsd x86_64-unknown-dragonfly"

cd "$(dirname "$0")/.."

sysroot="$(rustc --print sysroot)"
for target in $TARGETS; do
    # A standard library already in the sysroot is enough, whoever put it there.
    if ! compgen -G "$sysroot/lib/rustlib/$target/lib/libstd-*.rlib" >/dev/null; then
        rustup target add "$target"
    fi
done

for target in $TARGETS; do
    echo "== cargo clippy $PACKAGES --target $target"
    # shellcheck disable=SC2086 # PACKAGES is a list of arguments
    cargo clippy $PACKAGES --target "$target" --all-targets -- -D warnings
done

if [[ "${SHRAPNEL_CROSS_TIER3:-0}" == 1 ]]; then
    rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
    rustup component add rust-src --toolchain nightly
    for target in $TIER3_TARGETS; do
        echo "== cargo +nightly check $PACKAGES --target $target (build-std)"
        # shellcheck disable=SC2086
        cargo +nightly check -Zbuild-std=std,panic_abort $PACKAGES --target "$target" \
            --all-targets </dev/null
    done
fi
