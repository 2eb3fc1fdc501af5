//! Shrapnel's scheduling semantics, ported: ordering, passes, timeouts, interruption,
//! joins and panics. The part that needs no OS is `portable/semantics.rs`, which the
//! bare-metal suite runners run too; here are the tests that need threads, unwinding or
//! the hosted reports.

extern crate alloc;

mod support;

#[path = "portable/semantics.rs"]
mod portable;

use std::cell::Cell;
use std::rc::Rc;

use shrapnel_core::sched::{self, event_loop, set_exit, sleep};
use shrapnel_core::*;
use support::*;

#[test]
fn join_of_a_panicked_coroutine_and_siblings_continue() {
    let rec = setup();
    let bad = Builder::new()
        .name("bad")
        .spawn(|| -> u32 { panic!("boom") })
        .unwrap();
    let good = spawn(|| {
        sleep(ms(2)).unwrap();
        "fine"
    });
    let id = bad.id();
    event_loop();
    assert_eq!(
        bad.join(),
        Err(JoinError::Panicked {
            id,
            name: "bad".into(),
            message: "boom".into()
        })
    );
    assert_eq!(good.join(), Ok("fine"));
    assert!(
        rec.text()
            .contains(&format!("thread {id} (bad): error boom")),
        "{}",
        rec.text()
    );
}

#[test]
fn custom_exception_notifier_gets_the_report() {
    setup();
    let got = Rc::new(std::cell::RefCell::new(Vec::new()));
    let g = got.clone();
    let old = panic::set_exception_notifier(Some(Box::new(move |r: &panic::PanicReport| {
        g.borrow_mut()
            .push((r.id, r.name.clone(), r.message.clone()));
    })));
    assert!(old.is_none(), "the default was in place");
    let c = Builder::new()
        .name("p")
        .spawn(|| panic!("oops {}", 1))
        .unwrap();
    event_loop();
    assert_eq!(
        *got.borrow(),
        vec![(c.id(), "p".to_string(), "oops 1".to_string())]
    );
    assert!(panic::set_exception_notifier(None).is_some());
}

#[test]
fn a_panicking_notifier_falls_back_to_the_default() {
    let rec = setup();
    panic::set_exception_notifier(Some(Box::new(|_: &panic::PanicReport| {
        panic!("notifier broke")
    })));
    let c = Builder::new().name("q").spawn(|| panic!("first")).unwrap();
    event_loop();
    assert!(
        rec.text()
            .contains(&format!("thread {} (q): error first", c.id())),
        "{}",
        rec.text()
    );
}

