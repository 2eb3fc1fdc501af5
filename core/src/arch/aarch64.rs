//! The context switch for aarch64 with the AAPCS64 procedure-call standard (Linux, the BSDs,
//! macOS).
//!
//! # What is saved
//!
//! AAPCS64 makes `x19`–`x28`, the frame pointer `x29`, the link register `x30` (as the return
//! address) and the low 64 bits of `v8`–`v15` (`d8`–`d15`) callee-saved; everything else may
//! be clobbered by a call, so `switch`, being an ordinary `extern "C"` call for the compiler,
//! saves exactly those.
//!
//! FPCR and FPSR are not switched: the floating-point control state belongs to the thread,
//! not to a coroutine. Rust code cannot soundly change it (LLVM compiles every function
//! assuming the default environment), so only C or assembly code changes the rounding mode,
//! and then the change is seen by every coroutine of the thread until that code restores it,
//! as it would be by every function called on a plain thread. The x86_64 switch makes the
//! same choice for MXCSR and the x87 control word, and saves them only with the core feature
//! `fp-control`; on aarch64 that feature changes nothing.
//!
//! # A suspended context
//!
//! `switch` stores the pair `[x29, x30]` at the top of a 160-byte area it reserves: that pair is
//! a frame record `[frame pointer, return address]`, and its address *is* the saved context.
//! The other callee-saved registers sit below it at fixed offsets:
//!
//! ```text
//!  higher addresses
//!            |  caller of switch ...     |
//!            +---------------------------+
//!            |  x30 (return address)     |  ctx + 8
//!   ctx ---> |  x29                      |  ctx        frame record [x29, x30]
//!            |  x20                      |  ctx - 8
//!            |  x19                      |  ctx - 16
//!            |  x22          | x21       |  ctx - 24, ctx - 32
//!            |  x24          | x23       |  ctx - 40, ctx - 48
//!            |  x26          | x25       |  ctx - 56, ctx - 64
//!            |  x28          | x27       |  ctx - 72, ctx - 80
//!            |  d9           | d8        |  ctx - 88, ctx - 96
//!            |  d11          | d10       |  ctx - 104, ctx - 112
//!            |  d13          | d12       |  ctx - 120, ctx - 128
//!            |  d15          | d14       |  ctx - 136, ctx - 144
//!            +---------------------------+  sp while suspended = ctx - K, K = 144
//!  lower addresses
//! ```
//!
//! `ctx` is 16-byte aligned because sp always is on aarch64.
//!
//! # The switch
//!
//! `switch(save, to, arg)` reserves the area, stores the record and the registers above,
//! stores `sp + K` (the record's address) in `*save`, sets `sp = to - K`, reloads the
//! registers and the record, releases the area and branches to the reloaded x30 with `arg` in
//! x0, so the `switch` call that suspended `to` returns `arg`. 27 instructions, one branch.
//!
//! It ends in `br x30`, not `ret`: `ret` is predicted from the return-address stack, whose top
//! entry is *this* side's `bl switch`, so every switch would mispredict; `br` goes through the
//! indirect-branch predictor, which learns the alternation. The cost of that choice is
//! branch-target identification (BTI, Armv8.5): on BTI-guarded pages a `br` must land on a
//! `bti` landing pad, and return sites are not landing pads (`ret` is exempt). The kernel
//! guards a binary's pages only when every object in it is marked BTI-compatible, which stable
//! Rust does not do and this file does not claim; a build that enables BTI must end `switch`
//! in `ret x30` instead.
//!
//! # A fresh stack
//!
//! `init` builds, at the top of the stack, a root record and an initial context whose
//! "return address" is the entry trampoline:
//!
//! ```text
//!   base --> +---------------------------+  16-byte aligned, exclusive
//!            |  trampoline return site   |  base - 8    written by the trampoline's first run
//!   root --> |  resumer's context        |  base - 16   root_slot(base): written by each resume
//!            |  x30 = trampoline entry   |  base - 24   \ initial context: a frame record
//!   ctx ---> |  x29 = base - 16 (= root) |  base - 32   / whose x29 is the root record
//!            |  x20 = data               |
//!            |  x19 = entry              |
//!            |  x21-x28, d8-d15 = 0      |
//!            +---------------------------+  base - 176, INIT_SIZE = 176
//! ```
//!
//! The first `switch` into `ctx` loads `x29 = root`, `x30 = trampoline` and branches there
//! with `sp = root`, 16-byte aligned. The trampoline stores its own return site in the root
//! record's return-address word and calls `entry(arg, data)` with `blr`. `entry` must not
//! return; if it does, the trampoline executes `brk`.
//!
//! # How debuggers and unwinders cross into the resumer
//!
//! Inside the coroutine, x29 of the trampoline's frame is the root record, and every resume
//! writes the resumer's context, a frame record on the resumer's stack, into the root slot.
//! So a frame-pointer walk goes `entry's record -> root record -> resumer's record -> ...`.
//! For DWARF unwinders (gdb, the `backtrace` crate, the Rust panic runtime) the trampoline's
//! CFI says the same thing: CFA = `*x29 + 16` (a `DW_CFA_def_cfa_expression`), x30 at CFA - 8,
//! x29 at CFA - 16, and x19–x28, d8–d15 at the offsets of the layout above. Panics never
//! unwind through the trampoline (the scheduler catches them in `entry`), but backtraces walk
//! through it into the resumer's stack.

