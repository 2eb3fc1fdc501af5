//! A scheduler for tests: heap stacks, a std clock, no I/O, and a sink that records.
#![allow(dead_code)]

#[path = "../portable/common.rs"]
mod common;
pub use common::*;

use std::time::Duration;

use shrapnel_core::clock::Clock;
use shrapnel_core::poller::{Idle, NullPoller};
use shrapnel_core::sched::{self, Config};
use shrapnel_core::stack::HeapStackAllocator;

pub struct StdClock(pub std::time::Instant);
impl Clock for StdClock {
    fn now(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
    fn ticks_per_second(&self) -> u64 {
        1_000_000_000
    }
}

pub struct ThreadSleep;
impl Idle for ThreadSleep {
    fn idle(&self, timeout: Option<Duration>) {
        std::thread::sleep(timeout.unwrap_or(Duration::from_millis(10)));
    }
}

/// Install a fresh scheduler on this test thread; returns the recorder of its sink.
pub fn setup() -> Recorder {
    if sched::is_installed() {
        sched::uninstall();
    }
    let rec = Recorder::default();
    sched::install(Config {
        poller: Box::new(NullPoller::new(ThreadSleep)),
        clock: Box::new(StdClock(std::time::Instant::now())),
        stacks: Box::new(HeapStackAllocator),
        sink: Box::new(rec.clone()),
        default_stack_size: 64 * 1024,
    })
    .unwrap();
    // The same suites again in shared-stack mode (ci/test.sh runs them both ways).
    if std::env::var_os("SHRAPNEL_TEST_SHARED_STACK").is_some() {
        sched::set_shared_stack_default(true);
    }
    rec
}

/// How many coroutines the "many" tests spawn at once: bare-metal boards hold fewer.
pub const MANY: u64 = 2000;
