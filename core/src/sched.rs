//! The scheduler: run queue, passes, timers, polling, interruption, and the free functions
//! (`spawn`, `sleep`, `yield_slice`, `with_timeout`, `event_loop`, ...) that reach it.
//!
//! One scheduler per OS thread. It runs on the thread's own stack and switches into each
//! ready coroutine in turn; a coroutine that blocks switches back. The event loop works in
//! *passes*, as Shrapnel does: a pass runs the coroutines that were ready when it began;
//! anything made ready during the pass (including by `yield_slice`) runs in the next one,
//! after a non-blocking poll for I/O. With nothing ready, the loop polls with a timeout to
//! the next timer; with nothing ready, no timer and no I/O wait, nothing can ever run
//! again and `event_loop` returns.
//!
//! The free functions find the thread's scheduler through a thread-local pointer (feature
//! `std`) or a single static (bare metal, single core). Nothing is borrowed across a
//! context switch: every `RefCell` borrow here ends before `switch` is called.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::panic::Location;
use core::time::Duration;

use crate::arch::{ContextSwitch, Native};
use crate::clock::{Clock, Instant, TickRate};
use crate::coro::{CoroInner, CoroRc, CoroRef, State};
use crate::interrupt::{Interrupted, Timeout, TimeoutId};
use crate::io::IoTable;
use crate::poller::{Event, Poller};
use crate::sink::DebugSink;
use crate::stack::StackAllocator;
use crate::timer::TimerQueue;
use crate::wait::{WaitReason, Waiter};

/// Default number of I/O operations that complete without blocking before a forced yield.
pub const DEFAULT_SELFISHNESS: u32 = 4;

/// How a blocked wait ended (internal; the public APIs map it to their error types).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) enum Resume {
    /// Woken normally.
    #[default]
    Ok,
    /// Interrupted (timeout, interrupt, shutdown, wake_up).
    Interrupted(Interrupted),
    /// Woken normally, then interrupted before it ran (Shrapnel's `force`): the wait
    /// returns the interruption, and whatever the waker handed this waiter (a lock,
    /// permits, an item) is the waiter's to pass on.
    Revoked(Interrupted),
    /// The fd it waited on was closed by another coroutine.
    Closed,
}

/// What a pending timer does when it expires.
pub(crate) enum TimerAction {
    /// End a sleep.
    Wake(Waiter),
    /// Deliver a `with_timeout` interruption to the coroutine in this registry slot, if
    /// that timeout is still active there (ids are never reused, so a slot reused by
    /// another coroutine cannot match).
    Timeout(usize, TimeoutId),
}

/// Counters for `stats`.
#[derive(Default, Debug, Clone, Copy)]
pub struct Stats {
    /// Context switches into coroutines.
    pub switches: u64,
    /// Calls to the poller.
    pub polls: u64,
    /// Passes of the event loop.
    pub passes: u64,
    /// Coroutines spawned since start.
    pub spawned: u64,
}

/// What a scheduler is built from.
pub struct Config {
    /// The I/O readiness mechanism.
    pub poller: Box<dyn Poller>,
    /// The monotonic clock.
    pub clock: Box<dyn Clock>,
    /// Where coroutine stacks come from.
    pub stacks: Box<dyn StackAllocator>,
    /// Where debug output goes.
    pub sink: Box<dyn DebugSink>,
    /// Stack size for coroutines that do not ask for one.
    pub default_stack_size: usize,
}

pub(crate) struct SchedState {
    pub(crate) poller: Box<dyn Poller>,
    pub(crate) clock: Box<dyn Clock>,
    pub(crate) rate: TickRate,
    pub(crate) stacks: Box<dyn StackAllocator>,
    pub(crate) sink: Box<dyn DebugSink>,
    pub(crate) default_stack_size: usize,
    pub(crate) run_queue: RefCell<VecDeque<CoroRc>>,
    pub(crate) timers: RefCell<TimerQueue<TimerAction>>,
    pub(crate) io: RefCell<IoTable>,
    /// The running coroutine, or null in the scheduler's own context.
    pub(crate) current: Cell<*const CoroInner>,
    /// Live coroutines by registry slot (strong: the registry owns them until they die).
    pub(crate) registry: RefCell<Vec<Option<CoroRc>>>,
    pub(crate) registry_free: RefCell<Vec<usize>>,
    pub(crate) live: Cell<usize>,
    pub(crate) next_id: Cell<u64>,
    pub(crate) next_timeout: Cell<u64>,
    pub(crate) exit: Cell<Option<i32>>,
    pub(crate) selfishness: Cell<u32>,
    /// The time as of this loop iteration, for wait bookkeeping (where_all's "for 1.2s"):
    /// the loop's reading when it took one, `None` until [`wait_clock`](Self::wait_clock)
    /// needs one.
    pub(crate) loop_now: Cell<Option<u64>>,
    pub(crate) started_at: u64,
    pub(crate) in_loop: Cell<bool>,
    pub(crate) stats: Cell<Stats>,
    pub(crate) events: RefCell<Vec<Event>>,
    /// Called once per loop iteration, after polling (signal-driven dumps and the like).
    pub(crate) loop_hook: Cell<Option<fn()>>,
    /// Spawns that found no stack: (failures not yet reported, when the last report was
    /// printed), so a loop spawning at a limit prints a count, not a line per attempt.
    spawn_failures: Cell<(u64, Option<u64>)>,
    /// Interrupt events some coroutine waits on.
    pub(crate) irq_events: RefCell<Vec<&'static crate::irq::IrqEvent>>,
    #[cfg(feature = "latency")]
    pub(crate) latency: crate::latency::Latency,
    #[cfg(feature = "std")]
    pub(crate) notifier: RefCell<Option<Rc<Box<crate::panic::Notifier>>>>,
}