use super::{ContextSwitch, EntryFn};
use core::arch::naked_asm;

/// The aarch64 AAPCS64 context switch.
pub struct Aarch64;

/// Bytes below a context's frame record that hold the other callee-saved registers.
const BELOW_RECORD: usize = 144;

// SAFETY: `switch` saves x19-x30 and d8-d15 and stores the address of the frame record it
// wrote; `init` writes only [base - INIT_SIZE, base), puts the root record at
// `root_slot(base)`, and its trampoline calls `entry` with sp 16-byte aligned and carries CFI
// that finds the resumer through the root slot (see the module doc).
unsafe impl ContextSwitch for Aarch64 {
    /// The root record (16 bytes), the initial frame record (16) and the registers below it
    /// (144).
    const INIT_SIZE: usize = 176;

    const SAVED_BELOW: usize = BELOW_RECORD;

    #[inline]
    unsafe fn init(base: *mut u8, entry: EntryFn, data: *mut u8) -> usize {
        debug_assert_eq!(base as usize % 16, 0, "stack base must be 16-byte aligned");
        let top = base as usize;
        let root = top - 16;
        let ctx = top - 32;
        let mut words = [0usize; 22];
        // d8-d15 (words 0..8) and x21-x28 (words 8..16) start at zero.
        words[16] = entry as *const () as usize; // x19
        words[17] = data as usize; // x20
        words[18] = root; // x29: the trampoline's frame is the root record
        words[19] = trampoline as *const () as usize; // x30: where the first switch branches
        words[20] = 0; // root slot: no resumer yet
        words[21] = 0; // root return address: set by the trampoline's first run
        let start = (ctx - BELOW_RECORD) as *mut [usize; 22];
        // SAFETY: `start` is base - 176, 16-byte aligned, and the caller guarantees that
        // [base - INIT_SIZE, base) is writable memory it owns.
        unsafe { start.write(words) };
        ctx
    }

    #[inline]
    fn root_slot(base: *mut u8) -> *mut usize {
        base.wrapping_sub(16).cast()
    }

    #[inline(always)]
    unsafe fn switch(save: *mut usize, to: usize, arg: usize) -> usize {
        // SAFETY: the caller upholds the trait's contract for `save` and `to`.
        unsafe { switch(save, to, arg) }
    }
}

/// Save the current context in `*save`, resume `to`, and hand it `arg`.
// SAFETY: a naked function is sound when its assembly follows the ABI its signature claims:
// it preserves every callee-saved register of the caller (they are reloaded when this context
// is resumed), returns `arg` in x0, and leaves sp as the call found it (the resumed side
// releases the area it reserved when it suspended).
#[unsafe(naked)]
unsafe extern "C" fn switch(save: *mut usize, to: usize, arg: usize) -> usize {
    naked_asm!(
        ".cfi_startproc",
        "sub sp, sp, #160",
        ".cfi_def_cfa_offset 160",
        // The frame record [x29, x30], then the other callee-saved registers below it.
        "stp x29, x30, [sp, #144]",
        ".cfi_offset 29, -16",
        ".cfi_offset 30, -8",
        "stp x19, x20, [sp, #128]",
        ".cfi_offset 19, -32",
        ".cfi_offset 20, -24",
        "stp x21, x22, [sp, #112]",
        ".cfi_offset 21, -48",
        ".cfi_offset 22, -40",
        "stp x23, x24, [sp, #96]",
        ".cfi_offset 23, -64",
        ".cfi_offset 24, -56",
        "stp x25, x26, [sp, #80]",
        ".cfi_offset 25, -80",
        ".cfi_offset 26, -72",
        "stp x27, x28, [sp, #64]",
        ".cfi_offset 27, -96",
        ".cfi_offset 28, -88",
        "stp d8, d9, [sp, #48]",
        ".cfi_offset 72, -112",
        ".cfi_offset 73, -104",
        "stp d10, d11, [sp, #32]",
        ".cfi_offset 74, -128",
        ".cfi_offset 75, -120",
        "stp d12, d13, [sp, #16]",
        ".cfi_offset 76, -144",
        ".cfi_offset 77, -136",
        "stp d14, d15, [sp]",
        ".cfi_offset 78, -160",
        ".cfi_offset 79, -152",
        // The context word is the record's address.
        "add x3, sp, #144",
        "str x3, [x0]",
        // Resume `to`: the layout is the same, so the CFI above now describes its frame.
        "sub sp, x1, #144",
        "ldp d14, d15, [sp]",
        "ldp d12, d13, [sp, #16]",
        "ldp d10, d11, [sp, #32]",
        "ldp d8, d9, [sp, #48]",
        "ldp x27, x28, [sp, #64]",
        "ldp x25, x26, [sp, #80]",
        "ldp x23, x24, [sp, #96]",
        "ldp x21, x22, [sp, #112]",
        "ldp x19, x20, [sp, #128]",
        "ldp x29, x30, [sp, #144]",
        "add sp, sp, #160",
        ".cfi_def_cfa_offset 0",
        ".cfi_restore 19",
        ".cfi_restore 20",
        ".cfi_restore 21",
        ".cfi_restore 22",
        ".cfi_restore 23",
        ".cfi_restore 24",
        ".cfi_restore 25",
        ".cfi_restore 26",
        ".cfi_restore 27",
        ".cfi_restore 28",
        ".cfi_restore 29",
        ".cfi_restore 30",
        ".cfi_restore 72",
        ".cfi_restore 73",
        ".cfi_restore 74",
        ".cfi_restore 75",
        ".cfi_restore 76",
        ".cfi_restore 77",
        ".cfi_restore 78",
        ".cfi_restore 79",
        "mov x0, x2",
        // Branch, not ret (see the module doc).
        "br x30",
        ".cfi_endproc",
    )
}

