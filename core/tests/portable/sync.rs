//! The sync primitives: recursion, FIFO hand-off, interruption without lost wake-ups.
//!
//! Needs nothing from an OS (`no_std` + `alloc`): `tests/sync.rs` runs it on the host, the
//! bare-metal suite runners (`--bin suites` of `examples/cortex-m` and `examples/riscv`)
//! in QEMU.

use alloc::format;
use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use crate::support::*;
use shrapnel_core::sched::{event_loop, sleep, with_timeout, yield_slice};
use shrapnel_core::sync::*;
use shrapnel_core::*;

#[cfg_attr(test, test)]
pub fn mutex_is_recursive_for_its_owner() {
    setup();
    let m = Rc::new(Mutex::new(RefCell::new(0)));
    let m2 = m.clone();
    let c = spawn(move || {
        let g1 = m2.lock().unwrap();
        let g2 = m2.lock().unwrap();
        *g2.borrow_mut() += 1;
        drop(g2);
        assert!(m2.is_locked(), "still held once");
        drop(g1);
        assert!(!m2.is_locked());
        *m2.lock().unwrap().borrow()
    });
    event_loop();
    assert_eq!(c.join(), Ok(1));
}

#[cfg_attr(test, test)]
pub fn mutex_hands_off_in_fifo_order() {
    setup();
    let m = Rc::new(Mutex::new(()));
    let log = Log::default();
    for name in ["a", "b", "c", "d"] {
        let (m, log) = (m.clone(), log.clone());
        spawn(move || {
            let _g = m.lock().unwrap();
            log.push(format!("{name}+"));
            sleep(ms(2)).unwrap();
            log.push(format!("{name}-"));
        });
    }
    event_loop();
    assert_eq!(log.get(), ["a+", "a-", "b+", "b-", "c+", "c-", "d+", "d-"]);
}

#[cfg_attr(test, test)]
pub fn mutex_waiter_interrupted_while_waiting_does_not_lose_the_lock() {
    setup();
    let m = Rc::new(Mutex::new(()));
    let log = Log::default();
    let (m1, l1) = (m.clone(), log.clone());
    spawn(move || {
        let _g = m1.lock().unwrap();
        sleep(ms(20)).unwrap();
        l1.push("holder done");
    });
    let (m2, l2) = (m.clone(), log.clone());
    spawn(move || {
        let r = with_timeout(ms(5), || m2.lock().map(|_| ()));
        l2.push(format!("waiter: {r:?}"));
    });
    let (m3, l3) = (m.clone(), log.clone());
    spawn(move || {
        let _g = m3.lock().unwrap();
        l3.push("third got it");
    });
    event_loop();
    assert_eq!(
        log.get(),
        ["waiter: Err(Timeout)", "holder done", "third got it"]
    );
    assert!(!m.is_locked());
}

#[cfg_attr(test, test)]
pub fn mutex_waiter_interrupted_right_after_hand_off_passes_it_on() {
    // The holder releases; the lock is handed to W (now scheduled). Before W runs, W is
    // interrupted. Shrapnel semantics (`force`): W is resumed with the interrupt instead,
    // its `lock` returns it, and the lock it was handed passes on to X.
    setup();
    let m = Rc::new(Mutex::new(()));
    let log = Log::default();
    let (m1, l1) = (m.clone(), log.clone());
    let w_handle: Rc<RefCell<Option<CoroRef>>> = Rc::default();
    let wh = w_handle.clone();
    spawn(move || {
        let g = m1.lock().unwrap();
        sleep(ms(5)).unwrap();
        drop(g); // hands off to W
        let w = wh.borrow().clone().unwrap();
        assert!(w.scheduled());
        w.interrupt(1);
        l1.push("released+interrupted W");
    });
    let (m2, l2) = (m.clone(), log.clone());
    let w = spawn(move || match m2.lock() {
        Ok(_) => l2.push("W has lock"),
        Err(e) => l2.push(format!("W lock: {e:?}")),
    });
    *w_handle.borrow_mut() = Some(w.handle());
    let (m3, l3) = (m.clone(), log.clone());
    spawn(move || {
        let _g = m3.lock().unwrap();
        l3.push("X has lock");
    });
    event_loop();
    assert_eq!(
        log.get(),
        [
            "released+interrupted W",
            "W lock: Interrupt(1)",
            "X has lock"
        ]
    );
}

