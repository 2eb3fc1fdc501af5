//! The canary test: a coroutine overruns its stack and the scheduler names it.
//!
//! Heap stacks have no guard page; the word just below a stack's usable region is a canary
//! that the scheduler checks after every switch out of the coroutine. Here coroutine 'deep'
//! overwrites that word, as the first store of a real overflow would, and blocks. The
//! scheduler must then report `coroutine #1 'deep' overflowed its stack (4 KiB)` on the
//! debug sink and panic; this binary's panic handler checks that both happened and exits
//! with success only then. (A real overrun is not used: below a heap stack lies other heap
//! memory, which it would corrupt before the check could run.)
#![no_std]
#![no_main]

use core::fmt::Write as _;
use core::sync::atomic::{AtomicBool, Ordering};

use cortex_m_rt::entry;
use shrapnel_core::{current, event_loop, sleep, Builder};
use shrapnel_cortex_m::{outln, say};

/// The message the scheduler's panic must carry.
const EXPECTED: &str = "coroutine #1 'deep' overflowed its stack (4 KiB)";

/// Set once 'deep' has clobbered its canary, so a panic before that point fails the test.
static CLOBBERED: AtomicBool = AtomicBool::new(false);

#[entry]
fn main() -> ! {
    shrapnel_cortex_m::init();
    let deep = Builder::new().name("deep").spawn(|| {
        let (limit, _base) = current().expect("inside a coroutine").stack_range();
        say!("deep: overwriting the canary word below my stack limit {limit:#x}");
        CLOBBERED.store(true, Ordering::Relaxed);
        // SAFETY: the heap stack's canary word sits 16 bytes below its usable limit, inside
        // this stack's own allocation; nothing but the scheduler's check reads it.
        unsafe { ((limit - 16) as *mut usize).write_volatile(0) };
        let _ = sleep(core::time::Duration::from_millis(1));
        say!("deep: resumed after overflowing (the check did not fire)");
    });
    match deep {
        Ok(co) => say!("spawned #{} 'deep'", co.id()),
        Err(e) => panic!("spawning 'deep': {e}"),
    }
    event_loop();
    outln!("overflow: FAILED, the event loop ended without a stack-overflow report");
    shrapnel_cortex_m::exit(false)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let mut text: shrapnel_core::heapless::String<256> = shrapnel_core::heapless::String::new();
    let _ = write!(text, "{}", info.message());
    outln!("panicked: {}", info);
    let passed = CLOBBERED.load(Ordering::Relaxed) && text.contains(EXPECTED);
    if passed {
        outln!("overflow: passed, the canary caught 'deep'");
    } else {
        outln!("overflow: FAILED, expected a panic saying \"{}\"", EXPECTED);
    }
    shrapnel_cortex_m::exit(passed)
}
