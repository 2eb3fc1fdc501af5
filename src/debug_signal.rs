//! The debug signal: `kill -USR1 <pid>` (Linux) or Ctrl-T / `kill -INFO <pid>` (the BSDs and
//! macOS) makes a running program print what its coroutines are doing, without stopping it.
//!
//! On the signal, the thread that takes it writes one line at once — the coroutine running
//! on it, if any, so a coroutine hogging the CPU is named even though the event loop cannot
//! run — and every scheduler thread then prints its `where_all` to the saved stderr at its
//! next event-loop iteration:
//!
//! ```text
//! shrapnel: signal 10: coro #4 'crunch' is running; where_all follows from each event loop
//! 0:\tSat Apr 14 20:55:39 2012 where_all: 3 coroutines on thread 'main'
//! #1 'sleeper' blocked: sleeping (4.873s left) for 0.126s at src/main.rs:12
//!     [sched.rs sched::sleep_until|713] [sched.rs sched::sleep|705] [main.rs main::nap|12]
//! …
//! ```
//!
//! The runtime installs the default signal (see [`DEFAULT`]) when it starts its first
//! scheduler, unless the program already handles that signal or has called [`set`].
//!
//! # Why it is safe at any moment
//!
//! The handler touches no lock and allocates nothing: it formats its line into a stack
//! buffer, writes it with write(2), bumps an atomic generation counter and writes one byte
//! to the self-pipe of [`crate::signal`]'s wake-up, restoring `errno`. A small thread, started
//! once, sleeps on that pipe and wakes every scheduler's poller; each event loop's hook sees
//! the generation change and prints, in the scheduler's own context, where allocation and
//! symbolizing are fine.

use std::cell::Cell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Mutex;

use libc::c_int;

use crate::signal::wake;
use crate::stderr::write_stderr;
use crate::sys::signals;

/// The signal used unless the program picks another: SIGUSR1 on Linux, SIGINFO (Ctrl-T) on
/// the BSDs and macOS.
pub const DEFAULT: c_int = signals::DEFAULT_DEBUG_SIGNAL;

/// The dump handler restarts the system calls it interrupts.
const RESTART: signals::Flags = signals::Flags {
    on_altstack: false,
    restart: true,
};

/// The signal handled now (0: none).
static SIGNAL: AtomicI32 = AtomicI32::new(0);
/// Bumped by each delivery; each scheduler thread compares it with the value it last saw.
static GENERATION: AtomicU64 = AtomicU64::new(0);
/// Serialises `set` and the default installation.
static CONFIG: Mutex<bool> = Mutex::new(false);

thread_local! {
    /// The generation this thread's scheduler last printed for.
    static SEEN: Cell<u64> = const { Cell::new(0) };
}

/// Why the debug signal could not be set.
#[derive(Debug)]
pub struct DebugSignalError {
    /// The signal asked for.
    pub signal: c_int,
    /// What the OS said.
    pub source: std::io::Error,
}

impl std::fmt::Display for DebugSignalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "shrapnel: cannot use signal {} as the debug signal: {} (pick another, e.g. SIGUSR2, or pass None to turn it off)",
            self.signal, self.source
        )
    }
}

impl std::error::Error for DebugSignalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Handle `sig` as the debug signal, for the whole process (the previous one goes back to
/// its default action), or with `None` stop handling it. Returns the previous debug signal.
/// The runtime's default is [`DEFAULT`]; after a call to `set` it installs no default of its
/// own. SIGSEGV and SIGBUS are refused (the stack-overflow report needs them), and so is
/// whatever the OS refuses (SIGKILL, SIGSTOP).
pub fn set(sig: Option<c_int>) -> Result<Option<c_int>, DebugSignalError> {
    let mut chosen = CONFIG.lock().unwrap_or_else(|e| e.into_inner());
    *chosen = true;
    let old = SIGNAL.load(Ordering::Acquire);
    if sig == Some(old) {
        return Ok(Some(old));
    }
    if let Some(new) = sig {
        if crate::sys::FAULT_SIGNALS.contains(&new) {
            return Err(DebugSignalError {
                signal: new,
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "the runtime catches it to report coroutine stack overflows",
                ),
            });
        }
        if crate::signal::is_programs(new) {
            return Err(DebugSignalError {
                signal: new,
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "the program waits for it with shrapnel::signal",
                ),
            });
        }
        wake::prepare().map_err(|source| DebugSignalError {
            signal: new,
            source,
        })?;
        signals::install(new, signals::Handler::Plain(on_signal), RESTART)
            .map(drop)
            .map_err(|source| DebugSignalError {
                signal: new,
                source,
            })?;
    }
    SIGNAL.store(sig.unwrap_or(0), Ordering::Release);
    if old != 0 {
        // Putting back a default action is never refused for a signal we could handle.
        let _ = signals::install(old, signals::Handler::Default, RESTART);
    }
    Ok((old != 0).then_some(old))
}

/// The debug signal handled now, if any.
pub fn get() -> Option<c_int> {
    let s = SIGNAL.load(Ordering::Acquire);
    (s != 0).then_some(s)
}

/// The runtime's default: [`DEFAULT`], unless the program chose with [`set`] or already
/// handles (or ignores) that signal.
fn install_default() {
    let mut chosen = CONFIG.lock().unwrap_or_else(|e| e.into_inner());
    if *chosen {
        return;
    }
    *chosen = true;
    if !signals::is_default(DEFAULT) || wake::prepare().is_err() {
        return;
    }
    if signals::install(DEFAULT, signals::Handler::Plain(on_signal), RESTART).is_ok() {
        SIGNAL.store(DEFAULT, Ordering::Release);
    }
}

/// The signal handler. Async-signal-safe: no lock, no allocation.
extern "C" fn on_signal(sig: c_int) {
    let saved_errno = signals::errno();
    let mut line: heapless::String<192> = heapless::String::new();
    let _ = match shrapnel_core::running_for_signal() {
        Some(r) => writeln!(
            line,
            "shrapnel: signal {sig}: coro #{} '{}' is running; where_all follows from each event loop",
            r.id, r.name
        ),
        None => writeln!(
            line,
            "shrapnel: signal {sig}: no coroutine running on the thread that took it; where_all follows from each event loop"
        ),
    };
    signals::write_all(wake::stderr_fd(), line.as_bytes());
    GENERATION.fetch_add(1, Ordering::AcqRel);
    wake::poke();
    signals::set_errno(saved_errno);
}

/// Per scheduler thread, when the runtime configures it (after registering the thread with
/// the signal wake-up): install the default signal (once per process) and hook its event
/// loop.
pub(crate) fn register_this_thread() {
    install_default();
    SEEN.with(|s| s.set(GENERATION.load(Ordering::Acquire)));
    crate::runtime::add_loop_hook("debug signal", loop_hook);
}

/// Runs once per event-loop iteration: print `where_all` if a signal came since last time.
fn loop_hook() {
    let now = GENERATION.load(Ordering::Acquire);
    if SEEN.with(|s| s.replace(now)) != now {
        dump();
    }
}

/// Print this thread's `where_all` to the saved stderr.
fn dump() {
    let all = crate::where_all();
    let thread = std::thread::current();
    crate::print_stderr!(
        "where_all: {} coroutines on thread '{}'",
        all.len(),
        thread.name().unwrap_or("unnamed")
    );
    write_stderr(&all.to_string());
}
