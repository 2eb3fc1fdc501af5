//! A condition variable that carries a value from the waker to each woken waiter
//! (Shrapnel's `condition_variable`: `wait` returns what `wake_*` passed).

use alloc::rc::Rc;
use core::cell::{Cell, RefCell};

use crate::interruption::Interrupted;
use crate::sched::{sched, Resume};
use crate::wait::{WaitQueue, WaitReason};

use super::resume_to_result;

/// Coroutines wait until another wakes them, in FIFO order, receiving a `T`.
///
/// ```
/// # shrapnel_core::doc_scheduler!();
/// # use shrapnel_core as shrapnel;
/// use std::rc::Rc;
/// use shrapnel::sync::Condvar;
///
/// let ready: Rc<Condvar<&str>> = Rc::new(Condvar::new());
/// let waiters: Vec<_> = (0..2)
///     .map(|_| {
///         let ready = ready.clone();
///         shrapnel::spawn(move || ready.wait())
///     })
///     .collect();
/// shrapnel::spawn(move || {
///     shrapnel::yield_slice(); // let both start waiting
///     assert_eq!(ready.wake_all("go"), 2);
/// });
/// shrapnel::event_loop();
/// for w in &waiters {
///     assert_eq!(w.join().unwrap(), Ok("go"));
/// }
/// ```
pub struct Condvar<T = ()> {
    waiters: RefCell<WaitQueue<Rc<Cell<Option<T>>>>>,
}

impl<T> Default for Condvar<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Condvar<T> {
    /// A condition variable nobody waits on.
    pub const fn new() -> Self {
        Condvar {
            waiters: RefCell::new(WaitQueue::new()),
        }
    }

    /// Wait to be woken; returns the value the waker passed.
    #[track_caller]
    pub fn wait(&self) -> Result<T, Interrupted> {
        let slot = Rc::new(Cell::new(None));
        let mine = slot.clone();
        let r = sched().block(WaitReason::Condvar, |w| {
            self.waiters.borrow_mut().push(w, mine)
        });
        if let Resume::Revoked(i) = r {
            // Woken with a value, then interrupted before we ran: the wake goes to the next
            // waiter, if any (after `wake_all` every other waiter was woken already).
            if let Some(v) = slot.take() {
                self.wake_one(v);
            }
            return Err(i);
        }
        resume_to_result(r)?;
        Ok(slot
            .take()
            .expect("a woken condvar waiter always receives a value"))
    }

    /// Wake the first waiter with `v`; false if nobody waits.
    pub fn wake_one(&self, v: T) -> bool {
        let next = self.waiters.borrow_mut().pop_live();
        match next {
            Some((w, slot)) => {
                slot.set(Some(v));
                w.wake(Resume::Ok)
            }
            None => false,
        }
    }

    /// Wake up to `n` waiters with clones of `v`; returns how many were woken.
    pub fn wake_n(&self, n: usize, v: T) -> usize
    where
        T: Clone,
    {
        let mut woken = 0;
        while woken < n && self.wake_one(v.clone()) {
            woken += 1;
        }
        woken
    }

    /// Wake every waiter with clones of `v`; returns how many were woken.
    pub fn wake_all(&self, v: T) -> usize
    where
        T: Clone,
    {
        self.wake_n(usize::MAX, v)
    }

    /// Make every waiter's `wait` return `Err(Interrupted::Interrupt(code))`
    /// (Shrapnel's `raise_all`); returns how many.
    pub fn raise_all(&self, code: u64) -> usize {
        let mut n = 0;
        loop {
            let next = self.waiters.borrow_mut().pop_live();
            let Some((w, _)) = next else { return n };
            if w.wake(Resume::Interrupted(Interrupted::Interrupt(code))) {
                n += 1;
            }
        }
    }

    /// True if some coroutine waits.
    pub fn has_waiters(&self) -> bool {
        self.waiters.borrow_mut().has_live()
    }
}
