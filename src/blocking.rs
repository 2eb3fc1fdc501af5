//! Blocking work off the loop: [`blocking`] runs a closure on a bounded pool of OS threads
//! and blocks only the calling coroutine until it returns.
//!
//! A coroutine that reads a large file, runs `getaddrinfo`, compresses a buffer or calls a
//! C library that blocks stalls every coroutine of its scheduler for as long as the call
//! takes. Hand such work to the pool instead:
//!
//! ```no_run
//! let coro = shrapnel::spawn(|| {
//!     let bytes = shrapnel::blocking::blocking(|| std::fs::read("/etc/hostname"))??;
//!     Ok::<usize, std::io::Error>(bytes.len())
//! });
//! shrapnel::event_loop();
//! println!("{:?}", coro.join());
//! ```
//!
//! The pool is one per process, shared by every scheduler: up to
//! [`PoolConfig::threads`] threads, started when work arrives and ended after
//! [`PoolConfig::idle`] without any, and a queue of at most [`PoolConfig::queue`] jobs
//! beyond the busy threads (past it, [`blocking`] fails with [`BlockingError::QueueFull`]
//! rather than queue without bound). Each call waits on an announcement of its own (an
//! eventfd, a pipe on other systems) that the worker makes when the closure has returned,
//! so the scheduler's poller wakes the coroutine: no polling, no busy wait. `where_all`
//! and `ps` show the wait as `blocking pool (fd N)` with its age, and the backdoor's
//! `stats` the pool's threads and queue.
//!
//! Interrupting the waiting coroutine (a timeout, `interrupt`, `shutdown`) returns at once
//! with the interruption; the closure keeps running on its thread (a thread cannot be
//! stopped safely) and its result is dropped there when it returns. A panic in the
//! closure comes back as [`BlockingError::Panicked`] with its message.

use std::collections::VecDeque;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use shrapnel_core::interruption::Interrupted;
use shrapnel_core::io as core_io;

use crate::sys;

/// How big the pool may grow. [`set_pool_config`] changes it for the whole process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// The most threads running closures at once (default 64).
    pub threads: usize,
    /// The most jobs waiting for a free thread (default 4096); past it, `blocking` fails.
    pub queue: usize,
    /// How long a thread waits for work before it ends (default 10 s).
    pub idle: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            threads: 64,
            queue: 4096,
            idle: Duration::from_secs(10),
        }
    }
}

/// What the pool is doing, for `stats` and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Threads alive now.
    pub threads: usize,
    /// Of them, running a closure.
    pub busy: usize,
    /// Jobs waiting for a thread.
    pub queued: usize,
    /// Closures that have returned (or panicked) since the process started.
    pub completed: u64,
    /// Calls refused because the queue was full.
    pub refused: u64,
}

/// Why [`blocking`] returned no value.
#[derive(Debug)]
pub enum BlockingError {
    /// The closure panicked; the panic's message.
    Panicked(String),
    /// The waiting coroutine was interrupted; the closure still runs, its result will be
    /// dropped.
    Interrupted(Interrupted),
    /// `queued` jobs already wait for a thread, the most [`PoolConfig::queue`] allows.
    QueueFull {
        /// Jobs waiting, the limit.
        queued: usize,
    },
    /// The OS refused what the pool needed (a thread, or the descriptor a call waits on).
    Os(io::Error),
}

impl core::fmt::Display for BlockingError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BlockingError::Panicked(msg) => write!(f, "the blocking closure panicked: {msg}"),
            BlockingError::Interrupted(why) => {
                write!(f, "interrupted while waiting for the blocking pool: {why}")
            }
            BlockingError::QueueFull { queued } => write!(
                f,
                "the blocking pool's queue is full ({queued} jobs wait for a thread); raise \
                 PoolConfig::queue or PoolConfig::threads (shrapnel::blocking::set_pool_config), \
                 or make fewer calls at once"
            ),
            BlockingError::Os(e) => write!(f, "the blocking pool could not start the work: {e}"),
        }
    }
}

impl std::error::Error for BlockingError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BlockingError::Os(e) => Some(e),
            _ => None,
        }
    }
}

impl From<BlockingError> for io::Error {
    /// An interruption keeps its `io` form (kind `TimedOut` for a timeout, see
    /// [`Interrupted::from_io_error`]); a full queue is `WouldBlock`; a panic `Other`.
    fn from(e: BlockingError) -> io::Error {
        match e {
            BlockingError::Interrupted(why) => io::Error::from(why),
            BlockingError::Os(e) => e,
            BlockingError::QueueFull { .. } => io::Error::new(io::ErrorKind::WouldBlock, e),
            BlockingError::Panicked(_) => io::Error::other(e),
        }
    }
}

/// Run `f` on the blocking pool and block the calling coroutine (only it) until `f`
/// returns; its value, or why there is none.
///
/// Called outside any coroutine (no scheduler runs on this thread), `f` simply runs here.
#[track_caller]
pub fn blocking<F, T>(f: F) -> Result<T, BlockingError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    if shrapnel_core::sched::current().is_none() {
        return panic::catch_unwind(AssertUnwindSafe(f)).map_err(|p| panicked(&*p));
    }
    let (read, write) = sys::announcement().map_err(BlockingError::Os)?;
    let call = Arc::new(Call {
        state: Mutex::new(CallState {
            result: None,
            abandoned: false,
        }),
        write,
    });
    let worker_call = call.clone();
    let job: Job = Box::new(move || {
        let result = panic::catch_unwind(AssertUnwindSafe(f)).map_err(|p| panicked(&*p));
        worker_call.finish(result);
    });
    if let Err(e) = pool().submit(job) {
        call.abandon();
        close_announcement(read, write);
        return Err(e);
    }
    loop {
        if let Some(result) = call.take() {
            close_announcement(read, write);
            return result;
        }
        if let Err(e) = core_io::wait_for_work(read) {
            // From here the worker never writes to the fd: it may be closed.
            call.abandon();
            close_announcement(read, write);
            return Err(match e {
                core_io::IoError::Interrupted { reason, .. } => BlockingError::Interrupted(reason),
                // The fd is this call's own, so nothing else should close it; say so if
                // something did.
                other => BlockingError::Os(io::Error::from(other)),
            });
        }
    }
}

