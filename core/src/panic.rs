//! Panics in coroutines (feature `std`): caught at the coroutine's root, reported to the
//! exception notifier, and handed to `join` as [`JoinError::Panicked`]; the scheduler and
//! every other coroutine keep running.

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use core::any::Any;

use crate::coro::JoinError;
use crate::sched::{sched, try_sched};

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
    let old = s.notifier.replace(f.map(Rc::new));
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
    let line = alloc::format!(
        "thread {} ({}): error {}",
        r.id,
        r.name,
        r.traceback_string()
    );
    match PRINTER.with(|c| c.get()) {
        Some(print) => print(&line),
        None => {
            if let Some(s) = try_sched() {
                s.sink.write(line.as_bytes());
                s.sink.write(b"\n");
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

/// Turn a caught panic into the join error, notifying first.
pub(crate) fn on_panic(payload: Box<dyn Any + Send>) -> JoinError {
    let s = sched();
    let co = s.current_ref();
    if payload.is::<ForcedUnwind>() {
        return JoinError::Cancelled { id: co.id };
    }
    let traceback = TRACEBACK_SOURCE
        .with(|c| c.get())
        .and_then(|f| f())
        .unwrap_or_default();
    let report = PanicReport {
        id: co.id,
        name: co.name_str(),
        message: payload_message(&*payload),
        traceback,
    };
    let custom = s.notifier.borrow().clone();
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
