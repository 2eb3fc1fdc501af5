//! High-latency warnings with stack samples, in child processes (the warnings go to the
//! real stderr, which only a parent can read).
#![cfg(feature = "latency")]

use std::process::Command;
use std::time::{Duration, Instant};

/// Burns CPU in its own code, looking at the clock only every million iterations, as a
/// real CPU hog does: a sample lands in this function, not in the clock call. (A sample
/// taken inside precompiled std code, which has no frame pointers, would skip its caller.)
#[inline(never)]
fn busy_hog_function(d: Duration) -> u64 {
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < d {
        for _ in 0..1_000_000 {
            n = std::hint::black_box(n.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
    n
}

/// Spends nearly all its time inside the clock call (precompiled std, libc, the vDSO):
/// samples land in code without our frame records, and the report must still name this
/// function, found by the stack scan.
#[inline(never)]
fn clock_bound_hog_function(d: Duration) -> u64 {
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < d {
        n = std::hint::black_box(n + 1);
    }
    n
}

fn child(name: &str) -> (String, std::process::ExitStatus) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env("SHRAPNEL_LATENCY_CHILD", "1")
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status,
    )
}

fn in_child() -> bool {
    std::env::var_os("SHRAPNEL_LATENCY_CHILD").is_some()
}

/// `{ctime} High Latency: (0.2xxs) for <coro #N name='hog' dead=1 started=1 scheduled=0 at 0x…> at [...]`
fn assert_shrapnel_line(line: &str, name: &str) {
    let (stamp, rest) = line.split_once(" High Latency: (").unwrap();
    assert_eq!(stamp.split_whitespace().count(), 5, "ctime in {line:?}");
    let (secs, rest) = rest.split_once("s) for <coro #").unwrap();
    assert!(secs.parse::<f64>().unwrap() >= 0.25, "{line}");
    let (_id, rest) = rest.split_once(' ').unwrap();
    assert!(
        rest.starts_with(&format!("name='{name}' dead=1 started=1 scheduled=0 at 0x")),
        "{line}"
    );
}

#[test]
fn child_one_stall() {
    if !in_child() {
        return;
    }
    shrapnel::Builder::new()
        .name("hog")
        .spawn(|| busy_hog_function(Duration::from_millis(250)))
        .unwrap();
    shrapnel::spawn(|| shrapnel::sleep(Duration::from_millis(20)));
    assert_eq!(shrapnel::event_loop(), 0);
}

#[test]
fn a_250ms_stall_warns_once_with_the_sampled_stack() {
    if in_child() {
        return;
    }
    let (err, status) = child("child_one_stall");
    assert!(status.success(), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("High Latency")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert_shrapnel_line(lines[0], "hog");
    assert!(
        lines[0].contains("busy_hog_function"),
        "the sampled stack names the hog: {err}"
    );
}

#[test]
fn child_clock_bound_stall() {
    if !in_child() {
        return;
    }
    shrapnel::Builder::new()
        .name("clock")
        .spawn(|| clock_bound_hog_function(Duration::from_millis(250)))
        .unwrap();
    assert_eq!(shrapnel::event_loop(), 0);
}

#[test]
fn a_stall_inside_the_clock_call_names_the_caller() {
    if in_child() {
        return;
    }
    for _ in 0..3 {
        let (err, status) = child("child_clock_bound_stall");
        assert!(status.success(), "{err}");
        let lines: Vec<&str> = err.lines().filter(|l| l.contains("High Latency")).collect();
        assert_eq!(lines.len(), 1, "{err}");
        assert_shrapnel_line(lines[0], "clock");
        assert!(
            lines[0].contains("clock_bound_hog_function"),
            "the sampled stack names the function that called the clock: {err}"
        );
    }
}

#[test]
fn child_long_stall() {
    if !in_child() {
        return;
    }
    shrapnel::latency::set_latency_warning(0.5).unwrap(); // 100 ms
    shrapnel::Builder::new()
        .name("long")
        .spawn(|| busy_hog_function(Duration::from_millis(900)))
        .unwrap();
    assert_eq!(shrapnel::event_loop(), 0);
}

#[test]
fn a_long_stall_is_reported_while_it_lasts_at_doubling_marks() {
    if in_child() {
        return;
    }
    let (err, status) = child("child_long_stall");
    assert!(status.success(), "{err}");
    let interim: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("still running after"))
        .collect();
    // Marks at 2x, 4x, 8x of 100 ms (200, 400, 800 ms); a slow first symbolization on a busy
    // machine may merge marks, so at least one and at most three, at growing durations.
    assert!((1..=3).contains(&interim.len()), "{err}");
    let mut last = 0.0;
    for l in &interim {
        assert!(
            l.contains("name='long'") && l.contains("busy_hog_function"),
            "{l}"
        );
        let secs: f64 = l
            .split("after (")
            .nth(1)
            .unwrap()
            .split('s')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(secs >= 0.2 && secs > last, "{l}");
        last = secs;
    }
    let finals: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("High Latency: ("))
        .collect();
    assert_eq!(finals.len(), 1, "{err}");
}

#[test]
fn child_silenced() {
    if !in_child() {
        return;
    }
    assert_eq!(shrapnel::latency::set_latency_warning(0.0), Ok(1.0));
    shrapnel::spawn(|| busy_hog_function(Duration::from_millis(250)));
    assert_eq!(shrapnel::event_loop(), 0);
}

#[test]
fn factor_zero_silences_and_out_of_range_is_rejected() {
    if in_child() {
        return;
    }
    let (err, status) = child("child_silenced");
    assert!(status.success(), "{err}");
    assert!(!err.contains("High Latency"), "{err}");
    shrapnel::ensure();
    assert!(shrapnel::latency::set_latency_warning(301.0).is_err());
    assert!(shrapnel::latency::set_latency_warning(-0.5).is_err());
}

#[test]
fn child_per_core_stalls() {
    if !in_child() {
        return;
    }
    let codes = shrapnel::run_per_core(2, |core| {
        shrapnel::Builder::new()
            .name(format!("hog on core {core}"))
            .spawn(|| busy_hog_function(Duration::from_millis(250)))
            .unwrap();
    })
    .unwrap();
    assert_eq!(codes, vec![0, 0]);
}

/// Each scheduler of `run_per_core` has its own watchdog: a stall on either is reported,
/// with a stack sampled on that scheduler's thread.
#[test]
fn every_scheduler_of_run_per_core_is_watched() {
    if in_child() {
        return;
    }
    let (err, status) = child("child_per_core_stalls");
    assert!(status.success(), "{err}");
    for core in 0..2 {
        let name = format!("hog on core {core}");
        let lines: Vec<&str> = err
            .lines()
            .filter(|l| l.contains("High Latency") && l.contains(&format!("name='{name}'")))
            .collect();
        assert_eq!(lines.len(), 1, "{err}");
        assert_shrapnel_line(lines[0], &name);
        assert!(lines[0].contains("busy_hog_function"), "{err}");
    }
}
