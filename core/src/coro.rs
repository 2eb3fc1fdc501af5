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
use crate::interrupt::{Interrupted, TimeoutId};
use crate::sched::{sched, Delivery, Resume};
use crate::stack::{BoxedStack, StackError};
use crate::wait::{WaitQueue, WaitReason};

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
            *self = BodyState::Ran(Some(run_body(f)));
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

pub(crate) struct CoroInner {
    pub(crate) id: u64,
    pub(crate) slot: Cell<usize>,
    pub(crate) name: CoroName,
    pub(crate) state: Cell<State>,
    pub(crate) started: Cell<bool>,
    /// Saved context while suspended.
    pub(crate) sp: Cell<usize>,
    pub(crate) stack: Cell<Option<BoxedStack>>,
    pub(crate) stack_base: Cell<usize>,
    pub(crate) stack_limit: Cell<usize>,
    /// The stack's canary word (null if it has a guard page instead), checked per switch.
    pub(crate) canary: Cell<*const usize>,
    /// The closure, then its result; out of the cell while the closure runs.
    pub(crate) body: Cell<Option<Box<dyn Body>>>,
    /// How the current wait ended, set by whoever woke it.
    pub(crate) resume: Cell<Resume>,
    /// An interruption aimed at this coroutine while it was running (or yielded, or
    /// already resuming with another): its next blocking call returns it.
    pub(crate) pending: Cell<Option<Interrupted>>,
    /// Interruptions that arrived while `pending` was taken, oldest first, each once.
    pub(crate) pending_more: RefCell<Vec<Interrupted>>,
    /// Block sequence number: a waiter entry is live only while this matches.
    pub(crate) seq: Cell<u64>,
    pub(crate) wait: Cell<WaitReason>,
    pub(crate) wait_since: Cell<u64>,
    pub(crate) wait_at: Cell<Option<&'static Location<'static>>>,
    /// Active `with_timeout` ids, innermost last, with "deadline delivered" flags.
    pub(crate) timeouts: RefCell<Vec<(TimeoutId, bool)>>,
    /// Coroutines waiting for this one to end.
    pub(crate) joiners: RefCell<WaitQueue>,
    pub(crate) selfish: Cell<u32>,
    /// 0: use the scheduler's default.
    pub(crate) max_selfish: Cell<u32>,
    #[cfg(feature = "std")]
    pub(crate) force_unwind: Cell<bool>,
    #[cfg(feature = "latency")]
    pub(crate) slices: crate::latency::CoroSlices,
}

impl CoroInner {
    pub(crate) fn is_blocked_in(&self, seq: u64) -> bool {
        self.seq.get() == seq && self.state.get() == State::Blocked
    }

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

    pub(crate) fn name_str(&self) -> String {
        String::from(&*self.name.borrow())
    }

    pub(crate) fn timeout_active(&self, id: TimeoutId) -> bool {
        self.timeouts.borrow().iter().any(|(t, _)| *t == id)
    }

