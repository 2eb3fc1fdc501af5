//! Spinning before a wait (feature `std`): a loop that has run dry keeps polling the I/O
//! backend without blocking, for a short window, before it blocks. Work that arrives within
//! the window (a readiness event, a message from another scheduler) is picked up without
//! the thread going to sleep and being woken again: a wake-up costs two context switches
//! and, from another CPU, an interrupt. Off by default ([`set_idle_spin`]).
//!
//! Each spin is a whole iteration of the event loop with a zero timeout (timers, signalled
//! events, the loop hook all run as usual), so the window changes only whether the loop
//! blocks, never what it does when something arrives. Before each of those polls the
//! thread yields its CPU (`std::thread::yield_now`, `sched_yield` on POSIX): a spinning
//! scheduler does not hold the CPU from a thread that is ready to run there, often the one
//! that would give it work (its peer, or a client, on a machine with few CPUs).
//!
//! `BENCHMARKS.md` (the cores section) has what it bought `run_per_core`'s echo on two
//! CPUs, and that spinning without the yield was worse than not spinning at all there: it
//! took the CPU from the load generator that shared them.

use core::cell::Cell;
use core::time::Duration;

use crate::sched::SchedState;

/// A scheduler's spin window and where the current idle stretch began.
pub(crate) struct IdleSpin {
    /// How long an idle loop keeps polling before it blocks, in clock ticks (0: off).
    window: Cell<u64>,
    /// The window as set, for [`set_idle_spin`] to return.
    setting: Cell<Option<Duration>>,
    /// When the loop ran dry (precise clock), while it spins; `None` once a pass ran
    /// coroutines again, and once the window has run out.
    idle_since: Cell<Option<u64>>,
}

impl IdleSpin {
    pub(crate) fn new() -> Self {
        IdleSpin {
            window: Cell::new(0),
            setting: Cell::new(None),
            idle_since: Cell::new(None),
        }
    }

    /// The loop of `s` ran dry and is about to wait up to `timeout` (`None`: until an
    /// event); `ran`: its last pass ran coroutines. Returns how long to wait: zero, after
    /// a yield of the CPU, until the window has run out since the loop ran dry.
    #[inline]
    pub(crate) fn before_wait(
        &self,
        s: &SchedState,
        timeout: Option<Duration>,
        ran: bool,
    ) -> Option<Duration> {
        let window = self.window.get();
        if window == 0 {
            return timeout;
        }
        if ran {
            self.idle_since.set(None);
        }
        if timeout == Some(Duration::ZERO) {
            return timeout;
        }
        let now = s.clock().now();
        let since = self.idle_since.get().unwrap_or(now);
        if now.saturating_sub(since) >= window {
            // Run out: wait. After the wait the loop spins again when it runs dry.
            self.idle_since.set(None);
            return timeout;
        }
        self.idle_since.set(Some(since));
        std::thread::yield_now();
        Some(Duration::ZERO)
    }

    fn set(&self, s: &SchedState, window: Option<Duration>) -> Option<Duration> {
        let ticks = window.map_or(0, |w| s.rate().ticks(w));
        self.window.set(ticks);
        self.idle_since.set(None);
        self.setting.replace(window.filter(|_| ticks > 0))
    }
}

/// Let this thread's event loop, when it runs dry, keep polling for I/O and messages
/// without blocking (yielding the CPU before each poll) for up to `window` before it
/// blocks; `None` (the default) or a zero window: block at once. Returns the previous
/// setting. Feature `std`: the runtime sets it from `RuntimeConfig::idle_spin`.
///
/// For a scheduler that runs dry for moments and gets work again soon after: one of
/// several schedulers sharing a load (`run_per_core`), a server under steady load. Such a
/// scheduler then sleeps and is woken far less often, which costs less than the polls. A
/// scheduler that stays idle spends up to `window` of CPU per wake-up on nothing, and at
/// one request at a time it may spin through every gap: tens of microseconds is the
/// useful range (30 µs in `bench/echo.sh`).
///
/// ```
/// # shrapnel_core::doc_scheduler!();
/// # use shrapnel_core as shrapnel;
/// use std::time::Duration;
///
/// assert_eq!(shrapnel::idle_spin::set_idle_spin(Some(Duration::from_micros(30))), None);
/// shrapnel::spawn(|| shrapnel::sleep(Duration::from_millis(1)));
/// assert_eq!(shrapnel::event_loop(), 0); // spins 30 µs, then waits for the timer
/// assert_eq!(
///     shrapnel::idle_spin::set_idle_spin(None),
///     Some(Duration::from_micros(30))
/// );
/// ```
pub fn set_idle_spin(window: Option<Duration>) -> Option<Duration> {
    let s = crate::sched::sched();
    s.idle_spin().set(s, window)
}

