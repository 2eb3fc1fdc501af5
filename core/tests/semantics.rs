//! Shrapnel's scheduling semantics, ported: ordering, passes, timeouts, interruption,
//! joins and panics.

mod support;

use std::cell::Cell;
use std::rc::Rc;

use shrapnel_core::sched::{self, event_loop, set_exit, sleep, with_timeout, yield_slice};
use shrapnel_core::*;
use support::*;

#[test]
fn hello_spawn_sleep_join() {
    setup();
    let c = spawn(|| {
        sleep(ms(5)).unwrap();
        42
    });
    let j = spawn(move || c.join().unwrap() + 1);
    assert_eq!(event_loop(), 0);
    assert_eq!(j.join(), Ok(43));
}

#[test]
fn sleepers_wake_in_deadline_order() {
    setup();
    let log = Log::default();
    for (name, d) in [("c", 30), ("a", 10), ("b", 20), ("a2", 10)] {
        let log = log.clone();
        spawn(move || {
            sleep(ms(d)).unwrap();
            log.push(name);
        });
    }
    event_loop();
    assert_eq!(log.get(), ["a", "a2", "b", "c"]);
}

#[test]
fn sleep_does_not_end_early() {
    setup();
    let c = spawn(|| {
        let t0 = std::time::Instant::now();
        sleep(ms(30)).unwrap();
        t0.elapsed()
    });
    event_loop();
    assert!(c.join().unwrap() >= ms(30));
}

#[test]
fn yield_lets_every_other_ready_coroutine_run_first() {
    setup();
    let log = Log::default();
    for name in ["a", "b", "c"] {
        let log = log.clone();
        spawn(move || {
            for i in 0..3 {
                log.push(format!("{name}{i}"));
                yield_slice();
            }
        });
    }
    event_loop();
    assert_eq!(
        log.get(),
        ["a0", "b0", "c0", "a1", "b1", "c1", "a2", "b2", "c2"]
    );
}

#[test]
fn spawned_during_a_pass_runs_in_the_next_pass() {
    setup();
    let log = Log::default();
    let l = log.clone();
    spawn(move || {
        l.push("first");
        let l2 = l.clone();
        spawn(move || l2.push("child"));
        l.push("first-end");
    });
    let l = log.clone();
    spawn(move || l.push("second"));
    event_loop();
    assert_eq!(log.get(), ["first", "first-end", "second", "child"]);
}

#[test]
fn ids_are_unique_increasing_and_names_default() {
    setup();
    let a = spawn(|| ());
    let b = Builder::new().name("worker").spawn(|| ()).unwrap();
    assert!(b.id() > a.id());
    assert_eq!(a.name(), format!("coro-{}", a.id()));
    assert_eq!(b.name(), "worker");
    b.set_name("renamed");
    assert_eq!(b.name(), "renamed");
    event_loop();
    let c = spawn(|| ());
    assert!(c.id() > b.id(), "ids are never reused");
    event_loop();
}

#[test]
fn states_and_registry() {
    setup();
    let c = new(|| sleep(ms(50)));
    assert_eq!(c.state(), State::NotStarted);
    assert_eq!(c.wait_reason(), WaitReason::NotStarted);
    assert!(!c.started() && !c.scheduled() && !c.dead());
    assert_eq!(live_coros().len(), 1);
    assert!(coro_by_id(c.id()).is_some());
    c.start().unwrap();
    assert!(c.scheduled());
    assert!(c.start().is_err(), "a second start is an error");
    let h = c.handle();
    spawn(move || {
        // c is sleeping now
        assert_eq!(h.state(), State::Blocked);
        assert!(matches!(h.wait_reason(), WaitReason::Sleep(_)));
        assert!(h.started());
        assert_eq!(current().unwrap().state(), State::Running);
    });
    event_loop();
    assert!(c.dead());
    assert!(coro_by_id(c.id()).is_none());
    assert!(live_coros().is_empty());
}

#[test]
fn set_exit_ends_the_loop_with_the_code() {
    setup();
    spawn(|| {
        sleep(ms(1)).unwrap();
        set_exit(7);
    });
    spawn(|| sleep(ms(10_000)));
    assert_eq!(event_loop(), 7);
    sched::uninstall();
}

