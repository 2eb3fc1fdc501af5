//! The context switch for RISC-V with the standard psABI calling convention: RV64 (LP64,
//! LP64F, LP64D: `riscv64gc-unknown-linux-gnu`) and RV32 (ILP32, ILP32F, ILP32D:
//! `riscv32imac-unknown-none-elf`, `riscv32imafc-…`) in one file. Only the register width
//! (`sd`/`ld` or `sw`/`lw`, a word W of 8 or 4 bytes) and the floating-point registers present
//! differ between them; the layout below is drawn for RV64 with the D extension.
//!
//! # What is saved
//!
//! The psABI makes `s0`–`s11` (`s0` is the frame pointer) and `sp` callee-saved, and, with
//! the hard-float calling conventions (ILP32F/LP64F, ILP32D/LP64D), `fs0`–`fs11` (32 or 64
//! bits each). `ra` is the return address. Everything else may be clobbered by a call, so
//! `switch`, being an ordinary `extern "C"` call for the compiler, saves exactly those. With
//! a soft-float ABI the compiler treats `fs0`–`fs11` as caller-saved even where F or D is
//! present, so they are not saved. Stable Rust shows neither the ABI nor F and D to `cfg`:
//! `core/build.rs` reads the float ABI from an object rustc compiles for the target and sets
//! `cfg(shrapnel_riscv_float_abi = "single" | "double")`. The floating-point control and
//! status register `fcsr` is not switched: as on the other ISAs, the rounding mode belongs
//! to the thread, and Rust code cannot soundly change it.
//!
//! # Frame records on RISC-V
//!
//! With frame pointers, a RISC-V frame keeps `ra` at `s0 - W` and the caller's `s0` at
//! `s0 - 2W`: `s0` holds the frame's CFA (sp at the call), and the frame record
//! `[previous s0, ra]` sits just *below* it, not at it as on x86_64 and aarch64. So the context
//! word here is what `s0` would hold in `switch`'s own frame: the record's address plus
//! [`ContextSwitch::FP_ABOVE_RECORD`] (2W). Stored that way, the saved `s0` values form the
//! chain GCC and LLVM build with frame pointers, which frame-pointer walkers (`perf`, the
//! core's `where_all` walk, the runtime's latency sampler) follow.
//!
//! # A suspended context
//!
//! `switch` reserves K bytes (16-byte aligned, as sp always is) and stores the frame record at
//! the top, the other callee-saved registers below it:
//!
//! ```text
//!  higher addresses
//!            |  caller of switch ...     |
//!   ctx ---> +---------------------------+  sp at the call = the context word (s0-style)
//!            |  ra (return address)      |  ctx - 8     \ frame record [s0, ra]
//!            |  s0                       |  ctx - 16    / at ctx - 2W
//!            |  s1                       |  ctx - 24
//!            |  s2 ... s11               |  ctx - 32 ... ctx - 104   (s(n) at ctx - (n+2)W)
//!            |  padding                  |  ctx - 112
//!            |  fs11 ... fs0             |  ctx - 120 ... ctx - 208  (fs(n) at sp + n*8)
//!            +---------------------------+  sp while suspended = ctx - K, K = 208
//!  lower addresses
//! ```
//!
//! K is 13W plus the twelve FP registers, rounded up to 16: 208 on RV64 with the double-float
//! ABI (`riscv64gc`), 112 on RV64 with soft float, 160 on RV32 with double float, 112 with
//! single float (`riscv32imafc`), 64 on RV32 with soft float (`riscv32imac`).
//!
//! # The switch
//!
//! `switch(save, to, arg)` reserves the area, stores the record and the registers, stores
//! `sp + K` in `*save`, sets `sp = to - K`, reloads the registers, loads the saved `ra` into
//! `t1`, releases the area and jumps to `t1` with `arg` in `a0`, so the `switch` call that
//! suspended `to` returns `arg`. 57 instructions with FP registers, 33 without; one branch.
//!
//! It ends in `jr t1`, not `ret` (`jr ra`): the ISA's return-address-stack hints (the
//! unprivileged specification, JALR) make a `jalr` through `ra` a pop of the return-address
//! stack, whose top is *this* side's call site, so every switch would mispredict; a `jalr`
//! through a register that is not a link register (`t1` = x6; x1 and x5 are) is a plain
//! indirect jump, which the branch-target predictor learns.
//!
//! # A fresh stack
//!
//! `init` builds, at the top of the stack, a root record and an initial context whose
//! "return address" is the entry trampoline (RV64 shown; on RV32 the root record is the
//! upper 8 bytes and 8 bytes of padding keep `ctx` 16-aligned):
//!
//! ```text
//!   base --> +---------------------------+  16-byte aligned, exclusive; the root frame's s0
//!            |  trampoline return site   |  base - 8    written by the trampoline's first run
//!   root --> |  resumer's context        |  base - 16   root_slot(base): written by each resume
//!   ctx ---> +---------------------------+  base - 16 = the trampoline's sp
//!            |  ra = trampoline          |  ctx - 8     \ initial context: a frame record
//!            |  s0 = base                |  ctx - 16    / whose s0 names the root record
//!            |  s1 = entry               |  ctx - 24
//!            |  s2 = data                |  ctx - 32
//!            |  s3-s11, fs0-fs11 = 0     |
//!            +---------------------------+  ctx - K, INIT_SIZE = 16 + K
//! ```
//!
//! The first `switch` into `ctx` loads `s0 = base`, jumps to the trampoline with
//! `sp = base - 16`, 16-byte aligned. The trampoline stores its own return site in the root
//! record's return-address word (`s0 - W`) and calls `entry(arg, data)` with `jalr s1`.
//! `entry` must not return; if it does, the trampoline executes `unimp`.
//!
//! # How debuggers and unwinders cross into the resumer
//!
//! Inside the coroutine, `s0` of the trampoline's frame is `base`, so its record is the root
//! record, and every resume writes the resumer's context (its `switch` frame's `s0`) into the
//! root slot. A frame-pointer walk therefore goes `entry's frame -> root record ->
//! resumer's switch frame -> ...`. For DWARF unwinders (gdb, the `backtrace` crate) the
//! trampoline's CFI says the same: CFA = `*(s0 - 2W)` (a `DW_CFA_def_cfa_expression`), `ra` at
//! CFA - W, `s0` at CFA - 2W and the other registers at the offsets of the layout above. On
//! bare metal (`target_os = "none"`, panic=abort) the CFI goes to the non-allocated
//! `.debug_frame`, for debuggers only, and costs no flash.

