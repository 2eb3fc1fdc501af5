//! Interruption of a coroutine that was woken but has not run yet (Shrapnel's `force`):
//! it is resumed with the interruption instead of the wake, and whatever the wake handed
//! it (a lock, permits, an item, a value) passes on to the next waiter.
//!
//! Needs nothing from an OS (`no_std` + `alloc`): `tests/interrupt.rs` runs it on the host, the
//! bare-metal suite runners (`--bin suites` of `examples/cortex-m` and `examples/riscv`)
//! in QEMU.

use alloc::boxed::Box;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;

use crate::support::*;
use shrapnel_core::sched::{event_loop, sleep_until, yield_slice};
use shrapnel_core::sync::*;
use shrapnel_core::*;

#[cfg_attr(test, test)]
pub fn sleepers_due_together_the_first_interrupts_the_second() {
    setup();
    let when = sched::instant_after(sched::now(), ms(5));
    let other: Rc<RefCell<Option<CoroRef>>> = Rc::default();
    let o = other.clone();
    let first = spawn(move || {
        sleep_until(when).unwrap();
        let target = o.borrow().clone().unwrap();
        assert!(target.scheduled(), "both timers fired in one pass");
        target.interrupt(7)
    });
    let second = spawn(move || sleep_until(when));
    *other.borrow_mut() = Some(second.handle());
    event_loop();
    assert_eq!(first.join(), Ok(true));
    assert_eq!(second.join().unwrap(), Err(Interrupted::Interrupt(7)));
}

/// Spawn `n` waiters that each run `wait` once and log `Ok`/`Err`, let them block, then
/// run `release` and shut down the first `interrupted` of them before any runs (or, with
/// `interrupt_first`, shut them down first and release afterwards).
fn five_of_six(
    interrupt_first: bool,
    wait: impl Fn(usize) -> Result<(), Interrupted> + Clone + 'static,
    release: impl FnOnce() + 'static,
) -> Vec<String> {
    let log = Log::default();
    let mut waiters = Vec::new();
    for i in 0..6 {
        let (wait, log) = (wait.clone(), log.clone());
        waiters.push(spawn(move || {
            let r = wait(i);
            log.push(format!("{i}:{}", if r.is_ok() { "ok" } else { "err" }));
        }));
    }
    let handles: Vec<CoroRef> = waiters.iter().map(|c| c.handle()).collect();
    spawn(move || {
        yield_slice(); // every waiter has blocked
        for h in &handles {
            assert_eq!(h.state(), State::Blocked, "#{} blocked", h.id());
        }
        if interrupt_first {
            for h in &handles[..5] {
                assert!(h.shutdown());
            }
            release();
        } else {
            release();
            for h in &handles[..5] {
                assert!(h.shutdown());
            }
        }
    });
    event_loop();
    let mut got = log.get();
    got.sort();
    got
}

fn only_the_sixth() -> Vec<String> {
    ["0:err", "1:err", "2:err", "3:err", "4:err", "5:ok"]
        .map(String::from)
        .to_vec()
}

#[cfg_attr(test, test)]
pub fn mutex_handed_to_an_interrupted_waiter_passes_on() {
    // The release hands the lock to waiter 0, which is shut down before it runs; the lock
    // must reach waiter 5.
    for interrupt_first in [false, true] {
        setup();
        let guard_cell: Rc<RefCell<Option<MutexGuard<'static, ()>>>> = Rc::default();
        let leaked: &'static Mutex<()> = Box::leak(Box::new(Mutex::new(())));
        let gc = guard_cell.clone();
        spawn(move || *gc.borrow_mut() = Some(leaked.lock().unwrap()));
        event_loop();
        assert!(leaked.is_locked());
        let got = five_of_six(
            interrupt_first,
            move |_| leaked.lock().map(drop),
            move || drop(guard_cell.borrow_mut().take()),
        );
        assert_eq!(got, only_the_sixth(), "interrupt_first={interrupt_first}");
        assert!(!leaked.is_locked(), "nothing leaked");
    }
}

#[cfg_attr(test, test)]
pub fn semaphore_permit_handed_to_an_interrupted_waiter_passes_on() {
    for interrupt_first in [false, true] {
        setup();
        let s: &'static Semaphore = Box::leak(Box::new(Semaphore::new(0)));
        let got = five_of_six(
            interrupt_first,
            move |_| s.acquire(1).map(SemaphoreGuard::forget),
            move || s.release(1),
        );
        assert_eq!(got, only_the_sixth(), "interrupt_first={interrupt_first}");
        assert_eq!(s.available(), 0, "the one permit went to the sixth");
        s.release(1);
        assert_eq!(s.available(), 1);
    }
}

#[cfg_attr(test, test)]
pub fn semaphore_release_of_many_then_shutdown() {
    setup();
    let s: &'static Semaphore = Box::leak(Box::new(Semaphore::new(0)));
    // Six permits: every waiter gets one; five are shut down before they run and give
    // theirs back.
    let got = five_of_six(false, move |_| s.acquire(1).map(drop), move || s.release(6));
    assert_eq!(got, only_the_sixth());
    assert_eq!(s.available(), 6, "every permit came back");
}

#[cfg_attr(test, test)]
pub fn inverted_semaphore_waiters_shut_down_after_zero() {
    for interrupt_first in [false, true] {
        setup();
        let s: &'static InvertedSemaphore = Box::leak(Box::new(InvertedSemaphore::new()));
        s.acquire(1);
        let got = five_of_six(
            interrupt_first,
            move |_| s.block_till_zero(),
            move || s.release(1),
        );
        assert_eq!(got, only_the_sixth(), "interrupt_first={interrupt_first}");
    }
}

