//! Slice timing and Shrapnel's high-latency warning (feature `latency`).

extern crate alloc;

mod support;

use std::time::{Duration, Instant};

use shrapnel_core::latency::{latency_warning, set_latency_warning};
use shrapnel_core::sched::{event_loop, sleep};
use shrapnel_core::*;
use support::*;

fn busy(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// `{ctime} High Latency: (0.250s) for <coro #N name='hog' dead=1 started=1 scheduled=0 at 0x…>`
fn check_line(line: &str, id: u64, name: &str) -> Duration {
    let (stamp, rest) = line
        .split_once(" High Latency: (")
        .unwrap_or_else(|| panic!("no warning in {line:?}"));
    // ctime: "Www Mmm dd hh:mm:ss yyyy"
    let parts: Vec<&str> = stamp.split_whitespace().collect();
    assert_eq!(parts.len(), 5, "timestamp {stamp:?}");
    assert_eq!(parts[3].len(), 8, "time of day in {stamp:?}");
    let (secs, rest) = rest.split_once("s) for ").unwrap();
    let d = Duration::from_secs_f64(secs.parse().unwrap());
    let prefix = format!("<coro #{id} name='{name}' dead=1 started=1 scheduled=0 at 0x");
    assert!(
        rest.starts_with(&prefix),
        "{rest:?} should start with {prefix:?}"
    );
    assert!(rest.ends_with('>'));
    assert!(
        u64::from_str_radix(&rest[prefix.len()..rest.len() - 1], 16).is_ok(),
        "{rest}"
    );
    d
}

struct WallClock(std::time::Instant);
impl shrapnel_core::clock::Clock for WallClock {
    fn now(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
    fn ticks_per_second(&self) -> u64 {
        1_000_000_000
    }
    fn wall_clock(&self) -> Option<u64> {
        Some(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
    }
}

fn setup_wall() -> Recorder {
    if sched::is_installed() {
        sched::uninstall();
    }
    let rec = Recorder::default();
    sched::install(sched::Config {
        poller: Box::new(shrapnel_core::poller::NullPoller::new(ThreadSleep)),
        clock: Box::new(WallClock(std::time::Instant::now())),
        stacks: Box::new(shrapnel_core::stack::HeapStackAllocator),
        sink: Box::new(rec.clone()),
        default_stack_size: 64 * 1024,
    })
    .unwrap();
    rec
}

#[test]
fn a_long_slice_warns_once_naming_the_coroutine() {
    let rec = setup_wall();
    let hog = Builder::new()
        .name("hog")
        .spawn(|| busy(Duration::from_millis(250)))
        .unwrap();
    spawn(|| {
        for _ in 0..5 {
            sleep(Duration::from_millis(1)).unwrap();
        }
    });
    event_loop();
    let text = rec.text();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("High Latency"))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    let d = check_line(lines[0], hog.id(), "hog");
    assert!(d >= Duration::from_millis(250), "{d:?}");
    let info = where_all();
    assert!(info.is_empty());
}

#[test]
fn factor_zero_silences_and_bounds_are_enforced() {
    let rec = setup();
    assert_eq!(latency_warning(), 1.0);
    assert_eq!(set_latency_warning(0.0), Ok(1.0));
    assert!(set_latency_warning(301.0).is_err());
    assert!(set_latency_warning(-1.0).is_err());
    assert!(set_latency_warning(f64::NAN).is_err());
    let e = set_latency_warning(301.0).unwrap_err().to_string();
    assert!(e.contains("0 (off) to 300"), "{e}");
    spawn(|| busy(Duration::from_millis(250)));
    event_loop();
    assert!(!rec.text().contains("High Latency"), "{}", rec.text());
    assert_eq!(set_latency_warning(300.0), Ok(0.0));
}

#[test]
fn without_a_wall_clock_the_uptime_is_printed() {
    let rec = setup();
    set_latency_warning(0.5).unwrap(); // 100 ms
    spawn(|| busy(Duration::from_millis(120)));
    event_loop();
    let t = rec.text();
    assert!(
        t.starts_with('+') && t.contains("s High Latency: (0.1"),
        "{t}"
    );
}

#[test]
fn slice_statistics_are_kept() {
    setup();
    let c = spawn(|| {
        for _ in 0..3 {
            busy(Duration::from_millis(2));
            sched::yield_slice();
        }
        let me = current().unwrap();
        where_is(&me).slices
    });
    event_loop();
    let st = c.join().unwrap();
    assert_eq!(st.count, 3, "three finished slices before the fourth asked");
    assert!(
        st.max >= Duration::from_millis(2) && st.total >= Duration::from_millis(6),
        "{st:?}"
    );
}