cfg_if::cfg_if! {
    if #[cfg(feature = "std")] {
        std::thread_local! {
            static CURRENT: Cell<*const SchedState> = const { Cell::new(core::ptr::null()) };
        }
        fn get_ptr() -> *const SchedState {
            CURRENT.with(|c| c.get())
        }
        fn set_ptr(p: *const SchedState) {
            CURRENT.with(|c| c.set(p))
        }
    } else {
        static CURRENT: core::sync::atomic::AtomicPtr<SchedState> =
            core::sync::atomic::AtomicPtr::new(core::ptr::null_mut());
        fn get_ptr() -> *const SchedState {
            CURRENT.load(core::sync::atomic::Ordering::Relaxed)
        }
        fn set_ptr(p: *const SchedState) {
            CURRENT.store(p as *mut _, core::sync::atomic::Ordering::Relaxed)
        }
    }
}

/// The scheduler installed on this thread, if any.
pub(crate) fn try_sched() -> Option<&'static SchedState> {
    let p = get_ptr();
    // SAFETY: the pointer is set by `install` to a leaked Box and cleared by `uninstall`
    // before that Box is freed; the state is only used from this thread (the thread-local,
    // or the single core on bare metal).
    unsafe { p.as_ref() }
}

#[track_caller]
pub(crate) fn sched() -> &'static SchedState {
    match try_sched() {
        Some(s) => s,
        None => panic!(
            "shrapnel: this call needs a scheduler and this thread has none yet: blocking \
             calls run inside a coroutine — start one with `shrapnel::spawn(|| ...)` and run \
             `shrapnel::event_loop()`; settings go through the `shrapnel::` functions \
             (`shrapnel::latency::set_latency_warning`…), which start the scheduler (with \
             shrapnel-core alone, call `sched::install` first)"
        ),
    }
}

/// Error from [`install`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlreadyInstalled;

impl core::fmt::Display for AlreadyInstalled {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(
            "a shrapnel scheduler is already installed on this thread; call uninstall() first",
        )
    }
}

/// Install a scheduler on this thread.
pub fn install(config: Config) -> Result<(), AlreadyInstalled> {
    if try_sched().is_some() {
        return Err(AlreadyInstalled);
    }
    let rate = TickRate(config.clock.ticks_per_second());
    #[cfg(feature = "latency")]
    let lag = config.clock.coarse_lag();
    let now = config.clock.now();
    let state = Box::new(SchedState {
        poller: config.poller,
        clock: config.clock,
        rate,
        stacks: config.stacks,
        sink: config.sink,
        default_stack_size: config.default_stack_size,
        run_queue: RefCell::new(VecDeque::with_capacity(64)),
        timers: RefCell::new(TimerQueue::new()),
        io: RefCell::new(IoTable::new()),
        current: Cell::new(core::ptr::null()),
        registry: RefCell::new(Vec::new()),
        registry_free: RefCell::new(Vec::new()),
        live: Cell::new(0),
        next_id: Cell::new(1),
        next_timeout: Cell::new(1),
        exit: Cell::new(None),
        selfishness: Cell::new(DEFAULT_SELFISHNESS),
        loop_now: Cell::new(None),
        started_at: now,
        in_loop: Cell::new(false),
        stats: Cell::new(Stats::default()),
        events: RefCell::new(Vec::with_capacity(256)),
        loop_hook: Cell::new(None),
        spawn_failures: Cell::new((0, None)),
        irq_events: RefCell::new(Vec::new()),
        #[cfg(feature = "latency")]
        latency: crate::latency::Latency::new(rate, lag),
        #[cfg(feature = "std")]
        notifier: RefCell::new(None),
    });
    set_ptr(Box::into_raw(state));
    Ok(())
}

