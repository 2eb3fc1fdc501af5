//! Where cargo features reach the scheduler: every `cfg(feature = …)` that changes what the
//! scheduler or a coroutine does lives here, so `sched/` and `coro.rs` call these functions
//! unconditionally and read as one program (embassy's `raw/trace.rs` does the same for its
//! tracing).
//!
//! With a feature off, its hooks are empty `#[inline(always)]` functions and its parts are
//! zero-sized, so the switch path compiles to the same instructions as if the calls were not
//! there (`bench/code-size.sh` checks `event_loop` and `yield_slice`).
//!
//! - `latency`: each slice is timed around the switch ([`slice_begin`], [`slice_end`]),
//!   the scheduler's latency state ([`LatencyPart`]) and each coroutine's slice counters
//!   ([`CoroSlices`]).
//! - `switch-observer`: a function told of each switch into and out of a coroutine
//!   ([`switching_in`], [`switched_out`], the scheduler's [`ObserverPart`]).
//! - `std`: the scheduler is found through a thread-local (bare metal: one static);
//!   a coroutine's panic is caught at its root ([`run_body`]); a suspended coroutine can be
//!   unwound when its scheduler is uninstalled ([`UnwindFlag`], [`unwinding_at_block`]);
//!   the exception notifier's state ([`PanicPart`]); the saved copies of idle shared-stack
//!   coroutines are compacted while the loop is about to wait ([`CompactionPart`],
//!   [`about_to_wait`], [`COMPACTS_IDLE_COPIES`]); a loop that runs dry may spin a while
//!   before it waits ([`IdleSpinPart`], [`before_wait`]).

use crate::coro::{CoroInner, JoinError};
use crate::debug::SliceStats;
use crate::sched::{Resume, SchedState};

/// Marks a function of the switch path that hosted builds inline into their callers
/// (bare-metal builds optimise for size and leave the choice to the compiler).
macro_rules! hot_path {
    ($(#[$meta:meta])* $vis:vis fn $($rest:tt)*) => {
        $(#[$meta])*
        #[cfg_attr(feature = "std", inline(always))]
        $vis fn $($rest)*
    };
}
pub(crate) use hot_path;

// ---- where the scheduler lives ----------------------------------------------------------

cfg_if::cfg_if! {
    if #[cfg(feature = "std")] {
        std::thread_local! {
            static CURRENT: core::cell::Cell<*const SchedState> =
                const { core::cell::Cell::new(core::ptr::null()) };
        }
        /// This thread's scheduler (null if none).
        #[inline(always)]
        pub(crate) fn sched_ptr() -> *const SchedState {
            CURRENT.with(|c| c.get())
        }
        /// Install (or, with null, remove) this thread's scheduler.
        pub(crate) fn set_sched_ptr(p: *const SchedState) {
            CURRENT.with(|c| c.set(p))
        }
    } else {
        static CURRENT: core::sync::atomic::AtomicPtr<SchedState> =
            core::sync::atomic::AtomicPtr::new(core::ptr::null_mut());
        /// The scheduler (bare metal: one per program, single core).
        #[inline(always)]
        pub(crate) fn sched_ptr() -> *const SchedState {
            CURRENT.load(core::sync::atomic::Ordering::Relaxed)
        }
        /// Install (or, with null, remove) the scheduler.
        pub(crate) fn set_sched_ptr(p: *const SchedState) {
            CURRENT.store(p as *mut _, core::sync::atomic::Ordering::Relaxed)
        }
    }
}

// ---- latency: slices timed around the switch --------------------------------------------

cfg_if::cfg_if! {
    if #[cfg(feature = "latency")] {
        /// The scheduler's latency state (threshold, probe, the chain of slices).
        pub(crate) type LatencyPart = crate::latency::Latency;
        /// A coroutine's slice counters.
        pub(crate) type CoroSlices = crate::latency::CoroSlices;
        /// When the running slice began (ticks).
        pub(crate) type SliceStart = u64;

        /// Called right before switching into `co`.
        #[inline(always)]
        pub(crate) fn slice_begin(s: &SchedState, co: &CoroInner) -> SliceStart {
            crate::latency::slice_begin(s, co)
        }

        /// Called after `co` switched back; returns the time the slice ended, which the
        /// loop takes as its time (no clock read of its own).
        #[inline(always)]
        pub(crate) fn slice_end(s: &SchedState, co: &CoroInner, t0: SliceStart) -> Option<u64> {
            Some(crate::latency::slice_end(s, co, t0))
        }

        /// The end of the last slice, while only the scheduler's bookkeeping ran since.
        #[inline(always)]
        pub(crate) fn slice_chain(s: &SchedState) -> Option<u64> {
            s.latency().chain()
        }

        /// Something that takes time outside any slice ran: the next slice reads the clock.
        #[inline(always)]
        pub(crate) fn break_slice_chain(s: &SchedState) {
            s.latency().break_chain()
        }

        /// `co`'s slice statistics.
        pub(crate) fn slice_stats(s: &SchedState, co: &CoroInner) -> SliceStats {
            co.slices().stats(s.rate())
        }
    } else {
        /// Without `latency`: nothing.
        #[derive(Default)]
        pub(crate) struct LatencyPart;
        impl LatencyPart {
            #[inline(always)]
            pub(crate) fn new(_rate: crate::clock::TickRate, _lag: u64) -> Self {
                LatencyPart
            }
        }
        /// Without `latency`: nothing.
        #[derive(Default)]
        pub(crate) struct CoroSlices;
        /// Without `latency`: nothing.
        #[derive(Clone, Copy)]
        pub(crate) struct SliceStart;

        #[inline(always)]
        pub(crate) fn slice_begin(_s: &SchedState, _co: &CoroInner) -> SliceStart {
            SliceStart
        }

        #[inline(always)]
        pub(crate) fn slice_end(_s: &SchedState, _co: &CoroInner, _t0: SliceStart) -> Option<u64> {
            None
        }

        #[inline(always)]
        pub(crate) fn slice_chain(_s: &SchedState) -> Option<u64> {
            None
        }

        #[inline(always)]
        pub(crate) fn break_slice_chain(_s: &SchedState) {}

        /// Zeros: slices are not counted without `latency`.
        pub(crate) fn slice_stats(_s: &SchedState, _co: &CoroInner) -> SliceStats {
            SliceStats::default()
        }
    }
}

