//! Coroutines: the [`Coro`] handle, [`Builder`], `spawn`/`new`, join, and interruption.
//!
//! A coroutine is a closure running on its own stack. [`Coro<T>`] is the typed handle
//! (`join` returns the `T`); [`CoroRef`] is the untyped handle that `current()`,
//! `live_coros()` and `coro_by_id()` hand out. Both are `!Send`: a coroutine never leaves
//! the thread that created it. Ids start at 1 and are never reused.

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::any::Any;
use core::cell::{BorrowError, Cell, Ref, RefCell};
use core::fmt;
use core::marker::PhantomData;
use core::ops::Deref;
use core::panic::Location;

use crate::arch::{ContextSwitch, Native};
use crate::coro_local::CoroLocals;
use crate::hooks;
use crate::interruption::{Interrupted, TimeoutId};
use crate::sched::{sched, Delivery, Resume};
use crate::shared_stack::SavedFrames;
use crate::stack::{BoxedStack, StackError};
use crate::wait::{WaitQueue, WaitReason, Waiter};

pub(crate) type CoroRc = Rc<CoroInner>;

/// Interruptions (other than shutdowns and timeouts) kept waiting behind a pending one.
const MAX_PENDING: usize = 16;

/// Where a coroutine is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Created with `new`, `start` not called yet.
    NotStarted,
    /// In the run queue.
    Ready,
    /// Running now.
    Running,
    /// Waiting for something (see its [`WaitReason`]).
    Blocked,
    /// Finished, panicked, or cancelled.
    Dead,
}

impl fmt::Display for State {
    /// The word `where_all`, `ps` and the backdoor print: `new`, `scheduled`, `running`,
    /// `blocked`, `dead`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            State::NotStarted => "new",
            State::Ready => "scheduled",
            State::Running => "running",
            State::Blocked => "blocked",
            State::Dead => "dead",
        })
    }
}

/// A coroutine's name: the one it was given, or `coro-{id}` rendered when asked, so a
/// coroutine spawned without a name costs no allocation for it.
pub(crate) struct CoroName {
    id: u64,
    given: RefCell<Option<Cow<'static, str>>>,
}

/// A borrowed [`CoroName`]: a `str`.
pub(crate) enum NameRef<'a> {
    Given(Ref<'a, Cow<'static, str>>),
    Default(heapless::String<32>),
}

impl Deref for NameRef<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            NameRef::Given(name) => name,
            NameRef::Default(name) => name,
        }
    }
}

impl fmt::Display for NameRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl CoroName {
    fn new(id: u64, given: Option<Cow<'static, str>>) -> Self {
        CoroName {
            id,
            given: RefCell::new(given),
        }
    }

    /// The name, unless a rename is in progress (a signal handler may ask at any moment).
    /// Allocation-free.
    pub(crate) fn try_borrow(&self) -> Result<NameRef<'_>, BorrowError> {
        let given = self.given.try_borrow()?;
        Ok(match Ref::filter_map(given, Option::as_ref) {
            Ok(name) => NameRef::Given(name),
            Err(_) => {
                let mut name = heapless::String::new();
                // "coro-" and at most 20 digits fit.
                let _ = fmt::Write::write_fmt(&mut name, format_args!("coro-{}", self.id));
                NameRef::Default(name)
            }
        })
    }

    /// The name.
    pub(crate) fn borrow(&self) -> NameRef<'_> {
        match self.try_borrow() {
            Ok(name) => name,
            Err(_) => unreachable!("a coroutine's name is never borrowed across a rename"),
        }
    }

    fn set(&self, name: Cow<'static, str>) {
        *self.given.borrow_mut() = Some(name);
    }
}

/// A coroutine's closure and then its result, in one allocation that the coroutine owns;
/// [`Coro<T>`] takes the result out by its type.
pub(crate) trait Body {
    /// Run the closure (the first call only) and keep what it returned, or how it failed.
    fn run(&mut self);
    /// The result, an `Option<Result<T, JoinError>>` (`None` if it never ran).
    fn result(&mut self) -> &mut dyn Any;
}

enum BodyState<F, T> {
    NotRun(F),
    Ran(Option<Result<T, JoinError>>),
}

impl<F: FnOnce() -> T, T: 'static> Body for BodyState<F, T> {
    fn run(&mut self) {
        if let BodyState::NotRun(f) = core::mem::replace(self, BodyState::Ran(None)) {
            *self = BodyState::Ran(Some(hooks::run_body(f)));
        }
    }

    fn result(&mut self) -> &mut dyn Any {
        if let BodyState::NotRun(_) = self {
            *self = BodyState::Ran(None);
        }
        match self {
            BodyState::Ran(result) => result,
            BodyState::NotRun(_) => unreachable!("replaced just above"),
        }
    }
}

/// Where a new coroutine's frames live.
enum StackHome {
    /// On a stack of its own.
    Own(BoxedStack),
    /// On the scheduler's run stack `(limit, base, canary)` (`shared_stack`).
    Shared((usize, usize, *const usize)),
    /// Nowhere: it never runs.
    None,
}

