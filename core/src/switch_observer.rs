//! A function told of every switch into and out of a coroutine (feature `switch-observer`):
//! for state that is per thread in some library but should be per coroutine — the runtime's
//! `tracing` support moves the thread's current spans aside when a coroutine leaves the
//! CPU and puts them back when it returns, so a span entered in one coroutine is never
//! current in another.
//!
//! One observer per scheduler, called from the scheduler's own context (not from inside a
//! coroutine) right before the switch into a coroutine and right after the switch back.
//! It must not block, spawn or switch; its time counts as the scheduler's, not the
//! coroutine's slice. Without the feature the switch path has no call at all.

use crate::sched::sched;

/// What an observer is told.
#[derive(Clone, Copy, Debug)]
pub struct SwitchObserver {
    /// The coroutine with this id is about to run.
    pub entered: fn(coro_id: u64),
    /// The coroutine with this id stopped running; `finished` if it has ended (its
    /// per-coroutine state can be dropped).
    pub left: fn(coro_id: u64, finished: bool),
}

/// Install this thread's scheduler's observer (or remove it with `None`); returns the
/// previous one.
pub fn set_switch_observer(observer: Option<SwitchObserver>) -> Option<SwitchObserver> {
    sched().switch_observer().replace(observer)
}
