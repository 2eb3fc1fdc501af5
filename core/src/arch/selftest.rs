//! The context-switch checks every ISA runs: written once here, generic over
//! [`ContextSwitch`], and run by the unit tests of `x86_64.rs`, `aarch64.rs` and `riscv.rs`
//! on their hosts (riscv64 under qemu-riscv64), by `examples/cortex-m/src/bin/switch.rs` on
//! ARMv7-M and by `examples/riscv/src/bin/switch.rs` on bare-metal RV32, both in QEMU.
//!
//! - [`ping_pong_passes_values_both_ways`]: [`ROUNDS`] round trips hand values both ways,
//!   `entry` gets `init`'s data pointer, every saved context is an aligned frame record on
//!   the coroutine's stack, and sp is aligned at calls on both sides after every switch;
//! - [`callee_saved_registers_survive_both_ways`]: every callee-saved register survives a
//!   switch in each direction, loaded and read back by the ISA's own [`PatternSwitch`] over
//!   its [`Registers`] layout;
//! - [`frame_pointer_chain_reaches_the_resumer`]: the frame records walked from inside a
//!   coroutine go through the root record into the resumer's context on its own stack;
//! - on hosts, `backtrace_continues_into_the_resumer`: the trampoline's CFI leads a DWARF
//!   unwinder into the resumer.
//!
//! What differs between ISAs beyond [`ContextSwitch`] (the alignment the ABI asks for at a
//! call, and two tiny assembly functions) comes in an [`Isa`]; the register layout and its
//! assembly stay in the ISA's file. A check that does not hold is returned as a [`Failure`],
//! so a target without a test harness can print it and set its exit status; for `#[test]`s,
//! [`assert_passes`] turns it into a panic and `context_switch_tests!` writes the tests that
//! need only an [`Isa`]. Nothing here needs `std`: stacks are [`HeapStack`]s and each
//! coroutine's shared state is one `Box`.

use super::{ContextSwitch, EntryFn};
use crate::stack::{HeapStack, Stack};
use alloc::boxed::Box;
use core::fmt;
use core::marker::PhantomData;
use core::ptr::{addr_of, addr_of_mut};
#[cfg(test)]
use std::backtrace::Backtrace;

/// Round trips in [`ping_pong_passes_values_both_ways`].
pub const ROUNDS: usize = 1000;

/// Each test coroutine's stack: at least the core's minimum with and without `std`, and
/// small enough for a microcontroller's heap (only one test coroutine is alive at a time).
const STACK_SIZE: usize = 16 * 1024;

/// How far below a local of the resuming function its saved context may lie: the resumer's
/// record is pushed by the `switch` call a frame or two further down the same stack.
const RESUMER_NEAR: usize = 4096;

/// What the checks need from an instruction set beyond [`ContextSwitch`].
pub struct Isa {
    /// The alignment of sp that the ABI requires at a call: 16 on x86_64 and aarch64, 8 for
    /// AAPCS.
    call_align: usize,
    /// Returns its caller's sp at the call instruction.
    sp_at_call: extern "C" fn() -> usize,
    /// An [`EntryFn`] that pushes a frame record the way a frame-pointer prologue does and
    /// calls [`frame_walk_body`]`(arg, data, record address)`: written in assembly, so the
    /// walk does not depend on whether rustc was asked for frame pointers.
    frame_record_entry: EntryFn,
}

impl Isa {
    /// The hooks of one instruction set.
    ///
    /// # Safety
    /// `sp_at_call` must only read sp, and `frame_record_entry` must be a valid [`EntryFn`]
    /// that, entered with its frame pointer register holding the trampoline's root record,
    /// pushes the frame record `[frame pointer, return address]` as a prologue would and
    /// calls [`frame_walk_body`] with `arg`, `data` and that record's address, keeping sp
    /// aligned as the ABI asks.
    pub const unsafe fn new(
        call_align: usize,
        sp_at_call: extern "C" fn() -> usize,
        frame_record_entry: EntryFn,
    ) -> Isa {
        Isa {
            call_align,
            sp_at_call,
            frame_record_entry,
        }
    }

    /// The caller's sp at a call, here.
    fn sp(&self) -> usize {
        (self.sp_at_call)()
    }
}

/// A check that did not hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    /// What should have held.
    pub check: &'static str,
    /// The value found: an address, a count or a register word.
    pub found: u64,
    /// The value expected, for checks of equality.
    pub expected: Option<u64>,
    /// Where in a series it failed: a round (`("round ", Some(17))`) or a register
    /// (`("r", Some(4))`, `("rbx", None)`).
    pub at: Option<(&'static str, Option<usize>)>,
}