/// True if this thread has a scheduler.
pub fn is_installed() -> bool {
    try_sched().is_some()
}

/// Remove this thread's scheduler. Suspended coroutines are unwound (with `std`) so their
/// destructors run; coroutines never started are dropped. Must be called outside any
/// coroutine and outside `event_loop`.
pub fn uninstall() {
    let Some(s) = try_sched() else { return };
    assert!(
        s.current.get().is_null() && !s.in_loop.get(),
        "shrapnel: uninstall() called from inside a coroutine or event_loop"
    );
    s.unwind_all();
    set_ptr(core::ptr::null());
    // SAFETY: the pointer came from Box::into_raw in `install`, was cleared above so no new
    // reference can be made, and no coroutine (the only other holders of `&SchedState`
    // across calls) is left alive.
    drop(unsafe { Box::from_raw(s as *const SchedState as *mut SchedState) });
}

impl SchedState {
    pub(crate) fn now_ticks(&self) -> u64 {
        self.clock.now()
    }

    /// A recent time for wait bookkeeping: this loop iteration's reading, or a coarse one
    /// taken now (and kept for the rest of the iteration) if it has none.
    #[inline]
    pub(crate) fn wait_clock(&self) -> u64 {
        match self.loop_now.get() {
            Some(t) => t,
            None => {
                let t = self.clock.now_coarse();
                self.loop_now.set(Some(t));
                t
            }
        }
    }

    /// The end of the last slice, when only the scheduler's bookkeeping ran since (feature
    /// `latency`): a reading never ahead of the clock, which the loop takes as its time
    /// instead of reading the clock.
    #[inline]
    fn slice_chain(&self) -> Option<u64> {
        #[cfg(feature = "latency")]
        return self.latency.chain.get();
        #[cfg(not(feature = "latency"))]
        None
    }

    /// Something that takes time outside any slice happened (a poll, `where_all`): the
    /// next slice must read the clock for its start.
    #[inline]
    pub(crate) fn break_slice_chain(&self) {
        #[cfg(feature = "latency")]
        self.latency.chain.set(None);
    }

    pub(crate) fn bump<F: FnOnce(&mut Stats)>(&self, f: F) {
        let mut st = self.stats.get();
        f(&mut st);
        self.stats.set(st);
    }

    pub(crate) fn current_rc(&self) -> Option<CoroRc> {
        let p = self.current.get();
        if p.is_null() {
            return None;
        }
        // SAFETY: `current` is `Rc::as_ptr` of the running coroutine (set by `run`), which the
        // registry keeps alive (a strong count of at least one) while it runs; the count added
        // here is the one the returned Rc gives back.
        unsafe {
            Rc::increment_strong_count(p);
            Some(Rc::from_raw(p))
        }
    }

    #[track_caller]
    pub(crate) fn current_ref(&self) -> &CoroInner {
        let p = self.current.get();
        assert!(
            !p.is_null(),
            "shrapnel: a blocking call was made outside a coroutine: run it inside one — \
             `shrapnel::spawn(|| ...)`, then `shrapnel::event_loop()`"
        );
        // SAFETY: as in current_rc: the registry keeps the running coroutine alive.
        unsafe { &*p }
    }

    pub(crate) fn register(&self, co: &CoroRc) {
        let mut reg = self.registry.borrow_mut();
        let slot = match self.registry_free.borrow_mut().pop() {
            Some(slot) => {
                reg[slot] = Some(co.clone());
                slot
            }
            None => {
                reg.push(Some(co.clone()));
                reg.len() - 1
            }
        };
        co.slot.set(slot);
        self.live.set(self.live.get() + 1);
    }

    pub(crate) fn schedule(&self, co: CoroRc) {
        co.state.set(State::Ready);
        self.run_queue.borrow_mut().push_back(co);
    }

    /// Switch into `co`; returns when it blocks, yields or ends.
    #[cfg_attr(feature = "std", inline(always))] // firmware (no std) builds optimise for size
    fn run(&self, co: CoroRc) {
        if co.state.get() != State::Ready {
            return; // cancelled or reaped while queued
        }
        co.state.set(State::Running);
        co.started.set(true);
        self.current.set(Rc::as_ptr(&co));
        let base = co.stack_base.get() as *mut u8;
        #[cfg(feature = "latency")]
        let t0 = crate::latency::slice_begin(self, &co);
        // SAFETY: `co` is Ready, so its `sp` holds a context produced by `init` or saved by
        // its last suspend, and its stack is alive (it is released only after death). The
        // root slot lies inside that stack.
        unsafe {
            Native::switch(Native::root_slot(base), co.sp.get(), 0);
        }
        self.current.set(core::ptr::null());
        #[cfg(feature = "latency")]
        crate::latency::slice_end(self, &co, t0);
        self.bump(|s| s.switches += 1);
        let canary = co.canary.get();
        // SAFETY: a non-null canary points into the coroutine's stack, alive until reaped.
        if !canary.is_null() && unsafe { canary.read_volatile() } != crate::stack::CANARY {
            self.stack_overflowed(&co);
        }
        if co.state.get() == State::Dead {
            self.reap(&co);
        }
    }

