//! Shared-stack mode: coroutines run on the scheduler's run stack and keep a heap copy of
//! their frames while another one runs there. (The semantics, sync and interruption suites
//! also run entirely in this mode: `SHRAPNEL_TEST_SHARED_STACK=1`, from ci/test.sh.)

extern crate alloc;

mod support;

use std::cell::Cell;

use shrapnel_core::sched::{self, event_loop, sleep, yield_slice};
use shrapnel_core::*;
use support::*;

fn shared() -> Builder {
    Builder::new().shared_stack(true)
}

/// A local array and a pointer to it, kept across 1,000 yields while two other shared-stack
/// coroutines run on the same stack in between: the copy goes back to the very addresses,
/// so the pointer still points at the array and the array is intact.
#[test]
fn pointers_into_the_own_stack_survive_many_switches() {
    setup();
    let before = sched::stats();
    let mut workers = Vec::new();
    for k in 0..3u64 {
        workers.push(
            shared()
                .spawn(move || {
                    let mut local = [0u64; 64];
                    for (i, v) in local.iter_mut().enumerate() {
                        *v = k * 1000 + i as u64;
                    }
                    let p: *const [u64; 64] = &local;
                    let r = &local;
                    for round in 0..1000 {
                        yield_slice();
                        assert_eq!(p, r as *const [u64; 64], "round {round}");
                        // SAFETY (test): `p` points at `local`, alive in this frame.
                        let seen = unsafe { (*p)[63] };
                        assert_eq!(seen, k * 1000 + 63, "round {round}");
                    }
                    r.iter().sum::<u64>()
                })
                .unwrap(),
        );
    }
    assert_eq!(event_loop(), 0);
    for (k, w) in workers.into_iter().enumerate() {
        let k = k as u64;
        assert_eq!(
            w.join().unwrap(),
            (0..64).map(|i| k * 1000 + i).sum::<u64>()
        );
    }
    let after = sched::stats();
    // Each of ~3,000 resumptions found another coroutine's frames on the run stack: a save
    // and a restore each.
    assert!(
        after.stack_copies - before.stack_copies >= 5_000,
        "{} copies",
        after.stack_copies - before.stack_copies
    );
    assert!(after.stack_bytes_copied > before.stack_bytes_copied);
}

#[inline(never)]
fn recurse(depth: u32, acc: &Cell<u64>) -> u64 {
    let pad = std::hint::black_box([depth as u8; 200]);
    if depth == 0 {
        yield_slice(); // suspended 100+ frames deep, while the others run on the stack
        return pad[0] as u64 + acc.get();
    }
    acc.set(acc.get() + 1);
    recurse(depth - 1, acc) + pad[199] as u64
}

/// Recursion about 25 KiB deep on the 64 KiB run stack, suspended at the bottom while other
/// coroutines use the same stack: the whole depth is copied away and back.
#[test]
fn deep_recursion_within_the_run_stack() {
    setup();
    let deep: Vec<_> = (0..3)
        .map(|_| {
            shared()
                .spawn(|| {
                    let acc = Cell::new(0);
                    recurse(100, &acc)
                })
                .unwrap()
        })
        .collect();
    let expected: u64 = (1..=100).map(|d| (d % 256) as u64).sum::<u64>() + 100;
    assert_eq!(event_loop(), 0);
    for c in deep {
        assert_eq!(c.join().unwrap(), expected);
    }
}

/// A panic in a shared-stack coroutine reaches its join as an error; the next coroutine on
/// the run stack is unharmed.
#[test]
fn a_panic_in_shared_stack_mode_is_caught() {
    let rec = setup();
    let bad = shared()
        .name("bad")
        .spawn(|| -> u32 {
            yield_slice();
            panic!("boom in shared mode")
        })
        .unwrap();
    let good = shared()
        .spawn(|| {
            let v = [7u32; 16];
            yield_slice();
            yield_slice();
            v.iter().sum::<u32>()
        })
        .unwrap();
    assert_eq!(event_loop(), 0);
    match bad.join() {
        Err(JoinError::Panicked { message, .. }) => assert!(message.contains("boom")),
        other => panic!("expected a panic, got {other:?}"),
    }
    assert_eq!(good.join(), Ok(112));
    assert!(rec.text().contains("boom in shared mode"), "{}", rec.text());
}

