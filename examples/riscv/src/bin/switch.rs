//! The RISC-V context switch (`shrapnel_core::arch::RiscV`) tested on bare-metal RV32 with
//! the checks every ISA runs (`shrapnel_core::arch::selftest`; riscv64 runs them as unit
//! tests under qemu-riscv64):
//!
//! 1. ping-pong: values pass both ways over 1000 round trips, each saved context is a
//!    16-aligned frame pointer on the coroutine's stack, and sp is 16-aligned at calls on
//!    both sides (the psABI);
//! 2. callee-saved registers survive a switch both ways: s0-s11 (riscv32imac has no FPU, so
//!    no fs0-fs11 here);
//! 3. the frame-record chain walked from inside the coroutine reaches the root record and
//!    then the resumer's context on the main stack.
//!
//! Prints `switch: all N checks passed` and exits with success, or prints
//! `switch: FAILED: ` and the check that did not hold, and exits with failure.
#![no_std]
#![no_main]

use shrapnel_core::arch::selftest::{self, Checks, Failure};
use shrapnel_core::arch::{ContextSwitch, Native};
use shrapnel_riscv::outln;

shrapnel_riscv::entry!(main);

/// All checks, in order, with a line for each that passed.
fn run(checks: &mut Checks) -> Result<(), Failure> {
    selftest::ping_pong_passes_values_both_ways::<Native>(&Native::SELFTEST_ISA, checks)?;
    outln!("switch: ping-pong, {} round trips: ok", selftest::ROUNDS);
    Native::selftest_callee_saved_registers(checks)?;
    outln!(
        "switch: {} survive both ways: ok",
        Native::SELFTEST_REGISTERS
    );
    let chain =
        selftest::frame_pointer_chain_reaches_the_resumer::<Native>(&Native::SELFTEST_ISA, checks)?;
    let site = chain.returns[0];
    checks.that(
        site.is_multiple_of(2),
        "return addresses are 2-byte aligned (C extension)",
        site as u64,
    )?;
    outln!("switch: frame records chain into the resumer: ok");
    Ok(())
}

fn main() -> ! {
    shrapnel_riscv::init_heap();
    outln!(
        "switch: testing {} (INIT_SIZE {} bytes)",
        core::any::type_name::<Native>(),
        Native::INIT_SIZE
    );
    let mut checks = Checks::new();
    match run(&mut checks) {
        Ok(()) => {
            outln!("switch: all {} checks passed", checks.passed());
            shrapnel_riscv::exit(true)
        }
        Err(failure) => {
            outln!("switch: FAILED: {}", failure);
            shrapnel_riscv::exit(false)
        }
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    shrapnel_riscv::report_panic(info)
}
