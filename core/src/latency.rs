//! Latency reporting (feature `latency`): every slice — resume to yield or block — is
//! timed, per-coroutine slice statistics are kept for `top`, and a slice longer than the
//! threshold prints Shrapnel's warning through the debug sink:
//!
//! ```text
//! Sat Apr 14 20:55:39 2012 High Latency: (3.884s) for <coro #1 name='worker' dead=0 started=1 scheduled=0 at 0x55d0c1a2b3c0>
//! ```
//!
//! A switch costs one cheap clock reading: a slice ends at
//! [`Clock::now_coarse`](crate::clock::Clock::now_coarse) (`CLOCK_MONOTONIC_COARSE` with the
//! POSIX runtime, about 5 ns instead of 25), and the next slice starts where it ended when
//! only the scheduler's bookkeeping ran in between (that bookkeeping is counted in the next
//! slice). After a poll, a report or `where_all`, the next slice starts at a precise reading
//! instead. A slice during which the coarse clock ticked (every 4 ms at HZ=250) is measured
//! at its end with the precise clock, so the warning never misses a slice, and a reported
//! duration is at most one coarse tick more than the slice really ran (its start may be the
//! coarse end of the slice before), never less. The same holds for the per-coroutine
//! statistics (`top`), with one more consequence: a slice shorter than a tick counts as 0
//! unless a tick passes during it, and then it also counts what ran since the last tick.
//!
//! The threshold is `factor × 0.2 s` ([`set_latency_warning`]; 0 disables). The scheduler
//! also publishes the running slice in a `SliceProbe` of plain atomics (with `std`), so another
//! thread (the runtime's stall watchdog) can notice a slice that is *still* running and
//! sample its stack. A runtime can replace the default report with [`set_latency_hook`]
//! (to add local time and the sampled stack).

use core::fmt::{self, Write as _};
#[cfg(feature = "std")]
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;

use crate::clock::TickRate;
use crate::coro::CoroInner;
use crate::debug::SliceStats;
use crate::sched::{sched, SchedState};

/// Seconds of the threshold per unit of factor (Shrapnel's 0.2 s).
pub const BASE_THRESHOLD: Duration = Duration::from_millis(200);
/// The largest accepted factor.
pub const MAX_FACTOR: f64 = 300.0;

/// What the running slice is, published with relaxed atomics for a watchdog thread
/// (feature `std`: a watchdog is another thread).
#[cfg(feature = "std")]
#[derive(Debug, Default)]
pub struct SliceProbe {
    /// Incremented when a slice starts and when it ends: odd while a coroutine runs.
    pub seq: AtomicU64,
    /// Clock ticks at the start of the running slice.
    pub start: AtomicU64,
    /// Id of the coroutine running the slice.
    pub coro: AtomicU64,
    /// The warning threshold in ticks (0: disabled).
    pub threshold: AtomicU64,
    /// Stack range of the running coroutine (limit, base), for a sampler's bounds checks.
    pub stack_limit: AtomicU64,
    /// See `stack_limit`.
    pub stack_base: AtomicU64,
}

/// One slice that ran past the threshold.
#[derive(Clone, Debug)]
pub struct LatencyReport {
    /// How long the slice ran.
    pub duration: Duration,
    /// The coroutine, in Shrapnel's form:
    /// `<coro #1 name='…' dead=0 started=1 scheduled=0 at 0x…>`.
    pub coro: heapless::String<192>,
    /// Its id.
    pub id: u64,
    /// The probe sequence number of the slice (matches a watchdog's sample).
    pub seq: u64,
}

impl LatencyReport {
    /// `High Latency: (3.884s) for <coro …>` (without the leading timestamp).
    pub fn body(&self) -> heapless::String<256> {
        let mut s = heapless::String::new();
        let _ = write!(
            s,
            "High Latency: ({}.{:03}s) for {}",
            self.duration.as_secs(),
            self.duration.subsec_millis(),
            self.coro
        );
        s
    }
}

/// Why [`set_latency_warning`] refused a factor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LatencyFactorError(pub f64);

impl fmt::Display for LatencyFactorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "latency factor {} is out of range: use 0 (off) to {MAX_FACTOR}; the threshold is factor × 0.2 s",
            self.0
        )
    }
}

#[cfg(feature = "std")]
impl std::error::Error for LatencyFactorError {}

/// Warn about slices longer than `factor × 0.2 s`; 0 disables. Returns the old factor.
#[track_caller]
pub fn set_latency_warning(factor: f64) -> Result<f64, LatencyFactorError> {
    if !(0.0..=MAX_FACTOR).contains(&factor) {
        return Err(LatencyFactorError(factor));
    }
    let s = sched();
    let l = s.latency();
    let old = l.factor.replace(factor);
    let ticks = s.rate().ticks(BASE_THRESHOLD.mul_f64(factor));
    l.threshold.set(ticks);
    #[cfg(feature = "std")]
    l.probe.threshold.store(ticks, Ordering::Relaxed);
    Ok(old)
}

/// The current factor.
#[track_caller]
pub fn latency_warning() -> f64 {
    sched().latency().factor.get()
}

/// Replace the report printer (`None`: the default line on the debug sink).
#[track_caller]
pub fn set_latency_hook(hook: Option<fn(&LatencyReport)>) -> Option<fn(&LatencyReport)> {
    sched().latency().hook.replace(hook)
}

/// The probe of this thread's scheduler.
#[cfg(feature = "std")]
pub fn slice_probe() -> alloc::sync::Arc<SliceProbe> {
    sched().latency().probe.clone()
}

