//! The Clock trait: where the scheduler's notion of time comes from.
//!
//! Time inside the scheduler is a count of monotonic ticks ([`Instant`]); a clock says how
//! many ticks make a second. POSIX uses `CLOCK_MONOTONIC` in nanoseconds, Cortex-M a
//! SysTick counter. A wall clock is optional and only used for timestamps in messages.

use core::fmt;
use core::time::Duration;

/// A monotonic time source.
///
/// Only [`now`](Clock::now) is required. A clock with a cheaper reading that lags behind
/// offers it through [`now_coarse`](Clock::now_coarse) and says by how much with
/// [`coarse_lag`](Clock::coarse_lag); the scheduler uses it on its hot paths. Without them,
/// every reading is `now`.
pub trait Clock {
    /// Ticks since an arbitrary fixed origin; never decreases. Deadlines are taken from
    /// this reading.
    fn now(&self) -> u64;
    /// A cheaper reading of the same clock that is never ahead of [`now`](Clock::now) and
    /// behind it by at most [`coarse_lag`](Clock::coarse_lag) ticks; never decreases
    /// (`CLOCK_MONOTONIC_COARSE`: 5 ns instead of 25, one kernel tick behind at most).
    ///
    /// The event loop fires timers against it while coroutines are ready to run, so a timer
    /// may fire up to one lag late, never early (before the loop waits it reads `now`); the
    /// `latency` feature times slices with it (see that module).
    fn now_coarse(&self) -> u64 {
        self.now()
    }
    /// The most [`now_coarse`](Clock::now_coarse) lags behind [`now`](Clock::now), in ticks;
    /// 0 when they are the same reading.
    fn coarse_lag(&self) -> u64 {
        0
    }
    /// How many ticks make one second.
    fn ticks_per_second(&self) -> u64;
    /// The wall clock for timestamps in messages (and nothing else), if the target has
    /// one: seconds since 1970-01-01 00:00 *in the local time zone* (Unix time plus the
    /// zone's offset), so that [`write_ctime`] prints local time, as Shrapnel's messages
    /// do. A platform without time zones returns Unix time.
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

/// Format `secs` seconds since 1970-01-01 00:00 like C's `ctime`, without the newline:
/// `Sat Apr 14 20:55:39 2012`. The one formatter of timestamps in messages: given a
/// [`Clock::wall_clock`] reading (which a platform shifts to its local time zone), it
/// prints that zone's time; given Unix time, UTC.
pub fn write_ctime(out: &mut impl fmt::Write, secs: u64) -> fmt::Result {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    write!(
        out,
        "{} {} {:2} {:02}:{:02}:{:02} {}",
        DAYS[(days.rem_euclid(7)) as usize],
        MONTHS[(month - 1) as usize],
        day,
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        year
    )
}

#[cfg(test)]
mod ctime_tests {
    use super::*;

    #[test]
    fn ctime_matches_shrapnel_example() {
        let mut s: heapless::String<64> = heapless::String::new();
        write_ctime(&mut s, 1_334_436_939).unwrap();
        assert_eq!(s, "Sat Apr 14 20:55:39 2012");
        s.clear();
        write_ctime(&mut s, 0).unwrap();
        assert_eq!(s, "Thu Jan  1 00:00:00 1970");
        s.clear();
        write_ctime(&mut s, 951_782_400).unwrap(); // leap day
        assert_eq!(s, "Tue Feb 29 00:00:00 2000");
    }
}
