//! A coroutine panic is reported without stalling the others: its traceback is symbolized
//! on another thread while the panicking coroutine waits, so the scheduler keeps running.
//! (How long the first panic stalls the loop is measured by `bench/examples/first_panic.rs`.)

use std::cell::Cell;
use std::rc::Rc;

#[test]
fn the_others_run_while_a_panic_traceback_is_symbolized() {
    shrapnel::reset();
    let ticks = Rc::new(Cell::new(0u64));
    let done = Rc::new(Cell::new(false));
    let (t, d) = (ticks.clone(), done.clone());
    shrapnel::spawn(move || {
        while !d.get() {
            t.set(t.get() + 1);
            shrapnel::yield_slice();
        }
    });
    let at_report = Rc::new(Cell::new(None));
    let (t, r, d) = (ticks.clone(), at_report.clone(), done.clone());
    shrapnel::set_exception_notifier(Some(Box::new(move |report| {
        r.set(Some((t.get(), report.traceback.clone())));
        d.set(true);
    })));
    let (t, before) = (ticks.clone(), Rc::new(Cell::new(0)));
    let b = before.clone();
    let panicker = shrapnel::spawn(move || {
        b.set(t.get());
        panic!("on purpose");
    });
    shrapnel::event_loop();
    assert!(panicker.join().is_err());
    let (after, traceback) = at_report.take().expect("the notifier ran");
    assert!(
        after > before.get(),
        "the ticker ran while the panic was symbolized ({} then {after})",
        before.get()
    );
    assert!(traceback.contains("panic_report.rs"), "{traceback}");
}