    /// Format to the sink without allocating, through a fixed buffer written out whenever
    /// it fills, so a long line arrives whole.
    pub(crate) fn debug_fmt(&self, args: core::fmt::Arguments<'_>) {
        struct Chunks<'a> {
            sink: &'a dyn DebugSink,
            buf: heapless::Vec<u8, 256>,
        }
        impl core::fmt::Write for Chunks<'_> {
            fn write_str(&mut self, s: &str) -> core::fmt::Result {
                for &b in s.as_bytes() {
                    if self.buf.push(b).is_err() {
                        self.sink.write(&self.buf);
                        self.buf.clear();
                        let _ = self.buf.push(b);
                    }
                }
                Ok(())
            }
        }
        let mut out = Chunks {
            sink: &*self.sink,
            buf: heapless::Vec::new(),
        };
        let _ = core::fmt::Write::write_fmt(&mut out, args);
        if !out.buf.is_empty() {
            self.sink.write(&out.buf);
        }
    }

    /// `spawn`/`new` found no stack: print it the first time, then at most every 10 s
    /// with the count since the last line.
    #[cold]
    pub(crate) fn report_spawn_failure(
        &self,
        error: &crate::coro::SpawnError,
        at: &'static Location<'static>,
    ) {
        let (unreported, last) = self.spawn_failures.get();
        let now = self.now_ticks();
        let due =
            last.is_none_or(|t| now.saturating_sub(t) >= self.rate.ticks(Duration::from_secs(10)));
        if !due {
            self.spawn_failures.set((unreported + 1, last));
            return;
        }
        self.debug_fmt(format_args!(
            "shrapnel: spawn at {}:{} failed: {}; the coroutine was not created (its join \
             returns the error)\n",
            at.file(),
            at.line(),
            error,
        ));
        if unreported > 0 {
            self.debug_fmt(format_args!(
                "shrapnel: ... and {unreported} more spawns failed since the last report\n"
            ));
        }
        self.spawn_failures.set((0, Some(now)));
    }

    /// A canary-protected stack was overrun: say which coroutine did it, then panic (the
    /// memory below the stack may be corrupt, so nothing else is safe to run).
    #[cold]
    fn stack_overflowed(&self, co: &CoroInner) -> ! {
        let size = co.stack_base.get() - co.stack_limit.get();
        self.debug_fmt(format_args!("coroutine #{} '{}' overflowed its stack ({} KiB): the canary at its limit was overwritten\n",
            co.id,
            co.name_str(),
            size / 1024
        ));
        panic!(
            "coroutine #{} '{}' overflowed its stack ({} KiB)",
            co.id,
            co.name_str(),
            size / 1024
        );
    }

    /// Release a dead coroutine's stack and registry slot.
    pub(crate) fn reap(&self, co: &CoroInner) {
        co.canary.set(core::ptr::null());
        if let Some(stack) = co.stack.take() {
            self.stacks.release(stack);
        }
        let slot = co.slot.get();
        let removed = self.registry.borrow_mut()[slot].take();
        if removed.is_some() {
            self.registry_free.borrow_mut().push(slot);
            self.live.set(self.live.get() - 1);
        }
        drop(removed);
    }

    /// Suspend the running coroutine until something wakes it.
    ///
    /// Inlined into each caller (it is generic over `register`, so each has its own copy
    /// anyway): a `WaitReason` passed in memory is stored by the caller a word at a time and
    /// reloaded here in one piece, which stalls store forwarding.
    #[track_caller]
    #[cfg_attr(feature = "std", inline(always))] // firmware (no std) builds optimise for size
    pub(crate) fn block(&self, reason: WaitReason, register: impl FnOnce(Waiter)) -> Resume {
        let co = self.current_ref();
        if let Some(i) = co.pending.take() {
            return take_pending(co, i);
        }
        #[cfg(feature = "std")]
        if co.force_unwind.get() {
            if std::thread::panicking() {
                return Resume::Interrupted(Interrupted::Shutdown);
            }
            std::panic::resume_unwind(Box::new(crate::panic::ForcedUnwind));
        }
        let seq = co.seq.get();
        let me = self.current_rc().expect("running coroutine is registered");
        co.state.set(State::Blocked);
        co.wait.set(reason);
        co.wait_since.set(self.wait_clock());
        co.wait_at.set(Some(Location::caller()));
        co.selfish.set(0);
        register(Waiter { co: me, seq });
        self.suspend_current(co);
        co.seq.set(seq + 1);
        co.wait.set(WaitReason::Running);
        #[cfg(feature = "std")]
        if co.force_unwind.get() && !std::thread::panicking() {
            std::panic::resume_unwind(Box::new(crate::panic::ForcedUnwind));
        }
        co.resume.take()
    }

    /// Switch from the running coroutine back to the scheduler.
    pub(crate) fn suspend_current(&self, co: &CoroInner) {
        let base = co.stack_base.get() as *mut u8;
        // SAFETY: we are running on `co`'s stack, resumed by `run`, which stored the
        // scheduler's context in the root slot; `co.sp` is ours to overwrite.
        unsafe {
            let to = *Native::root_slot(base);
            Native::switch(co.sp.as_ptr(), to, 0);
        }
    }

    /// Deliver an interruption to `co` according to its state.
    pub(crate) fn deliver(&self, co: &CoroRc, i: Interrupted) -> Delivery {
        match co.state.get() {
            State::Dead => Delivery::Dead,
            State::NotStarted => {
                self.cancel_unstarted(co);
                Delivery::Cancelled
            }
            State::Ready if !co.started.get() => {
                self.cancel_unstarted(co);
                Delivery::Cancelled
            }
            State::Blocked => {
                if let Interrupted::Timeout(id) = i {
                    co.mark_timeout_fired(id);
                }
                wake(
                    &Waiter {
                        co: co.clone(),
                        seq: co.seq.get(),
                    },
                    Resume::Interrupted(i),
                );
                Delivery::Delivered
            }
            // Woken from a wait, not resumed yet: it resumes with the interruption instead
            // (Shrapnel's `force`), and passes on what the wake handed it.
            State::Ready if co.wait.get() != WaitReason::Yield && co.resume.get() == Resume::Ok => {
                if let Interrupted::Timeout(id) = i {
                    co.mark_timeout_fired(id);
                }
                co.resume.set(Resume::Revoked(i));
                Delivery::Delivered
            }
            // Running, yielded, or already resuming with an interruption or a close: its
            // next blocking call returns this one (a timeout counts as fired only then: one
            // that lands while an outer timeout is being delivered is not this wait's).
            State::Ready | State::Running => {
                co.add_pending(i);
                Delivery::Pending
            }
        }
    }

    pub(crate) fn cancel_unstarted(&self, co: &CoroRc) {
        co.state.set(State::Dead);
        co.wait.set(WaitReason::Dead);
        drop(co.body.take());
        self.finish(co);
        self.reap(co);
    }

    /// Wake everybody joining `co`, which just ended.
    pub(crate) fn finish(&self, co: &CoroInner) {
        loop {
            let next = co.joiners.borrow_mut().pop_live();
            match next {
                Some((w, ())) => {
                    w.wake(Resume::Ok);
                }
                None => break,
            }
        }
    }

    fn fire_timers(&self, now: u64) -> usize {
        let mut fired = 0;
        loop {
            let action = self.timers.borrow_mut().pop_expired(now);
            match action {
                Some(TimerAction::Wake(w)) => {
                    w.wake(Resume::Ok);
                }
                Some(TimerAction::Timeout(slot, id)) => {
                    let co = self.registry.borrow().get(slot).cloned().flatten();
                    if let Some(co) = co.filter(|co| co.timeout_active(id)) {
                        self.deliver(&co, Interrupted::Timeout(id));
                    }
                }
                None => break,
            }
            fired += 1;
        }
        fired
    }

    fn poll_io(&self, timeout: Option<Duration>) {
        let mut events = self.events.borrow_mut();
        events.clear();
        self.bump(|s| s.polls += 1);
        if let Err(e) = self.poller.poll(&mut events, timeout) {
            self.debug_fmt(format_args!(
                "shrapnel: {} poll failed: {}\n",
                self.poller.name(),
                e
            ));
            return;
        }
        let mut io = self.io.borrow_mut();
        for ev in events.iter() {
            io.dispatch(ev);
        }
    }

    fn unwind_all(&self) {
        let live: Vec<CoroRc> = self.registry.borrow().iter().flatten().cloned().collect();
        for co in live {
            match co.state.get() {
                State::Dead => {}
                State::NotStarted => self.cancel_unstarted(&co),
                State::Ready if !co.started.get() => self.cancel_unstarted(&co),
                _ => self.unwind_one(&co),
            }
        }
        self.run_queue.borrow_mut().clear();
        *self.timers.borrow_mut() = TimerQueue::new();
    }

    #[cfg(feature = "std")]
    fn unwind_one(&self, co: &CoroRc) {
        co.force_unwind.set(true);
        for _ in 0..8 {
            if co.state.get() == State::Dead {
                return;
            }
            co.state.set(State::Ready);
            self.run(co.clone());
        }
        // It keeps catching the unwind and blocking again: give up on it and free the stack.
        co.state.set(State::Dead);
        self.reap(co);
    }

    #[cfg(not(feature = "std"))]
    fn unwind_one(&self, co: &CoroRc) {
        // Without unwinding, a suspended coroutine's frames are abandoned; its stack is freed.
        co.state.set(State::Dead);
        drop(co.body.take());
        self.reap(co);
    }

    /// Are there fd waiters, timers or ready coroutines: can anything run again?
    fn can_progress(&self) -> bool {
        !self.run_queue.borrow().is_empty()
            || !self.timers.borrow().is_empty()
            || self.io.borrow().waiting() > 0
            || !self.irq_events.borrow().is_empty()
    }
}

