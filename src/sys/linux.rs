//! Linux: the memory-mapping limit behind most "cannot allocate a stack" failures.
//!
//! A guard page made with `mprotect(PROT_NONE)` splits its mapping, so such a stack is two
//! mappings, and the kernel caps mappings per process at `vm.max_map_count` (65530 by
//! default): near 32k guarded stacks, long before memory runs out. Since 6.13 a guard page
//! can be made in place (`MADV_GUARD_INSTALL`), which costs no mapping; `advise_pages` does
//! that (and the rest of a slab's page work) for many pages in one system call.

use std::fs::File;
use std::io::Read;

use super::Advice;

/// The per-process mapping limit, `vm.max_map_count`, if it can be read.
pub(crate) fn max_map_count() -> Option<usize> {
    let mut text = String::new();
    File::open("/proc/sys/vm/max_map_count")
        .and_then(|mut file| file.read_to_string(&mut text))
        .ok()?;
    text.trim().parse().ok()
}

/// `MADV_GUARD_INSTALL` (Linux 6.13): turn pages of a private anonymous mapping into guard
/// pages without splitting it (the kernel keeps the markers in the page tables, and
/// `MADV_DONTNEED` leaves them in place).
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// `MADV_POPULATE_WRITE` (Linux 5.14): commit pages now, as writes would, without taking a
/// fault per page.
const MADV_POPULATE_WRITE: libc::c_int = 23;

/// `PIDFD_SELF` (Linux 6.14): "this process" for the pidfd system calls, with no descriptor
/// to open (and none to go stale across fork).
const PIDFD_SELF: libc::c_int = -10000;

/// Apply `advice` to `len` bytes at each of `starts`, in one `process_madvise` system call
/// per 64 ranges where the kernel takes it (Linux 6.14 for this process's own memory), else
/// one `madvise` each. `Err(errno)` of the first refusal.
///
/// # Safety
/// Each range must be page aligned, inside a private anonymous mapping the caller owns, and
/// hold nothing anyone will read again (a guard discards the contents).
pub(crate) unsafe fn advise_pages(starts: &[usize], len: usize, advice: Advice) -> Result<(), i32> {
    let advice = match advice {
        Advice::Guard => MADV_GUARD_INSTALL,
        Advice::Populate => MADV_POPULATE_WRITE,
        Advice::Discard => libc::MADV_DONTNEED,
    };
    for batch in starts.chunks(64) {
        let mut iov = [libc::iovec {
            iov_base: core::ptr::null_mut(),
            iov_len: 0,
        }; 64];
        for (entry, &start) in iov.iter_mut().zip(batch) {
            entry.iov_base = start as *mut libc::c_void;
            entry.iov_len = len;
        }
        // SAFETY: `iov` holds `batch.len()` valid entries; the caller's contract covers
        // every range they name.
        let done = unsafe {
            libc::syscall(
                libc::SYS_process_madvise,
                PIDFD_SELF,
                iov.as_ptr(),
                batch.len(),
                advice,
                0,
            )
        };
        if done == (batch.len() * len) as libc::c_long {
            continue;
        }
        // An older kernel, or a partial run: the rest one by one (advising a range twice
        // is harmless for each of these advices).
        for &start in batch {
            // SAFETY: the caller's contract covers this range.
            if unsafe { libc::madvise(start as *mut libc::c_void, len, advice) } != 0 {
                return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
            }
        }
    }
    Ok(())
}

/// A one-shot announcement another thread can make and a coroutine can wait for: an
/// `eventfd` (non-blocking, close-on-exec), both the end to wait on and the end to write.
pub(crate) fn announcement() -> std::io::Result<(i32, i32)> {
    // SAFETY: eventfd takes no pointers; the result is checked.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((fd, fd))
}

