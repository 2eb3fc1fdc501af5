//! The saved stderr: a dup of fd 2 taken when the runtime starts, written with write(2)
//! and no allocation, so debug output reaches the real stderr even after fd 1/2 have been
//! redirected (a backdoor session, a test harness). Errors are swallowed, as Shrapnel does.
//!
//! [`print_stderr`] (and the [`print_stderr!`](crate::print_stderr!) macro) prefix each
//! message Shrapnel's way, `"{id}:\t{ctime} {msg}\n"`: the running coroutine's id (0 outside
//! coroutines, as Shrapnel's main coroutine is numbered), the local time like C's `ctime`
//! (`Sat Apr 14 20:55:39 2012`), and a newline if the message has none. They format into a
//! buffer on the stack and do not allocate; a message longer than the buffer goes out in
//! several write(2)s. [`write_stderr`] writes verbatim. With feature `log`, all of it can go
//! to the `log` crate instead (`log_route.rs`).
//!
//! ```
//! shrapnel::print_stderr!("listening on {}", 7000);
//! shrapnel::stderr::print_stderr("ready");
//! shrapnel::stderr::write_stderr("verbatim, no newline added");
//! ```

use std::fmt;
use std::os::fd::RawFd;
use std::sync::OnceLock;

use shrapnel_core::sink::DebugSink;

use crate::log_route::Severity;

static SAVED: OnceLock<RawFd> = OnceLock::new();

/// The process's saved stderr.
#[derive(Clone, Copy)]
pub struct SavedStderr(RawFd);

impl SavedStderr {
    /// The saved fd, duplicating fd 2 (close-on-exec) the first time.
    pub fn get() -> SavedStderr {
        SavedStderr(*SAVED.get_or_init(|| {
            // SAFETY: F_DUPFD_CLOEXEC duplicates fd 2 (or fails with -1) and touches no memory.
            let fd = unsafe { libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 3) };
            if fd < 0 {
                2
            } else {
                fd
            }
        }))
    }

    /// The fd written to.
    pub fn fd(&self) -> RawFd {
        self.0
    }
}

/// The scheduler's own output (latency warnings, its reports): with feature `log`, records
/// of level `Warn` (see `log_route.rs`).
impl DebugSink for SavedStderr {
    fn write(&self, bytes: &[u8]) {
        self.write_at(Severity::Warn, bytes);
    }
}

impl SavedStderr {
    /// Write `bytes`: to the logger if feature `log` routes this severity there, else to
    /// the saved fd (disk full, closed, …: swallowed).
    pub(crate) fn write_at(&self, severity: Severity, bytes: &[u8]) {
        if !crate::log_route::write(severity, bytes) {
            crate::sys::signals::write_all(self.0, bytes);
        }
    }
}

/// Write `s` verbatim to the saved stderr (Shrapnel's `write_stderr`).
pub fn write_stderr(s: &str) {
    SavedStderr::get().write_at(Severity::Info, s.as_bytes());
}

/// Format Shrapnel's debug line `"{id}:\t{ctime} {msg}\n"` to the saved stderr.
pub fn print_stderr(msg: &str) {
    print_stderr_fmt(format_args!("{msg}"));
}

/// [`print_stderr`] for formatted messages; what the [`print_stderr!`](crate::print_stderr!)
/// macro calls.
pub fn print_stderr_fmt(args: fmt::Arguments<'_>) {
    print_at(Severity::Info, args);
}

/// The exception notifier's printer: a coroutine's panic report (feature `log`: `Error`).
pub(crate) fn print_panic_report(msg: &str) {
    print_at(Severity::Error, format_args!("{msg}"));
}

/// Shrapnel's debug line at `severity`; a logger adds its own time, so the line sent to
/// one has no ctime.
fn print_at(severity: Severity, args: fmt::Arguments<'_>) {
    let id = shrapnel_core::running_for_signal().map_or(0, |r| r.id);
    let mut out = ChunkWriter::new(SavedStderr::get(), severity);
    let _ = fmt::Write::write_fmt(&mut out, format_args!("{id}:\t"));
    if !crate::log_route::takes(severity) {
        let _ = write_local_ctime(&mut out, unix_now());
        let _ = fmt::Write::write_str(&mut out, " ");
    }
    let _ = fmt::Write::write_fmt(&mut out, args);
    if out.last != b'\n' {
        let _ = fmt::Write::write_str(&mut out, "\n");
    }
    out.flush();
}

