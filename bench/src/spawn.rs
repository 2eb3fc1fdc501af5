//! What the spawn benchmarks (`bench/examples/spawn_shrapnel.rs`, `spawn_tokio.rs`) share:
//! the count from the command line and the result line `bench/echo.sh --spawn` reads.

use std::time::Duration;

/// Peak resident set size of this process so far, in MiB (`getrusage` maxrss).
pub fn peak_rss_mib() -> f64 {
    // SAFETY: an all-zero `rusage` is a valid value of the plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage the call fills.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return f64::NAN;
    }
    ru.ru_maxrss as f64 / 1024.0 // KiB on Linux
}

/// Print the result line: `spawn n=.. spawn_ms=.. total_ms=.. peak_rss_mib=..`.
pub fn report(n: usize, spawn: Duration, total: Duration) {
    println!(
        "spawn n={n} spawn_ms={:.1} total_ms={:.1} peak_rss_mib={:.1}",
        spawn.as_secs_f64() * 1e3,
        total.as_secs_f64() * 1e3,
        peak_rss_mib()
    );
}

/// How long each spawned coroutine or task sleeps.
pub const SLEEP: Duration = Duration::from_secs(1);
