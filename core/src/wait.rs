//! What a blocked coroutine waits for, and the heap-allocated wait queues sync primitives use.
//!
//! A `Waiter` names a coroutine *and* the block it is in (its block sequence number), so
//! a wake-up aimed at a wait that has since ended — the coroutine was interrupted, timed
//! out, or moved on — is recognised and skipped instead of waking the wrong wait. That
//! makes cancellation O(1) and lazy: an interrupted coroutine just leaves its queue entry
//! behind, and the next `wake_one` passes over it to a live waiter, so no wake-up is lost.
//! Queue entries live in the queue's heap buffer, never on a coroutine's stack (ARCHITECTURE.md §2:
//! the shared-stack mode copies stacks away while they are suspended).

use alloc::collections::VecDeque;

use crate::clock::Instant;
use crate::coro::CoroRc;
use crate::poller::RawSource;
use crate::sched::{self, Resume};

/// What a coroutine is doing, for `where`/`where_all` and `ps`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitReason {
    /// Created with `new` and not started yet (or started but not yet run).
    NotStarted,
    /// Running now.
    Running,
    /// Ready to run, in the run queue.
    Scheduled,
    /// Gave up its slice with `yield_slice` (or a forced yield after selfish I/O).
    Yield,
    /// Sleeping until the given instant.
    Sleep(Instant),
    /// Waiting for a file descriptor to become readable.
    Readable(RawSource),
    /// Waiting for a file descriptor to become writable.
    Writable(RawSource),
    /// Waiting for a mutex.
    Mutex,
    /// Waiting for a semaphore.
    Semaphore,
    /// Waiting for an inverted semaphore to drop to zero.
    InvertedSemaphore,
    /// Waiting on a condition variable.
    Condvar,
    /// Waiting for an item from a fifo.
    Fifo,
    /// Waiting to read-lock a rwlock.
    RwLockRead,
    /// Waiting to write-lock a rwlock.
    RwLockWrite,
    /// Waiting for coroutine #id to finish.
    Join(u64),
    /// Waiting for an interrupt handler to signal an `IrqEvent`.
    Irq,
    /// Waiting for a message on a channel (`channel::Receiver`), which any thread may send.
    Channel,
    /// Waiting for work handed to another thread (the runtime's blocking pool) to finish;
    /// the fd is the one its completion is announced on.
    Blocking(RawSource),
    /// Finished.
    Dead,
}

impl core::fmt::Display for WaitReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            WaitReason::NotStarted => f.write_str("not started"),
            WaitReason::Running => f.write_str("running"),
            WaitReason::Scheduled => f.write_str("scheduled"),
            WaitReason::Yield => f.write_str("yielded"),
            WaitReason::Sleep(_) => f.write_str("sleeping"),
            WaitReason::Readable(fd) => write!(f, "readable fd {fd}"),
            WaitReason::Writable(fd) => write!(f, "writable fd {fd}"),
            WaitReason::Mutex => f.write_str("mutex"),
            WaitReason::Semaphore => f.write_str("semaphore"),
            WaitReason::InvertedSemaphore => f.write_str("inverted semaphore"),
            WaitReason::Condvar => f.write_str("condvar"),
            WaitReason::Fifo => f.write_str("fifo"),
            WaitReason::RwLockRead => f.write_str("rwlock (read)"),
            WaitReason::RwLockWrite => f.write_str("rwlock (write)"),
            WaitReason::Join(id) => write!(f, "join #{id}"),
            WaitReason::Irq => f.write_str("interrupt event"),
            WaitReason::Channel => f.write_str("channel"),
            WaitReason::Blocking(fd) => write!(f, "blocking pool (fd {fd})"),
            WaitReason::Dead => f.write_str("dead"),
        }
    }
}

/// One blocked wait of one coroutine.
#[derive(Clone)]
pub(crate) struct Waiter {
    co: CoroRc,
    seq: u64,
}

impl Waiter {
    /// `co`, blocked in the wait with sequence number `seq`.
    pub(crate) fn new(co: CoroRc, seq: u64) -> Self {
        Waiter { co, seq }
    }

    /// The waiting coroutine.
    pub(crate) fn coro(&self) -> &CoroRc {
        &self.co
    }

    /// The waiting coroutine's id.
    pub(crate) fn coro_id(&self) -> u64 {
        self.co.id()
    }

    /// Still blocked in the wait this entry was made for.
    pub(crate) fn is_live(&self) -> bool {
        self.co.is_blocked_in(self.seq)
    }

    /// Wake this wait with `r`; false (and nothing happens) if the wait already ended.
    pub(crate) fn wake(&self, r: Resume) -> bool {
        sched::wake(self, r)
    }
}

/// A FIFO of waiters, each with a payload `X` (a semaphore's count, a fifo's slot, ...).
///
/// The oldest entry is kept inline: most queues (the joiners of a coroutine, a lock under
/// light contention) never hold more than one, and then never allocate.
pub(crate) struct WaitQueue<X = ()> {
    /// The oldest entry; `None` only when `rest` is empty too.
    head: Option<(Waiter, X)>,
    /// The entries after `head`, oldest first.
    rest: VecDeque<(Waiter, X)>,
}

impl<X> WaitQueue<X> {
    pub(crate) const fn new() -> Self {
        WaitQueue {
            head: None,
            rest: VecDeque::new(),
        }
    }

    pub(crate) fn push(&mut self, w: Waiter, x: X) {
        if self.head.is_none() {
            self.head = Some((w, x));
        } else {
            self.rest.push_back((w, x));
        }
    }

    /// Drop dead entries at the front, and return the first live one without removing it.
    pub(crate) fn front_live(&mut self) -> Option<&(Waiter, X)> {
        while let Some((w, _)) = &self.head {
            if w.is_live() {
                break;
            }
            self.head = self.rest.pop_front();
        }
        self.head.as_ref()
    }

    /// Remove and return the first live waiter.
    pub(crate) fn pop_live(&mut self) -> Option<(Waiter, X)> {
        self.front_live()?;
        let next = self.rest.pop_front();
        core::mem::replace(&mut self.head, next)
    }

    /// True if some waiter is still blocked.
    pub(crate) fn has_live(&mut self) -> bool {
        self.front_live().is_some()
    }
}
