//! Linux: the memory-mapping limit behind most "cannot allocate a stack" failures.
//!
//! Every guarded stack is two mappings (the `PROT_NONE` guard and the usable part), and the
//! kernel caps mappings per process at `vm.max_map_count` (65530 by default), so a process
//! reaches that cap near 32k guarded stacks, long before memory runs out.

use std::fs::File;
use std::io::Read;

/// The per-process mapping limit, `vm.max_map_count`, if it can be read.
pub(crate) fn max_map_count() -> Option<usize> {
    let mut text = String::new();
    File::open("/proc/sys/vm/max_map_count")
        .and_then(|mut file| file.read_to_string(&mut text))
        .ok()?;
    text.trim().parse().ok()
}

/// How many mappings this process has now: the lines of `/proc/self/maps`.
///
/// Only called after an allocation failed, to tell the mapping limit from a lack of memory;
/// it reads the file through one reused buffer rather than holding it all. The buffer is on
/// the heap because the caller may be a coroutine with a small stack.
pub(crate) fn map_count() -> Option<usize> {
    let mut file = File::open("/proc/self/maps").ok()?;
    let mut buf = vec![0u8; 16 * 1024];
    let mut lines = 0;
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Some(lines),
            Ok(n) => lines += buf[..n].iter().filter(|&&b| b == b'\n').count(),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// Test support: call `f` on the stack `[limit, limit + size)` with `ucontext`, returning
/// when `f` returns; `false` where the C library has no `makecontext`.
#[cfg(test)]
pub(crate) fn run_on_stack(limit: *mut u8, size: usize, f: extern "C" fn()) -> bool {
    cfg_if::cfg_if! {
        if #[cfg(target_env = "gnu")] {
            use core::mem::MaybeUninit;
            let mut caller = MaybeUninit::<libc::ucontext_t>::zeroed();
            let mut callee = MaybeUninit::<libc::ucontext_t>::zeroed();
            // SAFETY: both contexts are valid for writes; getcontext initializes `callee`
            // before makecontext reads it; the stack region is owned by the caller, writable
            // and large enough; `caller` outlives the swap because this frame waits in
            // swapcontext until `f` returns through `uc_link`.
            unsafe {
                if libc::getcontext(callee.as_mut_ptr()) != 0 {
                    return false;
                }
                let callee = callee.assume_init_mut();
                callee.uc_stack.ss_sp = limit.cast();
                callee.uc_stack.ss_size = size;
                callee.uc_link = caller.as_mut_ptr();
                libc::makecontext(callee, f, 0);
                libc::swapcontext(caller.as_mut_ptr(), callee) == 0
            }
        } else {
            let _ = (limit, size, f);
            false
        }
    }
}
