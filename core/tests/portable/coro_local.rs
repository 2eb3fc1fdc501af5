//! Coroutine-local storage (`coro_local!`): one value per coroutine, made on first use,
//! dropped when the coroutine ends; a fresh value outside coroutines. Ports Shrapnel's
//! test_local.py.
//!
//! Needs nothing from an OS (`no_std` + `alloc`): `tests/coro_local.rs` runs it on the host
//! (with the tests of panics, unwinding and the shared stack), the bare-metal suite runners
//! in QEMU.

use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::sync::atomic::{AtomicU32, Ordering};

use shrapnel_core::sched::{self, event_loop, sleep, yield_slice};
use shrapnel_core::sync::Condvar;
use shrapnel_core::*;

use crate::support::*;

coro_local! {
    pub static X: Cell<u64> = Cell::new(0);
    static NAMES: RefCell<Vec<String>> = RefCell::new(Vec::new());
}

/// Records its drop in a log, and reads a local while being dropped.
pub struct Noisy(pub &'static str, pub Log);
impl Drop for Noisy {
    fn drop(&mut self) {
        self.1.push(format!("drop {} (X={})", self.0, X.get()));
    }
}

coro_local! {
    pub static FIRST: RefCell<Option<Noisy>> = RefCell::new(None);
    static SECOND: RefCell<Option<Noisy>> = RefCell::new(None);
}

/// Shrapnel's test_local: the main coroutine sets the local; two others do not see its
/// value, each sets its own across waits, and the main one still sees its own.
#[cfg_attr(test, test)]
pub fn each_coroutine_sees_only_its_own_value() {
    setup();
    let main = spawn(|| {
        let t1_cv = Rc::new(Condvar::<()>::new());
        let t2_cv = Rc::new(Condvar::<()>::new());
        X.set(1);
        let worker = |cv: Rc<Condvar<()>>, mine: u64| {
            spawn(move || {
                assert_eq!(X.get(), 0, "a new coroutine starts from the initialiser");
                cv.wait().unwrap();
                assert_eq!(X.get(), 0);
                X.set(mine);
                cv.wait().unwrap();
                X.get()
            })
        };
        let t1 = worker(t1_cv.clone(), 2);
        let t2 = worker(t2_cv.clone(), 3);
        yield_slice();
        t1_cv.wake_one(());
        yield_slice();
        assert_eq!(X.get(), 1);
        t2_cv.wake_one(());
        yield_slice();
        assert_eq!(X.get(), 1);
        t1_cv.wake_one(());
        t2_cv.wake_one(());
        (t1.join(), t2.join(), X.get())
    });
    event_loop();
    assert_eq!(main.join(), Ok((Ok(2), Ok(3), 1)));
}

#[cfg_attr(test, test)]
pub fn the_initialiser_runs_once_per_coroutine_and_only_on_first_use() {
    coro_local! {
        static COUNTED: u32 = {
            INITS.fetch_add(1, Ordering::Relaxed);
            7
        };
    }
    // Only this test touches it (an atomic, as a static must be; no threads race here).
    static INITS: AtomicU32 = AtomicU32::new(0);
    setup();
    let users: Vec<_> = (0..3)
        .map(|_| spawn(|| COUNTED.with(|v| *v) + COUNTED.with(|v| *v)))
        .collect();
    let idle = spawn(yield_slice);
    event_loop();
    for u in &users {
        assert_eq!(u.join(), Ok(14));
    }
    assert_eq!(idle.join(), Ok(()));
    assert_eq!(
        INITS.load(Ordering::Relaxed),
        3,
        "once per user, never for the idle one"
    );
}

#[cfg_attr(test, test)]
pub fn a_value_survives_blocking_calls_and_interleaving() {
    setup();
    let cs: Vec<_> = (0..4u64)
        .map(|n| {
            spawn(move || {
                NAMES.with_borrow_mut(|v| v.push(format!("start {n}")));
                for i in 0..3 {
                    X.set(X.get() + n);
                    if i % 2 == 0 {
                        sleep(ms(1)).unwrap();
                    } else {
                        yield_slice();
                    }
                }
                NAMES.with_borrow_mut(|v| v.push("end".into()));
                (X.get(), NAMES.take())
            })
        })
        .collect();
    event_loop();
    for (n, c) in cs.iter().enumerate() {
        let n = n as u64;
        assert_eq!(
            c.join(),
            Ok((3 * n, vec![format!("start {n}"), "end".into()]))
        );
    }
}

#[cfg_attr(test, test)]
pub fn values_drop_when_the_coroutine_ends_before_its_joiner_wakes() {
    setup();
    let log = Log::default();
    let l = log.clone();
    let worker = spawn(move || {
        X.set(5);
        FIRST.set(Some(Noisy("first", l.clone())));
        SECOND.set(Some(Noisy("second", l.clone())));
        sleep(ms(1)).unwrap();
        l.push("body done");
    });
    let l = log.clone();
    spawn(move || {
        worker.join().unwrap();
        l.push("joined");
    });
    event_loop();
    // Most recently initialised first, so a destructor still sees the values initialised
    // before its own.
    assert_eq!(
        log.get(),
        [
            "body done",
            "drop second (X=5)",
            "drop first (X=5)",
            "joined"
        ]
    );
}

#[cfg_attr(test, test)]
pub fn outside_a_coroutine_each_access_sees_a_fresh_value() {
    setup();
    X.set(9);
    assert_eq!(X.get(), 0, "nothing kept outside coroutines");
    assert_eq!(X.try_with(|x| x.get()), None);
    assert_eq!(X.with(|x| x.replace(4)), 0);
    let inside = spawn(|| {
        X.set(9);
        (X.get(), X.try_with(|x| x.get()))
    });
    event_loop();
    assert_eq!(inside.join(), Ok((9, Some(9))));
    sched::uninstall();
    assert_eq!(X.get(), 0, "no scheduler at all: still no panic");
}

#[cfg_attr(test, test)]
pub fn an_initialiser_may_use_other_locals_and_block() {
    coro_local! {
        static DERIVED: u64 = {
            sleep(ms(1)).unwrap();
            X.get() * 2
        };
    }
    setup();
    let cs: Vec<_> = (1..=2u64)
        .map(|n| {
            spawn(move || {
                X.set(n);
                let d = DERIVED.with(|d| *d);
                X.set(100);
                (d, DERIVED.with(|d| *d))
            })
        })
        .collect();
    event_loop();
    assert_eq!(cs[0].join(), Ok((2, 2)));
    assert_eq!(cs[1].join(), Ok((4, 4)));
}