/// A coroutine as the scheduler keeps it. Its fields are this module's; the scheduler and
/// the debug features use the operations below, which keep `State` and `WaitReason`
/// consistent (each transition sets both).
pub(crate) struct CoroInner {
    id: u64,
    slot: Cell<usize>,
    name: CoroName,
    state: Cell<State>,
    started: Cell<bool>,
    /// Saved context while suspended.
    sp: Cell<usize>,
    stack: Cell<Option<BoxedStack>>,
    /// Runs on the scheduler's run stack (shared-stack mode) instead of `stack`.
    shared: bool,
    /// Shared-stack mode, while another coroutine owns the run stack: a copy of its live
    /// frames, `[context - SAVED_BELOW, base)` of the run stack, plain or (idle a while)
    /// compact (`shared_stack`).
    saved_frames: Cell<Option<SavedFrames>>,
    stack_base: Cell<usize>,
    stack_limit: Cell<usize>,
    /// The stack's canary word (null if it has a guard page instead), checked per switch.
    canary: Cell<*const usize>,
    /// The closure, then its result; out of the cell while the closure runs.
    body: Cell<Option<Box<dyn Body>>>,
    /// How the current wait ended, set by whoever woke it.
    resume: Cell<Resume>,
    /// An interruption aimed at this coroutine while it was running (or yielded, or
    /// already resuming with another): its next blocking call returns it.
    pending: Cell<Option<Interrupted>>,
    /// Interruptions that arrived while `pending` was taken, oldest first, each once.
    pending_more: RefCell<Vec<Interrupted>>,
    /// Block sequence number: a waiter entry is live only while this matches.
    seq: Cell<u64>,
    wait: Cell<WaitReason>,
    wait_since: Cell<u64>,
    wait_at: Cell<Option<&'static Location<'static>>>,
    /// Active `with_timeout` ids, innermost last, with "deadline delivered" flags.
    timeouts: RefCell<Vec<(TimeoutId, bool)>>,
    /// Coroutines waiting for this one to end.
    joiners: RefCell<WaitQueue>,
    selfish: Cell<u32>,
    /// 0: use the scheduler's default.
    max_selfish: Cell<u32>,
    /// Set when its scheduler unwinds it (feature `std`; nothing without it).
    unwind: hooks::UnwindFlag,
    /// What its current wait is on, for the wait-for graph (feature `std`).
    waits_on: hooks::WaitsOnPart,
    /// Slice counters (feature `latency`; nothing without it).
    slices: hooks::CoroSlices,
    /// Its coroutine-local values (`coro_local`): one null word until first used.
    locals: CoroLocals,
}

/// Identity, state and stack: what the debug features read.
impl CoroInner {
    /// A coroutine that has not started: on its own stack, on the run stack `(limit, base,
    /// canary)` (shared-stack mode), or (a dead one) without a stack.
    fn new(
        id: u64,
        name: Option<Cow<'static, str>>,
        home: StackHome,
        body: Box<dyn Body>,
        state: State,
        since: u64,
        at: Option<&'static Location<'static>>,
    ) -> Self {
        let (stack, shared, (limit, base, canary)) = match home {
            StackHome::Own(stack) => {
                let range = (
                    stack.limit().as_ptr() as usize,
                    stack.base().as_ptr() as usize,
                    stack
                        .canary()
                        .map_or(core::ptr::null(), |p| p.as_ptr() as *const usize),
                );
                (Some(stack), false, range)
            }
            StackHome::Shared(range) => (None, true, range),
            StackHome::None => (None, false, (0, 0, core::ptr::null())),
        };
        CoroInner {
            id,
            slot: Cell::new(usize::MAX),
            name: CoroName::new(id, name),
            state: Cell::new(state),
            started: Cell::new(false),
            sp: Cell::new(0),
            stack: Cell::new(stack),
            shared,
            saved_frames: Cell::new(None),
            stack_base: Cell::new(base),
            stack_limit: Cell::new(limit),
            canary: Cell::new(canary),
            body: Cell::new(Some(body)),
            resume: Cell::new(Resume::Ok),
            pending: Cell::new(None),
            pending_more: RefCell::new(Vec::new()),
            seq: Cell::new(0),
            wait: Cell::new(if state == State::Dead {
                WaitReason::Dead
            } else {
                WaitReason::NotStarted
            }),
            wait_since: Cell::new(since),
            wait_at: Cell::new(at),
            timeouts: RefCell::new(Vec::new()),
            joiners: RefCell::new(WaitQueue::new()),
            selfish: Cell::new(0),
            max_selfish: Cell::new(0),
            unwind: Default::default(),
            waits_on: Default::default(),
            slices: Default::default(),
            locals: CoroLocals::new(),
        }
    }

