//! Channels between schedulers: messages from any thread — another scheduler's coroutine, a
//! plain OS thread, the other core of a dual-core MCU — to one receiving coroutine.
//!
//! [`channel`] is unbounded; [`bounded`] refuses a message when `cap` are queued
//! ([`Sender::try_send`] gives it back; [`Sender::send`] waits for room: a coroutine blocks
//! in a FIFO queue of senders, woken by the receive that makes room, on whichever
//! scheduler it runs; a plain thread yields until there is room). A [`Sender`] is `Send + Clone`; the [`Receiver`]
//! stays on the thread that made it (`!Send`): make the channel on the scheduler that will
//! read it and hand out senders. `recv` blocks only the calling coroutine.
//!
//! Waking: a receiver about to block records its scheduler's poller notify and a flag; the
//! first send that finds the flag set signals the receiver's event and notifies the poller
//! (one eventfd write on Linux). Later sends of a burst find the flag clear and cost no
//! wake-up, and the receiver takes all that is queued before it blocks again. Dropping the
//! last sender (or the receiver) closes the channel and wakes the other side.
//!
//! The queue is behind a spin lock held for one push or pop. On bare metal, an interrupt
//! handler on the core that runs the receiver must not send (it could spin on a lock its own
//! core holds); signal an [`IrqEvent`] there instead.
//!
//! ```
//! # shrapnel_core::doc_scheduler!();
//! # use shrapnel_core as shrapnel;
//! use shrapnel::channel;
//!
//! let (tx, rx) = channel::channel();
//! let producer = std::thread::spawn(move || {
//!     for i in 0..1000u32 {
//!         tx.send(i).unwrap();
//!     }
//! });
//! let sum = shrapnel::spawn(move || {
//!     let mut sum = 0u64;
//!     while let Ok(i) = rx.recv() {
//!         sum += u64::from(i);
//!     }
//!     sum // the loop ended: every sender is gone
//! });
//! shrapnel::event_loop();
//! producer.join().unwrap();
//! assert_eq!(sum.join().unwrap(), 499_500);
//! ```

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::interruption::Interrupted;
use crate::irq_event::IrqEvent;
use crate::poller::Notify;
use crate::wait::WaitReason;

struct Shared<T> {
    state: spin::Mutex<State<T>>,
    /// What the receiving coroutines wait on.
    event: Arc<IrqEvent>,
    /// A receiver is about to block or blocked: the next send must wake it.
    receiver_waiting: AtomicBool,
    senders: AtomicUsize,
    cap: Option<usize>,
}

struct State<T> {
    queue: VecDeque<T>,
    receiver_alive: bool,
    /// The poller notify of the scheduler the receiver last blocked on, and that
    /// scheduler's identity ([`this_scheduler`]).
    notify: Option<(Arc<dyn Notify>, usize)>,
    /// Coroutines waiting for room in a full bounded channel, first come first served.
    send_waiters: VecDeque<SendWaiter>,
}

/// A coroutine waiting in [`Sender::send`]: the event it waits on (its own, made for this
/// wait) and the notify of its scheduler's poller.
struct SendWaiter {
    event: Arc<IrqEvent>,
    notify: Arc<dyn Notify>,
    /// Its scheduler ([`this_scheduler`]).
    scheduler: usize,
}

impl SendWaiter {
    /// Wake it (from any thread: an atomic store, and a poller notify unless it waits on
    /// this thread's own scheduler, whose loop looks at signalled events before it waits).
    fn wake(self) {
        self.event.signal();
        if self.scheduler != this_scheduler() {
            self.notify.notify();
        }
    }
}

/// This thread's scheduler as a number that tells schedulers apart (its address; 0 on a
/// thread without one): a waker on the waiter's own scheduler need not wake its poller.
fn this_scheduler() -> usize {
    crate::hooks::sched_ptr() as usize
}

