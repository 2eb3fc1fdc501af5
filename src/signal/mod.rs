//! Signals for coroutines, and the clean stop on Ctrl-C.
//!
//! - [`wait`]`(sig)` blocks the calling coroutine until `sig` is delivered; [`ctrl_c`] is
//!   `wait(SIGINT)`.
//! - [`register`]`(sig, f)` runs `f` in a new coroutine on each delivery (Shrapnel's
//!   `signal_handler.register`), until [`Registration::cancel`].
//! - By default SIGINT and SIGTERM stop the program cleanly: every coroutine of every
//!   scheduler is shut down (its blocking call returns `Interrupted::Shutdown`, so it
//!   returns and its destructors run — the backdoor removes its socket file; one still
//!   alive is shut down again every 250 ms), and once they
//!   have ended, or after a grace period ([`set_stop_grace`], 5 s by default; the
//!   stragglers are named on stderr), `event_loop` returns `128 + signal` (130 for Ctrl-C,
//!   143 for SIGTERM: the status a shell reports for a process the signal ended). A second
//!   SIGINT or SIGTERM during the stop ends the process at once with the signal's default
//!   action. `RuntimeConfig::stop_on_signals = false` turns this off; a signal the program
//!   waits for or registers is the program's, not the runtime's.
//!
//! ```no_run
//! use shrapnel::signal;
//!
//! shrapnel::spawn(|| {
//!     while signal::wait(libc::SIGHUP).is_ok() {
//!         shrapnel::print_stderr!("SIGHUP: reloading the configuration");
//!     }
//! });
//! // main returns the status, so Ctrl-C exits with 130 after the coroutines have ended.
//! std::process::exit(shrapnel::event_loop());
//! ```
//!
//! # Delivery
//!
//! A delivery is counted from the handler; each scheduler thread that waits for the signal
//! sees the count change at its next loop iteration and wakes its waiters. Deliveries that
//! come while no coroutine of a thread waits are kept (as one, the way POSIX keeps a
//! pending signal): the next [`wait`] returns at once. Several deliveries that arrive before
//! the waiters run are one, as for any signal. Every scheduler thread that waits for a
//! signal is woken by each delivery.
//!
//! # How
//!
//! A `sigaction` handler counts the delivery and writes a byte to a self-pipe
//! (`wake.rs`); a small thread wakes the pollers. signalfd and EVFILT_SIGNAL were set aside:
//! signalfd sees only a signal every thread of the process blocks, and any thread the
//! runtime did not start (the program's own, a library's) would take the default action
//! and end the process. The handler restarts the system calls it interrupts (`SA_RESTART`),
//! so threads outside the runtime are not disturbed. SIGKILL and SIGSTOP cannot be
//! handled, SIGSEGV/SIGBUS (and SIGURG with feature `latency`) belong to the runtime's
//! overflow report and latency sampler, and the debug signal ([`crate::debug_signal`]) is
//! refused while it is the debug signal.

pub(crate) mod wake;

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use libc::c_int;
use shrapnel_core::irq_event::IrqEvent;
use shrapnel_core::{Coro, Interrupted};

use crate::sys::signals;

/// Signal numbers below this have a slot (Linux's real-time signals end at 64).
const SLOTS: usize = 65;

/// A signal the runtime leaves alone.
const UNTOUCHED: u8 = 0;
/// SIGINT or SIGTERM, handled by the runtime's clean stop.
const STOPS: u8 = 1;
/// A signal the program waits for or registered.
const PROGRAM: u8 = 2;

/// What each signal is to the runtime (one of the constants above).
static MODE: [AtomicU8; SLOTS] = [const { AtomicU8::new(UNTOUCHED) }; SLOTS];
/// Deliveries counted by the handler, per signal.
static DELIVERED: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];
/// Bumped by every delivery, so a loop hook with nothing to do reads one atomic.
static GENERATION: AtomicU64 = AtomicU64::new(0);
/// The signal that started the clean stop (0: none yet).
static STOPPING: AtomicI32 = AtomicI32::new(0);
/// The clean stop's grace period, in milliseconds.
static GRACE_MS: AtomicU64 = AtomicU64::new(5_000);
/// Serialises changes of `MODE` and the handler installations.
static CONFIG: Mutex<()> = Mutex::new(());

/// The handler restarts the system calls it interrupts.
const RESTART: signals::Flags = signals::Flags {
    on_altstack: false,
    restart: true,
};

