//! The Clock trait: where the scheduler's notion of time comes from.
//!
//! Time inside the scheduler is a count of monotonic ticks ([`Instant`]); a clock says how
//! many ticks make a second. POSIX uses `CLOCK_MONOTONIC` in nanoseconds, Cortex-M a
//! SysTick counter. A wall clock is optional and only used for timestamps in messages.

use core::time::Duration;

/// A monotonic time source.
///
/// Only [`now`](Clock::now) is required. A clock that has cheaper, less exact readings
/// offers them through [`now_coarse`](Clock::now_coarse) and [`now_fast`](Clock::now_fast),
/// which the scheduler uses on its hot paths; both default to `now`.
pub trait Clock {
    /// Ticks since an arbitrary fixed origin; never decreases. Deadlines are taken from
    /// this reading.
    fn now(&self) -> u64;
    /// A cheaper reading of the same clock that may lag [`now`](Clock::now) by up to one
    /// tick of a coarse timer (`CLOCK_MONOTONIC_COARSE`: 1–4 ms on Linux), but is never
    /// ahead of it; never decreases. The event loop fires timers against it while coroutines
    /// are ready to run, so a timer may fire up to one coarse tick late, never early; before
    /// it waits for I/O it reads `now`.
    fn now_coarse(&self) -> u64 {
        self.now()
    }
    /// A cheap reading for timing intervals (the slices of feature `latency`): in the same
    /// ticks and within a few microseconds of [`now`](Clock::now), but possibly ahead of it,
    /// so never used to decide that a deadline has passed.
    fn now_fast(&self) -> u64 {
        self.now()
    }
    /// How many ticks make one second.
    fn ticks_per_second(&self) -> u64;
    /// Seconds since the Unix epoch, if the target has a wall clock.
    fn wall_clock(&self) -> Option<u64> {
        None
    }
}

/// A point on the scheduler's monotonic clock, in ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(pub u64);

/// Converts between [`Duration`]s and ticks for one tick rate.
#[derive(Clone, Copy, Debug)]
pub struct TickRate(pub u64);

/// Nanoseconds in a second.
const NANOS_PER_SEC: u64 = 1_000_000_000;

impl TickRate {
    /// Ticks in `d`, rounded up so a sleep never ends early; saturates.
    ///
    /// Nanosecond clocks (the POSIX runtime's) and clocks whose tick is a whole number of
    /// nanoseconds (1 kHz, 1 MHz, ...) convert without a 128-bit division.
    #[inline]
    pub fn ticks(self, d: Duration) -> u64 {
        let rate = self.0;
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        if rate == NANOS_PER_SEC {
            return ns;
        }
        if rate != 0 && NANOS_PER_SEC.is_multiple_of(rate) && ns != u64::MAX {
            return ns.div_ceil(NANOS_PER_SEC / rate);
        }
        let t = (d.as_nanos() * rate as u128).div_ceil(NANOS_PER_SEC as u128);
        u64::try_from(t).unwrap_or(u64::MAX)
    }
    /// The duration of `ticks`.
    #[inline]
    pub fn duration(self, ticks: u64) -> Duration {
        let rate = self.0;
        if rate == NANOS_PER_SEC {
            return Duration::from_nanos(ticks);
        }
        let ns = ticks as u128 * NANOS_PER_SEC as u128 / rate.max(1) as u128;
        Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `ticks` computes, the slow way.
    fn ticks_exact(rate: u64, d: Duration) -> u64 {
        let t = (d.as_nanos() * rate as u128).div_ceil(NANOS_PER_SEC as u128);
        u64::try_from(t).unwrap_or(u64::MAX)
    }

    #[test]
    fn fast_conversions_agree_with_the_exact_one() {
        let durations = [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_nanos(999),
            Duration::from_nanos(1_000),
            Duration::from_nanos(1_001),
            Duration::from_micros(1_500),
            Duration::from_millis(200),
            Duration::from_secs(3_600),
            Duration::from_secs(u64::MAX / NANOS_PER_SEC),
            Duration::from_secs(u64::MAX / NANOS_PER_SEC + 1),
            Duration::MAX,
        ];
        for rate in [
            NANOS_PER_SEC,
            1_000,
            1_000_000,
            32_768,
            12_000_000,
            3_000_000_000,
            1,
        ] {
            for d in durations {
                assert_eq!(
                    TickRate(rate).ticks(d),
                    ticks_exact(rate, d),
                    "{d:?} at {rate} Hz"
                );
            }
        }
        assert_eq!(
            TickRate(NANOS_PER_SEC).duration(1_234),
            Duration::from_nanos(1_234)
        );
        assert_eq!(
            TickRate(1_000).duration(1_234),
            Duration::from_millis(1_234)
        );
    }
}
