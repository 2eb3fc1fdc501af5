//! Child processes for coroutines: [`Command`] wraps std's, and the [`Child`] it spawns
//! waits, reads and writes blocking only the calling coroutine.
//!
//! - `wait()` waits for the exit through the poller: a pidfd on Linux 5.3 and later, a
//!   kqueue `EVFILT_PROC` event on FreeBSD and macOS; elsewhere (an older kernel) a thread
//!   of the blocking pool waits without reaping, so the status is never lost. It can be
//!   interrupted: `with_timeout(d, || child.wait())` gives `Err(Timeout)` on time and the
//!   child can be waited for (or killed) again later, as in Shrapnel's test.
//! - The pipes (`stdin`, `stdout`, `stderr` with `Stdio::piped()`) are non-blocking and
//!   implement `Read`/`Write`, as the sockets do.
//! - `output()` reads stdout and stderr at the same time (a child filling one pipe while
//!   the parent reads the other cannot deadlock) and waits.
//! - [`waitpid`] waits for a child spawned some other way (std, `fork`).
//!
//! Spawning itself (fork and exec, through std) runs on the scheduler's thread; it takes
//! well under a millisecond. Outside a coroutine, `wait`, `status` and `output` block the
//! thread, as std's do.
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! use shrapnel::process::Command;
//!
//! let out = Command::new("uname").arg("-s").output()?;
//! assert!(out.status.success());
//! let too_slow = shrapnel::with_timeout(std::time::Duration::from_secs(1), || {
//!     Command::new("sleep").arg("10").spawn()?.wait()
//! });
//! assert!(too_slow.is_err());
//! # Ok(()) }
//! ```

use std::cell::Cell;
use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Output, Stdio};

use crate::fd::OwnedFd;
use crate::net::stream_io;

/// A process to start: std's `Command`, whose `spawn`, `output` and `status` block only
/// the calling coroutine.
#[derive(Debug)]
pub struct Command {
    inner: std::process::Command,
}

impl From<std::process::Command> for Command {
    fn from(inner: std::process::Command) -> Self {
        Command { inner }
    }
}

impl Command {
    /// A command for `program` (found on `PATH` as std does).
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Command {
            inner: std::process::Command::new(program),
        }
    }

    /// Add an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.inner.arg(arg);
        self
    }

    /// Add arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.inner.args(args);
        self
    }

    /// Set an environment variable for the child.
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Self {
        self.inner.env(key, value);
        self
    }

    /// Remove an environment variable for the child.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Self {
        self.inner.env_remove(key);
        self
    }

    /// Start the child with an empty environment.
    pub fn env_clear(&mut self) -> &mut Self {
        self.inner.env_clear();
        self
    }

    /// The child's working directory.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.inner.current_dir(dir);
        self
    }

    /// The child's stdin (`Stdio::piped()` gives [`Child::stdin`]).
    pub fn stdin(&mut self, cfg: impl Into<Stdio>) -> &mut Self {
        self.inner.stdin(cfg);
        self
    }

    /// The child's stdout (`Stdio::piped()` gives [`Child::stdout`]).
    pub fn stdout(&mut self, cfg: impl Into<Stdio>) -> &mut Self {
        self.inner.stdout(cfg);
        self
    }

    /// The child's stderr (`Stdio::piped()` gives [`Child::stderr`]).
    pub fn stderr(&mut self, cfg: impl Into<Stdio>) -> &mut Self {
        self.inner.stderr(cfg);
        self
    }

    /// std's command, for what this type does not forward (`CommandExt`, `uid`, …).
    pub fn as_std_mut(&mut self) -> &mut std::process::Command {
        &mut self.inner
    }

    /// Start the child (stdio inherited unless set).
    pub fn spawn(&mut self) -> io::Result<Child> {
        let child = self.inner.spawn().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot start {:?}: {e} (is it installed and on PATH?)",
                    self.inner.get_program()
                ),
            )
        })?;
        Child::adopt(child)
    }

    /// Run it with stdout and stderr captured (stdin empty, as std's `output` does) and
    /// wait; blocks only this coroutine.
    #[track_caller]
    pub fn output(&mut self) -> io::Result<Output> {
        if !in_coroutine() {
            return self.inner.output();
        }
        self.inner
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        self.spawn()?.wait_with_output()
    }

    /// Run it with stdio inherited and wait for its status; blocks only this coroutine.
    #[track_caller]
    pub fn status(&mut self) -> io::Result<ExitStatus> {
        self.spawn()?.wait()
    }
}

