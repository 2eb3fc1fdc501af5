//! The Poller conformance suite: one set of checks every backend runs unchanged.
//!
//! Each case is a `pub fn` that takes a constructor for a fresh poller, so a backend can run
//! it as its own `#[test]`; [`poller_conformance_tests!`](crate::poller_conformance_tests)
//! expands to one `#[test]` per case:
//!
//! ```ignore
//! // backend-epoll/tests/conformance.rs
//! shrapnel_core::poller_conformance_tests!(
//!     shrapnel_epoll::EpollPoller::new().expect("epoll_create1")
//! );
//! ```
//!
//! The cases check the contract written on [`Poller`] and nothing stronger, so that epoll
//! and kqueue both pass without special cases:
//! - readiness is reported for pipes and socketpairs, for reads and for writes;
//! - edge-triggered means *no repeat without news*: once an event for a token was returned,
//!   no further event for it arrives until the source sees new activity, and after the
//!   reader drains the source to `EAGAIN`, new data brings a new event. (Whether a second
//!   write *without* draining re-fires is left open: epoll and kqueue `EV_CLEAR` both do,
//!   but the scheduler's readiness cache never depends on it.)
//! - a peer closing is reported as `hangup` or `readable`;
//! - the notifier wakes a `poll(None)` in progress and a `poll` that has not started yet,
//!   coalesced notifies keep working afterwards, and they never show up as an [`Event`];
//! - a timeout is never cut short (a poller with nothing registered and no notify must not
//!   return before its timeout; "spurious empty returns" are for busy pollers);
//! - `poll` appends after the events already in the vector and respects its spare capacity;
//! - deregistered sources stay silent, also when their fd number is reused;
//! - 1000 sources with 100 of them ready report exactly those 100 tokens, once each;
//! - an fd that cannot be open is refused with `EBADF`; reregister replaces the interest.
//!
//! Durations here are liveness guards (a case that blocks for more than [`LIVENESS`] aborts
//! the test binary with a message naming the case), never assertions about speed: speed is
//! for benchmarks. Sources are made with `libc`, so the suite needs a unix target.
#![cfg(unix)]

use super::{Event, Interest, Poller, RawSource, Token};
use alloc::collections::BTreeSet;
use alloc::vec::Vec;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long a case may wait for something that must happen before it is declared hung.
pub const LIVENESS: Duration = Duration::from_secs(5);

/// How long a case watches for events that must *not* arrive.
const QUIET: Duration = Duration::from_millis(100);

/// Expands to one `#[test]` per conformance case, each building its poller with `$new`.
///
/// `$new` is an expression evaluated once per case, e.g.
/// `shrapnel_epoll::EpollPoller::new().expect("epoll_create1")`.
#[macro_export]
macro_rules! poller_conformance_tests {
    ($new:expr) => {
        $crate::poller_conformance_tests!(@cases $new;
            readable_after_write_to_socketpair,
            readable_after_write_to_pipe,
            writable_when_fresh,
            edge_triggered_no_repeat_without_news,
            hangup_when_peer_closes,
            notify_from_thread_wakes_blocked_poll,
            notify_before_poll_is_kept_and_coalesced,
            timeout_never_returns_early,
            poll_appends_and_respects_capacity,
            deregistered_source_is_silent_after_fd_reuse,
            many_fds_report_exactly_the_ready_tokens,
            register_invalid_fd_is_ebadf,
            reregister_changes_interest,
        );
    };
    (@cases $new:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::poller::conformance::$case(|| $new);
            }
        )*
    };
}

/// A socket or pipe end, closed on drop.
struct End(OwnedFd);

impl End {
    fn fd(&self) -> RawSource {
        self.0.as_raw_fd()
    }

