#!/usr/bin/env bash
# The code size of the scheduler's switch path with the debug features off, with `latency`
# and with `stacks` (BENCHMARKS.md, "debug features off cost nothing").
#
# Builds bench/examples/switch_path.rs three times (release profile, separate target
# directories under bench/target/code-size/) and prints, for `event_loop` (which inlines
# `SchedState::run` and the context-switch calls) and `yield_slice`, the symbol size from
# `nm --size-sort` and a hash of the function's instructions with addresses masked, so two
# builds whose code is the same instruction for instruction print the same hash.
#
# One codegen unit: with the default 16, how rustc splits a crate into units depends on
# every item in it, and inlining across units differs with the split, so a feature that
# adds a function anywhere can change the code of functions it does not touch. With one
# unit, only the code a feature really compiles into a function changes it.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1

symbols=(
    'shrapnel_core::sched::event_loop::event_loop'
    'shrapnel_core::sched::yield_slice'
)

build() { # features -> path of the example binary
    local features=$1 dir="bench/target/code-size/${1:-off}"
    cargo build --quiet --release --manifest-path bench/Cargo.toml --example switch_path \
        ${features:+--features "$features"} --target-dir "$dir"
    echo "$dir/release/examples/switch_path"
}

# "start size" (hex) of one symbol.
where() { # binary symbol
    nm -C --size-sort -S "$1" | awk -v s="$2" '
        { name = $0; sub(/^[^ ]+ [^ ]+ [^ ]+ /, "", name) }
        name == s { print $1, $2; exit }'
}

# Instructions of one function, with addresses and address operands masked.
body() { # binary start size
    objdump -d --no-show-raw-insn -M intel --start-address=$((0x$2)) \
        --stop-address=$((0x$2 + 0x$3)) "$1" |
        sed -n 's/^ *[0-9a-f]*:\t//p' |
        sed -E 's/0x[0-9a-f]+/ADDR/g; s/[0-9a-f]+ <[^>]*>/ADDR/g'
}

printf '%-10s %-36s %8s  %s\n' features symbol bytes instructions-hash
for features in "" latency stacks; do
    bin=$(build "$features")
    for sym in "${symbols[@]}"; do
        read -r start size < <(where "$bin" "$sym") || true
        if [ -z "${start:-}" ]; then
            printf '%-10s %-36s %8s\n' "${features:-off}" "$sym" missing
            continue
        fi
        hash=$(body "$bin" "$start" "$size" | sha256sum | cut -c1-16)
        printf '%-10s %-36s %8d  %s\n' "${features:-off}" "$sym" $((0x$size)) "$hash"
        unset start size
    done
done