use super::selftest::{self, Checks, Failure, Isa, Registers};
use super::{ContextSwitch, EntryFn};
use core::arch::naked_asm;

#[cfg(target_abi = "ilp32e")]
compile_error!(
    "the RISC-V context switch needs the standard register file; RV32E/ILP32E (16 registers, \
     4-byte stack alignment) is not supported yet"
);

/// The RISC-V psABI context switch (RV64 and RV32).
pub struct RiscV;

/// The register width W in bytes: 8 on RV64, 4 on RV32.
const W: usize = core::mem::size_of::<usize>();

/// Bytes of one saved floating-point register: 8 with D, 4 with F only, 0 without FP.
#[cfg(shrapnel_riscv_float_abi = "double")]
const FLEN: usize = 8;
#[cfg(shrapnel_riscv_float_abi = "single")]
const FLEN: usize = 4;
#[cfg(not(shrapnel_riscv_float_abi))]
const FLEN: usize = 0;

/// The area `switch` reserves: ra, s0-s11 and fs0-fs11, rounded up to keep sp 16-aligned.
const FRAME: usize = (13 * W + 12 * FLEN + 15) & !15;

/// Words `init` writes: the 16 bytes of the root record (and padding) and the initial area.
const INIT_WORDS: usize = (16 + FRAME) / W;

// One register-width store or load, as assembly text.
#[cfg(target_arch = "riscv64")]
macro_rules! store_x {
    () => {
        "sd"
    };
}
#[cfg(target_arch = "riscv64")]
macro_rules! load_x {
    () => {
        "ld"
    };
}
#[cfg(target_arch = "riscv32")]
macro_rules! store_x {
    () => {
        "sw"
    };
}
#[cfg(target_arch = "riscv32")]
macro_rules! load_x {
    () => {
        "lw"
    };
}