#[cfg_attr(test, test)]
pub fn mutex_skips_a_waiter_interrupted_before_hand_off() {
    // W is interrupted while waiting (scheduled with the interrupt); the holder then
    // releases: the lock must go to X, not to W, which no longer wants it.
    setup();
    let m = Rc::new(Mutex::new(()));
    let log = Log::default();
    let w_handle: Rc<RefCell<Option<CoroRef>>> = Rc::default();
    let (m1, wh) = (m.clone(), w_handle.clone());
    spawn(move || {
        let g = m1.lock().unwrap();
        yield_slice();
        yield_slice();
        wh.borrow().clone().unwrap().interrupt(2);
        drop(g);
    });
    let (m2, l2) = (m.clone(), log.clone());
    let w = spawn(move || {
        let r = m2.lock().map(|_| ());
        l2.push(format!("W: {r:?}"));
    });
    *w_handle.borrow_mut() = Some(w.handle());
    let (m3, l3) = (m.clone(), log.clone());
    spawn(move || {
        let _g = m3.lock().unwrap();
        l3.push(format!("X has lock, owner ok={}", true));
    });
    event_loop();
    assert_eq!(
        log.get(),
        ["W: Err(Interrupt(2))", "X has lock, owner ok=true"]
    );
    assert!(!m.is_locked());
}

#[cfg_attr(test, test)]
pub fn semaphore_counts_and_is_fifo_fair() {
    setup();
    let s = Rc::new(Semaphore::new(3));
    let log = Log::default();
    for (name, n) in [("big", 3), ("small", 1)] {
        let (s, log) = (s.clone(), log.clone());
        spawn(move || {
            yield_slice();
            let _g = s.acquire(n).unwrap();
            log.push(format!("{name} got {n}"));
            sleep(ms(2)).unwrap();
        });
    }
    let (s2, l2) = (s.clone(), log.clone());
    spawn(move || {
        let g = s2.acquire(1).unwrap(); // holds 1 so "big" must wait for 3
        l2.push("holder got 1");
        sleep(ms(5)).unwrap();
        drop(g);
    });
    event_loop();
    // "small" could fit while "big" waits, but FIFO fairness makes it wait behind "big".
    assert_eq!(log.get(), ["holder got 1", "big got 3", "small got 1"]);
    assert_eq!(s.available(), 3);
}

#[cfg_attr(test, test)]
pub fn semaphore_wait_interruptible() {
    setup();
    let s = Rc::new(Semaphore::new(0));
    let s2 = s.clone();
    let c = spawn(move || with_timeout(ms(5), || s2.acquire(1).map(|g| g.forget())));
    event_loop();
    assert_eq!(c.join().unwrap(), Err(Timeout));
    s.release(1);
    assert_eq!(s.available(), 1, "the interrupted waiter took nothing");
}

#[cfg_attr(test, test)]
pub fn inverted_semaphore_blocks_till_zero() {
    setup();
    let inv = Rc::new(InvertedSemaphore::new());
    let log = Log::default();
    inv.acquire(2);
    for i in 0..2 {
        let (inv, log) = (inv.clone(), log.clone());
        spawn(move || {
            sleep(ms(2 + i)).unwrap();
            log.push(format!("worker {i} done"));
            inv.release(1);
        });
    }
    let (inv2, l2) = (inv.clone(), log.clone());
    spawn(move || {
        inv2.block_till_zero().unwrap();
        l2.push("all done");
    });
    event_loop();
    assert_eq!(log.get(), ["worker 0 done", "worker 1 done", "all done"]);
}

