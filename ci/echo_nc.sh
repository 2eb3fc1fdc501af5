#!/usr/bin/env bash
# The echo example against 100 concurrent real `nc` clients: each must get its bytes back.
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/apt.sh
apt_install netcat-openbsd

port=${1:-17000}
cargo build -q --example echo
work=$(mktemp -d)
server=
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT

# round NAME ARGS...: start the server with ARGS, 100 clients, compare, stop the server.
round() {
    local name=$1
    shift
    ./target/debug/examples/echo "$port" "$@" >/dev/null &
    server=$!
    for _ in $(seq 50); do nc -z 127.0.0.1 "$port" 2>/dev/null && break; sleep 0.1; done
    local pids=() i
    for i in $(seq 100); do
        head -c 100 /dev/urandom | base64 -w0 > "$work/in.$i"
        # -N: shut the socket down after stdin's EOF, so the server sees EOF and closes.
        timeout 20 nc -N 127.0.0.1 "$port" < "$work/in.$i" > "$work/out.$i" &
        pids+=($!)
    done
    local wait_failed=0 bad=0
    for i in "${pids[@]}"; do wait "$i" || wait_failed=1; done
    for i in $(seq 100); do
        cmp -s "$work/in.$i" "$work/out.$i" || { echo "client $i: reply differs" >&2; bad=$((bad+1)); }
    done
    # SIGTERM: the clean stop ends it with status 143.
    kill -TERM "$server"
    local status=0
    wait "$server" || status=$?
    server=
    if [ "$bad" -ne 0 ] || [ "$wait_failed" -ne 0 ]; then
        echo "echo_nc ($name): $bad of 100 clients did not get their bytes back" >&2
        exit 1
    fi
    if [ "$status" -ne 143 ]; then
        echo "echo_nc ($name): the server ended with status $status on SIGTERM, not 143" >&2
        exit 1
    fi
    echo "echo_nc ($name): 100 concurrent nc clients got their bytes back; SIGTERM stopped it with 143"
}

round "one scheduler"
round "two schedulers" --cores 2
