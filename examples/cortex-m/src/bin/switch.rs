//! The ARMv7-M context switch (`shrapnel_core::arch::ArmV7M`) tested on the target with the
//! checks the x86_64 and aarch64 files run as unit tests on their hosts (the shared ones in
//! `shrapnel_core::arch::selftest`):
//!
//! 1. ping-pong: values pass both ways over 1000 round trips, each saved context is an
//!    8-aligned frame record on the coroutine's stack, and sp is 8-aligned at calls on both
//!    sides (AAPCS);
//! 2. callee-saved registers survive a switch both ways: r4-r11, and d8-d15 (s16-s31) in
//!    the hard-float build, which runs on QEMU's Cortex-M4F board;
//! 3. the frame-record chain walked from inside the coroutine reaches the root record and
//!    then the resumer's context on the main stack, and its return addresses carry the
//!    Thumb bit.
//!
//! Prints `switch: all N checks passed` and exits with success, or prints
//! `switch: FAILED: ` and the check that did not hold, and exits with failure.
#![no_std]
#![no_main]

use core::arch::naked_asm;

use cortex_m_rt::entry;
use shrapnel_core::arch::selftest::{self, Checks, Failure, Isa, Registers};
use shrapnel_core::arch::{ContextSwitch, Native};
use shrapnel_cortex_m::outln;

// SAFETY: `sp_at_call` only reads sp; `frame_record_entry` is the prologue `Isa::new` asks
// for, with sp 8-aligned at its call.
const ISA: Isa = unsafe { Isa::new(8, sp_at_call, frame_record_entry) };

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

// ---- callee-saved registers survive ------------------------------------------------------

/// d8-d15 words in the hard-float build; none without the FPU.
#[cfg(target_abi = "eabihf")]
const FP_REGS: usize = 8;
#[cfg(not(target_abi = "eabihf"))]
const FP_REGS: usize = 0;
/// How the report names them.
#[cfg(target_abi = "eabihf")]
const FP_NAMES: &str = " and d8-d15";
#[cfg(not(target_abi = "eabihf"))]
const FP_NAMES: &str = "";

/// Patterns to load into the callee-saved registers and what was found in them after the
/// switch came back: r4-r11, then d8-d15 in the hard-float build.
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

/// `Native::switch` with the C ABI, so the assembly below can call it.
extern "C" fn switch_c(save: *mut usize, to: usize, arg: usize) -> usize {
    // SAFETY: only called by `switch_with_patterns`, whose callers uphold the contract.
    unsafe { Native::switch(save, to, arg) }
}

/// Assembly lines for d8-d15, present only in the hard-float build.
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

/// Load `regs.load` into the callee-saved registers, switch, and record what the registers
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
        with_fpu!(".fpu fpv4-sp-d16", "vpush {{d8-d15}}"),
        "ldm r3, {{r4, r5, r6, r7, r8, r9, r10, r11}}",
        "/* the d8-d15 patterns are at regs + {load_fp} */",
        with_fpu!("add r12, r3, #{load_fp}", "vldm r12, {{d8-d15}}"),
        "bl {switch}",
        "ldr r3, [sp, #{fp_bytes}]",
        "add r3, r3, #{seen}",
        "stm r3, {{r4, r5, r6, r7, r8, r9, r10, r11}}",
        with_fpu!("add r3, r3, #32", "vstm r3, {{d8-d15}}", "vpop {{d8-d15}}"),
        "pop {{r3, r4, r5, r6, r7, r8, r9, r10, r11, pc}}",
        switch = sym switch_c,
        seen = const core::mem::offset_of!(Regs, seen),
        load_fp = const core::mem::offset_of!(Regs, load_fp),
        fp_bytes = const FP_REGS * 8,
    )
}

/// All checks, in order, with a line for each that passed.
fn run(checks: &mut Checks) -> Result<(), Failure> {
    selftest::ping_pong_passes_values_both_ways::<Native>(&ISA, checks)?;
    outln!("switch: ping-pong, {} round trips: ok", selftest::ROUNDS);
    // SAFETY: `switch_with_patterns` is a pattern switch around Native's `switch`.
    unsafe {
        selftest::callee_saved_registers_survive_both_ways::<Native, Regs>(
            switch_with_patterns,
            checks,
        )?
    };
    outln!("switch: r4-r11{} survive both ways: ok", FP_NAMES);
    let chain = selftest::frame_pointer_chain_reaches_the_resumer::<Native>(&ISA, checks)?;
    let site = chain.returns[0];
    checks.that(
        site & 1 == 1,
        "return addresses carry the Thumb bit",
        site as u64,
    )?;
    outln!("switch: frame records chain into the resumer: ok");
    Ok(())
}

#[entry]
fn main() -> ! {
    shrapnel_cortex_m::init_heap();
    outln!(
        "switch: testing {} (INIT_SIZE {} bytes)",
        core::any::type_name::<Native>(),
        Native::INIT_SIZE
    );
    let mut checks = Checks::new();
    match run(&mut checks) {
        Ok(()) => {
            outln!("switch: all {} checks passed", checks.passed());
            shrapnel_cortex_m::exit(true)
        }
        Err(failure) => {
            outln!("switch: FAILED: {}", failure);
            shrapnel_cortex_m::exit(false)
        }
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    shrapnel_cortex_m::report_panic(info)
}
