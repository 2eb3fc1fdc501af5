//! Non-blocking fds driven by the scheduler: try the syscall, wait on `EAGAIN`, try again.
//!
//! [`wait_readable`] and [`wait_writable`] are the raw waits (Shrapnel's `wait_for_read` /
//! `wait_for_write`); [`close`] deregisters an fd and wakes whoever waits on it with a
//! "closed" error before closing it. `OwnedFd` is the socket types' shared core.
//!
//! An fd belongs to the scheduler of the thread that waits on it: its registration lives
//! in that thread's table. The socket types are therefore `!Send` (move one with
//! `into_std`, which deregisters it, and `from_std` on the other thread), and every fd they
//! create is announced to the table ([`shrapnel_core::io::opened`]), so a number left
//! behind by an fd closed outside the runtime is never trusted. The raw waits name the
//! open file (device and inode) for the same reason.

use std::cell::Cell;
use std::io;
use std::marker::PhantomData;
use std::os::fd::RawFd;
use std::time::Duration;

use shrapnel_core::io::{self as core_io, Direction};

/// Wait until `fd` is readable. The fd must be non-blocking and stay open until
/// [`close`] (or [`forget`]) is called for it; a second coroutine waiting for the same fd and
/// direction gets an error naming both.
///
/// An fd closed without [`close`] or [`forget`] (a std socket dropped) cannot hang a later
/// wait on another file that gets the same number: each wait names the open file behind
/// the number (one `fstat`), and a registration made for another file is renewed.
#[track_caller]
pub fn wait_readable(fd: RawFd) -> io::Result<()> {
    core_io::wait_identified(fd, Direction::Read, file_identity(fd)).map_err(io::Error::from)
}

/// Wait until `fd` is writable. See [`wait_readable`].
#[track_caller]
pub fn wait_writable(fd: RawFd) -> io::Result<()> {
    core_io::wait_identified(fd, Direction::Write, file_identity(fd)).map_err(io::Error::from)
}

/// A non-zero number naming the open file behind `fd` (its device and inode), or 0 if it
/// cannot be had (the wait then reports the fd's own error).
fn file_identity(fd: RawFd) -> u64 {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat writes a whole `stat` into the buffer when it returns 0, and only
    // then is it read.
    if unsafe { libc::fstat(fd, st.as_mut_ptr()) } != 0 {
        return 0;
    }
    // SAFETY: initialised by the successful fstat above.
    let st = unsafe { st.assume_init() };
    #[allow(clippy::unnecessary_cast)] // their types differ between the OSes
    let ident = (st.st_ino as u64) ^ (st.st_dev as u64).rotate_left(40);
    ident.max(1)
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
/// coroutine can close a socket another is blocked on. `!Send`: its registration belongs
/// to this thread's scheduler (see the module doc).
#[derive(Debug)]
pub(crate) struct OwnedFd {
    fd: Cell<RawFd>,
    /// `set_read_timeout` and `set_write_timeout`, by direction: how long one call may
    /// wait before it fails with `TimedOut`.
    timeouts: Cell<[Option<Duration>; 2]>,
    /// Keeps the fd on the thread whose scheduler knows it.
    _thread: PhantomData<*const ()>,
}

/// The most buffers one `readv`/`writev` takes (POSIX guarantees at least 16; Linux, the
/// BSDs and macOS allow 1024).
const IOV_MAX: usize = 1024;

fn is_would_block(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EAGAIN)) || e.kind() == io::ErrorKind::WouldBlock
}

impl OwnedFd {
    /// Own `fd`, just created or adopted: whatever this thread's table kept for the number
    /// is forgotten.
    pub(crate) fn new(fd: RawFd) -> Self {
        core_io::opened(fd);
        OwnedFd {
            fd: Cell::new(fd),
            timeouts: Cell::new([None, None]),
            _thread: PhantomData,
        }
    }

    /// A new owner of the same socket under another fd number (`dup`, close-on-exec).
    pub(crate) fn duplicate(&self) -> io::Result<RawFd> {
        let fd = self.get()?;
        // SAFETY: fcntl on an fd this value owns; the result is checked.
        let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
        if new < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(new)
    }

