//! A recursive mutex: its owner may lock it again; it is free when every lock is released.

use core::cell::{Cell, RefCell};
use core::ops::Deref;

use crate::interruption::Interrupted;
use crate::sched::{sched, Resume};
use crate::wait::{WaitQueue, WaitReason};

use super::resume_to_result;

/// A recursive, FIFO-fair mutex protecting a `T` (read through the guard; put a `RefCell`
/// inside for mutation, since a recursive lock can hand out several guards at once).
///
/// ```
/// # shrapnel_core::doc_scheduler!();
/// # use shrapnel_core as shrapnel;
/// use std::{cell::RefCell, rc::Rc, time::Duration};
/// use shrapnel::sync::Mutex;
///
/// let lock = Rc::new(Mutex::new(()));
/// let log = Rc::new(RefCell::new(Vec::new()));
/// for who in ["first", "second"] {
///     let (lock, log) = (lock.clone(), log.clone());
///     shrapnel::spawn(move || {
///         let _held = lock.lock()?; // the second waits here while the first sleeps
///         log.borrow_mut().push(format!("{who} in"));
///         shrapnel::sleep(Duration::from_millis(5))?;
///         log.borrow_mut().push(format!("{who} out"));
///         Ok::<_, shrapnel::Interrupted>(())
///     });
/// }
/// shrapnel::event_loop();
/// assert_eq!(*log.borrow(), ["first in", "first out", "second in", "second out"]);
/// ```
pub struct Mutex<T = ()> {
    owner: Cell<Option<u64>>,
    depth: Cell<usize>,
    waiters: RefCell<WaitQueue>,
    value: T,
}

/// Holds a [`Mutex`] locked; unlocks on drop.
pub struct MutexGuard<'a, T> {
    m: &'a Mutex<T>,
}

impl<T> Mutex<T> {
    /// An unlocked mutex.
    pub const fn new(value: T) -> Self {
        Mutex {
            owner: Cell::new(None),
            depth: Cell::new(0),
            waiters: RefCell::new(WaitQueue::new()),
            value,
        }
    }

    /// Lock it, waiting if another coroutine holds it. Recursive for the owner.
    #[track_caller]
    pub fn lock(&self) -> Result<MutexGuard<'_, T>, Interrupted> {
        self.lock_reporting().map(|(guard, _)| guard)
    }

    /// Lock it as [`lock`](Self::lock) does, and say whether that had to wait for another
    /// coroutine to unlock it (`true`) or the lock was free or already ours (`false`):
    /// what Shrapnel's `mutex.lock()` returned.
    ///
    /// ```
    /// # shrapnel_core::doc_scheduler!();
    /// # use shrapnel_core as shrapnel;
    /// use std::rc::Rc;
    /// use shrapnel::sync::Mutex;
    ///
    /// let lock = Rc::new(Mutex::new(()));
    /// let waited: Vec<_> = (0..2)
    ///     .map(|_| {
    ///         let lock = lock.clone();
    ///         shrapnel::spawn(move || {
    ///             let (_held, blocked) = lock.lock_reporting()?;
    ///             shrapnel::yield_slice(); // the other one tries meanwhile
    ///             Ok::<_, shrapnel::Interrupted>(blocked)
    ///         })
    ///     })
    ///     .collect();
    /// shrapnel::event_loop();
    /// assert_eq!(waited[0].join().unwrap(), Ok(false));
    /// assert_eq!(waited[1].join().unwrap(), Ok(true));
    /// ```
    #[track_caller]
    pub fn lock_reporting(&self) -> Result<(MutexGuard<'_, T>, bool), Interrupted> {
        if let Some(guard) = self.try_lock() {
            return Ok((guard, false));
        }
        // The unlocker hands the lock over (sets owner and depth) before waking us.
        crate::hooks::note_waits_on_mutex(&self.owner);
        let r = sched().block(WaitReason::Mutex, |w| self.waiters.borrow_mut().push(w, ()));
        if let Resume::Revoked(i) = r {
            // Handed the lock, then interrupted before we ran: pass it on.
            self.unlock();
            return Err(i);
        }
        resume_to_result(r)?;
        debug_assert_eq!(self.owner.get(), Some(sched().current_ref().id()));
        Ok((MutexGuard { m: self }, true))
    }

    /// Lock it if that needs no wait.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        let me = sched().current_ref().id();
        match self.owner.get() {
            None => {
                self.owner.set(Some(me));
                self.depth.set(1);
            }
            Some(o) if o == me => self.depth.set(self.depth.get() + 1),
            Some(_) => return None,
        }
        Some(MutexGuard { m: self })
    }

    /// The id of the coroutine holding it.
    pub fn owner(&self) -> Option<u64> {
        self.owner.get()
    }

    /// True if held.
    pub fn is_locked(&self) -> bool {
        self.owner.get().is_some()
    }

    fn unlock(&self) {
        let d = self.depth.get() - 1;
        self.depth.set(d);
        if d > 0 {
            return;
        }
        loop {
            let next = self.waiters.borrow_mut().pop_live();
            match next {
                Some((w, ())) => {
                    self.owner.set(Some(w.coro_id()));
                    self.depth.set(1);
                    if w.wake(Resume::Ok) {
                        return;
                    }
                }
                None => {
                    self.owner.set(None);
                    return;
                }
            }
        }
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.m.value
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.m.unlock();
    }
}
