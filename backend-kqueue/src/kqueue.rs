//! The kqueue, its `EVFILT_USER` notifier, and the translation from `kevent` to `Event`.
//!
//! The `kevent` struct differs between the BSDs: NetBSD has 32-bit `filter` and `flags`
//! and `size_t` counts, FreeBSD 12+ has an `ext` array, the `data` and `udata` types vary.
//! Everything here builds a `kevent` from a zeroed value and converts with `as _`, so only
//! the [`Filter`] and [`Flags`] aliases need a `cfg`. The kqueue names (the struct, the two
//! calls, the filters and flags) come from [`ffi`]: the C library's, or libkqueue's on
//! Linux with the `libkqueue` feature; the code below is the same for both.

use crate::ffi;
use core::mem::{self, MaybeUninit};
use core::ptr;
use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;
use shrapnel_core::poller::{Event, Interest, Notify, OsError, Poller, RawSource, Token};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

/// The type of `kevent.filter`.
#[cfg(target_os = "netbsd")]
type Filter = u32;
/// The type of `kevent.flags`.
#[cfg(target_os = "netbsd")]
type Flags = u32;
/// The type of `kevent.filter`.
#[cfg(not(target_os = "netbsd"))]
type Filter = i16;
/// The type of `kevent.flags`.
#[cfg(not(target_os = "netbsd"))]
type Flags = u16;

/// The `EVFILT_USER` ident the notifier uses (its own filter, so it cannot clash with fd 0).
const NOTIFY_IDENT: usize = 0;
/// How many kernel events one `poll` collects at most (a 4 KiB stack buffer on FreeBSD).
const BATCH: usize = 64;
/// Slots reserved when the caller passes a vector without spare capacity.
const DEFAULT_EVENTS: usize = 64;
/// A zero timeout: apply changes without waiting.
const NO_WAIT: libc::timespec = libc::timespec {
    tv_sec: 0,
    tv_nsec: 0,
};

/// A kqueue: the [`Poller`] used on FreeBSD, macOS, NetBSD, OpenBSD and DragonFly.
///
/// A source is watched by an `EVFILT_READ` and/or an `EVFILT_WRITE` filter with
/// `EV_CLEAR`, its token kept in `udata`. The kqueue fd is shared with the notifier
/// handles and closed when the poller and all of them are dropped (a handle may outlive the
/// poller, and must never trigger on a number the process has since reused).
#[derive(Debug)]
pub struct KqueuePoller {
    /// The kqueue and its notify state, shared with every handle from `notifier()`.
    kq: Arc<Kqueue>,
}

/// The kqueue fd and the coalescing flag of its `EVFILT_USER` notifier.
#[derive(Debug)]
struct Kqueue {
    /// The kqueue descriptor (close-on-exec).
    fd: OwnedFd,
    /// Set by the first `notify` since `poll` last saw the user event, so a burst of
    /// notifies costs one `kevent`.
    pending: AtomicBool,
}

/// A change or an empty slot: a zeroed `kevent` with the fields that matter set.
fn kevent(ident: usize, filter: Filter, flags: Flags, fflags: u32, udata: usize) -> ffi::kevent {
    // SAFETY: `kevent` is plain old data; all zeroes is a valid value (null `udata`, empty
    // `ext` where it exists).
    let mut ev: ffi::kevent = unsafe { mem::zeroed() };
    ev.ident = ident as _;
    ev.filter = filter;
    ev.flags = flags;
    ev.fflags = fflags;
    ev.udata = udata as _;
    ev
}

fn last_error(op: &'static str) -> OsError {
    OsError {
        op,
        errno: std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
    }
}

impl Notify for Kqueue {
    fn notify(&self) {
        // AcqRel: whatever the caller published before notifying is visible to the poller
        // thread once its swap in `poll` reads this `true`.
        if !self.pending.swap(true, Ordering::AcqRel) {
            let trigger = kevent(NOTIFY_IDENT, ffi::EVFILT_USER, 0, ffi::NOTE_TRIGGER, 0);
            // SAFETY: one live change, no event list. It can only fail if the kqueue is gone,
            // which the shared ownership rules out.
            let _ = unsafe {
                ffi::kevent(
                    self.fd.as_raw_fd(),
                    &trigger,
                    1,
                    ptr::null_mut(),
                    0,
                    &NO_WAIT,
                )
            };
        }
    }
}

