//! The interrupted registers a signal handler's `ucontext_t` holds that the latency
//! sampler and the crash dump need: program counter, frame pointer, stack pointer and (on
//! ISAs with one) the link register. Each OS and ISA names them differently; unknown
//! combinations return `None` (no sample).

/// Registers of the interrupted code.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Regs {
    /// Program counter.
    pub pc: usize,
    /// Frame pointer (rbp / x29 / s0): on RISC-V its record lies two words below it
    /// (`ContextSwitch::FP_ABOVE_RECORD`).
    pub fp: usize,
    /// Stack pointer.
    pub sp: usize,
    /// Link register (aarch64 x30, RISC-V ra): the return address of a leaf function.
    pub lr: Option<usize>,
}

use core::ffi::c_void;

/// The interrupted code's registers.
///
/// # Safety
/// `uc` must be the third argument of an `SA_SIGINFO` signal handler that is running now.
pub(crate) unsafe fn regs(uc: *mut c_void) -> Option<Regs> {
    if uc.is_null() {
        return None;
    }
    let uc = uc.cast::<libc::ucontext_t>();
    cfg_if::cfg_if! {
        if #[cfg(all(target_os = "linux", target_arch = "x86_64"))] {
            // SAFETY: per the contract, uc points at the kernel-written context.
            let g = unsafe { &(*uc).uc_mcontext.gregs };
            Some(Regs {
                pc: g[libc::REG_RIP as usize] as usize,
                fp: g[libc::REG_RBP as usize] as usize,
                sp: g[libc::REG_RSP as usize] as usize,
                lr: None,
            })
        } else if #[cfg(all(target_os = "linux", target_arch = "aarch64"))] {
            // SAFETY: as above.
            let m = unsafe { &(*uc).uc_mcontext };
            Some(Regs { pc: m.pc as usize, fp: m.regs[29] as usize, sp: m.sp as usize, lr: Some(m.regs[30] as usize) })
        } else if #[cfg(all(target_os = "linux", target_arch = "riscv64"))] {
            // SAFETY: as above; glibc's mcontext_t is `__gregs[32]` indexed by REG_PC (0),
            // REG_RA, REG_SP, REG_S0 (sys/ucontext.h), then the FP state.
            let g = unsafe { &(*uc).uc_mcontext.__gregs };
            Some(Regs {
                pc: g[libc::REG_PC] as usize,
                fp: g[libc::REG_S0] as usize,
                sp: g[libc::REG_SP] as usize,
                lr: Some(g[libc::REG_RA] as usize),
            })
        } else if #[cfg(all(target_os = "freebsd", target_arch = "x86_64"))] {
            // SAFETY: as above.
            let m = unsafe { &(*uc).uc_mcontext };
            Some(Regs { pc: m.mc_rip as usize, fp: m.mc_rbp as usize, sp: m.mc_rsp as usize, lr: None })
        } else if #[cfg(all(target_os = "macos", target_arch = "aarch64"))] {
            // SAFETY: as above; on macOS uc_mcontext points at the saved thread state.
            let ss = unsafe { &(*(*uc).uc_mcontext).__ss };
            Some(Regs { pc: ss.__pc as usize, fp: ss.__fp as usize, sp: ss.__sp as usize, lr: Some(ss.__lr as usize) })
        } else if #[cfg(all(target_os = "macos", target_arch = "x86_64"))] {
            // SAFETY: as above.
            let ss = unsafe { &(*(*uc).uc_mcontext).__ss };
            Some(Regs { pc: ss.__rip as usize, fp: ss.__rbp as usize, sp: ss.__rsp as usize, lr: None })
        } else {
            let _ = uc;
            None
        }
    }
}

/// Where the return address of the function executing at `pc` is, when that instruction
/// runs outside the function's frame record: at the first instructions of the prologue
/// (`push rbp; mov rbp, rsp` or `stp x29, x30, [sp, #-n]!; mov x29, sp` not yet run; on
/// RISC-V up to `addi s0, sp, n`) or at the return instruction (the record already popped). The frame-pointer register then
/// still names the caller's record, so a frame-pointer walk skips the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OutsideRecord {
    /// At the stack pointer (x86_64: before `push rbp`, or at `ret`).
    AtSp,
    /// One word above the stack pointer (x86_64: after `push rbp`, before `mov rbp, rsp`).
    AboveSp,
    /// In the link register (aarch64 x30, RISC-V ra).
    InLr,
}