    #[cfg(not(feature = "latency"))]
    pub(crate) fn slice_stats(&self, _s: &crate::sched::SchedState) -> crate::debug::SliceStats {
        crate::debug::SliceStats::default()
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

    /// A `with_timeout` call ended: its deadline, if still queued, no longer applies.
    pub(crate) fn forget_pending_timeout(&self, id: TimeoutId) {
        let t = Interrupted::Timeout(id);
        self.pending_more.borrow_mut().retain(|i| *i != t);
        if self.pending.get() == Some(t) {
            self.pending.set(None);
            self.advance_pending();
        }
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

#[cfg(feature = "std")]
impl std::error::Error for JoinError {}

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

#[cfg(feature = "std")]
impl std::error::Error for SpawnError {}

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

#[cfg(feature = "std")]
impl std::error::Error for SelfishnessError {}

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

    /// The id: unique for the life of the thread, never reused.
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
        self.inner.state.get()
    }

    /// It has begun running (Shrapnel's `started`).
    pub fn started(&self) -> bool {
        self.inner.started.get()
    }

    /// It is in the run queue (Shrapnel's `scheduled`).
    pub fn scheduled(&self) -> bool {
        self.inner.state.get() == State::Ready
    }

    /// It has finished (Shrapnel's `dead`).
    pub fn dead(&self) -> bool {
        self.inner.state.get() == State::Dead
    }

    /// What it is waiting for.
    pub fn wait_reason(&self) -> WaitReason {
        self.inner.wait_reason()
    }

    /// When its current wait began (scheduler time), and the source line that blocked.
    pub fn waiting_since(&self) -> (crate::clock::Instant, Option<&'static Location<'static>>) {
        (
            crate::clock::Instant(self.inner.wait_since.get()),
            self.inner.wait_at.get(),
        )
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
        if self.inner.state.get() != State::NotStarted {
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
        (self.inner.stack_limit.get(), self.inner.stack_base.get())
    }

    /// Wait until it has ended (without taking a value).
    #[track_caller]
    pub fn wait_dead(&self) -> Result<(), JoinError> {
        let s = sched();
        if self.dead() {
            return Ok(());
        }
        if core::ptr::eq(s.current.get(), Rc::as_ptr(&self.inner)) {
            return Err(JoinError::SelfJoin { id: self.id() });
        }
        let target = self.inner.clone();
        match s.block(WaitReason::Join(self.id()), |w| {
            target.joiners.borrow_mut().push(w, ())
        }) {
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
        if self.inner.state.get() == State::NotStarted && Rc::strong_count(&self.inner) == 2 {
            if let Some(s) = crate::sched::try_sched() {
                s.cancel_unstarted(&self.inner);
            }
        }
    }
}

impl fmt::Debug for CoroRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.inner.state.get();
        write!(
            f,
            "<coro #{} name='{}' dead={} started={} scheduled={} at {:#x}>",
            self.id(),
            self.inner.name.borrow(),
            (st == State::Dead) as u8,
            self.inner.started.get() as u8,
            (st == State::Ready) as u8,
            Rc::as_ptr(&self.inner) as usize
        )
    }
}

impl<T> Coro<T> {
    /// Wait for it to finish and take its value.
    #[track_caller]
    pub fn join(&self) -> Result<T, JoinError>
    where
        T: 'static,
    {
        self.handle.wait_dead()?;
        if self.taken.replace(true) {
            return Err(JoinError::AlreadyJoined { id: self.id() });
        }
        let result = self.handle.inner.body.take().and_then(|mut body| {
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
            drop(self.handle.inner.body.take());
        }
    }
}

impl<T> fmt::Debug for Coro<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.handle.fmt(f)
    }
}

/// Configures a coroutine before it is created.
#[derive(Default)]
pub struct Builder {
    name: Option<Cow<'static, str>>,
    stack_size: Option<usize>,
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

