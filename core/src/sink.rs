//! The DebugSink trait: where print_stderr, latency warnings and the exception notifier write.
//!
//! POSIX writes to a dup of fd 2 taken at start-up, with write(2) and no allocation, so the
//! text reaches the real stderr even when stdout/stderr have been redirected. Embedded
//! targets write through semihosting (the board crate's sink) or, with feature `defmt`,
//! through `DefmtSink`: each line becomes one defmt message, decoded on the host by
//! `defmt-print`. Writing must never allocate, block on a coroutine, or fail loudly: errors
//! are swallowed, as Shrapnel does.
//!
//! With feature `defmt` the small public types a firmware is likely to log ([`State`],
//! [`WaitReason`], [`Interrupted`]) also implement `defmt::Format`, printing what their
//! `Display` (or, for `State`, `Debug`) prints.
//!
//! [`State`]: crate::State
//! [`WaitReason`]: crate::WaitReason
//! [`Interrupted`]: crate::Interrupted

#[cfg(any(feature = "defmt", test))]
use core::cell::Cell;

/// A byte sink for debug output.
pub trait DebugSink {
    /// Write all of `bytes` if possible; errors are ignored.
    fn write(&self, bytes: &[u8]);
}

/// A sink that drops everything (the default before a runtime installs a real one).
pub struct NullSink;

impl DebugSink for NullSink {
    fn write(&self, _bytes: &[u8]) {}
}

/// The core's debug output as defmt messages: each line written becomes one
/// `defmt::println!("{=str}", line)`, without its newline. The firmware links a global defmt
/// logger (RTT, semihosting, …) and the host decodes the stream with `defmt-print -e ELF`.
///
/// The core writes whole lines, but a line may also arrive in pieces (`text`, then `"\n"`):
/// a piece without a newline goes out at once as its own message, so nothing waits in a
/// buffer when a panic follows, and a newline that only ends such a piece adds no empty
/// message. Bytes that are not UTF-8 become U+FFFD, through a small buffer on the stack (a
/// long line of that kind goes out as several messages); valid text is sent as it is.
///
/// ```ignore
/// sched::install(Config { sink: Box::new(DefmtSink::new()), /* … */ })
/// ```
#[cfg(feature = "defmt")]
pub struct DefmtSink {
    lines: LineSplitter,
}

#[cfg(feature = "defmt")]
impl DefmtSink {
    /// A sink with no line in progress.
    pub const fn new() -> Self {
        DefmtSink {
            lines: LineSplitter::new(),
        }
    }
}

#[cfg(feature = "defmt")]
impl Default for DefmtSink {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "defmt")]
impl DebugSink for DefmtSink {
    fn write(&self, bytes: &[u8]) {
        self.lines
            .split(bytes, |line| defmt::println!("{=str}", line));
    }
}

/// Turns the byte writes a [`DebugSink`] receives into text lines for a line-oriented
/// transport (one defmt message per line).
#[cfg(any(feature = "defmt", test))]
struct LineSplitter {
    /// The last write did not end with a newline: the line it sent is still open, and a
    /// newline at the start of the next write only closes it.
    open: Cell<bool>,
}

/// Bytes of the stack buffer that replaces invalid UTF-8 with U+FFFD.
#[cfg(any(feature = "defmt", test))]
const LOSSY_CHUNK: usize = 128;

#[cfg(any(feature = "defmt", test))]
impl LineSplitter {
    const fn new() -> Self {
        LineSplitter {
            open: Cell::new(false),
        }
    }

    /// Hand each line of `bytes` to `emit`, without its `\n` (or `\r\n`).
    fn split(&self, bytes: &[u8], mut emit: impl FnMut(&str)) {
        let Some(&last) = bytes.last() else {
            return;
        };
        let mut rest = bytes;
        if self.open.get() && rest[0] == b'\n' {
            rest = &rest[1..];
        }
        self.open.set(last != b'\n');
        for line in rest.split_inclusive(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\n").unwrap_or(line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            emit_lossy(line, &mut emit);
        }
    }
}

/// `emit(line)` when it is UTF-8; otherwise the line with each invalid sequence replaced by
/// U+FFFD, in pieces of at most [`LOSSY_CHUNK`] bytes.
#[cfg(any(feature = "defmt", test))]
fn emit_lossy(line: &[u8], emit: &mut impl FnMut(&str)) {
    if let Ok(text) = core::str::from_utf8(line) {
        emit(text);
        return;
    }
    let mut buf: heapless::String<LOSSY_CHUNK> = heapless::String::new();
    let mut push = |c: char| {
        if buf.push(c).is_err() {
            emit(&buf);
            buf.clear();
            // A char is at most 4 bytes, so it fits an empty buffer.
            let _ = buf.push(c);
        }
    };
    for chunk in line.utf8_chunks() {
        chunk.valid().chars().for_each(&mut push);
        if !chunk.invalid().is_empty() {
            push(char::REPLACEMENT_CHARACTER);
        }
    }
    emit(&buf);
}

