#!/usr/bin/env bash
# Fuzz the backdoor's line/telnet decoder and command parser (fuzz/fuzz_targets/
# backdoor_line.rs) for 60 s, or for the seconds given as $1. Installs cargo-fuzz if missing
# (about a minute to build); uses the nightly toolchain when rustup has one, else the stable
# one with RUSTC_BOOTSTRAP=1 (cargo-fuzz needs nightly's -Z sanitizer flags).
# Measured on 2 cores: cargo-fuzz install ~50 s, first fuzz build ~2.5 min, the run 60 s.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}

command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked

if rustup run nightly rustc --version >/dev/null 2>&1; then
    fuzz=(cargo +nightly fuzz)
else
    echo "ci/fuzz.sh: no nightly toolchain; using stable with RUSTC_BOOTSTRAP=1"
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi

cd fuzz
"${fuzz[@]}" build backdoor_line
"${fuzz[@]}" run backdoor_line -- -max_total_time="$secs" -max_len=4096
echo "ci/fuzz.sh: backdoor_line ran ${secs}s without a crash"
