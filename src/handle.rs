//! Starting coroutines on another scheduler: [`handle`]`()` gives a [`Handle`] to this
//! thread's scheduler, which any thread can clone and keep; [`Handle::spawn`] sends it a
//! `Send` closure, and a coroutine of that scheduler (named `remote spawns`) starts it as a
//! new coroutine there.
//!
//! The closures travel on a [`channel`], so a burst of them wakes the
//! scheduler once. While any handle exists, the `remote spawns` coroutine waits for work,
//! so that scheduler's `event_loop` does not end for lack of it; when the last handle is
//! dropped, it ends.
//!
//! ```no_run
//! let handle = std::sync::Mutex::new(None);
//! // On the scheduler that should run the work:
//! *handle.lock().unwrap() = Some(shrapnel::handle());
//! // From any other thread:
//! let h = handle.lock().unwrap().clone().unwrap();
//! h.spawn(|| shrapnel::print_stderr!("running on the handle's scheduler")).unwrap();
//! ```

use std::cell::RefCell;
use std::sync::{Arc, Weak};

use crate::channel::{self, Sender};

type Job = Box<dyn FnOnce() + Send>;

/// A way to start coroutines on one scheduler from any thread (`Send + Sync + Clone`).
#[derive(Clone)]
pub struct Handle {
    jobs: Arc<Sender<Job>>,
}

/// The handle's scheduler is gone (its `remote spawns` coroutine ended); the closure is not
/// run.
#[derive(Debug)]
pub struct SchedulerGone;

impl std::fmt::Display for SchedulerGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("shrapnel: the handle's scheduler is gone (its loop ended or was shut down)")
    }
}

impl std::error::Error for SchedulerGone {}

thread_local! {
    /// This thread's live handles, if any, so `handle()` hands out the same channel.
    static CURRENT: RefCell<Weak<Sender<Job>>> = const { RefCell::new(Weak::new()) };
}

/// A handle to this thread's scheduler (starting it and its `remote spawns` coroutine if
/// need be).
pub fn handle() -> Handle {
    crate::ensure();
    if let Some(jobs) = CURRENT.with(|c| c.borrow().upgrade()) {
        return Handle { jobs };
    }
    let (tx, rx) = channel::channel::<Job>();
    let jobs = Arc::new(tx);
    CURRENT.with(|c| *c.borrow_mut() = Arc::downgrade(&jobs));
    let started = crate::Builder::new().name("remote spawns").spawn(move || {
        while let Ok(job) = rx.recv() {
            if let Err(e) = crate::Builder::new().name("remote spawn").spawn(job) {
                crate::print_stderr!("shrapnel: a remote spawn was not started: {e}");
            }
        }
    });
    if let Err(e) = started {
        crate::print_stderr!("shrapnel: handle(): the remote-spawn coroutine was not started: {e}");
    }
    Handle { jobs }
}

impl Handle {
    /// Start `f` as a new coroutine on the handle's scheduler.
    pub fn spawn<F>(&self, f: F) -> Result<(), SchedulerGone>
    where
        F: FnOnce() + Send + 'static,
    {
        self.jobs.send(Box::new(f)).map_err(|_| SchedulerGone)
    }
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Handle")
    }
}
