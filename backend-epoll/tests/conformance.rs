//! The Poller conformance suite (shrapnel_core::poller::conformance) run against epoll.
#![cfg(target_os = "linux")]

shrapnel_core::poller_conformance_tests!(
    shrapnel_epoll::EpollPoller::new().expect("epoll_create1 failed (too many open files?)")
);
