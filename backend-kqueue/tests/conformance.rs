//! The Poller conformance suite (shrapnel_core::poller::conformance) run against kqueue.
//!
//! Runs only on the BSDs and macOS; this project's CI builds it for FreeBSD and macOS but has
//! no such kernel to run it on.
#![cfg(kqueue_os)]

shrapnel_core::poller_conformance_tests!(
    shrapnel_kqueue::KqueuePoller::new().expect("kqueue failed (too many open files?)")
);
