//! The per-thread runtime: installs a scheduler with the OS poller, mmap stacks, the
//! monotonic clock and the saved-stderr sink the first time a thread needs one.

use std::cell::Cell;
use std::time::Duration;

use shrapnel_core::clock::Clock;
use shrapnel_core::sched::{self, Config};

use crate::stack::{StackPool, DEFAULT_STACK_SIZE};
use crate::stderr::SavedStderr;
use crate::sys::backend::OsPoller;

/// `CLOCK_MONOTONIC` in nanoseconds; its coarse reading is the same clock as of the
/// kernel's last tick (`CLOCK_MONOTONIC_COARSE` on Linux, `CLOCK_MONOTONIC_FAST` on FreeBSD).
pub struct MonotonicClock;

impl Clock for MonotonicClock {
    fn now(&self) -> u64 {
        crate::sys::clock::monotonic_ns()
    }
    fn now_coarse(&self) -> u64 {
        crate::sys::clock::coarse_monotonic_ns()
    }
    fn coarse_lag(&self) -> u64 {
        crate::sys::clock::coarse_lag_ns()
    }
    fn ticks_per_second(&self) -> u64 {
        1_000_000_000
    }
    /// Local time, as the core's timestamps want it (see `Clock::wall_clock`).
    fn wall_clock(&self) -> Option<u64> {
        let utc = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs();
        u64::try_from(crate::stderr::local_secs(utc as i64)).ok()
    }
}

/// Options for this thread's scheduler; set before first use with [`configure`].
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Stack size for coroutines that do not ask for one (default 256 KiB).
    pub default_stack_size: usize,
    /// Free stacks kept for reuse per thread (default 64).
    pub stack_pool_cap: usize,
    /// SIGINT and SIGTERM stop this scheduler cleanly: its coroutines are shut down and
    /// `event_loop` returns `128 + signal` (default true; see [`crate::signal`]). The
    /// runtime takes the two signals when the first scheduler that wants this starts, and
    /// only if the program left them at their default action.
    pub stop_on_signals: bool,
    /// On a fatal signal that is not a stack overflow (SIGSEGV, SIGBUS, SIGILL, SIGFPE,
    /// SIGABRT — `panic = "abort"`, a failed allocation), print every coroutine of the
    /// crashing thread's scheduler (id, name, state, wait, stack addresses for
    /// `addr2line`) to the saved stderr before the signal's default action (default true).
    /// The runtime installs the handlers when the first scheduler that wants this starts,
    /// keeping and still calling a handler the program installed before; with false, this
    /// thread prints no dump.
    pub crash_dump: bool,
    /// When the event loop runs dry, keep polling for I/O and messages without blocking
    /// (yielding the CPU before each poll) for up to this long before it blocks (default
    /// `None`: block at once). Fewer sleeps and wake-ups for a scheduler that runs dry for
    /// moments under load, such as each of `run_per_core`'s; up to this much CPU per
    /// wake-up spent on nothing when it stays idle. Tens of microseconds is the useful
    /// range. See [`shrapnel_core::idle_spin`].
    pub idle_spin: Option<std::time::Duration>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            default_stack_size: DEFAULT_STACK_SIZE,
            stack_pool_cap: crate::stack::DEFAULT_POOL_CAP,
            stop_on_signals: true,
            crash_dump: true,
            idle_spin: None,
        }
    }
}

/// Why the runtime could not start on this thread.
#[derive(Debug)]
#[non_exhaustive]
pub enum RuntimeError {
    /// This thread's scheduler already exists (something spawned or ran the loop first).
    AlreadyConfigured,
    /// The OS poller (epoll, kqueue) could not be created.
    Poller(shrapnel_core::poller::OsError),
}

impl std::fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuntimeError::AlreadyConfigured => f.write_str(
                "shrapnel: this thread's scheduler already exists; call configure() before \
                 any spawn or event_loop",
            ),
            RuntimeError::Poller(e) => write!(
                f,
                "shrapnel: cannot create the poller: {e} ({}; check the process's fd \
                 limit, `ulimit -n`)",
                std::io::Error::from_raw_os_error(e.errno)
            ),
        }
    }
}

impl std::error::Error for RuntimeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RuntimeError::AlreadyConfigured => None,
            RuntimeError::Poller(e) => Some(e),
        }
    }
}

