//! The scheduler's state and its named operations: install, schedule, run (one switch into
//! a coroutine), block, wake, deliver an interruption, reap.
//!
//! [`SchedState`]'s fields are private to the scheduler (`sched/`); the rest of the core
//! reaches it through the operations below and through the parts each subsystem owns (the
//! I/O table of `io`, the interrupt events of `irq_event`, the latency state of `latency`), which
//! the scheduler holds without looking inside. Nothing is borrowed across a context switch:
//! every `RefCell` borrow here ends before `switch` is called.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::panic::Location;
use core::time::Duration;

use crate::arch::{ContextSwitch, Native};
use crate::clock::{Clock, TickRate};
use crate::coro::{CoroInner, CoroRc, SpawnError};
use crate::hooks::{self, hot_path};
use crate::interruption::{Interrupted, TimeoutId};
use crate::io::IoTable;
use crate::irq_event::IrqWaits;
use crate::poller::{Event, Poller};
use crate::shared_stack::RunStack;
use crate::sink::DebugSink;
use crate::stack::{BoxedStack, StackAllocator, StackError};
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
    /// Shared-stack mode: frame copies to and from the run stack (saves plus restores).
    pub stack_copies: u64,
    /// Shared-stack mode: bytes those copies moved.
    pub stack_bytes_copied: u64,
    /// Shared-stack mode: saved copies of idle coroutines compacted (feature `std`; see
    /// [`shared_stack`](crate::shared_stack)).
    pub stacks_compacted: u64,
    /// Heap bytes those compactions freed.
    pub stack_bytes_compacted: u64,
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

/// One thread's scheduler. Fields are the scheduler's own (`sched/`); see the module doc.
pub(crate) struct SchedState {
    pub(super) poller: Box<dyn Poller>,
    pub(super) clock: Box<dyn Clock>,
    pub(super) rate: TickRate,
    stacks: Box<dyn StackAllocator>,
    sink: Box<dyn DebugSink>,
    default_stack_size: usize,
    pub(super) run_queue: RefCell<VecDeque<CoroRc>>,
    pub(super) timers: RefCell<TimerQueue<TimerAction>>,
    /// The fds being waited on (owned by `io`).
    io: RefCell<IoTable>,
    /// Interrupt events some coroutine waits on (owned by `irq_event`).
    irq: IrqWaits,
    /// The run stack of shared-stack coroutines and whose frames are on it (owned by
    /// `shared_stack`).
    run_stack: RunStack,
    /// New coroutines run on the run stack unless their `Builder` says otherwise.
    shared_default: Cell<bool>,
    /// The running coroutine, or null in the scheduler's own context.
    pub(super) current: Cell<*const CoroInner>,
    /// Live coroutines by registry slot (strong: the registry owns them until they die).
    registry: RefCell<Vec<Option<CoroRc>>>,
    registry_free: RefCell<Vec<usize>>,
    /// The next coroutine id, and the end of the block of ids this scheduler holds
    /// (`hooks::coro_id_block`).
    next_id: Cell<u64>,
    ids_end: Cell<u64>,
    pub(super) next_timeout: Cell<u64>,
    pub(super) exit: Cell<Option<i32>>,
    pub(super) selfishness: Cell<u32>,
    /// The time as of this loop iteration, for wait bookkeeping (where_all's "for 1.2s"):
    /// the loop's reading when it took one, `None` until [`wait_clock`](Self::wait_clock)
    /// needs one.
    pub(super) loop_now: Cell<Option<u64>>,
    pub(super) started_at: u64,
    pub(super) in_loop: Cell<bool>,
    pub(super) stats: Cell<Stats>,
    pub(super) events: RefCell<Vec<Event>>,
    /// Called once per loop iteration, after polling (signal-driven dumps and the like).
    pub(super) loop_hook: Cell<Option<fn()>>,
    /// Spawns that found no stack: (failures not yet reported, when the last report was
    /// printed), so a loop spawning at a limit prints a count, not a line per attempt.
    spawn_failures: Cell<(u64, Option<u64>)>,
    /// Slice timing (feature `latency`; nothing without it).
    latency: hooks::LatencyPart,
    /// The exception notifier (feature `std`; nothing without it).
    panic: hooks::PanicPart,
    /// The switch observer (feature `switch-observer`; nothing without it).
    switch_observer: hooks::ObserverPart,
    /// The blocking profile (feature `std`; nothing without it).
    wait_profile: hooks::WaitProfilePart,
    /// The compaction of idle shared-stack copies (feature `std`; nothing without it).
    compaction: hooks::CompactionPart,
    /// The spin before a wait (feature `std`; nothing without it).
    idle_spin: hooks::IdleSpinPart,
}