    /// The id: never reused; unique in the process in hosted builds (feature `std`), where
    /// every scheduler takes its ids from one counter.
    #[inline]
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The name (allocation-free).
    pub(crate) fn name(&self) -> NameRef<'_> {
        self.name.borrow()
    }

    /// The name, unless a rename is in progress (for signal handlers).
    pub(crate) fn try_name(&self) -> Result<NameRef<'_>, BorrowError> {
        self.name.try_borrow()
    }

    pub(crate) fn name_str(&self) -> String {
        String::from(&*self.name.borrow())
    }

    /// Where it is in its life.
    #[inline]
    pub(crate) fn state(&self) -> State {
        self.state.get()
    }

    /// It has begun running.
    #[inline]
    pub(crate) fn has_started(&self) -> bool {
        self.started.get()
    }

    #[inline]
    pub(crate) fn is_dead(&self) -> bool {
        self.state.get() == State::Dead
    }

    /// What it is waiting for.
    pub(crate) fn wait_reason(&self) -> WaitReason {
        match self.state.get() {
            State::NotStarted => WaitReason::NotStarted,
            State::Ready if !self.started.get() => WaitReason::NotStarted,
            State::Ready => WaitReason::Scheduled,
            State::Running => WaitReason::Running,
            State::Blocked => self.wait.get(),
            State::Dead => WaitReason::Dead,
        }
    }

    /// When its current wait began (scheduler ticks) and the line that blocked.
    pub(crate) fn waiting_since(&self) -> (u64, Option<&'static Location<'static>>) {
        (self.wait_since.get(), self.wait_at.get())
    }

    /// Its stack, `(limit, base)`; `(0, 0)` once dead.
    #[inline]
    pub(crate) fn stack_range(&self) -> (usize, usize) {
        (self.stack_limit.get(), self.stack_base.get())
    }

    /// The saved context (its frame record) while suspended.
    #[inline]
    pub(crate) fn saved_context(&self) -> usize {
        self.sp.get()
    }

    /// Its slice counters (feature `latency`).
    #[allow(dead_code)] // read only with feature `latency`
    pub(crate) fn slices(&self) -> &hooks::CoroSlices {
        &self.slices
    }

    /// Its coroutine-local values (`coro_local` reads and ends them).
    #[inline]
    pub(crate) fn locals(&self) -> &CoroLocals {
        &self.locals
    }

    /// Shrapnel's `<coro #1 name='…' dead=0 started=1 scheduled=0 at 0x…>`.
    pub(crate) fn describe(&self, f: &mut dyn fmt::Write) -> fmt::Result {
        let st = self.state.get();
        write!(
            f,
            "<coro #{} name='{}' dead={} started={} scheduled={} at {:#x}>",
            self.id,
            self.name.borrow(),
            (st == State::Dead) as u8,
            self.started.get() as u8,
            (st == State::Ready) as u8,
            self as *const CoroInner as usize
        )
    }
}

/// The transitions the scheduler makes.
impl CoroInner {
    pub(crate) fn slot(&self) -> usize {
        self.slot.get()
    }

    pub(crate) fn set_slot(&self, slot: usize) {
        self.slot.set(slot);
    }

    /// Into the run queue.
    #[inline]
    pub(crate) fn make_ready(&self) {
        self.state.set(State::Ready);
    }

    /// About to be switched into: false if it was cancelled or reaped while queued.
    #[inline]
    pub(crate) fn enter_running(&self) -> bool {
        if self.state.get() != State::Ready {
            return false;
        }
        self.state.set(State::Running);
        self.started.set(true);
        true
    }

    /// Ended, or cancelled before it ran.
    pub(crate) fn set_dead(&self) {
        self.state.set(State::Dead);
        self.wait.set(WaitReason::Dead);
    }

    /// The top of its stack, where the arch's root slot is.
    #[inline]
    pub(crate) fn stack_base(&self) -> *mut u8 {
        self.stack_base.get() as *mut u8
    }

    /// Where a switch away from it saves its context.
    #[inline]
    pub(crate) fn saved_context_slot(&self) -> *mut usize {
        self.sp.as_ptr()
    }

    /// Its canary word is intact (or it has none).
    #[inline]
    pub(crate) fn canary_intact(&self) -> bool {
        let canary = self.canary.get();
        // SAFETY: a non-null canary points into the coroutine's stack, alive until reaped
        // (`take_stack` clears it first).
        canary.is_null() || unsafe { canary.read_volatile() } == crate::stack::CANARY
    }

    /// Its stack, to release once it is dead.
    pub(crate) fn take_stack(&self) -> Option<BoxedStack> {
        self.canary.set(core::ptr::null());
        self.stack.take()
    }

    /// Runs on the scheduler's run stack (shared-stack mode).
    #[inline]
    pub(crate) fn is_shared(&self) -> bool {
        self.shared
    }

    /// Shared-stack mode: keep `frames`, its live frames copied off the run stack.
    pub(crate) fn set_saved_frames(&self, frames: SavedFrames) {
        self.saved_frames.set(Some(frames));
    }

    /// Shared-stack mode: its saved frames, to copy back onto the run stack (`None` if it
    /// has none: it never ran, or they are still on the run stack).
    pub(crate) fn take_saved_frames(&self) -> Option<SavedFrames> {
        self.saved_frames.take()
    }

    /// Shared-stack mode: its frames are off the run stack in a plain (not compacted) copy.
    #[allow(dead_code)] // read only with feature `std` (the idle compaction)
    pub(crate) fn has_plain_saved_frames(&self) -> bool {
        let saved = self.saved_frames.take();
        let plain = saved.as_ref().is_some_and(|f| !f.is_compact());
        self.saved_frames.set(saved);
        plain
    }

