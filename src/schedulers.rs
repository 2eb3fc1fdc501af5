//! Every scheduler of the process, for the tools that look at all of them (the backdoor's
//! `ps`, `where`, `top`, `interrupt`…): a registry with each runtime scheduler's number and
//! thread, and a mailbox through which any coroutine asks a question of another scheduler
//! and waits for the answer.
//!
//! A scheduler's state belongs to its thread, so a question ([`ask_all`]) is a `Send`
//! closure that runs *on* each scheduler, in its event loop between passes (a loop hook,
//! outside any coroutine, where the core's snapshots and levers work as in a coroutine);
//! its result comes back on a [`channel`](crate::channel). The asker's own scheduler
//! answers directly. A scheduler that does not answer within the given time (a coroutine
//! there holds the CPU, or its thread is stuck outside the loop) is reported as such, and
//! the asker goes on: a console command never waits for a stuck scheduler.
//!
//! A scheduler is listed while it runs its event loop (`shrapnel::event_loop`, as
//! `run_per_core` does): one that is out of its loop cannot answer, and its coroutines
//! cannot run either. It keeps its number (given when the runtime installs it) from one
//! loop to the next. Nothing here keeps an event loop alive: the mailbox is read by a
//! hook, not by a waiting coroutine.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use shrapnel_core::poller::Notify;

use crate::channel;

/// A question for one scheduler, run in its loop.
type Job = Box<dyn FnOnce() + Send>;

/// One scheduler's inbox: the questions waiting, and how to wake its loop.
struct Mailbox {
    jobs: Mutex<Vec<Job>>,
    notify: Arc<dyn Notify>,
}

/// A registered scheduler.
struct Entry {
    number: usize,
    thread: String,
    mailbox: Arc<Mailbox>,
}

/// Every registered scheduler, in the order they started.
static REGISTRY: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
/// The number the next scheduler gets (never reused, so a number names one scheduler).
static NEXT_NUMBER: AtomicUsize = AtomicUsize::new(0);

fn registry() -> MutexGuard<'static, Vec<Entry>> {
    // A panic while the lock is held leaves the list itself consistent (each change is
    // one push or retain).
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// This thread's scheduler's number and mailbox, from its installation by the runtime.
struct Registration {
    number: usize,
    mailbox: Arc<Mailbox>,
}

/// Leave the registry: questions queued since are dropped, which closes their answer
/// channels (the askers hear that this scheduler ended before answering).
fn unlist(number: usize, mailbox: &Mailbox) {
    registry().retain(|e| e.number != number);
    let dropped = std::mem::take(&mut *lock_jobs(mailbox));
    drop(dropped);
}

/// While it lives, this thread's scheduler is listed (see [`in_loop`]).
pub(crate) struct Listed(Option<(usize, Arc<Mailbox>)>);

impl Drop for Listed {
    fn drop(&mut self) {
        if let Some((number, mailbox)) = self.0.take() {
            unlist(number, &mailbox);
        }
    }
}

/// List this thread's scheduler for as long as the returned guard lives: the runtime's
/// `event_loop` holds it while the loop runs. Does nothing for a scheduler the runtime did
/// not install.
pub(crate) fn in_loop() -> Listed {
    let Some((number, mailbox)) =
        MINE.with(|m| m.borrow().as_ref().map(|r| (r.number, r.mailbox.clone())))
    else {
        return Listed(None);
    };
    let thread = std::thread::current().name().map_or_else(
        || format!("{:?}", std::thread::current().id()),
        str::to_string,
    );
    let mut list = registry();
    if list.iter().any(|e| e.number == number) {
        // Already listed (a nested loop): the outer guard unlists it.
        return Listed(None);
    }
    list.push(Entry {
        number,
        thread,
        mailbox: mailbox.clone(),
    });
    Listed(Some((number, mailbox)))
}

fn lock_jobs(m: &Mailbox) -> MutexGuard<'_, Vec<Job>> {
    m.jobs.lock().unwrap_or_else(|e| e.into_inner())
}

thread_local! {
    static MINE: RefCell<Option<Registration>> = const { RefCell::new(None) };
}

/// Called by the runtime when it installs this thread's scheduler: give it a number and a
/// mailbox, and add the loop hook that answers questions.
pub(crate) fn on_scheduler_start() {
    let number = NEXT_NUMBER.fetch_add(1, Ordering::Relaxed);
    let mailbox = Arc::new(Mailbox {
        jobs: Mutex::new(Vec::new()),
        notify: shrapnel_core::sched::notifier(),
    });
    MINE.with(|m| *m.borrow_mut() = Some(Registration { number, mailbox }));
    crate::runtime::add_loop_hook("schedulers", answer_questions);
}