/// Whether the instruction at `pc` runs outside its function's frame record, and where
/// the return address is then. Read from the code itself (the symbolizer gives no
/// function start addresses); only the page holding `pc` is read. Async-signal-safe.
pub(crate) fn outside_frame_record(pc: usize) -> Option<OutsideRecord> {
    // (The latency sampler calls this after the fact; the profiler from its handler.)
    const PAGE: usize = 4096;
    // Bytes of the page holding `pc`, or None past it: that page is mapped and readable (the
    // thread was executing `pc` when it was interrupted; text is mapped read-execute and
    // stays mapped while the program runs), its neighbours need not be.
    let byte = |at: usize| -> Option<u8> {
        (at / PAGE == pc / PAGE).then(|| {
            // SAFETY: `at` is in the same page as an instruction that was executing, which
            // is mapped readable (above).
            unsafe { core::ptr::read_volatile(at as *const u8) }
        })
    };
    let bytes_at = |at: usize, pat: &[u8]| {
        pat.iter()
            .enumerate()
            .all(|(i, &b)| byte(at.wrapping_add(i)) == Some(b))
    };
    if cfg!(target_arch = "x86_64") {
        const PUSH_RBP: &[u8] = &[0x55];
        const MOV_RBP_RSP: &[u8] = &[0x48, 0x89, 0xe5];
        if bytes_at(pc, PUSH_RBP) && bytes_at(pc + 1, MOV_RBP_RSP) {
            return Some(OutsideRecord::AtSp);
        }
        if bytes_at(pc, MOV_RBP_RSP) && bytes_at(pc.wrapping_sub(1), PUSH_RBP) {
            return Some(OutsideRecord::AboveSp);
        }
        matches!(byte(pc), Some(0xc3 | 0xc2)).then_some(OutsideRecord::AtSp)
    } else if cfg!(target_arch = "aarch64") && pc.is_multiple_of(4) {
        // No allocation: this runs in signal handlers.
        let word = |at: usize| -> Option<u32> {
            let mut b = [0u8; 4];
            for (i, slot) in b.iter_mut().enumerate() {
                *slot = byte(at.wrapping_add(i))?;
            }
            Some(u32::from_le_bytes(b))
        };
        // stp x29, x30, [sp, #imm]! (pre-indexed, any offset); mov x29, sp; ret.
        let is_stp_fp_lr = |w: Option<u32>| w.is_some_and(|w| w & 0xffc0_7fff == 0xa980_7bfd);
        const MOV_FP_SP: u32 = 0x9100_03fd;
        const RET: u32 = 0xd65f_03c0;
        let insn = word(pc);
        let outside = is_stp_fp_lr(insn)
            || (insn == Some(MOV_FP_SP) && is_stp_fp_lr(word(pc.wrapping_sub(4))))
            || insn == Some(RET);
        outside.then_some(OutsideRecord::InLr)
    } else if cfg!(any(target_arch = "riscv64", target_arch = "riscv32")) && pc.is_multiple_of(2) {
        riscv_outside_frame_record(|i| byte(pc.wrapping_add(i))).then_some(OutsideRecord::InLr)
    } else {
        None
    }
}

/// [`outside_frame_record`] for RISC-V, given the bytes from the program counter on. The
/// frame-pointer prologue is `addi sp, sp, -n; sd ra, ..(sp); sd s0, ..(sp); addi s0, sp, n`
/// (`sw` on RV32, any of them compressed) and the epilogue reloads ra and s0, then
/// `addi sp, sp, n; ret`: s0 names this function's record only from the end of the
/// prologue to the reload of s0. At those instructions the caller's return address is in ra.
/// (A reload of ra after s0's is not recognized.) No allocation: this runs in signal handlers.
fn riscv_outside_frame_record(byte: impl Fn(usize) -> Option<u8>) -> bool {
    const SP: u32 = 2;
    const RA: u32 = 1;
    const S0: u32 = 8;
    let (Some(b0), Some(b1)) = (byte(0), byte(1)) else {
        return false;
    };
    let half = u32::from(u16::from_le_bytes([b0, b1]));
    if half & 3 != 3 {
        // A compressed instruction. sp moves by c.addi16sp, or by c.addi when the
        // adjustment fits six bits (a frame of 32 bytes: `c.addi sp, -32`).
        let c_addi16sp = half & 0xef83 == 0x6101;
        let c_addi_sp = half & 0xe003 == 0x0001 && (half >> 7) & 0x1f == SP;
        let c_store_sp = if cfg!(target_pointer_width = "64") {
            half & 0xe003 == 0xe002 // c.sdsp
        } else {
            half & 0xe003 == 0xc002 // c.swsp
        };
        let c_store_rs2 = (half >> 2) & 0x1f;
        // c.addi4spn s0, sp, n: rd' = 0 names x8.
        let c_addi4spn_s0 = half & 0xe003 == 0 && (half >> 2) & 7 == 0 && (half >> 5) & 0xff != 0;
        const C_RET: u32 = 0x8082; // c.jr ra
        return c_addi16sp
            || c_addi_sp
            || (c_store_sp && matches!(c_store_rs2, RA | S0))
            || c_addi4spn_s0
            || half == C_RET;
    }
    let (Some(b2), Some(b3)) = (byte(2), byte(3)) else {
        return false;
    };
    let word = u32::from_le_bytes([b0, b1, b2, b3]);
    let (opcode, rd, funct3, rs1, rs2) = (
        word & 0x7f,
        (word >> 7) & 0x1f,
        (word >> 12) & 7,
        (word >> 15) & 0x1f,
        (word >> 20) & 0x1f,
    );
    let addi = opcode == 0x13 && funct3 == 0;
    let store_width = if cfg!(target_pointer_width = "64") {
        3
    } else {
        2
    };
    let store = opcode == 0x23 && funct3 == store_width;
    const RET: u32 = 0x0000_8067; // jalr x0, 0(ra)
    (addi && rd == SP && rs1 == SP)
        || (store && rs1 == SP && matches!(rs2, RA | S0))
        || (addi && rd == S0 && rs1 == SP)
        || word == RET
}
