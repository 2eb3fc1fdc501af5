//! Shrapnel's scheduling semantics that need nothing from an OS: ordering, passes,
//! timeouts, interruption and joins. `tests/semantics.rs` runs them on the host (with the
//! tests that need threads, unwinding or the hosted reports); the bare-metal suite runners
//! (`examples/cortex-m`, `examples/riscv`: `--bin suites`) run them in QEMU. Written for
//! `no_std` + `alloc`: the host's and the boards' `support` modules give `setup`, `ms`,
//! `Log` and `MANY`.

use alloc::format;
use alloc::rc::Rc;
use alloc::string::ToString;
use core::cell::Cell;

use shrapnel_core::sched::{self, event_loop, set_exit, sleep, with_timeout, yield_slice};
use shrapnel_core::*;

use crate::support::*;

#[cfg_attr(test, test)]
pub fn hello_spawn_sleep_join() {
    setup();
    let c = spawn(|| {
        sleep(ms(5)).unwrap();
        42
    });
    let j = spawn(move || c.join().unwrap() + 1);
    assert_eq!(event_loop(), 0);
    assert_eq!(j.join(), Ok(43));
}

#[cfg_attr(test, test)]
pub fn sleepers_wake_in_deadline_order() {
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

#[cfg_attr(test, test)]
pub fn sleep_does_not_end_early() {
    setup();
    let c = spawn(|| {
        let t0 = sched::now();
        sleep(ms(30)).unwrap();
        sched::duration_between(t0, sched::now())
    });
    event_loop();
    assert!(c.join().unwrap() >= ms(30));
}

#[cfg_attr(test, test)]
pub fn yield_lets_every_other_ready_coroutine_run_first() {
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

#[cfg_attr(test, test)]
pub fn spawned_during_a_pass_runs_in_the_next_pass() {
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

#[cfg_attr(test, test)]
pub fn ids_are_unique_increasing_and_names_default() {
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

#[cfg_attr(test, test)]
pub fn states_and_registry() {
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

#[cfg_attr(test, test)]
pub fn set_exit_ends_the_loop_with_the_code() {
    setup();
    spawn(|| {
        sleep(ms(1)).unwrap();
        set_exit(7);
    });
    spawn(|| sleep(ms(10_000)));
    assert_eq!(event_loop(), 7);
    sched::uninstall();
}

#[cfg_attr(test, test)]
pub fn with_timeout_fires() {
    setup();
    let c = spawn(|| with_timeout(ms(10), || sleep(ms(1000))));
    event_loop();
    assert_eq!(c.join().unwrap(), Err(Timeout));
}

#[cfg_attr(test, test)]
pub fn with_timeout_passes_through_the_value() {
    setup();
    let c = spawn(|| with_timeout(ms(100), || sleep(ms(1)).map(|_| 5)));
    event_loop();
    assert_eq!(c.join().unwrap(), Ok(Ok(5)));
}

#[cfg_attr(test, test)]
pub fn nested_timeout_inner_fires() {
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

#[cfg_attr(test, test)]
pub fn nested_timeout_outer_fires_and_inner_passes_it_on() {
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

#[cfg_attr(test, test)]
pub fn nested_timeout_equal_deadlines_belong_to_the_outer() {
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

#[cfg_attr(test, test)]
pub fn interrupt_a_sleeper() {
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

#[cfg_attr(test, test)]
pub fn interrupt_not_started_cancels_it() {
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

#[cfg_attr(test, test)]
pub fn shutdown_and_wake_up() {
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

#[cfg_attr(test, test)]
pub fn interrupt_of_a_yielded_coroutine_hits_its_next_blocking_call() {
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

#[cfg_attr(test, test)]
pub fn self_interrupt_hits_the_next_blocking_call() {
    setup();
    let c = spawn(|| {
        current().unwrap().interrupt(5);
        yield_slice(); // yielding is not a wait: the interrupt stays pending
        sleep(ms(1000))
    });
    event_loop();
    assert_eq!(c.join().unwrap(), Err(Interrupted::Interrupt(5)));
}

#[cfg_attr(test, test)]
pub fn join_on_self_is_an_error() {
    setup();
    let c = spawn(|| current().unwrap().wait_dead());
    event_loop();
    let id = c.id();
    assert_eq!(c.join().unwrap(), Err(JoinError::SelfJoin { id }));
}

#[cfg_attr(test, test)]
pub fn join_twice_is_an_error_and_join_can_be_interrupted() {
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

#[cfg_attr(test, test)]
pub fn stack_below_minimum_is_a_typed_error() {
    setup();
    let e = Builder::new().stack_size(1024).spawn(|| ()).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("below the minimum"), "{msg}");
}

#[cfg_attr(test, test)]
pub fn selfishness_zero_is_refused() {
    setup();
    let e = sched::set_selfishness(0).unwrap_err();
    assert!(e.to_string().contains("at least 1"));
    assert_eq!(sched::set_selfishness(2), Ok(4));
    let c = spawn(|| ());
    assert!(c.set_max_selfish_acts(0).is_err());
    event_loop();
}

#[cfg_attr(test, test)]
pub fn selfish_acts_force_a_yield() {
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

#[cfg_attr(test, test)]
pub fn many_coroutines() {
    setup();
    let sum = Rc::new(Cell::new(0u64));
    for i in 0..MANY {
        let s = sum.clone();
        spawn(move || {
            yield_slice();
            s.set(s.get() + i);
        });
    }
    event_loop();
    assert_eq!(sum.get(), (0..MANY).sum());
}

#[cfg_attr(test, test)]
pub fn an_unstarted_coroutine_whose_handles_are_dropped_is_freed() {
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