/// The scheduler installed on this thread, if any.
#[inline]
pub(crate) fn try_sched() -> Option<&'static SchedState> {
    let p = hooks::sched_ptr();
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
        irq: IrqWaits::default(),
        run_stack: RunStack::new(),
        shared_default: Cell::new(false),
        current: Cell::new(core::ptr::null()),
        registry: RefCell::new(Vec::new()),
        registry_free: RefCell::new(Vec::new()),
        next_id: Cell::new(0),
        ids_end: Cell::new(0),
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
        latency: hooks::LatencyPart::new(rate, lag),
        panic: hooks::panic_part(),
        switch_observer: hooks::observer_part(),
        wait_profile: Default::default(),
        compaction: hooks::compaction_part(),
        idle_spin: hooks::idle_spin_part(),
    });
    hooks::set_sched_ptr(Box::into_raw(state));
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
    if let Some(stack) = s.run_stack.take() {
        s.stacks.release(stack);
    }
    hooks::set_sched_ptr(core::ptr::null());
    // SAFETY: the pointer came from Box::into_raw in `install`, was cleared above so no new
    // reference can be made, and no coroutine (the only other holders of `&SchedState`
    // across calls) is left alive.
    drop(unsafe { Box::from_raw(s as *const SchedState as *mut SchedState) });
}

/// The parts the scheduler holds for other subsystems, and its clock, sink and counters.
impl SchedState {
    /// The I/O table (the `io` module's).
    #[inline]
    pub(crate) fn io(&self) -> &RefCell<IoTable> {
        &self.io
    }

    /// The interrupt events waited on (the `irq_event` module's).
    #[inline]
    pub(crate) fn irq(&self) -> &IrqWaits {
        &self.irq
    }

    /// Slice timing (the `latency` module's, through `hooks`).
    #[inline]
    #[allow(dead_code)] // read only with feature `latency`
    pub(crate) fn latency(&self) -> &hooks::LatencyPart {
        &self.latency
    }

    /// The blocking profile (the `wait_profile` module's, through `hooks`).
    #[inline]
    #[allow(dead_code)] // read only with feature `std`
    pub(crate) fn wait_profile(&self) -> &hooks::WaitProfilePart {
        &self.wait_profile
    }

    /// The compaction of idle copies (the `shared_stack` module's, through `hooks`).
    #[inline]
    pub(crate) fn compaction(&self) -> &hooks::CompactionPart {
        &self.compaction
    }

    /// The spin before a wait (the `idle_spin` module's, through `hooks`).
    #[inline]
    #[allow(dead_code)] // read only with feature `std`
    pub(crate) fn idle_spin(&self) -> &hooks::IdleSpinPart {
        &self.idle_spin
    }

    /// The switch observer (the `switch_observer` module's, through `hooks`).
    #[inline]
    #[allow(dead_code)] // read only with feature `switch-observer`
    pub(crate) fn switch_observer(&self) -> &hooks::ObserverPart {
        &self.switch_observer
    }

    /// The exception notifier's state (the `panic` module's, through `hooks`).
    #[inline]
    #[allow(dead_code)] // read only with feature `std`
    pub(crate) fn panic_part(&self) -> &hooks::PanicPart {
        &self.panic
    }

    /// The I/O readiness backend.
    #[inline]
    pub(crate) fn poller(&self) -> &dyn Poller {
        &*self.poller
    }

    /// The clock.
    #[inline]
    #[allow(dead_code)] // read only with feature `latency` or `std`
    pub(crate) fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    /// Ticks per second of the clock.
    #[inline]
    pub(crate) fn rate(&self) -> TickRate {
        self.rate
    }

