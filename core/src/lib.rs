//! shrapnel-core: the `#![no_std]` heart of shrapnel.
//!
//! Stackful coroutines, one cooperative scheduler per OS thread, timers, interruption and
//! synchronisation, written against small traits so the same code runs over epoll, kqueue,
//! or nothing at all on a microcontroller:
//! [`arch::ContextSwitch`], [`stack::Stack`], [`poller::Poller`], [`clock::Clock`] and
//! [`sink::DebugSink`]. See ARCHITECTURE.md (§2, the traits) for the map.
//!
//! Most programs use the `shrapnel` crate, which installs a scheduler with the OS backend;
//! this crate is what it (and firmware) builds on.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

#[doc(hidden)]
pub use heapless;

pub mod arch;
pub mod channel;
pub mod clock;
pub mod coro;
pub mod coro_local;
pub mod debug;
mod doc_scheduler;
mod hooks;
#[cfg(feature = "std")]
pub mod idle_spin;
pub mod interruption;
pub mod io;
pub mod irq_event;
#[cfg(feature = "latency")]
pub mod latency;
#[cfg(feature = "std")]
pub mod panic;
pub mod parallel;
pub mod poller;
pub mod running;
pub mod sched;
pub mod shared_stack;
pub mod sink;
pub mod stack;
#[cfg(feature = "switch-observer")]
pub mod switch_observer;
pub mod sync;
pub mod timer;
pub mod wait;
#[cfg(feature = "std")]
pub mod wait_for;
#[cfg(feature = "std")]
pub mod wait_profile;

pub use clock::Instant;
pub use coro::{
    new, spawn, Builder, Coro, CoroRef, JoinError, SelfishnessError, SpawnError, State,
};
pub use coro_local::CoroLocalKey;
pub use debug::{where_all, where_is, CoroInfo, HeldBy};
pub use interruption::{Interrupted, Timeout, TimeoutId};
pub use parallel::{in_parallel, InParallelError};
pub use running::{
    for_each_coro_for_signal, running_for_signal, RunningInfo, SignalCoro, SignalListError,
};
pub use sched::{
    coro_by_id, current, event_loop, live_coros, now, selfish_act, set_exit, set_selfishness,
    sleep, sleep_until, with_timeout, yield_slice,
};
pub use wait::WaitReason;