thread_local! {
    /// The generation this thread's loop hook last looked at.
    static SEEN_GENERATION: Cell<u64> = const { Cell::new(0) };
    /// Per signal this thread's coroutines wait for: the event they wait on and the
    /// delivery count already passed on to it. The events live as long as the process (an
    /// `IrqEvent` is `'static`): one per thread and signal.
    static WATCHED: RefCell<Vec<Watch>> = const { RefCell::new(Vec::new()) };
    /// Whether this thread takes part in the clean stop, and whether it has begun here.
    static STOP: Cell<ThreadStop> = const { Cell::new(ThreadStop::Off) };
}

struct Watch {
    signal: c_int,
    event: &'static IrqEvent,
    seen: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ThreadStop {
    Off,
    Armed,
    Begun,
}

/// Why a signal cannot be waited for or registered.
#[derive(Debug)]
#[non_exhaustive]
pub enum SignalError {
    /// The signal is the OS's or the runtime's: which, and why.
    Reserved {
        /// The signal asked for.
        signal: c_int,
        /// Who has it.
        why: &'static str,
    },
    /// The OS refused to install the handler.
    Os {
        /// The signal asked for.
        signal: c_int,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The waiting coroutine was interrupted (timeout, shutdown, interrupt).
    Interrupted(Interrupted),
}

impl std::fmt::Display for SignalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignalError::Reserved { signal, why } => write!(
                f,
                "shrapnel: cannot take signal {signal} ({}): {why}",
                signals::name(*signal)
            ),
            SignalError::Os { signal, source } => write!(
                f,
                "shrapnel: cannot handle signal {signal} ({}): {source}",
                signals::name(*signal)
            ),
            SignalError::Interrupted(i) => write!(f, "shrapnel: waiting for a signal: {i}"),
        }
    }
}

impl std::error::Error for SignalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SignalError::Os { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<Interrupted> for SignalError {
    fn from(i: Interrupted) -> Self {
        SignalError::Interrupted(i)
    }
}

impl From<SignalError> for std::io::Error {
    fn from(e: SignalError) -> Self {
        match e {
            SignalError::Interrupted(i) => i.into(),
            SignalError::Os { source, .. } => source,
            e @ SignalError::Reserved { .. } => {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string())
            }
        }
    }
}

/// Block the calling coroutine until `sig` is delivered (at once if it was delivered since
/// this thread's last wait for it; see the module doc). From the first call on, `sig` is
/// the program's: for SIGINT and SIGTERM that replaces the runtime's clean stop.
///
/// Errors: the signal is reserved (SIGKILL, SIGSTOP, the runtime's own; the message says
/// which), the OS refused, or the coroutine was interrupted.
#[track_caller]
pub fn wait(sig: c_int) -> Result<(), SignalError> {
    let event = watch(sig)?;
    event.wait().map_err(SignalError::Interrupted)
}

/// Block the calling coroutine until Ctrl-C (SIGINT). The program then handles SIGINT
/// itself: the runtime's clean stop no longer reacts to it (SIGTERM still stops).
#[track_caller]
pub fn ctrl_c() -> Result<(), SignalError> {
    wait(libc::SIGINT)
}

/// A handler [`register`] started: a coroutine named after the signal that waits for each
/// delivery and starts the handler in a new coroutine.
#[must_use = "a registration keeps handling the signal; keep it to cancel it later"]
pub struct Registration {
    signal: c_int,
    dispatcher: Coro<()>,
}

impl Registration {
    /// The signal it handles.
    pub fn signal(&self) -> c_int {
        self.signal
    }

    /// Stop handling: deliveries from now on start no handler (running handlers finish).
    /// The signal stays the program's (it does not go back to its default action).
    pub fn cancel(self) {
        self.dispatcher.shutdown();
    }
}

/// Run `f` in a new coroutine (named after the signal, e.g. `SIGHUP handler`) on each
/// delivery of `sig` on this thread's scheduler, until the registration is cancelled or
/// its dispatching coroutine is shut down (the clean stop does that). Deliveries that come
/// while no handler has started yet are one (see the module doc).
///
/// While registered, a coroutine waits for the signal, so `event_loop` does not return for
/// lack of work.
pub fn register<F>(sig: c_int, f: F) -> Result<Registration, SignalError>
where
    F: Fn() + 'static,
{
    let event = watch(sig)?;
    let f = std::rc::Rc::new(f);
    let name = signals::name(sig);
    let dispatcher = crate::Builder::new()
        .name(format!("{name} dispatcher"))
        .spawn(move || {
            while event.wait().is_ok() {
                let f = f.clone();
                let started = crate::Builder::new()
                    .name(format!("{name} handler"))
                    .spawn(move || f());
                if let Err(e) = started {
                    crate::print_stderr!("shrapnel: {name}: the handler was not started: {e}");
                }
            }
        })
        .map_err(|e| SignalError::Os {
            signal: sig,
            source: std::io::Error::other(e.to_string()),
        })?;
    Ok(Registration {
        signal: sig,
        dispatcher,
    })
}