#[cfg_attr(test, test)]
pub fn condvar_wake_one_n_all_and_raise_all() {
    setup();
    let cv = Rc::new(Condvar::<u32>::new());
    let log = Log::default();
    for i in 0..5 {
        let (cv, log) = (cv.clone(), log.clone());
        spawn(move || match cv.wait() {
            Ok(v) => log.push(format!("w{i} got {v}")),
            Err(e) => log.push(format!("w{i} {e:?}")),
        });
    }
    let (cv2, l2) = (cv.clone(), log.clone());
    spawn(move || {
        assert!(cv2.wake_one(10));
        assert_eq!(cv2.wake_n(2, 20), 2);
        yield_slice();
        assert_eq!(cv2.raise_all(9), 2);
        assert!(!cv2.wake_one(0), "nobody is left");
        l2.push("waker done");
    });
    event_loop();
    assert_eq!(
        log.get(),
        [
            "w0 got 10",
            "w1 got 20",
            "w2 got 20",
            "waker done",
            "w3 Interrupt(9)",
            "w4 Interrupt(9)"
        ]
    );
}

#[cfg_attr(test, test)]
pub fn condvar_wake_skips_interrupted_waiters() {
    setup();
    let cv = Rc::new(Condvar::<()>::new());
    let log = Log::default();
    let (c1, l1) = (cv.clone(), log.clone());
    let first = spawn(move || {
        let r = c1.wait();
        l1.push(format!("first {r:?}"));
    });
    let (c2, l2) = (cv.clone(), log.clone());
    spawn(move || {
        let r = c2.wait();
        l2.push(format!("second {r:?}"));
    });
    let h = first.handle();
    let c3 = cv.clone();
    spawn(move || {
        h.shutdown();
        assert!(
            c3.wake_one(()),
            "the wake goes to the second waiter, not lost"
        );
    });
    event_loop();
    assert_eq!(log.get(), ["first Err(Shutdown)", "second Ok(())"]);
}

#[cfg_attr(test, test)]
pub fn fifo_pop_waits_and_hands_off_in_order() {
    setup();
    let f = Rc::new(Fifo::new());
    let log = Log::default();
    for name in ["p1", "p2"] {
        let (f, log) = (f.clone(), log.clone());
        spawn(move || {
            let v: u32 = f.pop().unwrap();
            log.push(format!("{name} {v}"));
        });
    }
    let f2 = f.clone();
    spawn(move || {
        f2.push(1);
        f2.push(2);
        f2.push(3);
        // A pop by this coroutine now must get 3: 1 and 2 were handed to the waiters.
        assert_eq!(f2.try_pop(), Some(3));
    });
    event_loop();
    assert_eq!(log.get(), ["p1 1", "p2 2"]);
}

#[cfg_attr(test, test)]
pub fn fifo_pop_interruptible() {
    setup();
    let f: Rc<Fifo<u8>> = Rc::new(Fifo::new());
    let f2 = f.clone();
    let c = spawn(move || with_timeout(ms(3), || f2.pop()));
    event_loop();
    assert_eq!(c.join().unwrap(), Err(Timeout));
    f.push(7);
    assert_eq!(
        f.len(),
        1,
        "the item was not handed to the timed-out waiter"
    );
}

#[cfg_attr(test, test)]
pub fn rwlock_readers_share_and_a_waiting_writer_holds_back_new_readers() {
    setup();
    let l = Rc::new(RwLock::new(Cell::new(0)));
    let log = Log::default();
    let (l1, g1) = (l.clone(), log.clone());
    spawn(move || {
        let r = l1.read().unwrap();
        g1.push(format!("r1 in ({} readers)", l1.readers()));
        sleep(ms(5)).unwrap();
        drop(r);
        g1.push("r1 out");
    });
    let (l2, g2) = (l.clone(), log.clone());
    spawn(move || {
        let r = l2.read().unwrap();
        g2.push(format!("r2 in ({} readers)", l2.readers()));
        sleep(ms(5)).unwrap();
        drop(r);
    });
    let (l3, g3) = (l.clone(), log.clone());
    spawn(move || {
        let w = l3.write().unwrap();
        w.set(w.get() + 1);
        g3.push("writer in");
        sleep(ms(2)).unwrap();
    });
    let (l4, g4) = (l.clone(), log.clone());
    spawn(move || {
        let r = l4.read().unwrap();
        g4.push(format!("late reader sees {}", r.get()));
    });
    event_loop();
    assert_eq!(
        log.get(),
        [
            "r1 in (1 readers)",
            "r2 in (2 readers)",
            "r1 out",
            "writer in",
            "late reader sees 1"
        ]
    );
}

