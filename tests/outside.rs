//! A blocking call made outside any coroutine (here: in a thread with no scheduler yet)
//! panics with advice a user of this crate can follow, at the caller's line. One test in
//! this binary: it installs a panic hook, which is process-wide.

use std::sync::{Arc, Mutex};
use std::time::Duration;

#[test]
fn a_blocking_call_outside_a_coroutine_names_the_remedy_at_the_callers_line() {
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let s = seen.clone();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| info.payload().downcast_ref::<&str>().map(|m| m.to_string()))
            .unwrap_or_default();
        let file = info
            .location()
            .map(|l| l.file().to_string())
            .unwrap_or_default();
        s.lock().unwrap().push((msg, file));
    }));
    // A fresh thread: no scheduler exists on it yet.
    let r = std::thread::spawn(|| shrapnel::sleep(Duration::from_millis(1))).join();
    assert!(r.is_err());
    // With a scheduler, but from the thread's own context rather than a coroutine.
    let r = std::thread::spawn(|| {
        shrapnel::spawn(|| ());
        shrapnel::sleep(Duration::from_millis(1))
    })
    .join();
    assert!(r.is_err());
    // A core setting made first, before anything started the scheduler.
    #[cfg(feature = "latency")]
    {
        let r = std::thread::spawn(|| shrapnel::platform::latency::set_latency_warning(2.0)).join();
        assert!(r.is_err());
    }
    let _ = std::panic::take_hook();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen.len(),
        2 + cfg!(feature = "latency") as usize,
        "{seen:?}"
    );
    for (msg, file) in seen {
        assert!(msg.contains("shrapnel::"), "says what to do: {msg}");
        assert!(
            file.ends_with("outside.rs"),
            "points at the caller, not at {file}: {msg}"
        );
    }
}
