//! The core's semantics, sync and interruption suites on a Cortex-M3 (and, built for
//! thumbv7em-none-eabihf, a Cortex-M4F): the same test functions the host runs
//! (`core/tests/portable/`), run one after another in QEMU by `bare_metal.rs`, each on a
//! fresh scheduler over this board's SysTick clock, WFI idle and heap stacks. Prints
//! `test suite::name ...` before each test and `portable suites: N tests passed` at the
//! end, then exits with success; a failed assertion reaches the panic handler, which prints
//! it and fails the run. `ci/embedded.sh` runs it.
#![no_std]
#![no_main]

extern crate alloc;

use cortex_m_rt::entry;
use shrapnel_cortex_m::outln;

#[path = "../../../../core/tests/portable/bare_metal.rs"]
mod bare_metal;

/// What the portable suites expect of their harness (the host's is `core/tests/support`).
mod support {
    pub use crate::bare_metal::common::*;

    /// Coroutines alive at once in the "many" tests: each takes a 4 KiB stack from the
    /// 56 KiB heap.
    pub const MANY: u64 = 8;

    /// A fresh scheduler for the next test, its debug output recorded.
    pub fn setup() -> Recorder {
        shrapnel_core::sched::uninstall();
        let rec = Recorder::default();
        shrapnel_cortex_m::install_scheduler(alloc::boxed::Box::new(rec.clone()));
        rec
    }
}

#[entry]
fn main() -> ! {
    shrapnel_cortex_m::init();
    bare_metal::run(|line| outln!("{}", line));
    shrapnel_cortex_m::exit(true)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    shrapnel_cortex_m::report_panic(info)
}
