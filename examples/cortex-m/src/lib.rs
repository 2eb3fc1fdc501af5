//! What shrapnel-core needs from a Cortex-M board, for QEMU's lm3s6965evb (Cortex-M3,
//! 64 KiB SRAM): a heap for coroutine stacks and scheduler state, a monotonic clock, a way to
//! idle, and somewhere to write debug output. The binaries in this crate (`src/main.rs`, the
//! demo; `src/bin/overflow.rs`, the canary test; `src/bin/switch.rs`, the context-switch test)
//! call [`init`] first and then use the core's free functions as a POSIX program would.
//!
//! - Heap: [`linked_list_allocator`] over a static array ([`HEAP_SIZE`]). Each coroutine takes
//!   a stack of [`STACK_SIZE`] (4 KiB) from it, so three coroutines
//!   can be alive at once here.
//! - Clock: [`SysTickClock`], a 1 kHz SysTick interrupt counting milliseconds.
//! - Idle: [`WfiIdle`], `wfi` until the next interrupt (at the latest the next tick).
//! - Output ([`output`]): the core's debug sink and the demo's own lines
//!   ([`say!`](crate::say!), [`outln!`](crate::outln!)) as plain text over semihosting or,
//!   with feature `defmt`, as defmt messages framed onto the same semihosting channel.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

pub mod output;

// The global defmt logger: defmt frames over semihosting stdout (QEMU has no RTT probe).
#[cfg(feature = "defmt")]
use defmt_semihosting as _;

use alloc::boxed::Box;
use core::cell::Cell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;

use cortex_m::interrupt::Mutex;
use cortex_m::peripheral::{syst::SystClkSource, SYST};
use cortex_m_rt::exception;
use linked_list_allocator::LockedHeap;
use shrapnel_core::clock::Clock;
use shrapnel_core::poller::{Idle, NullPoller};
use shrapnel_core::sched::{self, Config};
use shrapnel_core::sink::DebugSink;
use shrapnel_core::stack::HeapStackAllocator;

pub use cortex_m_semihosting::{debug, hprint, hprintln};
pub use output::SemihostingSink;

/// Bytes of SRAM given to the heap; the rest (8 KiB) holds statics and the main stack, on
/// which the scheduler itself runs.
pub const HEAP_SIZE: usize = 56 * 1024;

/// Each coroutine's stack: 4 KiB is ample for this demo's frames (formatting included), and
/// without `std` nothing unwinds, so the core's minimum is 2 KiB.
pub const STACK_SIZE: usize = 4 * 1024;

/// The lm3s6965's core clock in QEMU (the reset value of its clock configuration: 12 MHz).
pub const CORE_HZ: u32 = 12_000_000;

/// SysTick interrupts per second: the scheduler's tick.
pub const TICK_HZ: u32 = 1_000;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Milliseconds since [`init`], advanced by the SysTick handler. A u64 needs two words on
/// this 32-bit core, so readers take it inside a critical section.
static TICKS: Mutex<Cell<u64>> = Mutex::new(Cell::new(0));

#[exception]
fn SysTick() {
    cortex_m::interrupt::free(|cs| {
        let t = TICKS.borrow(cs);
        t.set(t.get() + 1);
    });
}

/// The scheduler's clock: the SysTick millisecond count.
pub struct SysTickClock;

impl SysTickClock {
    /// Start SysTick from the core clock, interrupting [`TICK_HZ`] times a second.
    pub fn start(mut syst: SYST) {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(CORE_HZ / TICK_HZ - 1);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
    }
}

impl Clock for SysTickClock {
    fn now(&self) -> u64 {
        cortex_m::interrupt::free(|cs| TICKS.borrow(cs).get())
    }
    fn ticks_per_second(&self) -> u64 {
        TICK_HZ as u64
    }
}

/// How the scheduler idles when nothing is ready: `wfi`. The SysTick interrupt ends it at
/// least every millisecond, so a timer is at most a tick late; any other interrupt ends it
/// sooner. (An interrupt that arrives between the NullPoller's check of its notify flag and
/// this `wfi` is therefore noticed on the next tick, not lost.)
pub struct WfiIdle;

impl Idle for WfiIdle {
    fn idle(&self, _timeout: Option<Duration>) {
        cortex_m::asm::wfi();
    }
}

/// Give the allocator its memory. Called by [`init`]; alone, by programs that need no
/// scheduler. Panics if called twice.
pub fn init_heap() {
    static mut HEAP_MEM: [MaybeUninit<u8>; HEAP_SIZE] = [MaybeUninit::uninit(); HEAP_SIZE];
    static TAKEN: AtomicBool = AtomicBool::new(false);
    assert!(
        !TAKEN.swap(true, Ordering::Relaxed),
        "shrapnel-cortex-m: the heap was already initialised"
    );
    // SAFETY: the flag above lets this line run once, and nothing else names HEAP_MEM, so
    // this is the only reference to it; the allocator owns it from here on.
    unsafe {
        HEAP.lock()
            .init_from_slice(&mut *core::ptr::addr_of_mut!(HEAP_MEM))
    };
}

/// Set up the heap and the SysTick clock and install a scheduler over them with the
/// [`NullPoller`] (no I/O sources on this board). Call once, first thing in `main`.
pub fn init() {
    init_heap();
    let Some(peripherals) = cortex_m::Peripherals::take() else {
        panic!("shrapnel-cortex-m: init() called twice (the core peripherals are taken)");
    };
    SysTickClock::start(peripherals.SYST);
    install_scheduler(output::debug_sink());
}

/// Install a scheduler over this board's parts (SysTick clock, WFI idle, heap stacks of
/// [`STACK_SIZE`]) with `sink` for its debug output. [`init`] calls it; the suite runner
/// (`src/bin/suites.rs`) calls it again for each test, after `sched::uninstall()` (done
/// there, so that the other binaries do not link the uninstall path).
pub fn install_scheduler(sink: Box<dyn DebugSink>) {
    let installed = sched::install(Config {
        poller: Box::new(NullPoller::new(WfiIdle)),
        clock: Box::new(SysTickClock),
        stacks: Box::new(HeapStackAllocator),
        sink,
        default_stack_size: STACK_SIZE,
    });
    if let Err(e) = installed {
        panic!("{e}");
    }
}

/// Milliseconds on the scheduler's clock since [`init`].
pub fn millis() -> u64 {
    SysTickClock.now()
}

/// Heap bytes in use and free, for the demo's memory line.
pub fn heap_usage() -> (usize, usize) {
    let heap = HEAP.lock();
    (heap.used(), heap.free())
}

/// End the QEMU run with a status the host sees (semihosting `SYS_EXIT`).
pub fn exit(success: bool) -> ! {
    debug::exit(if success {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    // Not reached under QEMU; on a real board without a debugger, park.
    loop {
        cortex_m::asm::wfi();
    }
}

/// The panic handler's body for the binaries: print the message (it names the coroutine
/// for a stack overflow) and fail the run.
pub fn report_panic(info: &core::panic::PanicInfo) -> ! {
    outln!("panicked: {}", info);
    exit(false)
}
