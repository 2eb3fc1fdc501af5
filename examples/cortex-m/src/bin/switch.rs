//! The ARMv7-M context switch (`shrapnel_core::arch::ArmV7M`) tested on the target, the
//! checks the x86_64 and aarch64 files run as unit tests on their hosts:
//!
//! 1. ping-pong: values pass both ways over 1000 round trips, each saved context is an
//!    8-aligned frame record on the coroutine's stack, and sp is 8-aligned at calls on both
//!    sides (AAPCS);
//! 2. callee-saved registers survive a switch both ways: r4-r11, and d8-d15 (s16-s31) in
//!    the hard-float build, which runs on QEMU's Cortex-M4F board;
//! 3. the frame-record chain walked from inside the coroutine reaches the root record and
//!    then the resumer's context on the main stack.
//!
//! Prints `switch: all N checks passed` and exits with success, or names the failed check
//! (through the panic handler) and exits with failure.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use core::arch::naked_asm;
use core::ptr::{addr_of, addr_of_mut};
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m_rt::entry;
use shrapnel_core::arch::{ContextSwitch, EntryFn, Native};
use shrapnel_core::stack::{HeapStack, Stack};
use shrapnel_cortex_m::outln;

/// Checks that passed, for the final line.
static CHECKS: AtomicU32 = AtomicU32::new(0);

macro_rules! check {
    ($cond:expr, $($msg:tt)*) => {{
        assert!($cond, $($msg)*);
        CHECKS.fetch_add(1, Ordering::Relaxed);
    }};
}

/// What both sides of a test share: the coroutine's stack base and its saved context.
struct Link {
    base: *mut u8,
    coro: usize,
}

/// A coroutine on a heap stack; `T` is the test's shared state, which starts with a Link.
struct Coro<T> {
    stack: HeapStack,
    shared: *mut T,
}

impl<T> Coro<T> {
    fn new(entry: EntryFn, shared: T, link_of: fn(*mut T) -> *mut Link) -> Self {
        let stack = HeapStack::new(shrapnel_core::stack::MIN_STACK_SIZE).expect("test stack");
        let base = stack.base().as_ptr();
        let shared = Box::into_raw(Box::new(shared));
        // SAFETY: the stack is ours, 16-aligned and far larger than INIT_SIZE.
        let coro = unsafe { Native::init(base, entry, shared.cast()) };
        // SAFETY: `shared` is a live allocation owned by this Coro.
        unsafe { link_of(shared).write(Link { base, coro }) };
        Coro { stack, shared }
    }

    fn contains(&self, addr: usize) -> bool {
        (self.stack.limit().as_ptr() as usize..self.stack.base().as_ptr() as usize).contains(&addr)
    }
}

/// Resume the coroutine of `link` with `arg`; returns what it suspends with.
unsafe fn resume(link: *mut Link, arg: usize) -> usize {
    // SAFETY: the caller passes the link of a live, suspended coroutine.
    unsafe { Native::switch(Native::root_slot((*link).base), (*link).coro, arg) }
}

/// From inside the coroutine of `link`: suspend back to whoever resumed it.
unsafe fn suspend(link: *mut Link, arg: usize) -> usize {
    // SAFETY: called on the coroutine's own stack, so the root slot holds its resumer.
    unsafe {
        Native::switch(
            addr_of_mut!((*link).coro),
            *Native::root_slot((*link).base),
            arg,
        )
    }
}

/// The caller's sp at its `bl`, which AAPCS requires to be 8-aligned.
// SAFETY: reads sp into r0 and returns; touches nothing else.
#[unsafe(naked)]
extern "C" fn sp_at_call() -> usize {
    naked_asm!("mov r0, sp", "bx lr")
}

// ---- 1. ping-pong ------------------------------------------------------------------------

struct PingPong {
    link: Link,
    data_seen: usize,
    sp_seen: [usize; 64],
    resumes: usize,
}

fn pp_link(p: *mut PingPong) -> *mut Link {
    // SAFETY: p points to a live PingPong; only the field address is computed.
    unsafe { addr_of_mut!((*p).link) }
}

unsafe extern "C" fn ping_pong_entry(arg: usize, data: *mut u8) -> ! {
    let p = data.cast::<PingPong>();
    // SAFETY: data is the PingPong main created; main does not touch it while we run.
    unsafe {
        (*p).data_seen = data as usize;
        (*p).sp_seen[0] = sp_at_call();
    }
    let mut value = arg;
    loop {
        // SAFETY: we run on the coroutine's stack, resumed through its link.
        value = unsafe { suspend(pp_link(p), value * 3 + 1) };
        // SAFETY: as above.
        unsafe {
            (*p).resumes += 1;
            let n = (*p).resumes % 64;
            (*p).sp_seen[n] = sp_at_call();
        }
    }
}