/// The scheduler's latency state.
pub(crate) struct Latency {
    factor: core::cell::Cell<f64>,
    threshold: core::cell::Cell<u64>,
    hook: core::cell::Cell<Option<fn(&LatencyReport)>>,
    #[cfg(feature = "std")]
    probe: alloc::sync::Arc<SliceProbe>,
    /// How far the clock's coarse reading may lag behind `now` (ticks).
    lag: u64,
    /// Slices started (odd while one runs); the probe's `seq` mirrors it with std.
    seq: core::cell::Cell<u64>,
    /// The end of the last slice (a reading never ahead of the clock), while only the
    /// scheduler's bookkeeping has run since: the next slice starts there, and the event
    /// loop takes it as its time. `None` once something that takes time outside a slice
    /// has run (a poll, a report, `where_all`) or the event loop is not running.
    chain: core::cell::Cell<Option<u64>>,
}

impl Latency {
    /// The end of the last slice, while only the scheduler's bookkeeping ran since.
    #[inline]
    pub(crate) fn chain(&self) -> Option<u64> {
        self.chain.get()
    }

    /// Something took time outside a slice: the next slice reads the clock.
    #[inline]
    pub(crate) fn break_chain(&self) {
        self.chain.set(None);
    }

    pub(crate) fn new(rate: TickRate, lag: u64) -> Self {
        let threshold = rate.ticks(BASE_THRESHOLD);
        #[cfg(feature = "std")]
        let probe = alloc::sync::Arc::new(SliceProbe::default());
        #[cfg(feature = "std")]
        probe.threshold.store(threshold, Ordering::Relaxed);
        Latency {
            factor: core::cell::Cell::new(1.0),
            threshold: core::cell::Cell::new(threshold),
            hook: core::cell::Cell::new(None),
            #[cfg(feature = "std")]
            probe,
            lag,
            seq: core::cell::Cell::new(0),
            chain: core::cell::Cell::new(None),
        }
    }
}

/// Per-coroutine counters.
#[derive(Default)]
pub(crate) struct CoroSlices {
    count: core::cell::Cell<u64>,
    total: core::cell::Cell<u64>,
    max: core::cell::Cell<u64>,
}

impl CoroSlices {
    /// The counters as durations.
    pub(crate) fn stats(&self, rate: TickRate) -> SliceStats {
        SliceStats {
            count: self.count.get(),
            total: rate.duration(self.total.get()),
            max: rate.duration(self.max.get()),
        }
    }

    /// One slice of `dt` ticks ran.
    fn account(&self, dt: u64) {
        self.count.set(self.count.get() + 1);
        self.total.set(self.total.get() + dt);
        if dt > self.max.get() {
            self.max.set(dt);
        }
    }
}

/// Called by `run` right before switching into `co`; returns the start tick: the end of
/// the previous slice when only the scheduler's bookkeeping ran since, otherwise a precise
/// reading.
#[inline]
pub(crate) fn slice_begin(s: &SchedState, co: &CoroInner) -> u64 {
    let l = s.latency();
    let t0 = match l.chain.get() {
        Some(t) => t,
        None => s.clock().now(),
    };
    let seq = l.seq.get() + 1;
    l.seq.set(seq);
    // Plain stores: this thread is the probe's only writer.
    #[cfg(feature = "std")]
    {
        let p = &*l.probe;
        let (limit, base) = co.stack_range();
        p.start.store(t0, Ordering::Relaxed);
        p.coro.store(co.id(), Ordering::Relaxed);
        p.stack_limit.store(limit as u64, Ordering::Relaxed);
        p.stack_base.store(base as u64, Ordering::Relaxed);
        p.seq.store(seq, Ordering::Release);
    }
    #[cfg(not(feature = "std"))]
    let _ = co;
    t0
}

/// Called by `run` after `co` switched back; returns when the slice ended.
#[inline]
pub(crate) fn slice_end(s: &SchedState, co: &CoroInner, t0: u64) -> u64 {
    let l = s.latency();
    let clock = s.clock();
    let coarse = clock.now_coarse();
    let threshold = l.threshold.get();
    let lag = l.lag;
    let t1 = if lag == 0 {
        // The coarse reading is the precise one.
        coarse.max(t0)
    } else if coarse > t0 || (threshold != 0 && lag >= threshold) {
        // A tick of the coarse clock passed during the slice (or the threshold is shorter
        // than one): measure it with the precise clock.
        clock.now().max(coarse)
    } else {
        // Shorter than a tick: counted as nothing.
        t0
    };
    let seq = l.seq.get();
    l.seq.set(seq + 1);
    #[cfg(feature = "std")]
    l.probe.seq.store(seq + 1, Ordering::Release);
    l.chain.set(Some(t1));
    let dt = t1 - t0;
    co.slices().account(dt);
    if threshold != 0 && dt > threshold {
        report(s, co, dt, seq);
        // The report took time of its own (a hook may symbolize a stack).
        l.chain.set(None);
    }
    t1
}

#[cold]
fn report(s: &SchedState, co: &CoroInner, dt: u64, seq: u64) {
    let mut coro = heapless::String::new();
    let _ = co.describe(&mut coro);
    let r = LatencyReport {
        duration: s.rate().duration(dt),
        coro,
        id: co.id(),
        seq,
    };
    match s.latency().hook.get() {
        Some(hook) => hook(&r),
        None => {
            let mut line: heapless::String<320> = heapless::String::new();
            match s.clock().wall_clock() {
                Some(secs) => {
                    let _ = crate::clock::write_ctime(&mut line, secs);
                }
                None => {
                    let up = s.rate().duration(s.uptime_ticks());
                    let _ = write!(line, "+{}.{:03}s", up.as_secs(), up.subsec_millis());
                }
            }
            let _ = writeln!(line, " {}", r.body());
            s.sink().write(line.as_bytes());
        }
    }
}
