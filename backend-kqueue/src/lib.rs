//! shrapnel-kqueue: the [`Poller`](shrapnel_core::poller::Poller) for FreeBSD, macOS,
//! NetBSD, OpenBSD and DragonFly, over kqueue.
//!
//! `KqueuePoller` registers a source as one `EVFILT_READ` and/or one `EVFILT_WRITE`
//! filter with `EV_CLEAR` (edge-triggered: a filter reports once, then again only when its
//! state changes), so the scheduler's readiness cache makes steady-state I/O cost no
//! `kevent` change at all. A notify from another thread triggers an `EVFILT_USER` event in
//! the same queue. On other operating systems this crate is empty (on Linux unless the
//! `libkqueue` feature is on, below); the `shrapnel` crate picks the epoll backend there.
//!
//! # Example
//!
//! ```no_run
//! # #[cfg(any(kqueue_os, libkqueue))]
//! # fn main() -> Result<(), shrapnel_core::poller::OsError> {
//! use shrapnel_core::poller::{Interest, Poller, Token};
//! use shrapnel_kqueue::KqueuePoller;
//! use std::time::Duration;
//!
//! let poller = KqueuePoller::new()?;
//!
//! // A pipe: register the read end, then write to the other.
//! let mut fds = [0; 2];
//! // SAFETY: pipe fills a two-element array with two new fds.
//! assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
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
//! # #[cfg(not(any(kqueue_os, libkqueue)))]
//! # fn main() {}
//! ```
//!
//! # What has been checked, and where
//!
//! This project's CI has no BSD or macOS kernel. What it does:
//!
//! - `ci/kqueue.sh` *runs* the conformance suite (`tests/conformance.rs`, the same cases
//!   epoll passes) on Linux against libkqueue, a userspace implementation of the kqueue API
//!   over epoll and eventfd, with the `libkqueue` feature: `ffi.rs` then declares
//!   libkqueue's `struct kevent` and constants (checked against its header by that script)
//!   and links it; every other line of this crate is the code the BSDs run. That exercises
//!   our use of kqueue (`EV_RECEIPT` errors, `EV_CLEAR` edges, `EVFILT_USER` wake-ups,
//!   merging, timeouts), not a BSD kernel's kqueue.
//! - `ci/cross.sh` builds and lints this crate (`cargo clippy -- -D warnings`) for
//!   `x86_64-unknown-freebsd` and `aarch64-apple-darwin`, which catches type and API
//!   mistakes against `libc`'s definitions for those systems.
//!
//! Nothing here has run on a BSD or macOS kernel: `cargo test -p shrapnel-kqueue` on
//! FreeBSD or macOS would. NetBSD, OpenBSD and DragonFly (whose `kevent` field types differ
//! and are handled) have no prebuilt standard library; `SHRAPNEL_CROSS_TIER3=1 ci/cross.sh`
//! type-checks them with nightly `-Zbuild-std`, and that passes, but that is all.
//! `EVFILT_USER`, used for the notifier, needs NetBSD 10 or OpenBSD 7.8 or later.
//!
//! The `libkqueue` feature is for that CI run only (on the kqueue systems it changes
//! nothing): it links `libkqueue.a` from the directory in `SHRAPNEL_LIBKQUEUE_DIR`, or
//! without that variable the system's `-lkqueue`.
//!
//! # Details
//!
//! - Changes are applied with `EV_RECEIPT`, so each filter reports its own error and no
//!   pending event is consumed while registering; `register` fails with the first error
//!   (`EBADF` for a closed fd). `deregister` deletes both filters and ignores `ENOENT` (a
//!   direction that was never watched).
//! - An `EV_EOF` filter is reported as `hangup` with both `readable` and `writable` set, so
//!   both waiting directions retry and see the end of file or the error.
//! - The read and write filters of one source that fire in the same `poll` are merged into
//!   one [`Event`](shrapnel_core::poller::Event).
//! - Timeouts are passed as a `timespec` with nanosecond precision (never shortened);
//!   beyond `i32::MAX` seconds they are capped, which shows up as a spurious empty return.
//! - The kqueue fd is close-on-exec (`kqueue1(O_CLOEXEC)` on NetBSD, `FD_CLOEXEC` right
//!   after `kqueue()` elsewhere) and closed when the poller and every notifier handle are
//!   dropped.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[cfg(any(kqueue_os, libkqueue))]
mod ffi;
#[cfg(any(kqueue_os, libkqueue))]
mod kqueue;
#[cfg(any(kqueue_os, libkqueue))]
pub use kqueue::KqueuePoller;
