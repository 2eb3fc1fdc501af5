//! The context switch for x86_64 with the System V ABI (Linux, the BSDs, macOS).
//!
//! # What is saved
//!
//! The SysV ABI makes `rbx`, `rbp` and `r12`–`r15` callee-saved; everything else may be
//! clobbered by a call, so `switch`, being an ordinary `extern "C"` call for the compiler,
//! saves exactly those and nothing more.
//!
//! The ABI also calls the control bits of MXCSR and the x87 control word (rounding modes,
//! exception masks, x87 precision) callee-saved. They are *not* switched by default: the
//! floating-point control state belongs to the thread, not to a coroutine. Rust code cannot
//! soundly change it anyway (LLVM compiles every function assuming the default
//! environment, and folds and reorders floating-point code accordingly), so a coroutine
//! only finds a changed mode where C or assembly code set it, and then the change is seen
//! by every coroutine of the thread until that code restores it, as it would be by every
//! function called on a plain thread. Saving them costs more than everything else in the
//! switch together (`stmxcsr` alone is about 6 ns per round trip on Zen 4). Programs whose
//! C or assembly code gives coroutines different rounding modes enable the core feature
//! `fp-control`: `switch` then saves and restores MXCSR and the x87 control word too, and
//! a fresh context starts with those of the thread that created it.
//!
//! # A suspended context
//!
//! `switch` pushes `rbp` right above the return address its `call` pushed: those two words
//! are a frame record `[rbp, return address]`, and the address of that record *is* the saved
//! context. The other callee-saved registers sit below it at fixed offsets:
//!
//! ```text
//!  higher addresses
//!            |  caller of switch ...     |
//!            +---------------------------+
//!            |  return address           |  ctx + 8    pushed by `call switch`
//!   ctx ---> |  rbp                      |  ctx        frame record [rbp, return address]
//!            |  rbx                      |  ctx - 8
//!            |  r12                      |  ctx - 16
//!            |  r13                      |  ctx - 24
//!            |  r14                      |  ctx - 32
//!            |  r15                      |  ctx - 40
//!            +---------------------------+  rsp while suspended = ctx - K, K = 40
//!            |  x87 CW (2) | MXCSR (4)   |  ctx - 48   only with `fp-control` (K = 48):
//!            +---------------------------+             MXCSR at ctx - 48, x87 CW at ctx - 44
//!  lower addresses
//! ```
//!
//! `ctx` is 16-byte aligned: `call` leaves rsp at 8 mod 16 and `push rbp` makes it 0.
//!
//! # The switch
//!
//! `switch(save, to, arg)` pushes the record and the registers above, stores `rsp + K`
//! (the record's address) in `*save`, sets `rsp = to - K`, reloads the registers (and with
//! `fp-control` MXCSR and the x87 control word), pops `rbp`, pops the return address into
//! `rcx` and jumps to it with `arg` in `rax`, so the `switch` call that suspended `to`
//! returns `arg`. It ends in `pop rcx; jmp rcx` rather than `ret`: a `ret` would be
//! predicted from the return-stack buffer, whose top entry is *this* side's call site, so
//! every switch would mispredict; an indirect `jmp` is predicted from the branch-target
//! buffer, which learns the alternation. 18 instructions (24 with `fp-control`), one of
//! them a branch.
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
//!            |  trampoline entry         |  base - 24   \ initial context: a frame record
//!   ctx ---> |  base - 16 (= root)       |  base - 32   / whose rbp is the root record
//!            |  rbx = 0                  |
//!            |  r12 = entry              |
//!            |  r13 = data               |
//!            |  r14 = 0                  |
//!            |  r15 = 0                  |  base - 72
//!            |  x87 CW | MXCSR           |  base - 80   `fp-control` only: the creating
//!            +---------------------------+              thread's; INIT_SIZE = 72 (80)
//! ```
//!
//! The first `switch` into `ctx` pops `rbp = root` and "returns" into the trampoline with
//! `rsp = root`, 16-byte aligned. The trampoline stores its own return site in the root
//! record's return-address word and calls `entry(arg, data)`; at the `call`, rsp is 16-byte
//! aligned as the ABI asks. `entry` must not return; if it does, the trampoline executes
//! `ud2`.
//!
//! # How debuggers and unwinders cross into the resumer
//!
//! Inside the coroutine, `rbp` of the trampoline's frame is the root record, and every resume
//! writes the resumer's context, a frame record on the resumer's stack, into the root slot.
//! So a frame-pointer walk goes `entry's record -> root record -> resumer's record -> ...`.
//! For DWARF unwinders (gdb, the `backtrace` crate, the Rust panic runtime) the trampoline's
//! CFI says the same thing: CFA = `*rbp + 16` (a `DW_CFA_def_cfa_expression`), the return
//! address at CFA - 8, the caller's rbp at CFA - 16 and rbx, r12–r15 at the offsets of the
//! layout above. Panics never unwind through the trampoline (the scheduler catches them in
//! `entry`), but backtraces walk through it into the resumer's stack.

