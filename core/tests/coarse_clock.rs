//! Timers against a coarse clock, in simulated time: never early, at most a tick late, and
//! no spinning on a deadline already passed.

use std::cell::Cell;
use std::rc::Rc as StdRc;
use std::time::Duration;

use shrapnel_core::clock::Clock;
use shrapnel_core::poller::{Idle, NullPoller};
use shrapnel_core::sched::{
    event_loop, install, is_installed, sleep, stats, uninstall, yield_slice, Config,
};
use shrapnel_core::sink::NullSink;
use shrapnel_core::stack::HeapStackAllocator;

/// Simulated time in ns: every reading advances it by a microsecond, idling by the
/// timeout. The coarse reading is the time rounded down to a 4 ms tick.
#[derive(Clone, Default)]
struct SimTime(StdRc<Cell<u64>>);

const TICK: u64 = 4_000_000;

impl SimTime {
    fn advance(&self, ns: u64) -> u64 {
        self.0.set(self.0.get() + ns);
        self.0.get()
    }
}

impl Clock for SimTime {
    fn now(&self) -> u64 {
        self.advance(1_000)
    }
    fn now_coarse(&self) -> u64 {
        self.advance(1_000) / TICK * TICK
    }
    fn coarse_lag(&self) -> u64 {
        TICK
    }
    fn ticks_per_second(&self) -> u64 {
        1_000_000_000
    }
}

impl Idle for SimTime {
    fn idle(&self, timeout: Option<Duration>) {
        let ns = timeout.map_or(TICK, |t| t.as_nanos() as u64);
        self.advance(ns);
    }
}

fn install_sim() -> SimTime {
    if is_installed() {
        uninstall();
    }
    let time = SimTime::default();
    time.advance(1_234_567);
    install(Config {
        poller: Box::new(NullPoller::new(time.clone())),
        clock: Box::new(time.clone()),
        stacks: Box::new(HeapStackAllocator),
        sink: Box::new(NullSink),
        default_stack_size: 64 * 1024,
    })
    .unwrap();
    time
}

#[test]
fn with_a_coarse_clock_timers_fire_late_by_at_most_a_tick_never_early() {
    let time = install_sim();
    let done = StdRc::new(Cell::new(false));
    // Keeps the run queue busy, so the loop reads the coarse clock.
    let busy = done.clone();
    shrapnel_core::spawn(move || {
        while !busy.get() {
            yield_slice();
        }
    });
    let (t, flag) = (time.clone(), done.clone());
    let sleeper = shrapnel_core::spawn(move || {
        let mut late = Vec::new();
        for ms in [1u64, 3, 4, 5, 10, 17] {
            let asked = t.0.get();
            sleep(Duration::from_millis(ms)).unwrap();
            let woke = t.0.get();
            late.push(woke as i64 - (asked + ms * 1_000_000) as i64);
        }
        flag.set(true);
        late
    });
    event_loop();
    for late in sleeper.join().unwrap() {
        assert!(late >= 0, "a timer fired {}ns early", -late);
        assert!(late <= TICK as i64 + 100_000, "a timer fired {late}ns late");
    }
    uninstall();
}

#[test]
fn waiting_for_a_passed_deadline_does_not_spin() {
    let time = install_sim();
    let t = time.clone();
    let sleeper = shrapnel_core::spawn(move || {
        let asked = t.0.get();
        sleep(Duration::from_micros(1_500)).unwrap();
        t.0.get() - asked
    });
    event_loop();
    let slept = sleeper.join().unwrap();
    assert!(
        (1_500_000..1_600_000).contains(&slept),
        "slept {slept}ns for 1.5 ms"
    );
    assert!(stats().polls <= 2, "{:?}", stats());
    uninstall();
}