/// Where a fresh context starts: calls `entry(arg, data)` on the new stack.
///
/// On arrival (from `switch`): sp = x29 = the root record, x0 = arg, x19 = entry, x20 = data.
// SAFETY: only `switch` ever branches here, into a frame laid out by `init`; the function is
// never called through its Rust signature. It never returns: if `entry` does, brk traps.
#[unsafe(naked)]
unsafe extern "C" fn trampoline() {
    naked_asm!(
        ".cfi_startproc",
        // The caller is whoever resumed us: its context (a frame record) is in the root slot,
        // which x29 points at. CFA = *x29 + 16:
        // DW_CFA_def_cfa_expression, 5 bytes: DW_OP_breg29 0, DW_OP_deref,
        // DW_OP_plus_uconst 16.
        ".cfi_escape 0x0f, 0x05, 0x8d, 0x00, 0x06, 0x23, 0x10",
        // x29 and x30 form the record; the others sit below it, as `switch` left them.
        ".cfi_offset 30, -8",
        ".cfi_offset 29, -16",
        ".cfi_offset 19, -32",
        ".cfi_offset 20, -24",
        ".cfi_offset 21, -48",
        ".cfi_offset 22, -40",
        ".cfi_offset 23, -64",
        ".cfi_offset 24, -56",
        ".cfi_offset 25, -80",
        ".cfi_offset 26, -72",
        ".cfi_offset 27, -96",
        ".cfi_offset 28, -88",
        ".cfi_offset 72, -112",
        ".cfi_offset 73, -104",
        ".cfi_offset 74, -128",
        ".cfi_offset 75, -120",
        ".cfi_offset 76, -144",
        ".cfi_offset 77, -136",
        ".cfi_offset 78, -160",
        ".cfi_offset 79, -152",
        // The root record's return-address word names this frame for frame-pointer walkers.
        "adr x9, 2f",
        "str x9, [x29, #8]",
        "mov x1, x20",
        "blr x19",
        "2:",
        "brk #0x1",
        ".cfi_endproc",
    )
}

#[cfg(test)]
mod tests {
    //! The checks of `arch::selftest` with aarch64's hooks, and the register patterns,
    //! whose assembly is aarch64's own.
    use super::{switch, Aarch64};
    use crate::arch::selftest::{self, assert_passes, Checks, Failure, Isa, Registers};
    use core::arch::naked_asm;

    // SAFETY: `sp_at_call` only reads sp; `frame_record_entry` is the prologue `Isa::new`
    // asks for, with sp 16-aligned at its call.
    const ISA: Isa = unsafe { Isa::new(16, sp_at_call, frame_record_entry) };

    // ping_pong_passes_values_both_ways, frame_pointer_chain_reaches_the_resumer,
    // backtrace_continues_into_the_resumer:
    selftest::context_switch_tests!(Aarch64, ISA);

    /// sp at the caller's `bl`, which does not move it.
    // SAFETY: reads sp into x0 and returns; touches nothing else.
    #[unsafe(naked)]
    extern "C" fn sp_at_call() -> usize {
        naked_asm!("mov x0, sp", "ret")
    }