#[cfg(test)]
mod tests {
    use super::set_idle_spin;
    use crate::sched::{self, Config};
    use alloc::boxed::Box;
    use core::cell::Cell;
    use core::time::Duration;
    use std::time::Instant;

    std::thread_local! {
        /// The timeouts this thread's scheduler blocked with, in order.
        static WAITS: core::cell::RefCell<alloc::vec::Vec<Option<Duration>>> =
            const { core::cell::RefCell::new(alloc::vec::Vec::new()) };
        /// Iterations of this thread's event loop (its loop hook's calls).
        static ITERATIONS: Cell<u64> = const { Cell::new(0) };
    }

    struct TestClock(Instant);
    impl crate::clock::Clock for TestClock {
        fn now(&self) -> u64 {
            self.0.elapsed().as_nanos() as u64
        }
        fn ticks_per_second(&self) -> u64 {
            1_000_000_000
        }
    }

    /// Records each blocking wait; sleeps through it (1 ms for "until an event").
    struct RecordingIdle;
    impl crate::poller::Idle for RecordingIdle {
        fn idle(&self, timeout: Option<Duration>) {
            WAITS.with(|w| w.borrow_mut().push(timeout));
            std::thread::sleep(timeout.unwrap_or(Duration::from_millis(1)));
        }
    }

    /// Run `f` on a fresh scheduler of this thread spinning up to `window`; returns the
    /// waits the loop blocked with and its number of iterations.
    fn run_with(
        window: Option<Duration>,
        f: impl FnOnce(),
    ) -> (alloc::vec::Vec<Option<Duration>>, u64) {
        sched::install(Config {
            poller: Box::new(crate::poller::NullPoller::new(RecordingIdle)),
            clock: Box::new(TestClock(Instant::now())),
            stacks: Box::new(crate::stack::HeapStackAllocator),
            sink: Box::new(crate::sink::NullSink),
            default_stack_size: 64 * 1024,
        })
        .expect("one scheduler per test thread");
        WAITS.with(|w| w.borrow_mut().clear());
        ITERATIONS.with(|i| i.set(0));
        assert_eq!(set_idle_spin(window), None);
        sched::set_loop_hook(Some(|| ITERATIONS.with(|i| i.set(i.get() + 1))));
        f();
        assert_eq!(sched::event_loop(), 0);
        sched::uninstall();
        (WAITS.with(|w| w.take()), ITERATIONS.with(Cell::get))
    }

    fn first_timed_wait(waits: &[Option<Duration>]) -> Duration {
        waits
            .first()
            .copied()
            .flatten()
            .expect("the loop waited for the timer")
    }

    #[test]
    fn a_dry_loop_spins_for_the_window_then_waits_for_the_timer() {
        let sleeper = || {
            crate::spawn(|| crate::sched::sleep(Duration::from_millis(100)).unwrap());
        };
        let (waits, iterations) = run_with(Some(Duration::from_millis(20)), sleeper);
        // The first wait began once the 20 ms window had run out: at most 80 ms to go.
        let first = first_timed_wait(&waits);
        assert!(
            first <= Duration::from_millis(80),
            "waited {first:?}: no spin first"
        );
        // Every spin is a loop iteration (how many depends on what else wants the CPU).
        assert!(iterations > 2, "{iterations} iterations in a 20 ms spin");

        let (waits, iterations) = run_with(None, sleeper);
        let first = first_timed_wait(&waits);
        assert!(
            first > Duration::from_millis(80),
            "waited {first:?}: it spun first"
        );
        // One wait, one iteration after it (the last ends the loop before its hook).
        assert_eq!(iterations, 1, "{iterations} iterations without a spin");
    }

    #[test]
    fn a_message_sent_during_the_window_is_received_without_a_wait() {
        let exchange = || {
            let (tx, rx) = crate::channel::channel::<u32>();
            crate::spawn(move || assert_eq!(rx.recv().unwrap(), 7));
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(5));
                tx.send(7).unwrap();
            });
        };
        let (waits, _) = run_with(Some(Duration::from_secs(10)), exchange);
        assert_eq!(waits, []);
        let (waits, _) = run_with(None, exchange);
        assert!(
            !waits.is_empty(),
            "the receiver's loop never blocked without a spin"
        );
    }

    #[test]
    fn the_setting_is_returned_and_a_zero_window_is_off() {
        let (waits, _) = run_with(None, || {
            assert_eq!(set_idle_spin(Some(Duration::ZERO)), None);
            assert_eq!(set_idle_spin(Some(Duration::from_micros(30))), None);
            assert_eq!(set_idle_spin(None), Some(Duration::from_micros(30)));
            crate::spawn(|| crate::sched::sleep(Duration::from_millis(10)).unwrap());
        });
        assert_eq!(waits.len(), 1, "{waits:?}");
    }
}
