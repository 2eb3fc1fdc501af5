//! The scheduler: one per OS thread, running on the thread's own stack and switching into
//! each ready coroutine in turn; a coroutine that blocks switches back.
//!
//! - `sched/state.rs`: the scheduler's state, `install`/`uninstall`, and its named
//!   operations (schedule, run, block, wake, deliver an interruption, reap);
//! - `sched/event_loop.rs`: the loop — passes, timers, polling;
//! - here: the free functions coroutines call (`sleep`, `with_timeout`, `yield_slice`,
//!   ...) and the views of the scheduler (`live_coros`, `stats`, ...).
//!
//! The free functions find the thread's scheduler through a thread-local pointer (feature
//! `std`) or a single static (bare metal, single core). Features reach the scheduler only
//! through `hooks.rs`; coroutines' own state is `coro`'s, behind its
//! operations. ARCHITECTURE.md §4 walks the switch path.

mod event_loop;
mod state;

pub use event_loop::{event_loop, notifier, set_exit, set_loop_hook};
pub use state::{
    install, is_installed, uninstall, AlreadyInstalled, Config, Stats, DEFAULT_SELFISHNESS,
};
pub(crate) use state::{sched, try_sched, wake, Delivery, Resume, SchedState};

use alloc::vec::Vec;
use core::panic::Location;
use core::time::Duration;

use crate::clock::Instant;
use crate::coro::{CoroInner, CoroRef, SelfishnessError};
use crate::hooks;
use crate::interruption::{Interrupted, Timeout, TimeoutId};
use crate::wait::WaitReason;
use state::TimerAction;

/// The running coroutine; `None` outside coroutines.
pub fn current() -> Option<CoroRef> {
    try_sched()?.current_rc().map(CoroRef::from_rc)
}

/// Let every other ready coroutine run, then continue.
///
/// Outside a coroutine this does nothing.
///
/// ```
/// # shrapnel_core::doc_scheduler!();
/// # use shrapnel_core as shrapnel;
/// use std::{cell::RefCell, rc::Rc};
///
/// let order = Rc::new(RefCell::new(Vec::new()));
/// for name in ["a", "b"] {
///     let order = order.clone();
///     shrapnel::spawn(move || {
///         for i in 0..2 {
///             order.borrow_mut().push(format!("{name}{i}"));
///             shrapnel::yield_slice(); // the other one runs before this one goes on
///         }
///     });
/// }
/// shrapnel::event_loop();
/// assert_eq!(*order.borrow(), ["a0", "b0", "a1", "b1"]);
/// ```
#[track_caller]
pub fn yield_slice() {
    let Some(s) = try_sched() else { return };
    let Some(co) = s.running() else { return };
    if hooks::unwinding_at_block(co).is_some() {
        // Being unwound, and already panicking: as a blocking call would, return at once;
        // a pending interruption stays pending.
        return;
    }
    // What `block` with a waiter woken at once does, without the waiter: back of the run
    // queue, the wait recorded for where_all. A pending self-interrupt stays pending for the
    // next blocking call.
    let me = s.current_rc().expect("running coroutine is registered");
    co.enter_yield(s.wait_clock(), Location::caller());
    s.schedule(me);
    s.suspend_current(co);
    co.leave_wait();
    hooks::unwinding_after_wait(co);
}

/// The current time on the scheduler's clock.
#[track_caller]
pub fn now() -> Instant {
    Instant(sched().now_ticks())
}

/// `t + d` on the scheduler's clock.
#[track_caller]
pub fn instant_after(t: Instant, d: Duration) -> Instant {
    Instant(t.0.saturating_add(sched().rate().ticks(d)))
}

/// The time from `earlier` to `later` (zero if `later` is not later).
pub fn duration_between(earlier: Instant, later: Instant) -> Duration {
    sched().rate().duration(later.0.saturating_sub(earlier.0))
}

/// Sleep for `d`. Returns early with `Err` if interrupted.
///
/// ```
/// # shrapnel_core::doc_scheduler!();
/// # use shrapnel_core as shrapnel;
/// use std::time::Duration;
///
/// let sleeper = shrapnel::spawn(|| {
///     let t0 = shrapnel::now();
///     shrapnel::sleep(Duration::from_millis(20)).expect("nobody interrupts it");
///     shrapnel::sched::duration_between(t0, shrapnel::now())
/// });
/// shrapnel::event_loop();
/// assert!(sleeper.join().unwrap() >= Duration::from_millis(20));
/// ```
#[track_caller]
pub fn sleep(d: Duration) -> Result<(), Interrupted> {
    let s = sched();
    sleep_until(Instant(s.now_ticks().saturating_add(s.rate().ticks(d))))
}

/// Sleep until `t`. Returns early with `Err` if interrupted.
#[track_caller]
pub fn sleep_until(t: Instant) -> Result<(), Interrupted> {
    let s = sched();
    let mut timer = None;
    let r = s.block(WaitReason::Sleep(t), |w| {
        timer = Some(s.timers.borrow_mut().insert(t.0, TimerAction::Wake(w)));
    });
    match r {
        Resume::Ok => Ok(()),
        Resume::Interrupted(i) | Resume::Revoked(i) => {
            if let Some(id) = timer {
                s.timers.borrow_mut().remove(id);
            }
            Err(i)
        }
        Resume::Closed => unreachable!("a sleep is never woken by a close"),
    }
}

