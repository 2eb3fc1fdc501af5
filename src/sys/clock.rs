//! The monotonic clocks behind the runtime's `Clock`: the precise one, and a coarse one
//! that is cheaper to read.
//!
//! - [`monotonic_ns`]: `CLOCK_MONOTONIC`, the scheduler's time (deadlines, `now()`); about
//!   25 ns here, most of it the `rdtsc` inside the vDSO.
//! - [`coarse_monotonic_ns`]: the same clock as of the kernel's last tick
//!   (`CLOCK_MONOTONIC_COARSE` on Linux, `CLOCK_MONOTONIC_FAST` on FreeBSD and DragonFly):
//!   about 5 ns, never ahead of `CLOCK_MONOTONIC`, behind it by at most [`coarse_lag_ns`]
//!   (one tick: 4 ms with HZ=250). Elsewhere it is `CLOCK_MONOTONIC` itself.

use core::sync::atomic::{AtomicU64, Ordering};

use libc::clockid_t;

/// The clock [`coarse_monotonic_ns`] reads.
const COARSE: clockid_t = {
    cfg_if::cfg_if! {
        if #[cfg(any(target_os = "linux", target_os = "android"))] {
            libc::CLOCK_MONOTONIC_COARSE
        } else if #[cfg(any(target_os = "freebsd", target_os = "dragonfly"))] {
            libc::CLOCK_MONOTONIC_FAST
        } else {
            libc::CLOCK_MONOTONIC
        }
    }
};

fn read(clock: clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec to a valid pointer; every clock id used here
    // exists on the target it is chosen for.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// `CLOCK_MONOTONIC` in nanoseconds.
pub(crate) fn monotonic_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC)
}

/// `CLOCK_MONOTONIC` as of the last kernel tick, in nanoseconds: never ahead of
/// [`monotonic_ns`], behind it by at most one tick.
pub(crate) fn coarse_monotonic_ns() -> u64 {
    read(COARSE)
}

/// The most [`coarse_monotonic_ns`] lags behind [`monotonic_ns`], in nanoseconds: the coarse
/// clock's resolution, which is the kernel's tick. Linux reports it exactly; FreeBSD may
/// report the hardware counter's resolution instead, so there at least 10 ms is assumed (a
/// tick at HZ=100, the slowest in use). Asked once.
pub(crate) fn coarse_lag_ns() -> u64 {
    /// 0: not asked yet.
    static LAG: AtomicU64 = AtomicU64::new(0);
    let cached = LAG.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_getres writes one timespec to a valid pointer.
    let rc = unsafe { libc::clock_getres(COARSE, &mut ts) };
    let reported = if rc == 0 {
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    } else {
        0
    };
    let floor = if cfg!(any(target_os = "linux", target_os = "android"))
        || COARSE == libc::CLOCK_MONOTONIC
    {
        1
    } else {
        10_000_000
    };
    let lag = reported.max(floor);
    LAG.store(lag, Ordering::Relaxed);
    lag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarse_is_never_ahead_of_the_precise_clock() {
        let lag = coarse_lag_ns();
        assert!((1..=100_000_000).contains(&lag), "lag {lag} ns");
        for _ in 0..100_000 {
            let coarse = coarse_monotonic_ns();
            let precise = monotonic_ns();
            assert!(
                coarse <= precise,
                "coarse {coarse} ahead of precise {precise}"
            );
        }
    }
}
