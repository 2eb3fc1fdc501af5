//! What shrapnel-core needs from a bare-metal RISC-V board, for QEMU's `virt` machine run as
//! RV32IMAC in machine mode without firmware (`-bios none`): a heap for coroutine stacks and
//! scheduler state, a monotonic clock, a way to idle, somewhere to write debug output, and a
//! way to end the run with a status. The binaries (`src/main.rs`, the demo;
//! `src/bin/switch.rs`, the context-switch test) start in [`entry!`] and call [`init`] (or
//! [`init_heap`]) first, then use the core's free functions as a POSIX program would.
//!
//! - Start: `_start` (below, first in `.text` by `virt.ld`) masks interrupts, turns the FPU
//!   on (where there is one), sets sp to the 64 KiB main stack, zeroes `.bss`, points `mtvec`
//!   at a handler that reports any trap and fails the run, and calls the binary's main.
//! - Heap: [`linked_list_allocator`] over a static array ([`HEAP_SIZE`]).
//! - Clock: [`MtimeClock`], the CLINT's 64-bit `mtime` (10 MHz on virt), read directly.
//! - Idle: [`WfiIdle`] sets the CLINT's `mtimecmp` to the wake-up time and waits in `wfi`.
//!   The timer interrupt is enabled in `mie` but not globally (`mstatus.MIE` stays 0), so it
//!   ends the `wfi` without a trap handler ever running.
//! - Output: [`outln!`], [`say!`] and the core's debug sink ([`UartSink`]) write to the
//!   NS16550 UART at `0x1000_0000`, QEMU's console.
//! - Exit: [`exit`] writes to the SiFive test finisher at `0x10_0000`, which ends QEMU with
//!   status 0 (pass) or 1 (fail).
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

use alloc::boxed::Box;
use core::arch::{asm, global_asm};
use core::fmt::{self, Write as _};
use core::mem::MaybeUninit;
use core::ptr::{read_volatile, write_volatile};
use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;

use linked_list_allocator::LockedHeap;
use shrapnel_core::clock::Clock;
use shrapnel_core::poller::{Idle, NullPoller};
use shrapnel_core::sched::{self, Config};
use shrapnel_core::sink::DebugSink;
use shrapnel_core::stack::HeapStackAllocator;

/// Bytes of RAM given to the heap.
pub const HEAP_SIZE: usize = 256 * 1024;

/// Each coroutine's stack: ample for this demo's frames, formatting included.
pub const STACK_SIZE: usize = 8 * 1024;

/// The CLINT's `mtime` rate on QEMU's virt board.
pub const MTIME_HZ: u64 = 10_000_000;

/// The longest `wfi` when the scheduler gives no timeout: nothing but the timer can wake
/// this board, so it looks again this often.
const IDLE_MAX: Duration = Duration::from_millis(10);

/// NS16550 UART: transmit holding register, line status register and its "transmitter
/// holding register empty" bit.
const UART_THR: usize = 0x1000_0000;
const UART_LSR: usize = 0x1000_0005;
const LSR_THRE: u8 = 0x20;

/// CLINT: hart 0's timer compare register and the free-running timer.
const CLINT_MTIMECMP: usize = 0x0200_4000;
const CLINT_MTIME: usize = 0x0200_bff8;

/// The SiFive test finisher: 0x5555 passes, `(code << 16) | 0x3333` fails with `code`.
const TEST_FINISHER: usize = 0x0010_0000;
const FINISHER_PASS: u32 = 0x5555;
const FINISHER_FAIL: u32 = (1 << 16) | 0x3333;

/// `mie.MTIE`: the machine timer interrupt, enabled so that it ends a `wfi`.
const MIE_MTIE: usize = 1 << 7;