    /// Shared-stack mode: replace a plain saved copy by its compact form, written in
    /// `scratch` first; returns the heap bytes `(before, after)`, or `None` if it had no
    /// plain copy.
    #[allow(dead_code)] // called only with feature `std` (the idle compaction)
    pub(crate) fn compact_saved_frames(&self, scratch: &mut Vec<u8>) -> Option<(usize, usize)> {
        let saved = self.saved_frames.take()?;
        if !saved.compact_into(scratch) {
            self.saved_frames.set(Some(saved));
            return None;
        }
        let before = saved.heap_bytes();
        // The plain copy is freed before the compact one is allocated, so the allocator can
        // put the compact one in its place, or leave the hole whole for the next.
        drop(saved);
        let compact = SavedFrames::from_compact(scratch);
        let after = compact.heap_bytes();
        self.saved_frames.set(Some(compact));
        Some((before, after))
    }

    /// Shared-stack mode, first run: lay out its initial frame at the top of the run stack
    /// (`base`), which the caller owns for it now.
    pub(crate) fn lay_out_first_frame(&self, base: usize) {
        if self.sp.get() != 0 {
            return; // it has run: its frames are on the run stack already
        }
        // SAFETY: `base` is the 16-aligned top of the run stack, which is alive for the
        // scheduler's life and owned by this coroutine now (shared_stack::RunStack::enter
        // saved the previous owner's frames); `data` is this record, which the registry
        // keeps alive until the coroutine is reaped, after `coro_main` stopped running.
        let sp = unsafe {
            Native::init(
                base as *mut u8,
                coro_main,
                self as *const CoroInner as *mut u8,
            )
        };
        self.sp.set(sp);
    }

    /// The word at `addr` of its suspended stack, read from the saved copy when its frames
    /// are off the run stack; `None` outside its live frames. For the debug walker.
    pub(crate) fn suspended_word(&self, addr: usize) -> Option<usize> {
        let word = core::mem::size_of::<usize>();
        let (lo, hi) = self.stack_range();
        if addr < lo || addr.checked_add(word)? > hi || !addr.is_multiple_of(word) {
            return None;
        }
        // Plain or compact, the copy holds `[hi - len, hi)`.
        let from_copy = |frames: &SavedFrames| frames.word_at(addr.checked_sub(hi - frames.len())?);
        let saved = self.saved_frames.take();
        let value = match &saved {
            Some(frames) => from_copy(frames),
            // SAFETY: `addr` is a word inside its stack (checked above), which is mapped;
            // the coroutine is suspended and its frames are on that stack (own stack, or
            // the run stack while it owns it), so nothing writes it meanwhile.
            None => Some(unsafe { (addr as *const usize).read() }),
        };
        self.saved_frames.set(saved);
        value
    }

    /// Its closure or result.
    pub(crate) fn take_body(&self) -> Option<Box<dyn Body>> {
        self.body.take()
    }

    /// `w` waits for it to end.
    pub(crate) fn add_joiner(&self, w: Waiter) {
        self.joiners.borrow_mut().push(w, ());
    }

    /// The next coroutine waiting for it to end.
    pub(crate) fn next_joiner(&self) -> Option<Waiter> {
        self.joiners.borrow_mut().pop_live().map(|(w, ())| w)
    }

    /// Blocks in a wait for `reason`, from `at`: returns the wait's sequence number.
    #[inline]
    pub(crate) fn enter_wait(
        &self,
        reason: WaitReason,
        since: u64,
        at: &'static Location<'static>,
    ) -> u64 {
        self.state.set(State::Blocked);
        self.wait.set(reason);
        self.wait_since.set(since);
        self.wait_at.set(Some(at));
        self.selfish.set(0);
        self.seq.get()
    }

    /// Gives up its slice (`yield_slice`); the scheduler puts it back in the run queue.
    #[inline]
    pub(crate) fn enter_yield(&self, since: u64, at: &'static Location<'static>) {
        self.wait.set(WaitReason::Yield);
        self.wait_since.set(since);
        self.wait_at.set(Some(at));
        self.selfish.set(0);
        self.resume.set(Resume::Ok);
    }

    /// Running again after a wait or a yield: stale waiters of that wait no longer match.
    #[inline]
    pub(crate) fn leave_wait(&self) {
        self.seq.set(self.seq.get() + 1);
        self.wait.set(WaitReason::Running);
    }

    /// Still blocked in the wait with sequence number `seq`.
    #[inline]
    pub(crate) fn is_blocked_in(&self, seq: u64) -> bool {
        self.seq.get() == seq && self.state.get() == State::Blocked
    }

    /// How its wait ended (set by the waker).
    #[inline]
    pub(crate) fn set_resume(&self, r: Resume) {
        self.resume.set(r);
    }

    /// How its wait ended, once.
    #[inline]
    pub(crate) fn take_resume(&self) -> Resume {
        self.resume.take()
    }

    /// Woken from a wait and not resumed yet: resume it with `i` instead (Shrapnel's
    /// `force`). False if it is not in that position (yielded, or already interrupted).
    pub(crate) fn revoke_wake(&self, i: Interrupted) -> bool {
        if self.wait.get() == WaitReason::Yield || self.resume.get() != Resume::Ok {
            return false;
        }
        self.resume.set(Resume::Revoked(i));
        true
    }

    /// Set when its scheduler unwinds it.
    #[inline]
    pub(crate) fn unwind_flag(&self) -> &hooks::UnwindFlag {
        &self.unwind
    }

