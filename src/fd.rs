//! Non-blocking fds driven by the scheduler: try the syscall, wait on `EAGAIN`, try again.
//!
//! [`wait_readable`] and [`wait_writable`] are the raw waits (Shrapnel's `wait_for_read` /
//! `wait_for_write`); [`close`] deregisters an fd and wakes whoever waits on it with a
//! "closed" error before closing it. `OwnedFd` is the socket types' shared core.

use std::cell::Cell;
use std::io;
use std::os::fd::RawFd;

use shrapnel_core::io::{self as core_io, Direction};

/// Wait until `fd` is readable. The fd must be non-blocking and stay open until
/// [`close`] (or [`forget`]) is called for it; a second coroutine waiting for the same fd and
/// direction gets an error naming both.
#[track_caller]
pub fn wait_readable(fd: RawFd) -> io::Result<()> {
    core_io::wait(fd, Direction::Read).map_err(io::Error::from)
}

/// Wait until `fd` is writable. See [`wait_readable`].
#[track_caller]
pub fn wait_writable(fd: RawFd) -> io::Result<()> {
    core_io::wait(fd, Direction::Write).map_err(io::Error::from)
}

/// Stop watching `fd` (waking its waiters with a "closed" error) without closing it.
pub fn forget(fd: RawFd) {
    core_io::close(fd);
}

/// Wake `fd`'s waiters with a "closed" error, deregister it and close it.
pub fn close(fd: RawFd) -> io::Result<()> {
    core_io::close(fd);
    // SAFETY: the caller owns fd; it is no longer registered with the poller.
    if unsafe { libc::close(fd) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A non-blocking fd owned by one of the socket types; closable through `&self` so one
/// coroutine can close a socket another is blocked on.
#[derive(Debug)]
pub(crate) struct OwnedFd {
    fd: Cell<RawFd>,
}

fn is_would_block(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EAGAIN)) || e.kind() == io::ErrorKind::WouldBlock
}

impl OwnedFd {
    pub(crate) fn new(fd: RawFd) -> Self {
        OwnedFd { fd: Cell::new(fd) }
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.fd.get()
    }

    pub(crate) fn get(&self) -> io::Result<RawFd> {
        match self.fd.get() {
            -1 => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the socket was closed",
            )),
            fd => Ok(fd),
        }
    }

    /// Run `op` until it does not report `EAGAIN`, waiting for `dir` in between.
    #[track_caller]
    pub(crate) fn io<T>(
        &self,
        dir: Direction,
        mut op: impl FnMut(RawFd) -> io::Result<T>,
    ) -> io::Result<T> {
        loop {
            let fd = self.get()?;
            match op(fd) {
                Ok(v) => {
                    shrapnel_core::selfish_act();
                    return Ok(v);
                }
                Err(e) if is_would_block(&e) => match core_io::wait(fd, dir) {
                    Ok(()) => continue,
                    Err(shrapnel_core::io::IoError::Closed { fd }) => {
                        return Err(io::Error::new(
                            io::ErrorKind::NotConnected,
                            format!(
                            "fd {fd} was closed by another coroutine while this one waited on it"
                        ),
                        ))
                    }
                    Err(e) => return Err(e.into()),
                },
                Err(e)
                    if e.kind() == io::ErrorKind::Interrupted
                        && e.raw_os_error() == Some(libc::EINTR) =>
                {
                    continue
                }
                Err(e) => return Err(e),
            }
        }
    }

    #[track_caller]
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io(Direction::Read, |fd| {
            // SAFETY: reads into a live, writable slice of the given length.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        })
    }

    #[track_caller]
    pub(crate) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        self.io(Direction::Write, |fd| {
            // SAFETY: writes from a live slice of the given length.
            let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        })
    }

    /// Close now; waiters wake with a "closed" error. Idempotent.
    pub(crate) fn close(&self) -> io::Result<()> {
        let fd = self.fd.replace(-1);
        if fd < 0 {
            return Ok(());
        }
        crate::net::forget_socket(fd);
        close(fd)
    }
}

impl Drop for OwnedFd {
    fn drop(&mut self) {
        let _ = self.close();
    }
}
