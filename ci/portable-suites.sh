# Sourced by ci/embedded.sh and ci/riscv-embedded.sh. `check_portable_suites NAME FILE`: the
# bare-metal suite runner's output in FILE (`--bin suites`, issue 14 item 3) ran every test
# of core/tests/portable/ — as many as the suites mark with `#[cfg_attr(test, test)]`, one
# `test suite::name ...` line each — and ended with its summary. The run's exit status is
# checked by the caller; this catches a runner that stopped early or skipped a suite.
check_portable_suites() {
    local name=$1 file=$2 expected started
    expected=$(cat core/tests/portable/*.rs | grep -c '^#\[cfg_attr(test, test)\]$')
    started=$(grep -c '^test [a-z_]*::[a-z0-9_]* \.\.\.$' "$file" || true)
    [ "$started" -eq "$expected" ] ||
        fail "$name: $started tests started, the portable suites have $expected"
    grep -qx "portable suites: $expected tests passed" "$file" ||
        fail "$name: no line 'portable suites: $expected tests passed'"
    echo "    $name: all $expected portable tests passed"
}