    /// What its current wait is on (noted by a sync primitive before it blocks).
    #[inline]
    #[allow(dead_code)] // read and written only with feature `std`
    pub(crate) fn waits_on(&self) -> &hooks::WaitsOnPart {
        &self.waits_on
    }

    /// One I/O operation completed without blocking: true when it has used its allowance
    /// (its own, or `default`) and must yield.
    pub(crate) fn count_selfish_act(&self, default: u32) -> bool {
        let n = self.selfish.get() + 1;
        let max = match self.max_selfish.get() {
            0 => default,
            m => m,
        };
        if n >= max {
            self.selfish.set(0);
            true
        } else {
            self.selfish.set(n);
            false
        }
    }
}

/// Interruptions that wait for its next blocking call, and its `with_timeout` deadlines.
impl CoroInner {
    /// The interruption its next blocking call returns, taken.
    #[inline]
    pub(crate) fn take_pending(&self) -> Option<Interrupted> {
        self.pending.take()
    }

    /// Queue `i` for the next blocking call, after any already pending; an interruption
    /// already queued is not queued twice, and past [`MAX_PENDING`] only a shutdown or a
    /// timeout still queues (nothing that ends a wait is dropped).
    pub(crate) fn add_pending(&self, i: Interrupted) {
        if self.pending.get().is_none() {
            self.pending.set(Some(i));
            return;
        }
        if self.pending.get() == Some(i) {
            return;
        }
        let mut more = self.pending_more.borrow_mut();
        let vital = matches!(i, Interrupted::Shutdown | Interrupted::Timeout(_));
        if !more.contains(&i) && (more.len() < MAX_PENDING || vital) {
            more.push(i);
        }
    }

    /// The pending interruption was taken: the next one, if any, moves up.
    pub(crate) fn advance_pending(&self) {
        let mut more = self.pending_more.borrow_mut();
        if !more.is_empty() {
            self.pending.set(Some(more.remove(0)));
        }
    }

    /// A `with_timeout` call began.
    pub(crate) fn begin_timeout(&self, id: TimeoutId) {
        self.timeouts.borrow_mut().push((id, false));
    }

    /// A `with_timeout` call ended: its deadline, if still queued, no longer applies.
    /// Returns whether the deadline was delivered.
    pub(crate) fn end_timeout(&self, id: TimeoutId) -> bool {
        let t = Interrupted::Timeout(id);
        self.pending_more.borrow_mut().retain(|i| *i != t);
        if self.pending.get() == Some(t) {
            self.pending.set(None);
            self.advance_pending();
        }
        let mut list = self.timeouts.borrow_mut();
        // Usually the innermost, the last one.
        if list.last().is_some_and(|(t, _)| *t == id) {
            return list.pop().is_some_and(|(_, fired)| fired);
        }
        match list.iter().rposition(|(t, _)| *t == id) {
            Some(pos) => list.remove(pos).1,
            None => false,
        }
    }

    pub(crate) fn timeout_active(&self, id: TimeoutId) -> bool {
        self.timeouts.borrow().iter().any(|(t, _)| *t == id)
    }

    pub(crate) fn mark_timeout_fired(&self, id: TimeoutId) {
        if let Some(e) = self
            .timeouts
            .borrow_mut()
            .iter_mut()
            .find(|(t, _)| *t == id)
        {
            e.1 = true;
        }
    }

    /// A waiter for the wait it is blocked in now.
    pub(crate) fn current_waiter(self: &Rc<Self>) -> Waiter {
        Waiter::new(self.clone(), self.seq.get())
    }
}

/// Why `join` did not return the coroutine's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JoinError {
    /// The coroutine panicked; the message is the panic payload's text.
    Panicked {
        /// Its id.
        id: u64,
        /// Its name.
        name: String,
        /// The panic message.
        message: String,
    },
    /// It was interrupted or shut down before it started, or unwound when its scheduler
    /// was dropped, so it never produced a value.
    Cancelled {
        /// Its id.
        id: u64,
    },
    /// The *joining* coroutine was interrupted while waiting.
    Interrupted(Interrupted),
    /// A coroutine tried to join itself, which could never finish.
    SelfJoin {
        /// Its id.
        id: u64,
    },
    /// The value was already taken by an earlier `join`.
    AlreadyJoined {
        /// Its id.
        id: u64,
    },
    /// [`spawn`] or [`new`] could not create it (no stack could be had): it never ran.
    NotSpawned {
        /// The id it was given.
        id: u64,
        /// Why, naming the limit and the remedies.
        error: SpawnError,
    },
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panicked { id, name, message } => {
                write!(f, "coroutine #{id} '{name}' panicked: {message}")
            }
            JoinError::Cancelled { id } => {
                write!(f, "coroutine #{id} was cancelled before it produced a value")
            }
            JoinError::Interrupted(i) => write!(f, "join {i}"),
            JoinError::SelfJoin { id } => write!(
                f,
                "coroutine #{id} tried to join itself, which would wait forever; join it from another coroutine"
            ),
            JoinError::AlreadyJoined { id } => {
                write!(f, "coroutine #{id} was already joined; its value can be taken once")
            }
            JoinError::NotSpawned { id, error } => {
                write!(f, "coroutine #{id} was never created: {error}")
            }
        }
    }
}

impl core::error::Error for JoinError {}

