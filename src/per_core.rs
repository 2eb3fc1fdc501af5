//! A scheduler per core: [`run_per_core`]`(n, f)` starts `n` OS threads (one per available
//! CPU with `n = 0`), each with its own scheduler, runs `f(core_index)` as the first
//! coroutine on each, and returns when every event loop has ended, with their exit codes.
//! Listeners bound with `TcpListener::bind_reuseport` (or `UdpSocket::bind_reuseport`) on
//! each core share one port, and the kernel spreads connections among them.
//!
//! If one scheduler's loop panics (a panic that escapes `event_loop`, not a coroutine's: a
//! coroutine's panic is caught at its root as usual), the panic is reported on stderr and
//! every other scheduler of the group is stopped cleanly, as on SIGTERM: its coroutines
//! are shut down and its loop ends; `run_per_core` then returns an error naming the core.
//!
//! ```no_run
//! use shrapnel::net::TcpListener;
//!
//! let codes = shrapnel::run_per_core(0, |core| {
//!     let listener = TcpListener::bind_reuseport("127.0.0.1:7000").unwrap();
//!     while let Ok((conn, _)) = listener.accept() {
//!         shrapnel::spawn(move || {
//!             let _ = std::io::copy(&mut &conn, &mut &conn);
//!         });
//!     }
//!     shrapnel::print_stderr!("core {core}: stopped accepting");
//! });
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use shrapnel_core::poller::Notify;

use crate::RuntimeConfig;

/// The exit code a scheduler's loop ends with when another scheduler of its group panicked.
pub const STOPPED_BY_PEER: i32 = 70;

/// Options for [`PerCore::run`]; [`run_per_core`] uses the defaults.
#[derive(Clone, Debug)]
pub struct PerCore {
    cores: usize,
    pin: bool,
    config: RuntimeConfig,
}

/// What [`run_per_core`] reports when a scheduler's loop panicked (or its thread could not
/// start): each core's outcome, in order.
#[derive(Debug)]
pub struct PerCoreError {
    /// Per core: the loop's exit code, or what went wrong.
    pub outcomes: Vec<Result<i32, String>>,
}