#[cfg_attr(test, test)]
pub fn condvar_wake_all_then_shutdown_of_five() {
    for interrupt_first in [false, true] {
        setup();
        let c: &'static Condvar<u32> = Box::leak(Box::new(Condvar::new()));
        let got = five_of_six(
            interrupt_first,
            move |_| c.wait().map(|v| assert_eq!(v, 9)),
            move || {
                c.wake_all(9);
            },
        );
        assert_eq!(got, only_the_sixth(), "interrupt_first={interrupt_first}");
        assert!(!c.has_waiters());
    }
}

#[cfg_attr(test, test)]
pub fn condvar_wake_one_to_an_interrupted_waiter_passes_on() {
    setup();
    let c: &'static Condvar<u32> = Box::leak(Box::new(Condvar::new()));
    let a = spawn(move || c.wait());
    let b = spawn(move || c.wait());
    let ha = a.handle();
    spawn(move || {
        yield_slice();
        assert!(c.wake_one(4));
        assert!(ha.scheduled());
        assert!(ha.interrupt(1));
    });
    event_loop();
    assert_eq!(a.join().unwrap(), Err(Interrupted::Interrupt(1)));
    assert_eq!(
        b.join().unwrap(),
        Ok(4),
        "the wake passed on to the next waiter"
    );
}

#[cfg_attr(test, test)]
pub fn fifo_item_handed_to_an_interrupted_waiter_passes_on() {
    for interrupt_first in [false, true] {
        setup();
        let f: &'static Fifo<u32> = Box::leak(Box::new(Fifo::new()));
        let got = five_of_six(
            interrupt_first,
            move |_| f.pop().map(|v| assert_eq!(v, 1)),
            move || f.push(1),
        );
        assert_eq!(got, only_the_sixth(), "interrupt_first={interrupt_first}");
        assert!(f.is_empty());
    }
}

#[cfg_attr(test, test)]
pub fn fifo_items_handed_to_interrupted_waiters_are_not_lost() {
    setup();
    let f: &'static Fifo<u32> = Box::leak(Box::new(Fifo::new()));
    let got = five_of_six(
        false,
        move |_| f.pop().map(drop),
        move || {
            f.push(1);
            f.push(2);
        },
    );
    assert_eq!(got, only_the_sixth());
    assert_eq!(
        f.len(),
        1,
        "one item went to the sixth, the other stays queued"
    );
    assert_eq!(f.try_pop(), Some(2));
}

#[cfg_attr(test, test)]
pub fn rwlock_read_and_write_handed_to_interrupted_waiters_pass_on() {
    for write in [false, true] {
        for interrupt_first in [false, true] {
            setup();
            let l: &'static RwLock<()> = Box::leak(Box::new(RwLock::new(())));
            let held: Rc<RefCell<Option<RwLockWriteGuard<'static, ()>>>> = Rc::default();
            let h = held.clone();
            spawn(move || *h.borrow_mut() = Some(l.write().unwrap()));
            event_loop();
            let got = five_of_six(
                interrupt_first,
                move |_| {
                    if write {
                        l.write().map(drop)
                    } else {
                        l.read().map(drop)
                    }
                },
                move || drop(held.borrow_mut().take()),
            );
            assert_eq!(
                got,
                only_the_sixth(),
                "write={write} interrupt_first={interrupt_first}"
            );
            assert!(!l.is_write_locked() && l.readers() == 0, "nothing leaked");
        }
    }
}

#[cfg_attr(test, test)]
pub fn timeout_of_a_woken_coroutine_wins_over_the_wake() {
    // The deadline and the wake-up land in the same pass: Shrapnel resumes the coroutine
    // with the timeout; the item it was handed stays in the fifo.
    setup();
    let f: &'static Fifo<u32> = Box::leak(Box::new(Fifo::new()));
    let when = sched::instant_after(sched::now(), ms(5));
    let popper = spawn(move || sched::with_timeout(ms(5), || f.pop()));
    spawn(move || {
        sleep_until(when).unwrap();
        f.push(3);
    });
    event_loop();
    match popper.join().unwrap() {
        // The timeout fired first in the pass: the item was never handed.
        Err(Timeout) => assert_eq!(f.try_pop(), Some(3), "the item is not lost"),
        Ok(r) => assert_eq!(r, Ok(3)),
    }
}

#[cfg_attr(test, test)]
pub fn a_deadline_that_finds_another_interruption_pending_is_not_lost() {
    setup();
    let c = spawn(|| {
        sched::with_timeout(ms(5), || {
            current().unwrap().interrupt(1);
            // Ready (yielding) with the interrupt pending when the deadline passes.
            let start = sched::now();
            while sched::duration_between(start, sched::now()) < ms(20) {
                yield_slice();
            }
            let first = sched::sleep(ms(2_000));
            let second = sched::sleep(ms(2_000));
            (first, second)
        })
    });
    event_loop();
    assert_eq!(c.join().unwrap(), Err(Timeout));
}

#[cfg_attr(test, test)]
pub fn interruptions_pending_together_each_reach_a_blocking_call() {
    setup();
    let c = spawn(|| {
        let me = current().unwrap();
        me.interrupt(1);
        me.shutdown();
        me.interrupt(1); // already queued: once is enough
        (
            sched::sleep(ms(2_000)),
            sched::sleep(ms(2_000)),
            sched::sleep(ms(1)),
        )
    });
    event_loop();
    assert_eq!(
        c.join().unwrap(),
        (
            Err(Interrupted::Interrupt(1)),
            Err(Interrupted::Shutdown),
            Ok(())
        ),
        "each interruption reaches one blocking call, in order"
    );
}
