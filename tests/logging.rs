//! Feature `log`: the debug output as log records (print_stderr, the exception notifier,
//! latency warnings with their sampled stack, the debug signal's dump). Feature `tracing`:
//! a span entered in one coroutine is never current in another.
//!
//! `cargo test --features log,tracing,latency --test logging`
#![cfg(all(feature = "log", feature = "tracing", feature = "latency"))]

use std::io::Write;
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

/// Every record the runtime logged: (level, target, message).
static RECORDS: Mutex<Vec<(log::Level, String, String)>> = Mutex::new(Vec::new());

struct Recorder;

impl log::Log for Recorder {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        RECORDS.lock().unwrap().push((
            record.level(),
            record.target().to_string(),
            record.args().to_string(),
        ));
    }
    fn flush(&self) {}
}

fn install_logger() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        log::set_logger(&Recorder).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
    });
}

/// Wait (up to 10 s) for a record containing `text`; returns its level.
fn record_with(text: &str) -> log::Level {
    let start = Instant::now();
    loop {
        if let Some((level, target, _)) = RECORDS
            .lock()
            .unwrap()
            .iter()
            .find(|(_, _, m)| m.contains(text))
        {
            assert_eq!(target, "shrapnel");
            return *level;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no record contains {text:?}; records: {:#?}",
            RECORDS.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[inline(never)]
fn hog_for_the_log_test(d: Duration) -> u64 {
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < d {
        for _ in 0..1_000_000 {
            n = std::hint::black_box(n.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
    n
}

#[test]
fn the_debug_output_becomes_log_records_with_levels() {
    install_logger();
    shrapnel::print_stderr!("hello through print_stderr");
    assert_eq!(record_with("hello through print_stderr"), log::Level::Info);

    let panicker = shrapnel::Builder::new()
        .name("panicker")
        .spawn(|| panic!("boom for the log"))
        .unwrap();
    shrapnel::event_loop();
    assert!(panicker.join().is_err());
    assert_eq!(record_with("boom for the log"), log::Level::Error);

    shrapnel::latency::set_latency_warning(1.0).unwrap();
    shrapnel::Builder::new()
        .name("hog")
        .spawn(|| hog_for_the_log_test(Duration::from_millis(500)))
        .unwrap();
    shrapnel::event_loop();
    assert_eq!(record_with("High Latency"), log::Level::Warn);
    // The sampled stack names the function that hogged, in the warning's records.
    let start = Instant::now();
    while !RECORDS
        .lock()
        .unwrap()
        .iter()
        .any(|(l, _, m)| *l == log::Level::Warn && m.contains("hog_for_the_log_test"))
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no Warn record names the hog: {:#?}",
            RECORDS.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    // The debug signal's where_all dump: at the loop's next iteration.
    if let Some(sig) = shrapnel::debug_signal::get() {
        let sleeper = shrapnel::Builder::new()
            .name("dumped sleeper")
            .spawn(|| shrapnel::sleep(Duration::from_millis(300)))
            .unwrap();
        shrapnel::spawn(move || {
            shrapnel::sleep(Duration::from_millis(20)).unwrap();
            // SAFETY: kill(2) of our own process with the debug signal the runtime handles.
            unsafe { libc::kill(libc::getpid(), sig) };
        });
        shrapnel::event_loop();
        sleeper.join().unwrap().unwrap();
        assert_eq!(record_with("dumped sleeper"), log::Level::Info);
    }
}

/// A writer into a shared buffer, for the fmt subscriber.
#[derive(Clone)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_span_entered_in_one_coroutine_is_not_current_in_another() {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let writer = Captured(buf.clone());
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let outer = tracing::info_span!("server").entered();
        for (who, nap) in [("A", 30), ("B", 20)] {
            shrapnel::spawn(move || {
                let _request = tracing::info_span!("request", who).entered();
                shrapnel::sleep(Duration::from_millis(nap)).unwrap();
                tracing::info!("{who} done");
            });
        }
        shrapnel::spawn(|| {
            shrapnel::sleep(Duration::from_millis(10)).unwrap();
            tracing::info!("third");
        });
        shrapnel::event_loop();
        tracing::info!("after the loop");
        drop(outer);
    });
    let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in:\n{text}"))
            .to_string()
    };
    let third = line("third");
    assert!(!third.contains("request"), "{third}");
    let a = line("A done");
    assert!(
        a.contains("request{who=\"A\"}") && !a.contains("who=\"B\""),
        "{a}"
    );
    let b = line("B done");
    assert!(
        b.contains("request{who=\"B\"}") && !b.contains("who=\"A\""),
        "{b}"
    );
    // The span entered around the loop is the loop's: back after it, not in coroutines.
    assert!(line("after the loop").contains("server"), "{text}");
    assert!(!a.contains("server") && !third.contains("server"), "{text}");
}
