//! What the portable suites share on every target: a recording debug sink, a log that
//! coroutines append to, and `ms`. `no_std` + `alloc`; the host's `support` module and the
//! bare-metal suite runners re-export it beside their own `setup`.
#![allow(dead_code)]

use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::time::Duration;

use shrapnel_core::sink::DebugSink;

/// A debug sink that keeps everything written to it.
#[derive(Clone, Default)]
pub struct Recorder(pub Rc<RefCell<Vec<u8>>>);

impl DebugSink for Recorder {
    fn write(&self, bytes: &[u8]) {
        self.0.borrow_mut().extend_from_slice(bytes);
    }
}

impl Recorder {
    /// What was written, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.borrow()).into_owned()
    }
}

/// A shared log that coroutines append to.
#[derive(Clone, Default)]
pub struct Log(pub Rc<RefCell<Vec<String>>>);

impl Log {
    pub fn push(&self, s: impl Into<String>) {
        self.0.borrow_mut().push(s.into());
    }
    pub fn get(&self) -> Vec<String> {
        self.0.borrow().clone()
    }
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
