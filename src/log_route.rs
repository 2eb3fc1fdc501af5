//! The debug output through the `log` crate (feature `log`): print_stderr, the latency
//! warnings with their sampled stack, the exception notifier's reports, the debug signal's
//! `where_all` and everything else the runtime writes to the saved stderr become log
//! records with target `shrapnel`, one per line (a compact stack is one line, so a warning
//! and its stack stay together):
//!
//! | what | level |
//! | --- | --- |
//! | `print_stderr`, `write_stderr`, `where_all` dumps | `Info` |
//! | latency warnings and their stacks, the scheduler's own reports | `Warn` |
//! | a coroutine's panic (the exception notifier's default report) | `Error` |
//!
//! A record goes to the logger only if the logger takes its level for target `shrapnel`
//! (`log::log_enabled!`); otherwise — no logger installed, or that level filtered out — the
//! line goes to the saved stderr as without the feature, so a latency warning or a dump is
//! never lost. What a signal handler writes itself (the one line of the debug signal, the
//! stack-overflow report before the abort) always goes straight to the saved stderr: a
//! handler may not take the logger's locks.
//!
//! Without the feature, [`write`] declines everything and this module is empty code.

/// How serious a piece of debug output is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Severity {
    /// Asked-for output: print_stderr, dumps.
    Info,
    /// Something a person should look at: latency, the scheduler's reports.
    Warn,
    /// A coroutine panicked.
    Error,
}

#[cfg(feature = "log")]
mod imp {
    use std::cell::RefCell;

    use super::Severity;

    /// The target of every record.
    const TARGET: &str = "shrapnel";
    /// A line without its newline yet goes out once this long, rather than wait.
    const MAX_PENDING: usize = 16 * 1024;

    thread_local! {
        /// The part of a line written so far (output may come in chunks), and its severity.
        static PENDING: RefCell<(String, Severity)> =
            const { RefCell::new((String::new(), Severity::Info)) };
    }

    fn level(s: Severity) -> log::Level {
        match s {
            Severity::Info => log::Level::Info,
            Severity::Warn => log::Level::Warn,
            Severity::Error => log::Level::Error,
        }
    }

    /// Whether output of this severity goes to the logger now.
    pub(crate) fn takes(s: Severity) -> bool {
        log::log_enabled!(target: TARGET, level(s))
    }

    fn emit(s: Severity, line: &str) {
        log::log!(target: TARGET, level(s), "{line}");
    }

    /// Hand `bytes` to the logger, one record per complete line; false if the logger does
    /// not take this severity (the caller writes them to the saved stderr).
    pub(crate) fn write(s: Severity, bytes: &[u8]) -> bool {
        if !takes(s) {
            return false;
        }
        let text = String::from_utf8_lossy(bytes);
        let taken = PENDING.try_with(|p| {
            let Ok(mut p) = p.try_borrow_mut() else {
                // The logger itself printed through the runtime: no record of a record.
                return false;
            };
            let (buf, pending) = &mut *p;
            if *pending != s && !buf.is_empty() {
                emit(*pending, buf);
                buf.clear();
            }
            *pending = s;
            for piece in text.split_inclusive('\n') {
                buf.push_str(piece);
                if buf.ends_with('\n') || buf.len() >= MAX_PENDING {
                    emit(s, buf.trim_end_matches('\n'));
                    buf.clear();
                }
            }
            true
        });
        taken.unwrap_or(false)
    }
}

#[cfg(not(feature = "log"))]
mod imp {
    use super::Severity;

    #[inline(always)]
    pub(crate) fn takes(_s: Severity) -> bool {
        false
    }

    #[inline(always)]
    pub(crate) fn write(_s: Severity, _bytes: &[u8]) -> bool {
        false
    }
}

pub(crate) use imp::{takes, write};