    /// Ask for a stack of `bytes` (at least `stack::MIN_STACK_SIZE`).
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
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
        let size = self.stack_size.unwrap_or(s.default_stack_size);
        let stack = s.stacks.allocate(size).map_err(SpawnError::Stack)?;
        let id = s.next_id.get();
        s.next_id.set(id + 1);
        s.bump(|st| st.spawned += 1);
        let base = stack.base().as_ptr();
        let limit = stack.limit().as_ptr() as usize;
        let canary = stack
            .canary()
            .map_or(core::ptr::null(), |p| p.as_ptr() as *const usize);
        // Written straight into the allocation, not built on the stack and copied (~300 B).
        let mut inner = Rc::<CoroInner>::new_uninit();
        Rc::get_mut(&mut inner)
            .expect("a fresh Rc is unique")
            .write(CoroInner {
                id,
                slot: Cell::new(0),
                name: CoroName::new(id, self.name),
                state: Cell::new(State::NotStarted),
                started: Cell::new(false),
                sp: Cell::new(0),
                stack: Cell::new(Some(stack)),
                stack_base: Cell::new(base as usize),
                stack_limit: Cell::new(limit),
                canary: Cell::new(canary),
                body: Cell::new(Some(body)),
                resume: Cell::new(Resume::Ok),
                pending: Cell::new(None),
                pending_more: RefCell::new(Vec::new()),
                seq: Cell::new(0),
                wait: Cell::new(WaitReason::NotStarted),
                wait_since: Cell::new(s.wait_clock()),
                wait_at: Cell::new(None),
                timeouts: RefCell::new(Vec::new()),
                joiners: RefCell::new(WaitQueue::new()),
                selfish: Cell::new(0),
                max_selfish: Cell::new(0),
                #[cfg(feature = "std")]
                force_unwind: Cell::new(false),
                #[cfg(feature = "latency")]
                slices: Default::default(),
            });
        // SAFETY: written just above.
        let inner = unsafe { inner.assume_init() };
        // SAFETY: the stack is alive and exclusively this coroutine's, `base` is its
        // 16-aligned top, and `data` points at the CoroInner the registry keeps alive until
        // the coroutine is reaped, which happens only after `coro_main` stopped running.
        let sp = unsafe { Native::init(base, coro_main, Rc::as_ptr(&inner) as *mut u8) };
        inner.sp.set(sp);
        s.register(&inner);
        Ok(inner)
    }
}

#[cfg(feature = "std")]
fn run_body<F: FnOnce() -> T, T>(f: F) -> Result<T, JoinError> {
    std::panic::catch_unwind(core::panic::AssertUnwindSafe(f)).map_err(crate::panic::on_panic)
}

#[cfg(not(feature = "std"))]
fn run_body<F: FnOnce() -> T, T>(f: F) -> Result<T, JoinError> {
    Ok(f())
}

/// The first frame of every coroutine, entered from the arch trampoline.
unsafe extern "C" fn coro_main(_arg: usize, data: *mut u8) -> ! {
    // SAFETY: `data` is the CoroInner pointer given to `init`; the registry holds a strong
    // reference until this coroutine is reaped, after its last switch below.
    let co = unsafe { &*(data as *const CoroInner) };
    if let Some(mut body) = co.body.take() {
        body.run();
        co.body.set(Some(body));
    }
    co.state.set(State::Dead);
    co.wait.set(WaitReason::Dead);
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
    let id = s.next_id.get();
    s.next_id.set(id + 1);
    s.report_spawn_failure(&error, at);
    let result: Option<Result<T, JoinError>> = Some(Err(JoinError::NotSpawned { id, error }));
    let body: Box<dyn Body> = Box::new(BodyState::<fn() -> T, T>::Ran(result));
    let inner = Rc::new(CoroInner {
        id,
        slot: Cell::new(usize::MAX),
        name: CoroName::new(id, None),
        state: Cell::new(State::Dead),
        started: Cell::new(false),
        sp: Cell::new(0),
        stack: Cell::new(None),
        stack_base: Cell::new(0),
        stack_limit: Cell::new(0),
        canary: Cell::new(core::ptr::null()),
        body: Cell::new(Some(body)),
        resume: Cell::new(Resume::Ok),
        pending: Cell::new(None),
        pending_more: RefCell::new(Vec::new()),
        seq: Cell::new(0),
        wait: Cell::new(WaitReason::Dead),
        wait_since: Cell::new(s.wait_clock()),
        wait_at: Cell::new(Some(at)),
        timeouts: RefCell::new(Vec::new()),
        joiners: RefCell::new(WaitQueue::new()),
        selfish: Cell::new(0),
        max_selfish: Cell::new(0),
        #[cfg(feature = "std")]
        force_unwind: Cell::new(false),
        #[cfg(feature = "latency")]
        slices: Default::default(),
    });
    Coro {
        handle: CoroRef { inner },
        taken: Cell::new(false),
        _result: PhantomData,
    }
}
