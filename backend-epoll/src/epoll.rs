//! The epoll set, its eventfd notifier, and the translation from `epoll_event` to `Event`.

use core::mem::size_of;
use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;
use shrapnel_core::poller::{Event, Interest, Notify, OsError, Poller, RawSource, Token};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

/// The `epoll_event.u64` of the notifier's eventfd; users cannot register this token.
const NOTIFY_DATA: u64 = u64::MAX;
/// The token the notifier's entry carries between conversion and filtering in `poll`.
const NOTIFY_TOKEN: Token = Token(NOTIFY_DATA as usize);
/// Slots reserved when the caller passes a vector without spare capacity.
const DEFAULT_EVENTS: usize = 64;

/// A Linux epoll instance: the [`Poller`] used on Linux.
///
/// Sources are registered once, edge-triggered, with `EPOLLRDHUP` so a peer's shutdown is
/// seen as a hang-up. The epoll fd is closed on drop; the eventfd is closed when the poller
/// and every handle from [`Poller::notifier`] are gone (a handle may outlive the poller, and
/// must never write to a number the process has since reused).
#[derive(Debug)]
pub struct EpollPoller {
    /// The epoll set every source and the notifier's eventfd are registered in.
    epoll: OwnedFd,
    /// The eventfd another thread writes to wake `epoll_wait`; shared with notifier handles.
    notify: Arc<EventFdNotify>,
}

/// The cross-thread wake-up: an eventfd in the epoll set, written at most once per poll.
#[derive(Debug)]
struct EventFdNotify {
    /// Non-blocking, close-on-exec eventfd; readable while a wake-up is pending.
    fd: OwnedFd,
    /// Set by the first `notify` since the poller last drained the eventfd, so a burst of
    /// notifies costs one `write`.
    pending: AtomicBool,
}

impl Notify for EventFdNotify {
    fn notify(&self) {
        // AcqRel: whatever the caller published before notifying is visible to the poller
        // thread once its swap in `drain` reads this `true`.
        if !self.pending.swap(true, Ordering::AcqRel) {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a live u64 to an eventfd we own.
            let rc = unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
            // The only failure is EAGAIN with the counter at its maximum (one increment per
            // wake-up: never in practice). Reset it and write again, so this notify still
            // makes an edge.
            if rc < 0 {
                self.reset();
                // SAFETY: as above.
                let _ = unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
            }
        }
    }
}

impl EventFdNotify {
    /// Called by `poll` when the eventfd fired: let the next `notify` write again.
    ///
    /// The counter is not read back. The eventfd is registered edge-triggered, and every
    /// `write` wakes its waiters, which queues a new edge for the epoll set even while the
    /// counter is already non-zero; so a readable eventfd never hides a later wake-up, and
    /// a wake-up costs the waker one `write` and the poller no system call of its own (as
    /// mio's waker does). The counter grows by one per wake-up; `notify` resets it on the
    /// overflow that never comes.
    ///
    /// A notify between the `epoll_wait` that returned this event and the clear below
    /// finds `pending` set and skips its write, but this poll is already returning and
    /// the scheduler looks at its queues afterwards.
    fn drain(&self) {
        self.pending.swap(false, Ordering::AcqRel);
    }