/// A running (or exited, not yet waited for) child.
#[derive(Debug)]
pub struct Child {
    /// Its stdin, if piped.
    pub stdin: Option<ChildStdin>,
    /// Its stdout, if piped.
    pub stdout: Option<ChildStdout>,
    /// Its stderr, if piped.
    pub stderr: Option<ChildStderr>,
    pid: libc::pid_t,
    /// Its status once reaped.
    status: Cell<Option<ExitStatus>>,
    /// The fd that becomes readable when it exits (opened on the first wait), if the OS
    /// has one; closed when the child is reaped or dropped.
    exit_fd: Cell<Option<RawFd>>,
}

impl Child {
    fn adopt(mut child: std::process::Child) -> io::Result<Child> {
        let pid = child.id() as libc::pid_t;
        Ok(Child {
            stdin: child
                .stdin
                .take()
                .map(|p| pipe(p).map(|fd| ChildStdin { fd }))
                .transpose()?,
            stdout: child
                .stdout
                .take()
                .map(|p| pipe(p).map(|fd| ChildStdout { fd }))
                .transpose()?,
            stderr: child
                .stderr
                .take()
                .map(|p| pipe(p).map(|fd| ChildStderr { fd }))
                .transpose()?,
            pid,
            status: Cell::new(None),
            exit_fd: Cell::new(None),
        })
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.pid as u32
    }

    /// Wait for it to exit (closing its stdin first, as std does, so a child reading it
    /// sees the end); blocks only this coroutine. Interruptible: after an interruption
    /// (a timeout), it can be waited for again.
    #[track_caller]
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        if let Some(status) = self.status.get() {
            return Ok(status);
        }
        if !in_coroutine() {
            // No coroutine to block: the thread waits, as std's `wait` does.
            let status = reap(self.pid, 0)?;
            self.status.set(status);
            self.close_exit_fd();
            return status.ok_or_else(|| io::Error::other("waitpid returned no status"));
        }
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            match self.exit_fd()? {
                Some(fd) => crate::fd::wait_readable(fd)?,
                None => {
                    let pid = self.pid;
                    crate::blocking(move || crate::sys::process::wait_exited_keeping_zombie(pid))
                        .map_err(io::Error::from)??;
                }
            }
        }
    }

    /// Its status if it has exited, without waiting.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.status.get() {
            return Ok(Some(status));
        }
        let status = reap(self.pid, libc::WNOHANG)?;
        if status.is_some() {
            self.status.set(status);
            self.close_exit_fd();
        }
        Ok(status)
    }

    /// Send it SIGKILL (nothing if it was already waited for).
    pub fn kill(&mut self) -> io::Result<()> {
        if self.status.get().is_some() {
            return Ok(());
        }
        // SAFETY: kill(2) of our own child, not yet reaped, so the pid is still its.
        if unsafe { libc::kill(self.pid, libc::SIGKILL) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Read all of stdout and stderr (at the same time) and wait.
    #[track_caller]
    pub fn wait_with_output(mut self) -> io::Result<Output> {
        drop(self.stdin.take());
        let stderr = self.stderr.take().map(|mut pipe| {
            crate::Builder::new()
                .name(format!("stderr of pid {}", self.pid))
                .spawn(move || -> io::Result<Vec<u8>> {
                    let mut bytes = Vec::new();
                    pipe.read_to_end(&mut bytes)?;
                    Ok(bytes)
                })
        });
        let stderr = stderr.transpose().map_err(io::Error::other)?;
        // Whatever happens here, the stderr reader does not outlive this call's interest.
        let mut stop_reader = StopOnDrop(stderr.as_ref().map(|c| c.handle()));
        let mut stdout = Vec::new();
        if let Some(pipe) = self.stdout.as_mut() {
            pipe.read_to_end(&mut stdout)?;
        }
        let status = self.wait()?;
        stop_reader.0 = None;
        let stderr = match stderr {
            Some(reader) => reader.join().map_err(|e| {
                io::Error::other(format!("reading the stderr of pid {}: {e}", self.pid))
            })??,
            None => Vec::new(),
        };
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    /// The exit fd, opened on first use.
    fn exit_fd(&self) -> io::Result<Option<RawFd>> {
        if let Some(fd) = self.exit_fd.get() {
            return Ok(Some(fd));
        }
        let fd = crate::sys::process::exit_fd(self.pid).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot watch pid {} for its exit: {e}", self.pid),
            )
        })?;
        if let Some(fd) = fd {
            shrapnel_core::io::opened(fd);
        }
        self.exit_fd.set(fd);
        Ok(fd)
    }

    fn close_exit_fd(&self) {
        if let Some(fd) = self.exit_fd.take() {
            let _ = crate::fd::close(fd);
        }
    }
}

