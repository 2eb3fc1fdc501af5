//! The sync primitives: recursion, FIFO hand-off, interruption without lost wake-ups.
//! The tests are in `portable/sync.rs`, shared with the bare-metal suite runners.

extern crate alloc;

mod support;

#[path = "portable/sync.rs"]
mod portable;