/// What the pool is doing now.
pub fn pool_stats() -> PoolStats {
    let state = pool().lock();
    PoolStats {
        threads: state.threads,
        busy: state.busy,
        queued: state.queue.len(),
        completed: state.completed,
        refused: state.refused,
    }
}

/// The pool's limits now.
pub fn pool_config() -> PoolConfig {
    pool().lock().config
}

/// Change the pool's limits (threads beyond a lowered limit end when their closure returns).
/// A limit of 0 threads is taken as 1.
pub fn set_pool_config(config: PoolConfig) {
    let mut state = pool().lock();
    state.config = PoolConfig {
        threads: config.threads.max(1),
        ..config
    };
}

/// The message of a panic's payload.
fn panicked(payload: &(dyn std::any::Any + Send)) -> BlockingError {
    let msg = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    };
    BlockingError::Panicked(msg)
}

/// Deregister and close a call's announcement (both ends, or the one an eventfd is).
fn close_announcement(read: i32, write: i32) {
    let _ = crate::fd::close(read);
    if write != read {
        // SAFETY: the writing end belongs to this call alone, and the worker no longer
        // uses it (the call was finished or abandoned under its lock).
        unsafe { libc::close(write) };
    }
}

/// One call's hand-over between the worker and the waiting coroutine.
struct Call<T> {
    state: Mutex<CallState<T>>,
    /// The announcement's writing end; written under the lock, and only while the call
    /// is not abandoned, so never after the coroutine closed it.
    write: i32,
}

struct CallState<T> {
    result: Option<Result<T, BlockingError>>,
    /// The coroutine stopped waiting: drop the result instead.
    abandoned: bool,
}

impl<T> Call<T> {
    fn lock(&self) -> MutexGuard<'_, CallState<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The worker's side: keep the result and announce it, or drop it if nobody waits.
    fn finish(&self, result: Result<T, BlockingError>) {
        let mut state = self.lock();
        if state.abandoned {
            drop(state);
            drop(result);
            return;
        }
        state.result = Some(result);
        sys::announce(self.write);
    }

    fn take(&self) -> Option<Result<T, BlockingError>> {
        self.lock().result.take()
    }

    fn abandon(&self) {
        let mut state = self.lock();
        state.abandoned = true;
        state.result = None;
    }
}

type Job = Box<dyn FnOnce() + Send + 'static>;

struct Pool {
    state: Mutex<PoolState>,
    work: Condvar,
}

struct PoolState {
    config: PoolConfig,
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
    busy: usize,
    completed: u64,
    refused: u64,
}

fn pool() -> &'static Pool {
    static POOL: std::sync::OnceLock<Pool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| Pool {
        state: Mutex::new(PoolState {
            config: PoolConfig::default(),
            queue: VecDeque::new(),
            threads: 0,
            idle: 0,
            busy: 0,
            completed: 0,
            refused: 0,
        }),
        work: Condvar::new(),
    })
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn submit(&'static self, job: Job) -> Result<(), BlockingError> {
        let mut state = self.lock();
        // Jobs that can start without waiting for a busy thread, plus the queue's room.
        let room = state.config.threads.saturating_sub(state.busy) + state.config.queue;
        if state.queue.len() >= room {
            state.refused += 1;
            return Err(BlockingError::QueueFull {
                queued: state.config.queue,
            });
        }
        state.queue.push_back(job);
        if state.idle > 0 {
            self.work.notify_one();
            return Ok(());
        }
        // Threads started but not yet waiting or working will take the first jobs.
        let starting = state.threads - state.busy;
        if starting >= state.queue.len() || state.threads >= state.config.threads {
            return Ok(()); // or a busy thread takes it when done
        }
        state.threads += 1;
        drop(state);
        let started = std::thread::Builder::new()
            .name("shrapnel-blocking".into())
            .spawn(move || self.work_loop());
        if let Err(e) = started {
            let mut state = self.lock();
            state.threads -= 1;
            if state.threads == 0 {
                // Nobody will ever run the job: take it back.
                state.queue.pop_back();
                return Err(BlockingError::Os(e));
            }
        }
        Ok(())
    }

    fn work_loop(&self) {
        let mut state = self.lock();
        loop {
            if state.threads > state.config.threads {
                break; // the limit was lowered
            }
            let Some(job) = state.queue.pop_front() else {
                state.idle += 1;
                let idle = state.config.idle;
                let (next, timeout) = self
                    .work
                    .wait_timeout(state, idle)
                    .unwrap_or_else(|p| p.into_inner());
                state = next;
                state.idle -= 1;
                if timeout.timed_out() && state.queue.is_empty() {
                    break;
                }
                continue;
            };
            state.busy += 1;
            drop(state);
            job();
            state = self.lock();
            state.busy -= 1;
            state.completed += 1;
        }
        state.threads -= 1;
    }
}
