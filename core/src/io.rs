//! Waiting for file descriptors: the scheduler's table of registered sources.
//!
//! Every fd a coroutine waits on is registered once with the poller, edge-triggered for
//! both directions, and stays registered until [`close`] — so a steady
//! stream of reads and writes costs no registration syscalls. The table keeps, per fd, a
//! readiness bit per direction ("an event arrived that no wait has consumed yet") and at
//! most one waiting coroutine per direction: a second one is a [`IoError::Simultaneous`]
//! error naming both. Closing an fd wakes its waiters with [`IoError::Closed`].
//!
//! The usual pattern (what `shrapnel::net` does): try the non-blocking syscall; on
//! `EAGAIN`, [`would_block`] and `wait(fd, dir)`; try again. A read or write that moved
//! fewer bytes than asked drained the socket's buffer: the caller says so with
//! [`drained`], and its next call waits first ([`is_drained`]) instead of making a syscall
//! that would return `EAGAIN` — a steady echo round trip is one read and one write.
//!
//! An fd number outlives its fd: closed without [`close`] (a std socket dropped, a raw
//! `close(2)`), the number comes back for the next fd the process opens, and a table entry
//! left for it would claim a registration the poller has already dropped. Two things keep
//! such an entry from hanging anybody: whoever creates an fd announces it with [`opened`]
//! (the runtime's sockets do), which forgets whatever was left for the number; and a
//! caller that can name the open file behind an fd (POSIX: device and inode) passes it to
//! [`wait_identified`], and an entry made for another file is renewed.

use alloc::vec::Vec;
use core::fmt;

use crate::interruption::Interrupted;
use crate::poller::{Event, Interest, OsError, RawSource, Token};
use crate::sched::{sched, Resume};
use crate::wait::{WaitReason, Waiter};

/// A direction of readiness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Readable (data, EOF, or an error to collect).
    Read,
    /// Writable.
    Write,
}

/// Why a wait on an fd failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IoError {
    /// The waiting coroutine was interrupted.
    Interrupted {
        /// The fd it waited on.
        fd: RawSource,
        /// Why.
        reason: Interrupted,
    },
    /// Another coroutine closed the fd while this one waited on it.
    Closed {
        /// The fd.
        fd: RawSource,
    },
    /// Another coroutine is already waiting on this fd in this direction.
    Simultaneous {
        /// The fd.
        fd: RawSource,
        /// The direction both want.
        dir: Direction,
        /// The coroutine already waiting.
        waiting: u64,
        /// The coroutine that asked second.
        caller: u64,
    },
    /// The poller refused the fd (EBADF: not open; EPERM: a regular file, ...).
    Os {
        /// The fd.
        fd: RawSource,
        /// The OS error.
        err: OsError,
    },
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IoError::Interrupted { fd, reason } => write!(f, "wait on fd {fd} {reason}"),
            IoError::Closed { fd } => write!(
                f,
                "fd {fd} was closed by another coroutine while this one waited on it"
            ),
            IoError::Simultaneous {
                fd,
                dir,
                waiting,
                caller,
            } => write!(
                f,
                "coroutine #{caller} tried to wait for fd {fd} to be {} while coroutine #{waiting} \
                 already waits for the same; only one coroutine may wait per fd and direction",
                match dir { Direction::Read => "readable", Direction::Write => "writable" }
            ),
            IoError::Os { fd, err } => {
                let hint = match err.errno {
                    9 => " (EBADF: the fd is not open)",
                    1 => " (EPERM: this kind of fd cannot be polled, e.g. a regular file)",
                    _ => "",
                };
                write!(f, "cannot wait on fd {fd}: {err}{hint}")
            }
        }
    }
}