#[cfg_attr(test, test)]
pub fn rwlock_writer_re_enters_for_reading_and_writing() {
    setup();
    let l = Rc::new(RwLock::new(RefCell::new(Vec::new())));
    let (l1, l2) = (l.clone(), l.clone());
    let writer = spawn(move || {
        let w = l1.write().unwrap();
        w.borrow_mut().push("outer");
        let again = l1.write().unwrap();
        again.borrow_mut().push("inner write");
        let r = l1.read().unwrap();
        let seen = r.borrow().len();
        drop(again);
        drop(r);
        assert!(l1.is_write_locked(), "still held by the outer guard");
        sleep(ms(2)).unwrap();
        drop(w);
        seen
    });
    let reader = spawn(move || {
        yield_slice();
        let r = l2.read().unwrap();
        let v = r.borrow().clone();
        v
    });
    event_loop();
    assert_eq!(writer.join(), Ok(2));
    assert_eq!(reader.join(), Ok(vec!["outer", "inner write"]));
    assert!(!l.is_write_locked() && l.readers() == 0);
}

#[cfg_attr(test, test)]
pub fn mutex_lock_reporting_says_whether_it_had_to_wait() {
    setup();
    let m = Rc::new(Mutex::new(()));
    let log = Log::default();
    for name in ["a", "b", "c"] {
        let (m, log) = (m.clone(), log.clone());
        spawn(move || {
            let (held, blocked) = m.lock_reporting().unwrap();
            // Re-entering is never a wait.
            let (again, blocked_again) = m.lock_reporting().unwrap();
            log.push(format!("{name} blocked={blocked} again={blocked_again}"));
            yield_slice();
            drop((again, held));
        });
    }
    event_loop();
    assert_eq!(
        log.get(),
        [
            "a blocked=false again=false",
            "b blocked=true again=false",
            "c blocked=true again=false"
        ]
    );
    // Free again, and a lock taken without contention reports no wait.
    let m2 = m.clone();
    let c = spawn(move || m2.lock_reporting().map(|(_, blocked)| blocked));
    event_loop();
    assert_eq!(c.join(), Ok(Ok(false)));
}

#[cfg_attr(test, test)]
pub fn mutex_lock_reporting_is_interruptible_and_passes_the_lock_on() {
    setup();
    let m = Rc::new(Mutex::new(()));
    let m1 = m.clone();
    spawn(move || {
        let _g = m1.lock().unwrap();
        sleep(ms(10)).unwrap();
    });
    let m2 = m.clone();
    let timed_out = spawn(move || with_timeout(ms(2), || m2.lock_reporting().map(|_| ())));
    let m3 = m.clone();
    let third = spawn(move || m3.lock_reporting().map(|(_, blocked)| blocked));
    event_loop();
    assert_eq!(timed_out.join(), Ok(Err(Timeout)));
    assert_eq!(third.join(), Ok(Ok(true)));
    assert!(!m.is_locked());
}

#[cfg_attr(test, test)]
pub fn fifo_pop_all_waits_for_an_item_then_takes_everything_queued() {
    setup();
    let f = Rc::new(Fifo::new());
    let f1 = f.clone();
    let popper = spawn(move || {
        let first = f1.pop_all().unwrap(); // waits: empty
        let second = f1.pop_all().unwrap(); // waits again
        (first, second)
    });
    let f2 = f.clone();
    spawn(move || {
        for n in 1..=3 {
            f2.push(n);
        }
        yield_slice(); // the popper takes 1, 2, 3 and waits again
        f2.push(4);
    });
    event_loop();
    assert_eq!(popper.join(), Ok((vec![1, 2, 3], vec![4])));
    assert!(f.is_empty());
}

