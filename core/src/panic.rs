//! Panics in coroutines (feature `std`): caught at the coroutine's root, reported to the
//! exception notifier, and handed to `join` as [`JoinError::Panicked`]; the scheduler and
//! every other coroutine keep running.
//!
//! The default report is rate-limited, as the latency warnings are: in each 10 s window
//! the first [`REPORTS_PER_WINDOW`] panics are printed whole, the rest only counted, and
//! the next report after the window begins with `… and 9980 more panics in the last 10 s`.
//! A suppressed panic costs no traceback. A custom notifier sees every panic.

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use core::any::Any;
use core::cell::RefCell;

use crate::coro::JoinError;
use crate::sched::{sched, try_sched};

/// The scheduler's part: the exception notifier (`None`: the default).
#[derive(Default)]
pub(crate) struct PanicState {
    notifier: RefCell<Option<Rc<Box<Notifier>>>>,
}

/// The payload used to unwind a suspended coroutine whose scheduler is being dropped.
pub(crate) struct ForcedUnwind;

/// What the exception notifier is told about a panicked coroutine.
#[derive(Clone, Debug)]
pub struct PanicReport {
    /// The coroutine's id.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// The panic message.
    pub message: String,
    /// Where it panicked, compact: `[file fn|line] [file fn|line] …`, innermost first
    /// (empty when no traceback source is installed, e.g. without the `shrapnel` runtime).
    pub traceback: String,
}

impl PanicReport {
    /// Shrapnel's `traceback_string`: the message followed by the compact stack.
    pub fn traceback_string(&self) -> String {
        if self.traceback.is_empty() {
            self.message.clone()
        } else {
            alloc::format!("{} {}", self.message, self.traceback)
        }
    }
}

/// Hands over the compact traceback of the panic being reported, if one was captured.
pub type TracebackSource = fn() -> Option<String>;

std::thread_local! {
    static TRACEBACK_SOURCE: core::cell::Cell<Option<TracebackSource>> =
        const { core::cell::Cell::new(None) };
}

/// Install the function that hands over the compact traceback captured when the current
/// coroutine panicked (the `shrapnel` runtime installs one backed by its panic hook).
pub fn set_traceback_source(f: Option<TracebackSource>) {
    TRACEBACK_SOURCE.with(|c| c.set(f));
}

/// An exception notifier: called with each coroutine panic that reaches the coroutine's root.
pub type Notifier = dyn Fn(&PanicReport);

/// Replace the exception notifier; `None` restores the default. Returns the previous custom
/// notifier (`None` if the default was in place). A notifier that itself panics is replaced
/// by the default for that report, as Shrapnel does.
pub fn set_exception_notifier(f: Option<Box<Notifier>>) -> Option<Box<Notifier>> {
    let s = sched();
    let old = s.panic_part().notifier.replace(f.map(Rc::new));
    old.map(|rc| match Rc::try_unwrap(rc) {
        Ok(b) => b,
        // It is running right now (a notifier replacing itself): hand back a forwarder.
        Err(rc) => Box::new(move |r: &PanicReport| (**rc)(r)) as Box<Notifier>,
    })
}

/// The default report: `thread {id} ({name}): error {traceback_string}`, printed the way
/// `print_stderr` prints (through the printer the runtime installs with
/// [`set_default_printer`]; without one, straight to the debug sink).
pub fn default_notifier(r: &PanicReport) {
    print_line(&alloc::format!(
        "thread {} ({}): error {}",
        r.id,
        r.name,
        r.traceback_string()
    ));
}

/// One line through the installed printer, else to the debug sink.
fn print_line(line: &str) {
    match PRINTER.with(|c| c.get()) {
        Some(print) => print(line),
        None => {
            if let Some(s) = try_sched() {
                s.sink().write(line.as_bytes());
                s.sink().write(b"\n");
            }
        }
    }
}

std::thread_local! {
    static PRINTER: core::cell::Cell<Option<fn(&str)>> = const { core::cell::Cell::new(None) };
}

/// Install the line printer the default notifier uses (the runtime's `print_stderr`, which
/// adds `"{id}:\t{ctime} "` and the newline).
pub fn set_default_printer(f: Option<fn(&str)>) {
    PRINTER.with(|c| c.set(f));
}

pub(crate) fn payload_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        String::from("(panic payload is not a string)")
    }
}

/// Default reports printed whole in each window; the rest of the window's are counted.
pub const REPORTS_PER_WINDOW: u32 = 10;

/// The length of a rate-limiting window.
const WINDOW: core::time::Duration = core::time::Duration::from_secs(10);

std::thread_local! {
    /// (window start in scheduler ticks, reports printed in it, reports suppressed in it).
    static BUDGET: core::cell::Cell<(Option<u64>, u32, u64)> =
        const { core::cell::Cell::new((None, 0, 0)) };
}

/// May the default notifier print this panic? Counts it either way; on the first report
/// of a new window, prints how many the last one suppressed.
fn admit_default_report(s: &crate::sched::SchedState) -> bool {
    let now = s.now_ticks();
    let (start, printed, suppressed) = BUDGET.with(|b| b.get());
    let (start, printed, suppressed) = match start {
        Some(t) if now.saturating_sub(t) < s.rate().ticks(WINDOW) => (t, printed, suppressed),
        _ => {
            if suppressed > 0 {
                print_line(&alloc::format!(
                    "… and {suppressed} more panics in the last {} s (each window of {} s \
                     prints its first {REPORTS_PER_WINDOW} whole)",
                    WINDOW.as_secs(),
                    WINDOW.as_secs()
                ));
            }
            (now, 0, 0)
        }
    };
    let admit = printed < REPORTS_PER_WINDOW;
    let next = if admit {
        (Some(start), printed + 1, suppressed)
    } else {
        (Some(start), printed, suppressed + 1)
    };
    BUDGET.with(|b| b.set(next));
    admit
}

/// Turn a caught panic into the join error, notifying first.
pub(crate) fn on_panic(payload: Box<dyn Any + Send>) -> JoinError {
    let s = sched();
    let co = s.current_ref();
    if payload.is::<ForcedUnwind>() {
        return JoinError::Cancelled { id: co.id() };
    }
    let custom = s.panic_part().notifier.borrow().clone();
    if custom.is_none() && !admit_default_report(s) {
        // Counted for the next summary; not worth a traceback.
        return JoinError::Panicked {
            id: co.id(),
            name: co.name_str(),
            message: payload_message(&*payload),
        };
    }
    let traceback = TRACEBACK_SOURCE
        .with(|c| c.get())
        .and_then(|f| f())
        .unwrap_or_default();
    let report = PanicReport {
        id: co.id(),
        name: co.name_str(),
        message: payload_message(&*payload),
        traceback,
    };
    match custom {
        Some(f) => {
            let ok = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| f(&report)));
            if ok.is_err() {
                default_notifier(&report);
            }
        }
        None => default_notifier(&report),
    }
    JoinError::Panicked {
        id: report.id,
        name: report.name,
        message: report.message,
    }
}