    /// Give the fd up without closing it: deregistered and untracked, for `into_std`.
    pub(crate) fn release(&self) -> io::Result<RawFd> {
        let fd = self.get()?;
        self.fd.set(-1);
        crate::net::forget_socket(fd);
        core_io::close(fd);
        Ok(fd)
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

    /// The timeout one call in `dir` may wait (std's `SO_RCVTIMEO`/`SO_SNDTIMEO` meaning).
    pub(crate) fn timeout(&self, dir: Direction) -> Option<Duration> {
        self.timeouts.get()[dir as usize]
    }

    /// Set the timeout for `dir`; zero is refused, as std does.
    pub(crate) fn set_timeout(&self, dir: Direction, t: Option<Duration>) -> io::Result<()> {
        if t == Some(Duration::ZERO) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a zero timeout is not allowed (as in std); use None for no timeout",
            ));
        }
        let mut all = self.timeouts.get();
        all[dir as usize] = t;
        self.timeouts.set(all);
        Ok(())
    }

    /// Run `op` until it does not report `EAGAIN`, waiting for `dir` in between — and
    /// before it, when the last call in `dir` drained the fd and no event came since
    /// (`shrapnel_core::io::drained`): that syscall would only have returned `EAGAIN`.
    /// With a timeout set for `dir`, waiting longer than it fails with `TimedOut`.
    #[track_caller]
    pub(crate) fn io<T>(
        &self,
        dir: Direction,
        op: impl FnMut(RawFd) -> io::Result<T>,
    ) -> io::Result<T> {
        let Some(limit) = self.timeout(dir) else {
            return self.io_untimed(dir, op);
        };
        match shrapnel_core::sched::with_timeout(limit, || self.io_untimed(dir, op)) {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "fd {} was not {} within its {} timeout of {limit:?}",
                    self.raw(),
                    match dir {
                        Direction::Read => "readable",
                        Direction::Write => "writable",
                    },
                    match dir {
                        Direction::Read => "read",
                        Direction::Write => "write",
                    },
                ),
            )),
        }
    }

    #[track_caller]
    fn io_untimed<T>(
        &self,
        dir: Direction,
        mut op: impl FnMut(RawFd) -> io::Result<T>,
    ) -> io::Result<T> {
        loop {
            let fd = self.get()?;
            if !core_io::is_drained(fd, dir) {
                match op(fd) {
                    Ok(v) => {
                        shrapnel_core::selfish_act();
                        return Ok(v);
                    }
                    Err(e) if is_would_block(&e) => core_io::would_block(fd, dir),
                    Err(e)
                        if e.kind() == io::ErrorKind::Interrupted
                            && e.raw_os_error() == Some(libc::EINTR) =>
                    {
                        continue
                    }
                    Err(e) => return Err(e),
                }
            }
            match core_io::wait(fd, dir) {
                Ok(()) => {}
                Err(shrapnel_core::io::IoError::Closed { fd }) => {
                    return Err(io::Error::new(
                        io::ErrorKind::NotConnected,
                        format!(
                            "fd {fd} was closed by another coroutine while this one waited on it"
                        ),
                    ))
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// One `read(2)` of a stream socket; a short one marks the fd drained for reading.
    /// (Not for datagram sockets, whose reads are short whenever a datagram is smaller than
    /// the buffer, whatever else is queued.)
    #[track_caller]
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.transfer(Direction::Read, buf.len(), |fd| {
            // SAFETY: reads into a live, writable slice of the given length.
            unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) }
        })
    }

    /// One `write(2)` of a stream socket; a short one marks the fd drained (send buffer
    /// full) for writing.
    #[track_caller]
    pub(crate) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        self.transfer(Direction::Write, buf.len(), |fd| {
            // SAFETY: writes from a live slice of the given length.
            unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) }
        })
    }

    /// One `readv(2)` of a stream socket into `bufs` (at most `IOV_MAX` of them), as
    /// [`read`](Self::read).
    #[track_caller]
    pub(crate) fn read_vectored(&self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        let count = bufs.len().min(IOV_MAX);
        let wanted = bufs[..count].iter().map(|b| b.len()).sum();
        self.transfer(Direction::Read, wanted, |fd| {
            // SAFETY: IoSliceMut is ABI-compatible with iovec on Unix; the slices are live
            // and writable, and `count` does not exceed their number.
            unsafe { libc::readv(fd, bufs.as_mut_ptr().cast(), count as libc::c_int) }
        })
    }

    /// One `writev(2)` of a stream socket from `bufs` (at most `IOV_MAX` of them), as
    /// [`write`](Self::write).
    #[track_caller]
    pub(crate) fn write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let count = bufs.len().min(IOV_MAX);
        let wanted = bufs[..count].iter().map(|b| b.len()).sum();
        self.transfer(Direction::Write, wanted, |fd| {
            // SAFETY: IoSlice is ABI-compatible with iovec on Unix; the slices are live and
            // `count` does not exceed their number.
            unsafe { libc::writev(fd, bufs.as_ptr().cast(), count as libc::c_int) }
        })
    }

    /// Run one transfer syscall of a stream socket (returning bytes moved or -1) through
    /// [`io`](Self::io); one that moves fewer than `wanted` bytes marks the fd drained in
    /// `dir` (receive buffer empty, or send buffer full).
    #[track_caller]
    fn transfer(
        &self,
        dir: Direction,
        wanted: usize,
        mut syscall: impl FnMut(RawFd) -> isize,
    ) -> io::Result<usize> {
        self.io(dir, |fd| {
            let n = syscall(fd);
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let n = n as usize;
            if n > 0 && n < wanted {
                core_io::drained(fd, dir);
            }
            Ok(n)
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