impl Failure {
    /// The same failure, placed at item `n` of a series, named `label` followed by `n`.
    pub fn at(self, label: &'static str, n: usize) -> Failure {
        Failure {
            at: Some((label, Some(n))),
            ..self
        }
    }

    /// The same failure, placed at the item named `name`.
    pub fn at_name(self, name: &'static str) -> Failure {
        Failure {
            at: Some((name, None)),
            ..self
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: found {:#x}", self.check, self.found)?;
        if let Some(expected) = self.expected {
            write!(f, ", expected {expected:#x}")?;
        }
        match self.at {
            Some((label, Some(n))) => write!(f, ", at {label}{n}"),
            Some((name, None)) => write!(f, ", at {name}"),
            None => Ok(()),
        }
    }
}

/// Counts the checks that held, for a test's final report.
#[derive(Debug, Default)]
pub struct Checks {
    passed: u32,
}

impl Checks {
    /// No checks yet.
    pub const fn new() -> Checks {
        Checks { passed: 0 }
    }

    /// How many checks held.
    pub fn passed(&self) -> u32 {
        self.passed
    }

    /// Count `check` if it `holds`; otherwise fail it, naming the value `found`.
    pub fn that(&mut self, holds: bool, check: &'static str, found: u64) -> Result<(), Failure> {
        if !holds {
            return Err(Failure {
                check,
                found,
                expected: None,
                at: None,
            });
        }
        self.passed += 1;
        Ok(())
    }

    /// Count `check` if `found == expected`; otherwise fail it, naming both.
    pub fn equal(&mut self, check: &'static str, found: u64, expected: u64) -> Result<(), Failure> {
        self.that(found == expected, check, found)
            .map_err(|failure| Failure {
                expected: Some(expected),
                ..failure
            })
    }
}

/// Run checks for a `#[test]`: panics with the failure's message if one does not hold, and
/// otherwise returns what they returned.
pub fn assert_passes<T>(run: impl FnOnce(&mut Checks) -> Result<T, Failure>) -> T {
    match run(&mut Checks::new()) {
        Ok(value) => value,
        Err(failure) => panic!("{failure}"),
    }
}

/// What both sides of a test share: the coroutine's stack base, its saved context, and the
/// test's own state. The coroutine reaches it through the `data` pointer `init` was given.
struct Shared<T> {
    base: *mut u8,
    context: usize,
    state: T,
}

/// A test coroutine on a [`HeapStack`], switched with `X`.
///
/// Its entry never returns and only ever suspends, so whenever the test's side runs, the
/// coroutine is suspended: [`Coro::resume`] is always sound, and the state may be read
/// between resumes ([`Coro::state`] borrows `self`, which `resume` needs mutably).
struct Coro<X, T> {
    stack: HeapStack,
    shared: *mut Shared<T>,
    switch: PhantomData<X>,
}

impl<X: ContextSwitch, T> Coro<X, T> {
    /// A coroutine that will start in `entry` with `data` pointing to its [`Shared`] state.
    ///
    /// `entry` must never return and must suspend only through [`suspend`] (or a
    /// [`PatternSwitch`] to its root slot's context): every entry in this file, and the
    /// [`Isa`]'s, whose constructor is `unsafe` for that reason.
    fn new(size: usize, entry: EntryFn, state: T) -> Result<Self, Failure> {
        let stack = HeapStack::new(size).map_err(|_| Failure {
            check: "a test stack of this many bytes can be allocated",
            found: size as u64,
            expected: None,
            at: None,
        })?;
        let base = stack.base().as_ptr();
        let shared = Box::into_raw(Box::new(Shared {
            base,
            context: 0,
            state,
        }));
        // SAFETY: the stack is ours, its base 16-aligned, and it is far larger than
        // INIT_SIZE.
        let context = unsafe { X::init(base, entry, shared.cast()) };
        // SAFETY: `shared` is the allocation just made; the coroutine has not run yet.
        unsafe { (*shared).context = context };
        Ok(Coro {
            stack,
            shared,
            switch: PhantomData,
        })
    }

    /// Resume the coroutine with `arg`; returns what it suspends with.
    fn resume(&mut self, arg: usize) -> usize {
        // SAFETY: the coroutine is suspended (see the type's doc), its stack alive, and its
        // root slot is where a resume saves the resumer's context.
        unsafe { X::switch(self.root_slot(), (*self.shared).context, arg) }
    }

    /// The coroutine's saved context.
    fn context(&self) -> usize {
        // SAFETY: `shared` is alive while `self` is, and the coroutine is suspended.
        unsafe { (*self.shared).context }
    }

    /// The word in which a resume saves the resumer's context.
    fn root_slot(&self) -> *mut usize {
        X::root_slot(self.stack.base().as_ptr())
    }

    /// The test's state, as the coroutine left it when it suspended.
    fn state(&self) -> &T {
        // SAFETY: the coroutine is suspended and touches the state only while it runs,
        // which `&mut self` in `resume` rules out while this borrow lives.
        unsafe { &(*self.shared).state }
    }

    /// The `data` pointer the entry was given.
    fn data(&self) -> usize {
        self.shared as usize
    }

    /// Whether `addr` lies on the coroutine's stack.
    fn contains(&self, addr: usize) -> bool {
        (self.stack.limit().as_ptr() as usize..self.stack.base().as_ptr() as usize).contains(&addr)
    }
}

impl<X, T> Drop for Coro<X, T> {
    fn drop(&mut self) {
        // SAFETY: the coroutine is suspended for good; nothing refers to `shared` any more,
        // and it came from `Box::into_raw` in `new`.
        drop(unsafe { Box::from_raw(self.shared) });
    }
}

/// From inside the coroutine: suspend back to whoever resumed it, handing it `arg`.
///
/// # Safety
/// Runs on the stack of the coroutine whose `data` pointer is `shared`.
unsafe fn suspend<X: ContextSwitch, T>(shared: *mut Shared<T>, arg: usize) -> usize {
    // SAFETY: on the coroutine's stack its root slot holds the context of the resumer, which
    // is suspended in `resume`; `context` is a live word for ours.
    unsafe {
        X::switch(
            addr_of_mut!((*shared).context),
            *X::root_slot((*shared).base),
            arg,
        )
    }
}

// ---- ping-pong ---------------------------------------------------------------------------

/// What the ping-pong coroutine saw.
struct PingPong {
    sp_at_call: extern "C" fn() -> usize,
    /// The `data` pointer its entry received.
    data_seen: usize,
    /// How often it was resumed after the first time.
    resumes: usize,
    /// The lowest and highest sp at a call, at entry and after every resume.
    sp_low: usize,
    sp_high: usize,
    /// The low bits of every such sp, or-ed: zero if all were aligned.
    sp_bits: usize,
}

impl PingPong {
    fn saw_sp(&mut self, sp: usize) {
        self.sp_low = self.sp_low.min(sp);
        self.sp_high = self.sp_high.max(sp);
        self.sp_bits |= sp;
    }
}

unsafe extern "C" fn ping_pong_entry<X: ContextSwitch>(arg: usize, data: *mut u8) -> ! {
    let shared = data.cast::<Shared<PingPong>>();
    // SAFETY: `data` is the coroutine's shared state, which the test's side leaves alone
    // while the coroutine runs.
    let state = unsafe { &mut (*shared).state };
    state.data_seen = data as usize;
    state.saw_sp((state.sp_at_call)());
    let mut value = arg;
    loop {
        // SAFETY: we run on the coroutine's stack.
        value = unsafe { suspend::<X, _>(shared, value * 3 + 1) };
        // SAFETY: as above; `state` is not touched by the other side while we run.
        let state = unsafe { &mut (*shared).state };
        state.resumes += 1;
        state.saw_sp((state.sp_at_call)());
    }
}

/// [`ROUNDS`] round trips pass values both ways; the entry receives `init`'s data pointer;
/// each saved context is a frame record on the coroutine's stack, aligned as sp is at a call;
/// sp is aligned at calls on both sides, at entry and after every switch.
pub fn ping_pong_passes_values_both_ways<X: ContextSwitch>(
    isa: &Isa,
    checks: &mut Checks,
) -> Result<(), Failure> {
    let align = isa.call_align;
    let mut coro = Coro::<X, _>::new(
        STACK_SIZE,
        ping_pong_entry::<X>,
        PingPong {
            sp_at_call: isa.sp_at_call,
            data_seen: 0,
            resumes: 0,
            sp_low: usize::MAX,
            sp_high: 0,
            sp_bits: 0,
        },
    )?;
    for round in 0..ROUNDS {
        let at = |failure: Failure| failure.at("round ", round);
        let sent = round * 7 + 5;
        let got = coro.resume(sent);
        checks
            .equal(
                "the coroutine suspends with 3 * sent + 1",
                got as u64,
                (sent * 3 + 1) as u64,
            )
            .map_err(at)?;
        let context = coro.context();
        checks
            .that(
                coro.contains(context),
                "the saved context lies on the coroutine's stack",
                context as u64,
            )
            .map_err(at)?;
        checks
            .that(
                context.is_multiple_of(align),
                "the saved context is an aligned frame record",
                context as u64,
            )
            .map_err(at)?;
        let sp = isa.sp();
        checks
            .that(
                sp.is_multiple_of(align),
                "the resumer's sp is aligned at a call after the switch",
                sp as u64,
            )
            .map_err(at)?;
    }
    let seen = coro.state();
    checks.equal(
        "entry receives init's data pointer",
        seen.data_seen as u64,
        coro.data() as u64,
    )?;
    checks.equal(
        "the coroutine counted every resume",
        seen.resumes as u64,
        (ROUNDS - 1) as u64,
    )?;
    checks.that(
        seen.sp_bits.is_multiple_of(align),
        "the coroutine's sp is aligned at calls (the misaligned low bits)",
        (seen.sp_bits % align) as u64,
    )?;
    checks.that(
        coro.contains(seen.sp_low),
        "the coroutine's lowest sp lies on its stack",
        seen.sp_low as u64,
    )?;
    checks.that(
        coro.contains(seen.sp_high),
        "the coroutine's highest sp lies on its stack",
        seen.sp_high as u64,
    )
}

// ---- callee-saved registers --------------------------------------------------------------

/// `switch` wrapped by an ISA's assembly: load the patterns in `*regs` into every callee-saved
/// register, switch, store what those registers hold when this side is resumed into `*regs`,
/// then restore the caller's registers.
pub type PatternSwitch<R> =
    unsafe extern "C" fn(save: *mut usize, to: usize, arg: usize, regs: *mut R) -> usize;

/// An ISA's callee-saved registers as its [`PatternSwitch`] loads and records them.
pub trait Registers {
    /// Pattern set `n` (0, 1, 2: one for each [`Patterns`] field), with nothing found yet.
    /// Build the words with [`pattern_word`].
    fn pattern(n: usize) -> Self;

    /// Every callee-saved register was found as it was loaded; `check` names the side.
    fn survived(&self, check: &'static str, checks: &mut Checks) -> Result<(), Failure>;
}

/// Word `i` of register pattern set `n`: distinct for every set and register, and unlike
/// anything a register holds by chance.
pub fn pattern_word(n: usize, i: usize) -> u64 {
    (n as u64 + 0xc0de)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .rotate_left(i as u32 * 9)
        ^ i as u64
}

/// The register patterns of the three pattern switches, each with what its side found.
pub struct Patterns<R> {
    /// Loaded by the test's side before it resumes the coroutine; found again when the
    /// coroutine suspends back.
    pub main: R,
    /// Loaded by the coroutine before it suspends; found again when it is resumed.
    pub coro_kept: R,
    /// Loaded by the coroutine to clobber the test side's registers on the way back.
    pub coro_clobber: R,
}

/// The coroutine's part: the pattern switch and where its two patterns are.
struct Clobber<R> {
    switch: PatternSwitch<R>,
    kept: *mut R,
    clobber: *mut R,
}

unsafe extern "C" fn clobber_entry<X: ContextSwitch, R>(_arg: usize, data: *mut u8) -> ! {
    let shared = data.cast::<Shared<Clobber<R>>>();
    // SAFETY: on the coroutine's stack, whose root slot holds the resumer's context; the
    // patterns live in `callee_saved_registers_survive_both_ways`, which outlives the
    // coroutine's runs and does not touch them while it runs.
    unsafe {
        let Clobber {
            switch,
            kept,
            clobber,
        } = (*shared).state;
        switch(
            addr_of_mut!((*shared).context),
            *X::root_slot((*shared).base),
            1,
            kept,
        );
        switch(
            addr_of_mut!((*shared).context),
            *X::root_slot((*shared).base),
            2,
            clobber,
        );
    }
    loop {
        // SAFETY: as above.
        unsafe { suspend::<X, _>(shared, 3) };
    }
}

/// Callee-saved registers survive a switch both ways: the coroutine suspends from a pattern
/// switch loaded with `coro_kept`; the test's side resumes it from one loaded with `main`;
/// the coroutine, back in its pattern switch (which records what it found in `coro_kept`),
/// suspends again from one loaded with `coro_clobber`, and the test's side records what it
/// found in `main`. Both findings must equal their loads. Returns the patterns for the ISA's
/// own checks (which control words crossed over, say).
///
/// # Safety
/// `switch` must behave as [`PatternSwitch`] says, around `X`'s `switch`.
pub unsafe fn callee_saved_registers_survive_both_ways<X: ContextSwitch, R: Registers>(
    switch: PatternSwitch<R>,
    checks: &mut Checks,
) -> Result<Patterns<R>, Failure> {
    let mut patterns = Patterns {
        main: R::pattern(0),
        coro_kept: R::pattern(1),
        coro_clobber: R::pattern(2),
    };
    let mut coro = Coro::<X, _>::new(
        STACK_SIZE,
        clobber_entry::<X, R>,
        Clobber {
            switch,
            kept: addr_of_mut!(patterns.coro_kept),
            clobber: addr_of_mut!(patterns.coro_clobber),
        },
    )?;
    let first = coro.resume(0);
    checks.equal(
        "the coroutine suspends from its first pattern switch with 1",
        first as u64,
        1,
    )?;
    // SAFETY: the coroutine is suspended, so its context may be resumed and its root slot
    // saves ours; `switch` upholds the switch contract (the caller's promise); `main` is a
    // local that outlives the call.
    let back = unsafe { switch(coro.root_slot(), coro.context(), 0, &mut patterns.main) };
    // The coroutine's pointers into `patterns` die with it, before `patterns` moves.
    drop(coro);
    checks.equal(
        "the coroutine suspends from its second pattern switch with 2",
        back as u64,
        2,
    )?;
    patterns.main.survived(
        "main side: callee-saved registers survive the switch",
        checks,
    )?;
    patterns.coro_kept.survived(
        "coroutine side: callee-saved registers survive the switch",
        checks,
    )?;
    Ok(patterns)
}

// ---- frame-pointer walk ------------------------------------------------------------------

/// The first three frame records walked from inside a coroutine, and their return-address
/// words: the entry's record, the root record, the resumer's context.
#[derive(Clone, Copy, Debug)]
pub struct FrameChain {
    /// The records' addresses.
    pub records: [usize; 3],
    /// Their return-address words.
    pub returns: [usize; 3],
}

/// The frame walk's shared state: the chain found, and the way back to the resumer.
struct FrameWalk {
    chain: FrameChain,
    /// The ISA's [`ContextSwitch::FP_ABOVE_RECORD`]: a record's first word, a frame
    /// pointer, names the next record this far above it.
    fp_above_record: usize,
    suspend: unsafe fn(*mut Shared<FrameWalk>, usize) -> usize,
}

/// Where an [`Isa`]'s frame-record entry goes on: walks three frame records from `record`,
/// then suspends for good.
///
/// # Safety
/// Only for the entry given to [`Isa::new`]: `data` is the pointer that entry received, and
/// `record` the frame record it pushed.
pub unsafe extern "C" fn frame_walk_body(_arg: usize, data: *mut u8, record: usize) -> ! {
    let shared = data.cast::<Shared<FrameWalk>>();
    // SAFETY: `data` is the shared state of a frame walk (the caller's promise), which the
    // test's side leaves alone while the coroutine runs.
    let walk = unsafe { &mut (*shared).state };
    let mut record = record;
    for i in 0..3 {
        walk.chain.records[i] = record;
        // SAFETY: each record is two readable words: the entry's on the coroutine stack,
        // then the root record, then the resumer's context on its suspended stack.
        unsafe {
            walk.chain.returns[i] = *(record as *const usize).add(1);
            record = (*(record as *const usize)).wrapping_sub(walk.fp_above_record);
        }
    }
    let suspend = walk.suspend;
    loop {
        // SAFETY: on the coroutine's stack; `suspend` is `suspend::<X, _>` for its switch.
        unsafe { suspend(shared, 0) };
    }
}

/// Walked from inside a coroutine, the frame records go from the entry's record on the
/// coroutine's stack to the root record (which names the same return site, the
/// trampoline's) and from there to the resumer's context, a little below the resumer's
/// locals on its own stack. Returns the chain for the ISA's own checks.
pub fn frame_pointer_chain_reaches_the_resumer<X: ContextSwitch>(
    isa: &Isa,
    checks: &mut Checks,
) -> Result<FrameChain, Failure> {
    let mut coro = Coro::<X, _>::new(
        STACK_SIZE,
        isa.frame_record_entry,
        FrameWalk {
            chain: FrameChain {
                records: [0; 3],
                returns: [0; 3],
            },
            fp_above_record: X::FP_ABOVE_RECORD,
            suspend: suspend::<X, FrameWalk>,
        },
    )?;
    let marker = 0u8;
    coro.resume(0);
    let here = addr_of!(marker) as usize;
    let root = coro.root_slot();
    // SAFETY: the root slot is a word of the coroutine's live stack.
    let resumer = unsafe { *root };
    let chain = coro.state().chain;
    let [entry, caller, next] = chain.records;
    checks.that(
        coro.contains(entry),
        "the entry's record lies on the coroutine's stack",
        entry as u64,
    )?;
    checks.equal(
        "the entry's caller record is the root record",
        caller as u64,
        root as u64,
    )?;
    checks.equal(
        "the root record names the trampoline's return site, as the entry's record does",
        chain.returns[1] as u64,
        chain.returns[0] as u64,
    )?;
    checks.equal(
        "the root record links to the resumer's context",
        next as u64,
        resumer.wrapping_sub(X::FP_ABOVE_RECORD) as u64,
    )?;
    checks.that(
        !coro.contains(resumer),
        "the resumer's context lies off the coroutine's stack",
        resumer as u64,
    )?;
    checks.that(
        here.wrapping_sub(resumer) < RESUMER_NEAR,
        "the resumer's context lies just below the resumer's locals (distance)",
        here.wrapping_sub(resumer) as u64,
    )?;
    Ok(chain)
}

// ---- backtrace through the trampoline (hosts with std) -----------------------------------

#[cfg(test)]
unsafe extern "C" fn backtrace_entry<X: ContextSwitch>(_arg: usize, data: *mut u8) -> ! {
    let shared = data.cast::<Shared<Option<Backtrace>>>();
    let trace = Backtrace::force_capture();
    // SAFETY: the test's side leaves the shared state alone while the coroutine runs.
    unsafe { (*shared).state = Some(trace) };
    loop {
        // SAFETY: on the coroutine's stack.
        unsafe { suspend::<X, _>(shared, 0) };
    }
}

/// A backtrace captured inside a coroutine continues through the trampoline's CFI into the
/// resumer: this function. Panics with the backtrace if not.
#[cfg(test)]
#[inline(never)]
pub fn backtrace_continues_into_the_resumer<X: ContextSwitch>() {
    use std::string::{String, ToString};
    // Capturing and symbolising a backtrace takes more stack than the other checks.
    let mut coro = assert_passes(|_| {
        Coro::<X, Option<Backtrace>>::new(256 * 1024, backtrace_entry::<X>, None)
    });
    coro.resume(0);
    let text = coro
        .state()
        .as_ref()
        .map_or_else(String::new, ToString::to_string);
    assert!(
        text.contains("backtrace_entry"),
        "captured inside the coroutine:\n{text}"
    );
    assert!(
        text.contains("backtrace_continues_into_the_resumer"),
        "the unwinder did not cross the trampoline into the resumer:\n{text}"
    );
}

/// One `#[test]` per check that needs nothing but an [`Isa`], for the `mod tests` of an ISA
/// file: `ping_pong_passes_values_both_ways`, `frame_pointer_chain_reaches_the_resumer` and
/// `backtrace_continues_into_the_resumer`. `$switch` is the ISA's [`ContextSwitch`], `$isa`
/// its [`Isa`].
#[cfg(test)]
macro_rules! context_switch_tests {
    ($switch:ty, $isa:expr) => {
        #[test]
        fn ping_pong_passes_values_both_ways() {
            $crate::arch::selftest::assert_passes(|checks| {
                $crate::arch::selftest::ping_pong_passes_values_both_ways::<$switch>(&$isa, checks)
            });
        }

        #[test]
        fn frame_pointer_chain_reaches_the_resumer() {
            $crate::arch::selftest::assert_passes(|checks| {
                $crate::arch::selftest::frame_pointer_chain_reaches_the_resumer::<$switch>(
                    &$isa, checks,
                )
            });
        }

        #[test]
        fn backtrace_continues_into_the_resumer() {
            $crate::arch::selftest::backtrace_continues_into_the_resumer::<$switch>();
        }
    };
}
#[cfg(test)]
pub(crate) use context_switch_tests;
