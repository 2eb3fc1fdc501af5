//! The DebugSink trait: where print_stderr, latency warnings and the exception notifier write.
//!
//! POSIX writes to a dup of fd 2 taken at start-up, with write(2) and no allocation, so the
//! text reaches the real stderr even when stdout/stderr have been redirected. Embedded
//! targets write through defmt or semihosting. Writing must never allocate, block on a
//! coroutine, or fail loudly: errors are swallowed, as Shrapnel does.

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