/// The sending side: `Send + Clone`, usable from any thread.
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

// SAFETY: a sender touches the queue under the spin lock (`T: Send` moves messages across
// threads), the atomics, the poller's `Notify` (`Send + Sync`), and of the `IrqEvent` only
// `signal` (atomics) and the `Arc`'s count. The event's wait queue, which holds the
// receiving scheduler's `Rc`s, is touched only on the receiver's thread, and the receiver
// empties it when it is dropped (`forget_waiters`), so a sender that drops the last `Arc`
// drops an empty queue. The same holds the other way for a sender waiting for room: its
// event's queue holds its own scheduler's `Rc`s and is emptied on its thread when the wait
// ends (`EmptiedAfterWait`), before a receiver can hold the last `Arc`.
unsafe impl<T: Send> Send for Sender<T> {}
// SAFETY: as for `Send`: every method takes `&self` and does only the above.
unsafe impl<T: Send> Sync for Sender<T> {}

/// The receiving side, on the thread that made it; `recv` blocks only the calling
/// coroutine.
///
/// `!Send` because its coroutines' wait queue belongs to that thread's scheduler (whose
/// loop may still look at it right after a wait ended):
///
/// ```compile_fail
/// fn needs_send<T: Send>(_: T) {}
/// let (_tx, rx) = shrapnel_core::channel::channel::<u8>();
/// needs_send(rx);
/// ```
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
    _one_thread: PhantomData<*const ()>,
}

/// A message that could not be sent, given back.
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// A bounded channel holds `cap` messages.
    Full(T),
    /// The receiver is gone.
    Closed(T),
}

/// Why `send` gave the message back.
#[derive(Debug, PartialEq, Eq)]
pub enum SendError<T> {
    /// The receiver is gone.
    Closed(T),
    /// The coroutine waiting for room in a full bounded channel was interrupted (a
    /// timeout, `interrupt`, `shutdown`).
    Interrupted(T, Interrupted),
}

impl<T> SendError<T> {
    /// The message that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            SendError::Closed(v) | SendError::Interrupted(v, _) => v,
        }
    }
}

/// Why `recv` returned without a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    /// Every sender is gone and nothing is queued.
    Closed,
    /// The waiting coroutine was interrupted.
    Interrupted(Interrupted),
}

/// Why `try_recv` returned without a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing is queued now.
    Empty,
    /// Every sender is gone and nothing is queued.
    Closed,
}

impl core::fmt::Display for RecvError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RecvError::Closed => f.write_str("the channel is closed: every sender is gone"),
            RecvError::Interrupted(i) => write!(f, "waiting on a channel: {i}"),
        }
    }
}

impl<T> core::fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SendError::Closed(_) => f.write_str("the channel's receiver is gone"),
            SendError::Interrupted(_, i) => write!(f, "waiting for room in a channel: {i}"),
        }
    }
}

impl<T> core::fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("the bounded channel is full"),
            TrySendError::Closed(_) => f.write_str("the channel's receiver is gone"),
        }
    }
}

/// An unbounded channel.
pub fn channel<T: Send>() -> (Sender<T>, Receiver<T>) {
    make(None)
}

/// A channel that holds at most `cap` messages (at least 1).
pub fn bounded<T: Send>(cap: usize) -> (Sender<T>, Receiver<T>) {
    make(Some(cap.max(1)))
}

fn make<T: Send>(cap: Option<usize>) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: spin::Mutex::new(State {
            queue: VecDeque::new(),
            receiver_alive: true,
            notify: None,
            send_waiters: VecDeque::new(),
        }),
        // Shared with senders on other threads, which only signal it and count the Arc (see
        // the `Send` impl of `Sender`).
        #[allow(clippy::arc_with_non_send_sync)]
        event: Arc::new(IrqEvent::new()),
        receiver_waiting: AtomicBool::new(false),
        senders: AtomicUsize::new(1),
        cap,
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver {
            shared,
            _one_thread: PhantomData,
        },
    )
}