/// A blocking call met an interruption that was pending: it returns it at once.
#[cold]
fn take_pending(co: &CoroInner, i: Interrupted) -> Resume {
    co.advance_pending();
    if let Interrupted::Timeout(id) = i {
        co.mark_timeout_fired(id);
    }
    Resume::Interrupted(i)
}

/// What [`SchedState::deliver`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// The coroutine was blocked, or woken and not yet resumed: it resumes with the
    /// interruption.
    Delivered,
    /// It is running (or yielded, or already resuming with another interruption): its
    /// next blocking call returns this one.
    Pending,
    /// It had not started: it is cancelled.
    Cancelled,
    /// It had already ended.
    Dead,
}

/// Wake a waiter if its wait is still the one it registered for.
pub(crate) fn wake(w: &Waiter, r: Resume) -> bool {
    if !w.is_live() {
        return false;
    }
    w.co.resume.set(r);
    sched().schedule(w.co.clone());
    true
}

/// Run the scheduler until `set_exit` is called or nothing can ever run again; returns
/// the exit code (0 when the loop ran dry).
///
/// Call it from the thread's own context, not from inside a coroutine.
pub fn event_loop() -> i32 {
    let s = sched();
    assert!(
        s.current.get().is_null(),
        "shrapnel: event_loop() called from inside a coroutine"
    );
    assert!(
        !s.in_loop.get(),
        "shrapnel: event_loop() is already running on this thread"
    );
    s.in_loop.set(true);
    s.break_slice_chain();
    // Timers fire against `timer_now`, which is never ahead of the clock: it takes only
    // readings of `now` and `now_coarse` (or the end of the last slice, which is one) and
    // keeps the largest (a coarse reading lags, so it can be below an earlier precise one).
    // The clock is read only while timers are pending: the coarse one while coroutines are
    // ready, the precise one before a wait and after one.
    let mut timer_now = s.clock.now();
    let mut after_wait = false;
    let code = loop {
        let timers_pending = !s.timers.borrow().is_empty();
        let reading = match s.slice_chain() {
            Some(t) => Some(t),
            // Nothing to fire: wait bookkeeping reads the clock if a coroutine blocks.
            None if !timers_pending => None,
            None if after_wait => Some(s.clock.now()),
            None => Some(s.clock.now_coarse()),
        };
        after_wait = false;
        if let Some(t) = reading {
            timer_now = timer_now.max(t);
        }
        s.loop_now.set(reading.map(|_| timer_now));
        crate::irq::dispatch(s);
        if timers_pending {
            s.fire_timers(timer_now);
        }
        if let Some(code) = s.exit.take() {
            break code;
        }
        let n = s.run_queue.borrow().len();
        if n > 0 {
            s.bump(|st| st.passes += 1);
        }
        for _ in 0..n {
            let next = s.run_queue.borrow_mut().pop_front();
            match next {
                Some(co) => s.run(co),
                None => break,
            }
        }
        if let Some(code) = s.exit.take() {
            break code;
        }
        let busy = !s.run_queue.borrow().is_empty();
        let next_deadline = if busy {
            None
        } else {
            s.timers.borrow_mut().next_deadline()
        };
        let timeout = if busy {
            Some(Duration::ZERO)
        } else if let Some(deadline) = next_deadline {
            // About to wait for the next timer: as long as it takes, by the precise clock. A
            // deadline already passed gives a zero timeout, and the next iteration fires it.
            timer_now = timer_now.max(s.clock.now());
            Some(s.rate.duration(deadline.saturating_sub(timer_now)))
        } else if s.can_progress() {
            None
        } else {
            break 0;
        };
        // Nothing registered and work waiting: skip the syscall.
        if timeout != Some(Duration::ZERO) || !s.io.borrow().is_empty() {
            s.poll_io(timeout);
            s.break_slice_chain();
            after_wait = timeout != Some(Duration::ZERO);
        }
        if let Some(hook) = s.loop_hook.get() {
            hook();
        }
    };
    s.in_loop.set(false);
    s.break_slice_chain();
    s.loop_now.set(None);
    code
}

