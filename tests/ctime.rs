//! One ctime for every message: the core's timestamps (the latency line without a hook
//! prints `Clock::wall_clock` through `clock::write_ctime`) and `print_stderr`'s are both
//! local time. Checked in a child process run in a time zone five hours east of UTC.

use shrapnel::platform::clock::{write_ctime, Clock};
use shrapnel::MonotonicClock;

const CHILD: &str = "SHRAPNEL_CTIME_CHILD";

fn child() {
    for _ in 0..3 {
        let utc = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut print_stderr_time = String::new();
        shrapnel::stderr::write_local_ctime(&mut print_stderr_time, utc as i64).unwrap();
        let mut core_time = String::new();
        write_ctime(&mut core_time, MonotonicClock.wall_clock().unwrap()).unwrap();
        let mut utc_time = String::new();
        write_ctime(&mut utc_time, utc).unwrap();
        if print_stderr_time != core_time {
            continue; // a second boundary between the two readings: read again
        }
        assert_ne!(core_time, utc_time, "local time, not UTC, in a UTC+5 zone");
        return;
    }
    panic!("the core's timestamp and print_stderr's differ");
}

#[test]
fn the_core_and_print_stderr_print_the_same_local_time() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "the_core_and_print_stderr_print_the_same_local_time",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .env("TZ", "XYZ-5")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
