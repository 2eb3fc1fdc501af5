#![doc = include_str!("../README.md")]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[cfg(feature = "backdoor")]
pub mod backdoor;
pub mod blocking;
#[cfg(feature = "tracing")]
mod coro_spans;
mod crash_dump;
pub mod debug;
pub mod debug_signal;
pub mod fd;
pub mod handle;
#[cfg(feature = "latency")]
pub mod latency;
mod log_route;
pub mod net;
pub mod per_core;
pub mod platform;
pub mod process;
pub mod profile;
mod runtime;
mod schedulers;
pub mod signal;
pub mod stack;
pub mod stderr;
mod sys;
pub mod tb;

pub use blocking::blocking;
pub use debug::{set_exception_notifier, where_all, where_is, Where, WhereAll};
pub use fd::{wait_readable, wait_writable};
pub use handle::{handle, Handle};
pub use per_core::run_per_core;
pub use runtime::{
    configure, ensure, event_loop, reset, sleep_relative, MonotonicClock, RuntimeConfig,
    RuntimeError,
};
pub use shrapnel_core::panic::PanicReport;
pub use shrapnel_core::sched::{
    duration_between, instant_after, selfish_act, set_exit, sleep, sleep_until, stats, uptime,
    with_timeout, yield_slice, Stats,
};
pub use shrapnel_core::{channel, interruption, sync, wait_for, wait_profile};
pub use shrapnel_core::{
    coro_by_id, current, live_coros, now, Coro, CoroInfo, CoroRef, HeldBy, Instant, Interrupted,
    JoinError, SelfishnessError, SpawnError, State, Timeout, TimeoutId, WaitReason,
};
pub use shrapnel_core::{coro_local, in_parallel, CoroLocalKey, InParallelError};
pub use sys::backend::OsPoller;

/// Set the default number of non-blocking I/O completions before a forced yield.
pub fn set_selfishness(n: u32) -> Result<u32, SelfishnessError> {
    runtime::ensure();
    shrapnel_core::set_selfishness(n)
}

/// Whether coroutines spawned from now on run on the scheduler's shared run stack unless
/// their [`Builder`] says otherwise; returns the previous setting (off by default). One
/// sleeping coroutine then costs about a kilobyte of heap instead of a guarded stack and two
/// kernel mappings. See [`shrapnel_core::shared_stack`].
pub fn set_shared_stack_default(on: bool) -> bool {
    runtime::ensure();
    shrapnel_core::sched::set_shared_stack_default(on)
}

/// Create and schedule a coroutine running `f` on this thread's scheduler.
#[track_caller]
pub fn spawn<F, T>(f: F) -> Coro<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    runtime::ensure();
    shrapnel_core::spawn(f)
}

/// Create a coroutine without starting it; call `start()` to schedule it.
#[track_caller]
pub fn new<F, T>(f: F) -> Coro<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    runtime::ensure();
    shrapnel_core::new(f)
}

/// Configures a coroutine (name, stack size) before it is created.
#[derive(Default)]
pub struct Builder(shrapnel_core::Builder);

impl Builder {
    /// The defaults: name `coro-{id}`, 256 KiB stack.
    pub fn new() -> Self {
        Builder(shrapnel_core::Builder::new())
    }
    /// Name it.
    pub fn name(self, name: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        Builder(self.0.name(name))
    }
    /// Ask for a stack of `bytes` (at least 16 KiB): a stack of its own, even when the
    /// scheduler's default is the shared stack.
    pub fn stack_size(self, bytes: usize) -> Self {
        Builder(self.0.stack_size(bytes))
    }
    /// Run on the scheduler's shared run stack (Shrapnel's shared stack: a suspended
    /// coroutine keeps only a heap copy of the frames it uses), or on a guarded stack of its
    /// own; unset, the scheduler's default ([`set_shared_stack_default`]). See
    /// [`shrapnel_core::shared_stack`] for what it costs and the one rule it adds.
    pub fn shared_stack(self, on: bool) -> Self {
        Builder(self.0.shared_stack(on))
    }
    /// Create it and schedule it.
    pub fn spawn<F, T>(self, f: F) -> Result<Coro<T>, SpawnError>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        runtime::ensure();
        self.0.spawn(f)
    }
    /// Create it without starting it.
    pub fn build<F, T>(self, f: F) -> Result<Coro<T>, SpawnError>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        runtime::ensure();
        self.0.build(f)
    }
}
