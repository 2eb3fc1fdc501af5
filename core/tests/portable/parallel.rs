//! `in_parallel`: results in the order given, every call run to its end, and an interrupted
//! caller shutting down what it started. Ports Shrapnel's test_in_parallel.py.
//!
//! Needs nothing from an OS (`no_std` + `alloc`): `tests/parallel.rs` runs it on the host
//! (with the test of a panicking call), the bare-metal suite runners in QEMU.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use shrapnel_core::sched::{event_loop, sleep, with_timeout, yield_slice};
use shrapnel_core::*;

use crate::support::*;

type Call<T> = Box<dyn FnOnce() -> T>;

fn sleeper(n: u64, d: u64, log: &Log) -> Call<Result<u64, Interrupted>> {
    let log = log.clone();
    Box::new(move || {
        log.push(format!("{n} start"));
        let r = sleep(ms(d));
        log.push(format!("{n} {r:?}"));
        r.map(|()| n)
    })
}

/// Shrapnel's test_timeout: a timeout shorter than the calls interrupts `in_parallel`; a
/// longer one lets it return every result in order.
#[cfg_attr(test, test)]
pub fn a_timeout_interrupts_it_and_a_longer_one_lets_it_finish() {
    setup();
    let log = Log::default();
    let l = log.clone();
    let c = spawn(move || {
        let short = with_timeout(ms(20), || {
            in_parallel((1..=3).map(|n| sleeper(n, 200, &l))).is_ok()
        });
        let long = with_timeout(ms(2_000), || {
            in_parallel((4..=6).map(|n| sleeper(n, 10, &l))).map_err(|e| e.to_string())
        });
        (short, long)
    });
    event_loop();
    assert_eq!(
        c.join(),
        Ok((Err(Timeout), Ok(Ok(vec![Ok(4), Ok(5), Ok(6)]))))
    );
    let log = log.get();
    for n in 1..=3 {
        assert!(log.contains(&format!("{n} Err(Shutdown)")), "{log:?}");
    }
    assert!(live_coros().is_empty(), "nothing left behind");
}

#[cfg_attr(test, test)]
pub fn results_come_in_the_order_given_whatever_order_the_calls_finish() {
    setup();
    let log = Log::default();
    let l = log.clone();
    let c = spawn(move || in_parallel((1..=4).map(|n| sleeper(n, 2 * (5 - n), &l))));
    event_loop();
    let results: Vec<_> = c.join().unwrap().unwrap();
    assert_eq!(results, [Ok(1), Ok(2), Ok(3), Ok(4)]);
    // All four ran at once: every one started before any finished, the last one first.
    assert_eq!(
        log.get(),
        [
            "1 start", "2 start", "3 start", "4 start", "4 Ok(())", "3 Ok(())", "2 Ok(())",
            "1 Ok(())"
        ]
    );
}

#[cfg_attr(test, test)]
pub fn an_empty_list_gives_no_results_at_once() {
    setup();
    let c = spawn(|| in_parallel(Vec::<Call<u8>>::new()).unwrap());
    event_loop();
    assert_eq!(c.join(), Ok(vec![]));
}

#[cfg_attr(test, test)]
pub fn an_interrupted_caller_keeps_finished_results_and_shuts_down_the_rest() {
    setup();
    let log = Log::default();
    let l = log.clone();
    let caller = spawn(move || {
        let calls: Vec<Call<Result<u64, Interrupted>>> = vec![
            Box::new(|| Ok(100)),
            sleeper(1, 60_000, &l),
            Box::new(|| Ok(300)),
            sleeper(3, 60_000, &l),
        ];
        in_parallel(calls).unwrap_err()
    });
    let h = caller.handle();
    spawn(move || {
        // The calls have run once: the first woke the caller, which this interrupt reaches
        // before it resumes, so the caller's wait returns the interruption although the
        // call it waited for is done; its value is kept all the same.
        yield_slice();
        h.interrupt(7);
    });
    event_loop();
    let e = caller.join().unwrap();
    let i = Interrupted::Interrupt(7);
    assert_eq!(e.interrupted, Some(i));
    assert_eq!(e.failed(), [1, 3]);
    assert_eq!(e.results[0], Ok(Ok(100)));
    assert_eq!(e.results[1], Err(JoinError::Interrupted(i)));
    assert_eq!(e.results[2], Ok(Ok(300)), "finished, so kept");
    assert_eq!(e.results[3], Err(JoinError::Interrupted(i)));
    assert_eq!(
        e.to_string(),
        "in_parallel interrupted (code 7) while waiting: 2 of 4 calls shut down unfinished"
    );
    // The sleepers were shut down and ended; nothing is left.
    assert_eq!(
        log.get(),
        ["1 start", "3 start", "1 Err(Shutdown)", "3 Err(Shutdown)"]
    );
    assert!(live_coros().is_empty());
}

#[cfg_attr(test, test)]
pub fn calls_not_started_when_the_caller_is_interrupted_never_run() {
    setup();
    let log = Log::default();
    let l = log.clone();
    let caller = spawn(move || {
        current().unwrap().interrupt(9); // pending: the first wait returns it
        in_parallel((0..3).map(|n| sleeper(n, 1, &l))).unwrap_err()
    });
    event_loop();
    let e = caller.join().unwrap();
    let i = Interrupted::Interrupt(9);
    assert_eq!(e.interrupted, Some(i));
    assert_eq!(e.failed(), [0, 1, 2]);
    assert!(e
        .results
        .iter()
        .all(|r| *r == Err(JoinError::Interrupted(i))));
    assert!(log.get().is_empty(), "{:?}", log.get());
    assert!(live_coros().is_empty());
}

#[cfg_attr(test, test)]
pub fn the_caller_waits_at_its_own_line() {
    setup();
    let log = Log::default();
    let l = log.clone();
    let caller = spawn(move || in_parallel([sleeper(1, 5, &l)]).is_ok());
    let h = caller.handle();
    let seen = spawn(move || {
        yield_slice();
        let at = h.waiting_since().1.expect("blocked at a line");
        (h.wait_reason().to_string(), at.file().to_string())
    });
    event_loop();
    assert_eq!(caller.join(), Ok(true));
    let (reason, file) = seen.join().unwrap();
    assert!(reason.starts_with("join"), "{reason}");
    assert_eq!(
        file,
        file!(),
        "where_all names the caller's line, not in_parallel's"
    );
}
