//! The blocking pool: work runs on other threads while the scheduler keeps serving, values
//! and panics come back, an interrupted wait returns at once, `where_all` names the wait,
//! and a full queue is an error that names the limit.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use shrapnel::blocking::{blocking, BlockingError};

/// Run `f` in a coroutine next to a ticker that sleeps 5 ms at a time, and return `f`'s
/// value with the ticker's worst gap between two wake-ups while `f` ran.
fn with_ticker<T: 'static>(f: impl FnOnce() -> T + 'static) -> (T, Duration, u32) {
    shrapnel::reset();
    let done = Rc::new(Cell::new(false));
    let d = done.clone();
    let ticker = shrapnel::spawn(move || {
        let (mut worst, mut ticks) = (Duration::ZERO, 0u32);
        let mut last = Instant::now();
        while !d.get() {
            shrapnel::sleep(Duration::from_millis(5)).unwrap();
            let now = Instant::now();
            worst = worst.max(now - last);
            last = now;
            ticks += 1;
        }
        (worst, ticks)
    });
    let work = shrapnel::spawn(move || {
        let _stop = StopTicker(done); // whatever happens, even a panic
        f()
    });
    assert_eq!(shrapnel::event_loop(), 0);
    let (worst, ticks) = ticker.join().unwrap();
    (work.join().unwrap(), worst, ticks)
}

struct StopTicker(Rc<Cell<bool>>);

impl Drop for StopTicker {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn a_one_second_blocking_call_leaves_the_other_coroutines_running() {
    let (value, worst, ticks) = with_ticker(|| {
        blocking(|| {
            std::thread::sleep(Duration::from_secs(1));
            42
        })
    });
    assert_eq!(value.unwrap(), 42);
    eprintln!("worst gap {worst:?}, {ticks} ticks");
    // Run on the scheduler's thread, the call would leave one gap of a whole second.
    assert!(worst < Duration::from_millis(500), "worst gap {worst:?}");
    assert!(ticks >= 20, "{ticks} ticks in a second");
}

#[test]
fn a_panic_comes_back_as_an_error_with_its_message() {
    shrapnel::reset();
    let c = shrapnel::spawn(|| blocking(|| -> u8 { panic!("boom at {}", 7) }));
    shrapnel::event_loop();
    match c.join().unwrap() {
        Err(BlockingError::Panicked(msg)) => assert_eq!(msg, "boom at 7"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_timeout_returns_at_once_and_the_result_is_dropped() {
    shrapnel::reset();
    shrapnel::ensure();
    let registered = shrapnel_core::io::registered();
    let c = shrapnel::spawn(|| {
        let start = Instant::now();
        let r = shrapnel::with_timeout(Duration::from_millis(50), || {
            blocking(|| std::thread::sleep(Duration::from_millis(1500)))
        });
        (r.is_err(), start.elapsed())
    });
    shrapnel::event_loop();
    let (timed_out, took) = c.join().unwrap();
    assert!(timed_out, "the deadline passed inside the blocking call");
    assert!(took < Duration::from_millis(1000), "{took:?}");
    assert_eq!(
        shrapnel_core::io::registered(),
        registered,
        "the call's fd is gone"
    );
}

#[test]
fn an_interruption_comes_back_as_interrupted() {
    shrapnel::reset();
    let c = shrapnel::spawn(|| blocking(|| std::thread::sleep(Duration::from_millis(800))));
    let target = c.clone();
    shrapnel::spawn(move || {
        shrapnel::sleep(Duration::from_millis(20)).unwrap();
        target.interrupt(9);
    });
    shrapnel::event_loop();
    match c.join().unwrap() {
        Err(BlockingError::Interrupted(i)) => {
            assert_eq!(i, shrapnel::Interrupted::Interrupt(9));
            let e = std::io::Error::from(BlockingError::Interrupted(i));
            assert_eq!(shrapnel::Interrupted::from_io_error(&e), Some(i));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn where_all_shows_the_wait_on_the_pool() {
    shrapnel::reset();
    let worker = shrapnel::Builder::new()
        .name("resizer")
        .spawn(|| blocking(|| std::thread::sleep(Duration::from_millis(300))))
        .unwrap();
    let looker = shrapnel::spawn(|| {
        shrapnel::sleep(Duration::from_millis(100)).unwrap();
        shrapnel::where_all().to_string()
    });
    shrapnel::event_loop();
    worker.join().unwrap().unwrap();
    let text = looker.join().unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("resizer"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("blocking pool (fd "), "{text}");
}

#[test]
fn outside_a_coroutine_the_closure_runs_here() {
    assert_eq!(
        blocking(|| std::thread::current().id()).unwrap(),
        std::thread::current().id()
    );
}

#[test]
fn many_calls_at_once_all_come_back() {
    shrapnel::reset();
    let coros: Vec<_> = (0..200u64)
        .map(|i| {
            shrapnel::spawn(move || {
                blocking(move || {
                    std::thread::sleep(Duration::from_millis(i % 7));
                    i * 2
                })
            })
        })
        .collect();
    shrapnel::event_loop();
    for (i, c) in coros.into_iter().enumerate() {
        assert_eq!(c.join().unwrap().unwrap(), i as u64 * 2);
    }
    let stats = shrapnel::blocking::pool_stats();
    assert!(stats.completed >= 200, "{stats:?}");
    assert!(stats.threads <= shrapnel::blocking::pool_config().threads);
}

const CHILD: &str = "SHRAPNEL_BLOCKING_QUEUE_CHILD";

/// With one thread and a queue of one, a third call at once is refused with an error
/// naming the limit; the process keeps working and the first two complete.
fn queue_child() {
    shrapnel::blocking::set_pool_config(shrapnel::blocking::PoolConfig {
        threads: 1,
        queue: 1,
        ..Default::default()
    });
    let calls: Vec<_> = (0..3)
        .map(|i| {
            shrapnel::spawn(move || {
                blocking(move || {
                    std::thread::sleep(Duration::from_millis(100));
                    i
                })
            })
        })
        .collect();
    shrapnel::event_loop();
    let results: Vec<_> = calls.into_iter().map(|c| c.join().unwrap()).collect();
    assert_eq!(results[0].as_ref().unwrap(), &0);
    assert_eq!(results[1].as_ref().unwrap(), &1);
    let refused = results[2].as_ref().unwrap_err().to_string();
    assert!(refused.contains("queue is full (1 jobs wait"), "{refused}");
    assert!(refused.contains("PoolConfig::queue"), "{refused}");
    assert_eq!(shrapnel::blocking::pool_stats().refused, 1);
    println!("queue child ok");
}

#[test]
fn a_full_queue_is_an_error_that_names_the_limit() {
    if std::env::var_os(CHILD).is_some() {
        return queue_child();
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_full_queue_is_an_error_that_names_the_limit",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("queue child ok"), "{text}");
}
