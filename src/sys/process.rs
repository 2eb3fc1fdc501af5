//! How each OS tells a program that its child has exited, as an fd the poller can wait
//! on: a pidfd on Linux (5.3 and later), a private kqueue with an `EVFILT_PROC`/`NOTE_EXIT`
//! registration on the kqueue systems (a kqueue fd is readable while it has an event).
//! Elsewhere, and on older Linux kernels, there is none and `process.rs` waits on the
//! blocking pool with [`wait_exited_keeping_zombie`].

use std::io;
use std::os::fd::RawFd;

/// An fd that becomes readable when `pid` exits, close-on-exec; `Ok(None)` if this system
/// has no such fd (or `pid` is already gone, so there is nothing to wait for).
pub(crate) fn exit_fd(pid: libc::pid_t) -> io::Result<Option<RawFd>> {
    cfg_if::cfg_if! {
        if #[cfg(any(target_os = "linux", target_os = "android"))] {
            // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; it has
            // no memory arguments.
            let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
            if fd >= 0 {
                return Ok(Some(fd as RawFd));
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                // Kernel before 5.3, or a seccomp filter that refuses it.
                Some(libc::ENOSYS) | Some(libc::EPERM) => Ok(None),
                Some(libc::ESRCH) => Ok(None),
                _ => Err(e),
            }
        } else if #[cfg(kqueue_os)] {
            // SAFETY: kqueue() takes no arguments and returns a new fd or -1.
            let kq = unsafe { libc::kqueue() };
            if kq < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: fcntl on the fd just created.
            unsafe { libc::fcntl(kq, libc::F_SETFD, libc::FD_CLOEXEC) };
            // SAFETY: an all-zero kevent is a valid value of this plain C struct.
            let mut change: libc::kevent = unsafe { core::mem::zeroed() };
            change.ident = pid as _;
            change.filter = libc::EVFILT_PROC;
            change.flags = libc::EV_ADD | libc::EV_ONESHOT;
            change.fflags = libc::NOTE_EXIT;
            // SAFETY: one change from a live kevent, no event list, no timeout pointer.
            let rc = unsafe {
                libc::kevent(kq, &change, 1, core::ptr::null_mut(), 0, core::ptr::null())
            };
            if rc < 0 {
                let e = io::Error::last_os_error();
                // SAFETY: closing the kqueue created above, known to nobody else.
                unsafe { libc::close(kq) };
                // ESRCH: it has already exited (the caller reaps it at once).
                return if e.raw_os_error() == Some(libc::ESRCH) { Ok(None) } else { Err(e) };
            }
            Ok(Some(kq))
        } else {
            let _ = pid;
            Ok(None)
        }
    }
}

/// Block the calling OS thread until `pid` has exited, without reaping it (`waitid` with
/// `WNOWAIT`), so the exit status stays for the coroutine that reaps it — also when that
/// coroutine stopped waiting (an interruption) while this thread still waited.
pub(crate) fn wait_exited_keeping_zombie(pid: libc::pid_t) -> io::Result<()> {
    loop {
        // SAFETY: an all-zero siginfo_t is a valid value for waitid to fill.
        let mut info: libc::siginfo_t = unsafe { core::mem::zeroed() };
        // SAFETY: waitid writes into the live `info`.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}
