//! Context switching: one file per instruction set, behind the [`ContextSwitch`] trait.
//!
//! A *context* is a single machine word: a frame pointer, as the ISA's frame-pointer
//! register would hold it, for a frame record (`[saved frame pointer, return address]`) at
//! the top of the callee-saved registers that `switch` pushed on the suspended stack. On
//! x86_64, aarch64 and Thumb that is the record's address; on RISC-V it is the address just
//! above the record ([`ContextSwitch::FP_ABOVE_RECORD`]). Because the saved context *is* a
//! frame pointer, a frame-pointer walk can start at any suspended context (that is how
//! `where_all` walks the stacks of suspended coroutines) and the root record of a coroutine
//! stack links into the stack of whoever resumed it.
//!
//! Protocol used by the scheduler:
//! - spawn: `sp = init(stack_base, entry, data)`;
//! - resume: `switch(root_slot(stack_base), sp, arg)`: saves the resumer's context in the
//!   coroutine's root slot, so unwinders and debuggers continue from the coroutine's
//!   outermost frame into the resumer's stack;
//! - suspend: `switch(&mut sp, *root_slot(stack_base), arg)`;
//! - the first resume calls `entry(arg, data)` on the new stack; `entry` never returns (it
//!   suspends one last time and is never resumed).
//!
//! Each ISA file opens with a drawing of its stack layout.

cfg_if::cfg_if! {
    if #[cfg(target_arch = "x86_64")] {
        mod x86_64;
        /// The context switch for this target.
        pub use self::x86_64::X86_64 as Native;
    } else if #[cfg(target_arch = "aarch64")] {
        mod aarch64;
        /// The context switch for this target.
        pub use self::aarch64::Aarch64 as Native;
    } else if #[cfg(all(target_arch = "arm", target_os = "none"))] {
        mod arm;
        /// The context switch for this target.
        pub use self::arm::ArmV7M as Native;
    } else if #[cfg(any(target_arch = "riscv64", target_arch = "riscv32"))] {
        mod riscv;
        /// The context switch for this target.
        pub use self::riscv::RiscV as Native;
    } else {
        compile_error!(
            "shrapnel-core has no context switch for this architecture yet; supported are \
             x86_64, aarch64, ARMv7-M (thumbv7m, thumbv7em) and RISC-V (riscv64, riscv32). \
             Implement shrapnel_core::arch::ContextSwitch for it in core/src/arch/."
        );
    }
}

#[doc(hidden)]
pub mod selftest;

/// The function a fresh context starts in: `arg` is the value passed to the first
/// `switch`, `data` the pointer given to `init`. It must never return.
pub type EntryFn = unsafe extern "C" fn(arg: usize, data: *mut u8) -> !;

/// A stackful context switch for one instruction set.
///
/// # Safety
///
/// An implementor guarantees that:
/// - `switch` saves every register the platform ABI calls callee-saved (integer, frame
///   pointer, and the callee-saved vector/float registers) on the current stack, stores the
///   context word in `*save`, restores the registers saved in `to`, and makes the `switch`
///   call that suspended `to` return `arg`. Floating-point *control* state (x86_64 MXCSR
///   and x87 control word, aarch64 FPCR) is thread-wide: Rust code cannot soundly change
///   it, so it is switched only with the core feature `fp-control` (x86_64);
/// - the stored context word is a frame pointer for a frame record `[frame pointer, return
///   address]` on the suspended stack: the record's address plus `FP_ABOVE_RECORD`;
/// - while a context is suspended, nothing below `context - SAVED_BELOW` on its stack is
///   live (no red zone is used across `switch`);
/// - `init` writes only inside `[base - INIT_SIZE, base)` and produces a context whose first
///   resumption calls `entry(arg, data)` with the stack pointer aligned as the ABI requires at
///   a call;
/// - `root_slot(base)` is a word inside that range which `init` set up as the root of the
///   frame-record chain, and the entry trampoline carries unwind information (CFI) that
///   describes the resumer's frame as its caller via that slot.
pub unsafe trait ContextSwitch {
    /// Bytes at the top of a stack that `init` uses (root record and initial frame).
    const INIT_SIZE: usize;

    /// Bytes of a suspended context below its context word (the callee-saved registers
    /// `switch` pushed under the frame record): a suspended stack's live contents are
    /// exactly `[context - SAVED_BELOW, base)`, which is what the shared-stack mode copies.
    const SAVED_BELOW: usize;

    /// How far above its frame record a frame pointer points, here and in every frame of
    /// the chain: 0 where the frame-pointer register holds the record's address (x86_64
    /// `rbp`, aarch64 `x29`, Thumb `r7`); two words on RISC-V, whose `s0` holds the frame's
    /// CFA with `[previous s0, ra]` just below it. A walker reads the record of a frame
    /// pointer `fp` at `fp - FP_ABOVE_RECORD`.
    const FP_ABOVE_RECORD: usize = 0;

    /// Prepare the stack whose highest address (exclusive, 16-aligned) is `base`.
    ///
    /// # Safety
    /// `[base - INIT_SIZE, base)` must be writable memory owned by the caller, and `base`
    /// must be 16-byte aligned.
    unsafe fn init(base: *mut u8, entry: EntryFn, data: *mut u8) -> usize;

    /// The word in which resuming into the stack at `base` saves the resumer's context.
    fn root_slot(base: *mut u8) -> *mut usize;

    /// Save the current context into `*save` and resume `to`, which receives `arg`.
    /// Returns the `arg` of the switch that later resumes this context.
    ///
    /// # Safety
    /// `save` must be valid for a write; `to` must be a context produced by `init` or stored
    /// by an earlier `switch` that has not been resumed since; the stack of `to` must still
    /// be alive.
    unsafe fn switch(save: *mut usize, to: usize, arg: usize) -> usize;

    /// True if [`prefetch`](Self::prefetch) does something on this ISA, so a caller can
    /// skip finding the context to prefetch where it does not.
    const PREFETCHES: bool = false;

    /// Ask the caches for the registers saved at `context` (a saved context: the next
    /// coroutine the scheduler will resume), so that the switch to it does not wait for
    /// them. With many coroutines each stack's top is cold by the time its turn comes.
    /// A hint: it never faults, whatever `context` is, and changes nothing a program can
    /// observe. Nothing by default (Cortex-M and RISC-V boards have small or no caches, and
    /// the bare-metal `.text` budget).
    #[inline(always)]
    fn prefetch(context: usize) {
        let _ = context;
    }
}