/// Interrupting a shared-stack coroutine blocked in a sleep returns at once with the
/// interruption, its frames restored to finish the call.
#[test]
fn an_interrupt_in_shared_stack_mode() {
    setup();
    let sleeper = shared()
        .spawn(|| {
            let local = [3u8; 32];
            let r = sleep(ms(10_000));
            (r, local.iter().map(|&b| b as u32).sum::<u32>())
        })
        .unwrap();
    let handle = sleeper.handle();
    shared()
        .spawn(move || {
            yield_slice();
            handle.interrupt(5);
        })
        .unwrap();
    assert_eq!(event_loop(), 0);
    assert_eq!(
        sleeper.join().unwrap(),
        (Err(Interrupted::Interrupt(5)), 96)
    );
}

/// Mixed modes: own-stack coroutines and shared-stack ones interleave, and the default
/// switch covers `spawn`; a size asked for still gets its own stack.
#[test]
fn modes_mix_and_the_default_applies_to_spawn() {
    setup();
    sched::set_shared_stack_default(false); // whatever the suite's run chose
    assert!(!sched::set_shared_stack_default(true));
    let shared_one = spawn(|| {
        yield_slice();
        1
    });
    let own = Builder::new()
        .stack_size(32 * 1024)
        .spawn(|| {
            yield_slice();
            2
        })
        .unwrap();
    assert!(sched::set_shared_stack_default(false));
    let (lo_s, hi_s) = shared_one.handle().stack_range();
    let (lo_o, hi_o) = own.handle().stack_range();
    assert_eq!(hi_o - lo_o, 32 * 1024);
    assert_ne!((lo_s, hi_s), (lo_o, hi_o));
    let another = shared().spawn(|| 3).unwrap();
    assert_eq!(
        another.handle().stack_range(),
        (lo_s, hi_s),
        "one run stack"
    );
    assert_eq!(event_loop(), 0);
    assert_eq!(shared_one.join().unwrap() + own.join().unwrap(), 3);
}

#[cfg(feature = "stacks")]
#[inline(never)]
fn park(flag: std::rc::Rc<Cell<bool>>) {
    while !flag.get() {
        let _ = sleep(ms(1));
    }
}

/// `where_all` walks a suspended shared-stack coroutine's frames in its heap copy: two
/// coroutines parked in the same function show the same return addresses, whether their
/// frames are on the run stack (the owner) or in the copy.
#[cfg(feature = "stacks")]
#[test]
fn where_all_walks_the_saved_copy() {
    setup();
    let flag = std::rc::Rc::new(Cell::new(false));
    let a = {
        let f = flag.clone();
        shared().name("a").spawn(move || park(f)).unwrap()
    };
    let b = {
        let f = flag.clone();
        shared().name("b").spawn(move || park(f)).unwrap()
    };
    let (ida, idb) = (a.handle().id(), b.handle().id());
    let seen = std::rc::Rc::new(Cell::new(false));
    let s2 = seen.clone();
    Builder::new()
        .spawn(move || {
            sleep(ms(5)).unwrap();
            let all = where_all();
            let frames = |id| all.iter().find(|c| c.id == id).unwrap().frames.clone();
            let (fa, fb) = (frames(ida), frames(idb));
            assert!(fa.len() >= 2, "{fa:?}");
            // The innermost frames (the wait inside `park`) are the same code for both.
            assert_eq!(fa[..2], fb[..2], "a: {fa:x?}\nb: {fb:x?}");
            s2.set(true);
            flag.set(true);
        })
        .unwrap();
    assert_eq!(event_loop(), 0);
    assert!(seen.get());
}

