//! The Poller conformance suite (shrapnel_core::poller::conformance) run against kqueue.
//!
//! Runs on the BSDs and macOS, and on Linux against libkqueue with the `libkqueue` feature
//! (`ci/kqueue.sh`, which is how this project's CI runs it: it has no BSD kernel).
#![cfg(any(kqueue_os, libkqueue))]

shrapnel_core::poller_conformance_tests!(
    shrapnel_kqueue::KqueuePoller::new().expect("kqueue failed (too many open files?)")
);
