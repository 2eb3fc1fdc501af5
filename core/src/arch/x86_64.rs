//! The context switch for x86_64 with the System V ABI (Linux, the BSDs, macOS).
//!
//! # What is saved
//!
//! The SysV ABI makes `rbx`, `rbp` and `r12`–`r15` callee-saved; everything else may be
//! clobbered by a call, so `switch`, being an ordinary `extern "C"` call for the compiler,
//! saves exactly those and nothing more.
//!
//! The ABI also calls the control bits of MXCSR and the x87 control word (rounding modes,
//! exception masks, x87 precision) callee-saved. They are *not* switched by default: the
//! floating-point control state belongs to the thread, not to a coroutine. Rust code cannot
//! soundly change it anyway (LLVM compiles every function assuming the default
//! environment, and folds and reorders floating-point code accordingly), so a coroutine
//! only finds a changed mode where C or assembly code set it, and then the change is seen
//! by every coroutine of the thread until that code restores it, as it would be by every
//! function called on a plain thread. Saving them costs more than everything else in the
//! switch together (`stmxcsr` alone is about 6 ns per round trip on Zen 4). Programs whose
//! C or assembly code gives coroutines different rounding modes enable the core feature
//! `fp-control`: `switch` then saves and restores MXCSR and the x87 control word too, and
//! a fresh context starts with those of the thread that created it.
//!
//! # A suspended context
//!
//! `switch` pushes `rbp` right above the return address its `call` pushed: those two words
//! are a frame record `[rbp, return address]`, and the address of that record *is* the saved
//! context. The other callee-saved registers sit below it at fixed offsets:
//!
//! ```text
//!  higher addresses
//!            |  caller of switch ...     |
//!            +---------------------------+
//!            |  return address           |  ctx + 8    pushed by `call switch`
//!   ctx ---> |  rbp                      |  ctx        frame record [rbp, return address]
//!            |  rbx                      |  ctx - 8
//!            |  r12                      |  ctx - 16
//!            |  r13                      |  ctx - 24
//!            |  r14                      |  ctx - 32
//!            |  r15                      |  ctx - 40
//!            +---------------------------+  rsp while suspended = ctx - K, K = 40
//!            |  x87 CW (2) | MXCSR (4)   |  ctx - 48   only with `fp-control` (K = 48):
//!            +---------------------------+             MXCSR at ctx - 48, x87 CW at ctx - 44
//!  lower addresses
//! ```
//!
//! `ctx` is 16-byte aligned: `call` leaves rsp at 8 mod 16 and `push rbp` makes it 0.
//!
//! # The switch
//!
//! `switch(save, to, arg)` pushes the record and the registers above, stores `rsp + K`
//! (the record's address) in `*save`, sets `rsp = to - K`, reloads the registers (and with
//! `fp-control` MXCSR and the x87 control word), pops `rbp`, pops the return address into
//! `rcx` and jumps to it with `arg` in `rax`, so the `switch` call that suspended `to`
//! returns `arg`. It ends in `pop rcx; jmp rcx` rather than `ret`: a `ret` would be
//! predicted from the return-stack buffer, whose top entry is *this* side's call site, so
//! every switch would mispredict; an indirect `jmp` is predicted from the branch-target
//! buffer, which learns the alternation. 18 instructions (24 with `fp-control`), one of
//! them a branch.
//!
//! # A fresh stack
//!
//! `init` builds, at the top of the stack, a root record and an initial context whose
//! "return address" is the entry trampoline:
//!
//! ```text
//!   base --> +---------------------------+  16-byte aligned, exclusive
//!            |  trampoline return site   |  base - 8    written by the trampoline's first run
//!   root --> |  resumer's context        |  base - 16   root_slot(base): written by each resume
//!            |  trampoline entry         |  base - 24   \ initial context: a frame record
//!   ctx ---> |  base - 16 (= root)       |  base - 32   / whose rbp is the root record
//!            |  rbx = 0                  |
//!            |  r12 = entry              |
//!            |  r13 = data               |
//!            |  r14 = 0                  |
//!            |  r15 = 0                  |  base - 72
//!            |  x87 CW | MXCSR           |  base - 80   `fp-control` only: the creating
//!            +---------------------------+              thread's; INIT_SIZE = 72 (80)
//! ```
//!
//! The first `switch` into `ctx` pops `rbp = root` and "returns" into the trampoline with
//! `rsp = root`, 16-byte aligned. The trampoline stores its own return site in the root
//! record's return-address word and calls `entry(arg, data)`; at the `call`, rsp is 16-byte
//! aligned as the ABI asks. `entry` must not return; if it does, the trampoline executes
//! `ud2`.
//!
//! # How debuggers and unwinders cross into the resumer
//!
//! Inside the coroutine, `rbp` of the trampoline's frame is the root record, and every resume
//! writes the resumer's context, a frame record on the resumer's stack, into the root slot.
//! So a frame-pointer walk goes `entry's record -> root record -> resumer's record -> ...`.
//! For DWARF unwinders (gdb, the `backtrace` crate, the Rust panic runtime) the trampoline's
//! CFI says the same thing: CFA = `*rbp + 16` (a `DW_CFA_def_cfa_expression`), the return
//! address at CFA - 8, the caller's rbp at CFA - 16 and rbx, r12–r15 at the offsets of the
//! layout above. Panics never unwind through the trampoline (the scheduler catches them in
//! `entry`), but backtraces walk through it into the resumer's stack.