/// An idle shared-stack coroutine: an 8 KiB zeroed buffer with a few bytes set, and
/// pointers into it kept in its own frame; blocked in a sleep of `nap`, then it checks that
/// all of it came back and returns the buffer's sum.
fn idle_with_a_big_buffer(k: u8, nap: std::time::Duration) -> u64 {
    let mut buf = [0u8; 8192];
    buf[0] = k + 1;
    buf[4096] = k + 2;
    buf[8191] = k + 3;
    std::hint::black_box(&mut buf);
    let inner: *const u8 = &buf[4096];
    let pointers = std::hint::black_box([inner, buf.as_ptr()]);
    sleep(nap).unwrap();
    let pointers = std::hint::black_box(pointers);
    assert_eq!(pointers[0], &buf[4096] as *const u8);
    assert_eq!(pointers[1], buf.as_ptr());
    // SAFETY (test): both point into `buf`, alive in this frame.
    assert_eq!(unsafe { (*pointers[0], *pointers[1]) }, (k + 2, k + 1));
    assert!(buf[1..4096].iter().chain(&buf[4097..8191]).all(|&b| b == 0));
    buf.iter().map(|&b| b as u64).sum()
}

/// Coroutines blocked longer than the compaction age get their saved copies compacted while
/// the loop waits (the counters in `stats` say so, and each copy of an 8 KiB mostly-zero
/// stack shrinks by most of it); `where_all` walks the compacted copies to the same frames
/// as the plain ones; and each resumes with its buffer and the pointers into it intact.
#[test]
fn idle_copies_are_compacted_and_resume_intact() {
    setup();
    assert_eq!(
        shrapnel_core::shared_stack::set_compact_after(Some(ms(50))),
        Some(shrapnel_core::shared_stack::DEFAULT_COMPACT_AFTER)
    );
    let before = sched::stats();
    let sleepers: Vec<_> = (0..3u8)
        .map(|k| {
            shared()
                .spawn(move || idle_with_a_big_buffer(k, ms(600)))
                .unwrap()
        })
        .collect();
    let ids: Vec<u64> = sleepers.iter().map(|c| c.handle().id()).collect();
    let checker = Builder::new()
        .shared_stack(false)
        .spawn(move || {
            let frames_of = |ids: &[u64]| {
                let all = where_all();
                ids.iter()
                    .map(|&id| all.iter().find(|c| c.id == id).unwrap().frames.clone())
                    .collect::<Vec<_>>()
            };
            // The sleepers have just blocked (the loop has not waited yet): plain copies for
            // the first two, the third's frames still on the run stack.
            assert_eq!(sched::stats().stacks_compacted, before.stacks_compacted);
            let plain = frames_of(&ids);
            let start = std::time::Instant::now();
            while sched::stats().stacks_compacted - before.stacks_compacted < 2 {
                assert!(
                    start.elapsed() < ms(500),
                    "no compaction: {:?}",
                    sched::stats()
                );
                sleep(ms(20)).unwrap();
            }
            let after = sched::stats();
            assert_eq!(after.stacks_compacted - before.stacks_compacted, 2);
            // Each copy holds the 8 KiB buffer, of which 3 bytes are not zero.
            let saved = after.stack_bytes_compacted - before.stack_bytes_compacted;
            assert!(saved >= 2 * 7 * 1024, "{saved} bytes saved");
            let compacted = frames_of(&ids);
            if cfg!(feature = "stacks") {
                assert!(plain.iter().all(|f| f.len() >= 2), "{plain:x?}");
            }
            assert_eq!(compacted, plain);
        })
        .unwrap();
    assert_eq!(event_loop(), 0);
    checker.join().unwrap();
    for (k, s) in sleepers.into_iter().enumerate() {
        let k = k as u64;
        assert_eq!(s.join().unwrap(), 3 * k + 6);
    }
    shrapnel_core::shared_stack::set_compact_after(Some(
        shrapnel_core::shared_stack::DEFAULT_COMPACT_AFTER,
    ));
}

/// With compaction off (`set_compact_after(None)`) copies stay plain however long they idle.
#[test]
fn compaction_can_be_turned_off() {
    setup();
    shrapnel_core::shared_stack::set_compact_after(None);
    let before = sched::stats();
    let sleepers: Vec<_> = (0..2u8)
        .map(|k| {
            shared()
                .spawn(move || idle_with_a_big_buffer(k, ms(150)))
                .unwrap()
        })
        .collect();
    assert_eq!(event_loop(), 0);
    for s in sleepers {
        s.join().unwrap();
    }
    assert_eq!(sched::stats().stacks_compacted, before.stacks_compacted);
    shrapnel_core::shared_stack::set_compact_after(Some(
        shrapnel_core::shared_stack::DEFAULT_COMPACT_AFTER,
    ));
}
