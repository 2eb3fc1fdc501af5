//! The context switch for ARMv7-M and ARMv7E-M in Thumb mode with the AAPCS procedure-call
//! standard (`thumbv7m-none-eabi`, `thumbv7em-none-eabi`, `thumbv7em-none-eabihf`: Cortex-M3,
//! M4, M7).
//!
//! # What is saved
//!
//! AAPCS makes `r4`–`r11`, `sp` and (as the return address) `lr` callee-saved, and, when the
//! floating-point extension is present, `s16`–`s31` (= `d8`–`d15`). `r7` is the Thumb frame
//! pointer: a frame record on Thumb is `[r7, lr]`, the pair `push {r7, lr}` stores. With the
//! hard-float ABI (`target_abi = "eabihf"`) the compiler keeps values in `s16`–`s31` across
//! calls, so `switch` saves them; with the soft-float ABI it does not touch them. (The FP
//! target features are unstable as `cfg`s, so the ABI is what this file keys on: a
//! soft-float-ABI build that turns the FPU on with `-C target-feature` is not supported.)
//! FPSCR is not switched: a coroutine that changes the rounding mode changes it for everyone.
//!
//! # A suspended context
//!
//! `switch` pushes `[r7, lr]` first: that pair is a frame record and its address *is* the
//! saved context. The other callee-saved registers go below it, with one padding word so that
//! the area is a multiple of 8 bytes and sp keeps the 8-byte alignment AAPCS asks for at
//! calls. With the hard-float ABI `d8`–`d15` follow:
//!
//! ```text
//!  higher addresses
//!            |  caller of switch ...     |
//!            +---------------------------+  sp at the call: 8-aligned
//!            |  lr (return address | 1)  |  ctx + 4
//!   ctx ---> |  r7                       |  ctx          frame record [r7, lr]
//!            |  r11                      |  ctx - 4
//!            |  r10                      |  ctx - 8
//!            |  r9                       |  ctx - 12
//!            |  r8                       |  ctx - 16
//!            |  r6                       |  ctx - 20
//!            |  r5                       |  ctx - 24
//!            |  r4                       |  ctx - 28
//!            |  padding (r3)             |  ctx - 32     soft-float: sp = ctx - K, K = 32
//!            |  d15 ... d8               |  ctx - 40 ... ctx - 96   (hard-float only)
//!            +---------------------------+  hard-float: sp = ctx - K, K = 96
//!  lower addresses
//! ```
//!
//! `ctx` is 8-byte aligned because sp is at the `bl` that enters `switch`.
//!
//! # The switch
//!
//! `switch(save, to, arg)` pushes the record, the registers above (and `d8`–`d15`), stores
//! `sp + K` (the record's address) in `*save`, sets `sp = to - K`, pops the other side's
//! registers and record and returns to its `lr` with `bx lr`, `arg` in r0, so the `switch`
//! call that suspended `to` returns `arg`. 10 instructions (12 with the FPU). Cortex-M3/M4
//! have no return-stack predictor, so `pop {r7, pc}` would cost the same; `bx lr` keeps the
//! shape of the other ISAs' switch (reload, then an indirect branch), which matters on
//! cores that predict returns (Cortex-M7).
//!
//! `switch` runs in Thread mode only (the scheduler never switches inside an exception
//! handler). Exceptions taken while a coroutine runs stack their frame, and with the FPU
//! their lazily-saved FP area, on the coroutine's stack, below its sp, and unstack it before
//! the coroutine runs again, so nothing here has to know about them.
//!
//! # A fresh stack
//!
//! `init` builds, at the top of the stack, a root record and an initial context whose
//! "return address" is the entry trampoline:
//!
//! ```text
//!   base --> +---------------------------+  16-byte aligned, exclusive
//!            |  trampoline return site   |  base - 4    written by the trampoline's first run
//!   root --> |  resumer's context        |  base - 8    root_slot(base): written by each resume
//!            |  lr = trampoline | 1      |  base - 12   \ initial context: a frame record
//!   ctx ---> |  r7 = base - 8 (= root)   |  base - 16   / whose r7 is the root record
//!            |  r11, r10, r9, r8, r6 = 0 |
//!            |  r5 = data                |  base - 40
//!            |  r4 = entry               |  base - 44
//!            |  padding                  |  base - 48   soft-float: INIT_SIZE = 48
//!            |  d15 ... d8 = 0           |  base - 112  hard-float: INIT_SIZE = 112
//!            +---------------------------+
//! ```
//!
//! The first `switch` into `ctx` pops `r7 = root`, `lr = trampoline` and branches there with
//! `sp = root`, 8-byte aligned. The trampoline stores its own return site (with the Thumb
//! bit, as `lr` would hold it) in the root record's return-address word and calls
//! `entry(arg, data)` with `blx r4`. `entry` must not return; if it does, the trampoline
//! executes `udf` (a HardFault on Cortex-M).
//!
//! # How debuggers and unwinders cross into the resumer
//!
//! Inside the coroutine, r7 of the trampoline's frame is the root record, and every resume
//! writes the resumer's context into the root slot, so a frame-pointer walk (with
//! `-C force-frame-pointers=yes`) goes `entry's record -> root record -> resumer's record`.
//! The trampoline and `switch` also carry DWARF CFI, as on the other ISAs: for the
//! trampoline CFA = `*r7 + 8` (a `DW_CFA_def_cfa_expression`), lr at CFA - 4, r7 at CFA - 8,
//! and r4–r11 (and d8–d15) at the offsets of the layout above, so gdb attached to QEMU or a
//! probe walks from a coroutine into the scheduler. The directives go to `.debug_frame`
//! (`.cfi_sections .debug_frame`), which is not loaded, so they cost no flash: these targets
//! are panic=abort and unwind nothing at run time. No ARM EHABI entries (`.ARM.exidx`) are
//! written for the two functions, for the same reason.