/// Store integer register `$reg` in slot `$n` of `switch`'s area (at ctx - n*W) and say so
/// in the CFI.
macro_rules! save_x {
    ($reg:literal, $n:literal) => {
        concat!(
            store_x!(),
            " ",
            $reg,
            ", {k}-",
            $n,
            "*{w}(sp)\n",
            ".cfi_offset ",
            $reg,
            ", -",
            $n,
            "*{w}"
        )
    };
}

/// Load integer register `$reg` from slot `$n` of `switch`'s area.
macro_rules! restore_x {
    ($reg:literal, $n:literal) => {
        concat!(load_x!(), " ", $reg, ", {k}-", $n, "*{w}(sp)")
    };
}

/// The CFI line for integer register `$reg` in slot `$n` (ctx - n*W = CFA - n*W).
macro_rules! cfi_x {
    ($reg:literal, $n:literal) => {
        concat!(".cfi_offset ", $reg, ", -", $n, "*{w}")
    };
}

// Floating-point register `$reg` in FP slot `$n` (at sp + n*FLEN, CFA - K + n*FLEN): store
// with its CFI line, load, CFI line alone, and other lines present only with F or D.
#[cfg(shrapnel_riscv_float_abi = "double")]
macro_rules! save_f {
    ($reg:literal, $n:literal) => {
        concat!("fsd ", $reg, ", ", $n, "*8(sp)\n", cfi_f!($reg, $n))
    };
}
#[cfg(shrapnel_riscv_float_abi = "double")]
macro_rules! restore_f {
    ($reg:literal, $n:literal) => {
        concat!("fld ", $reg, ", ", $n, "*8(sp)")
    };
}
#[cfg(shrapnel_riscv_float_abi = "double")]
macro_rules! cfi_f {
    ($reg:literal, $n:literal) => {
        concat!(".cfi_offset ", $reg, ", -{k}+", $n, "*8")
    };
}
#[cfg(shrapnel_riscv_float_abi = "single")]
macro_rules! save_f {
    ($reg:literal, $n:literal) => {
        concat!("fsw ", $reg, ", ", $n, "*4(sp)\n", cfi_f!($reg, $n))
    };
}
#[cfg(shrapnel_riscv_float_abi = "single")]
macro_rules! restore_f {
    ($reg:literal, $n:literal) => {
        concat!("flw ", $reg, ", ", $n, "*4(sp)")
    };
}
#[cfg(shrapnel_riscv_float_abi = "single")]
macro_rules! cfi_f {
    ($reg:literal, $n:literal) => {
        concat!(".cfi_offset ", $reg, ", -{k}+", $n, "*4")
    };
}
// Let the assembler accept the FP instructions: naked functions are assembled as module-level
// assembly, which does not see every target feature (riscv32imafc's F, for one). Only emitted
// with a hard-float ABI, which implies the extension.
#[cfg(shrapnel_riscv_float_abi = "double")]
macro_rules! fp_asm_on {
    () => {
        ".option push\n.option arch, +d"
    };
}
#[cfg(shrapnel_riscv_float_abi = "single")]
macro_rules! fp_asm_on {
    () => {
        ".option push\n.option arch, +f"
    };
}
#[cfg(shrapnel_riscv_float_abi)]
macro_rules! fp_asm_off {
    () => {
        ".option pop"
    };
}
#[cfg(not(shrapnel_riscv_float_abi))]
macro_rules! fp_asm_on {
    () => {
        ""
    };
}
#[cfg(not(shrapnel_riscv_float_abi))]
macro_rules! fp_asm_off {
    () => {
        ""
    };
}
#[cfg(shrapnel_riscv_float_abi)]
macro_rules! with_fp {
    ($($line:literal),* $(,)?) => { concat!($($line, "\n"),*) };
}
#[cfg(not(shrapnel_riscv_float_abi))]
macro_rules! save_f {
    ($reg:literal, $n:literal) => {
        ""
    };
}
#[cfg(not(shrapnel_riscv_float_abi))]
macro_rules! restore_f {
    ($reg:literal, $n:literal) => {
        ""
    };
}
#[cfg(not(shrapnel_riscv_float_abi))]
macro_rules! cfi_f {
    ($reg:literal, $n:literal) => {
        ""
    };
}
#[cfg(not(shrapnel_riscv_float_abi))]
macro_rules! with_fp {
    ($($line:literal),* $(,)?) => {
        ""
    };
}

