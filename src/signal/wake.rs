//! From a signal handler to every event loop: the one self-pipe and the small thread that
//! turns its bytes into scheduler wake-ups, shared by the debug signal and [`crate::signal`].
//!
//! A handler may only do async-signal-safe things, and waking a scheduler's poller from
//! another thread takes a lock (the list of schedulers) — so the handler writes one byte to
//! a non-blocking pipe ([`poke`]), and the thread sleeping on the pipe wakes the poller of
//! every scheduler thread registered with [`register_this_thread`]. Each scheduler then looks
//! at the flags the handler set, in its loop hook, in its own context.
//!
//! The pipe (not signalfd or EVFILT_SIGNAL) is what keeps this correct in a process with
//! threads the runtime did not create: signalfd only sees a signal that every thread
//! blocks, and a thread started before the runtime (by the program or a library) would
//! take the signal's default action instead.

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Mutex, Once, Weak};

use libc::c_int;
use shrapnel_core::poller::Notify;

use crate::stderr::SavedStderr;

/// Bumped by every [`poke`] and [`note_event`]: the loop hooks run only when it changed.
static EVENTS: AtomicU64 = AtomicU64::new(0);
/// The self-pipe's write end (-1 before it exists).
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);
/// The saved stderr fd, read once outside any handler so a handler never initialises it.
static STDERR_FD: AtomicI32 = AtomicI32::new(2);
/// The notify handles of every scheduler thread registered so far (dead ones are pruned).
static SCHEDULERS: Mutex<Vec<Weak<dyn Notify>>> = Mutex::new(Vec::new());

/// Create the self-pipe and start the thread that turns its bytes into scheduler wake-ups
/// (once; later calls return the first outcome). Call before installing a handler that
/// pokes.
pub(crate) fn prepare() -> std::io::Result<()> {
    static ONCE: Once = Once::new();
    static FAILED: AtomicI32 = AtomicI32::new(0);
    ONCE.call_once(|| {
        STDERR_FD.store(SavedStderr::get().fd(), Ordering::Release);
        if let Err(e) = start_waker() {
            FAILED.store(e.raw_os_error().unwrap_or(libc::EIO), Ordering::Release);
        }
    });
    match FAILED.load(Ordering::Acquire) {
        0 => Ok(()),
        errno => Err(std::io::Error::from_raw_os_error(errno)),
    }
}

/// The fd a handler writes its one line to (the saved stderr).
pub(crate) fn stderr_fd() -> c_int {
    STDERR_FD.load(Ordering::Relaxed)
}

/// Wake every registered scheduler soon. Async-signal-safe: one write(2) of one byte to a
/// non-blocking pipe; a full pipe means a wake-up is already pending.
pub(crate) fn poke() {
    note_event();
    let fd = PIPE_WRITE.load(Ordering::Acquire);
    if fd >= 0 {
        // SAFETY: a one-byte write from a live buffer; the fd is never closed once published.
        unsafe { libc::write(fd, b"!".as_ptr().cast(), 1) };
    }
}

/// Something a loop hook acts on happened (a signal, a group's stop): the hooks of every
/// scheduler run at its next iteration. Async-signal-safe (one atomic add); wakes nobody.
pub(crate) fn note_event() {
    EVENTS.fetch_add(1, Ordering::AcqRel);
}

/// The count [`note_event`] bumps.
pub(crate) fn events() -> u64 {
    EVENTS.load(Ordering::Acquire)
}

/// Register this thread's scheduler to be woken by [`poke`] (once per scheduler).
pub(crate) fn register_this_thread() {
    let mut list = SCHEDULERS.lock().unwrap_or_else(|e| e.into_inner());
    list.retain(|w| w.strong_count() > 0);
    list.push(std::sync::Arc::downgrade(&shrapnel_core::sched::notifier()));
}

fn start_waker() -> std::io::Result<()> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: pipe writes two fds into a valid two-element array.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let [read_end, write_end] = fds;
    for fd in fds {
        // SAFETY: fcntl on fds we just created.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    // The handler must never block: a full pipe just drops its byte (a wake-up is pending).
    // SAFETY: fcntl on the write end we own.
    unsafe {
        let flags = libc::fcntl(write_end, libc::F_GETFL);
        libc::fcntl(write_end, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
    let spawned = std::thread::Builder::new()
        .name("shrapnel-signal".into())
        .spawn(move || waker(read_end));
    if let Err(e) = spawned {
        // SAFETY: closing the fds we created and nobody else knows about.
        unsafe {
            libc::close(read_end);
            libc::close(write_end);
        }
        return Err(e);
    }
    PIPE_WRITE.store(write_end, Ordering::Release);
    Ok(())
}

/// The waker thread: each byte on the pipe wakes every live scheduler.
fn waker(read_end: c_int) {
    let mut buf = [0u8; 64];
    loop {
        // SAFETY: reads into a live buffer of the given length.
        let n = unsafe { libc::read(read_end, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        if n <= 0 {
            return;
        }
        let mut list = SCHEDULERS.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|w| match w.upgrade() {
            Some(n) => {
                n.notify();
                true
            }
            None => false,
        });
    }
}