#[test]
fn with_timeout_fires() {
    setup();
    let c = spawn(|| with_timeout(ms(10), || sleep(ms(1000))));
    event_loop();
    assert_eq!(c.join().unwrap(), Err(Timeout));
}

#[test]
fn with_timeout_passes_through_the_value() {
    setup();
    let c = spawn(|| with_timeout(ms(100), || sleep(ms(1)).map(|_| 5)));
    event_loop();
    assert_eq!(c.join().unwrap(), Ok(Ok(5)));
}

#[test]
fn nested_timeout_inner_fires() {
    setup();
    let c = spawn(|| {
        with_timeout(ms(500), || {
            let inner = with_timeout(ms(10), || sleep(ms(1000)));
            assert_eq!(inner, Err(Timeout));
            sleep(ms(1)).map(|_| "outer finished")
        })
    });
    event_loop();
    assert_eq!(c.join().unwrap(), Ok(Ok("outer finished")));
}

#[test]
fn nested_timeout_outer_fires_and_inner_passes_it_on() {
    setup();
    let seen = Rc::new(Cell::new(None));
    let s2 = seen.clone();
    let c = spawn(move || {
        with_timeout(ms(10), || {
            let inner = with_timeout(ms(500), || sleep(ms(1000)));
            // The inner call did not time out: it hands back the interruption it saw.
            s2.set(Some(inner));
            inner
        })
    });
    event_loop();
    assert_eq!(c.join().unwrap(), Err(Timeout));
    match seen.get() {
        Some(Ok(Err(Interrupted::Timeout(_)))) => {}
        other => panic!("inner should pass the outer timeout on as Interrupted, got {other:?}"),
    }
}

#[test]
fn nested_timeout_equal_deadlines_belong_to_the_outer() {
    setup();
    let seen = Rc::new(Cell::new(None));
    let s2 = seen.clone();
    let c = spawn(move || {
        with_timeout(ms(20), || {
            let inner = with_timeout(ms(20), || sleep(ms(1000)));
            s2.set(Some(inner));
        })
    });
    event_loop();
    assert_eq!(c.join().unwrap(), Err(Timeout));
    assert!(
        matches!(seen.get(), Some(Ok(Err(Interrupted::Timeout(_))))),
        "{:?}",
        seen.get()
    );
}

#[test]
fn interrupt_a_sleeper() {
    setup();
    let sleeper = spawn(|| sleep(ms(10_000)));
    let h = sleeper.handle();
    spawn(move || {
        sleep(ms(5)).unwrap();
        assert!(h.interrupt(99));
    });
    event_loop();
    assert_eq!(sleeper.join().unwrap(), Err(Interrupted::Interrupt(99)));
    assert_eq!(
        sched::timers_pending(),
        0,
        "the sleep's timer was cancelled"
    );
}

#[test]
fn interrupt_not_started_cancels_it() {
    setup();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let c = new(move || r.set(true));
    assert!(c.shutdown());
    assert!(c.dead());
    let s = spawn(move || {
        r2_ignore();
    });
    fn r2_ignore() {}
    let c2 = spawn(|| 1);
    assert!(c2.interrupt(1), "scheduled but not started: cancelled");
    event_loop();
    assert!(!ran.get());
    assert_eq!(c.join(), Err(JoinError::Cancelled { id: c.id() }));
    assert_eq!(c2.join(), Err(JoinError::Cancelled { id: c2.id() }));
    assert_eq!(s.join(), Ok(()));
}

#[test]
fn shutdown_and_wake_up() {
    setup();
    let a = spawn(|| sleep(ms(10_000)));
    let b = spawn(|| sleep(ms(10_000)));
    let (ha, hb) = (a.handle(), b.handle());
    spawn(move || {
        yield_slice();
        ha.shutdown();
        hb.wake_up();
    });
    event_loop();
    assert_eq!(a.join().unwrap(), Err(Interrupted::Shutdown));
    assert_eq!(b.join().unwrap(), Err(Interrupted::WakeUp));
}

