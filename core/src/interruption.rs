//! Why a blocking call returned early: [`Interrupted`], and [`Timeout`] from `with_timeout`.
//!
//! Every blocking call in shrapnel returns `Result<_, Interrupted>`. Code propagates the
//! error with `?`; `with_timeout` turns its own expiry into [`Timeout`] and passes anybody
//! else's interruption on unchanged, which is how nested timeouts compose (ARCHITECTURE.md §3).
//!
//! Through `std::io` (the sockets' `Read`/`Write`), an interruption becomes an
//! `io::Error` whose kind std's retry loops do *not* retry — `read_exact`, `write_all`,
//! `read_to_end`, `read_line`, `lines()` and `io::copy` retry `ErrorKind::Interrupted`
//! forever, so a shut-down coroutine inside one would block again: a timeout is
//! `ErrorKind::TimedOut`, an interrupt, shutdown or wake-up is `ErrorKind::Other`. Get the
//! interruption back with `Interrupted::from_io_error` (feature `std`, defined in `io`):
//!
//! ```ignore
//! match conn.read_exact(&mut buf) {
//!     Err(e) if Interrupted::from_io_error(&e) == Some(Interrupted::Shutdown) => return,
//!     r => r?,
//! }
//! ```

use core::fmt;

/// Identifies one `with_timeout` call, so nested timeouts can tell theirs from an outer one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimeoutId(pub(crate) u64);

/// The reason a blocking call was cut short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interrupted {
    /// A `with_timeout` deadline passed; the id says which one (an inner call passes an
    /// outer one's on).
    Timeout(TimeoutId),
    /// `interrupt(code)` or a condition variable's `raise_all(code)`.
    Interrupt(u64),
    /// `shutdown()`: the coroutine is asked to finish.
    Shutdown,
    /// `wake_up()`: resume now, for a reason the application defines.
    WakeUp,
}

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Interrupted::Timeout(id) => write!(f, "interrupted by timeout #{}", id.0),
            Interrupted::Interrupt(code) => write!(f, "interrupted (code {code})"),
            Interrupted::Shutdown => f.write_str("interrupted: shut down"),
            Interrupted::WakeUp => f.write_str("interrupted: woken up"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Interrupted {}

#[cfg(feature = "std")]
impl Interrupted {
    /// The `io::ErrorKind` it becomes: `TimedOut` for a timeout, `Other` for the rest —
    /// never `Interrupted`, which std's helpers retry (see the module doc).
    pub fn io_error_kind(self) -> std::io::ErrorKind {
        match self {
            Interrupted::Timeout(_) => std::io::ErrorKind::TimedOut,
            _ => std::io::ErrorKind::Other,
        }
    }
}

#[cfg(feature = "std")]
impl From<Interrupted> for std::io::Error {
    fn from(i: Interrupted) -> Self {
        std::io::Error::new(i.io_error_kind(), i)
    }
}

/// `with_timeout`'s own deadline passed before the closure finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeout;

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timed out")
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Timeout {}

/// So that `with_timeout(d, || TcpStream::connect(a))??` works in a function returning
/// `io::Result`: kind `TimedOut`, as std's own socket timeouts.
#[cfg(feature = "std")]
impl From<Timeout> for std::io::Error {
    fn from(t: Timeout) -> Self {
        std::io::Error::new(std::io::ErrorKind::TimedOut, t)
    }
}