    /// Read the counter back to zero.
    fn reset(&self) {
        let mut count: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64 from an eventfd we own; EAGAIN (nothing to
        // read) is harmless.
        let _ = unsafe { libc::read(self.fd.as_raw_fd(), (&mut count as *mut u64).cast(), 8) };
    }
}

fn last_error(op: &'static str) -> OsError {
    OsError {
        op,
        errno: std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
    }
}

/// Take ownership of an fd returned by a syscall, or report its error.
fn own(fd: RawFd, op: &'static str) -> Result<OwnedFd, OsError> {
    if fd < 0 {
        return Err(last_error(op));
    }
    // SAFETY: `fd` was just returned by the kernel and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The epoll flags for a registration: edge-triggered, hang-ups always, and the directions
/// asked for.
fn flags_for(interest: Interest) -> u32 {
    let mut flags = (libc::EPOLLET | libc::EPOLLRDHUP) as u32;
    if interest.readable {
        flags |= (libc::EPOLLIN | libc::EPOLLPRI) as u32;
    }
    if interest.writable {
        flags |= libc::EPOLLOUT as u32;
    }
    flags
}

/// What an `epoll_event` means to the scheduler.
fn to_event(raw: libc::epoll_event) -> Event {
    let flags = raw.events;
    let has = |bits: i32| flags & bits as u32 != 0;
    let hangup = has(libc::EPOLLHUP | libc::EPOLLERR | libc::EPOLLRDHUP);
    Event {
        token: Token(raw.u64 as usize),
        readable: hangup || has(libc::EPOLLIN | libc::EPOLLPRI),
        writable: hangup || has(libc::EPOLLOUT),
        hangup,
    }
}

/// `epoll_wait`'s timeout: milliseconds rounded up, capped at `i32::MAX`; -1 for none.
fn timeout_ms(timeout: Option<Duration>) -> i32 {
    match timeout {
        None => -1,
        Some(t) => {
            let ms = t.as_nanos().div_ceil(1_000_000);
            i32::try_from(ms).unwrap_or(i32::MAX)
        }
    }
}

impl EpollPoller {
    /// A new epoll set with its notifier registered.
    ///
    /// Fails with the errno of `epoll_create1`, `eventfd` or `epoll_ctl`: `EMFILE`/`ENFILE`
    /// (too many open files: raise the limit) or `ENOMEM`.
    pub fn new() -> Result<EpollPoller, OsError> {
        // SAFETY: plain syscalls with integer arguments; the fds are owned at once.
        let epoll = own(
            unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) },
            "epoll_create1",
        )?;
        // SAFETY: as above.
        let fd = own(
            unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) },
            "eventfd",
        )?;
        let notify = Arc::new(EventFdNotify {
            fd,
            pending: AtomicBool::new(false),
        });
        let poller = EpollPoller { epoll, notify };
        poller.ctl(
            libc::EPOLL_CTL_ADD,
            poller.notify.fd.as_raw_fd(),
            (libc::EPOLLIN | libc::EPOLLET) as u32,
            NOTIFY_DATA,
            "epoll_ctl(EPOLL_CTL_ADD) of the notifier eventfd",
        )?;
        Ok(poller)
    }

    fn ctl(
        &self,
        op: i32,
        fd: RawFd,
        flags: u32,
        data: u64,
        name: &'static str,
    ) -> Result<(), OsError> {
        let mut ev = libc::epoll_event {
            events: flags,
            u64: data,
        };
        // SAFETY: `ev` is live for the call; the kernel validates `fd`.
        let rc = unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), op, fd, &mut ev) };
        if rc < 0 {
            return Err(last_error(name));
        }
        Ok(())
    }

    fn check_token(token: Token, op: &'static str) -> Result<(), OsError> {
        if token == NOTIFY_TOKEN {
            return Err(OsError {
                op,
                errno: libc::EINVAL,
            });
        }
        Ok(())
    }

    /// Rewrite the `n` raw `epoll_event`s the kernel put at `base` as `Event`s in the same
    /// memory.
    ///
    /// # Safety
    /// `base` points to memory for at least `n` `Event`s, valid and writable, whose first
    /// `n * size_of::<epoll_event>()` bytes the kernel has filled with `n` events.
    unsafe fn convert_in_place(base: *mut u8, n: usize) {
        let raw_at = |i: usize| {
            // SAFETY: raw entry `i < n` lies within the filled bytes; `read_unaligned`
            // because a Vec<Event> need not be aligned for `epoll_event`.
            unsafe {
                base.add(i * size_of::<libc::epoll_event>())
                    .cast::<libc::epoll_event>()
                    .read_unaligned()
            }
        };
        let event_at = |i: usize| base.cast::<Event>().wrapping_add(i);
        // Event `i` overlaps raw entries at or after `i` when events are at least as large
        // as raw entries (walk backwards), at or before `i` otherwise (walk forwards); in
        // both orders each raw entry is read before anything overwrites it.
        if size_of::<Event>() >= size_of::<libc::epoll_event>() {
            for i in (0..n).rev() {
                let ev = to_event(raw_at(i));
                // SAFETY: slot `i < n` is within the caller's memory and aligned for Event.
                unsafe { event_at(i).write(ev) };
            }
        } else {
            for i in 0..n {
                let ev = to_event(raw_at(i));
                // SAFETY: as above.
                unsafe { event_at(i).write(ev) };
            }
        }
    }
}

