//! Operating systems other than Linux: no per-process mapping limit worth reporting.
//!
//! macOS and the BSDs have no counterpart of Linux's `vm.max_map_count`, so a failed stack
//! mapping there is reported as a lack of memory or address space, and a guard page is a
//! `PROT_NONE` mapping of its own.

use super::Advice;

/// The per-process mapping limit: none to report on this OS.
pub(crate) fn max_map_count() -> Option<usize> {
    None
}

/// How many mappings this process has: not known on this OS.
pub(crate) fn map_count() -> Option<usize> {
    None
}

/// Apply `advice` to `len` bytes at each of `starts`: `EINVAL` for a guard (not in place
/// here), nothing to do for populating, one `madvise(MADV_FREE)` per range to discard.
///
/// # Safety
/// Each range must be page aligned, inside a private anonymous mapping the caller owns, and
/// hold nothing anyone will read again.
pub(crate) unsafe fn advise_pages(starts: &[usize], len: usize, advice: Advice) -> Result<(), i32> {
    match advice {
        Advice::Guard => Err(libc::EINVAL),
        Advice::Populate => Ok(()),
        Advice::Discard => {
            for &start in starts {
                // SAFETY: the caller's contract covers this range.
                if unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_FREE) } != 0 {
                    return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
                }
            }
            Ok(())
        }
    }
}

/// A one-shot announcement another thread can make and a coroutine can wait for: a pipe
/// (both ends non-blocking and close-on-exec): `(read end, write end)`.
pub(crate) fn announcement() -> std::io::Result<(i32, i32)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe writes; the result is checked.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    for fd in fds {
        // SAFETY: fcntl on descriptors just created and owned here.
        unsafe {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            let flags = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
    }
    Ok((fds[0], fds[1]))
}

/// Make the announcement on the writing end `fd` (async-signal-safe, any thread).
pub(crate) fn announce(fd: i32) {
    // SAFETY: writes one byte from a local that lives across the call.
    let _ = unsafe { libc::write(fd, b"!".as_ptr().cast(), 1) };
}

/// Test support: running a function on a given stack is not available here.
#[cfg(test)]
pub(crate) fn run_on_stack(limit: *mut u8, size: usize, f: extern "C" fn()) -> bool {
    let _ = (limit, size, f);
    false
}

/// Pinning threads is implemented for Linux only.
pub(crate) fn pin_this_thread(cpu: usize) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        format!("pinning a scheduler to CPU {cpu} is implemented on Linux only"),
    ))
}

/// The CPU profiler's per-thread CPU-time timer: Linux only for now (timer_create with
/// SIGEV_THREAD_ID); elsewhere `start` says so.
pub(crate) struct ThreadCpuTimer;

impl Drop for ThreadCpuTimer {
    /// Nothing to delete (none is ever made); here so that dropping one means the same on
    /// every OS.
    fn drop(&mut self) {}
}

impl ThreadCpuTimer {
    pub(crate) fn start(
        _signal: libc::c_int,
        _period: std::time::Duration,
    ) -> std::io::Result<Self> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "the CPU profiler's per-thread CPU timer is implemented on Linux only",
        ))
    }
}

/// The crash dump's signal to the other scheduler threads: Linux only for now (elsewhere
/// they are not dumped, and the dump says so).
pub(crate) fn peer_dump_signal() -> Option<libc::c_int> {
    None
}

/// This thread's id for `signal_thread` (none here: `peer_dump_signal` is `None`).
pub(crate) fn thread_id() -> i64 {
    0
}

/// Not used where `peer_dump_signal` is `None`.
pub(crate) fn signal_thread(_tid: i64, _sig: libc::c_int) -> bool {
    false
}