impl std::fmt::Display for PerCoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "run_per_core: ")?;
        let mut first = true;
        for (core, outcome) in self.outcomes.iter().enumerate() {
            if let Err(why) = outcome {
                if !first {
                    write!(f, "; ")?;
                }
                first = false;
                write!(f, "core {core}: {why}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for PerCoreError {}

/// Run `f(core)` as the first coroutine of `cores` schedulers on as many threads (0: one
/// per available CPU); returns each loop's exit code, in core order. See the module doc.
pub fn run_per_core<F>(cores: usize, f: F) -> Result<Vec<i32>, PerCoreError>
where
    F: Fn(usize) + Send + Sync + 'static,
{
    PerCore::new(cores).run(f)
}

/// The group's shared state: whether to stop, and how to wake each scheduler.
struct Group {
    stop: AtomicBool,
    schedulers: Mutex<Vec<Arc<dyn Notify>>>,
}

thread_local! {
    /// The group of the scheduler on this thread, if it was started by `run_per_core`.
    static GROUP: std::cell::RefCell<Option<Arc<Group>>> = const { std::cell::RefCell::new(None) };
}

impl PerCore {
    /// `cores` schedulers (0: one per available CPU), not pinned, default configuration.
    pub fn new(cores: usize) -> Self {
        PerCore {
            cores,
            pin: false,
            config: RuntimeConfig::default(),
        }
    }

    /// Pin scheduler `i` to CPU `i % cpus` (Linux; elsewhere a warning says it was not).
    /// Off by default. Pin when the schedulers have those CPUs to themselves: a pinned
    /// scheduler preempted by another busy thread of the machine waits for its CPU even
    /// when another one is free (BENCHMARKS.md: 0.7× the unpinned req/s with the load
    /// generator on the same two CPUs).
    pub fn pin(mut self, on: bool) -> Self {
        self.pin = on;
        self
    }

    /// Each scheduler's configuration.
    pub fn config(mut self, config: RuntimeConfig) -> Self {
        self.config = config;
        self
    }

    /// Start the schedulers and wait for all of them.
    pub fn run<F>(self, f: F) -> Result<Vec<i32>, PerCoreError>
    where
        F: Fn(usize) + Send + Sync + 'static,
    {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cores = if self.cores == 0 { cpus } else { self.cores };
        let f = Arc::new(f);
        let group = Arc::new(Group {
            stop: AtomicBool::new(false),
            schedulers: Mutex::new(Vec::new()),
        });
        let mut threads = Vec::with_capacity(cores);
        for core in 0..cores {
            let (f, members, config) = (f.clone(), group.clone(), self.config.clone());
            let pin = self.pin.then_some(core % cpus);
            let spawned = std::thread::Builder::new()
                .name(format!("shrapnel-core-{core}"))
                .spawn(move || {
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        run_one(core, pin, config, &members, move || f(core))
                    }));
                    if result.is_err() {
                        stop_group(&members);
                    }
                    result.map_err(|p| panic_message(p.as_ref()))?
                });
            match spawned {
                Ok(t) => threads.push(Some(t)),
                Err(e) => {
                    crate::print_stderr!(
                        "shrapnel: run_per_core: core {core}: thread not started: {e}"
                    );
                    stop_group(&group);
                    threads.push(None);
                }
            }
        }
        let outcomes: Vec<Result<i32, String>> = threads
            .into_iter()
            .map(|t| match t {
                None => Err("its thread could not be started".to_string()),
                Some(t) => t.join().unwrap_or_else(|p| Err(panic_message(p.as_ref()))),
            })
            .collect();
        if outcomes.iter().all(Result::is_ok) {
            Ok(outcomes
                .into_iter()
                .map(|o| o.unwrap_or_default())
                .collect())
        } else {
            for (core, o) in outcomes.iter().enumerate() {
                if let Err(why) = o {
                    crate::print_stderr!("shrapnel: run_per_core: core {core}: {why}");
                }
            }
            Err(PerCoreError { outcomes })
        }
    }
}

/// One core's thread: configure, pin, join the group, run `first`, run the loop.
fn run_one(
    core: usize,
    pin: Option<usize>,
    config: RuntimeConfig,
    group: &Arc<Group>,
    first: impl FnOnce() + 'static,
) -> Result<i32, String> {
    crate::configure(config).map_err(|e| e.to_string())?;
    if let Some(cpu) = pin {
        if let Err(e) = crate::sys::pin_this_thread(cpu) {
            crate::print_stderr!("shrapnel: core {core}: not pinned to CPU {cpu}: {e}");
        }
    }
    group
        .schedulers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(shrapnel_core::sched::notifier());
    GROUP.with(|g| *g.borrow_mut() = Some(group.clone()));
    crate::runtime::add_loop_hook("run_per_core", loop_hook);
    crate::Builder::new()
        .name(format!("core {core}"))
        .spawn(first)
        .map_err(|e| format!("its first coroutine was not started: {e}"))?;
    if group.stop.load(Ordering::Acquire) {
        crate::signal::stop_this_scheduler_soon("run_per_core", STOPPED_BY_PEER);
    }
    let code = crate::event_loop();
    GROUP.with(|g| g.borrow_mut().take());
    Ok(code)
}

/// Ask every scheduler of the group to stop cleanly.
fn stop_group(group: &Group) {
    group.stop.store(true, Ordering::Release);
    crate::signal::wake::note_event();
    for n in group
        .schedulers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        n.notify();
    }
}

/// On each loop iteration of a group's scheduler: begin the clean stop once it is asked.
fn loop_hook() {
    let stop = GROUP.with(|g| {
        g.borrow()
            .as_ref()
            .is_some_and(|g| g.stop.load(Ordering::Acquire))
    });
    if stop {
        // Once: the group is forgotten, so later iterations see nothing.
        GROUP.with(|g| g.borrow_mut().take());
        crate::signal::stop_this_scheduler_soon("run_per_core", STOPPED_BY_PEER);
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    let what = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string());
    format!("its event loop panicked: {what}")
}