#[cfg(feature = "defmt")]
impl defmt::Format for crate::State {
    fn format(&self, f: defmt::Formatter<'_>) {
        let name = match self {
            crate::State::NotStarted => "NotStarted",
            crate::State::Ready => "Ready",
            crate::State::Running => "Running",
            crate::State::Blocked => "Blocked",
            crate::State::Dead => "Dead",
        };
        defmt::write!(f, "{=str}", name);
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for crate::WaitReason {
    fn format(&self, f: defmt::Formatter<'_>) {
        use crate::WaitReason as W;
        match self {
            W::NotStarted => defmt::write!(f, "not started"),
            W::Running => defmt::write!(f, "running"),
            W::Scheduled => defmt::write!(f, "scheduled"),
            W::Yield => defmt::write!(f, "yielded"),
            W::Sleep(_) => defmt::write!(f, "sleeping"),
            W::Readable(fd) => defmt::write!(f, "readable fd {=i32}", fd),
            W::Writable(fd) => defmt::write!(f, "writable fd {=i32}", fd),
            W::Mutex => defmt::write!(f, "mutex"),
            W::Semaphore => defmt::write!(f, "semaphore"),
            W::InvertedSemaphore => defmt::write!(f, "inverted semaphore"),
            W::Condvar => defmt::write!(f, "condvar"),
            W::Fifo => defmt::write!(f, "fifo"),
            W::RwLockRead => defmt::write!(f, "rwlock (read)"),
            W::RwLockWrite => defmt::write!(f, "rwlock (write)"),
            W::Join(id) => defmt::write!(f, "join #{=u64}", id),
            W::Irq => defmt::write!(f, "interrupt event"),
            W::Channel => defmt::write!(f, "channel"),
            W::Blocking(fd) => defmt::write!(f, "blocking pool (fd {=i32})", fd),
            W::Dead => defmt::write!(f, "dead"),
        }
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for crate::Interrupted {
    fn format(&self, f: defmt::Formatter<'_>) {
        use crate::Interrupted as I;
        match self {
            I::Timeout(id) => defmt::write!(f, "interrupted by timeout #{=u64}", id.0),
            I::Interrupt(code) => defmt::write!(f, "interrupted (code {=u64})", code),
            I::Shutdown => defmt::write!(f, "interrupted: shut down"),
            I::WakeUp => defmt::write!(f, "interrupted: woken up"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LineSplitter;
    use alloc::string::{String, ToString};
    use alloc::vec::Vec;

    fn lines(splitter: &LineSplitter, writes: &[&[u8]]) -> Vec<String> {
        let mut out = Vec::new();
        for w in writes {
            splitter.split(w, |line| out.push(line.to_string()));
        }
        out
    }

    #[test]
    fn one_message_per_line_without_the_newline() {
        let s = LineSplitter::new();
        assert_eq!(
            lines(&s, &[b"a\nbb\r\n\nccc\n"]),
            ["a", "bb", "", "ccc"].map(String::from)
        );
    }

    #[test]
    fn a_piece_goes_out_at_once_and_its_newline_adds_nothing() {
        let s = LineSplitter::new();
        assert_eq!(
            lines(&s, &[b"thread 1 (main): error", b"\n", b"next\n", b"\n"]),
            ["thread 1 (main): error", "next", ""].map(String::from)
        );
        // A newline that starts a longer write closes the open piece, then the rest follows.
        let s = LineSplitter::new();
        assert_eq!(
            lines(&s, &[b"head", b"", b"\ntail\nopen"]),
            ["head", "tail", "open"].map(String::from)
        );
    }

    #[test]
    fn invalid_utf8_is_replaced_and_long_lines_are_chunked() {
        let s = LineSplitter::new();
        assert_eq!(
            lines(&s, &[b"ok \xff\xfe caf\xc3\xa9 \xe2\x82\n"]),
            ["ok \u{FFFD}\u{FFFD} café \u{FFFD}"].map(String::from)
        );
        let mut long = Vec::from(&b"\xff"[..]);
        long.extend(core::iter::repeat_n(b'x', 200));
        let out = lines(&s, &[&long]);
        assert!(out.iter().all(|l| l.len() <= super::LOSSY_CHUNK), "{out:?}");
        assert_eq!(out.concat(), String::from("\u{FFFD}") + &"x".repeat(200));
    }
}
