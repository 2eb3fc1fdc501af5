//! A readers-writer lock with a FIFO policy, re-entrant for its writer.
//!
//! Policy: requests are served in arrival order. A reader enters at once only when no
//! writer holds the lock and nobody is queued; otherwise it queues. When the lock frees,
//! the first queued request is granted, and if it is a reader, every reader queued
//! directly behind it is granted too. So a waiting writer holds back readers that arrive
//! after it (writers do not starve) and readers queued before a writer go first (readers
//! do not starve either).
//!
//! The writer may take the lock again, for reading or writing (Shrapnel lets it re-enter);
//! each such guard counts, and the lock frees when the last one drops. Because the writer
//! can hold several guards at once, guards give shared access (`&T`), as the recursive
//! [`Mutex`](super::Mutex) does: put a `RefCell` or `Cell` inside for mutation. Readers
//! are still kept out while the writer holds it, across every blocking call.

use core::cell::{Cell, RefCell};
use core::ops::Deref;

use crate::interruption::Interrupted;
use crate::sched::{sched, Resume};
use crate::wait::{WaitQueue, WaitReason};

use super::resume_to_result;

/// Many readers or one writer (which may re-enter).
///
/// ```
/// # shrapnel_core::doc_scheduler!();
/// # use shrapnel_core as shrapnel;
/// use std::{cell::Cell, rc::Rc};
/// use shrapnel::sync::RwLock;
///
/// let config = Rc::new(RwLock::new(Cell::new(1)));
/// let readers: Vec<_> = (0..3)
///     .map(|_| {
///         let config = config.clone();
///         shrapnel::spawn(move || {
///             let seen = config.read()?.get(); // readers share the lock
///             Ok::<_, shrapnel::Interrupted>(seen)
///         })
///     })
///     .collect();
/// let writer = {
///     let config = config.clone();
///     shrapnel::spawn(move || {
///         let guard = config.write()?; // waits for no reader to hold it
///         guard.set(2);
///         Ok::<_, shrapnel::Interrupted>(())
///     })
/// };
/// shrapnel::event_loop();
/// assert!(readers.iter().all(|r| r.join().unwrap() == Ok(1)));
/// assert_eq!(writer.join().unwrap(), Ok(()));
/// assert!(!config.is_write_locked());
/// ```
pub struct RwLock<T> {
    readers: Cell<usize>,
    /// The coroutine holding the write lock.
    writer: Cell<Option<u64>>,
    /// Guards the writer holds (its write guard and any re-entered read or write guards).
    depth: Cell<usize>,
    /// `true` for a writer.
    waiters: RefCell<WaitQueue<bool>>,
    value: T,
}

/// Shared access; released on drop.
pub struct RwLockReadGuard<'a, T> {
    l: &'a RwLock<T>,
    /// Taken by the writer, re-entering: counts in the writer's depth, not as a reader.
    by_writer: bool,
}

/// Exclusive access (shared with the writer's own re-entered guards); released on drop.
pub struct RwLockWriteGuard<'a, T> {
    l: &'a RwLock<T>,
}

impl<T> RwLock<T> {
    /// An unlocked lock.
    pub const fn new(value: T) -> Self {
        RwLock {
            readers: Cell::new(0),
            writer: Cell::new(None),
            depth: Cell::new(0),
            waiters: RefCell::new(WaitQueue::new()),
            value,
        }
    }

    /// Re-enter if the running coroutine holds the write lock.
    fn reenter(&self) -> bool {
        let me = sched().current_ref().id();
        if self.writer.get() == Some(me) {
            self.depth.set(self.depth.get() + 1);
            return true;
        }
        false
    }