/// Install a function the event loop calls once per iteration, right after polling, in the
/// scheduler's own context (not in a coroutine): the place to act on flags that signal
/// handlers set (they wake the poll with [`notifier`]). Returns the previous hook.
///
/// The hook must be quick when it has nothing to do: it runs between every two passes.
/// With feature `latency` its time counts in the next slice, except what it spends in
/// `where_all`/`where_is` (a debug dump).
pub fn set_loop_hook(hook: Option<fn()>) -> Option<fn()> {
    sched().loop_hook.replace(hook)
}

/// A handle that wakes this thread's event loop from any thread (or, for backends whose
/// notify is a single write(2), from a signal handler).
pub fn notifier() -> alloc::sync::Arc<dyn crate::poller::Notify> {
    sched().poller.notifier()
}

/// Make `event_loop` return `code` at the end of the current pass.
pub fn set_exit(code: i32) {
    sched().exit.set(Some(code));
}

/// The running coroutine; `None` outside coroutines.
pub fn current() -> Option<CoroRef> {
    try_sched()?.current_rc().map(CoroRef::from_rc)
}

/// Let every other ready coroutine run, then continue.
///
/// Outside a coroutine this does nothing.
#[track_caller]
pub fn yield_slice() {
    let Some(s) = try_sched() else { return };
    if s.current.get().is_null() {
        return;
    }
    let co = s.current_ref();
    #[cfg(feature = "std")]
    if co.force_unwind.get() {
        // Being unwound: as any blocking call would, let the unwind go on.
        let pending = co.pending.take();
        let _ = s.block(WaitReason::Yield, |w| {
            wake(&w, Resume::Ok);
        });
        co.pending.set(pending.or(co.pending.get()));
        return;
    }
    // What `block` with a waiter woken at once does, without the waiter: back of the run
    // queue, the wait recorded for where_all. A pending self-interrupt stays pending for the
    // next blocking call.
    let me = s.current_rc().expect("running coroutine is registered");
    co.wait.set(WaitReason::Yield);
    co.wait_since.set(s.wait_clock());
    co.wait_at.set(Some(Location::caller()));
    co.selfish.set(0);
    co.resume.set(Resume::Ok);
    s.schedule(me);
    s.suspend_current(co);
    co.seq.set(co.seq.get() + 1);
    co.wait.set(WaitReason::Running);
    #[cfg(feature = "std")]
    if co.force_unwind.get() && !std::thread::panicking() {
        std::panic::resume_unwind(Box::new(crate::panic::ForcedUnwind));
    }
}

