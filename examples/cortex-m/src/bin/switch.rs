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
//! What the checks need from ARMv7-M (sp at a call, a frame-record prologue, the register
//! patterns and the assembly that loads and reads them) lives next to the switch in
//! `core/src/arch/arm.rs`, as the hidden items `ArmV7M::SELFTEST_ISA`,
//! `ArmV7M::SELFTEST_REGISTERS` and `ArmV7M::selftest_callee_saved_registers`.
//!
//! Prints `switch: all N checks passed` and exits with success, or prints
//! `switch: FAILED: ` and the check that did not hold, and exits with failure.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use shrapnel_core::arch::selftest::{self, Checks, Failure};
use shrapnel_core::arch::{ContextSwitch, Native};
use shrapnel_cortex_m::outln;

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