#[test]
fn dropping_the_scheduler_unwinds_suspended_coroutines() {
    setup();
    struct Flag(Rc<Cell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let dropped = Rc::new(Cell::new(false));
    let d = dropped.clone();
    spawn(move || {
        let _f = Flag(d);
        sleep(ms(100_000)).unwrap();
    });
    spawn(|| set_exit(0));
    event_loop();
    assert!(!dropped.get());
    sched::uninstall();
    assert!(dropped.get(), "the suspended coroutine's destructor ran");
}

#[test]
fn a_blocking_call_outside_a_coroutine_panics_with_a_clear_message() {
    setup();
    let r = std::panic::catch_unwind(|| sleep(ms(1)));
    let msg = shrapnel_core_panic_text(r.unwrap_err());
    assert!(msg.contains("outside a coroutine"), "{msg}");
}

fn shrapnel_core_panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or(p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn the_canary_catches_an_overflowing_coroutine_and_names_it() {
    let rec = setup();
    let c = Builder::new()
        .name("deep")
        .spawn(|| {
            // Simulate an overrun: clobber the word just below the usable stack, where a
            // real overflow would write first.
            let (limit, _) = current().unwrap().stack_range();
            // SAFETY: the heap stack's canary word is 16 bytes below its limit and belongs
            // to this stack's allocation.
            unsafe { ((limit - 16) as *mut usize).write_volatile(0) };
            sleep(ms(1)).ok();
        })
        .unwrap();
    let id = c.id();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(event_loop));
    let msg = shrapnel_core_panic_text(r.unwrap_err());
    assert!(
        msg.contains(&format!(
            "coroutine #{id} 'deep' overflowed its stack (64 KiB)"
        )),
        "{msg}"
    );
    assert!(
        rec.text()
            .contains(&format!("coroutine #{id} 'deep' overflowed its stack")),
        "{}",
        rec.text()
    );
    std::mem::forget(c);
}

#[test]
fn an_irq_event_wakes_its_waiter_and_keeps_the_loop_alive() {
    use shrapnel_core::irq_event::IrqEvent;
    static EVENT: IrqEvent = IrqEvent::new();
    setup();
    let waiter = spawn(|| {
        EVENT.wait().unwrap();
        "woken"
    });
    // An "interrupt" from another thread, after the loop has gone idle with nothing
    // but the irq wait left.
    let t = std::thread::spawn(|| {
        std::thread::sleep(ms(30));
        EVENT.signal();
    });
    assert_eq!(event_loop(), 0);
    t.join().unwrap();
    assert_eq!(waiter.join(), Ok("woken"));
    // A signal with nobody waiting is kept for the next wait.
    EVENT.signal();
    let again = spawn(|| EVENT.wait());
    event_loop();
    assert_eq!(again.join(), Ok(Ok(())));
}

/// Stacks from the heap until `left` reaches zero, then the error a real limit gives.
struct LimitedStacks(std::cell::Cell<usize>);

impl shrapnel_core::stack::StackAllocator for LimitedStacks {
    fn allocate(
        &self,
        size: usize,
    ) -> Result<shrapnel_core::stack::BoxedStack, shrapnel_core::stack::StackError> {
        match self.0.get() {
            0 => Err(shrapnel_core::stack::StackError::Exhausted {
                requested: size,
                detail: "the test's limit of stacks was reached",
                errno: 12,
            }),
            n => {
                self.0.set(n - 1);
                shrapnel_core::stack::HeapStackAllocator.allocate(size)
            }
        }
    }
}

#[test]
fn spawn_at_a_stack_limit_returns_a_dead_coroutine_whose_join_says_why() {
    let rec = setup();
    sched::uninstall();
    sched::install(sched::Config {
        poller: Box::new(shrapnel_core::poller::NullPoller::new(ThreadSleep)),
        clock: Box::new(StdClock(std::time::Instant::now())),
        stacks: Box::new(LimitedStacks(Cell::new(2))),
        sink: Box::new(rec.clone()),
        default_stack_size: 64 * 1024,
    })
    .unwrap();
    let ran = Rc::new(Cell::new(0));
    let r = ran.clone();
    let acceptor = spawn(move || {
        // An accept loop spawning a handler per connection: past the limit it keeps going.
        let mut failed = 0;
        for _ in 0..50 {
            let r = r.clone();
            let c = spawn(move || r.set(r.get() + 1));
            if let Err(JoinError::NotSpawned { error, .. }) = c.join() {
                assert!(error.to_string().contains("limit of stacks"), "{error}");
                failed += 1;
            }
        }
        failed
    });
    event_loop();
    // One stack for the acceptor, one for the first handler, then none.
    assert_eq!(
        acceptor.join(),
        Ok(49),
        "every later spawn failed, and the loop went on"
    );
    assert_eq!(ran.get(), 1);
    let text = rec.text();
    assert_eq!(text.matches("spawn at").count(), 1, "rate-limited: {text}");
    assert!(
        text.contains("semantics.rs") && text.contains("was not created"),
        "{text}"
    );
    sched::uninstall();
}

/// A clock the test moves by hand.
#[derive(Clone, Default)]
struct HandClock(Rc<Cell<u64>>);

impl shrapnel_core::clock::Clock for HandClock {
    fn now(&self) -> u64 {
        self.0.get()
    }
    fn ticks_per_second(&self) -> u64 {
        1_000_000_000
    }
}

#[test]
fn panic_reports_are_rate_limited_and_summarized() {
    let rec = setup();
    sched::uninstall();
    let clock = HandClock::default();
    sched::install(sched::Config {
        poller: Box::new(shrapnel_core::poller::NullPoller::new(ThreadSleep)),
        clock: Box::new(clock.clone()),
        stacks: Box::new(shrapnel_core::stack::HeapStackAllocator),
        sink: Box::new(rec.clone()),
        default_stack_size: 64 * 1024,
    })
    .unwrap();
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for i in 0..1000 {
        spawn(move || panic!("boom {i}"));
    }
    event_loop();
    let text = rec.text();
    assert_eq!(text.matches("error boom").count(), 10, "{text}");
    assert!(text.contains("error boom 0") && text.contains("error boom 9"));
    // The next window: its first report says how many the last one suppressed.
    clock.0.set(clock.0.get() + 11_000_000_000);
    let late = spawn(|| panic!("late"));
    event_loop();
    std::panic::set_hook(quiet);
    assert!(matches!(late.join(), Err(JoinError::Panicked { .. })));
    let text = rec.text();
    assert!(
        text.contains("… and 990 more panics in the last 10 s"),
        "{text}"
    );
    assert!(text.contains("error late"), "{text}");
    sched::uninstall();
}

#[test]
fn a_loop_that_ends_with_coroutines_blocked_forever_names_them() {
    let rec = setup();
    let a = std::rc::Rc::new(shrapnel_core::sync::Mutex::new(()));
    let b = std::rc::Rc::new(shrapnel_core::sync::Mutex::new(()));
    for (name, first, second) in [("left", a.clone(), b.clone()), ("right", b, a)] {
        shrapnel_core::Builder::new()
            .name(name)
            .spawn(move || {
                let _one = first.lock().unwrap();
                shrapnel_core::sched::yield_slice();
                let _two = second.lock(); // each waits for the other's first lock
            })
            .unwrap();
    }
    assert_eq!(shrapnel_core::sched::event_loop(), 0);
    let text = rec.text();
    assert!(text.contains("2 coroutines are blocked forever"), "{text}");
    assert!(text.contains("'left' blocked: mutex"), "{text}");
    assert!(text.contains("'right' blocked: mutex"), "{text}");
}

#[test]
fn a_loop_that_ends_because_all_finished_says_nothing() {
    let rec = setup();
    shrapnel_core::spawn(|| 1 + 1);
    assert_eq!(shrapnel_core::sched::event_loop(), 0);
    assert!(!rec.text().contains("blocked forever"), "{}", rec.text());
}