/// Why a coroutine could not be created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpawnError {
    /// No stack could be had.
    Stack(StackError),
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::Stack(e) => write!(f, "cannot spawn coroutine: {e}"),
        }
    }
}

impl core::error::Error for SpawnError {}

/// `set_selfishness(0)` / `set_max_selfish_acts(0)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SelfishnessError;

impl fmt::Display for SelfishnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "selfishness must be at least 1 (the number of I/O operations that may complete \
             without blocking before the coroutine yields); the default is 4",
        )
    }
}

impl core::error::Error for SelfishnessError {}

/// `start` on a coroutine that already started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlreadyStarted {
    /// Its id.
    pub id: u64,
}

impl fmt::Display for AlreadyStarted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "coroutine #{} was already started", self.id)
    }
}

/// An untyped handle to a coroutine.
#[derive(Clone)]
pub struct CoroRef {
    pub(crate) inner: CoroRc,
}

/// A coroutine whose closure returns `T`.
pub struct Coro<T> {
    handle: CoroRef,
    taken: Cell<bool>,
    _result: PhantomData<T>,
}

impl<T> core::ops::Deref for Coro<T> {
    type Target = CoroRef;
    fn deref(&self) -> &CoroRef {
        &self.handle
    }
}

impl CoroRef {
    pub(crate) fn from_rc(inner: CoroRc) -> Self {
        CoroRef { inner }
    }

    /// The id: never reused; unique in the process in hosted builds (feature `std`), where
    /// every scheduler takes its ids from one counter.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The name (default `coro-{id}`).
    pub fn name(&self) -> String {
        self.inner.name_str()
    }

    /// Rename.
    pub fn set_name(&self, name: impl Into<Cow<'static, str>>) {
        self.inner.name.set(name.into());
    }

    /// Where it is in its life.
    pub fn state(&self) -> State {
        self.inner.state()
    }

    /// It has begun running (Shrapnel's `started`).
    pub fn started(&self) -> bool {
        self.inner.has_started()
    }

    /// It is in the run queue (Shrapnel's `scheduled`).
    pub fn scheduled(&self) -> bool {
        self.inner.state() == State::Ready
    }

    /// It has finished (Shrapnel's `dead`).
    pub fn dead(&self) -> bool {
        self.inner.is_dead()
    }

    /// What it is waiting for.
    pub fn wait_reason(&self) -> WaitReason {
        self.inner.wait_reason()
    }

    /// When its current wait began (scheduler time), and the source line that blocked.
    pub fn waiting_since(&self) -> (crate::clock::Instant, Option<&'static Location<'static>>) {
        let (since, at) = self.inner.waiting_since();
        (crate::clock::Instant(since), at)
    }

    /// Limit the I/O operations it may complete without blocking before yielding
    /// (overrides `set_selfishness` for this coroutine). Zero is refused.
    pub fn set_max_selfish_acts(&self, n: u32) -> Result<(), SelfishnessError> {
        if n == 0 {
            return Err(SelfishnessError);
        }
        self.inner.max_selfish.set(n);
        Ok(())
    }

    /// Start a coroutine made with `new`.
    pub fn start(&self) -> Result<(), AlreadyStarted> {
        if self.inner.state() != State::NotStarted {
            return Err(AlreadyStarted { id: self.inner.id });
        }
        sched().schedule(self.inner.clone());
        Ok(())
    }

    /// Make its current blocking call return `Err(Interrupted::Interrupt(code))`.
    ///
    /// - blocked: it resumes with the interruption;
    /// - woken but not yet resumed: it resumes with the interruption instead of the wake
    ///   (Shrapnel's `force`), and whatever the wake handed it (a lock, permits, a fifo
    ///   item, a condvar's value) passes on to the next waiter;
    /// - running (an interrupt of itself), or yielded: its next blocking call returns it;
    /// - not started: it is cancelled (`join` gives `JoinError::Cancelled`).
    ///
    /// Returns false if it is dead.
    ///
    /// ```
    /// # shrapnel_core::doc_scheduler!();
    /// # use shrapnel_core as shrapnel;
    /// use std::time::Duration;
    ///
    /// let sleeper = shrapnel::spawn(|| shrapnel::sleep(Duration::from_secs(3600)));
    /// let handle = sleeper.handle();
    /// shrapnel::spawn(move || {
    ///     shrapnel::yield_slice(); // the sleeper is asleep now
    ///     assert!(handle.interrupt(7));
    /// });
    /// shrapnel::event_loop(); // returns at once, not in an hour
    /// assert_eq!(sleeper.join().unwrap(), Err(shrapnel::Interrupted::Interrupt(7)));
    /// ```
    pub fn interrupt(&self, code: u64) -> bool {
        self.deliver(Interrupted::Interrupt(code))
    }

    /// Ask it to finish: its blocking call returns `Err(Interrupted::Shutdown)` (as for
    /// [`interrupt`](Self::interrupt)).
    pub fn shutdown(&self) -> bool {
        self.deliver(Interrupted::Shutdown)
    }

    /// Its blocking call returns `Err(Interrupted::WakeUp)` (as for
    /// [`interrupt`](Self::interrupt)).
    pub fn wake_up(&self) -> bool {
        self.deliver(Interrupted::WakeUp)
    }