/// Called by `reset`: this thread's scheduler is gone.
pub(crate) fn on_scheduler_end() {
    if let Some(r) = MINE.with(|m| m.borrow_mut().take()) {
        unlist(r.number, &r.mailbox);
    }
}

/// The loop hook: run the questions queued for this scheduler.
fn answer_questions() {
    let Some(mailbox) = MINE.with(|m| m.borrow().as_ref().map(|r| r.mailbox.clone())) else {
        return;
    };
    let jobs = std::mem::take(&mut *lock_jobs(&mailbox));
    for job in jobs {
        job();
    }
}

/// This thread's scheduler's number, if it is listed (in its loop).
pub(crate) fn this_number() -> Option<usize> {
    let number = MINE.with(|m| m.borrow().as_ref().map(|r| r.number))?;
    registry()
        .iter()
        .any(|e| e.number == number)
        .then_some(number)
}

/// The number [`ask_all`] gives the asker's own scheduler when it is not listed (it was
/// installed with the core's `install`, or is out of its loop).
#[cfg_attr(not(feature = "backdoor"), allow(dead_code))]
pub(crate) const UNREGISTERED: usize = usize::MAX;

/// One scheduler's answer to [`ask_all`].
#[cfg_attr(not(feature = "backdoor"), allow(dead_code))]
pub(crate) struct Answer<T> {
    /// The scheduler's number (in the order schedulers started, from 0).
    pub(crate) number: usize,
    /// Its thread's name (or id).
    pub(crate) thread: String,
    /// What `ask` returned there, or why nothing came back.
    pub(crate) value: Result<T, String>,
}

/// Run `ask` on every scheduler of the process (this one directly, the others in their
/// loops) and return the answers in scheduler order, waiting at most `patience` for the
/// others. Call it from a coroutine; elsewhere only this thread's scheduler answers.
#[cfg_attr(not(feature = "backdoor"), allow(dead_code))]
pub(crate) fn ask_all<T, F>(ask: F, patience: Duration) -> Vec<Answer<T>>
where
    T: Send + 'static,
    F: Fn() -> T + Send + Sync + 'static,
{
    let ask = Arc::new(ask);
    let me = this_number();
    let in_coroutine = crate::current().is_some();
    let (tx, rx) = channel::channel::<(usize, T)>();
    let mut answers: Vec<Answer<T>> = Vec::new();
    let mut pending = 0usize;
    let others: Vec<(usize, String, Arc<Mailbox>)> = registry()
        .iter()
        .map(|e| (e.number, e.thread.clone(), e.mailbox.clone()))
        .collect();
    for (number, thread, mailbox) in others {
        if Some(number) == me {
            answers.push(Answer {
                number,
                thread,
                value: Ok(ask()),
            });
            continue;
        }
        let value = if in_coroutine {
            let (ask, tx) = (ask.clone(), tx.clone());
            lock_jobs(&mailbox).push(Box::new(move || {
                let _ = tx.send((number, ask()));
            }));
            crate::signal::wake::note_event();
            mailbox.notify.notify();
            pending += 1;
            Err(format!(
                "no answer within {:?}: a coroutine there may hold the CPU (see the latency \
                 warnings on stderr) or its thread is outside its event loop",
                patience
            ))
        } else {
            Err("not asked: the question came from outside a coroutine".to_string())
        };
        answers.push(Answer {
            number,
            thread,
            value,
        });
    }
    if me.is_none() && shrapnel_core::sched::is_installed() {
        // A scheduler installed with the core's `install` rather than the runtime's, or
        // out of its loop: not listed, it still answers for itself.
        answers.insert(
            0,
            Answer {
                number: UNREGISTERED,
                thread: "this thread".to_string(),
                value: Ok(ask()),
            },
        );
    }
    drop(tx);
    answers.sort_by_key(|a| a.number);
    if pending > 0 {
        let _ = crate::with_timeout(patience, || {
            while pending > 0 {
                match rx.recv() {
                    Ok((number, v)) => {
                        if let Some(a) = answers.iter_mut().find(|a| a.number == number) {
                            a.value = Ok(v);
                        }
                        pending -= 1;
                    }
                    Err(channel::RecvError::Closed) => {
                        // The others' schedulers ended: their questions were dropped.
                        for a in answers.iter_mut().filter(|a| a.value.is_err()) {
                            a.value = Err("its scheduler ended before answering".to_string());
                        }
                        break;
                    }
                    Err(channel::RecvError::Interrupted(_)) => break,
                }
            }
        });
    }
    answers
}
