//! The Poller trait: how the scheduler waits for I/O readiness.
//!
//! A backend crate (shrapnel-epoll, shrapnel-kqueue) implements [`Poller`] over the OS
//! mechanism; targets without I/O use [`NullPoller`], which only sleeps until the next timer.
//! Sources are raw integer fds. Registration is edge-triggered: an event is delivered when a
//! source *becomes* ready, and the scheduler keeps a readiness cache per source (see
//! `io.rs`), so a steady-state read or write costs no registration syscall.

use alloc::sync::Arc;
use core::fmt;
use core::time::Duration;

#[cfg(feature = "conformance")]
pub mod conformance;

/// A raw OS source: a file descriptor on POSIX.
pub type RawSource = i32;

/// The caller's name for a registered source, handed back with each event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Token(pub usize);

/// Which directions a registration watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interest {
    /// Deliver an event when the source becomes readable (or hangs up).
    pub readable: bool,
    /// Deliver an event when the source becomes writable (or errors).
    pub writable: bool,
}

impl Interest {
    /// Read readiness only.
    pub const READABLE: Interest = Interest {
        readable: true,
        writable: false,
    };
    /// Write readiness only.
    pub const WRITABLE: Interest = Interest {
        readable: false,
        writable: true,
    };
    /// Both directions: what the scheduler registers every source with.
    pub const BOTH: Interest = Interest {
        readable: true,
        writable: true,
    };
}

/// One readiness report from [`Poller::poll`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// The token the source was registered with.
    pub token: Token,
    /// A read would not block (data, EOF, or a pending error).
    pub readable: bool,
    /// A write would not block (buffer space, or a pending error).
    pub writable: bool,
    /// The peer hung up or the source is in an error state; both waiters should retry.
    pub hangup: bool,
}

/// An OS error number from a backend, with the operation that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OsError {
    /// What was being done ("epoll_ctl(ADD)", "kevent", ...).
    pub op: &'static str,
    /// The raw `errno`.
    pub errno: i32,
}

impl fmt::Display for OsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed with errno {}", self.op, self.errno)
    }
}

impl core::error::Error for OsError {}

/// Wakes a [`Poller::poll`] that is blocked, from any thread.
pub trait Notify: Send + Sync {
    /// Make the current or next `poll` on the owning poller return promptly.
    fn notify(&self);
}

/// An OS readiness mechanism, owned by one scheduler (one OS thread).
///
/// The contract every backend meets, checked by the conformance suite
/// (`poller::conformance`, feature `conformance`):
/// - `register` watches a source edge-triggered for the given interest; an event is
///   delivered when the source becomes ready after registration or after the last event
///   (a source already ready at registration produces one event).
/// - `deregister` is called before the source is closed; afterwards no event for its token
///   is delivered.
/// - `poll` appends at most `events.capacity() - events.len()` events (at least one slot is
///   always available), waits at most `timeout` (`None` = forever), and returns early when
///   the notifier fires. Spurious empty returns are allowed.
pub trait Poller {
    /// Start watching `source`.
    fn register(&self, source: RawSource, token: Token, interest: Interest) -> Result<(), OsError>;
    /// Change what `source` is watched for.
    fn reregister(
        &self,
        source: RawSource,
        token: Token,
        interest: Interest,
    ) -> Result<(), OsError>;
    /// Stop watching `source`; must be called before the source is closed.
    fn deregister(&self, source: RawSource) -> Result<(), OsError>;
    /// Wait for events, at most `timeout`; returns how many were appended to `events`.
    fn poll(
        &self,
        events: &mut alloc::vec::Vec<Event>,
        timeout: Option<Duration>,
    ) -> Result<usize, OsError>;
    /// A handle that wakes this poller from any thread.
    fn notifier(&self) -> Arc<dyn Notify>;
    /// A short name for messages and `stats` ("epoll", "kqueue", "null").
    fn name(&self) -> &'static str;
}

/// The poller for targets with no I/O sources: `poll` idles until the timeout.
///
/// On bare metal the idle is a wait-for-interrupt supplied by the [`Idle`] hook; an
/// interrupt handler that made a coroutine runnable (see `sched::wake_from_interrupt`)
/// ends the idle early through the notifier.
pub struct NullPoller<I: Idle> {
    idle: I,
    notified: Arc<NullNotify>,
}

/// How a [`NullPoller`] waits: on Cortex-M a `WFI`; elsewhere a spin or a host sleep.
pub trait Idle {
    /// Wait until an interrupt or roughly `timeout` has passed (`None`: until an interrupt).
    fn idle(&self, timeout: Option<Duration>);
}

struct NullNotify(core::sync::atomic::AtomicBool);

impl Notify for NullNotify {
    fn notify(&self) {
        self.0.store(true, core::sync::atomic::Ordering::Release);
    }
}

impl<I: Idle> NullPoller<I> {
    /// A poller that idles with `idle`.
    pub fn new(idle: I) -> Self {
        NullPoller {
            idle,
            notified: Arc::new(NullNotify(core::sync::atomic::AtomicBool::new(false))),
        }
    }
}

impl<I: Idle> Poller for NullPoller<I> {
    fn register(&self, _: RawSource, _: Token, _: Interest) -> Result<(), OsError> {
        Err(OsError {
            op: "register on NullPoller (this target has no I/O sources)",
            errno: 0,
        })
    }
    fn reregister(&self, _: RawSource, _: Token, _: Interest) -> Result<(), OsError> {
        Err(OsError {
            op: "reregister on NullPoller (this target has no I/O sources)",
            errno: 0,
        })
    }
    fn deregister(&self, _: RawSource) -> Result<(), OsError> {
        Ok(())
    }
    fn poll(
        &self,
        _events: &mut alloc::vec::Vec<Event>,
        timeout: Option<Duration>,
    ) -> Result<usize, OsError> {
        use core::sync::atomic::Ordering;
        if !self.notified.0.swap(false, Ordering::AcqRel) && timeout != Some(Duration::ZERO) {
            self.idle.idle(timeout);
            self.notified.0.store(false, Ordering::Release);
        }
        Ok(0)
    }
    fn notifier(&self) -> Arc<dyn Notify> {
        self.notified.clone()
    }
    fn name(&self) -> &'static str {
        "null"
    }
}
