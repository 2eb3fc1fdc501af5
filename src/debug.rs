//! `where_is` / `where_all` for people: the core's snapshots ([`CoroInfo`]: state, wait
//! reason, how long, the blocking call's source line, and with the `stacks` feature the
//! suspended call stack's return addresses) with those addresses symbolized by [`crate::tb`],
//! and a `Display` that prints one block per coroutine, sorted by id:
//!
//! ```text
//! #3 'reader' blocked: readable fd 7 for 1.204s at src/main.rs:40
//!     [fd.rs fd::wait_readable|31] [main.rs main::read_request|40] [main.rs main::{closure}|52]
//! ```
//!
//! The second line appears only with `stacks`, and only for a coroutine that is suspended
//! (blocked, or ready but not running): a running or not-started one has no saved stack.
//!
//! [`debug_signal`](crate::debug_signal) makes a signal (SIGUSR1 by default on Linux,
//! SIGINFO — Ctrl-T — on the BSDs and macOS) print `where_all` to the saved stderr of a
//! running program.

use std::fmt;

use shrapnel_core::{CoroInfo, CoroRef};

use crate::tb::{self, Frame};

/// One coroutine: its snapshot and its symbolized, filtered stack.
#[derive(Clone, Debug)]
pub struct Where {
    /// What the core knows about it.
    pub info: CoroInfo,
    /// Its suspended call stack, innermost first (empty without the `stacks` feature, or
    /// when it is running, not started or dead).
    pub stack: Vec<Frame>,
}

impl Where {
    fn new(info: CoroInfo) -> Self {
        let stack = tb::suspended_frames(&info.frames);
        Where { info, stack }
    }
}

impl fmt::Display for Where {
    /// The snapshot's line, and the compact stack indented on a second line if there is one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.info)?;
        if !self.stack.is_empty() {
            write!(f, "\n    {}", tb::format_frames(&self.stack))?;
        }
        Ok(())
    }
}

/// Every live coroutine of this thread, sorted by id.
#[derive(Clone, Debug, Default)]
pub struct WhereAll(pub Vec<Where>);

impl WhereAll {
    /// The entry for coroutine `id`.
    pub fn get(&self, id: u64) -> Option<&Where> {
        self.0.iter().find(|w| w.info.id == id)
    }
}

impl std::ops::Deref for WhereAll {
    type Target = [Where];
    fn deref(&self) -> &[Where] {
        &self.0
    }
}

impl fmt::Display for WhereAll {
    /// One block per coroutine, each ending with a newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for w in &self.0 {
            writeln!(f, "{w}")?;
        }
        Ok(())
    }
}

/// What every live coroutine on this thread is doing (Shrapnel's `where_all()`): empty if
/// the thread has no scheduler.
pub fn where_all() -> WhereAll {
    WhereAll(
        shrapnel_core::where_all()
            .into_iter()
            .map(Where::new)
            .collect(),
    )
}

/// What `co` is doing now (Shrapnel's `where(co)`).
pub fn where_is(co: &CoroRef) -> Where {
    Where::new(shrapnel_core::where_is(co))
}

/// Replace this thread's exception notifier, called with each coroutine panic (Shrapnel's
/// `set_exception_notifier`); `None` restores the default, which prints
/// `thread {id} ({name}): error {message} [file fn|line] …` to the saved stderr. Returns the
/// previous custom notifier (`None` if the default was in place). A notifier that panics
/// is replaced by the default for that report. Starts the thread's scheduler if needed.
pub fn set_exception_notifier(
    f: Option<Box<shrapnel_core::panic::Notifier>>,
) -> Option<Box<shrapnel_core::panic::Notifier>> {
    crate::runtime::ensure();
    shrapnel_core::panic::set_exception_notifier(f)
}

/// What the runtime sets up on each thread it starts a scheduler on: the panic hook that
/// gives coroutine panics their traceback, and the debug signal.
pub(crate) fn on_scheduler_start() {
    tb::install_panic_hook();
    shrapnel_core::panic::set_traceback_source(Some(tb::take_panic_traceback));
    crate::debug_signal::register_this_thread();
    #[cfg(feature = "stacks")]
    tb::warm_up();
}