impl Kqueue {
    /// Apply `changes` (each with `EV_RECEIPT`) and return the first error not in `ignore`.
    fn apply(&self, changes: &[ffi::kevent], ignore: i32, op: &'static str) -> Result<(), OsError> {
        let mut receipts = [kevent(0, 0, 0, 0, 0), kevent(0, 0, 0, 0, 0)];
        debug_assert!(changes.len() <= receipts.len());
        if changes.is_empty() {
            return Ok(());
        }
        // SAFETY: `changes` and `receipts` are live for the call and the counts match their
        // lengths; with EV_RECEIPT on every change the kernel only writes receipts.
        let n = unsafe {
            ffi::kevent(
                self.fd.as_raw_fd(),
                changes.as_ptr(),
                changes.len() as _,
                receipts.as_mut_ptr(),
                changes.len() as _,
                &NO_WAIT,
            )
        };
        if n < 0 {
            return Err(last_error(op));
        }
        for r in &receipts[..n as usize] {
            let errno = r.data as i32;
            if r.flags & ffi::EV_ERROR != 0 && errno != 0 && errno != ignore {
                return Err(OsError { op, errno });
            }
        }
        Ok(())
    }
}

/// `kevent`'s timeout for `poll`; `None` waits forever.
fn timespec(timeout: Option<Duration>) -> Option<libc::timespec> {
    timeout.map(|t| {
        // SAFETY: `timespec` is plain old data (some targets add padding fields).
        let mut ts: libc::timespec = unsafe { mem::zeroed() };
        if t.as_secs() > i32::MAX as u64 {
            ts.tv_sec = i32::MAX as _;
        } else {
            ts.tv_sec = t.as_secs() as _;
            ts.tv_nsec = t.subsec_nanos() as _;
        }
        ts
    })
}

/// What a `kevent` from the queue means to the scheduler.
fn to_event(raw: &ffi::kevent) -> Event {
    let hangup = raw.flags & (ffi::EV_EOF | ffi::EV_ERROR) != 0;
    Event {
        token: Token(raw.udata as usize),
        readable: hangup || raw.filter == ffi::EVFILT_READ,
        writable: hangup || raw.filter == ffi::EVFILT_WRITE,
        hangup,
    }
}

impl KqueuePoller {
    /// A new kqueue with its notifier registered.
    ///
    /// Fails with the errno of `kqueue`, `fcntl` or `kevent`: `EMFILE`/`ENFILE` (too many
    /// open files: raise the limit), `ENOMEM`, or `EINVAL` on a kernel without
    /// `EVFILT_USER`.
    pub fn new() -> Result<KqueuePoller, OsError> {
        let kq = Arc::new(Kqueue {
            fd: open_kqueue()?,
            pending: AtomicBool::new(false),
        });
        let add_user = kevent(
            NOTIFY_IDENT,
            ffi::EVFILT_USER,
            ffi::EV_ADD | ffi::EV_CLEAR | ffi::EV_RECEIPT,
            0,
            0,
        );
        kq.apply(&[add_user], 0, "kevent(EV_ADD) of the EVFILT_USER notifier")?;
        Ok(KqueuePoller { kq })
    }

    /// The changes that make `source` watched for exactly `interest`: `EV_ADD` for the
    /// wanted filters, `EV_DELETE` for the others when `delete_others`.
    fn changes(
        source: RawSource,
        token: Token,
        interest: Interest,
        delete_others: bool,
    ) -> ([ffi::kevent; 2], usize) {
        let mut out = [kevent(0, 0, 0, 0, 0), kevent(0, 0, 0, 0, 0)];
        let mut n = 0;
        for (filter, wanted) in [
            (ffi::EVFILT_READ, interest.readable),
            (ffi::EVFILT_WRITE, interest.writable),
        ] {
            let flags = if wanted {
                ffi::EV_ADD | ffi::EV_CLEAR | ffi::EV_RECEIPT
            } else if delete_others {
                ffi::EV_DELETE | ffi::EV_RECEIPT
            } else {
                continue;
            };
            out[n] = kevent(source as usize, filter, flags, 0, token.0);
            n += 1;
        }
        (out, n)
    }
}

