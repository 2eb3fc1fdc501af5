//! The alternate signal stack each thread that runs coroutines gets: 64 KiB behind a guard
//! page, shared by every handler that may run while a coroutine's stack is full or small
//! (the stack-overflow report, the latency sampler). The runtime calls [`ensure_altstack`]
//! on every thread it installs a scheduler on; the mapping is freed at thread exit.

use core::cell::RefCell;
use core::ptr;

/// Size of the alternate signal stack each thread gets: far more than the handler needs
/// (a few hundred bytes of locals plus the kernel's signal frame), so later handlers
/// that share it (latency sampling, where_all dumps) have room too.
const ALTSTACK_SIZE: usize = 64 * 1024;

/// This thread's alternate signal stack, unmapped at thread exit.
struct AltStack {
    /// Start of the mapping (a guard page, then ALTSTACK_SIZE usable bytes).
    mapping: *mut libc::c_void,
    len: usize,
    /// The usable part handed to sigaltstack.
    stack: *mut libc::c_void,
}

std::thread_local! {
    static ALTSTACK: RefCell<Option<AltStack>> = const { RefCell::new(None) };
}

/// Give the calling thread an alternate signal stack of 64 KiB (with a guard page), so
/// the overflow handler can run when the coroutine stack is full. Idempotent; keeps an
/// existing alternate stack that is at least as large. Call once on every thread that
/// runs coroutines on guarded stacks.
pub(crate) fn ensure_altstack() -> std::io::Result<()> {
    ALTSTACK
        .try_with(|slot| {
            if slot.borrow().is_some() {
                return Ok(());
            }
            // SAFETY: an all-zero stack_t is valid for sigaltstack to overwrite.
            let mut current: libc::stack_t = unsafe { core::mem::zeroed() };
            // SAFETY: querying only; `current` is valid for writes.
            if unsafe { libc::sigaltstack(ptr::null(), &mut current) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if current.ss_flags & libc::SS_DISABLE == 0 && current.ss_size >= ALTSTACK_SIZE {
                return Ok(());
            }
            let guard = super::page_size();
            let len = ALTSTACK_SIZE + guard;
            // SAFETY: a fresh anonymous mapping touches no existing memory; checked below.
            let mapping = unsafe {
                libc::mmap(
                    ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANON,
                    -1,
                    0,
                )
            };
            if mapping == libc::MAP_FAILED {
                return Err(std::io::Error::last_os_error());
            }
            // SAFETY: the guard page lies inside the mapping just created; `stack` is
            // the rest of it, which the kernel uses only while delivering a signal.
            let stack = unsafe {
                libc::mprotect(mapping, guard, libc::PROT_NONE);
                mapping.cast::<u8>().add(guard).cast::<libc::c_void>()
            };
            let new = libc::stack_t {
                ss_sp: stack,
                ss_flags: 0,
                ss_size: ALTSTACK_SIZE,
            };
            // SAFETY: `new` describes memory that stays mapped until AltStack's drop,
            // which first takes it out of use.
            if unsafe { libc::sigaltstack(&new, ptr::null_mut()) } != 0 {
                let error = std::io::Error::last_os_error();
                // SAFETY: the mapping was never handed to the kernel; unmap it whole.
                unsafe { libc::munmap(mapping, len) };
                return Err(error);
            }
            *slot.borrow_mut() = Some(AltStack {
                mapping,
                len,
                stack,
            });
            Ok(())
        })
        .unwrap_or_else(|_| {
            Err(std::io::Error::other(
                "the thread is exiting; no alternate signal stack installed",
            ))
        })
}

impl Drop for AltStack {
    fn drop(&mut self) {
        // SAFETY: an all-zero stack_t is valid for sigaltstack to overwrite.
        let mut current: libc::stack_t = unsafe { core::mem::zeroed() };
        // SAFETY: query, then disable the alternate stack only if it is still ours (the
        // standard library's thread teardown may already have disabled it).
        unsafe {
            libc::sigaltstack(ptr::null(), &mut current);
            if current.ss_sp == self.stack && current.ss_flags & libc::SS_DISABLE == 0 {
                let disable = libc::stack_t {
                    ss_sp: ptr::null_mut(),
                    ss_flags: libc::SS_DISABLE,
                    ss_size: ALTSTACK_SIZE,
                };
                libc::sigaltstack(&disable, ptr::null_mut());
            }
        }
        // SAFETY: the mapping is no longer the thread's signal stack; unmapped once.
        unsafe { libc::munmap(self.mapping, self.len) };
    }
}

/// Test support: the calling thread's alternate signal stack, `(start, size)`.
#[cfg(test)]
pub(crate) fn current_altstack() -> Option<(usize, usize)> {
    // SAFETY: an all-zero stack_t is valid for sigaltstack to overwrite.
    let mut current: libc::stack_t = unsafe { core::mem::zeroed() };
    // SAFETY: querying only; `current` is valid for writes.
    let rc = unsafe { libc::sigaltstack(ptr::null(), &mut current) };
    (rc == 0 && current.ss_flags & libc::SS_DISABLE == 0)
        .then_some((current.ss_sp as usize, current.ss_size))
}
