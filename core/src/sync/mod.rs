//! Synchronisation between coroutines of one scheduler, with Shrapnel's semantics.
//!
//! Every primitive is FIFO-fair (a waiter that queued first is served first, and a
//! released resource is *handed* to the first live waiter rather than left for whoever
//! asks next), every wait is interruptible (timeout, interrupt, shutdown), and an
//! interrupted waiter never swallows a wake-up: it leaves its queue entry behind as dead
//! and the next wake passes over it (see `wait.rs`). A waiter that was woken — handed the
//! lock, its permits, an item — and then interrupted before it ran returns the
//! interruption and passes what it was handed on to the next waiter (Shrapnel's `force`),
//! so nothing is lost and nothing leaks. These types are `!Send`: they belong
//! to one scheduler thread. They work without an OS, so firmware has them too.

mod condvar;
mod fifo;
mod mutex;
mod rwlock;
mod semaphore;

pub use condvar::Condvar;
pub use fifo::Fifo;
pub use mutex::{Mutex, MutexGuard};
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use semaphore::{InvertedSemaphore, Semaphore, SemaphoreGuard};

use crate::interruption::Interrupted;
use crate::sched::Resume;

/// The result of a wait that hands the waiter nothing (or whose caller has already dealt
/// with [`Resume::Revoked`]).
pub(crate) fn resume_to_result(r: Resume) -> Result<(), Interrupted> {
    match r {
        Resume::Ok => Ok(()),
        Resume::Interrupted(i) | Resume::Revoked(i) => Err(i),
        Resume::Closed => unreachable!("sync waits are never woken by a close"),
    }
}