/// A close-on-exec kqueue fd.
fn open_kqueue() -> Result<OwnedFd, OsError> {
    #[cfg(target_os = "netbsd")]
    // SAFETY: plain syscall; the fd is owned below.
    let fd: RawFd = unsafe { libc::kqueue1(libc::O_CLOEXEC) };
    #[cfg(not(target_os = "netbsd"))]
    // SAFETY: plain syscall; the fd is owned below.
    let fd: RawFd = unsafe { ffi::kqueue() };
    if fd < 0 {
        return Err(last_error("kqueue"));
    }
    // SAFETY: `fd` was just returned by the kernel and nothing else owns it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    #[cfg(not(target_os = "netbsd"))]
    // SAFETY: fcntl with integer arguments on an fd we own. (A fork+exec in another thread
    // between kqueue() and here could inherit it; kqueues are not inherited across fork on
    // these systems anyway.)
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        return Err(last_error("fcntl(F_SETFD, FD_CLOEXEC) on the kqueue"));
    }
    Ok(owned)
}

impl Poller for KqueuePoller {
    fn register(&self, source: RawSource, token: Token, interest: Interest) -> Result<(), OsError> {
        let (changes, n) = Self::changes(source, token, interest, false);
        self.kq.apply(&changes[..n], 0, "kevent(EV_ADD)")
    }

    fn reregister(
        &self,
        source: RawSource,
        token: Token,
        interest: Interest,
    ) -> Result<(), OsError> {
        let (changes, n) = Self::changes(source, token, interest, true);
        self.kq
            .apply(&changes[..n], libc::ENOENT, "kevent(EV_ADD/EV_DELETE)")
    }

    fn deregister(&self, source: RawSource) -> Result<(), OsError> {
        let none = Interest {
            readable: false,
            writable: false,
        };
        let (changes, n) = Self::changes(source, Token(0), none, true);
        self.kq
            .apply(&changes[..n], libc::ENOENT, "kevent(EV_DELETE)")
    }

    fn poll(&self, events: &mut Vec<Event>, timeout: Option<Duration>) -> Result<usize, OsError> {
        if events.capacity() == events.len() {
            events.reserve(DEFAULT_EVENTS);
        }
        let start = events.len();
        let max = (events.capacity() - start).min(BATCH);
        let mut raw = [const { MaybeUninit::<ffi::kevent>::uninit() }; BATCH];
        let ts = timespec(timeout);
        let ts_ptr = ts
            .as_ref()
            .map_or(ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: the kernel writes at most `max <= BATCH` entries into `raw`; `ts_ptr` is
        // null or points to `ts`, live for the call.
        let rc = unsafe {
            ffi::kevent(
                self.kq.fd.as_raw_fd(),
                ptr::null(),
                0,
                raw.as_mut_ptr().cast(),
                max as _,
                ts_ptr,
            )
        };
        if rc < 0 {
            let err = last_error("kevent");
            return if err.errno == libc::EINTR {
                Ok(0)
            } else {
                Err(err)
            };
        }
        for slot in &raw[..rc as usize] {
            // SAFETY: the kernel initialised the first `rc` entries.
            let ev = unsafe { slot.assume_init_ref() };
            if ev.filter == ffi::EVFILT_USER {
                // EV_CLEAR already reset the user event; let the next notify trigger again.
                self.kq.pending.swap(false, Ordering::AcqRel);
                continue;
            }
            let new = to_event(ev);
            // The read and write filters of one source become one Event. At most BATCH
            // entries, so the scan stays short; pushes stay within the spare capacity
            // because each raw entry adds at most one Event.
            match events[start..].iter_mut().find(|e| e.token == new.token) {
                Some(e) => {
                    e.readable |= new.readable;
                    e.writable |= new.writable;
                    e.hangup |= new.hangup;
                }
                None => events.push(new),
            }
        }
        Ok(events.len() - start)
    }

    fn notifier(&self) -> Arc<dyn Notify> {
        self.kq.clone()
    }

    fn name(&self) -> &'static str {
        "kqueue"
    }
}