fn ping_pong() {
    let coro = Coro::new(
        ping_pong_entry,
        PingPong {
            link: Link {
                base: core::ptr::null_mut(),
                coro: 0,
            },
            data_seen: 0,
            sp_seen: [usize::MAX; 64],
            resumes: 0,
        },
        pp_link,
    );
    let link = pp_link(coro.shared);
    for round in 0..1000usize {
        let sent = round * 7 + 5;
        // SAFETY: the coroutine is alive and suspended.
        let got = unsafe { resume(link, sent) };
        check!(got == sent * 3 + 1, "ping-pong round {round}: got {got}");
        // SAFETY: the coroutine is suspended; its saved context lies on its stack.
        let ctx = unsafe { (*link).coro };
        check!(
            coro.contains(ctx),
            "context {ctx:#x} not on the coroutine stack"
        );
        check!(
            ctx % 8 == 0,
            "context {ctx:#x} is not an 8-aligned frame record"
        );
        check!(
            sp_at_call().is_multiple_of(8),
            "main side misaligned after a switch"
        );
    }
    // SAFETY: suspended; main owns the shared state now.
    let shared = unsafe { &*coro.shared };
    check!(
        shared.data_seen == coro.shared as usize,
        "data pointer not delivered"
    );
    check!(
        shared.resumes == 999,
        "coroutine resumed {} times",
        shared.resumes
    );
    for (i, sp) in shared.sp_seen.iter().enumerate() {
        check!(
            sp % 8 == 0,
            "coroutine sp {sp:#x} misaligned at a call (slot {i})"
        );
        check!(coro.contains(*sp), "coroutine sp {sp:#x} not on its stack");
    }
    outln!("switch: ping-pong, 1000 round trips: ok");
}

// ---- 2. callee-saved registers survive ---------------------------------------------------

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

impl Regs {
    fn pattern(seed: u32) -> Self {
        let mut load = [0; 8];
        for (i, word) in load.iter_mut().enumerate() {
            *word = seed.wrapping_mul(0x9e37_79b9).rotate_left(i as u32 * 5) ^ i as u32;
        }
        let mut load_fp = [0; FP_REGS];
        for (i, word) in load_fp.iter_mut().enumerate() {
            *word = (seed as u64 ^ 0x5bd1_e995).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ i as u64;
        }
        Regs {
            load,
            load_fp,
            seen: [0; 8],
            seen_fp: [0; FP_REGS],
        }
    }