// The reset entry and the trap vector. `_start` clears s0 and ra so that frame-pointer walks
// and debuggers stop at main; `trap_entry` is 4-byte aligned, as mtvec's direct mode needs.
global_asm!(
    ".section .text.start, \"ax\"",
    ".global _start",
    "_start:",
    "csrw mie, zero",
    "csrci mstatus, 8",
    // mstatus.FS = Initial: the FPU is usable (for builds with F, riscv32imafc); a WARL
    // field, so on a hart without F the write changes nothing.
    "li t0, 0x2000",
    "csrs mstatus, t0",
    "la sp, __stack_top",
    "li s0, 0",
    "li ra, 0",
    "la t0, __bss_start",
    "la t1, __bss_end",
    "1:",
    "bgeu t0, t1, 2f",
    "sw zero, 0(t0)",
    "addi t0, t0, 4",
    "j 1b",
    "2:",
    "la t0, trap_entry",
    "csrw mtvec, t0",
    "call shrapnel_riscv_main",
    "3:",
    "wfi",
    "j 3b",
    "",
    ".section .text.trap, \"ax\"",
    ".balign 4",
    "trap_entry:",
    "csrr a0, mcause",
    "csrr a1, mepc",
    "csrr a2, mtval",
    "j {report}",
    report = sym trap_report,
);

/// Define the binary's main, which `_start` calls: `entry!(main)` with `fn main() -> !`.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[unsafe(no_mangle)]
        extern "C" fn shrapnel_riscv_main() -> ! {
            $main()
        }
    };
}

/// Any trap is a bug here (interrupts are never taken): say which, and fail the run.
extern "C" fn trap_report(mcause: usize, mepc: usize, mtval: usize) -> ! {
    outln!("trap: mcause {mcause:#x} at mepc {mepc:#x} (mtval {mtval:#x})");
    exit(false)
}

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// The console: QEMU's NS16550 UART, written a byte at a time when it has room.
pub struct Uart;

impl Uart {
    /// Write `bytes` to the UART.
    pub fn write_bytes(bytes: &[u8]) {
        for &b in bytes {
            // SAFETY: the UART's registers are device memory on the virt board, always
            // mapped in machine mode; reading LSR and writing THR have no other effect.
            unsafe {
                while read_volatile(UART_LSR as *const u8) & LSR_THRE == 0 {}
                write_volatile(UART_THR as *mut u8, b);
            }
        }
    }
}

impl fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        Uart::write_bytes(s.as_bytes());
        Ok(())
    }
}

/// The core's debug sink (latency warnings, panic reports): the UART.
pub struct UartSink;

impl DebugSink for UartSink {
    fn write(&self, bytes: &[u8]) {
        Uart::write_bytes(bytes);
    }
}

/// The body of [`outln!`].
#[doc(hidden)]
pub fn write_line(args: fmt::Arguments) {
    let _ = writeln!(Uart, "{args}");
}

/// Print a line on the console.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::write_line(format_args!($($arg)*))
    };
}

/// Print a line on the console, prefixed with the milliseconds since start: `[  12 ms] ...`.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::outln!("[{:4} ms] {}", $crate::millis(), format_args!($($arg)*))
    };
}

/// The CLINT's `mtime`, read as two 32-bit halves (the high half again, until it did not
/// change in between).
fn mtime() -> u64 {
    loop {
        // SAFETY: the CLINT is device memory on the virt board, always mapped in machine
        // mode; reading mtime has no effect.
        let (hi, lo, again) = unsafe {
            (
                read_volatile((CLINT_MTIME + 4) as *const u32),
                read_volatile(CLINT_MTIME as *const u32),
                read_volatile((CLINT_MTIME + 4) as *const u32),
            )
        };
        if hi == again {
            return (u64::from(hi) << 32) | u64::from(lo);
        }
    }
}

/// Raise the timer interrupt at `mtime >= at` (the high half first set to all ones, so no
/// compare value in between lies in the past).
fn set_mtimecmp(at: u64) {
    // SAFETY: hart 0's mtimecmp on the virt board's CLINT; writing it only moves the timer
    // interrupt, which no handler takes (mstatus.MIE is 0).
    unsafe {
        write_volatile((CLINT_MTIMECMP + 4) as *mut u32, u32::MAX);
        write_volatile(CLINT_MTIMECMP as *mut u32, at as u32);
        write_volatile((CLINT_MTIMECMP + 4) as *mut u32, (at >> 32) as u32);
    }
}

/// The scheduler's clock: the CLINT's `mtime`, in its own 10 MHz ticks.
pub struct MtimeClock;