#[cfg(feature = "std")]
impl Interrupted {
    /// The interruption an `io::Error` from a shrapnel call carries, if it is one (made
    /// from an [`Interrupted`], or from a wait on an fd that was interrupted).
    ///
    /// (Defined here, beside [`IoError`], so that `interruption` needs nothing of `io`.)
    pub fn from_io_error(e: &std::io::Error) -> Option<Interrupted> {
        let inner = e.get_ref()?;
        if let Some(i) = inner.downcast_ref::<Interrupted>() {
            return Some(*i);
        }
        match inner.downcast_ref::<IoError>()? {
            IoError::Interrupted { reason, .. } => Some(*reason),
            _ => None,
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for IoError {}

#[cfg(feature = "std")]
impl From<IoError> for std::io::Error {
    fn from(e: IoError) -> Self {
        use std::io::ErrorKind;
        let kind = match &e {
            IoError::Interrupted { reason, .. } => reason.io_error_kind(),
            IoError::Closed { .. } => ErrorKind::NotConnected,
            IoError::Simultaneous { .. } => ErrorKind::ResourceBusy,
            // The kind the OS error has, and the message with the fd and the hint.
            IoError::Os { err, .. } => std::io::Error::from_raw_os_error(err.errno).kind(),
        };
        std::io::Error::new(kind, e)
    }
}

#[derive(Default)]
struct Entry {
    gen: u32,
    registered: bool,
    /// The open file the registration was made for, if a caller named it (0: unknown).
    ident: u64,
    ready: [bool; 2],
    /// The last syscall in this direction moved fewer bytes than asked (or returned
    /// `EAGAIN`) and no event came since: the next one would find nothing to do, so the
    /// caller waits first. Never set together with `ready`.
    drained: [bool; 2],
    /// The poller reported a hang-up or an error: a final state that no later event
    /// repeats (an EOF stays pending after the data before it is read), so the fd is never
    /// marked drained again and every call makes its syscall.
    hung_up: bool,
    waiter: [Option<Waiter>; 2],
}

/// Registered fds, indexed by fd number.
pub(crate) struct IoTable {
    entries: Vec<Entry>,
    registered: usize,
    waiting: usize,
    next_gen: u32,
    /// Syscalls that returned `EAGAIN` (see [`would_block`]).
    would_block: u64,
}

const HALF: u32 = usize::BITS / 2;

fn token(fd: RawSource, gen: u32) -> Token {
    Token(fd as usize | ((gen as usize) << HALF))
}

impl IoTable {
    pub(crate) const fn new() -> Self {
        IoTable {
            entries: Vec::new(),
            registered: 0,
            waiting: 0,
            next_gen: 1,
            would_block: 0,
        }
    }

    /// No fd is registered.
    pub(crate) fn is_empty(&self) -> bool {
        self.registered == 0
    }

    /// Coroutines blocked on fds.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting
    }

    /// Registered fds.
    pub(crate) fn len(&self) -> usize {
        self.registered
    }

    pub(crate) fn dispatch(&mut self, ev: &Event) {
        let mask = (1usize << HALF) - 1;
        let fd = ev.token.0 & mask;
        let gen = (ev.token.0 >> HALF) as u32;
        let Some(e) = self.entries.get_mut(fd) else {
            return;
        };
        if !e.registered || (e.gen & (mask as u32)) != (gen & (mask as u32)) {
            return;
        }
        e.hung_up |= ev.hangup;
        for (i, ready) in [ev.readable || ev.hangup, ev.writable || ev.hangup]
            .into_iter()
            .enumerate()
        {
            if ready {
                e.ready[i] = true;
                e.drained[i] = false;
                if let Some(w) = e.waiter[i].take() {
                    w.wake(Resume::Ok);
                }
            }
        }
    }
}

fn index(fd: RawSource) -> usize {
    usize::try_from(fd).unwrap_or(usize::MAX)
}

/// Register `fd` with the poller now (waits register on demand; this lets a caller see
/// EBADF/EPERM early). Idempotent.
#[track_caller]
pub fn register(fd: RawSource) -> Result<(), IoError> {
    let s = sched();
    let mut io = s.io().borrow_mut();
    ensure_registered(s, &mut io, fd, 0)
}

/// The caller just created `fd`: whatever the table holds for that number belongs to an
/// fd that was closed without [`close`] (the OS hands out the lowest free number), so it is
/// forgotten; a coroutine still waiting on the old fd wakes with [`IoError::Closed`].
/// Without a scheduler on this thread, nothing to do.
pub fn opened(fd: RawSource) {
    close(fd);
}

fn ensure_registered(
    s: &crate::sched::SchedState,
    io: &mut IoTable,
    fd: RawSource,
    ident: u64,
) -> Result<(), IoError> {
    let i = index(fd);
    if i == usize::MAX || i >= (1usize << HALF) {
        return Err(IoError::Os {
            fd,
            err: OsError {
                op: "register",
                errno: 9,
            },
        });
    }
    if i >= io.entries.len() {
        io.entries.resize_with(i + 1, Entry::default);
    }
    let e = &mut io.entries[i];
    if e.registered {
        if ident == 0 || e.ident == ident {
            return Ok(());
        }
        if e.ident == 0 {
            e.ident = ident;
            return Ok(());
        }
        // Registered for another open file that had this number: the poller dropped that
        // registration when the file closed. Renew it; the old file's waiters are gone
        // with it.
        e.registered = false;
        e.ready = [false; 2];
        e.drained = [false; 2];
        let stale = [e.waiter[0].take(), e.waiter[1].take()];
        io.registered -= 1;
        let _ = s.poller().deregister(fd);
        for w in stale.into_iter().flatten() {
            w.wake(Resume::Closed);
        }
    }
    let gen = io.next_gen;
    io.next_gen = io.next_gen.wrapping_add(1).max(1);
    s.poller()
        .register(fd, token(fd, gen), Interest::BOTH)
        .map_err(|err| IoError::Os { fd, err })?;
    io.entries[i] = Entry {
        gen,
        registered: true,
        ident,
        ready: [false; 2],
        drained: [false; 2],
        hung_up: false,
        waiter: [None, None],
    };
    io.registered += 1;
    Ok(())
}

/// Counts one coroutine blocked on an fd for as long as it lives, so no exit from a wait
/// (an early return, an interruption, an unwind) can leave the count wrong.
struct Waiting<'a>(&'a crate::sched::SchedState);

impl<'a> Waiting<'a> {
    fn enter(s: &'a crate::sched::SchedState, io: &mut IoTable) -> Self {
        io.waiting += 1;
        Waiting(s)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.io().borrow_mut().waiting -= 1;
    }
}

/// Block the running coroutine until `fd` is ready for `dir`.
///
/// Returns at once if a readiness event arrived since the last wait in that direction.
/// Registers the fd on first use.
#[track_caller]
pub fn wait(fd: RawSource, dir: Direction) -> Result<(), IoError> {
    wait_identified(fd, dir, 0)
}

/// [`wait`], for a caller that can name the open file behind `fd` with a non-zero `ident`
/// (POSIX: its device and inode): a registration left by another file that had the same
/// number is renewed instead of trusted (see the module doc). `ident` 0 is [`wait`].
#[track_caller]
pub fn wait_identified(fd: RawSource, dir: Direction, ident: u64) -> Result<(), IoError> {
    let reason = match dir {
        Direction::Read => WaitReason::Readable(fd),
        Direction::Write => WaitReason::Writable(fd),
    };
    wait_as(fd, dir, ident, reason)
}

/// [`wait`] for `fd` to become readable where `fd` only announces that work running
/// elsewhere has finished (the runtime's blocking pool): the same wait, which `where_all`
/// and `ps` show as [`WaitReason::Blocking`].
#[track_caller]
pub fn wait_for_work(fd: RawSource) -> Result<(), IoError> {
    wait_as(fd, Direction::Read, 0, WaitReason::Blocking(fd))
}

#[track_caller]
fn wait_as(fd: RawSource, dir: Direction, ident: u64, reason: WaitReason) -> Result<(), IoError> {
    let s = sched();
    let d = dir as usize;
    {
        let mut io = s.io().borrow_mut();
        ensure_registered(s, &mut io, fd, ident)?;
        let e = &mut io.entries[index(fd)];
        if core::mem::take(&mut e.ready[d]) {
            return Ok(());
        }
        if let Some(w) = &e.waiter[d] {
            if w.is_live() {
                return Err(IoError::Simultaneous {
                    fd,
                    dir,
                    waiting: w.coro_id(),
                    caller: s.current_ref().id(),
                });
            }
        }
    }
    let mut counted = None;
    let r = s.block(reason, |w| {
        let mut io = s.io().borrow_mut();
        io.entries[index(fd)].waiter[d] = Some(w);
        counted = Some(Waiting::enter(s, &mut io));
    });
    drop(counted);
    let mut io = s.io().borrow_mut();
    if let Some(e) = io.entries.get_mut(index(fd)) {
        // Woken by readiness: this wake consumed it (the caller's next syscall sees all of
        // it). Interrupted: an event that arrived meanwhile stays for the next wait.
        if r == Resume::Ok {
            e.ready[d] = false;
        }
        let mine = e.waiter[d].as_ref().is_some_and(|w| s.is_running(w.coro()));
        if mine {
            e.waiter[d] = None;
        }
    }
    match r {
        Resume::Ok => Ok(()),
        Resume::Interrupted(reason) | Resume::Revoked(reason) => {
            Err(IoError::Interrupted { fd, reason })
        }
        Resume::Closed => Err(IoError::Closed { fd }),
    }
}

/// The last syscall on `fd` in `dir` moved fewer bytes than it asked for: the socket's
/// receive buffer is empty (read) or its send buffer full (write), so the next syscall
/// would return `EAGAIN` unless an event arrives first. Until one does, [`is_drained`]
/// says so and the caller waits instead of trying (one syscall less per round trip; the
/// edge-triggered registration reports the next arrival). Ignored for an fd not yet
/// registered (its first `EAGAIN` registers it) and for one the poller reported hung up:
/// a peer's FIN that came with the data leaves an EOF pending after a short read, and no
/// event will announce it again.
pub fn drained(fd: RawSource, dir: Direction) {
    let Some(s) = crate::sched::try_sched() else {
        return Default::default(); // no scheduler on this thread: nothing is cached
    };
    if let Some(e) = s.io().borrow_mut().entries.get_mut(index(fd)) {
        if e.registered && !e.hung_up {
            e.ready[dir as usize] = false;
            e.drained[dir as usize] = true;
        }
    }
}

/// A syscall on `fd` in `dir` returned `EAGAIN`: forget the cached readiness, count it for
/// [`would_block_count`], and mark the direction [`drained`]. The caller waits next.
pub fn would_block(fd: RawSource, dir: Direction) {
    let Some(s) = crate::sched::try_sched() else {
        return Default::default(); // no scheduler on this thread: nothing is cached
    };
    let mut io = s.io().borrow_mut();
    io.would_block += 1;
    if let Some(e) = io.entries.get_mut(index(fd)) {
        e.ready[dir as usize] = false;
        e.drained[dir as usize] = e.registered && !e.hung_up;
    }
}

/// Whether the last syscall on `fd` in `dir` left nothing to do and no event came since
/// (see [`drained`]): wait before the next one.
pub fn is_drained(fd: RawSource, dir: Direction) -> bool {
    let Some(s) = crate::sched::try_sched() else {
        return Default::default(); // no scheduler on this thread: nothing is cached
    };
    let io = s.io().borrow();
    io.entries
        .get(index(fd))
        .is_some_and(|e| e.drained[dir as usize])
}

/// Syscalls that returned `EAGAIN` on this scheduler's thread since it started (each one a
/// syscall that found nothing to do; the backdoor's `stats` shows it).
pub fn would_block_count() -> u64 {
    sched().io().borrow().would_block
}

/// Deregister `fd` before it is closed, waking any coroutine waiting on it with
/// [`IoError::Closed`]. The caller closes the fd afterwards. Unknown fds are ignored.
pub fn close(fd: RawSource) {
    let Some(s) = crate::sched::try_sched() else {
        return;
    };
    let waiters = {
        let mut io = s.io().borrow_mut();
        let Some(e) = io.entries.get_mut(index(fd)) else {
            return;
        };
        if !e.registered {
            return;
        }
        e.registered = false;
        e.ready = [false; 2];
        e.drained = [false; 2];
        let w = [e.waiter[0].take(), e.waiter[1].take()];
        io.registered -= 1;
        w
    };
    // Deregistration can only fail if the fd is already closed, which also removed it.
    let _ = s.poller().deregister(fd);
    for w in waiters.into_iter().flatten() {
        w.wake(Resume::Closed);
    }
}

/// Number of fds registered with the poller.
pub fn registered() -> usize {
    sched().io().borrow().len()
}
