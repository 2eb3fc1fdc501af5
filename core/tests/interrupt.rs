//! Interruption of a coroutine that was woken but has not run yet (Shrapnel's `force`):
//! it is resumed with the interruption instead of the wake, and whatever the wake handed
//! it (a lock, permits, an item, a value) passes on to the next waiter.
//! The tests are in `portable/interrupt.rs`, shared with the bare-metal suite runners.

extern crate alloc;

mod support;

#[path = "portable/interrupt.rs"]
mod portable;
