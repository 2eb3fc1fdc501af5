//! An unbounded FIFO queue whose `pop` waits for an item (Shrapnel's `fifo`).

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use crate::interruption::Interrupted;
use crate::sched::{sched, Resume};
use crate::wait::{WaitQueue, WaitReason};

use super::resume_to_result;

/// Items in, items out, in order; a pop on an empty fifo waits. An item pushed while
/// coroutines wait is handed straight to the first of them, so no later popper can take it.
///
/// ```
/// # shrapnel_core::doc_scheduler!();
/// # use shrapnel_core as shrapnel;
/// use std::rc::Rc;
/// use shrapnel::sync::Fifo;
///
/// let jobs = Rc::new(Fifo::new());
/// let consumer = {
///     let jobs = jobs.clone();
///     shrapnel::spawn(move || {
///         let mut done = Vec::new();
///         while let Some(n) = jobs.pop()? {
///             done.push(n * 10);
///         }
///         Ok::<_, shrapnel::Interrupted>(done)
///     })
/// };
/// shrapnel::spawn(move || {
///     for n in 1..=3 {
///         jobs.push(Some(n));
///     }
///     jobs.push(None); // no more
/// });
/// shrapnel::event_loop();
/// assert_eq!(consumer.join().unwrap(), Ok(vec![10, 20, 30]));
/// ```
pub struct Fifo<T> {
    items: RefCell<VecDeque<T>>,
    waiters: RefCell<WaitQueue<Rc<Cell<Option<T>>>>>,
}

impl<T> Default for Fifo<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Fifo<T> {
    /// An empty fifo.
    pub const fn new() -> Self {
        Fifo {
            items: RefCell::new(VecDeque::new()),
            waiters: RefCell::new(WaitQueue::new()),
        }
    }

    /// Add an item (never waits).
    pub fn push(&self, v: T) {
        if let Err(v) = self.hand_to_waiter(v) {
            self.items.borrow_mut().push_back(v);
        }
    }

    /// Give `v` to the first live waiter; `Err(v)` if nobody waits.
    fn hand_to_waiter(&self, v: T) -> Result<(), T> {
        let next = self.waiters.borrow_mut().pop_live();
        match next {
            Some((w, slot)) => {
                slot.set(Some(v));
                w.wake(Resume::Ok);
                Ok(())
            }
            None => Err(v),
        }
    }

    /// Take the oldest item, waiting for one if empty.
    #[track_caller]
    pub fn pop(&self) -> Result<T, Interrupted> {
        if let Some(v) = self.items.borrow_mut().pop_front() {
            return Ok(v);
        }
        let slot = Rc::new(Cell::new(None));
        let mine = slot.clone();
        let r = sched().block(WaitReason::Fifo, |w| {
            self.waiters.borrow_mut().push(w, mine)
        });
        if let Resume::Revoked(i) = r {
            // Handed an item, then interrupted before we ran: the item was the oldest, so
            // it goes to the next waiter or back to the front of the queue.
            if let Some(v) = slot.take() {
                if let Err(v) = self.hand_to_waiter(v) {
                    self.items.borrow_mut().push_front(v);
                }
            }
            return Err(i);
        }
        resume_to_result(r)?;
        Ok(slot
            .take()
            .expect("a woken fifo waiter always receives an item"))
    }

    /// Take every item, waiting for one if empty (Shrapnel's `fifo.pop_all`): oldest
    /// first, never empty.
    ///
    /// ```
    /// # shrapnel_core::doc_scheduler!();
    /// # use shrapnel_core as shrapnel;
    /// use std::rc::Rc;
    /// use shrapnel::sync::Fifo;
    ///
    /// let lines = Rc::new(Fifo::new());
    /// let writer = {
    ///     let lines = lines.clone();
    ///     shrapnel::spawn(move || lines.pop_all()) // waits: nothing queued yet
    /// };
    /// shrapnel::spawn(move || {
    ///     for line in ["a", "b", "c"] {
    ///         lines.push(line); // all three queued before the writer runs again
    ///     }
    /// });
    /// shrapnel::event_loop();
    /// assert_eq!(writer.join().unwrap(), Ok(vec!["a", "b", "c"]));
    /// ```
    #[track_caller]
    pub fn pop_all(&self) -> Result<Vec<T>, Interrupted> {
        let first = self.pop()?;
        let mut all = Vec::with_capacity(1 + self.len());
        all.push(first);
        all.extend(self.items.borrow_mut().drain(..));
        Ok(all)
    }

    /// Take every item queued now (none if empty), oldest first; never waits.
    pub fn try_pop_all(&self) -> Vec<T> {
        self.items.borrow_mut().drain(..).collect()
    }

    /// Take the oldest item if there is one.
    pub fn try_pop(&self) -> Option<T> {
        self.items.borrow_mut().pop_front()
    }

    /// Items queued.
    pub fn len(&self) -> usize {
        self.items.borrow().len()
    }

    /// No items queued.
    pub fn is_empty(&self) -> bool {
        self.items.borrow().is_empty()
    }
}