use super::selftest::{self, Checks, Failure, Isa, Registers};
use super::{ContextSwitch, EntryFn};
use core::arch::naked_asm;

// ARMv6-M (thumbv6m, Cortex-M0) has only Thumb-1: no `push`/`pop` of r8-r11 and no 32-bit
// `sub` or `orr` with an immediate. It is also the only M profile without compare-and-swap,
// which is the one difference visible to a stable `cfg`.
#[cfg(not(target_has_atomic = "ptr"))]
compile_error!(
    "the ARM context switch needs Thumb-2 (ARMv7-M or later); ARMv6-M (thumbv6m, \
     Cortex-M0/M0+) is not supported yet"
);

/// The ARMv7-M (Thumb-2, AAPCS) context switch.
pub struct ArmV7M;

/// Bytes below a context's frame record that hold the other callee-saved registers: eight
/// words (r4-r6, r8-r11 and a padding word), plus d8-d15 with the hard-float ABI.
#[cfg(not(target_abi = "eabihf"))]
const BELOW_RECORD: usize = 32;
#[cfg(target_abi = "eabihf")]
const BELOW_RECORD: usize = 32 + 64;

/// Words `init` writes: the root record, the initial record and the area below it.
const INIT_WORDS: usize = (16 + BELOW_RECORD) / 4;

/// Assembly lines for d8-d15 (s16-s31), present only with the hard-float ABI.
#[cfg(target_abi = "eabihf")]
macro_rules! with_fpu {
    ($($line:literal),* $(,)?) => { concat!($($line, "\n"),*) };
}
#[cfg(not(target_abi = "eabihf"))]
macro_rules! with_fpu {
    ($($line:literal),* $(,)?) => {
        ""
    };
}

// SAFETY: `switch` saves r4-r11, lr and (hard-float) d8-d15 and stores the address of the
// frame record it pushed; `init` writes only [base - INIT_SIZE, base), puts the root record at
// `root_slot(base)`, and its trampoline calls `entry` with sp 8-byte aligned (all AAPCS asks)
// and carries CFI that finds the resumer through the root slot (see the module doc).
unsafe impl ContextSwitch for ArmV7M {
    /// The root record (8 bytes), the initial frame record (8) and the registers below it
    /// (32, or 96 with the hard-float ABI).
    const INIT_SIZE: usize = 16 + BELOW_RECORD;

    const SAVED_BELOW: usize = BELOW_RECORD;