#[test]
fn interrupt_of_a_yielded_coroutine_hits_its_next_blocking_call() {
    setup();
    let log = Log::default();
    let l = log.clone();
    let target = spawn(move || {
        yield_slice(); // scheduled (not blocked) when the interrupt comes
        l.push("after-yield");
        let r = sleep(ms(10_000));
        l.push(format!("{r:?}"));
    });
    let h = target.handle();
    let l = log.clone();
    spawn(move || {
        assert!(h.scheduled());
        h.interrupt(3);
        l.push("interrupted");
    });
    event_loop();
    assert_eq!(
        log.get(),
        ["interrupted", "after-yield", "Err(Interrupt(3))"]
    );
}

#[test]
fn self_interrupt_hits_the_next_blocking_call() {
    setup();
    let c = spawn(|| {
        current().unwrap().interrupt(5);
        yield_slice(); // yielding is not a wait: the interrupt stays pending
        sleep(ms(1000))
    });
    event_loop();
    assert_eq!(c.join().unwrap(), Err(Interrupted::Interrupt(5)));
}

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
fn join_on_self_is_an_error() {
    setup();
    let c = spawn(|| current().unwrap().wait_dead());
    event_loop();
    let id = c.id();
    assert_eq!(c.join().unwrap(), Err(JoinError::SelfJoin { id }));
}

#[test]
fn join_twice_is_an_error_and_join_can_be_interrupted() {
    setup();
    let slow = spawn(|| sleep(ms(10_000)));
    let h = slow.handle();
    let joiner = spawn(move || with_timeout(ms(5), || h.wait_dead()));
    let quick = spawn(|| 1);
    event_loop_until_quiet(&joiner);
    assert_eq!(joiner.join().unwrap(), Err(Timeout));
    assert_eq!(quick.join(), Ok(1));
    assert_eq!(
        quick.join(),
        Err(JoinError::AlreadyJoined { id: quick.id() })
    );
    slow.shutdown();
    event_loop();
}

fn event_loop_until_quiet<T>(c: &Coro<T>) {
    let h = c.handle();
    spawn(move || {
        h.wait_dead().unwrap();
        set_exit(0);
    });
    event_loop();
}

#[test]
fn stack_below_minimum_is_a_typed_error() {
    setup();
    let e = Builder::new().stack_size(1024).spawn(|| ()).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("below the minimum"), "{msg}");
}

#[test]
fn selfishness_zero_is_refused() {
    setup();
    let e = sched::set_selfishness(0).unwrap_err();
    assert!(e.to_string().contains("at least 1"));
    assert_eq!(sched::set_selfishness(2), Ok(4));
    let c = spawn(|| ());
    assert!(c.set_max_selfish_acts(0).is_err());
    event_loop();
}

#[test]
fn selfish_acts_force_a_yield() {
    setup();
    let log = Log::default();
    let l = log.clone();
    let a = spawn(move || {
        for i in 0..4 {
            l.push(format!("a{i}"));
            selfish_act();
        }
    });
    a.set_max_selfish_acts(2).unwrap();
    let l = log.clone();
    spawn(move || l.push("b"));
    event_loop();
    assert_eq!(log.get(), ["a0", "a1", "b", "a2", "a3"]);
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
fn many_coroutines() {
    setup();
    let sum = Rc::new(Cell::new(0u64));
    for i in 0..2000u64 {
        let s = sum.clone();
        spawn(move || {
            yield_slice();
            s.set(s.get() + i);
        });
    }
    event_loop();
    assert_eq!(sum.get(), (0..2000).sum());
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

#[test]
fn an_unstarted_coroutine_whose_handles_are_dropped_is_freed() {
    setup();
    let captured = Rc::new(());
    for _ in 0..10_000 {
        let c = captured.clone();
        drop(new(move || drop(c)));
    }
    assert_eq!(live_coros().len(), 0, "never started = never existed");
    assert_eq!(Rc::strong_count(&captured), 1, "the closures were dropped");
    // A handle kept (or cloned) keeps it; the last one going frees it.
    let kept = new(|| 5);
    let clone = kept.handle();
    drop(kept);
    assert_eq!(live_coros().len(), 1);
    assert_eq!(clone.state(), State::NotStarted);
    clone.start().unwrap();
    drop(clone);
    assert_eq!(
        live_coros().len(),
        1,
        "started: it runs even with no handle"
    );
    event_loop();
    assert_eq!(live_coros().len(), 0);
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