#[cfg_attr(test, test)]
pub fn fifo_pop_all_takes_queued_items_without_waiting_and_try_pop_all_never_waits() {
    setup();
    let f = Rc::new(Fifo::new());
    assert_eq!(f.try_pop_all(), Vec::<&str>::new());
    f.push("a");
    f.push("b");
    let f1 = f.clone();
    let c = spawn(move || {
        let all = f1.pop_all().unwrap();
        f1.push("c");
        (all, f1.try_pop_all(), f1.try_pop_all())
    });
    event_loop();
    assert_eq!(c.join(), Ok((vec!["a", "b"], vec!["c"], vec![])));
}

#[cfg_attr(test, test)]
pub fn fifo_pop_all_interrupted_loses_nothing() {
    setup();
    let f: Rc<Fifo<u8>> = Rc::new(Fifo::new());
    let f1 = f.clone();
    let timed_out = spawn(move || with_timeout(ms(2), || f1.pop_all()));
    event_loop();
    assert_eq!(timed_out.join(), Ok(Err(Timeout)));
    f.push(1);
    f.push(2);
    assert_eq!(f.len(), 2, "nothing was handed to the timed-out waiter");
    // Handed an item, then interrupted before it ran: the item goes back, in order.
    let f2 = f.clone();
    let f3 = f.clone();
    let drained = f.try_pop_all();
    assert_eq!(drained, [1, 2]);
    let waiter = spawn(move || f2.pop_all());
    let h = waiter.handle();
    spawn(move || {
        f3.push(7);
        h.interrupt(1); // woken with 7, not resumed yet
        f3.push(8);
    });
    event_loop();
    assert_eq!(waiter.join(), Ok(Err(Interrupted::Interrupt(1))));
    assert_eq!(f.try_pop_all(), [7, 8]);
}

#[cfg_attr(test, test)]
pub fn rwlock_try_read_and_try_write_follow_the_fifo_policy() {
    setup();
    let l = Rc::new(RwLock::new(Cell::new(0)));
    let log = Log::default();
    let (l1, g1) = (l.clone(), log.clone());
    spawn(move || {
        let r = l1.read().unwrap();
        g1.push(format!(
            "reader in: try_read {} try_write {}",
            l1.try_read().is_some(),
            l1.try_write().is_some()
        ));
        sleep(ms(5)).unwrap();
        drop(r);
    });
    let (l2, g2) = (l.clone(), log.clone());
    spawn(move || {
        let w = l2.write().unwrap(); // queues behind the reader
        g2.push("writer in");
        w.set(1);
        sleep(ms(2)).unwrap();
    });
    let (l3, g3) = (l.clone(), log.clone());
    spawn(move || {
        // A reader holds the lock and a writer waits: read would queue, so try_read fails.
        g3.push(format!(
            "writer waiting: try_read {} try_write {}",
            l3.try_read().is_some(),
            l3.try_write().is_some()
        ));
        sleep(ms(20)).unwrap();
        let r = l3.try_read().map(|g| g.get());
        let w = l3.try_write().map(|g| g.get());
        g3.push(format!("free: try_read {r:?} try_write {w:?}"));
    });
    event_loop();
    assert_eq!(
        log.get(),
        [
            "reader in: try_read true try_write false",
            "writer waiting: try_read false try_write false",
            "writer in",
            "free: try_read Some(1) try_write Some(1)"
        ]
    );
    assert!(!l.is_write_locked() && l.readers() == 0);
}

#[cfg_attr(test, test)]
pub fn rwlock_try_read_and_try_write_re_enter_for_the_writer() {
    setup();
    let l = Rc::new(RwLock::new(Cell::new(0)));
    let (l1, l2) = (l.clone(), l.clone());
    let writer = spawn(move || {
        let w = l1.write().unwrap();
        let r = l1.try_read().expect("the writer re-enters for reading");
        let w2 = l1.try_write().expect("the writer re-enters for writing");
        w2.set(3);
        drop((w, r));
        let still = l1.is_write_locked();
        sleep(ms(2)).unwrap();
        drop(w2);
        still
    });
    let other = spawn(move || (l2.try_read().is_none(), l2.try_write().is_none()));
    event_loop();
    assert_eq!(writer.join(), Ok(true));
    assert_eq!(other.join(), Ok((true, true)));
    assert!(!l.is_write_locked());
    assert_eq!(l.readers(), 0);
}