    /// Take ownership of a fresh fd and make it non-blocking and close-on-exec.
    fn adopt(fd: i32) -> End {
        assert!(fd >= 0, "conformance: adopting invalid fd {fd}");
        // SAFETY: `fd` was just returned by socketpair/pipe and nothing else owns it.
        let end = End(unsafe { OwnedFd::from_raw_fd(fd) });
        // SAFETY: fcntl on an fd we own, with integer arguments only.
        unsafe {
            let fl = libc::fcntl(fd, libc::F_GETFL);
            assert!(fl >= 0, "conformance: F_GETFL: {}", errno());
            assert!(libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) == 0);
            assert!(libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) == 0);
        }
        end
    }

    /// Write one byte; the caller knows there is buffer space.
    fn write_byte(&self) {
        let b = [0x5au8];
        // SAFETY: writes one byte from a live buffer to an fd we own.
        let n = unsafe { libc::write(self.fd(), b.as_ptr().cast(), 1) };
        assert_eq!(
            n,
            1,
            "conformance: write to fd {} failed: errno {}",
            self.fd(),
            errno()
        );
    }

    /// Read until the source would block; returns how many bytes were read.
    fn drain(&self) -> usize {
        let mut buf = [0u8; 4096];
        let mut total = 0;
        loop {
            // SAFETY: reads into a live buffer of the given length from an fd we own.
            let n = unsafe { libc::read(self.fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n > 0 {
                total += n as usize;
                continue;
            }
            if n == 0 {
                return total;
            }
            let e = errno();
            if e == libc::EAGAIN || e == libc::EWOULDBLOCK {
                return total;
            }
            assert_eq!(
                e,
                libc::EINTR,
                "conformance: read from fd {} failed: errno {e}",
                self.fd()
            );
        }
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn socketpair() -> (End, End) {
    let mut fds = [-1i32; 2];
    // SAFETY: socketpair writes two fds into a live two-element array.
    let rc = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) };
    assert_eq!(rc, 0, "conformance: socketpair failed: errno {}", errno());
    (End::adopt(fds[0]), End::adopt(fds[1]))
}

/// A pipe as (read end, write end).
fn pipe() -> (End, End) {
    let mut fds = [-1i32; 2];
    // SAFETY: pipe writes two fds into a live two-element array.
    let rc = unsafe { libc::pipe(fds.as_mut_ptr()) };
    assert_eq!(rc, 0, "conformance: pipe failed: errno {}", errno());
    (End::adopt(fds[0]), End::adopt(fds[1]))
}

/// Aborts the process with a message if it is still alive after [`LIVENESS`]: a hung `poll`
/// would otherwise hang the whole test run instead of failing one case.
struct Watchdog {
    done: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Watchdog {
    fn start(case: &'static str) -> Watchdog {
        let (tx, rx) = mpsc::channel::<()>();
        let thread = thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(LIVENESS) {
                // Straight to fd 2: the test harness captures `eprintln!` and an abort would
                // lose it.
                let msg = std::format!(
                    "\npoller conformance: `{case}` is still blocked in poll after {LIVENESS:?}; \
                     a poll that had to return did not (aborting so the run fails instead of hanging)\n"
                );
                // SAFETY: writes a live byte buffer to stderr.
                unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
                std::process::abort();
            }
        });
        Watchdog {
            done: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One `poll`, checking the parts of the contract every call must meet.
fn poll_once<P: Poller>(
    p: &P,
    events: &mut Vec<Event>,
    timeout: Option<Duration>,
    case: &str,
) -> usize {
    let before = events.len();
    let spare = events.capacity() - before;
    let n = p
        .poll(events, timeout)
        .unwrap_or_else(|e| panic!("{case}: {} poll failed: {e}", p.name()));
    assert_eq!(
        events.len(),
        before + n,
        "{case}: poll returned {n} but appended {}",
        events.len() - before
    );
    if spare > 0 {
        assert!(
            n <= spare,
            "{case}: poll appended {n} events into {spare} spare slots"
        );
    }
    n
}

/// Poll until `done` holds for everything seen so far; panics after [`LIVENESS`].
fn poll_until<P: Poller>(p: &P, case: &str, mut done: impl FnMut(&[Event]) -> bool) -> Vec<Event> {
    let deadline = Instant::now() + LIVENESS;
    let mut seen = Vec::new();
    let mut batch = Vec::with_capacity(64);
    while !done(&seen) {
        let now = Instant::now();
        assert!(
            now < deadline,
            "{case}: expected events did not arrive within {LIVENESS:?}; saw {seen:?}"
        );
        batch.clear();
        poll_once(
            p,
            &mut batch,
            Some((deadline - now).min(Duration::from_millis(200))),
            case,
        );
        seen.extend_from_slice(&batch);
    }
    seen
}

/// Everything reported during `span`.
fn poll_for<P: Poller>(p: &P, span: Duration, case: &str) -> Vec<Event> {
    let end = Instant::now() + span;
    let mut seen = Vec::new();
    let mut batch = Vec::with_capacity(64);
    loop {
        let now = Instant::now();
        if now >= end {
            return seen;
        }
        batch.clear();
        poll_once(p, &mut batch, Some(end - now), case);
        seen.extend_from_slice(&batch);
    }
}

fn has(events: &[Event], token: Token, pred: impl Fn(&Event) -> bool) -> bool {
    events.iter().any(|e| e.token == token && pred(e))
}

fn deregister<P: Poller>(p: &P, fd: RawSource, case: &str) {
    p.deregister(fd)
        .unwrap_or_else(|e| panic!("{case}: deregister fd {fd}: {e}"));
}

fn register<P: Poller>(p: &P, fd: RawSource, token: Token, interest: Interest, case: &str) {
    p.register(fd, token, interest)
        .unwrap_or_else(|e| panic!("{case}: register fd {fd} as {token:?}: {e}"));
}

/// Writing to one end of a socketpair makes the other end's token readable.
pub fn readable_after_write_to_socketpair<P: Poller>(new: impl Fn() -> P) {
    const CASE: &str = "readable_after_write_to_socketpair";
    let p = new();
    let (a, b) = socketpair();
    register(&p, a.fd(), Token(1), Interest::READABLE, CASE);
    let early = poll_for(&p, Duration::ZERO, CASE);
    assert!(
        !has(&early, Token(1), |e| e.readable),
        "{CASE}: readable before any write: {early:?}"
    );
    b.write_byte();
    poll_until(&p, CASE, |seen| has(seen, Token(1), |e| e.readable));
    deregister(&p, a.fd(), CASE);
}

/// Writing to a pipe makes its read end's token readable.
pub fn readable_after_write_to_pipe<P: Poller>(new: impl Fn() -> P) {
    const CASE: &str = "readable_after_write_to_pipe";
    let p = new();
    let (r, w) = pipe();
    register(&p, r.fd(), Token(7), Interest::READABLE, CASE);
    w.write_byte();
    let seen = poll_until(&p, CASE, |seen| has(seen, Token(7), |e| e.readable));
    assert!(
        seen.iter().all(|e| e.token == Token(7)),
        "{CASE}: unexpected tokens: {seen:?}"
    );
    deregister(&p, r.fd(), CASE);
}

/// A fresh socket has buffer space, so registering it for writes reports it writable.
pub fn writable_when_fresh<P: Poller>(new: impl Fn() -> P) {
    const CASE: &str = "writable_when_fresh";
    let p = new();
    let (a, _b) = socketpair();
    register(&p, a.fd(), Token(2), Interest::WRITABLE, CASE);
    let seen = poll_until(&p, CASE, |seen| has(seen, Token(2), |e| e.writable));
    assert!(
        !has(&seen, Token(2), |e| e.readable && !e.hangup),
        "{CASE}: readable reported for a write-only interest: {seen:?}"
    );
    deregister(&p, a.fd(), CASE);
}

/// Edge-triggered: after an event, no further event for that token until something new
/// happens; after draining to `EAGAIN`, new data brings a new event.
pub fn edge_triggered_no_repeat_without_news<P: Poller>(new: impl Fn() -> P) {
    const CASE: &str = "edge_triggered_no_repeat_without_news";
    let p = new();
    let (a, b) = socketpair();
    register(&p, a.fd(), Token(3), Interest::READABLE, CASE);
    b.write_byte();
    poll_until(&p, CASE, |seen| has(seen, Token(3), |e| e.readable));
    // The byte is still unread: a level-triggered poller would report it again.
    let again = poll_for(&p, QUIET, CASE);
    assert!(
        !has(&again, Token(3), |_| true),
        "{CASE}: event repeated without new data (level-triggered?): {again:?}"
    );
    assert_eq!(a.drain(), 1, "{CASE}: expected the one byte written");
    let after_drain = poll_for(&p, QUIET, CASE);
    assert!(
        !has(&after_drain, Token(3), |_| true),
        "{CASE}: event after draining with no new data: {after_drain:?}"
    );
    b.write_byte();
    poll_until(&p, CASE, |seen| has(seen, Token(3), |e| e.readable));

    // The same for writes: a fresh socket's writable edge is reported once.
    let (c, _d) = socketpair();
    register(&p, c.fd(), Token(4), Interest::WRITABLE, CASE);
    poll_until(&p, CASE, |seen| has(seen, Token(4), |e| e.writable));
    let again = poll_for(&p, QUIET, CASE);
    assert!(
        !has(&again, Token(4), |_| true),
        "{CASE}: writable repeated with nothing written: {again:?}"
    );
    deregister(&p, a.fd(), CASE);
    deregister(&p, c.fd(), CASE);
}

/// Closing the peer of a socketpair or the write end of a pipe is reported as `hangup` or
/// `readable` (a read then returns 0).
pub fn hangup_when_peer_closes<P: Poller>(new: impl Fn() -> P) {
    const CASE: &str = "hangup_when_peer_closes";
    let p = new();
    let (a, b) = socketpair();
    register(&p, a.fd(), Token(5), Interest::BOTH, CASE);
    poll_until(&p, CASE, |seen| has(seen, Token(5), |e| e.writable));
    drop(b);
    poll_until(&p, CASE, |seen| {
        has(seen, Token(5), |e| e.hangup || e.readable)
    });
    deregister(&p, a.fd(), CASE);

    let (r, w) = pipe();
    register(&p, r.fd(), Token(6), Interest::READABLE, CASE);
    drop(w);
    poll_until(&p, CASE, |seen| {
        has(seen, Token(6), |e| e.hangup || e.readable)
    });
    deregister(&p, r.fd(), CASE);
}

/// A notify from another thread ends a `poll(None)` that is already blocked, and one with
/// a timeout too large for the OS call (which must not overflow into an error or a tiny
/// wait).
pub fn notify_from_thread_wakes_blocked_poll<P: Poller>(new: impl Fn() -> P) {
    const CASE: &str = "notify_from_thread_wakes_blocked_poll";
    let p = new();
    for timeout in [
        None,
        Some(Duration::MAX),
        Some(Duration::from_secs(u64::from(u32::MAX))),
    ] {
        let notifier = p.notifier();
        let waker = thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            notifier.notify();
        });
        let guard = Watchdog::start(CASE);
        let start = Instant::now();
        let mut events = Vec::with_capacity(8);
        poll_once(&p, &mut events, timeout, CASE);
        let took = start.elapsed();
        drop(guard);
        assert!(
            took < LIVENESS,
            "{CASE}: poll({timeout:?}) returned only after {took:?}"
        );
        assert!(
            events.is_empty(),
            "{CASE}: the notifier surfaced as a user event: {events:?}"
        );
        waker.join().unwrap();
        // Consume any wake that landed after the poll returned on its own.
        poll_once(&p, &mut events, Some(Duration::ZERO), CASE);
    }
}

/// A notify before `poll` is not lost; many notifies coalesce into at least one wake and the
/// notifier still works afterwards.
pub fn notify_before_poll_is_kept_and_coalesced<P: Poller>(new: impl Fn() -> P) {
    const CASE: &str = "notify_before_poll_is_kept_and_coalesced";
    let p = new();
    let notifier = p.notifier();
    let mut events = Vec::with_capacity(8);
    for round in 0..3 {
        let count = if round == 1 { 1000 } else { 1 };
        for _ in 0..count {
            notifier.notify();
        }
        let guard = Watchdog::start(CASE);
        poll_once(&p, &mut events, None, CASE);
        drop(guard);
        assert!(
            events.is_empty(),
            "{CASE}: the notifier surfaced as a user event: {events:?}"
        );
        // Coalesced notifies may leave one wake behind; take it now so the next round
        // starts clean.
        poll_once(&p, &mut events, Some(Duration::ZERO), CASE);
        assert!(
            events.is_empty(),
            "{CASE}: the notifier surfaced as a user event: {events:?}"
        );
    }
    // A clone of the handle wakes the same poller, from another thread.
    let clone = p.notifier();
    thread::spawn(move || clone.notify()).join().unwrap();
    let guard = Watchdog::start(CASE);
    poll_once(&p, &mut events, None, CASE);
    drop(guard);
}

/// `poll(Some(t))` with nothing to report returns after at least `t`, never early: also for
/// timeouts that are not whole milliseconds (rounding must go up).
pub fn timeout_never_returns_early<P: Poller>(new: impl Fn() -> P) {
    const CASE: &str = "timeout_never_returns_early";
    let p = new();
    let mut events = Vec::with_capacity(8);
    for t in [
        Duration::from_millis(50),
        Duration::from_micros(1500),
        Duration::from_micros(10_100),
        Duration::from_nanos(1),
    ] {
        let guard = Watchdog::start(CASE);
        let start = Instant::now();
        poll_once(&p, &mut events, Some(t), CASE);
        let took = start.elapsed();
        drop(guard);
        assert!(
            events.is_empty(),
            "{CASE}: events with nothing registered: {events:?}"
        );
        assert!(
            took >= t,
            "{CASE}: poll(Some({t:?})) returned early, after {took:?}"
        );
    }
    let guard = Watchdog::start(CASE);
    poll_once(&p, &mut events, Some(Duration::ZERO), CASE);
    drop(guard);
}

/// `poll` appends after what the vector already holds and never writes more than its spare
/// capacity; ready sources not reported yet come in later polls.
pub fn poll_appends_and_respects_capacity<P: Poller>(new: impl Fn() -> P) {
    const CASE: &str = "poll_appends_and_respects_capacity";
    let p = new();
    let pairs: Vec<(End, End)> = (0..8).map(|_| socketpair()).collect();
    for (i, (a, b)) in pairs.iter().enumerate() {
        register(&p, a.fd(), Token(100 + i), Interest::READABLE, CASE);
        b.write_byte();
    }
    let sentinel = Event {
        token: Token(usize::MAX - 1),
        readable: false,
        writable: false,
        hangup: true,
    };
    // Room for the sentinel and one event: eight sources need at least eight polls.
    let mut events = Vec::with_capacity(2);
    events.push(sentinel);
    let deadline = Instant::now() + LIVENESS;
    let mut seen = BTreeSet::new();
    while seen.len() < pairs.len() {
        assert!(
            Instant::now() < deadline,
            "{CASE}: only {seen:?} reported within {LIVENESS:?}"
        );
        events.truncate(1);
        poll_once(&p, &mut events, Some(Duration::from_millis(200)), CASE);
        assert_eq!(
            events[0], sentinel,
            "{CASE}: poll overwrote the caller's events"
        );
        for e in &events[1..] {
            assert!(
                (100..108).contains(&e.token.0),
                "{CASE}: unknown token in {e:?}"
            );
            seen.insert(e.token.0);
        }
    }
    for (a, _) in &pairs {
        deregister(&p, a.fd(), CASE);
    }
}

/// After `deregister` the source is silent; when its fd number is reused for a new source
/// registered under another token, only the new token is reported.
pub fn deregistered_source_is_silent_after_fd_reuse<P: Poller>(new: impl Fn() -> P) {
    const CASE: &str = "deregistered_source_is_silent_after_fd_reuse";
    let p = new();
    let (a, b) = socketpair();
    let number = a.fd();
    register(&p, number, Token(10), Interest::BOTH, CASE);
    poll_until(&p, CASE, |seen| has(seen, Token(10), |e| e.writable));
    deregister(&p, number, CASE);
    b.write_byte();
    let quiet = poll_for(&p, QUIET, CASE);
    assert!(
        quiet.is_empty(),
        "{CASE}: events after deregister: {quiet:?}"
    );

    // Close `a` and put a new socket at the same number in one step (dup2), so no other
    // thread of the test run can take the number in between.
    let (c, d) = socketpair();
    // SAFETY: dup2 onto `number`, which `a` owns: the old socket is closed atomically and
    // `number` now refers to `c`'s socket; `a` is forgotten below so it is not closed twice.
    let rc = unsafe { libc::dup2(c.fd(), number) };
    assert_eq!(rc, number, "{CASE}: dup2 failed: errno {}", errno());
    core::mem::forget(a);
    // SAFETY: `number` is now an fd this case owns (the dup2 result).
    let reused = End(unsafe { OwnedFd::from_raw_fd(number) });
    drop(c);
    drop(b);
    register(&p, reused.fd(), Token(11), Interest::BOTH, CASE);
    d.write_byte();
    let seen = poll_until(&p, CASE, |seen| has(seen, Token(11), |e| e.readable));
    let seen_more = poll_for(&p, QUIET, CASE);
    assert!(
        seen.iter().chain(&seen_more).all(|e| e.token == Token(11)),
        "{CASE}: an event for the deregistered token after fd reuse: {seen:?} {seen_more:?}"
    );
    deregister(&p, reused.fd(), CASE);
}

/// Raise the soft open-files limit to at least `need` if the hard limit allows.
fn ensure_fd_limit(need: libc::rlim_t, case: &str) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a live rlimit struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        if lim.rlim_cur < need && lim.rlim_max >= need {
            lim.rlim_cur = need;
            assert_eq!(
                libc::setrlimit(libc::RLIMIT_NOFILE, &lim),
                0,
                "{case}: setrlimit: errno {}",
                errno()
            );
        }
    }
    assert!(
        lim.rlim_cur >= need,
        "{case}: needs {need} open files but the limit is {}; raise it (ulimit -n {need})",
        lim.rlim_cur
    );
}

