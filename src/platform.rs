//! The parts of shrapnel-core for those who build a runtime rather than use one: backend
//! authors (a new `Poller`), firmware and embedders (installing a scheduler with their own
//! clock, stacks and debug sink), and tools that read the scheduler from a signal handler.
//! Programs need none of it: `shrapnel::spawn` and the rest of the crate root install the
//! OS runtime on first use.
//!
//! What is here and why:
//! - [`install`], [`uninstall`], [`is_installed`], [`Config`]: a scheduler built from
//!   the traits below ([`configure`](crate::configure) does it with the OS parts);
//! - [`notifier`], [`set_loop_hook`]: wake the loop from another thread or a signal
//!   handler, and act on it in the scheduler's context;
//! - the traits and their no-OS implementations: [`arch`] (the context switch),
//!   [`stack`] (`Stack`, `StackAllocator`), [`poller`] (`Poller`, its conformance suite
//!   with feature `conformance` of the core), [`clock`], [`sink`] (`DebugSink`);
//! - [`io`]: the readiness table a socket type waits through (`wait`, `close`, `opened`);
//! - [`irq_event`]: waking coroutines from interrupt or signal handlers;
//! - [`running`]: the running coroutine, readable from a signal handler;
//! - [`debug`]: `where_all`'s raw snapshots (return addresses, not yet symbolized), and
//!   [`run_queue_len`] and [`timers_pending`] for a console of one's own;
//! - [`timer`]: the timer queue;
//! - [`panic`](mod@panic): the traceback source and printer of the default exception report;
//! - `latency` (feature `latency`): the slice probe and the report hook the watchdog uses.

pub use shrapnel_core::sched::{
    install, is_installed, notifier, run_queue_len, set_loop_hook, timers_pending, uninstall,
    AlreadyInstalled, Config,
};
/// The core's stack traits (`Stack`, `StackAllocator`) and its heap stacks; the runtime's
/// guarded stacks are [`crate::stack`].
pub use shrapnel_core::stack;
pub use shrapnel_core::{arch, clock, debug, io, irq_event, panic, poller, running, sink, timer};

#[cfg(feature = "latency")]
pub use shrapnel_core::latency;
