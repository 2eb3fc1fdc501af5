//! The interrupted registers a signal handler's `ucontext_t` holds that the latency
//! sampler and the crash dump need: program counter, frame pointer, stack pointer and (on
//! ISAs with one) the link register. Each OS and ISA names them differently; unknown
//! combinations return `None` (no sample).

/// Registers of the interrupted code.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Regs {
    /// Program counter.
    pub pc: usize,
    /// Frame pointer (rbp / x29).
    pub fp: usize,
    /// Stack pointer.
    pub sp: usize,
    /// Link register (aarch64 x30): the return address of a leaf function.
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
