//! Sync primitives (filled below).
mod support;