    #[inline]
    unsafe fn init(base: *mut u8, entry: EntryFn, data: *mut u8) -> usize {
        debug_assert_eq!(base as usize % 16, 0, "stack base must be 16-byte aligned");
        let top = base as usize;
        let root = top - 8;
        let ctx = top - 16;
        // Lowest address first: d8-d15 (hard-float) and the padding word stay zero.
        let mut words = [0usize; INIT_WORDS];
        let record = INIT_WORDS - 4;
        words[record - 7] = entry as *const () as usize; // r4
        words[record - 6] = data as usize; // r5
        words[record] = root; // r7: the trampoline's frame is the root record
        words[record + 1] = trampoline as *const () as usize; // lr, Thumb bit set
        words[record + 2] = 0; // root slot: no resumer yet
        words[record + 3] = 0; // root return address: set by the trampoline's first run
        let start = (ctx - BELOW_RECORD) as *mut [usize; INIT_WORDS];
        // SAFETY: `start` is base - INIT_SIZE, 16-byte aligned, and the caller guarantees that
        // [base - INIT_SIZE, base) is writable memory it owns.
        unsafe { start.write(words) };
        ctx
    }

    #[inline]
    fn root_slot(base: *mut u8) -> *mut usize {
        base.wrapping_sub(8).cast()
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
// is resumed), returns `arg` in r0, and leaves sp as the call found it (the resumed side pops
// everything it pushed when it suspended).
#[unsafe(naked)]
pub(crate) unsafe extern "C" fn switch(save: *mut usize, to: usize, arg: usize) -> usize {
    naked_asm!(
        // Unwind information for debuggers only, in the non-allocated `.debug_frame`: these
        // targets unwind nothing at run time (panic=abort), so `.eh_frame` would be dead flash.
        ".cfi_sections .debug_frame",
        ".cfi_startproc",
        // The frame record [r7, lr], then the other callee-saved registers and a padding
        // word (r3) that keeps the area a multiple of 8 bytes.
        "push {{r7, lr}}",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset 14, -4",
        ".cfi_offset 7, -8",
        "push {{r3, r4, r5, r6, r8, r9, r10, r11}}",
        ".cfi_adjust_cfa_offset 32",
        ".cfi_offset 11, -12",
        ".cfi_offset 10, -16",
        ".cfi_offset 9, -20",
        ".cfi_offset 8, -24",
        ".cfi_offset 6, -28",
        ".cfi_offset 5, -32",
        ".cfi_offset 4, -36",
        with_fpu!(
            // vpush {d8-d15}, encoded: module-level assembly does not see the target's FPU
            // features, and an `.fpu` directive would leak into the rest of the object.
            ".inst.w 0xed2d8b10",
            ".cfi_adjust_cfa_offset 64",
            ".cfi_offset 271, -48",
            ".cfi_offset 270, -56",
            ".cfi_offset 269, -64",
            ".cfi_offset 268, -72",
            ".cfi_offset 267, -80",
            ".cfi_offset 266, -88",
            ".cfi_offset 265, -96",
            ".cfi_offset 264, -104",
        ),
        // The context word is the record's address.
        "add r3, sp, #{below}",
        "str r3, [r0]",
        // Resume `to`: the layout is the same, so the CFI above now describes its frame.
        // (Thumb-2 cannot subtract into sp from another register directly.)
        "sub r3, r1, #{below}",
        "mov sp, r3",
        // vpop {d8-d15}, encoded (see above).
        with_fpu!(".inst.w 0xecbd8b10", ".cfi_adjust_cfa_offset -64"),
        "pop {{r3, r4, r5, r6, r8, r9, r10, r11}}",
        ".cfi_adjust_cfa_offset -32",
        "pop {{r7, lr}}",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore 4",
        ".cfi_restore 5",
        ".cfi_restore 6",
        ".cfi_restore 7",
        ".cfi_restore 8",
        ".cfi_restore 9",
        ".cfi_restore 10",
        ".cfi_restore 11",
        ".cfi_restore 14",
        with_fpu!(
            ".cfi_restore 264",
            ".cfi_restore 265",
            ".cfi_restore 266",
            ".cfi_restore 267",
            ".cfi_restore 268",
            ".cfi_restore 269",
            ".cfi_restore 270",
            ".cfi_restore 271",
        ),
        "mov r0, r2",
        "bx lr",
        ".cfi_endproc",
        below = const BELOW_RECORD,
    )
}

/// Where a fresh context starts: calls `entry(arg, data)` on the new stack.
///
/// On arrival (from `switch`): sp = r7 = the root record, r0 = arg, r4 = entry, r5 = data.
// SAFETY: only `switch` ever branches here, into a frame laid out by `init`; the function is
// never called through its Rust signature. It never returns: if `entry` does, udf traps.
#[unsafe(naked)]
unsafe extern "C" fn trampoline() {
    naked_asm!(
        ".cfi_sections .debug_frame",
        ".cfi_startproc",
        // The caller is whoever resumed us: its context (a frame record) is in the root slot,
        // which r7 points at. CFA = *r7 + 8:
        // DW_CFA_def_cfa_expression, 5 bytes: DW_OP_breg7 0, DW_OP_deref, DW_OP_plus_uconst 8.
        ".cfi_escape 0x0f, 0x05, 0x77, 0x00, 0x06, 0x23, 0x08",
        // r7 and lr form the record; the others sit below it, as `switch` left them.
        ".cfi_offset 14, -4",
        ".cfi_offset 7, -8",
        ".cfi_offset 11, -12",
        ".cfi_offset 10, -16",
        ".cfi_offset 9, -20",
        ".cfi_offset 8, -24",
        ".cfi_offset 6, -28",
        ".cfi_offset 5, -32",
        ".cfi_offset 4, -36",
        with_fpu!(
            ".cfi_offset 271, -48",
            ".cfi_offset 270, -56",
            ".cfi_offset 269, -64",
            ".cfi_offset 268, -72",
            ".cfi_offset 267, -80",
            ".cfi_offset 266, -88",
            ".cfi_offset 265, -96",
            ".cfi_offset 264, -104",
        ),
        // The root record's return-address word names this frame for frame-pointer walkers:
        // the address after `blx`, with the Thumb bit, exactly what `blx` puts in lr.
        "adr r3, 2f",
        "orr r3, r3, #1",
        "str r3, [r7, #4]",
        "mov r1, r5",
        "blx r4",
        "2:",
        "udf #0",
        ".cfi_endproc",
    )
}

// ---- test hooks: the switch self-test on the target -------------------------------------
//
// `arch::selftest` holds the checks every ISA runs; what they need from ARMv7-M (sp at a
// call, a frame-record prologue, the register patterns and the assembly that loads and
// reads them) is here, next to the switch it tests, and reaches the test binary
// (examples/cortex-m/src/bin/switch.rs, run in QEMU) as hidden items of `ArmV7M`.

#[doc(hidden)]
impl ArmV7M {
    /// What `arch::selftest` needs from ARMv7-M beyond [`ContextSwitch`].
    // SAFETY: `sp_at_call` only reads sp; `frame_record_entry` is the prologue `Isa::new`
    // asks for, with sp 8-aligned at its call.
    pub const SELFTEST_ISA: Isa = unsafe { Isa::new(8, sp_at_call, frame_record_entry) };

    /// The registers [`ArmV7M::selftest_callee_saved_registers`] checks, as a report names
    /// them.
    #[cfg(not(target_abi = "eabihf"))]
    pub const SELFTEST_REGISTERS: &'static str = "r4-r11";
    #[cfg(target_abi = "eabihf")]
    pub const SELFTEST_REGISTERS: &'static str = "r4-r11 and d8-d15";

    /// `selftest::callee_saved_registers_survive_both_ways` with ARMv7-M's registers:
    /// r4-r11, and d8-d15 with the hard-float ABI.
    pub fn selftest_callee_saved_registers(checks: &mut Checks) -> Result<(), Failure> {
        // SAFETY: `switch_with_patterns` is a pattern switch around this file's `switch`.
        unsafe {
            selftest::callee_saved_registers_survive_both_ways::<ArmV7M, Regs>(
                switch_with_patterns,
                checks,
            )
        }
        .map(drop)
    }
}

/// sp at the caller's `bl`, which does not move it.
// SAFETY: reads sp into r0 and returns; touches nothing else.
#[unsafe(naked)]
extern "C" fn sp_at_call() -> usize {
    naked_asm!("mov r0, sp", "bx lr")
}

/// `push {r7, lr}; mov r7, sp`, then `frame_walk_body(arg, data, r7)`.
// SAFETY: entered from the trampoline with sp 8-aligned; the 8-byte record keeps it aligned
// at our call; never returns.
#[unsafe(naked)]
unsafe extern "C" fn frame_record_entry(arg: usize, data: *mut u8) -> ! {
    naked_asm!(
        "push {{r7, lr}}",
        "mov r7, sp",
        "mov r2, r7",
        "bl {body}",
        "udf #1",
        body = sym selftest::frame_walk_body,
    )
}

/// d8-d15 in the register patterns: eight with the hard-float ABI, none without.
#[cfg(target_abi = "eabihf")]
const FP_REGS: usize = 8;
#[cfg(not(target_abi = "eabihf"))]
const FP_REGS: usize = 0;

/// Patterns to load into the callee-saved registers and what was found in them after the
/// switch came back: r4-r11, then d8-d15 with the hard-float ABI.
#[repr(C)]
struct Regs {
    load: [u32; 8],
    load_fp: [u64; FP_REGS],
    seen: [u32; 8],
    seen_fp: [u64; FP_REGS],
}

impl Registers for Regs {
    fn pattern(n: usize) -> Self {
        Regs {
            load: core::array::from_fn(|i| selftest::pattern_word(n, i) as u32),
            load_fp: core::array::from_fn(|i| selftest::pattern_word(n, 8 + i)),
            seen: [0; 8],
            seen_fp: [0; FP_REGS],
        }
    }

    fn survived(&self, check: &'static str, checks: &mut Checks) -> Result<(), Failure> {
        for (i, (seen, load)) in self.seen.into_iter().zip(self.load).enumerate() {
            checks
                .equal(check, seen.into(), load.into())
                .map_err(|failure| failure.at("r", 4 + i))?;
        }
        for (i, (seen, load)) in self.seen_fp.into_iter().zip(self.load_fp).enumerate() {
            checks
                .equal(check, seen, load)
                .map_err(|failure| failure.at("d", 8 + i))?;
        }
        Ok(())
    }
}

/// Load `regs.load` into the callee-saved registers, `switch`, and record what the registers
/// hold when this side is resumed; then restore the caller's registers.
// SAFETY: saves and restores every callee-saved register of its caller, keeps sp 8-aligned
// at the call (ten words pushed, plus 64 bytes with the FPU), and returns switch's result in
// r0.
#[unsafe(naked)]
unsafe extern "C" fn switch_with_patterns(
    save: *mut usize,
    to: usize,
    arg: usize,
    regs: *mut Regs,
) -> usize {
    naked_asm!(
        // r3 (regs) is saved with the callee-saved registers: it is needed after the call.
        "push {{r3, r4, r5, r6, r7, r8, r9, r10, r11, lr}}",
        // The VFP instructions are encoded, as in `switch`: vpush {d8-d15}.
        with_fpu!(".inst.w 0xed2d8b10"),
        "ldm r3, {{r4, r5, r6, r7, r8, r9, r10, r11}}",
        "/* the d8-d15 patterns are at regs + {load_fp} */",
        // vldm r12, {d8-d15}
        with_fpu!("add r12, r3, #{load_fp}", ".inst.w 0xec9c8b10"),
        "bl {switch}",
        "ldr r3, [sp, #{fp_bytes}]",
        "add r3, r3, #{seen}",
        "stm r3, {{r4, r5, r6, r7, r8, r9, r10, r11}}",
        // vstm r3, {d8-d15}; vpop {d8-d15}
        with_fpu!("add r3, r3, #32", ".inst.w 0xec838b10", ".inst.w 0xecbd8b10"),
        "pop {{r3, r4, r5, r6, r7, r8, r9, r10, r11, pc}}",
        switch = sym switch,
        seen = const core::mem::offset_of!(Regs, seen),
        load_fp = const core::mem::offset_of!(Regs, load_fp),
        fp_bytes = const FP_REGS * 8,
    )
}
