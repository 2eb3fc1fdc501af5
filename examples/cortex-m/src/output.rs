//! Where text goes, in the manner of embassy's `fmt.rs`: the choice between the two output
//! modes is made here once, so the binaries print with [`say!`](crate::say!) and
//! [`outln!`](crate::outln!) and install [`debug_sink`] without a `cfg` anywhere else.
//!
//! - Default: plain text to the host's stdout through semihosting ([`SemihostingSink`] for
//!   the core's debug output, `hprintln!` for the example's lines).
//! - Feature `defmt`: every line is a defmt message, through the core's `DefmtSink`, framed
//!   by the `defmt-semihosting` global logger onto the same semihosting stdout; decode it on
//!   the host with `defmt-print -e <elf>`. The lines are formatted on the target with
//!   `core::fmt`, as the core's reports are, so both modes print the same text and one set
//!   of patterns checks them.

use alloc::boxed::Box;

use shrapnel_core::sink::DebugSink;

/// The core's debug sink (stack-overflow reports, latency warnings) in plain-text mode: the
/// host's stdout through semihosting. Errors are ignored, as the `DebugSink` contract asks.
pub struct SemihostingSink;

impl DebugSink for SemihostingSink {
    fn write(&self, bytes: &[u8]) {
        if let Ok(mut out) = cortex_m_semihosting::hio::hstdout() {
            let _ = out.write_all(bytes);
        }
    }
}

/// The sink [`init`](crate::init) gives the scheduler in this build's output mode.
#[cfg(not(feature = "defmt"))]
pub fn debug_sink() -> Box<dyn DebugSink> {
    Box::new(SemihostingSink)
}

/// The sink [`init`](crate::init) gives the scheduler in this build's output mode.
#[cfg(feature = "defmt")]
pub fn debug_sink() -> Box<dyn DebugSink> {
    Box::new(shrapnel_core::sink::DefmtSink::new())
}

/// Print a line to the host (semihosting text, or a defmt message with feature `defmt`).
#[cfg(not(feature = "defmt"))]
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::hprintln!($($arg)*)
    };
}

/// Print a line to the host (semihosting text, or a defmt message with feature `defmt`).
#[cfg(feature = "defmt")]
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::defmt_lines(format_args!($($arg)*))
    };
}

/// Print a line to the host, prefixed with the milliseconds since start: `[  12 ms] ...`.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::outln!("[{:4} ms] {}", $crate::millis(), format_args!($($arg)*))
    };
}

/// The longest piece of a line sent as one defmt message; a longer line goes out in pieces.
#[cfg(feature = "defmt")]
const DEFMT_LINE: usize = 200;

/// The body of [`outln!`](crate::outln!) with feature `defmt`: format `args` into a buffer
/// on the stack (no heap: this also runs in the panic handler) and send each line through
/// the core's `DefmtSink`, so the example's lines and the core's reports take one path.
#[cfg(feature = "defmt")]
#[doc(hidden)]
pub fn defmt_lines(args: core::fmt::Arguments) {
    use core::fmt::Write as _;

    struct Lines {
        sink: shrapnel_core::sink::DefmtSink,
        buf: shrapnel_core::heapless::String<DEFMT_LINE>,
    }

    impl Lines {
        fn flush(&mut self) {
            self.sink.write(self.buf.as_bytes());
            self.buf.clear();
        }
    }

    impl core::fmt::Write for Lines {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            for c in s.chars() {
                if self.buf.push(c).is_err() {
                    self.flush();
                    // A char is at most 4 bytes, so it fits an empty buffer.
                    let _ = self.buf.push(c);
                }
                if c == '\n' {
                    self.flush();
                }
            }
            Ok(())
        }
    }

    let mut lines = Lines {
        sink: shrapnel_core::sink::DefmtSink::new(),
        buf: shrapnel_core::heapless::String::new(),
    };
    let _ = lines.write_fmt(args);
    let _ = lines.buf.push('\n');
    lines.flush();
}