/// How long the clean stop waits for coroutines to end before `event_loop` returns anyway
/// (process-wide). Returns the previous value.
pub fn set_stop_grace(grace: Duration) -> Duration {
    let ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(GRACE_MS.swap(ms, Ordering::AcqRel))
}

/// The reason `sig` cannot be the program's, if any.
fn reserved(sig: c_int) -> Option<&'static str> {
    if sig <= 0 || sig as usize >= SLOTS {
        return Some("not a signal number this runtime handles");
    }
    if signals::UNCATCHABLE.contains(&sig) {
        return Some("the OS never lets a program handle it");
    }
    if crate::sys::FAULT_SIGNALS.contains(&sig) {
        return Some("the runtime catches it to report coroutine stack overflows");
    }
    #[cfg(feature = "latency")]
    if sig == libc::SIGURG {
        return Some("the latency watchdog samples stalled coroutines with it");
    }
    if crate::debug_signal::get() == Some(sig) {
        return Some(
            "it is the debug signal (where_all dump); move that first with debug_signal::set",
        );
    }
    None
}

/// Whether the program has taken `sig` with [`wait`] or [`register`] (the debug signal
/// refuses it then).
pub(crate) fn is_programs(sig: c_int) -> bool {
    sig > 0 && (sig as usize) < SLOTS && MODE[sig as usize].load(Ordering::Acquire) == PROGRAM
}

/// Make `sig` the program's (installing the handler if the runtime did not already) and
/// return this thread's event for it.
fn watch(sig: c_int) -> Result<&'static IrqEvent, SignalError> {
    if let Some(why) = reserved(sig) {
        return Err(SignalError::Reserved { signal: sig, why });
    }
    crate::ensure();
    let slot = sig as usize;
    {
        let _config = CONFIG.lock().unwrap_or_else(|e| e.into_inner());
        match MODE[slot].load(Ordering::Acquire) {
            PROGRAM => {}
            STOPS => MODE[slot].store(PROGRAM, Ordering::Release),
            _ => {
                let os = |source| SignalError::Os {
                    signal: sig,
                    source,
                };
                wake::prepare().map_err(os)?;
                MODE[slot].store(PROGRAM, Ordering::Release);
                if let Err(e) = signals::install(sig, signals::Handler::Plain(on_signal), RESTART) {
                    MODE[slot].store(UNTOUCHED, Ordering::Release);
                    return Err(os(e));
                }
            }
        }
    }
    hook_this_thread();
    Ok(WATCHED.with(|w| {
        let mut list = w.borrow_mut();
        if let Some(found) = list.iter().find(|x| x.signal == sig) {
            return found.event;
        }
        let event: &'static IrqEvent = Box::leak(Box::new(IrqEvent::new()));
        list.push(Watch {
            signal: sig,
            event,
            seen: DELIVERED[slot].load(Ordering::Acquire),
        });
        event
    }))
}

/// Per scheduler thread, when the runtime configures it: with `stop_on_signals`, take
/// SIGINT and SIGTERM for the clean stop (once per process, each only if the program left
/// it at its default action: a shell that started it ignoring SIGINT is obeyed) and let
/// this thread take part.
pub(crate) fn on_scheduler_start(stop_on_signals: bool) {
    wake::register_this_thread();
    // A new scheduler on this thread (after `reset`) has no hook yet; its coroutines that
    // wait for a signal, and the clean stop, need it.
    if WATCHED.with(|w| !w.borrow().is_empty()) {
        hook_this_thread();
    }
    if !stop_on_signals {
        return;
    }
    {
        let _config = CONFIG.lock().unwrap_or_else(|e| e.into_inner());
        for sig in [libc::SIGINT, libc::SIGTERM] {
            let slot = sig as usize;
            if MODE[slot].load(Ordering::Acquire) != UNTOUCHED
                || !signals::is_default(sig)
                || wake::prepare().is_err()
            {
                continue;
            }
            MODE[slot].store(STOPS, Ordering::Release);
            if signals::install(sig, signals::Handler::Plain(on_signal), RESTART).is_err() {
                MODE[slot].store(UNTOUCHED, Ordering::Release);
            }
        }
    }
    STOP.with(|s| s.set(ThreadStop::Armed));
    hook_this_thread();
    // A stop signal that came before this scheduler was armed (a `run_per_core` thread
    // still starting when Ctrl-C came) woke nobody here and moved GENERATION before the
    // hook read it: begin the stop now, its coroutine runs in the loop's first pass. One
    // that comes later is the hook's: this thread is registered for the wake-up, and the
    // handler sets STOPPING before it bumps GENERATION, so a hook that read the new
    // GENERATION above reads STOPPING here.
    let sig = STOPPING.load(Ordering::Acquire);
    if sig != 0 {
        stop_this_scheduler_soon(signals::name(sig), 128 + sig);
    }
}