use super::{ContextSwitch, EntryFn};
use core::arch::naked_asm;

#[cfg(windows)]
compile_error!(
    "the x86_64 context switch implements the System V ABI; the Windows x64 ABI has other \
     callee-saved registers (rsi, rdi, xmm6-xmm15) and is not supported yet"
);

/// The x86_64 System V context switch.
pub struct X86_64;

/// Bytes below a context's frame record that hold the other callee-saved registers (and,
/// with `fp-control`, the floating-point control words).
const BELOW_RECORD: usize = if cfg!(feature = "fp-control") { 48 } else { 40 };

// SAFETY: `switch` saves rbx, rbp, r12-r15 (with `fp-control` also MXCSR and the x87 control
// word; without it those are thread-wide, see the module doc) and stores the address of the
// frame record it pushed; `init` writes only [base - INIT_SIZE, base), puts the root record
// at `root_slot(base)`, and its trampoline calls `entry` with rsp 16-byte aligned and carries
// CFI that finds the resumer through the root slot (see the module doc).
unsafe impl ContextSwitch for X86_64 {
    /// The root record (16 bytes), the initial frame record (16) and the registers below it
    /// (40, or 48 with `fp-control`).
    const INIT_SIZE: usize = 32 + BELOW_RECORD;

    #[inline]
    unsafe fn init(base: *mut u8, entry: EntryFn, data: *mut u8) -> usize {
        debug_assert_eq!(base as usize % 16, 0, "stack base must be 16-byte aligned");
        let top = base as usize;
        let root = top - 16;
        let ctx = top - 32;
        let words: [usize; 9] = [
            0,                                // r15, at ctx - 40
            0,                                // r14
            data as usize,                    // r13
            entry as *const () as usize,      // r12
            0,                                // rbx
            root,                             // rbp: the trampoline's frame is the root
            trampoline as *const () as usize, // where the first switch "returns"
            0,                                // root slot: no resumer yet
            0,                                // root return address: set on first run
        ];
        let start = (ctx - 40) as *mut [usize; 9];
        // SAFETY: `start` is base - 72, 8-byte aligned, and the caller guarantees that
        // [base - INIT_SIZE, base) is writable memory it owns.
        unsafe { start.write(words) };
        #[cfg(feature = "fp-control")]
        {
            let mut mxcsr: u32 = 0;
            let mut fpcw: u16 = 0;
            // SAFETY: stmxcsr and fnstcw only store 4 and 2 bytes into the two locals.
            unsafe {
                core::arch::asm!(
                    "stmxcsr [{mxcsr}]",
                    "fnstcw [{fpcw}]",
                    mxcsr = in(reg) &mut mxcsr,
                    fpcw = in(reg) &mut fpcw,
                    options(nostack, preserves_flags),
                );
            }
            // SAFETY: ctx - 48 = base - 80 is inside [base - INIT_SIZE, base) with
            // `fp-control`, and 16-byte aligned.
            unsafe { ((ctx - 48) as *mut u64).write(mxcsr as u64 | (fpcw as u64) << 32) };
        }
        ctx
    }

