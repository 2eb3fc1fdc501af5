//! shrapnel: stackful coroutines that read like threads, with Shrapnel's debugging compiled in.
#![deny(unsafe_op_in_unsafe_fn)]

mod sys;
pub mod stack;