/// Run `f`, interrupting it if it has not finished after `d`.
///
/// When this call's deadline passes, the blocking call `f` is in (or its next one) returns
/// `Err(Interrupted::Timeout(..))`; `f` is expected to pass it on (`?`), and when `f`
/// returns, `with_timeout` returns `Err(Timeout)` — whatever `f` returned is dropped. An
/// outer `with_timeout` expiring inside an inner one reaches the inner call's `f` as an
/// `Interrupted` which the inner call passes on untouched (`Ok(f's result)`), so only the
/// owner turns its own deadline into `Timeout`.
///
/// ```
/// # shrapnel_core::doc_scheduler!();
/// # use shrapnel_core as shrapnel;
/// use std::time::Duration;
///
/// let waiter = shrapnel::spawn(|| {
///     let slow = shrapnel::with_timeout(Duration::from_millis(10), || {
///         shrapnel::sleep(Duration::from_secs(60))?; // interrupted after 10 ms
///         Ok::<_, shrapnel::Interrupted>("slept a minute")
///     });
///     let quick = shrapnel::with_timeout(Duration::from_secs(60), || "done at once");
///     (slow.is_err(), quick)
/// });
/// shrapnel::event_loop();
/// assert_eq!(waiter.join().unwrap(), (true, Ok("done at once")));
/// ```
#[track_caller]
pub fn with_timeout<R>(d: Duration, f: impl FnOnce() -> R) -> Result<R, Timeout> {
    let s = sched();
    assert!(
        s.running().is_some(),
        "with_timeout called outside a coroutine"
    );
    // The running coroutine outlives this call: the registry keeps it alive while it runs.
    let co = s.current_ref();
    let id = TimeoutId(s.next_timeout.get());
    s.next_timeout.set(id.0 + 1);
    let deadline = s.now_ticks().saturating_add(s.rate().ticks(d));
    co.begin_timeout(id);
    let timer = s
        .timers
        .borrow_mut()
        .insert_with(deadline, || TimerAction::Timeout(co.slot(), id));
    /// Ends the timeout on every exit path, a panic in `f` included.
    struct Guard<'a> {
        co: &'a CoroInner,
        id: TimeoutId,
        timer: crate::timer::TimerId,
        done: bool,
    }
    impl Guard<'_> {
        /// Cancel the timer, forget the id; returns whether the deadline was delivered.
        fn end(&mut self) -> bool {
            self.done = true;
            sched().timers.borrow_mut().remove(self.timer);
            self.co.end_timeout(self.id)
        }
    }
    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            if !self.done {
                self.end();
            }
        }
    }
    let mut guard = Guard {
        co,
        id,
        timer,
        done: false,
    };
    let r = f();
    let fired = guard.end();
    if fired {
        Err(Timeout)
    } else {
        Ok(r)
    }
}

/// Set the default number of non-blocking I/O completions before a forced yield; returns
/// the old value. Zero is refused: a coroutine must be allowed at least one.
pub fn set_selfishness(n: u32) -> Result<u32, SelfishnessError> {
    if n == 0 {
        return Err(SelfishnessError);
    }
    let s = sched();
    let old = s.selfishness.get();
    s.selfishness.set(n);
    Ok(old)
}

/// Count one I/O operation that completed without blocking; after the coroutine's
/// allowance (its `max_selfish_acts`, default [`set_selfishness`]) it yields its slice so
/// others get to run.
pub fn selfish_act() {
    let Some(s) = try_sched() else { return };
    let Some(co) = s.running() else { return };
    if co.count_selfish_act(s.selfishness.get()) {
        yield_slice();
    }
}

/// All live coroutines (started or not, not yet dead), sorted by id.
pub fn live_coros() -> Vec<CoroRef> {
    let Some(s) = try_sched() else {
        return Vec::new();
    };
    let mut v = Vec::new();
    s.for_each_live(|co| v.push(CoroRef::from_rc(co.clone())));
    v.sort_unstable_by_key(|c| c.id());
    v
}

/// The live coroutine with this id.
pub fn coro_by_id(id: u64) -> Option<CoroRef> {
    let s = try_sched()?;
    let mut found = None;
    s.for_each_live(|co| {
        if found.is_none() && co.id() == id {
            found = Some(co.clone());
        }
    });
    found.map(CoroRef::from_rc)
}

/// Scheduler counters.
pub fn stats() -> Stats {
    let s = sched();
    let (stack_copies, stack_bytes_copied) = s.stack_copies();
    Stats {
        stack_copies,
        stack_bytes_copied,
        ..s.stats.get()
    }
}

/// Whether coroutines spawned from now on run on the scheduler's shared run stack unless
/// their [`Builder`](crate::Builder) says otherwise (see [`shared_stack`](crate::shared_stack));
/// returns the previous setting. Off by default.
pub fn set_shared_stack_default(on: bool) -> bool {
    sched().set_shared_stack_default(on)
}

/// How long the scheduler has existed.
pub fn uptime() -> Duration {
    let s = sched();
    s.rate().duration(s.uptime_ticks())
}

/// Coroutines waiting in the run queue.
pub fn run_queue_len() -> usize {
    sched().run_queue.borrow().len()
}

/// Pending timers.
pub fn timers_pending() -> usize {
    sched().timers.borrow().len()
}

/// Write debug text to the scheduler's sink (print_stderr's destination).
pub fn debug_write(bytes: &[u8]) {
    if let Some(s) = try_sched() {
        s.sink().write(bytes);
    }
}