/// Install this thread's scheduler with `config`. Fails if one is already installed.
pub fn configure(config: RuntimeConfig) -> Result<(), RuntimeError> {
    if sched::is_installed() {
        return Err(RuntimeError::AlreadyConfigured);
    }
    let poller = OsPoller::new().map_err(RuntimeError::Poller)?;
    sched::install(Config {
        poller: Box::new(poller),
        clock: Box::new(MonotonicClock),
        stacks: Box::new(StackPool::with_cap(config.stack_pool_cap)),
        sink: Box::new(SavedStderr::get()),
        default_stack_size: config.default_stack_size,
    })
    .map_err(|_| RuntimeError::AlreadyConfigured)?;
    LOOP_HOOKS.with(|l| l.set([None; MAX_LOOP_HOOKS]));
    sched::set_loop_hook(Some(run_loop_hooks));
    shrapnel_core::shared_stack::set_heap_trim(Some(crate::sys::trim_heap));
    shrapnel_core::idle_spin::set_idle_spin(config.idle_spin);
    crate::signal::on_scheduler_start(config.stop_on_signals);
    crate::schedulers::on_scheduler_start();
    crate::debug::on_scheduler_start();
    crate::crash_dump::on_scheduler_start(config.crash_dump);
    shrapnel_core::panic::set_default_printer(Some(crate::stderr::print_panic_report));
    crate::sys::altstack::ensure_altstack().ok();
    #[cfg(feature = "latency")]
    crate::latency::start();
    #[cfg(feature = "tracing")]
    crate::coro_spans::install();
    Ok(())
}

/// How many loop hooks a scheduler can have (the runtime uses four).
const MAX_LOOP_HOOKS: usize = 6;

/// A loop hook and the name it was added under.
type NamedHook = Option<(&'static str, fn())>;

thread_local! {
    /// What this thread's scheduler runs once per loop iteration, by name (the debug
    /// signal, signals, run_per_core), in the order added; emptied when a scheduler is
    /// configured, so each module adds its hook to the scheduler it serves. A `Cell` of a
    /// small array: one read per iteration, no borrow flag, no allocation.
    static LOOP_HOOKS: Cell<[NamedHook; MAX_LOOP_HOOKS]> =
        const { Cell::new([None; MAX_LOOP_HOOKS]) };
    /// `signal::wake::events()` when the hooks last ran.
    static HOOKS_SAW: Cell<u64> = const { Cell::new(0) };
}

/// Run `hook` in this thread's event loop, in the scheduler's own context (see
/// `sched::set_loop_hook`), at each iteration after `signal::wake::note_event` (or `poke`)
/// was called: announce the hook's work that way. Returns false if a hook of that name is
/// there already (nothing changes).
pub(crate) fn add_loop_hook(name: &'static str, hook: fn()) -> bool {
    let mut hooks = LOOP_HOOKS.with(Cell::get);
    if hooks.iter().flatten().any(|(n, _)| *n == name) {
        return false;
    }
    match hooks.iter_mut().find(|h| h.is_none()) {
        Some(free) => *free = Some((name, hook)),
        // Only the runtime's own modules add hooks, a fixed few.
        None => panic!("shrapnel: more than {MAX_LOOP_HOOKS} loop hooks ({name})"),
    }
    LOOP_HOOKS.with(|l| l.set(hooks));
    true
}

/// The core's one loop hook: each added hook in turn, when something they act on happened
/// since they last ran (every hook's work is announced with `signal::wake::note_event`), so
/// an iteration with nothing to do costs one atomic load.
fn run_loop_hooks() {
    let now = crate::signal::wake::events();
    if HOOKS_SAW.with(|s| s.replace(now)) == now {
        return;
    }
    for (_, hook) in LOOP_HOOKS.with(Cell::get).into_iter().flatten() {
        hook();
    }
}

/// Make sure this thread has a scheduler (with the defaults if none was configured).
#[track_caller]
pub fn ensure() {
    if !sched::is_installed() {
        if let Err(e) = configure(RuntimeConfig::default()) {
            panic!("{e}");
        }
    }
}

/// Drop this thread's scheduler: suspended coroutines are unwound so their destructors
/// run. A later spawn starts a fresh one.
pub fn reset() {
    crate::schedulers::on_scheduler_end();
    sched::uninstall();
}

/// Run this thread's event loop until `set_exit` or until nothing can run again.
pub fn event_loop() -> i32 {
    ensure();
    // Listed for the backdoor's view of every scheduler while the loop runs.
    let _listed = crate::schedulers::in_loop();
    sched::event_loop()
}

/// Sleep for a number of seconds (Shrapnel's `sleep_relative`).
pub fn sleep_relative(secs: f64) -> Result<(), shrapnel_core::Interrupted> {
    sched::sleep(Duration::from_secs_f64(secs.max(0.0)))
}
