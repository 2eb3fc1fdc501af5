//! Waking coroutines from interrupt handlers (bare metal) or signal handlers.
//!
//! An [`IrqEvent`] is a `static` flag an interrupt handler sets with [`IrqEvent::signal`]
//! — a pair of atomic stores, safe in any interrupt context — and coroutines wait on with
//! [`IrqEvent::wait`]. The event loop checks signalled events once per iteration and wakes
//! their waiters. While a coroutine waits on an event, `event_loop` does not return for
//! lack of work: it idles (WFI on Cortex-M, via the `NullPoller`'s `Idle`) and any
//! interrupt ends the idle.
//!
//! ```ignore
//! static UART_RX: IrqEvent = IrqEvent::new();
//!
//! #[interrupt]
//! fn UART0() { /* clear the source */ UART_RX.signal(); }
//!
//! spawn(|| loop { UART_RX.wait()?; /* drain the FIFO */ });
//! ```
//!
//! On a hosted thread whose poller blocks in a syscall, also call
//! `sched::notifier().notify()` from a context that may (a signal handler may, for the
//! epoll and kqueue backends: it is one write(2)/kevent(2)).

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::{RefCell, UnsafeCell};
use core::sync::atomic::{AtomicBool, Ordering};

use crate::interruption::Interrupted;
use crate::sched::{sched, Resume};
use crate::wait::{WaitQueue, WaitReason};

/// Set when any event was signalled since the loop last looked.
static ANY_PENDING: AtomicBool = AtomicBool::new(false);

/// A flag set from interrupt context that coroutines can wait for.
pub struct IrqEvent {
    pending: AtomicBool,
    /// Touched only by the scheduler's thread (waits and the loop), never by `signal`.
    waiters: UnsafeCell<WaitQueue>,
}

// SAFETY: `signal`, the only method an interrupt handler or another thread may call,
// touches only the atomics; `waiters` is used only from the one scheduler thread that owns
// the coroutines (documented on `wait`).
unsafe impl Sync for IrqEvent {}

impl Default for IrqEvent {
    fn default() -> Self {
        Self::new()
    }
}

impl IrqEvent {
    /// An event not yet signalled.
    pub const fn new() -> Self {
        IrqEvent {
            pending: AtomicBool::new(false),
            waiters: UnsafeCell::new(WaitQueue::new()),
        }
    }

    /// Mark the event; its waiters run on the loop's next iteration. Interrupt-safe.
    pub fn signal(&self) {
        self.pending.store(true, Ordering::Release);
        ANY_PENDING.store(true, Ordering::Release);
    }

    /// Wait until the event is signalled (at once if it was signalled since the last wait),
    /// consuming the signal. Call only from coroutines of one scheduler thread.
    #[track_caller]
    pub fn wait(&'static self) -> Result<(), Interrupted> {
        self.wait_as(EventRef::Static(self), WaitReason::Irq)
    }

    /// [`wait`](Self::wait) for an event kept in an `Arc` (made at run time, shared with
    /// the threads that signal it), shown in `where_all` as `reason`.
    #[track_caller]
    pub fn wait_shared(self: &Arc<Self>, reason: WaitReason) -> Result<(), Interrupted> {
        self.wait_as(EventRef::Shared(self.clone()), reason)
    }

    /// Drop the (stale) waiters left in the queue, so the event holds nothing of this
    /// thread's scheduler and may be dropped on another thread. Call only on the scheduler
    /// thread whose coroutines waited on it, with none of them waiting now.
    pub(crate) fn forget_waiters(&self) {
        // SAFETY: the caller is on the one scheduler thread that touches `waiters`, and no
        // borrow of it is live (no coroutine is inside `wait_as`).
        unsafe { *self.waiters.get() = WaitQueue::new() };
    }

    #[track_caller]
    fn wait_as(&self, held: EventRef, reason: WaitReason) -> Result<(), Interrupted> {
        if self.pending.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let s = sched();
        let r = s.block(reason, |w| {
            // SAFETY: only this scheduler thread touches `waiters`, and no other borrow of
            // it is live (the loop's borrow ends before it runs coroutines).
            unsafe { (*self.waiters.get()).push(w, ()) };
            s.irq().add(held);
        });
        match r {
            Resume::Ok => Ok(()),
            Resume::Interrupted(i) => Err(i),
            // The signal that woke it is not lost: the next wait sees it.
            Resume::Revoked(i) => {
                self.signal();
                Err(i)
            }
            Resume::Closed => unreachable!("an irq wait is never woken by a close"),
        }
    }
}

/// The events some coroutine of one scheduler waits on: the scheduler holds one and the
/// event loop calls [`dispatch`](Self::dispatch) on every iteration.
#[derive(Default)]
pub(crate) struct IrqWaits {
    events: RefCell<Vec<EventRef>>,
}

/// An event some coroutine waits on: a `static` one, or one kept alive by its `Arc` while
/// it is in the list.
#[derive(Clone)]
enum EventRef {
    Static(&'static IrqEvent),
    Shared(Arc<IrqEvent>),
}

impl core::ops::Deref for EventRef {
    type Target = IrqEvent;
    fn deref(&self) -> &IrqEvent {
        match self {
            EventRef::Static(e) => e,
            EventRef::Shared(e) => e,
        }
    }
}

impl IrqWaits {
    /// A coroutine waits on `e`.
    fn add(&self, e: EventRef) {
        let mut list = self.events.borrow_mut();
        if !list.iter().any(|x| core::ptr::eq::<IrqEvent>(&**x, &*e)) {
            list.push(e);
        }
    }

    /// An event a coroutine of this scheduler waits on is signalled, not yet dispatched:
    /// the loop must not wait in its poller (a signal from this thread writes no notify).
    #[inline]
    pub(crate) fn any_signalled(&self) -> bool {
        let events = self.events.borrow();
        !events.is_empty() && events.iter().any(|e| e.pending.load(Ordering::Acquire))
    }

    /// Some coroutine waits on an event (the loop must not end for lack of work).
    #[inline]
    pub(crate) fn is_waited_on(&self) -> bool {
        !self.events.borrow().is_empty()
    }

    /// Wake the waiters of signalled events; forget events nobody waits on. Called by the
    /// loop on every iteration, so the common case (nothing signalled, nobody waiting) is a
    /// plain load and a length check, without a locked instruction.
    #[inline]
    pub(crate) fn dispatch(&self) {
        let signalled =
            ANY_PENDING.load(Ordering::Relaxed) && ANY_PENDING.swap(false, Ordering::AcqRel);
        if signalled || self.is_waited_on() {
            self.wake_signalled();
        }
    }

    #[inline(never)]
    fn wake_signalled(&self) {
        let events: Vec<EventRef> = self.events.borrow().clone();
        for e in &events {
            // SAFETY: scheduler thread only (see `IrqEvent`'s Sync impl).
            let q = unsafe { &mut *e.waiters.get() };
            if q.has_live() && e.pending.swap(false, Ordering::AcqRel) {
                while let Some((w, ())) = q.pop_live() {
                    w.wake(Resume::Ok);
                }
            }
        }
        self.events.borrow_mut().retain(|e| {
            // SAFETY: as above.
            unsafe { (*e.waiters.get()).has_live() }
        });
    }
}