/// The current time on the scheduler's clock.
#[track_caller]
pub fn now() -> Instant {
    Instant(sched().now_ticks())
}

/// `t + d` on the scheduler's clock.
#[track_caller]
pub fn instant_after(t: Instant, d: Duration) -> Instant {
    Instant(t.0.saturating_add(sched().rate.ticks(d)))
}

/// The time from `earlier` to `later` (zero if `later` is not later).
pub fn duration_between(earlier: Instant, later: Instant) -> Duration {
    sched().rate.duration(later.0.saturating_sub(earlier.0))
}

/// Sleep for `d`. Returns early with `Err` if interrupted.
#[track_caller]
pub fn sleep(d: Duration) -> Result<(), Interrupted> {
    let s = sched();
    sleep_until(Instant(s.now_ticks().saturating_add(s.rate.ticks(d))))
}

/// Sleep until `t`. Returns early with `Err` if interrupted.
#[track_caller]
pub fn sleep_until(t: Instant) -> Result<(), Interrupted> {
    let s = sched();
    let mut timer = None;
    let r = s.block(WaitReason::Sleep(t), |w| {
        timer = Some(s.timers.borrow_mut().insert(t.0, TimerAction::Wake(w)));
    });
    match r {
        Resume::Ok => Ok(()),
        Resume::Interrupted(i) | Resume::Revoked(i) => {
            if let Some(id) = timer {
                s.timers.borrow_mut().remove(id);
            }
            Err(i)
        }
        Resume::Closed => unreachable!("a sleep is never woken by a close"),
    }
}