    #[inline]
    fn root_slot(base: *mut u8) -> *mut usize {
        base.wrapping_sub(16).cast()
    }

    #[inline(always)]
    unsafe fn switch(save: *mut usize, to: usize, arg: usize) -> usize {
        // SAFETY: the caller upholds the trait's contract for `save` and `to`.
        unsafe { switch(save, to, arg) }
    }
}

/// With `fp-control`: below the registers, store MXCSR and the x87 control word.
#[cfg(feature = "fp-control")]
macro_rules! save_fp_control {
    () => {
        "sub rsp, 8\n.cfi_adjust_cfa_offset 8\nstmxcsr [rsp]\nfnstcw [rsp + 4]"
    };
}
#[cfg(not(feature = "fp-control"))]
macro_rules! save_fp_control {
    () => {
        ""
    };
}

/// With `fp-control`: reload MXCSR and the x87 control word from below the registers.
#[cfg(feature = "fp-control")]
macro_rules! restore_fp_control {
    () => {
        "ldmxcsr [rsp]\nfldcw [rsp + 4]\nadd rsp, 8\n.cfi_adjust_cfa_offset -8"
    };
}
#[cfg(not(feature = "fp-control"))]
macro_rules! restore_fp_control {
    () => {
        ""
    };
}

/// Save the current context in `*save`, resume `to`, and hand it `arg`.
// SAFETY: a naked function is sound when its assembly follows the ABI its signature claims:
// it preserves every callee-saved integer register of the caller (they are reloaded when
// this context is resumed; the floating-point control words are thread-wide unless
// `fp-control` saves them too, see the module doc), returns `arg` in rax, and leaves rsp as
// the call found it (the resumed side pops everything that it pushed when it suspended).
#[unsafe(naked)]
unsafe extern "C" fn switch(save: *mut usize, to: usize, arg: usize) -> usize {
    naked_asm!(
        ".cfi_startproc",
        // The frame record [rbp, return address], then the other callee-saved registers.
        "push rbp",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset 6, -16",
        "push rbx",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset 3, -24",
        "push r12",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset 12, -32",
        "push r13",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset 13, -40",
        "push r14",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset 14, -48",
        "push r15",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset 15, -56",
        save_fp_control!(),
        // The context word is the record's address.
        "lea rax, [rsp + {below}]",
        "mov [rdi], rax",
        // Resume `to`: the layout is the same, so the CFI above now describes its frame.
        "lea rsp, [rsi - {below}]",
        restore_fp_control!(),
        "pop r15",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore 15",
        "pop r14",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore 14",
        "pop r13",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore 13",
        "pop r12",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore 12",
        "pop rbx",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore 3",
        "pop rbp",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore 6",
        // Return with pop + jmp, not ret (see the module doc).
        "pop rcx",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_register 16, 2",
        "mov rax, rdx",
        "jmp rcx",
        ".cfi_endproc",
        below = const BELOW_RECORD,
    )
}

/// Where a fresh context starts: calls `entry(arg, data)` on the new stack.
///
/// On arrival (from `switch`): rsp = rbp = the root record, rax = arg, r12 = entry,
/// r13 = data.
// SAFETY: only `switch` ever jumps here, into a frame laid out by `init`; the function is
// never called through its Rust signature. It never returns: if `entry` does, ud2 traps.
#[unsafe(naked)]
unsafe extern "C" fn trampoline() {
    naked_asm!(
        ".cfi_startproc",
        // The caller is whoever resumed us: its context (a frame record) is in the root slot,
        // which rbp points at. CFA = *rbp + 16:
        // DW_CFA_def_cfa_expression, 5 bytes: DW_OP_breg6 (rbp) 0, DW_OP_deref,
        // DW_OP_plus_uconst 16.
        ".cfi_escape 0x0f, 0x05, 0x76, 0x00, 0x06, 0x23, 0x10",
        // Return address (DWARF 16) and rbp (6) form the record; rbx (3) and r12-r15 sit
        // below it, as `switch` left them.
        ".cfi_offset 16, -8",
        ".cfi_offset 6, -16",
        ".cfi_offset 3, -24",
        ".cfi_offset 12, -32",
        ".cfi_offset 13, -40",
        ".cfi_offset 14, -48",
        ".cfi_offset 15, -56",
        // The root record's return-address word names this frame for frame-pointer walkers.
        "lea rcx, [rip + 2f]",
        "mov [rbp + 8], rcx",
        "mov rdi, rax",
        "mov rsi, r13",
        "call r12",
        "2:",
        "ud2",
        ".cfi_endproc",
    )
}