impl Drop for Child {
    /// As std's: the child is neither killed nor waited for (a child that exits later
    /// stays a zombie until the process waits for it, e.g. with [`waitpid`]).
    fn drop(&mut self) {
        self.close_exit_fd();
    }
}

/// Shuts a helper coroutine down if the call that started it returns early.
struct StopOnDrop(Option<crate::CoroRef>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(c) = &self.0 {
            c.shutdown();
        }
    }
}

/// Wait for the child `pid` (spawned any way: std, `fork`) to exit and reap it; blocks only
/// this coroutine. Interruptible; the child stays waitable after an interruption.
#[track_caller]
pub fn waitpid(pid: u32) -> io::Result<ExitStatus> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("no pid {pid}")))?;
    let mut child = Child {
        stdin: None,
        stdout: None,
        stderr: None,
        pid,
        status: Cell::new(None),
        exit_fd: Cell::new(None),
    };
    child.wait()
}

/// Whether the caller is a coroutine (outside one, waits block the thread as std's do).
fn in_coroutine() -> bool {
    shrapnel_core::sched::is_installed() && crate::current().is_some()
}

/// `waitpid(pid, flags)`: the status if reaped, `None` if still running (`WNOHANG`).
fn reap(pid: libc::pid_t, flags: libc::c_int) -> io::Result<Option<ExitStatus>> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status into the live local.
        let rc = unsafe { libc::waitpid(pid, &mut status, flags) };
        if rc == pid {
            return Ok(Some(ExitStatus::from_raw(status)));
        }
        if rc == 0 {
            return Ok(None);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::ECHILD) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "pid {pid} is not a child of this process, or was already waited for \
                         elsewhere ({e})"
                    ),
                ))
            }
            _ => return Err(e),
        }
    }
}

/// Take a pipe end from std: non-blocking, owned by this thread's scheduler.
fn pipe(end: impl IntoRawFd) -> io::Result<OwnedFd> {
    let fd = end.into_raw_fd();
    // SAFETY: fcntl on the fd just taken over; the result is checked.
    let ok = unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) == 0
    };
    let owned = OwnedFd::new(fd);
    if !ok {
        return Err(io::Error::last_os_error());
    }
    Ok(owned)
}

macro_rules! child_pipe {
    ($(#[$doc:meta])* $t:ident) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $t {
            fd: OwnedFd,
        }
        stream_io!(@rw $t);
        stream_io!(@rw &$t);
        impl AsRawFd for $t {
            fn as_raw_fd(&self) -> RawFd {
                self.fd.raw()
            }
        }
        impl IntoRawFd for $t {
            /// Give the fd up: deregistered from the scheduler, still non-blocking.
            fn into_raw_fd(self) -> RawFd {
                self.fd.release().unwrap_or(-1)
            }
        }
    };
}

child_pipe!(
    /// The write end of a child's stdin (non-blocking; dropping it closes the pipe).
    ChildStdin
);
child_pipe!(
    /// The read end of a child's stdout (non-blocking).
    ChildStdout
);
child_pipe!(
    /// The read end of a child's stderr (non-blocking).
    ChildStderr
);
