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

/// The coroutine running on this thread, if any. Async-signal-safe: it reads the
/// scheduler's `current` pointer and plain fields of that coroutine; the name is copied
/// only if no `set_name` is in progress at the moment of the signal.
pub fn running_for_signal() -> Option<RunningInfo> {
    // The handler runs on the scheduler's own thread, so the running coroutine cannot be
    // freed under it.
    let co = crate::sched::try_sched()?.running()?;
    let mut name = heapless::String::new();
    if let Ok(n) = co.try_name() {
        for ch in n.chars() {
            if name.push(ch).is_err() {
                break;
            }
        }
    }
    let (stack_limit, stack_base) = co.stack_range();
    Some(RunningInfo {
        id: co.id(),
        name,
        stack_limit,
        stack_base,
    })
}
