#!/usr/bin/env bash
# Run the kqueue backend on Linux against libkqueue, the BSD kqueue API implemented in
# userspace (over epoll, eventfd, signalfd, pidfd): this machine has no BSD kernel, and a
# suite that passes here has exercised our kqueue code, not a BSD kernel's kqueue.
#
# Builds libkqueue from the vendored source beside the checkout (../shared/vendor/libkqueue,
# or SHRAPNEL_LIBKQUEUE_SRC) into target/libkqueue, checks that the struct layout and
# constants backend-kqueue/src/ffi.rs declares match its header, then runs the Poller
# conformance suite with shrapnel-kqueue's `libkqueue` feature (statically linked).
# Installs cmake and the C toolchain through apt when missing. Extra arguments go to
# `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/apt.sh

apt_install cmake make gcc libc6-dev

src="${SHRAPNEL_LIBKQUEUE_SRC:-../shared/vendor/libkqueue}"
build=target/libkqueue
if [ ! -f "$src/CMakeLists.txt" ]; then
    echo "ci/kqueue.sh: no libkqueue source in $src (the vendored copy is expected in" \
        "shared/vendor/ beside the checkout; set SHRAPNEL_LIBKQUEUE_SRC to another copy)" >&2
    exit 1
fi

echo "== building libkqueue from $src into $build"
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DENABLE_TESTING=NO >/dev/null
cmake --build "$build" -j "$(nproc)" >/dev/null

echo "== checking backend-kqueue/src/ffi.rs against libkqueue's <sys/event.h>"
# The values ffi.rs declares for libkqueue, checked by the C compiler against the header
# libkqueue's build generated (a mismatch here would be silent memory corruption there).
cc -fsyntax-only -I "$build/include" -x c - <<'C'
#include <stddef.h>
#include <stdint.h>
#include <sys/event.h>
#define SAME(a, b) _Static_assert((a) == (b), #a " is not " #b " (update backend-kqueue/src/ffi.rs)")
struct kevent k;
SAME(offsetof(struct kevent, ident), 0);
SAME(sizeof k.ident, sizeof(uintptr_t));
SAME(offsetof(struct kevent, filter), sizeof(uintptr_t));
SAME(sizeof k.filter, 2);
SAME(offsetof(struct kevent, flags), sizeof(uintptr_t) + 2);
SAME(sizeof k.flags, 2);
SAME(offsetof(struct kevent, fflags), sizeof(uintptr_t) + 4);
SAME(sizeof k.fflags, 4);
SAME(offsetof(struct kevent, data), sizeof(uintptr_t) + 8);
SAME(sizeof k.data, sizeof(intptr_t));
SAME(offsetof(struct kevent, udata), sizeof(uintptr_t) + 8 + sizeof(intptr_t));
SAME(sizeof k.udata, sizeof(void *));
SAME(sizeof(struct kevent), 2 * sizeof(uintptr_t) + 8 + sizeof(void *));
SAME(EVFILT_READ, -1);
SAME(EVFILT_WRITE, -2);
SAME(EVFILT_USER, -11);
SAME(EV_ADD, 0x0001);
SAME(EV_DELETE, 0x0002);
SAME(EV_CLEAR, 0x0020);
SAME(EV_RECEIPT, 0x0040);
SAME(EV_ERROR, 0x4000);
SAME(EV_EOF, 0x8000);
SAME(NOTE_TRIGGER, 0x01000000);
C

export SHRAPNEL_LIBKQUEUE_DIR="$PWD/$build"

echo "== the Poller conformance suite: shrapnel-kqueue on libkqueue"
cargo test -p shrapnel-kqueue --features libkqueue "$@"