/// Run `f`, interrupting it if it has not finished after `d`.
///
/// When this call's deadline passes, the blocking call `f` is in (or its next one) returns
/// `Err(Interrupted::Timeout(..))`; `f` is expected to pass it on (`?`), and when `f`
/// returns, `with_timeout` returns `Err(Timeout)` — whatever `f` returned is dropped. An
/// outer `with_timeout` expiring inside an inner one reaches the inner call's `f` as an
/// `Interrupted` which the inner call passes on untouched (`Ok(f's result)`), so only the
/// owner turns its own deadline into `Timeout`.
#[track_caller]
pub fn with_timeout<R>(d: Duration, f: impl FnOnce() -> R) -> Result<R, Timeout> {
    let s = sched();
    assert!(
        !s.current.get().is_null(),
        "with_timeout called outside a coroutine"
    );
    // The running coroutine outlives this call: the registry keeps it alive while it runs.
    let co = s.current_ref();
    let id = TimeoutId(s.next_timeout.get());
    s.next_timeout.set(id.0 + 1);
    let deadline = s.now_ticks().saturating_add(s.rate.ticks(d));
    co.timeouts.borrow_mut().push((id, false));
    let timer = s
        .timers
        .borrow_mut()
        .insert_with(deadline, || TimerAction::Timeout(co.slot.get(), id));
    /// Ends the timeout on every exit path, a panic in `f` included.
    struct Guard<'a> {
        s: &'a SchedState,
        co: &'a CoroInner,
        id: TimeoutId,
        timer: crate::timer::TimerId,
        done: bool,
    }
    impl Guard<'_> {
        /// Cancel the timer, forget the id; returns whether the deadline was delivered.
        fn end(&mut self) -> bool {
            self.done = true;
            self.s.timers.borrow_mut().remove(self.timer);
            self.co.forget_pending_timeout(self.id);
            let mut list = self.co.timeouts.borrow_mut();
            // Usually the innermost, the last one.
            if list.last().is_some_and(|(t, _)| *t == self.id) {
                return list.pop().is_some_and(|(_, fired)| fired);
            }
            match list.iter().rposition(|(t, _)| *t == self.id) {
                Some(pos) => list.remove(pos).1,
                None => false,
            }
        }
    }
    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            if !self.done {
                self.end();
            }
        }
    }
    let mut guard = Guard {
        s,
        co,
        id,
        timer,
        done: false,
    };
    let r = f();
    let fired = guard.end();
    if fired {
        Err(Timeout)
    } else {
        Ok(r)
    }
}

/// Set the default number of non-blocking I/O completions before a forced yield; returns
/// the old value. Zero is refused: a coroutine must be allowed at least one.
pub fn set_selfishness(n: u32) -> Result<u32, crate::coro::SelfishnessError> {
    if n == 0 {
        return Err(crate::coro::SelfishnessError);
    }
    let s = sched();
    let old = s.selfishness.get();
    s.selfishness.set(n);
    Ok(old)
}

/// Count one I/O operation that completed without blocking; after the coroutine's
/// allowance (its `max_selfish_acts`, default [`set_selfishness`]) it yields its slice so
/// others get to run.
pub fn selfish_act() {
    let Some(s) = try_sched() else { return };
    if s.current.get().is_null() {
        return;
    }
    let co = s.current_ref();
    let n = co.selfish.get() + 1;
    let max = match co.max_selfish.get() {
        0 => s.selfishness.get(),
        m => m,
    };
    if n >= max {
        co.selfish.set(0);
        yield_slice();
    } else {
        co.selfish.set(n);
    }
}

/// All live coroutines (started or not, not yet dead), sorted by id.
pub fn live_coros() -> Vec<CoroRef> {
    let Some(s) = try_sched() else {
        return Vec::new();
    };
    let mut v: Vec<CoroRef> = s
        .registry
        .borrow()
        .iter()
        .flatten()
        .cloned()
        .map(CoroRef::from_rc)
        .collect();
    v.sort_unstable_by_key(|c| c.id());
    v
}

/// The live coroutine with this id.
pub fn coro_by_id(id: u64) -> Option<CoroRef> {
    let s = try_sched()?;
    let reg = s.registry.borrow();
    reg.iter()
        .flatten()
        .find(|c| c.id == id)
        .cloned()
        .map(CoroRef::from_rc)
}

/// Scheduler counters.
pub fn stats() -> Stats {
    sched().stats.get()
}

/// How long the scheduler has existed.
pub fn uptime() -> Duration {
    let s = sched();
    s.rate.duration(s.now_ticks().saturating_sub(s.started_at))
}

/// Coroutines waiting in the run queue.
pub fn run_queue_len() -> usize {
    sched().run_queue.borrow().len()
}

/// Pending timers.
pub fn timers_pending() -> usize {
    sched().timers.borrow().len()
}

/// Write debug text to the scheduler's sink (print_stderr's destination).
pub fn debug_write(bytes: &[u8]) {
    if let Some(s) = try_sched() {
        s.sink.write(bytes);
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::poller::{Idle, NullPoller};
    use crate::sink::NullSink;
    use crate::stack::HeapStackAllocator;
    use std::rc::Rc as StdRc;

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
        crate::coro::spawn(move || {
            while !busy.get() {
                yield_slice();
            }
        });
        let (t, flag) = (time.clone(), done.clone());
        let sleeper = crate::coro::spawn(move || {
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
        let sleeper = crate::coro::spawn(move || {
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
}
