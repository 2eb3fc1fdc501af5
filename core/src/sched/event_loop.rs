//! The event loop: passes over the run queue, timers, polling, and the hook signal-driven
//! features run in.
//!
//! The loop works in *passes*, as Shrapnel does: a pass runs the coroutines that were ready
//! when it began; anything made ready during the pass (including by `yield_slice`) runs in
//! the next one, after a non-blocking poll for I/O. With nothing ready, the loop polls with
//! a timeout to the next timer; with nothing ready, no timer and no I/O wait, nothing can
//! ever run again and `event_loop` returns.

use core::time::Duration;

use super::state::{sched, SchedState, TimerAction};
use crate::arch::{ContextSwitch, Native};
use crate::hooks;
use crate::interruption::Interrupted;
use crate::sched::Resume;

/// Run the scheduler until `set_exit` is called or nothing can ever run again; returns
/// the exit code (0 when the loop ran dry).
///
/// Call it from the thread's own context, not from inside a coroutine.
///
/// ```
/// # shrapnel_core::doc_scheduler!();
/// # use shrapnel_core as shrapnel;
/// let hello = shrapnel::spawn(|| "hello from a coroutine");
/// assert_eq!(shrapnel::event_loop(), 0); // every coroutine has ended: the loop ran dry
/// assert_eq!(hello.join().unwrap(), "hello from a coroutine");
/// ```
pub fn event_loop() -> i32 {
    let s = sched();
    assert!(
        s.current.get().is_null(),
        "shrapnel: event_loop() called from inside a coroutine"
    );
    assert!(
        !s.in_loop.get(),
        "shrapnel: event_loop() is already running on this thread"
    );
    s.in_loop.set(true);
    s.break_slice_chain();
    // Timers fire against `timer_now`, which is never ahead of the clock: it takes only
    // readings of `now` and `now_coarse` (or the end of the last slice, which is one) and
    // keeps the largest (a coarse reading lags, so it can be below an earlier precise one).
    // The clock is read only while timers are pending: the coarse one while coroutines are
    // ready, the precise one before a wait and after one.
    let mut timer_now = s.clock.now();
    let mut after_wait = false;
    let code = loop {
        let timers_pending = !s.timers.borrow().is_empty();
        let reading = match hooks::slice_chain(s) {
            Some(t) => Some(t),
            // Nothing to fire: wait bookkeeping reads the clock if a coroutine blocks.
            None if !timers_pending => None,
            None if after_wait => Some(s.clock.now()),
            None => Some(s.clock.now_coarse()),
        };
        after_wait = false;
        if let Some(t) = reading {
            timer_now = timer_now.max(t);
        }
        s.loop_now.set(reading.map(|_| timer_now));
        s.irq().dispatch();
        if timers_pending {
            s.fire_timers(timer_now);
        }
        if let Some(code) = s.exit.take() {
            break code;
        }
        let n = s.run_queue.borrow().len();
        if n > 0 {
            s.bump(|st| st.passes += 1);
        }
        for _ in 0..n {
            let next = s.run_queue.borrow_mut().pop_front();
            match next {
                Some(co) => {
                    // While this one runs, the caches fetch the saved registers of the next.
                    if Native::PREFETCHES {
                        if let Some(after) = s.run_queue.borrow().front() {
                            Native::prefetch(after.saved_context());
                        }
                    }
                    s.run(co)
                }
                None => break,
            }
        }
        if let Some(code) = s.exit.take() {
            break code;
        }
        // Ready coroutines, or an event signalled during the pass (by a coroutine of this
        // thread, which wrote no notify): poll without waiting.
        let busy = !s.run_queue.borrow().is_empty() || s.irq().any_signalled();
        let next_deadline = if busy {
            None
        } else {
            s.timers.borrow_mut().next_deadline()
        };
        let timeout = if busy {
            Some(Duration::ZERO)
        } else if let Some(deadline) = next_deadline {
            // About to wait for the next timer: as long as it takes, by the precise clock. A
            // deadline already passed gives a zero timeout, and the next iteration fires it.
            // With a spin window set (feature `std`), zero while the window lasts.
            timer_now = timer_now.max(s.clock.now());
            let wait = s.rate.duration(deadline.saturating_sub(timer_now));
            hooks::before_wait(s, Some(wait), n > 0)
        } else if s.can_progress() {
            hooks::before_wait(s, None, n > 0)
        } else {
            hooks::report_blocked_forever(s);
            break 0;
        };
        // Nothing registered and work waiting: skip the syscall.
        if timeout != Some(Duration::ZERO) || !s.io().borrow().is_empty() {
            // About to wait (a zero timeout is no wait): idle work, the compaction of idle
            // shared-stack copies, may take a bounded step and shorten the wait.
            s.poll_io(hooks::about_to_wait(s, timeout));
            s.break_slice_chain();
            after_wait = timeout != Some(Duration::ZERO);
        }
        if let Some(hook) = s.loop_hook.get() {
            hook();
        }
    };
    s.in_loop.set(false);
    s.break_slice_chain();
    s.loop_now.set(None);
    code
}

impl SchedState {
    fn fire_timers(&self, now: u64) -> usize {
        let mut fired = 0;
        loop {
            let action = self.timers.borrow_mut().pop_expired(now);
            match action {
                Some(TimerAction::Wake(w)) => {
                    w.wake(Resume::Ok);
                }
                Some(TimerAction::Timeout(slot, id)) => {
                    if let Some(co) = self.in_slot(slot).filter(|co| co.timeout_active(id)) {
                        self.deliver(&co, Interrupted::Timeout(id));
                    }
                }
                None => break,
            }
            fired += 1;
        }
        fired
    }

    fn poll_io(&self, timeout: Option<Duration>) {
        let mut events = self.events.borrow_mut();
        events.clear();
        self.bump(|s| s.polls += 1);
        if let Err(e) = self.poller.poll(&mut events, timeout) {
            self.debug_fmt(format_args!(
                "shrapnel: {} poll failed: {}\n",
                self.poller.name(),
                e
            ));
            return;
        }
        let mut io = self.io().borrow_mut();
        for ev in events.iter() {
            io.dispatch(ev);
        }
    }

    /// Are there fd waiters, timers or ready coroutines: can anything run again?
    fn can_progress(&self) -> bool {
        !self.run_queue.borrow().is_empty()
            || !self.timers.borrow().is_empty()
            || self.io().borrow().waiting() > 0
            || self.irq().is_waited_on()
    }
}

/// Install a function the event loop calls once per iteration, right after polling, in the
/// scheduler's own context (not in a coroutine): the place to act on flags that signal
/// handlers set (they wake the poll with [`notifier`]). Returns the previous hook.
///
/// The hook must be quick when it has nothing to do: it runs between every two passes.
/// With feature `latency` its time counts in the next slice, except what it spends in
/// `where_all`/`where_is` (a debug dump).
pub fn set_loop_hook(hook: Option<fn()>) -> Option<fn()> {
    sched().loop_hook.replace(hook)
}

/// A handle that wakes this thread's event loop from any thread (or, for backends whose
/// notify is a single write(2), from a signal handler).
pub fn notifier() -> alloc::sync::Arc<dyn crate::poller::Notify> {
    sched().poller.notifier()
}

/// Make `event_loop` return `code` at the end of the current pass.
pub fn set_exit(code: i32) {
    sched().exit.set(Some(code));
}