    /// The debug sink.
    #[inline]
    pub(crate) fn sink(&self) -> &dyn DebugSink {
        &*self.sink
    }

    pub(crate) fn now_ticks(&self) -> u64 {
        self.clock.now()
    }

    /// Ticks since the scheduler was installed.
    pub(crate) fn uptime_ticks(&self) -> u64 {
        self.now_ticks().saturating_sub(self.started_at)
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

    /// Something that takes time outside any slice happened (a poll, `where_all`): the
    /// next slice must read the clock for its start.
    #[inline]
    pub(crate) fn break_slice_chain(&self) {
        hooks::break_slice_chain(self);
    }

    pub(super) fn bump<F: FnOnce(&mut Stats)>(&self, f: F) {
        let mut st = self.stats.get();
        f(&mut st);
        self.stats.set(st);
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
}

/// The coroutines: who runs, the registry, creating and reaping.
impl SchedState {
    /// The running coroutine, if a coroutine is running (for signal handlers and waits).
    #[inline]
    pub(crate) fn running(&self) -> Option<&CoroInner> {
        // SAFETY: `current` is non-null only while that coroutine runs, and the registry
        // keeps it alive (a strong count of at least one) for at least that long.
        unsafe { self.current.get().as_ref() }
    }

    /// Is `co` the running coroutine?
    #[inline]
    pub(crate) fn is_running(&self, co: &CoroInner) -> bool {
        core::ptr::eq(self.current.get(), co)
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

    /// Every live coroutine, in registry order (`f` must not spawn or reap).
    pub(crate) fn for_each_live(&self, mut f: impl FnMut(&CoroRc)) {
        for co in self.registry.borrow().iter().flatten() {
            f(co);
        }
    }

    /// Every live coroutine, in registry order, from a signal handler running on this
    /// scheduler's thread: false (and `f` is not called) if the registry is being changed
    /// at the moment of the signal (a spawn or a reap was interrupted).
    pub(crate) fn for_each_live_in_handler(&self, mut f: impl FnMut(&CoroInner)) -> bool {
        // SAFETY: `try_borrow_unguarded` fails while a `borrow_mut` is live (the interrupted
        // code was changing the registry), and otherwise hands out a reference without
        // touching the borrow flag. The handler runs on this thread with the interrupted
        // code stopped under it, so nothing can take a `borrow_mut` while `f` runs (`f`
        // only reads, see `running::for_each_coro_for_signal`).
        let Ok(registry) = (unsafe { self.registry.try_borrow_unguarded() }) else {
            return false;
        };
        for co in registry.iter().flatten() {
            f(co);
        }
        true
    }

    /// The live coroutines in registry slots `[from, from + max)`; returns the slot to go on
    /// from, or `None` past the registry's end (`f` must not spawn or reap).
    #[allow(dead_code)] // used only with feature `std` (the idle compaction)
    pub(crate) fn for_each_live_from(
        &self,
        from: usize,
        max: usize,
        mut f: impl FnMut(&CoroRc),
    ) -> Option<usize> {
        let reg = self.registry.borrow();
        let end = from.saturating_add(max).min(reg.len());
        for co in reg[from.min(end)..end].iter().flatten() {
            f(co);
        }
        (end < reg.len()).then_some(end)
    }

    /// The live coroutine in registry slot `slot`.
    pub(super) fn in_slot(&self, slot: usize) -> Option<CoroRc> {
        self.registry.borrow().get(slot).cloned().flatten()
    }

    /// A fresh coroutine id (never reused).
    pub(crate) fn next_coro_id(&self) -> u64 {
        let mut id = self.next_id.get();
        if id == self.ids_end.get() {
            let block = hooks::coro_id_block();
            id = block.start;
            self.ids_end.set(block.end);
        }
        self.next_id.set(id + 1);
        id
    }

    /// The run stack `(limit, base, canary)` for a new shared-stack coroutine (allocated,
    /// at the default stack size, by the first).
    pub(crate) fn run_stack_range(&self) -> Result<(usize, usize, *const usize), StackError> {
        self.run_stack
            .range(|| self.stacks.allocate(self.default_stack_size))
    }

    /// Whether new coroutines run on the run stack by default.
    pub(crate) fn shared_stack_default(&self) -> bool {
        self.shared_default.get()
    }

    /// Set that default; returns the previous one.
    pub(crate) fn set_shared_stack_default(&self, on: bool) -> bool {
        self.shared_default.replace(on)
    }

    /// A saved copy was compacted, freeing `bytes` of heap.
    #[allow(dead_code)] // used only with feature `std` (the idle compaction)
    pub(crate) fn count_compaction(&self, bytes: usize) {
        self.bump(|st| {
            st.stacks_compacted += 1;
            st.stack_bytes_compacted += bytes as u64;
        });
    }

    /// Copies the shared-stack mode made (saves plus restores) and bytes copied.
    pub(crate) fn stack_copies(&self) -> (u64, u64) {
        self.run_stack.copied()
    }

    /// A stack for a new coroutine (`None`: the default size).
    pub(crate) fn allocate_stack(&self, size: Option<usize>) -> Result<BoxedStack, StackError> {
        self.stacks
            .allocate(size.unwrap_or(self.default_stack_size))
    }

    /// Take a new coroutine into the registry (it stays there until reaped).
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
        co.set_slot(slot);
        self.bump(|st| st.spawned += 1);
    }

    /// Put `co` at the back of the run queue.
    pub(crate) fn schedule(&self, co: CoroRc) {
        co.make_ready();
        self.run_queue.borrow_mut().push_back(co);
    }

    hot_path! {
        /// Switch into `co`; returns when it blocks, yields or ends.
        pub(super) fn run(&self, co: CoroRc) {
            if !co.enter_running() {
                return; // cancelled or reaped while queued
            }
            if co.is_shared() {
                self.run_stack.enter(&co);
            }
            self.current.set(Rc::as_ptr(&co));
            hooks::switching_in(self, &co);
            let t0 = hooks::slice_begin(self, &co);
            // SAFETY: `co` was Ready, so its saved context was produced by `init` or saved
            // by its last suspend, and its stack is alive (it is released only after death;
            // the run stack, after the scheduler) with its frames in place (a shared-stack
            // coroutine's were put back by `enter` above). The root slot lies inside that
            // stack.
            unsafe {
                Native::switch(Native::root_slot(co.stack_base()), co.saved_context(), 0);
            }
            self.current.set(core::ptr::null());
            if let Some(end) = hooks::slice_end(self, &co, t0) {
                self.loop_now.set(Some(end));
            }
            hooks::switched_out(self, &co);
            self.bump(|s| s.switches += 1);
            if !co.canary_intact() {
                self.stack_overflowed(&co);
            }
            if co.is_dead() {
                self.reap(&co);
            }
        }
    }

    /// `spawn`/`new` found no stack: print it the first time, then at most every 10 s
    /// with the count since the last line.
    #[cold]
    pub(crate) fn report_spawn_failure(&self, error: &SpawnError, at: &'static Location<'static>) {
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
        let (limit, base) = co.stack_range();
        let size = base - limit;
        self.debug_fmt(format_args!(
            "coroutine #{} '{}' overflowed its stack ({} KiB): the canary at its limit was \
             overwritten\n",
            co.id(),
            co.name(),
            size / 1024
        ));
        panic!(
            "coroutine #{} '{}' overflowed its stack ({} KiB)",
            co.id(),
            co.name(),
            size / 1024
        );
    }

    /// Release a dead coroutine's stack and registry slot.
    pub(crate) fn reap(&self, co: &CoroInner) {
        if let Some(stack) = co.take_stack() {
            self.stacks.release(stack);
        }
        if co.is_shared() {
            self.run_stack.forget(co);
            drop(co.take_saved_frames());
        }
        let slot = co.slot();
        let removed = self.registry.borrow_mut()[slot].take();
        if removed.is_some() {
            self.registry_free.borrow_mut().push(slot);
        }
        drop(removed);
    }

    /// A coroutine that never ran is cancelled: dead, its closure dropped, joiners woken.
    pub(crate) fn cancel_unstarted(&self, co: &CoroRc) {
        co.set_dead();
        drop(co.take_body());
        self.finish(co);
        self.reap(co);
    }

    /// Wake everybody joining `co`, which just ended.
    pub(crate) fn finish(&self, co: &CoroInner) {
        while let Some(w) = co.next_joiner() {
            w.wake(Resume::Ok);
        }
    }

    /// The scheduler is going away: unwind (with `std`) or abandon every suspended
    /// coroutine, cancel the unstarted ones.
    fn unwind_all(&self) {
        let mut live = Vec::new();
        self.for_each_live(|co| live.push(co.clone()));
        for co in live {
            if co.is_dead() {
                continue;
            }
            if !co.has_started() {
                self.cancel_unstarted(&co);
            } else if hooks::CAN_UNWIND {
                self.unwind_one(&co);
            } else {
                // Its frames are abandoned; the closure it captured and its stack are freed.
                co.set_dead();
                drop(co.take_body());
                self.reap(&co);
            }
        }
        self.run_queue.borrow_mut().clear();
        *self.timers.borrow_mut() = TimerQueue::new();
    }

    /// Resume a suspended coroutine with a forced unwind until it ends.
    fn unwind_one(&self, co: &CoroRc) {
        co.unwind_flag().set();
        for _ in 0..8 {
            if co.is_dead() {
                return;
            }
            co.make_ready();
            self.run(co.clone());
        }
        // It keeps catching the unwind and blocking again: give up on it and free the stack.
        co.set_dead();
        self.reap(co);
    }
}

/// Blocking, waking and interrupting.
impl SchedState {
    hot_path! {
        /// Suspend the running coroutine until something wakes it.
        ///
        /// Inlined into each caller (it is generic over `register`, so each has its own copy
        /// anyway): a `WaitReason` passed in memory is stored by the caller a word at a time
        /// and reloaded here in one piece, which stalls store forwarding.
        #[track_caller]
        pub(crate) fn block(&self, reason: WaitReason, register: impl FnOnce(Waiter)) -> Resume {
            let co = self.current_ref();
            if let Some(i) = co.take_pending() {
                return take_pending(co, i);
            }
            if let Some(r) = hooks::unwinding_at_block(co) {
                return r;
            }
            let me = self.current_rc().expect("running coroutine is registered");
            let since = self.wait_clock();
            let seq = co.enter_wait(reason, since, Location::caller());
            register(Waiter::new(me, seq));
            self.suspend_current(co);
            co.leave_wait();
            hooks::wait_ended(self, reason, Location::caller(), since);
            hooks::unwinding_after_wait(co);
            co.take_resume()
        }
    }

    /// Switch from the running coroutine back to the scheduler.
    pub(crate) fn suspend_current(&self, co: &CoroInner) {
        // SAFETY: we are running on `co`'s stack, resumed by `run`, which stored the
        // scheduler's context in the root slot; `co`'s saved context is ours to overwrite.
        unsafe {
            let to = *Native::root_slot(co.stack_base());
            Native::switch(co.saved_context_slot(), to, 0);
        }
    }

    /// Deliver an interruption to `co` according to its state.
    pub(crate) fn deliver(&self, co: &CoroRc, i: Interrupted) -> Delivery {
        use crate::coro::State;
        match co.state() {
            State::Dead => Delivery::Dead,
            State::NotStarted => {
                self.cancel_unstarted(co);
                Delivery::Cancelled
            }
            State::Ready if !co.has_started() => {
                self.cancel_unstarted(co);
                Delivery::Cancelled
            }
            State::Blocked => {
                if let Interrupted::Timeout(id) = i {
                    co.mark_timeout_fired(id);
                }
                wake(&co.current_waiter(), Resume::Interrupted(i));
                Delivery::Delivered
            }
            // Woken from a wait, not resumed yet: it resumes with the interruption instead
            // (Shrapnel's `force`), and passes on what the wake handed it.
            State::Ready if co.revoke_wake(i) => {
                if let Interrupted::Timeout(id) = i {
                    co.mark_timeout_fired(id);
                }
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
    w.coro().set_resume(r);
    sched().schedule(w.coro().clone());
    true
}
