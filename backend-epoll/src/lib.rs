//! shrapnel-epoll: the [`Poller`](shrapnel_core::poller::Poller) for Linux, over epoll and
//! an eventfd.
//!
//! `EpollPoller` registers every source once, edge-triggered (`EPOLLET`), for the
//! directions asked; the scheduler keeps a readiness cache per source, so steady-state I/O
//! costs no `epoll_ctl` at all. A notify from another thread writes an eventfd that sits in
//! the same epoll set under a token users never see. On other operating systems this crate
//! is empty; the `shrapnel` crate picks the kqueue backend there.
//!
//! # Example
//!
//! ```
//! # #[cfg(target_os = "linux")]
//! # fn main() -> Result<(), shrapnel_core::poller::OsError> {
//! use shrapnel_core::poller::{Interest, Poller, Token};
//! use shrapnel_epoll::EpollPoller;
//! use std::time::Duration;
//!
//! let poller = EpollPoller::new()?;
//!
//! // A pipe: register the read end, then write to the other.
//! let mut fds = [0; 2];
//! // SAFETY: pipe2 fills a two-element array with two new fds.
//! assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) }, 0);
//! let (reader, writer) = (fds[0], fds[1]);
//! poller.register(reader, Token(1), Interest::READABLE)?;
//! // SAFETY: writes one byte from a live buffer.
//! assert_eq!(unsafe { libc::write(writer, b"x".as_ptr().cast(), 1) }, 1);
//!
//! let mut events = Vec::with_capacity(64);
//! poller.poll(&mut events, Some(Duration::from_secs(1)))?;
//! assert_eq!(events[0].token, Token(1));
//! assert!(events[0].readable);
//!
//! // Another thread can end a poll that would otherwise wait forever.
//! let notifier = poller.notifier();
//! std::thread::spawn(move || notifier.notify());
//! events.clear();
//! poller.poll(&mut events, None)?;
//! assert!(events.is_empty()); // the wake-up is not an event
//!
//! // Deregister before closing.
//! poller.deregister(reader)?;
//! // SAFETY: both fds are ours and no longer used.
//! unsafe { libc::close(reader); libc::close(writer) };
//! # Ok(())
//! # }
//! # #[cfg(not(target_os = "linux"))]
//! # fn main() {}
//! ```
//!
//! # Why edge-triggered
//!
//! With `EPOLLET` a source is added once and never touched again until it is removed: a
//! coroutine reads or writes until the call would block, clears its cached readiness, and
//! waits for the next edge. The alternative every other runtime design reaches for,
//! `EPOLLONESHOT`, disarms the source after each event, so each wait must re-arm it with an
//! `epoll_ctl(EPOLL_CTL_MOD)`: one extra syscall per wait, two per round trip when both
//! ends wait. `examples/et_vs_oneshot.rs` runs one ping-pong over a socketpair, both ends in
//! one thread driven by one epoll set, each end reading until `EAGAIN` and then waiting,
//! 1,000,000 round trips per mode, counting syscalls as it makes them (and `strace -c -f`
//! agrees):
//!
//! | mode | epoll_ctl / round trip | syscalls / round trip | time / round trip |
//! | --- | --- | --- | --- |
//! | `EPOLLET` + readiness cache | 0 | 8 | 6.54 µs |
//! | `EPOLLONESHOT` re-armed per wait | 2 | 10 | 7.25 µs |
//!
//! Times are the median of 5 alternating runs of 10⁶ round trips on a 2-vCPU x86_64 VM
//! (Linux 6.18) where a syscall costs about 0.7 µs and other builds were running, so the
//! ratio is what carries over: oneshot costs 1.11× per round trip, the price of its two
//! `epoll_ctl` calls (about 0.36 µs each here). A runtime that re-arms both directions on
//! every wait pays more.
//!
//! # Details
//!
//! - Timeouts are rounded *up* to whole milliseconds, so a `poll(Some(t))` never returns
//!   before `t` because of truncation; a timeout beyond `i32::MAX` ms (24.8 days) is capped
//!   and shows up as a spurious empty return.
//! - `EINTR` from `epoll_wait` is returned as 0 events, so the scheduler can look at
//!   whatever the signal changed.
//! - Events are written straight into the spare capacity of the caller's vector: the kernel
//!   fills it with `epoll_event`s, which are then rewritten in place as
//!   [`Event`](shrapnel_core::poller::Event)s; no second buffer, no allocation unless the
//!   vector has no spare slot at all.
//! - `Token(usize::MAX)` is reserved for the notifier and refused by `register`.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[cfg(target_os = "linux")]
mod epoll;
#[cfg(target_os = "linux")]
pub use epoll::EpollPoller;