/// On bare metal (panic=abort, nothing unwinds at run time) the CFI goes to `.debug_frame`,
/// which is not loaded, instead of `.eh_frame`, which would be dead flash.
#[cfg(target_os = "none")]
macro_rules! cfi_sections {
    () => {
        ".cfi_sections .debug_frame"
    };
}
#[cfg(not(target_os = "none"))]
macro_rules! cfi_sections {
    () => {
        ""
    };
}

// SAFETY: `switch` saves ra, s0-s11 and (with F or D) fs0-fs11 and stores sp at its call,
// which is its frame record's address plus FP_ABOVE_RECORD; `init` writes only
// [base - INIT_SIZE, base), puts the root record at `root_slot(base)`, and its trampoline
// calls `entry` with sp 16-byte aligned and carries CFI that finds the resumer through the
// root slot (see the module doc).
unsafe impl ContextSwitch for RiscV {
    /// The root record and padding (16 bytes) and the initial area (K).
    const INIT_SIZE: usize = 16 + FRAME;

    const SAVED_BELOW: usize = FRAME;

    const FP_ABOVE_RECORD: usize = 2 * W;

    #[inline]
    unsafe fn init(base: *mut u8, entry: EntryFn, data: *mut u8) -> usize {
        debug_assert_eq!(base as usize % 16, 0, "stack base must be 16-byte aligned");
        let top = base as usize;
        let ctx = top - 16;
        // Lowest address (ctx - K) first: fs0-fs11, padding and s3-s11 stay zero.
        let mut words = [0usize; INIT_WORDS];
        let at = |below_ctx: usize| (FRAME - below_ctx) / W;
        words[at(W)] = trampoline as *const () as usize; // ra: where the first switch jumps
        words[at(2 * W)] = top; // s0: the trampoline's frame has the root record below it
        words[at(3 * W)] = entry as *const () as usize; // s1
        words[at(4 * W)] = data as usize; // s2
        words[INIT_WORDS - 2] = 0; // root slot (base - 2W): no resumer yet
        words[INIT_WORDS - 1] = 0; // root return address: set by the trampoline's first run
        let start = (ctx - FRAME) as *mut [usize; INIT_WORDS];
        // SAFETY: `start` is base - INIT_SIZE, 16-byte aligned, and the caller guarantees that
        // [base - INIT_SIZE, base) is writable memory it owns.
        unsafe { start.write(words) };
        ctx
    }

