//! Coroutine-local storage (`coro_local!`): one value per coroutine, made on first use,
//! dropped when the coroutine ends; a fresh value outside coroutines. Ports Shrapnel's
//! test_local.py. The tests that need no OS are in `portable/coro_local.rs`, shared with the
//! bare-metal suite runners; here are those of panics, unwinding and the shared stack.
#![cfg(feature = "std")]

extern crate alloc;

mod support;

#[path = "portable/coro_local.rs"]
mod portable;

use portable::{Noisy, FIRST, X};

use std::cell::RefCell;

use shrapnel_core::sched::{self, event_loop, sleep, yield_slice};
use shrapnel_core::*;
use support::*;

#[test]
fn values_drop_after_a_panic_and_on_an_interrupt() {
    let rec = setup();
    let log = Log::default();
    let l = log.clone();
    let panicker = spawn(move || {
        FIRST.set(Some(Noisy("panicker's", l)));
        panic!("boom");
    });
    let l = log.clone();
    let sleeper = spawn(move || {
        FIRST.set(Some(Noisy("sleeper's", l)));
        sleep(ms(60_000))
    });
    let h = sleeper.handle();
    spawn(move || {
        yield_slice();
        h.shutdown();
    });
    event_loop();
    assert!(matches!(panicker.join(), Err(JoinError::Panicked { .. })));
    assert_eq!(sleeper.join(), Ok(Err(Interrupted::Shutdown)));
    assert_eq!(log.get(), ["drop panicker's (X=0)", "drop sleeper's (X=0)"]);
    assert!(rec.text().contains("boom"));
}

#[test]
fn values_of_suspended_coroutines_drop_when_the_scheduler_goes() {
    setup();
    let log = Log::default();
    let l = log.clone();
    spawn(move || {
        FIRST.set(Some(Noisy("suspended", l)));
        sleep(ms(60_000))
    });
    spawn(|| sched::set_exit(0));
    event_loop();
    assert!(log.get().is_empty(), "still asleep");
    sched::uninstall();
    assert_eq!(log.get(), ["drop suspended (X=0)"]);
}

#[test]
fn a_panicking_destructor_is_reported_and_the_others_still_drop() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("destructor bomb");
        }
    }
    coro_local! {
        static BOMB: RefCell<Option<Bomb>> = RefCell::new(None);
    }
    let rec = setup();
    let log = Log::default();
    let l = log.clone();
    let c = spawn(move || {
        FIRST.set(Some(Noisy("after the bomb", l)));
        BOMB.set(Some(Bomb));
        4
    });
    event_loop();
    assert_eq!(
        c.join(),
        Ok(4),
        "the value was made before the locals dropped"
    );
    assert_eq!(log.get(), ["drop after the bomb (X=0)"]);
    assert!(rec.text().contains("destructor bomb"));
}

#[test]
fn works_on_the_shared_stack() {
    setup();
    let cs: Vec<_> = (1..=3u64)
        .map(|n| {
            Builder::new()
                .shared_stack(true)
                .spawn(move || {
                    X.set(n);
                    // Frames that must be copied off the run stack and back.
                    let big = std::hint::black_box([n as u8; 2048]);
                    yield_slice();
                    sleep(ms(1)).unwrap();
                    X.get() * 1000 + u64::from(std::hint::black_box(big)[2047])
                })
                .unwrap()
        })
        .collect();
    event_loop();
    let got: Vec<_> = cs.iter().map(|c| c.join().unwrap()).collect();
    assert_eq!(got, [1001, 2002, 3003]);
}