// ---- switch-observer: a function told of each switch --------------------------------------

cfg_if::cfg_if! {
    if #[cfg(feature = "switch-observer")] {
        /// The scheduler's switch observer, if one is installed.
        pub(crate) type ObserverPart =
            core::cell::Cell<Option<crate::switch_observer::SwitchObserver>>;

        /// None installed yet.
        pub(crate) fn observer_part() -> ObserverPart {
            core::cell::Cell::new(None)
        }

        /// Called right before switching into `co`.
        #[inline(always)]
        pub(crate) fn switching_in(s: &SchedState, co: &CoroInner) {
            if let Some(o) = s.switch_observer().get() {
                (o.entered)(co.id());
            }
        }

        /// Called right after `co` switched back.
        #[inline(always)]
        pub(crate) fn switched_out(s: &SchedState, co: &CoroInner) {
            if let Some(o) = s.switch_observer().get() {
                (o.left)(co.id(), co.is_dead());
            }
        }
    } else {
        /// Without `switch-observer`: nothing.
        pub(crate) struct ObserverPart;

        #[inline(always)]
        pub(crate) fn observer_part() -> ObserverPart {
            ObserverPart
        }

        #[inline(always)]
        pub(crate) fn switching_in(_s: &SchedState, _co: &CoroInner) {}

        #[inline(always)]
        pub(crate) fn switched_out(_s: &SchedState, _co: &CoroInner) {}
    }
}

// ---- std: panics caught at the root, suspended coroutines unwound ----------------------