/// Add this module's loop hook to this thread's scheduler (once per scheduler).
fn hook_this_thread() {
    if crate::runtime::add_loop_hook("signals", loop_hook) {
        SEEN_GENERATION.with(|s| s.set(GENERATION.load(Ordering::Acquire)));
    }
}

/// The handler of every signal this module takes. Async-signal-safe: atomics, write(2),
/// sigaction and raise.
extern "C" fn on_signal(sig: c_int) {
    let saved_errno = signals::errno();
    let slot = sig as usize;
    if slot < SLOTS {
        DELIVERED[slot].fetch_add(1, Ordering::AcqRel);
        if MODE[slot].load(Ordering::Acquire) == STOPS {
            let name = signals::name(sig);
            let mut line: heapless::String<160> = heapless::String::new();
            if STOPPING
                .compare_exchange(0, sig, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                let _ = writeln!(
                    line,
                    "shrapnel: {name}: shutting down every coroutine (send it again to stop at once)"
                );
                signals::write_all(wake::stderr_fd(), line.as_bytes());
            } else {
                let _ = writeln!(line, "shrapnel: {name} again: stopping at once");
                signals::write_all(wake::stderr_fd(), line.as_bytes());
                signals::raise_default(sig);
            }
        }
    }
    GENERATION.fetch_add(1, Ordering::AcqRel);
    wake::poke();
    signals::set_errno(saved_errno);
}

/// Runs once per event-loop iteration: one atomic load unless a signal came.
fn loop_hook() {
    let now = GENERATION.load(Ordering::Acquire);
    if SEEN_GENERATION.with(|s| s.replace(now)) != now {
        pass_on_deliveries();
    }
}

fn pass_on_deliveries() {
    WATCHED.with(|w| {
        for watch in w.borrow_mut().iter_mut() {
            let count = DELIVERED[watch.signal as usize].load(Ordering::Acquire);
            if count != watch.seen {
                watch.seen = count;
                watch.event.signal();
            }
        }
    });
    let sig = STOPPING.load(Ordering::Acquire);
    if sig != 0 && STOP.with(|s| s.get()) == ThreadStop::Armed {
        stop_this_scheduler_soon(signals::name(sig), 128 + sig);
    }
}

/// Begin the clean stop on this thread's scheduler (from its loop hook or a coroutine):
/// a coroutine named `"{why} stop"` shuts the others down and ends the loop with `code`.
pub(crate) fn stop_this_scheduler_soon(why: &'static str, code: i32) {
    STOP.with(|s| s.set(ThreadStop::Begun));
    let started = crate::Builder::new()
        .name(format!("{why} stop"))
        .spawn(move || stop_this_scheduler(why, code));
    if let Err(e) = started {
        crate::print_stderr!(
            "shrapnel: {why}: cannot start the clean stop ({e}); the loop ends now"
        );
        shrapnel_core::sched::set_exit(code);
    }
}

/// The clean stop on one scheduler: shut every other coroutine down (again every 250 ms
/// while it lives), wait until they have ended or the grace period is over (naming the
/// stragglers), then end the loop with `code`.
fn stop_this_scheduler(why: &'static str, code: i32) {
    let me = crate::current().map(|c| c.id());
    let grace = Duration::from_millis(GRACE_MS.load(Ordering::Acquire));
    let deadline = Instant::now() + grace;
    let mut round = 0u32;
    loop {
        let others: Vec<_> = crate::live_coros()
            .into_iter()
            .filter(|c| Some(c.id()) != me)
            .collect();
        if others.is_empty() {
            break;
        }
        // Again every quarter second: a loop that retries its accept after an error would
        // otherwise only end with the grace period.
        if round.is_multiple_of(25) {
            for c in &others {
                c.shutdown();
            }
        }
        round = round.wrapping_add(1);
        if Instant::now() >= deadline {
            let mut names = String::new();
            for c in &others {
                let _ = write!(names, " {c:?};");
            }
            crate::print_stderr!(
                "shrapnel: {}: {} coroutines still running after {:?}, ending the loop anyway:{}",
                why,
                others.len(),
                grace,
                names
            );
            break;
        }
        // Interrupted (someone shut this one down too): keep going, the deadline holds.
        let _ = crate::sleep(Duration::from_millis(10));
    }
    shrapnel_core::sched::set_exit(code);
}
