//! shrapnel-core: the `#![no_std]` heart of shrapnel.
//!
//! Stackful coroutines, one cooperative scheduler per OS thread, timers, interruption and
//! synchronisation, written against small traits so the same code runs over epoll, kqueue,
//! or nothing at all on a microcontroller:
//! [`arch::ContextSwitch`], [`stack::Stack`], [`poller::Poller`], [`clock::Clock`] and
//! [`sink::DebugSink`]. See DESIGN.md §2 for the map.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;
#[cfg(all(test, not(feature = "std")))]
extern crate std;

pub mod arch;
pub mod clock;
pub mod poller;
pub mod sink;
pub mod stack;
pub mod running;
pub use running::{running_for_signal, RunningInfo};