cfg_if::cfg_if! {
    if #[cfg(feature = "std")] {
        /// The exception notifier.
        pub(crate) type PanicPart = crate::panic::PanicState;

        pub(crate) fn panic_part() -> PanicPart {
            PanicPart::default()
        }

        /// Suspended coroutines can be unwound (their destructors run) when the scheduler
        /// is uninstalled.
        pub(crate) const CAN_UNWIND: bool = true;

        /// The loop ends with coroutines blocked forever: name them (see `debug.rs`).
        #[inline(always)]
        pub(crate) fn report_blocked_forever(s: &SchedState) {
            crate::debug::report_blocked_forever(s)
        }

        /// The blocking profile (`wait_profile.rs`).
        pub(crate) type WaitProfilePart = crate::wait_profile::WaitProfile;

        /// A wait for `reason` from `at`, begun at tick `since`, ended: count it.
        #[inline(always)]
        pub(crate) fn wait_ended(
            s: &SchedState,
            reason: crate::wait::WaitReason,
            at: &'static core::panic::Location<'static>,
            since: u64,
        ) {
            s.wait_profile().record(reason, at, since, s.wait_clock());
        }

        /// What a blocked coroutine's wait is on, for the wait-for graph (`wait_for.rs`).
        pub(crate) type WaitsOnPart = core::cell::Cell<crate::wait_for::Holds>;

        /// A mutex about to block the running coroutine: note its owner cell.
        #[inline(always)]
        pub(crate) fn note_waits_on_mutex(owner: &core::cell::Cell<Option<u64>>) {
            crate::sched::sched()
                .current_ref()
                .waits_on()
                .set(crate::wait_for::Holds::Owner(owner));
        }

        /// A rwlock about to block the running coroutine: note its writer and readers.
        #[inline(always)]
        pub(crate) fn note_waits_on_rwlock(
            writer: &core::cell::Cell<Option<u64>>,
            readers: &core::cell::Cell<usize>,
        ) {
            crate::sched::sched()
                .current_ref()
                .waits_on()
                .set(crate::wait_for::Holds::RwLock(writer, readers));
        }

        /// Who holds what `co` waits for: a coroutine's id, or a number of readers.
        pub(crate) fn holder_of(co: &CoroInner) -> Option<Result<u64, usize>> {
            crate::wait_for::holder(co.wait_reason(), co.state(), co.waits_on().get())
        }

        /// The next block of coroutine ids for a scheduler: a process-wide counter hands
        /// out 1,024 at a time, so ids are unique across every scheduler of the process
        /// (a console can name any coroutine by its id alone) and spawning touches the
        /// shared counter once per 1,024 coroutines.
        pub(crate) fn coro_id_block() -> core::ops::Range<u64> {
            use core::sync::atomic::{AtomicU64, Ordering};
            const BLOCK: u64 = 1024;
            static NEXT: AtomicU64 = AtomicU64::new(1);
            let start = NEXT.fetch_add(BLOCK, Ordering::Relaxed);
            start..start + BLOCK
        }

        /// "This coroutine is being unwound": set when its scheduler is uninstalled.
        #[derive(Default)]
        pub(crate) struct UnwindFlag(core::cell::Cell<bool>);
        impl UnwindFlag {
            #[inline(always)]
            pub(crate) fn get(&self) -> bool {
                self.0.get()
            }
            pub(crate) fn set(&self) {
                self.0.set(true)
            }
        }

        /// Run a coroutine's closure, catching a panic (reported to the exception notifier
        /// and turned into the join error).
        pub(crate) fn run_body<F: FnOnce() -> T, T>(f: F) -> Result<T, JoinError> {
            std::panic::catch_unwind(core::panic::AssertUnwindSafe(f))
                .map_err(crate::panic::on_panic)
        }

        /// At a blocking call: a coroutine being unwound unwinds on (or, if it is already
        /// panicking, gets a shutdown instead of blocking again).
        #[inline(always)]
        pub(crate) fn unwinding_at_block(co: &CoroInner) -> Option<Resume> {
            if co.unwind_flag().get() {
                return Some(unwind_now());
            }
            None
        }

        #[cold]
        fn unwind_now() -> Resume {
            if std::thread::panicking() {
                return Resume::Interrupted(crate::interruption::Interrupted::Shutdown);
            }
            std::panic::resume_unwind(alloc::boxed::Box::new(crate::panic::ForcedUnwind));
        }

        /// After a wait: a coroutine the scheduler began unwinding while it waited unwinds.
        #[inline(always)]
        pub(crate) fn unwinding_after_wait(co: &CoroInner) {
            if co.unwind_flag().get() && !std::thread::panicking() {
                std::panic::resume_unwind(alloc::boxed::Box::new(crate::panic::ForcedUnwind));
            }
        }
    } else {
        /// Without `std`: no notifier.
        pub(crate) struct PanicPart;

        pub(crate) fn panic_part() -> PanicPart {
            PanicPart
        }

        /// Without unwinding, a suspended coroutine's frames are abandoned when the
        /// scheduler is uninstalled; its stack is freed.
        pub(crate) const CAN_UNWIND: bool = false;

        /// Without `std` (bare metal, for the `.text` budget): no blocking profile.
        #[derive(Default)]
        pub(crate) struct WaitProfilePart;

        #[inline(always)]
        pub(crate) fn wait_ended(
            _s: &SchedState,
            _reason: crate::wait::WaitReason,
            _at: &'static core::panic::Location<'static>,
            _since: u64,
        ) {
        }

        /// Without `std` (bare metal, for the `.text` budget): no wait-for graph.
        #[derive(Default)]
        pub(crate) struct WaitsOnPart;

        #[inline(always)]
        pub(crate) fn note_waits_on_mutex(_owner: &core::cell::Cell<Option<u64>>) {}

        #[inline(always)]
        pub(crate) fn note_waits_on_rwlock(
            _writer: &core::cell::Cell<Option<u64>>,
            _readers: &core::cell::Cell<usize>,
        ) {
        }

        #[inline(always)]
        pub(crate) fn holder_of(_co: &CoroInner) -> Option<Result<u64, usize>> {
            None
        }

        /// Without `std` (one scheduler, bare metal): ids from 1, one block for good.
        pub(crate) fn coro_id_block() -> core::ops::Range<u64> {
            1..u64::MAX
        }

        /// Without `std` (bare metal): no report, for the `.text` budget.
        #[inline(always)]
        pub(crate) fn report_blocked_forever(_s: &SchedState) {}

        /// Without `std`: never set.
        #[derive(Default)]
        pub(crate) struct UnwindFlag;
        impl UnwindFlag {
            pub(crate) fn set(&self) {}
        }

        /// Run a coroutine's closure (a panic is the panic handler's: no unwinding).
        pub(crate) fn run_body<F: FnOnce() -> T, T>(f: F) -> Result<T, JoinError> {
            Ok(f())
        }

        #[inline(always)]
        pub(crate) fn unwinding_at_block(_co: &CoroInner) -> Option<Resume> {
            None
        }

        #[inline(always)]
        pub(crate) fn unwinding_after_wait(_co: &CoroInner) {}
    }
}