    fn deliver(&self, i: Interrupted) -> bool {
        sched().deliver(&self.inner, i) != Delivery::Dead
    }

    /// Base and limit of its stack (0, 0 once dead).
    pub fn stack_range(&self) -> (usize, usize) {
        self.inner.stack_range()
    }

    /// Wait until it has ended (without taking a value).
    #[track_caller]
    pub fn wait_dead(&self) -> Result<(), JoinError> {
        let s = sched();
        if self.dead() {
            return Ok(());
        }
        if s.is_running(&self.inner) {
            return Err(JoinError::SelfJoin { id: self.id() });
        }
        let target = self.inner.clone();
        match s.block(WaitReason::Join(self.id()), |w| target.add_joiner(w)) {
            Resume::Ok => Ok(()),
            Resume::Interrupted(i) | Resume::Revoked(i) => Err(JoinError::Interrupted(i)),
            Resume::Closed => unreachable!("a join is never woken by a close"),
        }
    }
}

impl Drop for CoroRef {
    /// The last handle of a coroutine made with `new` and never started is gone: nobody can
    /// start it any more, so it is freed now (Shrapnel: never started = never existed) —
    /// its stack, its registry slot, and the closure with what it captured.
    fn drop(&mut self) {
        // Two strong references: the registry's and this handle's.
        if self.inner.state() == State::NotStarted && Rc::strong_count(&self.inner) == 2 {
            if let Some(s) = crate::sched::try_sched() {
                s.cancel_unstarted(&self.inner);
            }
        }
    }
}

impl fmt::Debug for CoroRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.describe(f)
    }
}

impl<T> Coro<T> {
    /// Wait for it to finish and take its value.
    ///
    /// ```
    /// # shrapnel_core::doc_scheduler!();
    /// # use shrapnel_core as shrapnel;
    /// use std::time::Duration;
    ///
    /// let slow = shrapnel::spawn(|| {
    ///     shrapnel::sleep(Duration::from_millis(5)).unwrap();
    ///     "slept"
    /// });
    /// let joiner = shrapnel::spawn(move || slow.join()); // blocks only this coroutine
    /// shrapnel::event_loop();
    /// assert_eq!(joiner.join().unwrap(), Ok("slept"));
    /// ```
    #[track_caller]
    pub fn join(&self) -> Result<T, JoinError>
    where
        T: 'static,
    {
        self.handle.wait_dead()?;
        if self.taken.replace(true) {
            return Err(JoinError::AlreadyJoined { id: self.id() });
        }
        let result = self.handle.inner.take_body().and_then(|mut body| {
            body.result()
                .downcast_mut::<Option<Result<T, JoinError>>>()
                .and_then(Option::take)
        });
        match result {
            Some(r) => r,
            None => Err(JoinError::Cancelled { id: self.id() }),
        }
    }

    /// The untyped handle.
    pub fn handle(&self) -> CoroRef {
        self.handle.clone()
    }
}

impl<T> Drop for Coro<T> {
    /// A result nobody can join any more is dropped now, not when the last [`CoroRef`]
    /// goes.
    fn drop(&mut self) {
        if self.dead() {
            drop(self.handle.inner.take_body());
        }
    }
}

impl<T> fmt::Debug for Coro<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.handle.fmt(f)
    }
}

/// Configures a coroutine before it is created.
///
/// ```
/// # shrapnel_core::doc_scheduler!();
/// # use shrapnel_core as shrapnel;
/// let named = shrapnel::Builder::new()
///     .name("resolver")
///     .stack_size(64 * 1024)
///     .spawn(|| shrapnel::current().unwrap().name())
///     .expect("a stack is available");
/// shrapnel::event_loop();
/// assert_eq!(named.join().unwrap(), "resolver");
/// ```
#[derive(Default)]
pub struct Builder {
    name: Option<Cow<'static, str>>,
    stack_size: Option<usize>,
    /// `None`: the scheduler's default (`sched::set_shared_stack_default`).
    shared: Option<bool>,
}

impl Builder {
    /// A builder with the defaults (name `coro-{id}`, the scheduler's default stack size).
    pub fn new() -> Self {
        Builder::default()
    }

    /// Name it.
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Ask for a stack of `bytes` (at least `stack::MIN_STACK_SIZE`). A size asked for
    /// means a stack of its own even when the scheduler's default is the shared stack;
    /// with `shared_stack(true)` it is not used (the run stack has the scheduler's default
    /// size).
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Run on the scheduler's shared run stack (`true`), keeping only a heap copy of the
    /// frames it uses while suspended, or on a stack of its own (`false`); unset, the
    /// scheduler's default ([`set_shared_stack_default`](crate::sched::set_shared_stack_default)).
    /// See [`shared_stack`](crate::shared_stack) for what the mode costs and forbids.
    pub fn shared_stack(mut self, on: bool) -> Self {
        self.shared = Some(on);
        self
    }