impl Clock for MtimeClock {
    fn now(&self) -> u64 {
        mtime()
    }
    fn ticks_per_second(&self) -> u64 {
        MTIME_HZ
    }
}

/// How the scheduler idles when nothing is ready: `wfi` until the timer reaches the next
/// deadline (at most [`IDLE_MAX`] away).
pub struct WfiIdle;

impl Idle for WfiIdle {
    fn idle(&self, timeout: Option<Duration>) {
        let wait = timeout.map_or(IDLE_MAX, |t| t.min(IDLE_MAX));
        // 10 MHz: one tick per 100 ns, rounded up so the wait is never cut short.
        let ticks = u64::try_from(wait.as_nanos().div_ceil(100)).unwrap_or(u64::MAX);
        set_mtimecmp(mtime().saturating_add(ticks.max(1)));
        // SAFETY: wfi only waits; the pending timer interrupt (enabled in mie by `init`)
        // ends it, and with mstatus.MIE clear no trap is taken.
        unsafe { asm!("wfi", options(nomem, nostack)) };
    }
}

/// Give the allocator its memory. Called by [`init`]; alone, by programs that need no
/// scheduler. Panics if called twice.
pub fn init_heap() {
    static mut HEAP_MEM: [MaybeUninit<u8>; HEAP_SIZE] = [MaybeUninit::uninit(); HEAP_SIZE];
    static TAKEN: AtomicBool = AtomicBool::new(false);
    assert!(
        !TAKEN.swap(true, Ordering::Relaxed),
        "shrapnel-riscv: the heap was already initialised"
    );
    // SAFETY: the flag above lets this line run once, and nothing else names HEAP_MEM, so
    // this is the only reference to it; the allocator owns it from here on.
    unsafe {
        HEAP.lock()
            .init_from_slice(&mut *core::ptr::addr_of_mut!(HEAP_MEM))
    };
}

/// Set up the heap, let the timer end a `wfi`, and install a scheduler over the CLINT clock
/// with the [`NullPoller`] (no I/O sources on this board). Call once, first thing in main.
pub fn init() {
    init_heap();
    // SAFETY: enables only the timer interrupt in mie; mstatus.MIE stays clear, so it
    // never traps, it only ends a wfi.
    unsafe { asm!("csrs mie, {mtie}", mtie = in(reg) MIE_MTIE, options(nomem, nostack)) };
    install_scheduler(Box::new(UartSink));
}

/// Install a scheduler over this board's parts (mtime clock, WFI idle, heap stacks of
/// [`STACK_SIZE`]) with `sink` for its debug output. [`init`] calls it; the suite runner
/// (`src/bin/suites.rs`) calls it again for each test, after `sched::uninstall()` (done
/// there, so that the other binaries do not link the uninstall path).
pub fn install_scheduler(sink: Box<dyn DebugSink>) {
    let installed = sched::install(Config {
        poller: Box::new(NullPoller::new(WfiIdle)),
        clock: Box::new(MtimeClock),
        stacks: Box::new(HeapStackAllocator),
        sink,
        default_stack_size: STACK_SIZE,
    });
    if let Err(e) = installed {
        panic!("{e}");
    }
}

/// Milliseconds on the scheduler's clock since reset.
pub fn millis() -> u64 {
    mtime() / (MTIME_HZ / 1000)
}

/// Heap bytes in use and free, for the demo's memory line.
pub fn heap_usage() -> (usize, usize) {
    let heap = HEAP.lock();
    (heap.used(), heap.free())
}

/// End the QEMU run with a status the host sees, through the test finisher.
pub fn exit(success: bool) -> ! {
    let code = if success {
        FINISHER_PASS
    } else {
        FINISHER_FAIL
    };
    // SAFETY: the test finisher is device memory on the virt board; the write ends the run.
    unsafe { write_volatile(TEST_FINISHER as *mut u32, code) };
    // Not reached under QEMU; on a board without the finisher, park.
    loop {
        // SAFETY: wfi only waits.
        unsafe { asm!("wfi", options(nomem, nostack)) };
    }
}

/// The panic handler's body for the binaries: print the message and fail the run.
pub fn report_panic(info: &core::panic::PanicInfo) -> ! {
    outln!("panicked: {}", info);
    exit(false)
}
