//! How long the first coroutine panic of a process stalls the scheduler: a ticker
//! coroutine yields in a loop and records the longest gap between two of its turns while
//! another coroutine panics (the first panic pays for loading the debug info used to
//! symbolize its traceback). Printed as `first panic: longest stall X ms (report after Y ms)`;
//! `ci/bench.sh` runs it in release, in a fresh process each time.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

fn main() {
    let worst = Rc::new(Cell::new(Duration::ZERO));
    let done = Rc::new(Cell::new(false));
    let (w, d) = (worst.clone(), done.clone());
    // Let the scheduler settle before measuring.
    let ticker = shrapnel::spawn(move || {
        let mut last = Instant::now();
        while !d.get() {
            shrapnel::yield_slice();
            let now = Instant::now();
            w.set(w.get().max(now - last));
            last = now;
        }
    });
    let reported = Rc::new(Cell::new(None));
    let (r, d) = (reported.clone(), done.clone());
    let start = Instant::now();
    shrapnel::set_exception_notifier(Some(Box::new(move |report| {
        r.set(Some((start.elapsed(), report.traceback.len())));
        d.set(true);
    })));
    let panicker = shrapnel::spawn(|| panic!("the first panic of the process"));
    shrapnel::event_loop();
    assert!(panicker.join().is_err());
    ticker.join().expect("the ticker ended");
    let (after, traceback_len) = reported.get().expect("the notifier ran");
    assert!(traceback_len > 0, "the report has a traceback");
    println!(
        "first panic: longest stall {:.2} ms (report after {:.1} ms)",
        worst.get().as_secs_f64() * 1e3,
        after.as_secs_f64() * 1e3
    );
}
