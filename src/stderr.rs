//! The saved stderr: a dup of fd 2 taken when the runtime starts, written with write(2)
//! and no allocation, so debug output reaches the real stderr even after fd 1/2 have been
//! redirected (a backdoor session, a test harness). Errors are swallowed, as Shrapnel does.

use std::os::fd::RawFd;
use std::sync::OnceLock;

use shrapnel_core::sink::DebugSink;

static SAVED: OnceLock<RawFd> = OnceLock::new();

/// The process's saved stderr.
#[derive(Clone, Copy)]
pub struct SavedStderr(RawFd);

impl SavedStderr {
    /// The saved fd, duplicating fd 2 (close-on-exec) the first time.
    pub fn get() -> SavedStderr {
        SavedStderr(*SAVED.get_or_init(|| {
            // SAFETY: F_DUPFD_CLOEXEC duplicates fd 2 (or fails with -1) and touches no memory.
            let fd = unsafe { libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 3) };
            if fd < 0 {
                2
            } else {
                fd
            }
        }))
    }

    /// The fd written to.
    pub fn fd(&self) -> RawFd {
        self.0
    }
}

impl DebugSink for SavedStderr {
    fn write(&self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            // SAFETY: writes from a live slice; the fd is ours for the life of the process.
            let n = unsafe { libc::write(self.0, bytes.as_ptr().cast(), bytes.len()) };
            if n > 0 {
                bytes = &bytes[n as usize..];
            } else if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            } else {
                return; // disk full, closed, ...: swallowed
            }
        }
    }
}

/// Write `s` verbatim to the saved stderr (Shrapnel's `write_stderr`).
pub fn write_stderr(s: &str) {
    SavedStderr::get().write(s.as_bytes());
}
