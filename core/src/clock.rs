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

impl TickRate {
    /// Ticks in `d`, rounded up so a sleep never ends early; saturates.
    pub fn ticks(self, d: Duration) -> u64 {
        let t = (d.as_nanos() * self.0 as u128).div_ceil(1_000_000_000);
        u64::try_from(t).unwrap_or(u64::MAX)
    }
    /// The duration of `ticks`.
    pub fn duration(self, ticks: u64) -> Duration {
        let ns = ticks as u128 * 1_000_000_000 / self.0.max(1) as u128;
        Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }
}