/// 1000 socketpairs registered, 100 written to: exactly those 100 tokens are reported,
/// each once, over as many polls as the backend needs.
pub fn many_fds_report_exactly_the_ready_tokens<P: Poller>(new: impl Fn() -> P) {
    const CASE: &str = "many_fds_report_exactly_the_ready_tokens";
    const PAIRS: usize = 1000;
    ensure_fd_limit(4096, CASE);
    let p = new();
    let pairs: Vec<(End, End)> = (0..PAIRS).map(|_| socketpair()).collect();
    for (i, (a, _)) in pairs.iter().enumerate() {
        register(&p, a.fd(), Token(5000 + i), Interest::READABLE, CASE);
    }
    let ready: BTreeSet<usize> = (0..PAIRS)
        .filter(|i| i % 10 == 7)
        .map(|i| 5000 + i)
        .collect();
    for &t in &ready {
        pairs[t - 5000].1.write_byte();
    }
    let mut counts = alloc::collections::BTreeMap::<usize, usize>::new();
    let mut events = Vec::with_capacity(16);
    let deadline = Instant::now() + LIVENESS;
    while counts.len() < ready.len() {
        assert!(
            Instant::now() < deadline,
            "{CASE}: {} of {} tokens reported within {LIVENESS:?}",
            counts.len(),
            ready.len()
        );
        events.clear();
        poll_once(&p, &mut events, Some(Duration::from_millis(200)), CASE);
        for e in &events {
            assert!(
                ready.contains(&e.token.0),
                "{CASE}: token of an idle socket reported: {e:?}"
            );
            assert!(e.readable, "{CASE}: not readable: {e:?}");
            *counts.entry(e.token.0).or_default() += 1;
        }
    }
    for e in poll_for(&p, QUIET, CASE) {
        *counts.entry(e.token.0).or_default() += 1;
    }
    let repeated: Vec<_> = counts.iter().filter(|(_, &n)| n != 1).collect();
    assert!(
        repeated.is_empty(),
        "{CASE}: tokens reported more than once (token, times): {repeated:?}"
    );
    assert_eq!(counts.keys().copied().collect::<BTreeSet<_>>(), ready);
    for (a, _) in &pairs {
        deregister(&p, a.fd(), CASE);
    }
}