/// A sender's wait event, emptied of its waiters when the wait is over — on the sender's
/// thread, with nobody waiting on it, also when the coroutine is unwound — so that a
/// receiver on another thread that drops the last `Arc` (a taken [`SendWaiter`]) drops an
/// empty queue (see Sender's `Send`).
struct EmptiedAfterWait(Arc<IrqEvent>);

impl Drop for EmptiedAfterWait {
    fn drop(&mut self) {
        self.0.forget_waiters();
    }
}

/// A plain thread's turn while it waits for room: with `std`, let the OS run others.
fn yield_thread() {
    #[cfg(feature = "std")]
    std::thread::yield_now();
    #[cfg(not(feature = "std"))]
    core::hint::spin_loop();
}

impl<T> Shared<T> {
    /// A receive made room for `n` messages: take that many waiting senders off the queue
    /// (call with the lock held; wake what this returns after releasing it).
    fn room_made(&self, state: &mut State<T>, n: usize) -> VecDeque<SendWaiter> {
        if state.send_waiters.is_empty() || n == 0 {
            return VecDeque::new();
        }
        let n = n.min(state.send_waiters.len());
        state.send_waiters.drain(..n).collect()
    }

    /// Wake the receiver if it is waiting (once per wait: the flag is taken): signal its
    /// event, and notify its poller unless it is this thread's scheduler (a send from a
    /// coroutine of the receiver's own scheduler costs no system call: the loop looks at
    /// signalled events before it waits).
    fn wake_receiver(&self) {
        if self.receiver_waiting.swap(false, Ordering::AcqRel) {
            let notify = self.state.lock().notify.clone();
            self.event.signal();
            if let Some((n, scheduler)) = notify {
                if scheduler != this_scheduler() {
                    n.notify();
                }
            }
        }
    }
}

impl<T: Send> Sender<T> {
    /// Queue `v`, waiting for room in a full bounded channel: a coroutine blocks (in line
    /// with the other waiting senders, woken by the receive that makes room; shown as
    /// `channel` in `where_all`), a plain thread yields until there is room. Fails if the
    /// receiver is gone or the waiting coroutine is interrupted; the message comes back
    /// either way. Use [`try_send`](Self::try_send) to decide yourself what a full channel
    /// means.
    #[track_caller]
    pub fn send(&self, v: T) -> Result<(), SendError<T>> {
        let in_coroutine = crate::sched::try_sched().is_some() && crate::sched::current().is_some();
        loop {
            let event = {
                let mut state = self.shared.state.lock();
                if !state.receiver_alive {
                    return Err(SendError::Closed(v));
                }
                if self.shared.cap.is_none_or(|cap| state.queue.len() < cap) {
                    state.queue.push_back(v);
                    drop(state);
                    self.shared.wake_receiver();
                    return Ok(());
                }
                if !in_coroutine {
                    None
                } else {
                    // Under the lock, so the receive that makes room sees this waiter.
                    #[allow(clippy::arc_with_non_send_sync)]
                    let event = Arc::new(IrqEvent::new());
                    state.send_waiters.push_back(SendWaiter {
                        event: event.clone(),
                        notify: crate::sched::notifier(),
                        scheduler: this_scheduler(),
                    });
                    Some(event)
                }
            };
            let Some(event) = event else {
                // A plain thread: no scheduler to block on.
                yield_thread();
                continue;
            };
            let event = EmptiedAfterWait(event);
            let waited = event.0.wait_shared(WaitReason::Channel);
            if let Err(i) = waited {
                let event = &event.0;
                let mut state = self.shared.state.lock();
                let before = state.send_waiters.len();
                state.send_waiters.retain(|w| !Arc::ptr_eq(&w.event, event));
                // Already taken off the queue: a receive made room for this sender, which
                // will not use it; pass the turn on.
                let passed_on = if state.send_waiters.len() == before {
                    state.send_waiters.pop_front()
                } else {
                    None
                };
                drop(state);
                if let Some(next) = passed_on {
                    next.wake();
                }
                return Err(SendError::Interrupted(v, i));
            }
        }
    }