// ---- std: idle shared-stack copies compacted ---------------------------------------------

cfg_if::cfg_if! {
    if #[cfg(feature = "std")] {
        /// Saved copies can be in the compact form (`shared_stack::SavedFrames`).
        pub(crate) const COMPACTS_IDLE_COPIES: bool = true;

        /// The scheduler's compaction of idle copies.
        pub(crate) type CompactionPart = crate::shared_stack::IdleCompaction;

        pub(crate) fn compaction_part() -> CompactionPart {
            CompactionPart::new()
        }

        /// The loop is about to wait up to `timeout` (`None`: until an event): a step of
        /// compaction if one is due; returns how long to wait instead. A zero timeout is a
        /// busy loop, not a wait: nothing is done then.
        #[inline(always)]
        pub(crate) fn about_to_wait(
            s: &SchedState,
            timeout: Option<core::time::Duration>,
        ) -> Option<core::time::Duration> {
            if timeout == Some(core::time::Duration::ZERO) {
                return timeout;
            }
            s.compaction().about_to_wait(s, timeout)
        }
    } else {
        /// Without `std` (bare metal, for the `.text` budget): copies stay plain, and the
        /// check for the compact form folds away.
        pub(crate) const COMPACTS_IDLE_COPIES: bool = false;

        /// Without `std`: nothing.
        pub(crate) struct CompactionPart;
        impl CompactionPart {
            pub(crate) fn set_after(
                &self,
                _after: Option<core::time::Duration>,
            ) -> Option<core::time::Duration> {
                None
            }
            pub(crate) fn set_trim(&self, _trim: Option<fn()>) -> Option<fn()> {
                None
            }
        }

        pub(crate) fn compaction_part() -> CompactionPart {
            CompactionPart
        }

        #[inline(always)]
        pub(crate) fn about_to_wait(
            _s: &SchedState,
            timeout: Option<core::time::Duration>,
        ) -> Option<core::time::Duration> {
            timeout
        }
    }
}

// ---- std: spinning before a wait ---------------------------------------------------------

cfg_if::cfg_if! {
    if #[cfg(feature = "std")] {
        /// The scheduler's spin window (`idle_spin.rs`).
        pub(crate) type IdleSpinPart = crate::idle_spin::IdleSpin;

        pub(crate) fn idle_spin_part() -> IdleSpinPart {
            IdleSpinPart::new()
        }

        /// The loop ran dry and is about to wait up to `timeout` (`None`: until an event);
        /// `ran`: its pass ran coroutines. Returns how long to wait: zero while it spins.
        #[inline(always)]
        pub(crate) fn before_wait(
            s: &SchedState,
            timeout: Option<core::time::Duration>,
            ran: bool,
        ) -> Option<core::time::Duration> {
            s.idle_spin().before_wait(s, timeout, ran)
        }
    } else {
        /// Without `std` (bare metal, for the `.text` budget): the loop never spins.
        pub(crate) struct IdleSpinPart;

        pub(crate) fn idle_spin_part() -> IdleSpinPart {
            IdleSpinPart
        }

        #[inline(always)]
        pub(crate) fn before_wait(
            _s: &SchedState,
            timeout: Option<core::time::Duration>,
            _ran: bool,
        ) -> Option<core::time::Duration> {
            timeout
        }
    }
}