/// Registering an fd that cannot be open is refused with `EBADF`.
pub fn register_invalid_fd_is_ebadf<P: Poller>(new: impl Fn() -> P) {
    const CASE: &str = "register_invalid_fd_is_ebadf";
    let p = new();
    // -1, and a number above any possible descriptor table (a just-closed fd would race with
    // other cases opening fds in parallel).
    for fd in [-1, i32::MAX] {
        match p.register(fd, Token(20), Interest::BOTH) {
            Ok(()) => panic!("{CASE}: register({fd}) succeeded"),
            Err(e) => assert_eq!(e.errno, libc::EBADF, "{CASE}: register({fd}): {e}"),
        }
    }
}

/// `reregister` replaces both the interest and the token.
pub fn reregister_changes_interest<P: Poller>(new: impl Fn() -> P) {
    const CASE: &str = "reregister_changes_interest";
    let p = new();
    let (a, b) = socketpair();
    // Writable from the start, but only reads are watched: nothing to report.
    register(&p, a.fd(), Token(30), Interest::READABLE, CASE);
    let quiet = poll_for(&p, QUIET, CASE);
    assert!(
        !has(&quiet, Token(30), |_| true),
        "{CASE}: event for an unwatched direction: {quiet:?}"
    );

    p.reregister(a.fd(), Token(31), Interest::WRITABLE)
        .unwrap_or_else(|e| panic!("{CASE}: reregister: {e}"));
    let seen = poll_until(&p, CASE, |seen| has(seen, Token(31), |e| e.writable));
    assert!(
        !has(&seen, Token(30), |_| true),
        "{CASE}: old token after reregister: {seen:?}"
    );

    // Data arrives while only writes are watched: no readable report.
    b.write_byte();
    let quiet = poll_for(&p, QUIET, CASE);
    assert!(
        !has(&quiet, Token(31), |e| e.readable),
        "{CASE}: readable reported for a write-only interest: {quiet:?}"
    );

    // Back to reads: the pending byte is reported under the new token, and not as writable.
    p.reregister(a.fd(), Token(32), Interest::READABLE)
        .unwrap_or_else(|e| panic!("{CASE}: reregister: {e}"));
    let seen = poll_until(&p, CASE, |seen| has(seen, Token(32), |e| e.readable));
    assert!(
        seen.iter().all(|e| e.token == Token(32) && !e.writable),
        "{CASE}: expected only readable events for Token(32): {seen:?}"
    );
    deregister(&p, a.fd(), CASE);
}
