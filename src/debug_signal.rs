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
//! to a self-pipe, restoring `errno`. A small thread, started once, sleeps on that pipe and
//! wakes every scheduler's poller through the notify handle each registered when it was
//! configured; each event loop's hook sees the generation change and prints, in the
//! scheduler's own context, where allocation and symbolizing are fine.

use std::cell::Cell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Mutex, Once, Weak};

use libc::c_int;
use shrapnel_core::poller::Notify;

use crate::stderr::{write_stderr, SavedStderr};
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
/// The self-pipe's write end (-1 before it exists).
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);
/// The saved stderr fd, read once outside the handler so the handler never initialises it.
static STDERR_FD: AtomicI32 = AtomicI32::new(2);
/// Serialises `set` and the default installation.
static CONFIG: Mutex<bool> = Mutex::new(false);
/// The notify handles of every scheduler thread configured so far (dead ones are pruned).
static SCHEDULERS: Mutex<Vec<Weak<dyn Notify>>> = Mutex::new(Vec::new());

thread_local! {
    /// The generation this thread's scheduler last printed for.
    static SEEN: Cell<u64> = const { Cell::new(0) };
    /// The loop hook that was installed before ours, called after ours.
    static PREVIOUS_HOOK: Cell<Option<fn()>> = const { Cell::new(None) };
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
        prepare().map_err(|source| DebugSignalError {
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
    if !signals::is_default(DEFAULT) || prepare().is_err() {
        return;
    }
    if signals::install(DEFAULT, signals::Handler::Plain(on_signal), RESTART).is_ok() {
        SIGNAL.store(DEFAULT, Ordering::Release);
    }
}

/// Create the self-pipe and start the thread that turns its bytes into scheduler wake-ups
/// (once; later calls return the first outcome).
fn prepare() -> std::io::Result<()> {
    static ONCE: Once = Once::new();
    static FAILED: AtomicI32 = AtomicI32::new(0);
    ONCE.call_once(|| {
        STDERR_FD.store(SavedStderr::get().fd(), Ordering::Release);
        if let Err(e) = start_waker() {
            FAILED.store(e.raw_os_error().unwrap_or(libc::EIO), Ordering::Release);
        }
    });
    match FAILED.load(Ordering::Acquire) {
        0 => Ok(()),
        errno => Err(std::io::Error::from_raw_os_error(errno)),
    }
}

fn start_waker() -> std::io::Result<()> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: pipe writes two fds into a valid two-element array.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let [read_end, write_end] = fds;
    for fd in fds {
        // SAFETY: fcntl on fds we just created.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    // The handler must never block: a full pipe just drops its byte (a wake-up is pending).
    // SAFETY: fcntl on the write end we own.
    unsafe {
        let flags = libc::fcntl(write_end, libc::F_GETFL);
        libc::fcntl(write_end, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
    let spawned = std::thread::Builder::new()
        .name("shrapnel-debug-signal".into())
        .spawn(move || waker(read_end));
    if let Err(e) = spawned {
        // SAFETY: closing the fds we created and nobody else knows about.
        unsafe {
            libc::close(read_end);
            libc::close(write_end);
        }
        return Err(e);
    }
    PIPE_WRITE.store(write_end, Ordering::Release);
    Ok(())
}

/// The waker thread: each byte on the pipe wakes every live scheduler.
fn waker(read_end: c_int) {
    let mut buf = [0u8; 64];
    loop {
        // SAFETY: reads into a live buffer of the given length.
        let n = unsafe { libc::read(read_end, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        if n <= 0 {
            return;
        }
        let mut list = SCHEDULERS.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|w| match w.upgrade() {
            Some(n) => {
                n.notify();
                true
            }
            None => false,
        });
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
    signals::write_all(STDERR_FD.load(Ordering::Relaxed), line.as_bytes());
    GENERATION.fetch_add(1, Ordering::AcqRel);
    let fd = PIPE_WRITE.load(Ordering::Acquire);
    if fd >= 0 {
        // SAFETY: a one-byte write from a live buffer; the fd is never closed once published.
        unsafe { libc::write(fd, b"!".as_ptr().cast(), 1) };
    }
    signals::set_errno(saved_errno);
}

/// Per scheduler thread, when the runtime configures it: install the default signal (once
/// per process), register this scheduler to be woken, and hook its event loop.
pub(crate) fn register_this_thread() {
    install_default();
    {
        let mut list = SCHEDULERS.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|w| w.strong_count() > 0);
        list.push(std::sync::Arc::downgrade(&shrapnel_core::sched::notifier()));
    }
    SEEN.with(|s| s.set(GENERATION.load(Ordering::Acquire)));
    let previous = shrapnel_core::sched::set_loop_hook(Some(loop_hook));
    PREVIOUS_HOOK.with(|p| p.set(previous));
}

/// Runs once per event-loop iteration: print `where_all` if a signal came since last time.
fn loop_hook() {
    let now = GENERATION.load(Ordering::Acquire);
    if SEEN.with(|s| s.replace(now)) != now {
        dump();
    }
    if let Some(previous) = PREVIOUS_HOOK.with(|p| p.get()) {
        previous();
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
