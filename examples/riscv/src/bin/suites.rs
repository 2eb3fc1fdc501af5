//! The core's semantics, sync and interruption suites on bare-metal RV32IMAC (and, built
//! for riscv32imafc-unknown-none-elf, with the F extension): the same test functions the
//! host runs (`core/tests/portable/`), run one after another on QEMU's virt board by
//! `bare_metal.rs`, each on a fresh scheduler over this board's mtime clock, WFI idle and
//! heap stacks. Prints as the Cortex-M runner does; the test finisher's status is the
//! result. `ci/riscv-embedded.sh` runs it.
#![no_std]
#![no_main]

extern crate alloc;

use shrapnel_riscv::outln;

#[path = "../../../../core/tests/portable/bare_metal.rs"]
mod bare_metal;

/// What the portable suites expect of their harness (the host's is `core/tests/support`).
mod support {
    pub use crate::bare_metal::common::*;

    /// Coroutines alive at once in the "many" tests: each takes an 8 KiB stack from the
    /// 256 KiB heap.
    pub const MANY: u64 = 24;

    /// A fresh scheduler for the next test, its debug output recorded.
    pub fn setup() -> Recorder {
        shrapnel_core::sched::uninstall();
        let rec = Recorder::default();
        shrapnel_riscv::install_scheduler(alloc::boxed::Box::new(rec.clone()));
        rec
    }
}

shrapnel_riscv::entry!(main);

fn main() -> ! {
    shrapnel_riscv::init();
    bare_metal::run(|line| outln!("{}", line));
    shrapnel_riscv::exit(true)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    shrapnel_riscv::report_panic(info)
}
