//! `in_parallel`: results in the order given, every call run to its end, failures named
//! by index, and an interrupted caller shutting down what it started. Ports Shrapnel's
//! test_in_parallel.py. The tests that need no OS are in `portable/parallel.rs`, shared with
//! the bare-metal suite runners; here is the one with a panicking call.
#![cfg(feature = "std")]

extern crate alloc;

mod support;

#[path = "portable/parallel.rs"]
mod portable;

use std::cell::RefCell;
use std::rc::Rc;

use shrapnel_core::sched::{event_loop, yield_slice};
use shrapnel_core::*;
use support::*;

#[test]
fn a_panic_names_the_failed_calls_and_keeps_every_other_result() {
    setup();
    let finished = Rc::new(RefCell::new(Vec::new()));
    let f = finished.clone();
    let c = spawn(move || {
        let calls = (0..5u32).map(|n| {
            let f = f.clone();
            move || {
                if n % 2 == 1 {
                    panic!("call {n} failed");
                }
                yield_slice(); // the panicking ones end first
                f.borrow_mut().push(n);
                n * 10
            }
        });
        in_parallel(calls).unwrap_err()
    });
    event_loop();
    let e = c.join().unwrap();
    assert_eq!(e.failed(), [1, 3]);
    assert_eq!(e.interrupted, None);
    assert_eq!(
        *finished.borrow(),
        [0, 2, 4],
        "the other calls ran to their end"
    );
    let oks: Vec<_> = e.results.iter().map(|r| r.as_ref().ok().copied()).collect();
    assert_eq!(oks, [Some(0), None, Some(20), None, Some(40)]);
    match &e.results[3] {
        Err(JoinError::Panicked { message, .. }) => assert_eq!(message, "call 3 failed"),
        other => panic!("{other:?}"),
    }
    let text = e.to_string();
    assert!(
        text.starts_with("in_parallel: 2 of 5 calls failed: #1: coroutine #"),
        "{text}"
    );
    assert!(
        text.contains("panicked: call 1 failed; #3: coroutine #"),
        "{text}"
    );
    assert!(text.ends_with("panicked: call 3 failed"), "{text}");
}
