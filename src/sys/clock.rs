//! The monotonic clocks behind the runtime's `Clock`: the precise one, a coarse one that is
//! cheaper to read, and a fast one for timing slices.
//!
//! - [`monotonic_ns`]: `CLOCK_MONOTONIC`, the scheduler's time (deadlines, `now()`).
//! - [`coarse_monotonic_ns`]: the same clock as of the kernel's last tick
//!   (`CLOCK_MONOTONIC_COARSE` on Linux, `CLOCK_MONOTONIC_FAST` on FreeBSD and DragonFly):
//!   about 5 ns instead of 25 ns, never ahead of `CLOCK_MONOTONIC`, behind it by at most one
//!   tick (`clock_getres` says how long: 4 ms with HZ=250). Elsewhere it is
//!   `CLOCK_MONOTONIC`.
//! - [`fast_monotonic_ns`]: on x86_64 with an invariant TSC (constant rate, not stopped in
//!   sleep states: CPUID 0x8000_0007 EDX bit 8) that the kernel itself trusts, the TSC
//!   scaled to `CLOCK_MONOTONIC` nanoseconds: about 10 ns, and within a few microseconds
//!   of `CLOCK_MONOTONIC` (it may be ahead). Elsewhere it is `CLOCK_MONOTONIC`.
//!
//! The TSC is scaled per thread: the first reading anchors it to `CLOCK_MONOTONIC`, readings
//! are `CLOCK_MONOTONIC` until enough ticks have passed to measure the TSC's rate, and the
//! anchor and the rate are renewed from `CLOCK_MONOTONIC` every 2^27 ticks (about 45 ms at
//! 3 GHz), so NTP's rate corrections are followed and the offset cannot grow; at a renewal
//! the reading may step back by a few microseconds.

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