    /// Queue `v` without waiting.
    pub fn try_send(&self, v: T) -> Result<(), TrySendError<T>> {
        {
            let mut state = self.shared.state.lock();
            if !state.receiver_alive {
                return Err(TrySendError::Closed(v));
            }
            if self.shared.cap.is_some_and(|cap| state.queue.len() >= cap) {
                return Err(TrySendError::Full(v));
            }
            state.queue.push_back(v);
        }
        self.shared.wake_receiver();
        Ok(())
    }

    /// Whether the receiver is gone.
    pub fn is_closed(&self) -> bool {
        !self.shared.state.lock().receiver_alive
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::AcqRel);
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    /// The last sender closes the channel: the receiver gets what is queued, then `Closed`.
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.wake_receiver();
        }
    }
}

impl<T: Send> Receiver<T> {
    /// The next message, blocking the calling coroutine until one comes; `Closed` once
    /// every sender is gone and the queue is empty.
    #[track_caller]
    pub fn recv(&self) -> Result<T, RecvError> {
        loop {
            {
                let mut state = self.shared.state.lock();
                if let Some(v) = state.queue.pop_front() {
                    let woken = self.shared.room_made(&mut state, 1);
                    drop(state);
                    woken.into_iter().for_each(SendWaiter::wake);
                    return Ok(v);
                }
                if self.shared.senders.load(Ordering::Acquire) == 0 {
                    return Err(RecvError::Closed);
                }
                // Under the lock, so a send after this sees the flag and one before it left
                // its message in the queue.
                state.notify = Some((crate::sched::notifier(), this_scheduler()));
                self.shared.receiver_waiting.store(true, Ordering::Release);
            }
            if let Err(i) = self.shared.event.wait_shared(WaitReason::Channel) {
                self.shared.receiver_waiting.store(false, Ordering::Release);
                return Err(RecvError::Interrupted(i));
            }
        }
    }

    /// The next message if one is queued.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut state = self.shared.state.lock();
        match state.queue.pop_front() {
            Some(v) => {
                let woken = self.shared.room_made(&mut state, 1);
                drop(state);
                woken.into_iter().for_each(SendWaiter::wake);
                Ok(v)
            }
            None if self.shared.senders.load(Ordering::Acquire) == 0 => Err(TryRecvError::Closed),
            None => Err(TryRecvError::Empty),
        }
    }

    /// Everything queued now, in order (one lock for the batch).
    pub fn try_recv_all(&self) -> alloc::vec::Vec<T> {
        let mut state = self.shared.state.lock();
        let all: alloc::vec::Vec<T> = state.queue.drain(..).collect();
        let woken = self.shared.room_made(&mut state, all.len());
        drop(state);
        woken.into_iter().for_each(SendWaiter::wake);
        all
    }

    /// Messages queued now.
    pub fn len(&self) -> usize {
        self.shared.state.lock().queue.len()
    }

    /// Nothing is queued now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Drop for Receiver<T> {
    /// Closes the channel for the senders; queued messages are dropped.
    fn drop(&mut self) {
        let (queued, senders) = {
            let mut state = self.shared.state.lock();
            state.receiver_alive = false;
            (
                core::mem::take(&mut state.queue),
                core::mem::take(&mut state.send_waiters),
            )
        };
        drop(queued);
        // Waiting senders see the channel closed.
        senders.into_iter().for_each(SendWaiter::wake);
        // On the receiver's thread (it is `!Send`), with no coroutine in `recv` (that would
        // borrow it): stale waiters of interrupted receives go now (see Sender's Send).
        self.shared.event.forget_waiters();
    }
}