    /// Create it and schedule it.
    pub fn spawn<F, T>(self, f: F) -> Result<Coro<T>, SpawnError>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let co = self.build(f)?;
        sched().schedule(co.handle.inner.clone());
        Ok(co)
    }

    /// Create it without starting it (Shrapnel's `new`); call `start` later. Dropping every
    /// handle of it before it starts frees it.
    pub fn build<F, T>(self, f: F) -> Result<Coro<T>, SpawnError>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        // Only the boxing of the body is generic; the rest is compiled once (on Cortex-M
        // every spawn site would otherwise carry its own copy of `build_raw`).
        let inner = self.build_raw(Box::new(BodyState::NotRun(f)))?;
        Ok(Coro {
            handle: CoroRef { inner },
            taken: Cell::new(false),
            _result: PhantomData,
        })
    }

    fn build_raw(self, body: Box<dyn Body>) -> Result<CoroRc, SpawnError> {
        let s = sched();
        // A coroutine that asks for a stack size wants a stack of its own, whatever the
        // scheduler's default.
        let shared = self
            .shared
            .unwrap_or_else(|| self.stack_size.is_none() && s.shared_stack_default());
        let home = if shared {
            StackHome::Shared(s.run_stack_range().map_err(SpawnError::Stack)?)
        } else {
            StackHome::Own(
                s.allocate_stack(self.stack_size)
                    .map_err(SpawnError::Stack)?,
            )
        };
        let id = s.next_coro_id();
        // Written straight into the allocation, not built on the stack and copied (~300 B).
        let mut inner = Rc::<CoroInner>::new_uninit();
        Rc::get_mut(&mut inner)
            .expect("a fresh Rc is unique")
            .write(CoroInner::new(
                id,
                self.name,
                home,
                body,
                State::NotStarted,
                s.wait_clock(),
                None,
            ));
        // SAFETY: written just above.
        let inner = unsafe { inner.assume_init() };
        if !inner.is_shared() {
            // SAFETY: the stack is alive and exclusively this coroutine's, `stack_base` is
            // its 16-aligned top, and `data` points at the CoroInner the registry keeps alive
            // until the coroutine is reaped, which happens only after `coro_main` stopped
            // running. (A shared-stack coroutine lays out its first frame when it first
            // runs: `lay_out_first_frame`.)
            let sp = unsafe {
                Native::init(inner.stack_base(), coro_main, Rc::as_ptr(&inner) as *mut u8)
            };
            inner.sp.set(sp);
        }
        s.register(&inner);
        Ok(inner)
    }
}

/// The first frame of every coroutine, entered from the arch trampoline.
unsafe extern "C" fn coro_main(_arg: usize, data: *mut u8) -> ! {
    // SAFETY: `data` is the CoroInner pointer given to `init`; the registry holds a strong
    // reference until this coroutine is reaped, after its last switch below.
    let co = unsafe { &*(data as *const CoroInner) };
    if let Some(mut body) = co.take_body() {
        body.run();
        co.body.set(Some(body));
    }
    // Its locals drop while it is still the running coroutine, before joiners wake.
    co.locals().end();
    co.set_dead();
    let s = sched();
    s.finish(co);
    s.suspend_current(co);
    // A dead coroutine is never resumed.
    loop {
        core::hint::spin_loop();
    }
}

/// Create and schedule a coroutine running `f`.
///
/// Never panics and never aborts: if no stack can be had (a limit such as the kernel's
/// count of memory mappings), `f` is dropped without running, the failure is reported on
/// the debug sink (the first one, then a count at most every 10 s), and the handle returned
/// is of a coroutine that is already dead, whose `join` gives [`JoinError::NotSpawned`]
/// naming the limit and the remedies. The caller — an accept loop, say — keeps running.
/// [`Builder::spawn`] returns the error instead.
///
/// ```
/// # shrapnel_core::doc_scheduler!();
/// # use shrapnel_core as shrapnel;
/// let worker = shrapnel::spawn(|| 6 * 7);
/// shrapnel::event_loop();
/// assert_eq!(worker.join().unwrap(), 42);
/// ```
#[track_caller]
pub fn spawn<F, T>(f: F) -> Coro<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    match Builder::new().spawn(f) {
        Ok(c) => c,
        Err(e) => not_spawned(e, Location::caller()),
    }
}

/// Create a coroutine without starting it (Shrapnel's `new`); call `start()` to schedule.
/// Dropping every handle of it before it starts frees it (it never existed). If no stack
/// can be had, as [`spawn`]: the handle is of a dead coroutine whose `join` says why.
#[track_caller]
pub fn new<F, T>(f: F) -> Coro<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    match Builder::new().build(f) {
        Ok(c) => c,
        Err(e) => not_spawned(e, Location::caller()),
    }
}

/// The handle [`spawn`] and [`new`] return when the coroutine could not be created: dead
/// from the start, its result the error. Reported on the debug sink, rate-limited.
#[cold]
fn not_spawned<T: 'static>(error: SpawnError, at: &'static Location<'static>) -> Coro<T> {
    let s = sched();
    let id = s.next_coro_id();
    s.report_spawn_failure(&error, at);
    let result: Option<Result<T, JoinError>> = Some(Err(JoinError::NotSpawned { id, error }));
    let body: Box<dyn Body> = Box::new(BodyState::<fn() -> T, T>::Ran(result));
    let inner = Rc::new(CoroInner::new(
        id,
        None,
        StackHome::None,
        body,
        State::Dead,
        s.wait_clock(),
        Some(at),
    ));
    Coro {
        handle: CoroRef { inner },
        taken: Cell::new(false),
        _result: PhantomData,
    }
}