impl Poller for EpollPoller {
    fn register(&self, source: RawSource, token: Token, interest: Interest) -> Result<(), OsError> {
        const OP: &str = "epoll_ctl(EPOLL_CTL_ADD)";
        Self::check_token(token, OP)?;
        self.ctl(
            libc::EPOLL_CTL_ADD,
            source,
            flags_for(interest),
            token.0 as u64,
            OP,
        )
    }

    fn reregister(
        &self,
        source: RawSource,
        token: Token,
        interest: Interest,
    ) -> Result<(), OsError> {
        const OP: &str = "epoll_ctl(EPOLL_CTL_MOD)";
        Self::check_token(token, OP)?;
        self.ctl(
            libc::EPOLL_CTL_MOD,
            source,
            flags_for(interest),
            token.0 as u64,
            OP,
        )
    }

    fn deregister(&self, source: RawSource) -> Result<(), OsError> {
        self.ctl(
            libc::EPOLL_CTL_DEL,
            source,
            0,
            0,
            "epoll_ctl(EPOLL_CTL_DEL)",
        )
    }

    fn poll(&self, events: &mut Vec<Event>, timeout: Option<Duration>) -> Result<usize, OsError> {
        // Room for at least one raw entry (on 32-bit targets an Event is smaller than an
        // epoll_event, so one spare slot may not be enough).
        if (events.capacity() - events.len()) * size_of::<Event>() < size_of::<libc::epoll_event>()
        {
            events.reserve(DEFAULT_EVENTS);
        }
        let start = events.len();
        let spare = events.spare_capacity_mut();
        // Each raw entry becomes one Event in the same memory, so at most `spare.len()`
        // entries, and no more than fit in its bytes.
        let bytes = spare.len() * size_of::<Event>();
        let max = spare
            .len()
            .min(bytes / size_of::<libc::epoll_event>())
            .min(i32::MAX as usize);
        let base = spare.as_mut_ptr().cast::<u8>();
        // SAFETY: the kernel writes at most `max` epoll_events into `base`, which has room
        // for `max * size_of::<epoll_event>()` bytes; it does not require alignment.
        let rc = unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                base.cast(),
                max as i32,
                timeout_ms(timeout),
            )
        };
        if rc < 0 {
            let err = last_error("epoll_wait");
            return if err.errno == libc::EINTR {
                Ok(0)
            } else {
                Err(err)
            };
        }
        let n = rc as usize;
        // SAFETY: the kernel filled `n <= max` entries at `base`, and `base` has room for
        // `max` Events.
        unsafe { Self::convert_in_place(base, n) };
        // SAFETY: the `n` slots after `start` were just initialised.
        unsafe { events.set_len(start + n) };
        // Take the notifier's entry out; it is at most one.
        if let Some(i) = events[start..].iter().position(|e| e.token == NOTIFY_TOKEN) {
            events.remove(start + i);
            self.notify.drain();
            return Ok(n - 1);
        }
        Ok(n)
    }

    fn notifier(&self) -> Arc<dyn Notify> {
        self.notify.clone()
    }

    fn name(&self) -> &'static str {
        "epoll"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_round_up_to_whole_milliseconds() {
        assert_eq!(timeout_ms(None), -1);
        assert_eq!(timeout_ms(Some(Duration::ZERO)), 0);
        assert_eq!(timeout_ms(Some(Duration::from_nanos(1))), 1);
        assert_eq!(timeout_ms(Some(Duration::from_micros(1500))), 2);
        assert_eq!(timeout_ms(Some(Duration::from_millis(50))), 50);
        assert_eq!(timeout_ms(Some(Duration::MAX)), i32::MAX);
    }

    #[test]
    fn hangup_and_error_wake_both_directions() {
        let ev = to_event(libc::epoll_event {
            events: libc::EPOLLERR as u32,
            u64: 9,
        });
        assert_eq!(
            ev,
            Event {
                token: Token(9),
                readable: true,
                writable: true,
                hangup: true
            }
        );
        let ev = to_event(libc::epoll_event {
            events: libc::EPOLLOUT as u32,
            u64: 3,
        });
        assert_eq!(
            ev,
            Event {
                token: Token(3),
                readable: false,
                writable: true,
                hangup: false
            }
        );
        let ev = to_event(libc::epoll_event {
            events: libc::EPOLLPRI as u32,
            u64: 4,
        });
        assert!(ev.readable && !ev.writable && !ev.hangup);
    }

    #[test]
    fn every_notify_wakes_a_poll_without_the_counter_being_read() {
        let p = EpollPoller::new().expect("epoll_create1");
        let notify = p.notifier();
        let mut events = Vec::new();
        // Each notify after a poll drained the last one is a new edge, though the eventfd's
        // counter is never read back and stays readable.
        for round in 0..100 {
            notify.notify();
            notify.notify(); // the same wake-up: no second write
            let n = p
                .poll(&mut events, Some(Duration::from_secs(5)))
                .expect("epoll_wait");
            assert_eq!(
                n, 0,
                "round {round}: the notifier's event is not handed out"
            );
            assert!(events.is_empty());
            assert!(
                !p.notify.pending.load(Ordering::Acquire),
                "round {round}: the poll saw the wake-up (did not time out)"
            );
        }
        // Nothing pending now: a short poll times out.
        let started = std::time::Instant::now();
        p.poll(&mut events, Some(Duration::from_millis(20)))
            .expect("epoll_wait");
        assert!(started.elapsed() >= Duration::from_millis(20));
    }

    #[test]
    fn a_notify_at_a_saturated_counter_resets_it_and_still_wakes() {
        let p = EpollPoller::new().expect("epoll_create1");
        let mut events = Vec::new();
        // The largest value an eventfd holds: one more write would fail with EAGAIN.
        let most: u64 = u64::MAX - 1;
        // SAFETY: writes 8 bytes from a live u64 to the poller's own eventfd.
        let rc = unsafe { libc::write(p.notify.fd.as_raw_fd(), (&most as *const u64).cast(), 8) };
        assert_eq!(rc, 8);
        // That write was an edge of its own; take it.
        p.poll(&mut events, Some(Duration::from_secs(5)))
            .expect("epoll_wait");
        p.notifier().notify();
        assert!(p.notify.pending.load(Ordering::Acquire));
        p.poll(&mut events, Some(Duration::from_secs(5)))
            .expect("epoll_wait");
        assert!(
            !p.notify.pending.load(Ordering::Acquire),
            "the notify at the saturated counter woke the poll"
        );
    }

    #[test]
    fn the_notifier_token_is_reserved() {
        let p = EpollPoller::new().expect("epoll_create1");
        let err = p.register(0, NOTIFY_TOKEN, Interest::READABLE).unwrap_err();
        assert_eq!(err.errno, libc::EINVAL);
    }

    #[test]
    fn a_vector_without_spare_capacity_gets_room() {
        let p = EpollPoller::new().expect("epoll_create1");
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills a live two-element array.
        assert_eq!(
            unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) },
            0
        );
        p.register(fds[1], Token(5), Interest::WRITABLE)
            .expect("register");
        let mut events = Vec::new();
        let n = p
            .poll(&mut events, Some(Duration::from_secs(5)))
            .expect("poll");
        assert_eq!(n, 1);
        assert_eq!(
            events,
            [Event {
                token: Token(5),
                readable: false,
                writable: true,
                hangup: false
            }]
        );
        p.deregister(fds[1]).expect("deregister");
        // SAFETY: both fds are ours.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
    }

    #[test]
    fn in_place_conversion_keeps_every_event() {
        // 200 raw events packed at the start of a buffer of 200 Event slots.
        let n = 200;
        let mut buf: Vec<Event> = Vec::with_capacity(n);
        let base = buf.spare_capacity_mut().as_mut_ptr().cast::<u8>();
        for i in 0..n {
            let raw = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: 1000 + i as u64,
            };
            // SAFETY: entry `i` lies within the buffer's `n * size_of::<Event>()` bytes.
            unsafe {
                base.add(i * size_of::<libc::epoll_event>())
                    .cast::<libc::epoll_event>()
                    .write_unaligned(raw)
            };
        }
        // SAFETY: `n` raw entries were written at `base`, which has room for `n` Events.
        unsafe {
            EpollPoller::convert_in_place(base, n);
            buf.set_len(n);
        }
        for (i, e) in buf.iter().enumerate() {
            assert_eq!(
                *e,
                Event {
                    token: Token(1000 + i),
                    readable: true,
                    writable: false,
                    hangup: false
                }
            );
        }
    }
}