#[cfg(test)]
mod tests {
    use super::{switch, X86_64};
    use crate::arch::ContextSwitch;
    use crate::stack::{HeapStack, Stack};
    use core::arch::naked_asm;
    use core::ptr::{addr_of, addr_of_mut};
    use std::backtrace::Backtrace;
    use std::format;
    use std::string::String;
    use std::vec::Vec;

    /// What both sides of a test share: the coroutine's stack base and its saved context.
    /// Reached through raw pointers only, since each side runs while the other holds it.
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
        fn new(
            size: usize,
            entry: super::EntryFn,
            shared: T,
            link_of: fn(*mut T) -> *mut Link,
        ) -> Self {
            let stack = HeapStack::new(size).expect("test stack");
            let base = stack.base().as_ptr();
            let shared = std::boxed::Box::into_raw(std::boxed::Box::new(shared));
            // SAFETY: the stack is ours, 16-aligned and far larger than INIT_SIZE.
            let coro = unsafe { X86_64::init(base, entry, shared.cast()) };
            let link = link_of(shared);
            // SAFETY: `shared` is a live allocation owned by this Coro.
            unsafe { link.write(Link { base, coro }) };
            Coro { stack, shared }
        }

        fn link(&self, link_of: fn(*mut T) -> *mut Link) -> *mut Link {
            link_of(self.shared)
        }