use super::{ContextSwitch, EntryFn};
use core::arch::naked_asm;

#[cfg(windows)]
compile_error!(
    "the x86_64 context switch implements the System V ABI; the Windows x64 ABI has other \
     callee-saved registers (rsi, rdi, xmm6-xmm15) and is not supported yet"
);

/// The x86_64 System V context switch.
pub struct X86_64;

/// Bytes below a context's frame record that hold the other callee-saved registers (and,
/// with `fp-control`, the floating-point control words).
const BELOW_RECORD: usize = if cfg!(feature = "fp-control") { 48 } else { 40 };

// SAFETY: `switch` saves rbx, rbp, r12-r15 (with `fp-control` also MXCSR and the x87 control
// word; without it those are thread-wide, see the module doc) and stores the address of the
// frame record it pushed; `init` writes only [base - INIT_SIZE, base), puts the root record
// at `root_slot(base)`, and its trampoline calls `entry` with rsp 16-byte aligned and carries
// CFI that finds the resumer through the root slot (see the module doc).
unsafe impl ContextSwitch for X86_64 {
    /// The root record (16 bytes), the initial frame record (16) and the registers below it
    /// (40, or 48 with `fp-control`).
    const INIT_SIZE: usize = 32 + BELOW_RECORD;

    const SAVED_BELOW: usize = BELOW_RECORD;

    const PREFETCHES: bool = true;

