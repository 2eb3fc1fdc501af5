//! Counting semaphores: [`Semaphore`] (wait for units) and [`InvertedSemaphore`] (wait
//! for the count to drop to zero, e.g. "all outstanding requests finished").

use core::cell::{Cell, RefCell};

use crate::interruption::Interrupted;
use crate::sched::{sched, Resume};
use crate::wait::{WaitQueue, WaitReason};

use super::resume_to_result;

/// A FIFO-fair counting semaphore: `acquire(n)` waits until `n` units are available and no
/// earlier waiter is still queued (so a large request is not starved by small ones).
///
/// ```
/// # shrapnel_core::doc_scheduler!();
/// # use shrapnel_core as shrapnel;
/// use std::{cell::Cell, rc::Rc, time::Duration};
/// use shrapnel::sync::Semaphore;
///
/// // At most two of the five workers in the critical section at once.
/// let slots = Rc::new(Semaphore::new(2));
/// let (inside, most) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
/// for _ in 0..5 {
///     let (slots, inside, most) = (slots.clone(), inside.clone(), most.clone());
///     shrapnel::spawn(move || {
///         let _permit = slots.acquire(1)?;
///         inside.set(inside.get() + 1);
///         most.set(most.get().max(inside.get()));
///         shrapnel::sleep(Duration::from_millis(2))?;
///         inside.set(inside.get() - 1);
///         Ok::<_, shrapnel::Interrupted>(())
///     });
/// }
/// shrapnel::event_loop();
/// assert_eq!(most.get(), 2);
/// ```
pub struct Semaphore {
    avail: Cell<usize>,
    waiters: RefCell<WaitQueue<usize>>,
}

/// Units of a [`Semaphore`], released on drop.
pub struct SemaphoreGuard<'a> {
    s: &'a Semaphore,
    n: usize,
}

impl Semaphore {
    /// A semaphore with `n` units available.
    pub const fn new(n: usize) -> Self {
        Semaphore {
            avail: Cell::new(n),
            waiters: RefCell::new(WaitQueue::new()),
        }
    }

    /// Units available now.
    pub fn available(&self) -> usize {
        self.avail.get()
    }

    /// Take `n` units, waiting until they are available. The release happens when the
    /// guard drops (or call `forget` on it and `release` by hand).
    #[track_caller]
    pub fn acquire(&self, n: usize) -> Result<SemaphoreGuard<'_>, Interrupted> {
        let s = sched();
        if self.avail.get() >= n && !self.waiters.borrow_mut().has_live() {
            self.avail.set(self.avail.get() - n);
        } else {
            // `release` subtracts our units before waking us.
            let r = s.block(WaitReason::Semaphore, |w| {
                self.waiters.borrow_mut().push(w, n)
            });
            if let Resume::Revoked(i) = r {
                // Given the units, then interrupted before we ran: give them back.
                self.release(n);
                return Err(i);
            }
            resume_to_result(r)?;
        }
        Ok(SemaphoreGuard { s: self, n })
    }

    /// Give back `n` units and hand them to waiters in order while they fit.
    pub fn release(&self, n: usize) {
        self.avail.set(self.avail.get() + n);
        loop {
            let mut q = self.waiters.borrow_mut();
            let Some(&(_, want)) = q.front_live() else {
                return;
            };
            if want > self.avail.get() {
                return;
            }
            let (w, want) = q.pop_live().expect("front_live just saw it");
            drop(q);
            self.avail.set(self.avail.get() - want);
            w.wake(Resume::Ok);
        }
    }
}

impl SemaphoreGuard<'_> {
    /// Keep the units (release later with `Semaphore::release`).
    pub fn forget(self) {
        core::mem::forget(self)
    }
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        self.s.release(self.n);
    }
}

/// A counter that coroutines can wait on to become zero (Shrapnel's `inverted_semaphore`):
/// `acquire` raises it, `release` lowers it, `block_till_zero` waits for zero.
///
/// ```
/// # shrapnel_core::doc_scheduler!();
/// # use shrapnel_core as shrapnel;
/// use std::{rc::Rc, time::Duration};
/// use shrapnel::sync::InvertedSemaphore;
///
/// // Wait for three jobs in flight to finish.
/// let in_flight = Rc::new(InvertedSemaphore::new());
/// for ms in [3, 1, 2] {
///     in_flight.acquire(1);
///     let in_flight = in_flight.clone();
///     shrapnel::spawn(move || {
///         let _ = shrapnel::sleep(Duration::from_millis(ms));
///         in_flight.release(1);
///     });
/// }
/// let waiter = shrapnel::spawn(move || in_flight.block_till_zero().map(|()| in_flight.count()));
/// shrapnel::event_loop();
/// assert_eq!(waiter.join().unwrap(), Ok(0));
/// ```
pub struct InvertedSemaphore {
    count: Cell<usize>,
    waiters: RefCell<WaitQueue>,
}

impl Default for InvertedSemaphore {
    fn default() -> Self {
        Self::new()
    }
}

impl InvertedSemaphore {
    /// A counter at zero.
    pub const fn new() -> Self {
        InvertedSemaphore {
            count: Cell::new(0),
            waiters: RefCell::new(WaitQueue::new()),
        }
    }

    /// The current count.
    pub fn count(&self) -> usize {
        self.count.get()
    }

    /// Raise the count by `n`.
    pub fn acquire(&self, n: usize) {
        self.count.set(self.count.get() + n);
    }

    /// Lower the count by `n` (saturating at zero); at zero, wake every waiter.
    pub fn release(&self, n: usize) {
        self.count.set(self.count.get().saturating_sub(n));
        if self.count.get() == 0 {
            loop {
                let next = self.waiters.borrow_mut().pop_live();
                let Some((w, ())) = next else { return };
                w.wake(Resume::Ok);
            }
        }
    }

    /// Wait until the count is zero.
    #[track_caller]
    pub fn block_till_zero(&self) -> Result<(), Interrupted> {
        if self.count.get() == 0 {
            return Ok(());
        }
        let s = sched();
        resume_to_result(s.block(WaitReason::InvertedSemaphore, |w| {
            self.waiters.borrow_mut().push(w, ())
        }))
    }
}
