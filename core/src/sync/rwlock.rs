//! A readers-writer lock with a FIFO policy.
//!
//! Policy: requests are served in arrival order. A reader enters at once only when no
//! writer holds the lock and nobody is queued; otherwise it queues. When the lock frees,
//! the first queued request is granted, and if it is a reader, every reader queued
//! directly behind it is granted too. So a waiting writer holds back readers that arrive
//! after it (writers do not starve) and readers queued before a writer go first (readers
//! do not starve either).

use core::cell::{Cell, RefCell, UnsafeCell};
use core::ops::{Deref, DerefMut};

use crate::interrupt::Interrupted;
use crate::sched::{sched, Resume};
use crate::wait::{WaitQueue, WaitReason};

use super::resume_to_result;

/// Many readers or one writer.
pub struct RwLock<T> {
    readers: Cell<usize>,
    writer: Cell<bool>,
    /// `true` for a writer.
    waiters: RefCell<WaitQueue<bool>>,
    value: UnsafeCell<T>,
}

/// Shared access; released on drop.
pub struct RwLockReadGuard<'a, T> {
    l: &'a RwLock<T>,
}

/// Exclusive access; released on drop.
pub struct RwLockWriteGuard<'a, T> {
    l: &'a RwLock<T>,
}

impl<T> RwLock<T> {
    /// An unlocked lock.
    pub const fn new(value: T) -> Self {
        RwLock {
            readers: Cell::new(0),
            writer: Cell::new(false),
            waiters: RefCell::new(WaitQueue::new()),
            value: UnsafeCell::new(value),
        }
    }

    /// Shared access, waiting behind a writer that holds or waits.
    #[track_caller]
    pub fn read(&self) -> Result<RwLockReadGuard<'_, T>, Interrupted> {
        if !self.writer.get() && !self.waiters.borrow_mut().has_live() {
            self.readers.set(self.readers.get() + 1);
        } else {
            // `grant` counts us in before waking us.
            resume_to_result(sched().block(WaitReason::RwLockRead, |w| {
                self.waiters.borrow_mut().push(w, false)
            }))?;
        }
        Ok(RwLockReadGuard { l: self })
    }

    /// Exclusive access.
    #[track_caller]
    pub fn write(&self) -> Result<RwLockWriteGuard<'_, T>, Interrupted> {
        if !self.writer.get() && self.readers.get() == 0 && !self.waiters.borrow_mut().has_live() {
            self.writer.set(true);
        } else {
            resume_to_result(sched().block(WaitReason::RwLockWrite, |w| {
                self.waiters.borrow_mut().push(w, true)
            }))?;
        }
        Ok(RwLockWriteGuard { l: self })
    }

    /// Readers holding it now.
    pub fn readers(&self) -> usize {
        self.readers.get()
    }

    /// A writer holds it now.
    pub fn is_write_locked(&self) -> bool {
        self.writer.get()
    }

    /// Hand the free lock to the first live request (and the readers right behind it).
    fn grant(&self) {
        loop {
            let mut q = self.waiters.borrow_mut();
            let Some(&(_, is_writer)) = q.front_live() else {
                return;
            };
            if is_writer {
                if self.readers.get() > 0 || self.writer.get() {
                    return;
                }
                let (w, _) = q.pop_live().expect("front_live just saw it");
                drop(q);
                self.writer.set(true);
                if w.wake(Resume::Ok) {
                    return;
                }
                self.writer.set(false);
            } else {
                if self.writer.get() {
                    return;
                }
                let (w, _) = q.pop_live().expect("front_live just saw it");
                drop(q);
                self.readers.set(self.readers.get() + 1);
                if !w.wake(Resume::Ok) {
                    self.readers.set(self.readers.get() - 1);
                }
            }
        }
    }
}

impl<T> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: while a read guard lives no write guard exists (the lock's counters
        // guarantee it, and the scheduler is single-threaded), so shared access is sound.
        unsafe { &*self.l.value.get() }
    }
}

impl<T> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.l.readers.set(self.l.readers.get() - 1);
        if self.l.readers.get() == 0 {
            self.l.grant();
        }
    }
}

impl<T> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the write guard is the only access path while it lives.
        unsafe { &*self.l.value.get() }
    }
}

impl<T> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the write guard is the only access path while it lives, and `&mut self`
        // makes this borrow unique.
        unsafe { &mut *self.l.value.get() }
    }
}

impl<T> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.l.writer.set(false);
        self.l.grant();
    }
}