/// Make the announcement on the writing end `fd` (async-signal-safe, any thread).
pub(crate) fn announce(fd: i32) {
    let one: u64 = 1;
    // SAFETY: writes the 8 bytes of `one`, which lives across the call, to an eventfd.
    let _ = unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
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

/// glibc's ucontext functions: the libc crate binds them for the other glibc targets, not
/// for riscv64, where glibc has them too (with the `ucontext_t` the libc crate defines).
#[cfg(all(test, target_env = "gnu", target_arch = "riscv64"))]
mod ucontext {
    unsafe extern "C" {
        pub fn getcontext(ucp: *mut libc::ucontext_t) -> libc::c_int;
        pub fn makecontext(
            ucp: *mut libc::ucontext_t,
            func: extern "C" fn(),
            argc: libc::c_int,
            ...
        );
        pub fn swapcontext(
            oucp: *mut libc::ucontext_t,
            ucp: *const libc::ucontext_t,
        ) -> libc::c_int;
    }
}
#[cfg(all(test, target_env = "gnu", not(target_arch = "riscv64")))]
use libc as ucontext;

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
                if ucontext::getcontext(callee.as_mut_ptr()) != 0 {
                    return false;
                }
                let callee = callee.assume_init_mut();
                callee.uc_stack.ss_sp = limit.cast();
                callee.uc_stack.ss_size = size;
                callee.uc_link = caller.as_mut_ptr();
                ucontext::makecontext(callee, f, 0);
                ucontext::swapcontext(caller.as_mut_ptr(), callee) == 0
            }
        } else {
            let _ = (limit, size, f);
            false
        }
    }
}

/// Pin the calling thread to CPU `cpu` (sched_setaffinity).
pub(crate) fn pin_this_thread(cpu: usize) -> std::io::Result<()> {
    // SAFETY: an all-zero cpu_set_t is the empty set; CPU_SET writes inside it (the index
    // is checked against its size first).
    unsafe {
        let mut set: libc::cpu_set_t = core::mem::zeroed();
        if cpu >= 8 * core::mem::size_of::<libc::cpu_set_t>() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("CPU {cpu} is beyond what a cpu_set_t holds"),
            ));
        }
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A timer that sends `signal` to the calling thread each time it has used `period` of
/// CPU time (`timer_create` on `CLOCK_THREAD_CPUTIME_ID`, delivered with
/// `SIGEV_THREAD_ID`): the CPU profiler's clock, which ticks only while the thread runs,
/// so an idle scheduler is not sampled. Deleted on drop.
pub(crate) struct ThreadCpuTimer(libc::timer_t);

impl ThreadCpuTimer {
    pub(crate) fn start(signal: libc::c_int, period: std::time::Duration) -> std::io::Result<Self> {
        // SAFETY: an all-zero sigevent is a valid value of this C struct; the fields that
        // matter are set below.
        let mut ev: libc::sigevent = unsafe { core::mem::zeroed() };
        ev.sigev_notify = libc::SIGEV_THREAD_ID;
        ev.sigev_signo = signal;
        // SAFETY: gettid has no preconditions.
        ev.sigev_notify_thread_id = unsafe { libc::gettid() };
        let mut timer: libc::timer_t = core::ptr::null_mut();
        // SAFETY: `ev` and `timer` are valid for the call; the clock is this thread's CPU
        // clock and the event targets this thread.
        if unsafe { libc::timer_create(libc::CLOCK_THREAD_CPUTIME_ID, &mut ev, &mut timer) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let it = libc::timespec {
            tv_sec: period.as_secs() as libc::time_t,
            tv_nsec: period.subsec_nanos() as libc::c_long,
        };
        let spec = libc::itimerspec {
            it_interval: it,
            it_value: it,
        };
        // SAFETY: `timer` was just created; `spec` is a valid itimerspec.
        if unsafe { libc::timer_settime(timer, 0, &spec, core::ptr::null_mut()) } != 0 {
            let e = std::io::Error::last_os_error();
            // SAFETY: deleting the timer created above, once.
            unsafe { libc::timer_delete(timer) };
            return Err(e);
        }
        Ok(ThreadCpuTimer(timer))
    }
}

impl Drop for ThreadCpuTimer {
    fn drop(&mut self) {
        // SAFETY: the timer was created by `start` and is deleted once, here.
        unsafe { libc::timer_delete(self.0) };
    }
}

/// The signal the crash dump sends the process's other scheduler threads so each prints its
/// own coroutines: a real-time signal the runtime keeps for this (the C library takes the
/// first few for itself, so counted from SIGRTMIN).
pub(crate) fn peer_dump_signal() -> Option<libc::c_int> {
    Some(libc::SIGRTMIN() + 6)
}

/// This thread's kernel id, for [`signal_thread`].
pub(crate) fn thread_id() -> i64 {
    // SAFETY: gettid has no preconditions.
    i64::from(unsafe { libc::gettid() })
}

/// Send `sig` to thread `tid` of this process. Async-signal-safe: one tgkill(2) system
/// call (not pthread_kill, which may take a lock).
pub(crate) fn signal_thread(tid: i64, sig: libc::c_int) -> bool {
    // SAFETY: tgkill takes plain integers; a thread that has exited gives ESRCH.
    unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, sig) == 0 }
}