    /// Shared access, waiting behind a writer that holds or waits. The writer itself
    /// re-enters.
    #[track_caller]
    pub fn read(&self) -> Result<RwLockReadGuard<'_, T>, Interrupted> {
        if let Some(guard) = self.try_read() {
            return Ok(guard);
        }
        // `grant` counts us in before waking us.
        crate::hooks::note_waits_on_rwlock(&self.writer, &self.readers);
        let r = sched().block(WaitReason::RwLockRead, |w| {
            self.waiters.borrow_mut().push(w, false)
        });
        if let Resume::Revoked(i) = r {
            // Granted, then interrupted before we ran: leave again.
            self.release_read();
            return Err(i);
        }
        resume_to_result(r)?;
        Ok(RwLockReadGuard {
            l: self,
            by_writer: false,
        })
    }

    /// Exclusive access (re-entrant for the writer).
    #[track_caller]
    pub fn write(&self) -> Result<RwLockWriteGuard<'_, T>, Interrupted> {
        if let Some(guard) = self.try_write() {
            return Ok(guard);
        }
        // `grant` makes us the writer before waking us.
        crate::hooks::note_waits_on_rwlock(&self.writer, &self.readers);
        let r = sched().block(WaitReason::RwLockWrite, |w| {
            self.waiters.borrow_mut().push(w, true)
        });
        if let Resume::Revoked(i) = r {
            // Granted, then interrupted before we ran: pass the lock on.
            self.release_write();
            return Err(i);
        }
        resume_to_result(r)?;
        Ok(RwLockWriteGuard { l: self })
    }

    /// Shared access if [`read`](Self::read) would not wait: `None` while a writer holds
    /// the lock or any request is queued (a waiting writer keeps new readers out, as for
    /// `read`). The writer itself re-enters.
    ///
    /// ```
    /// # shrapnel_core::doc_scheduler!();
    /// # use shrapnel_core as shrapnel;
    /// use shrapnel::sync::RwLock;
    ///
    /// let tries = shrapnel::spawn(|| {
    ///     let lock = RwLock::new(5);
    ///     let reading = lock.try_read().expect("nobody holds it");
    ///     let writing = lock.try_write().is_some(); // refused while a reader holds it
    ///     (*reading, writing)
    /// });
    /// shrapnel::event_loop();
    /// assert_eq!(tries.join().unwrap(), (5, false));
    /// ```
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        if self.reenter() {
            return Some(RwLockReadGuard {
                l: self,
                by_writer: true,
            });
        }
        if self.writer.get().is_some() || self.waiters.borrow_mut().has_live() {
            return None;
        }
        self.readers.set(self.readers.get() + 1);
        Some(RwLockReadGuard {
            l: self,
            by_writer: false,
        })
    }

    /// Exclusive access if [`write`](Self::write) would not wait: `None` while anyone
    /// else holds the lock or any request is queued. Re-entrant for the writer.
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        if self.reenter() {
            return Some(RwLockWriteGuard { l: self });
        }
        if self.writer.get().is_some()
            || self.readers.get() > 0
            || self.waiters.borrow_mut().has_live()
        {
            return None;
        }
        self.writer.set(Some(sched().current_ref().id()));
        self.depth.set(1);
        Some(RwLockWriteGuard { l: self })
    }

    /// Readers holding it now (the writer's re-entered read guards not counted).
    pub fn readers(&self) -> usize {
        self.readers.get()
    }

    /// A writer holds it now.
    pub fn is_write_locked(&self) -> bool {
        self.writer.get().is_some()
    }

    /// The id of the coroutine holding the write lock.
    pub fn writer(&self) -> Option<u64> {
        self.writer.get()
    }

    fn release_read(&self) {
        self.readers.set(self.readers.get() - 1);
        if self.readers.get() == 0 {
            self.grant();
        }
    }

    fn release_write(&self) {
        let d = self.depth.get() - 1;
        self.depth.set(d);
        if d == 0 {
            self.writer.set(None);
            self.grant();
        }
    }

    /// Hand the free lock to the first live request (and the readers right behind it).
    fn grant(&self) {
        loop {
            let mut q = self.waiters.borrow_mut();
            let Some(&(_, is_writer)) = q.front_live() else {
                return;
            };
            if is_writer {
                if self.readers.get() > 0 || self.writer.get().is_some() {
                    return;
                }
                let (w, _) = q.pop_live().expect("front_live just saw it");
                drop(q);
                self.writer.set(Some(w.coro_id()));
                self.depth.set(1);
                if w.wake(Resume::Ok) {
                    return;
                }
                self.writer.set(None);
                self.depth.set(0);
            } else {
                if self.writer.get().is_some() {
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
        &self.l.value
    }
}

impl<T> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        if self.by_writer {
            self.l.release_write();
        } else {
            self.l.release_read();
        }
    }
}

impl<T> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.l.value
    }
}

impl<T> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.l.release_write();
    }
}