    /// `stp x29, x30, [sp, #-16]!; mov x29, sp`, then `frame_walk_body(arg, data, x29)`.
    // SAFETY: entered from the trampoline with sp 16-aligned; the 16-byte record keeps it
    // aligned at our call; never returns.
    #[unsafe(naked)]
    unsafe extern "C" fn frame_record_entry(arg: usize, data: *mut u8) -> ! {
        naked_asm!(
            "stp x29, x30, [sp, #-16]!",
            "mov x29, sp",
            "mov x2, x29",
            "bl {body}",
            "brk #0x1",
            body = sym selftest::frame_walk_body,
        )
    }

    // ---- callee-saved registers survive ------------------------------------------------

    /// Patterns to load into the callee-saved registers and what was found in them after the
    /// switch came back. Order: x19-x29, then d8-d15.
    #[repr(C)]
    struct Regs {
        load: [u64; 19],
        seen: [u64; 19],
    }

    impl Registers for Regs {
        fn pattern(n: usize) -> Self {
            Regs {
                load: core::array::from_fn(|i| selftest::pattern_word(n, i)),
                seen: [0; 19],
            }
        }

        fn survived(&self, check: &'static str, checks: &mut Checks) -> Result<(), Failure> {
            for (i, (seen, load)) in self.seen.into_iter().zip(self.load).enumerate() {
                checks.equal(check, seen, load).map_err(|failure| match i {
                    0..11 => failure.at("x", 19 + i),
                    _ => failure.at("d", i - 3),
                })?;
            }
            Ok(())
        }
    }

    /// Load `regs.load` into the callee-saved registers, `switch`, and record what the
    /// registers hold when this side is resumed; then restore the caller's registers.
    // SAFETY: saves and restores every callee-saved register of its caller, keeps sp
    // 16-aligned, and returns switch's result in x0.
    #[unsafe(naked)]
    unsafe extern "C" fn switch_with_patterns(
        save: *mut usize,
        to: usize,
        arg: usize,
        regs: *mut Regs,
    ) -> usize {
        naked_asm!(
            "sub sp, sp, #176",
            "stp x19, x20, [sp]",
            "stp x21, x22, [sp, #16]",
            "stp x23, x24, [sp, #32]",
            "stp x25, x26, [sp, #48]",
            "stp x27, x28, [sp, #64]",
            "stp x29, x30, [sp, #80]",
            "stp d8, d9, [sp, #96]",
            "stp d10, d11, [sp, #112]",
            "stp d12, d13, [sp, #128]",
            "stp d14, d15, [sp, #144]",
            "str x3, [sp, #160]",
            "ldp x19, x20, [x3]",
            "ldp x21, x22, [x3, #16]",
            "ldp x23, x24, [x3, #32]",
            "ldp x25, x26, [x3, #48]",
            "ldp x27, x28, [x3, #64]",
            "ldr x29, [x3, #80]",
            "ldp d8, d9, [x3, #88]",
            "ldp d10, d11, [x3, #104]",
            "ldp d12, d13, [x3, #120]",
            "ldp d14, d15, [x3, #136]",
            "bl {switch}",
            "ldr x3, [sp, #160]",
            "add x3, x3, #{seen}",
            "stp x19, x20, [x3]",
            "stp x21, x22, [x3, #16]",
            "stp x23, x24, [x3, #32]",
            "stp x25, x26, [x3, #48]",
            "stp x27, x28, [x3, #64]",
            "str x29, [x3, #80]",
            "stp d8, d9, [x3, #88]",
            "stp d10, d11, [x3, #104]",
            "stp d12, d13, [x3, #120]",
            "stp d14, d15, [x3, #136]",
            "ldp x19, x20, [sp]",
            "ldp x21, x22, [sp, #16]",
            "ldp x23, x24, [sp, #32]",
            "ldp x25, x26, [sp, #48]",
            "ldp x27, x28, [sp, #64]",
            "ldp x29, x30, [sp, #80]",
            "ldp d8, d9, [sp, #96]",
            "ldp d10, d11, [sp, #112]",
            "ldp d12, d13, [sp, #128]",
            "ldp d14, d15, [sp, #144]",
            "add sp, sp, #176",
            "ret",
            switch = sym switch,
            seen = const core::mem::offset_of!(Regs, seen),
        )
    }

    #[test]
    fn callee_saved_registers_survive_both_ways() {
        // SAFETY: `switch_with_patterns` is a pattern switch around Aarch64's `switch`.
        assert_passes(|checks| unsafe {
            selftest::callee_saved_registers_survive_both_ways::<Aarch64, Regs>(
                switch_with_patterns,
                checks,
            )
        });
    }
}