    fn assert_survived(&self, who: &str) {
        for (i, (seen, load)) in self.seen.iter().zip(self.load).enumerate() {
            check!(*seen == load, "{who}: r{} clobbered by the switch", 4 + i);
        }
        for (i, (seen, load)) in self.seen_fp.iter().zip(self.load_fp).enumerate() {
            check!(*seen == load, "{who}: d{} clobbered by the switch", 8 + i);
        }
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

struct Clobber {
    link: Link,
    /// Loaded by the coroutine before it suspends; checked when main resumes it.
    coro_kept: Regs,
    /// Loaded by the coroutine to clobber main's registers on the way back.
    coro_clobber: Regs,
}

fn cl_link(p: *mut Clobber) -> *mut Link {
    // SAFETY: p points to a live Clobber; only the field address is computed.
    unsafe { addr_of_mut!((*p).link) }
}

unsafe extern "C" fn clobber_entry(_arg: usize, data: *mut u8) -> ! {
    let c = data.cast::<Clobber>();
    let link = cl_link(c);
    // SAFETY: on the coroutine stack; `c` is alive and main does not touch it meanwhile.
    unsafe {
        switch_with_patterns(
            addr_of_mut!((*link).coro),
            *Native::root_slot((*link).base),
            1,
            addr_of_mut!((*c).coro_kept),
        );
        switch_with_patterns(
            addr_of_mut!((*link).coro),
            *Native::root_slot((*link).base),
            2,
            addr_of_mut!((*c).coro_clobber),
        );
    }
    loop {
        // SAFETY: as above.
        unsafe { suspend(link, 3) };
    }
}

fn callee_saved() {
    let coro = Coro::new(
        clobber_entry,
        Clobber {
            link: Link {
                base: core::ptr::null_mut(),
                coro: 0,
            },
            coro_kept: Regs::pattern(0xc0de),
            coro_clobber: Regs::pattern(0xbad),
        },
        cl_link,
    );
    let link = cl_link(coro.shared);
    // SAFETY: fresh coroutine; it suspends with its patterns loaded.
    check!(unsafe { resume(link, 0) } == 1, "first suspend value");
    let mut main_regs = Regs::pattern(0x5eed);
    // SAFETY: the coroutine is suspended; `main_regs` outlives the call.
    let back = unsafe {
        switch_with_patterns(
            Native::root_slot((*link).base),
            (*link).coro,
            0,
            &mut main_regs,
        )
    };
    check!(back == 2, "second suspend value {back}");
    main_regs.assert_survived("main side");
    // SAFETY: suspended; main owns the shared state now.
    unsafe { (*coro.shared).coro_kept.assert_survived("coroutine side") };
    outln!("switch: r4-r11{} survive both ways: ok", FP_NAMES);
}

// ---- 3. frame-record walk ----------------------------------------------------------------

struct FpWalk {
    link: Link,
    /// Addresses of the first three frame records walked from inside the coroutine.
    records: [usize; 3],
    /// Their return-address words.
    returns: [usize; 3],
}

fn fp_link(p: *mut FpWalk) -> *mut Link {
    // SAFETY: p points to a live FpWalk; only the field address is computed.
    unsafe { addr_of_mut!((*p).link) }
}

/// An entry that builds a frame record the way a Thumb frame-pointer prologue does and hands
/// its address to `fp_walk_body`, so the test does not depend on how rustc was configured.
// SAFETY: called by the trampoline as an EntryFn with sp 8-aligned; pushes 8 bytes, so sp
// stays aligned at the inner call; never returns.
#[unsafe(naked)]
unsafe extern "C" fn fp_walk_entry(arg: usize, data: *mut u8) -> ! {
    naked_asm!(
        "push {{r7, lr}}",
        "mov r7, sp",
        "mov r2, r7",
        "bl {body}",
        "udf #1",
        body = sym fp_walk_body,
    )
}

unsafe extern "C" fn fp_walk_body(_arg: usize, data: *mut u8, fp: usize) -> ! {
    let w = data.cast::<FpWalk>();
    let mut record = fp;
    for i in 0..3 {
        // SAFETY: each record is two readable words: the first on the coroutine stack,
        // then the root record, then the resumer's context on the suspended main stack.
        unsafe {
            (*w).records[i] = record;
            (*w).returns[i] = *(record as *const usize).add(1);
            record = *(record as *const usize);
        }
    }
    loop {
        // SAFETY: on the coroutine stack, resumed through its link.
        unsafe { suspend(fp_link(w), 0) };
    }
}

fn frame_walk() {
    let coro = Coro::new(
        fp_walk_entry,
        FpWalk {
            link: Link {
                base: core::ptr::null_mut(),
                coro: 0,
            },
            records: [0; 3],
            returns: [0; 3],
        },
        fp_link,
    );
    let link = fp_link(coro.shared);
    let marker = 0u8;
    // SAFETY: fresh coroutine on a live stack.
    unsafe { resume(link, 0) };
    // SAFETY: suspended; main owns the shared state now.
    let w = unsafe { &*coro.shared };
    // SAFETY: reading the root slot of a live stack.
    let (root, resumer) = unsafe {
        let slot = Native::root_slot((*link).base);
        (slot as usize, *slot)
    };
    check!(
        coro.contains(w.records[0]),
        "first record is not on the coroutine stack"
    );
    check!(
        w.records[1] == root,
        "the entry's caller record is not the root record"
    );
    check!(
        w.returns[1] == w.returns[0],
        "root record names {:#x}, not the trampoline's return site {:#x}",
        w.returns[1],
        w.returns[0]
    );
    check!(
        w.returns[0] & 1 == 1,
        "return addresses carry the Thumb bit"
    );
    check!(
        w.records[2] == resumer,
        "the root record does not link to the resumer"
    );
    check!(
        !coro.contains(resumer),
        "resumer's record is on the coroutine stack"
    );
    let here = addr_of!(marker) as usize;
    check!(
        resumer.abs_diff(here) < 4096,
        "resumer's record {resumer:#x} is not on the main stack (a local is at {here:#x})"
    );
    outln!("switch: frame records chain into the resumer: ok");
}

#[entry]
fn main() -> ! {
    shrapnel_cortex_m::init_heap();
    outln!(
        "switch: testing {} (INIT_SIZE {} bytes)",
        core::any::type_name::<Native>(),
        Native::INIT_SIZE
    );
    ping_pong();
    callee_saved();
    frame_walk();
    outln!(
        "switch: all {} checks passed",
        CHECKS.load(Ordering::Relaxed)
    );
    shrapnel_cortex_m::exit(true)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    shrapnel_cortex_m::report_panic(info)
}
