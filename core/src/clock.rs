//! The Clock trait: where the scheduler's notion of time comes from.
//!
//! Time inside the scheduler is a count of monotonic ticks ([`Instant`]); a clock says how
//! many ticks make a second. POSIX uses `CLOCK_MONOTONIC` in nanoseconds, Cortex-M a
//! SysTick counter. A wall clock is optional and only used for timestamps in messages.

use core::time::Duration;

/// A monotonic time source.
pub trait Clock {
    /// Ticks since an arbitrary fixed origin; never decreases.
    fn now(&self) -> u64;
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
