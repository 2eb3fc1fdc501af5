//! What is running right now, readable from a signal handler.
//!
//! The scheduler publishes the running coroutine's id, name and stack range on every
//! switch into a per-thread record of plain words, so a SIGSEGV handler (stack overflow)
//! or a sampling signal (latency) can name the coroutine without taking a lock or
//! allocating.
//!
//! [`for_each_coro_for_signal`] goes further, for the runtime's crash dump: every
//! coroutine of the thread's scheduler, read the same way (no allocation, no borrow flag
//! touched, the registry skipped if the signal interrupted a change to it).

use core::panic::Location;

use crate::coro::{CoroInner, State};
use crate::wait::WaitReason;

/// A copy of the running coroutine's identity, safe to build inside a signal handler.
#[derive(Clone, Debug)]
pub struct RunningInfo {
    /// The coroutine id.
    pub id: u64,
    /// Its name, truncated to the buffer.
    pub name: heapless::String<64>,
    /// Lowest usable address of its stack.
    pub stack_limit: usize,
    /// Highest address (exclusive) of its stack.
    pub stack_base: usize,
}

/// The coroutine running on this thread, if any. Async-signal-safe: it reads the
/// scheduler's `current` pointer and plain fields of that coroutine; the name is copied
/// only if no `set_name` is in progress at the moment of the signal.
pub fn running_for_signal() -> Option<RunningInfo> {
    // The handler runs on the scheduler's own thread, so the running coroutine cannot be
    // freed under it.
    let co = crate::sched::try_sched()?.running()?;
    let name = co.try_name().map(|n| copy_name(&n)).unwrap_or_default();
    let (stack_limit, stack_base) = co.stack_range();
    Some(RunningInfo {
        id: co.id(),
        name,
        stack_limit,
        stack_base,
    })
}

/// Copy `name` into a fixed buffer, cut at the buffer's end (on a character boundary).
fn copy_name(name: &str) -> heapless::String<64> {
    let mut out = heapless::String::new();
    for ch in name.chars() {
        if out.push(ch).is_err() {
            break;
        }
    }
    out
}

/// One coroutine as a signal handler on its scheduler's thread may read it (see
/// [`for_each_coro_for_signal`]): plain fields, the name only if no rename was interrupted,
/// the suspended stack walked without allocating.
pub struct SignalCoro<'a> {
    co: &'a CoroInner,
    running: bool,
}

impl SignalCoro<'_> {
    /// The coroutine id.
    pub fn id(&self) -> u64 {
        self.co.id()
    }

    /// Its name, cut to 64 bytes; `None` if the signal interrupted a rename of it.
    pub fn name(&self) -> Option<heapless::String<64>> {
        self.co.try_name().ok().map(|n| copy_name(&n))
    }

    /// Where it is in its life.
    pub fn state(&self) -> State {
        self.co.state()
    }

    /// What it waits for.
    pub fn wait_reason(&self) -> WaitReason {
        self.co.wait_reason()
    }

    /// The source line of the blocking call, while blocked.
    pub fn blocked_at(&self) -> Option<&'static Location<'static>> {
        match self.co.state() {
            State::Blocked => self.co.waiting_since().1,
            _ => None,
        }
    }

    /// It is the coroutine the signal interrupted (its stack is the interrupted context's,
    /// which the handler has and this view does not).
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// Its stack, `(limit, base)`.
    pub fn stack_range(&self) -> (usize, usize) {
        self.co.stack_range()
    }

    /// Fill `out` with the return addresses of its suspended call stack, innermost first,
    /// walked from its saved frame record (frame pointers); returns how many. Zero for a
    /// coroutine that is running, not started or dead.
    pub fn suspended_frames(&self, out: &mut [usize]) -> usize {
        let mut n = 0;
        crate::debug::walk_suspended(self.co, |ret| match out.get_mut(n) {
            Some(slot) => {
                *slot = ret;
                n += 1;
                n < out.len()
            }
            None => false,
        });
        n
    }
}

/// Why [`for_each_coro_for_signal`] could not list the coroutines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalListError {
    /// This thread has no scheduler.
    NoScheduler,
    /// The signal interrupted a spawn or a reap while it changed the list of coroutines.
    ListBeingChanged,
}

/// Call `f` with every live coroutine of this thread's scheduler, in registry order; returns
/// how many. For a signal handler running on the scheduler's own thread (the crash dump):
/// it allocates nothing, takes no lock and changes nothing — the registry is read without
/// touching its borrow flag and refused if the interrupted code was changing it, names are
/// read only if no rename was interrupted, stacks only within each coroutine's bounds.
/// `f` must not call into the scheduler.
pub fn for_each_coro_for_signal(
    mut f: impl FnMut(&SignalCoro<'_>),
) -> Result<usize, SignalListError> {
    let s = crate::sched::try_sched().ok_or(SignalListError::NoScheduler)?;
    let running = s
        .running()
        .map_or(core::ptr::null(), |c| c as *const CoroInner);
    let mut n = 0;
    let listed = s.for_each_live_in_handler(|co| {
        n += 1;
        f(&SignalCoro {
            co,
            running: core::ptr::eq(co, running),
        });
    });
    if listed {
        Ok(n)
    } else {
        Err(SignalListError::ListBeingChanged)
    }
}
