# Sourced by ci/embedded.sh and ci/riscv-embedded.sh.
# `check_portable_suites NAME FILE [SUITE,SUITE...]`: the bare-metal suite runner's output in
# FILE (`--bin suites`, issue 14 item 3) ran every test of the named portable suites
# (default: all of core/tests/portable; a runner built with SHRAPNEL_PORTABLE_SUITES holds
# only those) — as many as those files mark with `#[cfg_attr(test, test)]`, one
# `test suite::name ...` line each — and ended with its summary. The run's exit status is
# checked by the caller; this catches a runner that stopped early or skipped a suite.
check_portable_suites() {
    local name=$1 file=$2 list=${3:-} expected started files=()
    if [ -n "$list" ]; then
        IFS=, read -r -a files <<<"$list"
        files=("${files[@]/#/core/tests/portable/}")
        files=("${files[@]/%/.rs}")
    else
        files=(core/tests/portable/*.rs)
    fi
    expected=$(cat "${files[@]}" | grep -c '^#\[cfg_attr(test, test)\]$')
    started=$(grep -c '^test [a-z_]*::[a-z0-9_]* \.\.\.$' "$file" || true)
    [ "$started" -eq "$expected" ] ||
        fail "$name: $started tests started, the portable suites ${list:-(all)} have $expected"
    grep -qx "portable suites: $expected tests passed" "$file" ||
        fail "$name: no line 'portable suites: $expected tests passed'"
    echo "    $name: all $expected tests of the portable suites ${list:-(all)} passed"
}