        fn contains(&self, addr: usize) -> bool {
            (self.stack.limit().as_ptr() as usize..self.stack.base().as_ptr() as usize)
                .contains(&addr)
        }
    }

    impl<T> Drop for Coro<T> {
        fn drop(&mut self) {
            // SAFETY: the coroutine is suspended for good; nothing refers to `shared` now.
            drop(unsafe { std::boxed::Box::from_raw(self.shared) });
        }
    }

    /// Resume the coroutine of `link` with `arg`; returns what it suspends with.
    unsafe fn resume(link: *mut Link, arg: usize) -> usize {
        // SAFETY: the caller passes the link of a live, suspended coroutine.
        unsafe { X86_64::switch(X86_64::root_slot((*link).base), (*link).coro, arg) }
    }

    /// From inside the coroutine of `link`: suspend back to whoever resumed it.
    unsafe fn suspend(link: *mut Link, arg: usize) -> usize {
        // SAFETY: called on the coroutine's own stack, so the root slot holds its resumer.
        unsafe {
            X86_64::switch(
                addr_of_mut!((*link).coro),
                *X86_64::root_slot((*link).base),
                arg,
            )
        }
    }

    /// The caller's rsp at its `call` instruction, which the ABI requires to be 16-aligned.
    // SAFETY: reads rsp into rax and returns; touches nothing else.
    #[unsafe(naked)]
    extern "C" fn sp_at_call() -> usize {
        naked_asm!("lea rax, [rsp + 8]", "ret")
    }

    // ---- 1. ping-pong --------------------------------------------------------------------

    struct PingPong {
        link: Link,
        data_seen: usize,
        sp_seen: Vec<usize>,
    }

    fn pp_link(p: *mut PingPong) -> *mut Link {
        // SAFETY: p points to a live PingPong; only the field address is computed.
        unsafe { addr_of_mut!((*p).link) }
    }

    unsafe extern "C" fn ping_pong_entry(arg: usize, data: *mut u8) -> ! {
        let p = data.cast::<PingPong>();
        // SAFETY: data is the PingPong the test created; main does not touch it while we run.
        unsafe {
            (*p).data_seen = data as usize;
            (*p).sp_seen.push(sp_at_call());
        }
        let mut value = arg;
        loop {
            // SAFETY: we run on the coroutine's stack, resumed through its link.
            value = unsafe { suspend(pp_link(p), value * 3 + 1) };
            // SAFETY: as above.
            unsafe { (*p).sp_seen.push(sp_at_call()) };
        }
    }

    #[test]
    fn ping_pong_passes_values_both_ways() {
        let coro = Coro::new(
            64 * 1024,
            ping_pong_entry,
            PingPong {
                link: Link {
                    base: core::ptr::null_mut(),
                    coro: 0,
                },
                data_seen: 0,
                sp_seen: Vec::new(),
            },
            pp_link,
        );
        let link = coro.link(pp_link);
        for round in 0..1000usize {
            let sent = round * 7 + 5;
            // SAFETY: the coroutine is alive and suspended.
            let got = unsafe { resume(link, sent) };
            assert_eq!(got, sent * 3 + 1, "round {round}");
            // SAFETY: the coroutine is suspended; its saved context lies on its stack.
            let ctx = unsafe { (*link).coro };
            assert!(
                coro.contains(ctx),
                "context {ctx:#x} not on the coroutine stack"
            );
            assert_eq!(ctx % 16, 0, "context is a 16-aligned frame record");
            assert_eq!(sp_at_call() % 16, 0, "main side misaligned after a switch");
        }
        // SAFETY: suspended; main owns the shared state now.
        let shared = unsafe { &*coro.shared };
        assert_eq!(
            shared.data_seen, coro.shared as usize,
            "data pointer delivered"
        );
        assert_eq!(shared.sp_seen.len(), 1000);
        // 3. alignment: at entry and after every resume.
        for (i, sp) in shared.sp_seen.iter().enumerate() {
            assert_eq!(
                sp % 16,
                0,
                "coroutine rsp misaligned at a call after resume {i}"
            );
            assert!(coro.contains(*sp));
        }
    }

    // ---- 2. callee-saved registers survive ------------------------------------------------

    /// Patterns to load into the callee-saved registers and what was found in them after the
    /// switch came back. Order: rbx, rbp, r12, r13, r14, r15.
    #[repr(C)]
    #[derive(Default)]
    struct Regs {
        load: [u64; 6],
        load_mxcsr: u32,
        load_fpcw: u16,
        _pad: u16,
        seen: [u64; 6],
        seen_mxcsr: u32,
        seen_fpcw: u16,
        _pad2: u16,
    }

    impl Regs {
        fn pattern(seed: u64, mxcsr: u32, fpcw: u16) -> Self {
            let mut load = [0; 6];
            for (i, word) in load.iter_mut().enumerate() {
                *word = seed
                    .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                    .rotate_left(i as u32 * 9)
                    ^ i as u64;
            }
            Regs {
                load,
                load_mxcsr: mxcsr,
                load_fpcw: fpcw,
                ..Default::default()
            }
        }

        /// Every callee-saved integer register came back as it was loaded.
        fn assert_survived(&self, who: &str) {
            let names = ["rbx", "rbp", "r12", "r13", "r14", "r15"];
            for ((name, seen), load) in names.iter().zip(self.seen).zip(self.load) {
                assert_eq!(seen, load, "{who}: {name} clobbered by the switch");
            }
        }

        /// MXCSR and the x87 control word came back as `expected` loaded them.
        fn assert_fp_control_is(&self, expected: &Regs, who: &str) {
            assert_eq!(
                self.seen_mxcsr, expected.load_mxcsr,
                "{who}: MXCSR after the switch"
            );
            assert_eq!(
                self.seen_fpcw, expected.load_fpcw,
                "{who}: x87 control word after the switch"
            );
        }
    }

    /// Load `regs.load` (and its MXCSR / x87 CW) into the callee-saved registers, `switch`,
    /// and record what the registers hold when this side is resumed; then restore the
    /// caller's registers and control words.
    // SAFETY: saves and restores every callee-saved register and both control words of its
    // caller, keeps rsp 16-aligned at the inner call, and returns switch's result in rax.
    #[unsafe(naked)]
    unsafe extern "C" fn switch_with_patterns(
        save: *mut usize,
        to: usize,
        arg: usize,
        regs: *mut Regs,
    ) -> usize {
        naked_asm!(
            "push rbp",
            "push rbx",
            "push r12",
            "push r13",
            "push r14",
            "push r15",
            "push rcx",
            "sub rsp, 16",
            "stmxcsr [rsp]",
            "fnstcw [rsp + 4]",
            "ldmxcsr [rcx + {load_mxcsr}]",
            "fldcw [rcx + {load_fpcw}]",
            "mov rbx, [rcx]",
            "mov rbp, [rcx + 8]",
            "mov r12, [rcx + 16]",
            "mov r13, [rcx + 24]",
            "mov r14, [rcx + 32]",
            "mov r15, [rcx + 40]",
            "call {switch}",
            "mov rcx, [rsp + 16]",
            "mov [rcx + {seen}], rbx",
            "mov [rcx + {seen} + 8], rbp",
            "mov [rcx + {seen} + 16], r12",
            "mov [rcx + {seen} + 24], r13",
            "mov [rcx + {seen} + 32], r14",
            "mov [rcx + {seen} + 40], r15",
            "stmxcsr [rcx + {seen_mxcsr}]",
            "fnstcw [rcx + {seen_fpcw}]",
            "ldmxcsr [rsp]",
            "fldcw [rsp + 4]",
            "add rsp, 24",
            "pop r15",
            "pop r14",
            "pop r13",
            "pop r12",
            "pop rbx",
            "pop rbp",
            "ret",
            switch = sym switch,
            load_mxcsr = const core::mem::offset_of!(Regs, load_mxcsr),
            load_fpcw = const core::mem::offset_of!(Regs, load_fpcw),
            seen = const core::mem::offset_of!(Regs, seen),
            seen_mxcsr = const core::mem::offset_of!(Regs, seen_mxcsr),
            seen_fpcw = const core::mem::offset_of!(Regs, seen_fpcw),
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
                *X86_64::root_slot((*link).base),
                1,
                addr_of_mut!((*c).coro_kept),
            );
            switch_with_patterns(
                addr_of_mut!((*link).coro),
                *X86_64::root_slot((*link).base),
                2,
                addr_of_mut!((*c).coro_clobber),
            );
        }
        loop {
            // SAFETY: as above.
            unsafe { suspend(link, 3) };
        }
    }

    #[test]
    fn callee_saved_registers_survive_both_ways() {
        // Rounding toward zero / toward -inf, and a 53-bit x87 precision, all non-default.
        let coro = Coro::new(
            64 * 1024,
            clobber_entry,
            Clobber {
                link: Link {
                    base: core::ptr::null_mut(),
                    coro: 0,
                },
                coro_kept: Regs::pattern(0xc0de, 0x3f80, 0x077f),
                coro_clobber: Regs::pattern(0xbad, 0x9f80, 0x027f),
            },
            cl_link,
        );
        let link = coro.link(cl_link);
        // SAFETY: fresh coroutine; it suspends with its patterns loaded.
        assert_eq!(unsafe { resume(link, 0) }, 1);
        let mut main_regs = Regs::pattern(0x5eed, 0x7f80, 0x0f7f);
        // SAFETY: the coroutine is suspended; `main_regs` outlives the call.
        let back = unsafe {
            switch_with_patterns(
                X86_64::root_slot((*link).base),
                (*link).coro,
                0,
                &mut main_regs,
            )
        };
        assert_eq!(back, 2);
        main_regs.assert_survived("main side");
        // SAFETY: suspended; main owns the shared state now.
        let shared = unsafe { &*coro.shared };
        shared.coro_kept.assert_survived("coroutine side");
        if cfg!(feature = "fp-control") {
            // Switched with the context: each side gets back the control words it set.
            main_regs.assert_fp_control_is(&main_regs, "main side");
            shared
                .coro_kept
                .assert_fp_control_is(&shared.coro_kept, "coroutine side");
        } else {
            // Thread-wide: each side sees what the other side set last.
            main_regs.assert_fp_control_is(&shared.coro_clobber, "main side");
            shared
                .coro_kept
                .assert_fp_control_is(&main_regs, "coroutine side");
        }
    }

    // ---- 4. frame-pointer walk -----------------------------------------------------------

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

    /// An entry that builds a frame record the way a frame-pointer prologue does and hands its
    /// address to `fp_walk_body`, so the test does not depend on how rustc was configured.
    // SAFETY: called by the trampoline as an EntryFn with rsp 16-aligned; push rbp realigns
    // rsp+8 so the inner call is aligned; never returns.
    #[unsafe(naked)]
    unsafe extern "C" fn fp_walk_entry(arg: usize, data: *mut u8) -> ! {
        naked_asm!(
            "push rbp",
            "mov rbp, rsp",
            "mov rdx, rbp",
            "call {body}",
            "ud2",
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

    #[test]
    fn frame_pointer_chain_reaches_the_resumer() {
        let coro = Coro::new(
            64 * 1024,
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
        let link = coro.link(fp_link);
        let marker = 0u8;
        // SAFETY: fresh coroutine on a live stack.
        unsafe { resume(link, 0) };
        // SAFETY: suspended; main owns the shared state now.
        let w = unsafe { &*coro.shared };
        // SAFETY: reading the root slot of a live stack.
        let (root, resumer) = unsafe {
            let slot = X86_64::root_slot((*link).base);
            (slot as usize, *slot)
        };
        assert!(
            coro.contains(w.records[0]),
            "first record is on the coroutine stack"
        );
        assert_eq!(
            w.records[1], root,
            "the entry's caller record is the root record"
        );
        assert_eq!(
            w.returns[1], w.returns[0],
            "root record names the trampoline's return site"
        );
        assert_eq!(
            w.records[2], resumer,
            "the root record links to the resumer's context"
        );
        assert!(
            !coro.contains(resumer),
            "resumer's record is not on the coroutine stack"
        );
        let here = addr_of!(marker) as usize;
        assert!(
            resumer.abs_diff(here) < 64 * 1024,
            "resumer's record {resumer:#x} is not on this test's stack (a local is at {here:#x})"
        );
    }

    // ---- 5. backtrace through the trampoline (CFI) ---------------------------------------

    struct Trace {
        link: Link,
        trace: Option<Backtrace>,
    }

    fn bt_link(p: *mut Trace) -> *mut Link {
        // SAFETY: p points to a live Trace; only the field address is computed.
        unsafe { addr_of_mut!((*p).link) }
    }

    unsafe extern "C" fn backtrace_entry(_arg: usize, data: *mut u8) -> ! {
        let t = data.cast::<Trace>();
        // SAFETY: main does not touch the shared state while we run.
        unsafe { (*t).trace = Some(Backtrace::force_capture()) };
        loop {
            // SAFETY: on the coroutine stack, resumed through its link.
            unsafe { suspend(bt_link(t), 0) };
        }
    }

    #[test]
    #[inline(never)]
    fn backtrace_continues_into_the_resumer() {
        let coro = Coro::new(
            256 * 1024,
            backtrace_entry,
            Trace {
                link: Link {
                    base: core::ptr::null_mut(),
                    coro: 0,
                },
                trace: None,
            },
            bt_link,
        );
        let link = coro.link(bt_link);
        // SAFETY: fresh coroutine on a live stack.
        unsafe { resume(link, 0) };
        // SAFETY: suspended; main owns the shared state now.
        let text: String = match unsafe { &(*coro.shared).trace } {
            Some(trace) => format!("{trace}"),
            None => String::new(),
        };
        assert!(
            text.contains("backtrace_entry"),
            "captured inside the coroutine:\n{text}"
        );
        assert!(
            text.contains("backtrace_continues_into_the_resumer"),
            "the unwinder did not cross the trampoline into the resumer:\n{text}"
        );
    }
}