/// `CLOCK_MONOTONIC` nanoseconds from the TSC where that is sound (see the module doc),
/// otherwise [`monotonic_ns`]. For timing intervals only: it may be a few microseconds
/// ahead of `CLOCK_MONOTONIC`, so it must not decide whether a deadline has passed.
pub(crate) fn fast_monotonic_ns() -> u64 {
    cfg_if::cfg_if! {
        if #[cfg(target_arch = "x86_64")] {
            tsc::now_ns()
        } else {
            monotonic_ns()
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod tsc {
    use core::arch::x86_64::{__cpuid, _rdtsc};
    use core::sync::atomic::{AtomicU8, Ordering};
    use std::cell::Cell;

    use super::monotonic_ns;

    /// Renew the anchor and the rate after this many ticks.
    const RENEW_TICKS: u64 = 1 << 27;
    /// Measure the first rate over at least this many ticks (about 0.35 ms at 3 GHz).
    const FIRST_RATE_TICKS: u64 = 1 << 20;

    /// One thread's mapping from TSC readings to `CLOCK_MONOTONIC` nanoseconds.
    #[derive(Clone, Copy)]
    struct Scale {
        /// The TSC when `ns` was read (0: no anchor yet).
        tsc: u64,
        /// `CLOCK_MONOTONIC` at `tsc`.
        ns: u64,
        /// Nanoseconds per tick, 32.32 fixed point (0: rate not measured yet).
        mult: u64,
    }

    std::thread_local! {
        static SCALE: Cell<Scale> = const { Cell::new(Scale { tsc: 0, ns: 0, mult: 0 }) };
    }

    fn rdtsc() -> u64 {
        // SAFETY: RDTSC exists on every x86_64 CPU; `usable` checked that the OS lets user
        // code run it (it can be made to fault, on Linux with PR_SET_TSC).
        #[allow(unused_unsafe)]
        unsafe {
            _rdtsc()
        }
    }

    /// The TSC runs at a constant rate in every power state, and the OS lets us read it.
    fn usable() -> bool {
        /// 0: not checked yet, 1: usable, 2: not usable.
        static USABLE: AtomicU8 = AtomicU8::new(0);
        match USABLE.load(Ordering::Relaxed) {
            1 => true,
            2 => false,
            _ => {
                let ok = invariant() && os_allows();
                USABLE.store(if ok { 1 } else { 2 }, Ordering::Relaxed);
                ok
            }
        }
    }

    /// CPUID 0x8000_0007 EDX bit 8: the invariant TSC.
    fn invariant() -> bool {
        // SAFETY: CPUID exists on every x86_64 CPU; leaf 0x8000_0000 says which extended
        // leaves exist, and 0x8000_0007 is asked only when it does.
        #[allow(unused_unsafe)]
        unsafe {
            __cpuid(0x8000_0000).eax >= 0x8000_0007 && __cpuid(0x8000_0007).edx & (1 << 8) != 0
        }
    }

    /// Linux: RDTSC is not made to fault for this process (PR_GET_TSC), and the kernel keeps
    /// its own time with the TSC, so it found the TSC synchronized across CPUs. Elsewhere
    /// the CPU's word is taken.
    fn os_allows() -> bool {
        cfg_if::cfg_if! {
            if #[cfg(any(target_os = "linux", target_os = "android"))] {
                let mut mode: libc::c_int = 0;
                // SAFETY: PR_GET_TSC stores one int through the pointer it is given.
                let rc = unsafe {
                    libc::prctl(libc::PR_GET_TSC, &mut mode as *mut libc::c_int)
                };
                let source = std::fs::read_to_string(
                    "/sys/devices/system/clocksource/clocksource0/current_clocksource",
                )
                .unwrap_or_default();
                rc == 0 && mode == libc::PR_TSC_ENABLE && source.trim() == "tsc"
            } else {
                true
            }
        }
    }

    pub(super) fn now_ns() -> u64 {
        if !usable() {
            return monotonic_ns();
        }
        let tsc = rdtsc();
        let scale = SCALE.with(Cell::get);
        let ticks = tsc.wrapping_sub(scale.tsc);
        if scale.mult != 0 && ticks < RENEW_TICKS {
            return scale.ns + ((ticks as u128 * scale.mult as u128) >> 32) as u64;
        }
        renew(scale)
    }

    /// Read `CLOCK_MONOTONIC`, anchor the scale there and measure the rate since the last
    /// anchor; returns the reading.
    #[cold]
    #[inline(never)]
    fn renew(old: Scale) -> u64 {
        // The TSC halfway through the clock read is the best guess of when it was taken.
        let before = rdtsc();
        let ns = monotonic_ns();
        let tsc = before + rdtsc().wrapping_sub(before) / 2;
        let ticks = tsc.wrapping_sub(old.tsc);
        let new = if old.tsc == 0 || ticks as i64 <= 0 || ns <= old.ns {
            // The first reading, or the TSC went back (another CPU's): anchor again and keep
            // whatever rate was known.
            Scale {
                tsc,
                ns,
                mult: old.mult,
            }
        } else if ticks < FIRST_RATE_TICKS && old.mult == 0 {
            // Too soon to measure the rate well: keep the anchor, answer with the clock.
            return ns;
        } else {
            let mult = (((ns - old.ns) as u128) << 32) / ticks as u128;
            Scale {
                tsc,
                ns,
                mult: u64::try_from(mult).unwrap_or(0),
            }
        };
        SCALE.with(|s| s.set(new));
        ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarse_is_never_ahead_and_fast_follows_the_clock() {
        let mut last_fast = 0;
        for _ in 0..200_000 {
            let coarse = coarse_monotonic_ns();
            let precise = monotonic_ns();
            assert!(
                coarse <= precise,
                "coarse {coarse} ahead of precise {precise}"
            );
            let fast = fast_monotonic_ns();
            let after = monotonic_ns();
            // Within 1 ms of the clock read around it (it is within microseconds; the margin
            // is for a preempted thread on a loaded machine).
            assert!(
                fast + 1_000_000 >= precise && fast <= after + 1_000_000,
                "fast {fast} not between {precise} and {after} (± 1 ms)"
            );
            // Steps back only by a little, at a renewal.
            assert!(
                fast + 100_000 >= last_fast,
                "fast went back: {last_fast} -> {fast}"
            );
            last_fast = fast;
        }
    }
}