/// Print to the saved stderr Shrapnel's way: `"{id}:\t{ctime} {msg}\n"` (see
/// [`stderr`](crate::stderr)). Takes `format!` arguments; does not allocate.
#[macro_export]
macro_rules! print_stderr {
    ($($arg:tt)*) => {
        $crate::stderr::print_stderr_fmt(::core::format_args!($($arg)*))
    };
}

/// Collects formatted text in a stack buffer and writes it out in full buffers.
pub(crate) struct ChunkWriter {
    sink: SavedStderr,
    /// The `log` severity the text is routed with; `None`: straight to the fd.
    severity: Option<Severity>,
    buf: [u8; 512],
    len: usize,
    /// The last byte written, to know whether a newline must be added.
    last: u8,
}

impl ChunkWriter {
    fn new(sink: SavedStderr, severity: Severity) -> Self {
        ChunkWriter {
            sink,
            severity: Some(severity),
            buf: [0; 512],
            len: 0,
            last: 0,
        }
    }

    /// A writer for a signal handler (the crash dump): write(2) to the fd only, never
    /// through the `log` route (a logger may allocate or lock). Async-signal-safe.
    pub(crate) fn for_signal_handler(sink: SavedStderr) -> Self {
        ChunkWriter {
            sink,
            severity: None,
            buf: [0; 512],
            len: 0,
            last: 0,
        }
    }

    /// Write out what is buffered.
    pub(crate) fn flush(&mut self) {
        let bytes = &self.buf[..self.len];
        match self.severity {
            Some(severity) => self.sink.write_at(severity, bytes),
            None => crate::sys::signals::write_all(self.sink.0, bytes),
        }
        self.len = 0;
    }
}

impl fmt::Write for ChunkWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut bytes = s.as_bytes();
        if let Some(&b) = bytes.last() {
            self.last = b;
        }
        while !bytes.is_empty() {
            if self.len == self.buf.len() {
                self.flush();
            }
            let n = bytes.len().min(self.buf.len() - self.len);
            self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
            self.len += n;
            bytes = &bytes[n..];
        }
        Ok(())
    }
}

/// Seconds since the Unix epoch by the wall clock (0 if it is before 1970).
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Unix time `secs` plus the local time zone's offset at that moment: what
/// [`shrapnel_core::clock::write_ctime`] prints as local time (and what the runtime's
/// `Clock::wall_clock` returns). Uses `localtime_r`, which may read the time-zone files the
/// first time: not for signal handlers.
pub(crate) fn local_secs(secs: i64) -> i64 {
    let t = secs as libc::time_t;
    // SAFETY: an all-zero `tm` is a valid value of this plain C struct (its only pointer,
    // where there is one, may be null); localtime_r fills it from a valid time_t pointer.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; localtime_r is the thread-safe variant.
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return secs;
    }
    secs + tm.tm_gmtoff as i64
}

/// Write Unix time `secs` in local time like C's `ctime`, without its newline:
/// `Sat Apr 14 20:55:39 2012` (the core's one formatter, given Unix time shifted to the local
/// time zone).
pub fn write_local_ctime(out: &mut impl fmt::Write, secs: i64) -> fmt::Result {
    shrapnel_core::clock::write_ctime(out, local_secs(secs).max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctime_format() {
        // Under TZ=UTC (set for this process before any localtime call in this test binary
        // would not be reliable), so check the shape: "Www Mmm dd hh:mm:ss yyyy".
        let mut s: heapless::String<64> = heapless::String::new();
        write_local_ctime(&mut s, 1_334_436_939).unwrap();
        let parts: Vec<&str> = s.split_whitespace().collect();
        assert_eq!(parts.len(), 5, "{s}");
        assert!(["Fri", "Sat", "Sun"].contains(&parts[0]), "{s}");
        assert_eq!(parts[1], "Apr", "{s}");
        assert_eq!(parts[4], "2012", "{s}");
        assert_eq!(s.len(), 24, "{s}");
    }

    #[test]
    fn chunk_writer_splits_long_text_and_tracks_the_last_byte() {
        let mut w = ChunkWriter::new(SavedStderr(-1), Severity::Info);
        let long = "x".repeat(1300);
        fmt::Write::write_str(&mut w, &long).unwrap();
        assert_eq!(w.len, 1300 - 1024);
        assert_eq!(w.last, b'x');
        fmt::Write::write_str(&mut w, "\n").unwrap();
        assert_eq!(w.last, b'\n');
    }
}