    #[inline]
    fn root_slot(base: *mut u8) -> *mut usize {
        base.wrapping_sub(2 * W).cast()
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
// is resumed), returns `arg` in a0, and leaves sp as the call found it (the resumed side
// releases the area it reserved when it suspended).
#[unsafe(naked)]
pub(crate) unsafe extern "C" fn switch(save: *mut usize, to: usize, arg: usize) -> usize {
    naked_asm!(
        cfi_sections!(),
        fp_asm_on!(),
        ".cfi_startproc",
        "addi sp, sp, -{k}",
        ".cfi_def_cfa_offset {k}",
        // The frame record [s0, ra] at the top, then the other callee-saved registers.
        save_x!("ra", 1),
        save_x!("s0", 2),
        save_x!("s1", 3),
        save_x!("s2", 4),
        save_x!("s3", 5),
        save_x!("s4", 6),
        save_x!("s5", 7),
        save_x!("s6", 8),
        save_x!("s7", 9),
        save_x!("s8", 10),
        save_x!("s9", 11),
        save_x!("s10", 12),
        save_x!("s11", 13),
        save_f!("fs0", 0),
        save_f!("fs1", 1),
        save_f!("fs2", 2),
        save_f!("fs3", 3),
        save_f!("fs4", 4),
        save_f!("fs5", 5),
        save_f!("fs6", 6),
        save_f!("fs7", 7),
        save_f!("fs8", 8),
        save_f!("fs9", 9),
        save_f!("fs10", 10),
        save_f!("fs11", 11),
        // The context word is sp at the call: s0 as this frame would have it.
        "addi t0, sp, {k}",
        concat!(store_x!(), " t0, 0(a0)"),
        // Resume `to`: the layout is the same, so the CFI above now describes its frame.
        "addi sp, a1, -{k}",
        restore_f!("fs0", 0),
        restore_f!("fs1", 1),
        restore_f!("fs2", 2),
        restore_f!("fs3", 3),
        restore_f!("fs4", 4),
        restore_f!("fs5", 5),
        restore_f!("fs6", 6),
        restore_f!("fs7", 7),
        restore_f!("fs8", 8),
        restore_f!("fs9", 9),
        restore_f!("fs10", 10),
        restore_f!("fs11", 11),
        restore_x!("s11", 13),
        restore_x!("s10", 12),
        restore_x!("s9", 11),
        restore_x!("s8", 10),
        restore_x!("s7", 9),
        restore_x!("s6", 8),
        restore_x!("s5", 7),
        restore_x!("s4", 6),
        restore_x!("s3", 5),
        restore_x!("s2", 4),
        restore_x!("s1", 3),
        restore_x!("s0", 2),
        // The return address goes to t1, not ra: see the module doc.
        restore_x!("t1", 1),
        "addi sp, sp, {k}",
        ".cfi_def_cfa_offset 0",
        ".cfi_register ra, t1",
        ".cfi_restore s0",
        ".cfi_restore s1",
        ".cfi_restore s2",
        ".cfi_restore s3",
        ".cfi_restore s4",
        ".cfi_restore s5",
        ".cfi_restore s6",
        ".cfi_restore s7",
        ".cfi_restore s8",
        ".cfi_restore s9",
        ".cfi_restore s10",
        ".cfi_restore s11",
        with_fp!(
            ".cfi_restore fs0",
            ".cfi_restore fs1",
            ".cfi_restore fs2",
            ".cfi_restore fs3",
            ".cfi_restore fs4",
            ".cfi_restore fs5",
            ".cfi_restore fs6",
            ".cfi_restore fs7",
            ".cfi_restore fs8",
            ".cfi_restore fs9",
            ".cfi_restore fs10",
            ".cfi_restore fs11",
        ),
        "mv a0, a2",
        "jr t1",
        ".cfi_endproc",
        fp_asm_off!(),
        k = const FRAME,
        w = const W,
    )
}

/// Where a fresh context starts: calls `entry(arg, data)` on the new stack.
///
/// On arrival (from `switch`): sp = base - 16, s0 = base (its record is the root record),
/// a0 = arg, s1 = entry, s2 = data.
// SAFETY: only `switch` ever jumps here, into a frame laid out by `init`; the function is
// never called through its Rust signature. It never returns: if `entry` does, unimp traps.
#[unsafe(naked)]
unsafe extern "C" fn trampoline() {
    naked_asm!(
        cfi_sections!(),
        ".cfi_startproc",
        // The caller is whoever resumed us: its context (s0-style) is in the root slot at
        // s0 - 2W, and it is that frame's CFA. CFA = *(s0 - 2W):
        // DW_CFA_def_cfa_expression, 3 bytes: DW_OP_breg8 (s0) -2W, DW_OP_deref
        // (-2W as a one-byte SLEB128 is 0x80 - 2W).
        ".cfi_escape 0x0f, 0x03, 0x78, {sleb}, 0x06",
        // ra and s0 form the record; the others sit below it, as `switch` left them.
        "/* fs(n), if saved, at CFA - K + n * FLEN, K = {k} */",
        cfi_x!("ra", 1),
        cfi_x!("s0", 2),
        cfi_x!("s1", 3),
        cfi_x!("s2", 4),
        cfi_x!("s3", 5),
        cfi_x!("s4", 6),
        cfi_x!("s5", 7),
        cfi_x!("s6", 8),
        cfi_x!("s7", 9),
        cfi_x!("s8", 10),
        cfi_x!("s9", 11),
        cfi_x!("s10", 12),
        cfi_x!("s11", 13),
        cfi_f!("fs0", 0),
        cfi_f!("fs1", 1),
        cfi_f!("fs2", 2),
        cfi_f!("fs3", 3),
        cfi_f!("fs4", 4),
        cfi_f!("fs5", 5),
        cfi_f!("fs6", 6),
        cfi_f!("fs7", 7),
        cfi_f!("fs8", 8),
        cfi_f!("fs9", 9),
        cfi_f!("fs10", 10),
        cfi_f!("fs11", 11),
        // The root record's return-address word names this frame for frame-pointer walkers.
        "lla t0, 2f",
        concat!(store_x!(), " t0, -{w}(s0)"),
        "mv a1, s2",
        "jalr s1",
        "2:",
        "unimp",
        ".cfi_endproc",
        sleb = const 0x80 - 2 * W,
        w = const W,
        k = const FRAME,
    )
}

// ---- test hooks: the switch self-test on the target -------------------------------------
//
// `arch::selftest` holds the checks every ISA runs; what they need from RISC-V (sp at a
// call, a frame-record prologue, the register patterns and the assembly that loads and
// reads them) is here, next to the switch it tests. The unit tests below run them on
// riscv64 Linux (under qemu-riscv64 in CI); examples/riscv/src/bin/switch.rs runs them on
// bare-metal RV32 in QEMU, through these hidden items of `RiscV`.

#[doc(hidden)]
impl RiscV {
    /// What `arch::selftest` needs from RISC-V beyond [`ContextSwitch`].
    // SAFETY: `sp_at_call` only reads sp; `frame_record_entry` is the prologue `Isa::new`
    // asks for, with sp 16-aligned at its call.
    pub const SELFTEST_ISA: Isa = unsafe { Isa::new(16, sp_at_call, frame_record_entry) };

    /// The registers [`RiscV::selftest_callee_saved_registers`] checks, as a report names
    /// them.
    #[cfg(not(shrapnel_riscv_float_abi))]
    pub const SELFTEST_REGISTERS: &'static str = "s0-s11";
    #[cfg(shrapnel_riscv_float_abi)]
    pub const SELFTEST_REGISTERS: &'static str = "s0-s11 and fs0-fs11";

    /// `selftest::callee_saved_registers_survive_both_ways` with RISC-V's registers:
    /// s0-s11, and fs0-fs11 with F or D.
    pub fn selftest_callee_saved_registers(checks: &mut Checks) -> Result<(), Failure> {
        // SAFETY: `switch_with_patterns` is a pattern switch around this file's `switch`.
        unsafe {
            selftest::callee_saved_registers_survive_both_ways::<RiscV, Regs>(
                switch_with_patterns,
                checks,
            )
        }
        .map(drop)
    }
}

/// sp at the caller's `call`, which does not move it.
// SAFETY: reads sp into a0 and returns; touches nothing else.
#[unsafe(naked)]
extern "C" fn sp_at_call() -> usize {
    naked_asm!("mv a0, sp", "ret")
}

/// The compilers' prologue (`addi sp, sp, -16`, ra and s0 stored below the old sp,
/// `addi s0, sp, 16`), then `frame_walk_body(arg, data, s0 - 2W)`: the record's address.
// SAFETY: entered from the trampoline with sp 16-aligned; the 16-byte frame keeps it aligned
// at our call; never returns.
#[unsafe(naked)]
unsafe extern "C" fn frame_record_entry(arg: usize, data: *mut u8) -> ! {
    naked_asm!(
        "addi sp, sp, -16",
        concat!(store_x!(), " ra, 16-{w}(sp)"),
        concat!(store_x!(), " s0, 16-2*{w}(sp)"),
        "addi s0, sp, 16",
        "addi a2, s0, -2*{w}",
        "call {body}",
        "unimp",
        body = sym selftest::frame_walk_body,
        w = const W,
    )
}

/// fs0-fs11 in the register patterns: twelve with F or D, none without.
#[cfg(shrapnel_riscv_float_abi)]
const FP_REGS: usize = 12;
#[cfg(not(shrapnel_riscv_float_abi))]
const FP_REGS: usize = 0;

/// One FP register's pattern: as wide as the register.
#[cfg(shrapnel_riscv_float_abi = "double")]
type FpWord = u64;
#[cfg(not(shrapnel_riscv_float_abi = "double"))]
type FpWord = u32;

/// Patterns to load into the callee-saved registers and what was found in them after the
/// switch came back: s0-s11, then fs0-fs11 with F or D. The assembly finds `load_fp` right
/// after `load` (12 words: a multiple of 8 bytes), and `seen_fp` after `seen` the same way.
#[repr(C)]
struct Regs {
    load: [usize; 12],
    load_fp: [FpWord; FP_REGS],
    seen: [usize; 12],
    seen_fp: [FpWord; FP_REGS],
}

const _: () = {
    assert!(core::mem::offset_of!(Regs, load_fp) == 12 * W);
    assert!(core::mem::offset_of!(Regs, seen_fp) == core::mem::offset_of!(Regs, seen) + 12 * W);
};

impl Registers for Regs {
    fn pattern(n: usize) -> Self {
        Regs {
            load: core::array::from_fn(|i| selftest::pattern_word(n, i) as usize),
            load_fp: core::array::from_fn(|i| selftest::pattern_word(n, 12 + i) as FpWord),
            seen: [0; 12],
            seen_fp: [0; FP_REGS],
        }
    }

    fn survived(&self, check: &'static str, checks: &mut Checks) -> Result<(), Failure> {
        for (i, (seen, load)) in self.seen.into_iter().zip(self.load).enumerate() {
            checks
                .equal(check, seen as u64, load as u64)
                .map_err(|failure| failure.at("s", i))?;
        }
        // `into` widens FpWord, a u32 with the single-float ABI.
        #[allow(clippy::useless_conversion)]
        for (i, (seen, load)) in self.seen_fp.into_iter().zip(self.load_fp).enumerate() {
            checks
                .equal(check, seen.into(), load.into())
                .map_err(|failure| failure.at("fs", i))?;
        }
        Ok(())
    }
}

/// The area `switch_with_patterns` reserves: ra, regs, s0-s11 and fs0-fs11, 16-aligned.
const PATTERN_FRAME: usize = (14 * W + 12 * FLEN + 15) & !15;

// The pattern switch's own save area: ra at sp, `regs` at sp + W, s(n) at sp + (n+2)W,
// fs(n) at sp + 14W + n*FLEN (14W is a multiple of 8).
macro_rules! pattern_x {
    ($op:expr, $reg:literal, $slot:expr, $base:literal) => {
        concat!($op, " ", $reg, ", {w}*", $slot, "(", $base, ")")
    };
}
#[cfg(shrapnel_riscv_float_abi = "double")]
macro_rules! pattern_f {
    ($op:literal, $reg:literal, $n:literal, $offset:literal, $base:literal) => {
        concat!("f", $op, "d ", $reg, ", ", $offset, "+", $n, "*8(", $base, ")")
    };
}
#[cfg(shrapnel_riscv_float_abi = "single")]
macro_rules! pattern_f {
    ($op:literal, $reg:literal, $n:literal, $offset:literal, $base:literal) => {
        concat!("f", $op, "w ", $reg, ", ", $offset, "+", $n, "*4(", $base, ")")
    };
}
#[cfg(not(shrapnel_riscv_float_abi))]
macro_rules! pattern_f {
    ($op:literal, $reg:literal, $n:literal, $offset:literal, $base:literal) => {
        ""
    };
}
/// The twelve FP registers with one `pattern_f!` each: `$op` is `s` or `l`.
macro_rules! pattern_fs {
    ($op:literal, $offset:literal, $base:literal) => {
        concat!(
            pattern_f!($op, "fs0", 0, $offset, $base),
            "\n",
            pattern_f!($op, "fs1", 1, $offset, $base),
            "\n",
            pattern_f!($op, "fs2", 2, $offset, $base),
            "\n",
            pattern_f!($op, "fs3", 3, $offset, $base),
            "\n",
            pattern_f!($op, "fs4", 4, $offset, $base),
            "\n",
            pattern_f!($op, "fs5", 5, $offset, $base),
            "\n",
            pattern_f!($op, "fs6", 6, $offset, $base),
            "\n",
            pattern_f!($op, "fs7", 7, $offset, $base),
            "\n",
            pattern_f!($op, "fs8", 8, $offset, $base),
            "\n",
            pattern_f!($op, "fs9", 9, $offset, $base),
            "\n",
            pattern_f!($op, "fs10", 10, $offset, $base),
            "\n",
            pattern_f!($op, "fs11", 11, $offset, $base),
        )
    };
}
/// The twelve s registers, s(n) at slot `n + $first`: `$op` is a store or a load.
macro_rules! pattern_ss {
    ($op:expr, $first:literal, $base:literal) => {
        concat!(
            pattern_x!($op, "s0", concat!("(", $first, "+0)"), $base),
            "\n",
            pattern_x!($op, "s1", concat!("(", $first, "+1)"), $base),
            "\n",
            pattern_x!($op, "s2", concat!("(", $first, "+2)"), $base),
            "\n",
            pattern_x!($op, "s3", concat!("(", $first, "+3)"), $base),
            "\n",
            pattern_x!($op, "s4", concat!("(", $first, "+4)"), $base),
            "\n",
            pattern_x!($op, "s5", concat!("(", $first, "+5)"), $base),
            "\n",
            pattern_x!($op, "s6", concat!("(", $first, "+6)"), $base),
            "\n",
            pattern_x!($op, "s7", concat!("(", $first, "+7)"), $base),
            "\n",
            pattern_x!($op, "s8", concat!("(", $first, "+8)"), $base),
            "\n",
            pattern_x!($op, "s9", concat!("(", $first, "+9)"), $base),
            "\n",
            pattern_x!($op, "s10", concat!("(", $first, "+10)"), $base),
            "\n",
            pattern_x!($op, "s11", concat!("(", $first, "+11)"), $base),
        )
    };
}

/// Load `regs.load` into the callee-saved registers, `switch`, and record what the registers
/// hold when this side is resumed; then restore the caller's registers.
// SAFETY: saves and restores every callee-saved register of its caller, keeps sp 16-aligned
// at the call, and returns switch's result in a0.
#[unsafe(naked)]
unsafe extern "C" fn switch_with_patterns(
    save: *mut usize,
    to: usize,
    arg: usize,
    regs: *mut Regs,
) -> usize {
    naked_asm!(
        fp_asm_on!(),
        "addi sp, sp, -{frame}",
        // ra and a3 (regs, needed after the call), then the caller's callee-saved registers.
        pattern_x!(store_x!(), "ra", 0, "sp"),
        pattern_x!(store_x!(), "a3", 1, "sp"),
        pattern_ss!(store_x!(), 2, "sp"),
        pattern_fs!("s", "14*{w}", "sp"),
        // The patterns: regs.load, then regs.load_fp right after it.
        pattern_ss!(load_x!(), 0, "a3"),
        pattern_fs!("l", "12*{w}", "a3"),
        "call {switch}",
        pattern_x!(load_x!(), "a3", 1, "sp"),
        "addi a3, a3, {seen}",
        pattern_ss!(store_x!(), 0, "a3"),
        pattern_fs!("s", "12*{w}", "a3"),
        pattern_ss!(load_x!(), 2, "sp"),
        pattern_fs!("l", "14*{w}", "sp"),
        pattern_x!(load_x!(), "ra", 0, "sp"),
        "addi sp, sp, {frame}",
        "ret",
        fp_asm_off!(),
        switch = sym switch,
        seen = const core::mem::offset_of!(Regs, seen),
        frame = const PATTERN_FRAME,
        w = const W,
    )
}

#[cfg(test)]
mod tests {
    //! The checks of `arch::selftest` with RISC-V's hooks (above, shared with the bare-metal
    //! test binary), run on riscv64 Linux.
    use super::RiscV;
    use crate::arch::selftest::{self, assert_passes};

    // ping_pong_passes_values_both_ways, frame_pointer_chain_reaches_the_resumer,
    // backtrace_continues_into_the_resumer:
    selftest::context_switch_tests!(RiscV, RiscV::SELFTEST_ISA);

    #[test]
    fn callee_saved_registers_survive_both_ways() {
        assert_passes(RiscV::selftest_callee_saved_registers);
    }
}