    /// The saved registers and the frame record: `[context - BELOW_RECORD, context + 16)`,
    /// one or two cache lines.
    #[inline(always)]
    fn prefetch(context: usize) {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let low = context.wrapping_sub(BELOW_RECORD);
        let high = context.wrapping_add(8);
        // SAFETY: `prefetcht0` is a hint: it never faults, whatever the address (an
        // unmapped or invalid one is dropped), and changes no architectural state. SSE,
        // which it needs, is part of the x86_64 baseline.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(low as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(high as *const i8);
        }
    }

    #[inline]
    unsafe fn init(base: *mut u8, entry: EntryFn, data: *mut u8) -> usize {
        debug_assert_eq!(base as usize % 16, 0, "stack base must be 16-byte aligned");
        let top = base as usize;
        let root = top - 16;
        let ctx = top - 32;
        let words: [usize; 9] = [
            0,                                // r15, at ctx - 40
            0,                                // r14
            data as usize,                    // r13
            entry as *const () as usize,      // r12
            0,                                // rbx
            root,                             // rbp: the trampoline's frame is the root
            trampoline as *const () as usize, // where the first switch "returns"
            0,                                // root slot: no resumer yet
            0,                                // root return address: set on first run
        ];
        let start = (ctx - 40) as *mut [usize; 9];
        // SAFETY: `start` is base - 72, 8-byte aligned, and the caller guarantees that
        // [base - INIT_SIZE, base) is writable memory it owns.
        unsafe { start.write(words) };
        #[cfg(feature = "fp-control")]
        {
            let mut mxcsr: u32 = 0;
            let mut fpcw: u16 = 0;
            // SAFETY: stmxcsr and fnstcw only store 4 and 2 bytes into the two locals.
            unsafe {
                core::arch::asm!(
                    "stmxcsr [{mxcsr}]",
                    "fnstcw [{fpcw}]",
                    mxcsr = in(reg) &mut mxcsr,
                    fpcw = in(reg) &mut fpcw,
                    options(nostack, preserves_flags),
                );
            }
            // SAFETY: ctx - 48 = base - 80 is inside [base - INIT_SIZE, base) with
            // `fp-control`, and 16-byte aligned.
            unsafe { ((ctx - 48) as *mut u64).write(mxcsr as u64 | (fpcw as u64) << 32) };
        }
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

/// With `fp-control`: below the registers, store MXCSR and the x87 control word.
#[cfg(feature = "fp-control")]
macro_rules! save_fp_control {
    () => {
        "sub rsp, 8\n.cfi_adjust_cfa_offset 8\nstmxcsr [rsp]\nfnstcw [rsp + 4]"
    };
}
#[cfg(not(feature = "fp-control"))]
macro_rules! save_fp_control {
    () => {
        ""
    };
}

/// With `fp-control`: reload MXCSR and the x87 control word from below the registers.
#[cfg(feature = "fp-control")]
macro_rules! restore_fp_control {
    () => {
        "ldmxcsr [rsp]\nfldcw [rsp + 4]\nadd rsp, 8\n.cfi_adjust_cfa_offset -8"
    };
}
#[cfg(not(feature = "fp-control"))]
macro_rules! restore_fp_control {
    () => {
        ""
    };
}

/// Save the current context in `*save`, resume `to`, and hand it `arg`.
// SAFETY: a naked function is sound when its assembly follows the ABI its signature claims:
// it preserves every callee-saved integer register of the caller (they are reloaded when
// this context is resumed; the floating-point control words are thread-wide unless
// `fp-control` saves them too, see the module doc), returns `arg` in rax, and leaves rsp as
// the call found it (the resumed side pops everything that it pushed when it suspended).
#[unsafe(naked)]
unsafe extern "C" fn switch(save: *mut usize, to: usize, arg: usize) -> usize {
    naked_asm!(
        ".cfi_startproc",
        // The frame record [rbp, return address], then the other callee-saved registers.
        "push rbp",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset 6, -16",
        "push rbx",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset 3, -24",
        "push r12",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset 12, -32",
        "push r13",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset 13, -40",
        "push r14",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset 14, -48",
        "push r15",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset 15, -56",
        save_fp_control!(),
        // The context word is the record's address.
        "lea rax, [rsp + {below}]",
        "mov [rdi], rax",
        // Resume `to`: the layout is the same, so the CFI above now describes its frame.
        "lea rsp, [rsi - {below}]",
        restore_fp_control!(),
        "pop r15",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore 15",
        "pop r14",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore 14",
        "pop r13",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore 13",
        "pop r12",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore 12",
        "pop rbx",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore 3",
        "pop rbp",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore 6",
        // Return with pop + jmp, not ret (see the module doc).
        "pop rcx",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_register 16, 2",
        "mov rax, rdx",
        "jmp rcx",
        ".cfi_endproc",
        below = const BELOW_RECORD,
    )
}

/// Where a fresh context starts: calls `entry(arg, data)` on the new stack.
///
/// On arrival (from `switch`): rsp = rbp = the root record, rax = arg, r12 = entry,
/// r13 = data.
// SAFETY: only `switch` ever jumps here, into a frame laid out by `init`; the function is
// never called through its Rust signature. It never returns: if `entry` does, ud2 traps.
#[unsafe(naked)]
unsafe extern "C" fn trampoline() {
    naked_asm!(
        ".cfi_startproc",
        // The caller is whoever resumed us: its context (a frame record) is in the root slot,
        // which rbp points at. CFA = *rbp + 16:
        // DW_CFA_def_cfa_expression, 5 bytes: DW_OP_breg6 (rbp) 0, DW_OP_deref,
        // DW_OP_plus_uconst 16.
        ".cfi_escape 0x0f, 0x05, 0x76, 0x00, 0x06, 0x23, 0x10",
        // Return address (DWARF 16) and rbp (6) form the record; rbx (3) and r12-r15 sit
        // below it, as `switch` left them.
        ".cfi_offset 16, -8",
        ".cfi_offset 6, -16",
        ".cfi_offset 3, -24",
        ".cfi_offset 12, -32",
        ".cfi_offset 13, -40",
        ".cfi_offset 14, -48",
        ".cfi_offset 15, -56",
        // The root record's return-address word names this frame for frame-pointer walkers.
        "lea rcx, [rip + 2f]",
        "mov [rbp + 8], rcx",
        "mov rdi, rax",
        "mov rsi, r13",
        "call r12",
        "2:",
        "ud2",
        ".cfi_endproc",
    )
}

#[cfg(test)]
mod tests {
    //! The checks of `arch::selftest` with x86_64's hooks, and the register patterns,
    //! whose assembly is x86_64's own.
    use super::{switch, X86_64};
    use crate::arch::selftest::{self, assert_passes, Checks, Failure, Isa, Registers};
    use core::arch::naked_asm;

    // SAFETY: `sp_at_call` only reads rsp; `frame_record_entry` is the prologue `Isa::new`
    // asks for, with rsp 16-aligned at its call.
    const ISA: Isa = unsafe { Isa::new(16, sp_at_call, frame_record_entry) };

    // ping_pong_passes_values_both_ways, frame_pointer_chain_reaches_the_resumer,
    // backtrace_continues_into_the_resumer:
    selftest::context_switch_tests!(X86_64, ISA);

    /// rsp at the caller's `call`: `call` pushed 8 bytes.
    // SAFETY: reads rsp into rax and returns; touches nothing else.
    #[unsafe(naked)]
    extern "C" fn sp_at_call() -> usize {
        naked_asm!("lea rax, [rsp + 8]", "ret")
    }

    /// `push rbp; mov rbp, rsp`, then `frame_walk_body(arg, data, rbp)`.
    // SAFETY: entered from the trampoline with rsp 16-aligned at its call, so after `push rbp`
    // it is aligned again for ours; never returns.
    #[unsafe(naked)]
    unsafe extern "C" fn frame_record_entry(arg: usize, data: *mut u8) -> ! {
        naked_asm!(
            "push rbp",
            "mov rbp, rsp",
            "mov rdx, rbp",
            "call {body}",
            "ud2",
            body = sym selftest::frame_walk_body,
        )
    }

    // ---- callee-saved registers survive ------------------------------------------------

    /// Patterns to load into the callee-saved registers and what was found in them after the
    /// switch came back. Order: rbx, rbp, r12, r13, r14, r15.
    #[repr(C)]
    #[derive(Default)]
    struct Regs {
        load: [u64; 6],
        load_mxcsr: u32,
        load_fpcw: u16,
        _pad: u16,
        seen: [u64; 6],
        seen_mxcsr: u32,
        seen_fpcw: u16,
        _pad2: u16,
    }

    impl Registers for Regs {
        fn pattern(n: usize) -> Self {
            // MXCSR and x87 control words, all non-default: rounding toward zero, toward
            // -inf, flush-to-zero; 53-bit x87 precision in the last.
            let (mxcsr, fpcw) = [(0x7f80, 0x0f7f), (0x3f80, 0x077f), (0x9f80, 0x027f)][n];
            Regs {
                load: core::array::from_fn(|i| selftest::pattern_word(n, i)),
                load_mxcsr: mxcsr,
                load_fpcw: fpcw,
                ..Default::default()
            }
        }

        fn survived(&self, check: &'static str, checks: &mut Checks) -> Result<(), Failure> {
            let names = ["rbx", "rbp", "r12", "r13", "r14", "r15"];
            for ((name, seen), load) in names.into_iter().zip(self.seen).zip(self.load) {
                checks
                    .equal(check, seen, load)
                    .map_err(|failure| failure.at_name(name))?;
            }
            Ok(())
        }
    }

    impl Regs {
        /// MXCSR and the x87 control word came back as `expected` loaded them.
        fn assert_fp_control_is(&self, expected: &Regs, who: &str) {
            assert_eq!(
                self.seen_mxcsr, expected.load_mxcsr,
                "{who}: MXCSR after the switch"
            );
            assert_eq!(
                self.seen_fpcw, expected.load_fpcw,
                "{who}: x87 control word after the switch"
            );
        }
    }

    /// Load `regs.load` (and its MXCSR / x87 CW) into the callee-saved registers, `switch`,
    /// and record what the registers hold when this side is resumed; then restore the
    /// caller's registers and control words.
    // SAFETY: saves and restores every callee-saved register and both control words of its
    // caller, keeps rsp 16-aligned at the inner call, and returns switch's result in rax.
    #[unsafe(naked)]
    unsafe extern "C" fn switch_with_patterns(
        save: *mut usize,
        to: usize,
        arg: usize,
        regs: *mut Regs,
    ) -> usize {
        naked_asm!(
            "push rbp",
            "push rbx",
            "push r12",
            "push r13",
            "push r14",
            "push r15",
            "push rcx",
            "sub rsp, 16",
            "stmxcsr [rsp]",
            "fnstcw [rsp + 4]",
            "ldmxcsr [rcx + {load_mxcsr}]",
            "fldcw [rcx + {load_fpcw}]",
            "mov rbx, [rcx]",
            "mov rbp, [rcx + 8]",
            "mov r12, [rcx + 16]",
            "mov r13, [rcx + 24]",
            "mov r14, [rcx + 32]",
            "mov r15, [rcx + 40]",
            "call {switch}",
            "mov rcx, [rsp + 16]",
            "mov [rcx + {seen}], rbx",
            "mov [rcx + {seen} + 8], rbp",
            "mov [rcx + {seen} + 16], r12",
            "mov [rcx + {seen} + 24], r13",
            "mov [rcx + {seen} + 32], r14",
            "mov [rcx + {seen} + 40], r15",
            "stmxcsr [rcx + {seen_mxcsr}]",
            "fnstcw [rcx + {seen_fpcw}]",
            "ldmxcsr [rsp]",
            "fldcw [rsp + 4]",
            "add rsp, 24",
            "pop r15",
            "pop r14",
            "pop r13",
            "pop r12",
            "pop rbx",
            "pop rbp",
            "ret",
            switch = sym switch,
            load_mxcsr = const core::mem::offset_of!(Regs, load_mxcsr),
            load_fpcw = const core::mem::offset_of!(Regs, load_fpcw),
            seen = const core::mem::offset_of!(Regs, seen),
            seen_mxcsr = const core::mem::offset_of!(Regs, seen_mxcsr),
            seen_fpcw = const core::mem::offset_of!(Regs, seen_fpcw),
        )
    }

    #[test]
    fn callee_saved_registers_survive_both_ways() {
        // SAFETY: `switch_with_patterns` is a pattern switch around X86_64's `switch`.
        let patterns = assert_passes(|checks| unsafe {
            selftest::callee_saved_registers_survive_both_ways::<X86_64, Regs>(
                switch_with_patterns,
                checks,
            )
        });
        let (main, kept) = (&patterns.main, &patterns.coro_kept);
        if cfg!(feature = "fp-control") {
            // Switched with the context: each side gets back the control words it set.
            main.assert_fp_control_is(main, "main side");
            kept.assert_fp_control_is(kept, "coroutine side");
        } else {
            // Thread-wide: each side sees what the other side set last.
            main.assert_fp_control_is(&patterns.coro_clobber, "main side");
            kept.assert_fp_control_is(main, "coroutine side");
        }
    }
}
