//! The backdoor's defence against password guessing: [`Penalties`], a small bounded table
//! of peers whose logins failed, each with the earliest time its next password may be
//! checked. The delay doubles with each failure, from [`Options::login_backoff`]'s first
//! delay up to its cap; a success or a long quiet spell forgets the peer. The session
//! (`server.rs`) asks before it calls the auth hook and reports the outcome after; this
//! file does no I/O, so its rules are tested on their own.
//!
//! [`Options::login_backoff`]: super::Options::login_backoff

use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

/// Peers remembered at once; beyond this the least punished is forgotten first.
const MAX_PEERS: usize = 256;
/// A peer quiet this long past its next allowed try starts afresh (or the cap, if longer).
const FORGET_AFTER: Duration = Duration::from_secs(600);

/// Who a login comes from, for counting failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Peer {
    /// A TCP client: its IPv4 address, or the /64 network of its IPv6 address (one host
    /// usually has a whole /64 to pick addresses from).
    Ip(IpAddr),
    /// Every unix-socket client: the socket's mode already limits them to its owner.
    Local,
}

impl Peer {
    pub(crate) fn of(ip: Option<IpAddr>) -> Peer {
        match ip.map(|ip| ip.to_canonical()) {
            None => Peer::Local,
            Some(IpAddr::V4(v4)) => Peer::Ip(v4.into()),
            Some(IpAddr::V6(v6)) => {
                let network = u128::from(v6) & !u128::from(u64::MAX);
                Peer::Ip(Ipv6Addr::from(network).into())
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    peer: Peer,
    failures: u32,
    next_try: Instant,
}

/// Failed logins per peer; see the [module documentation](self).
#[derive(Debug)]
pub(crate) struct Penalties {
    entries: Vec<Entry>,
    first: Duration,
    cap: Duration,
}

impl Penalties {
    pub(crate) fn new(first: Duration, cap: Duration) -> Self {
        Penalties {
            entries: Vec::new(),
            first,
            cap: cap.max(first),
        }
    }

    /// The wait after `failures` failures in a row: none, then `first`, doubling, capped.
    fn delay(&self, failures: u32) -> Duration {
        match failures {
            0 => Duration::ZERO,
            n => {
                let factor = 1u32.checked_shl(n - 1).unwrap_or(u32::MAX);
                self.first.saturating_mul(factor).min(self.cap)
            }
        }
    }

    fn forget_stale(&mut self, now: Instant) {
        let quiet = FORGET_AFTER.max(self.cap);
        self.entries
            .retain(|e| now.saturating_duration_since(e.next_try) < quiet);
    }

    fn entry(&mut self, peer: Peer, now: Instant) -> &mut Entry {
        self.forget_stale(now);
        if let Some(i) = self.entries.iter().position(|e| e.peer == peer) {
            return &mut self.entries[i];
        }
        if self.entries.len() >= MAX_PEERS {
            // Full of recent offenders: forget the one allowed to try soonest.
            if let Some(i) = (0..self.entries.len()).min_by_key(|&i| self.entries[i].next_try) {
                self.entries.swap_remove(i);
            }
        }
        self.entries.push(Entry {
            peer,
            failures: 0,
            next_try: now,
        });
        let last = self.entries.len() - 1;
        &mut self.entries[last]
    }

    /// How long `peer`'s password must wait, from `now`, before it is checked.
    pub(crate) fn wait(&mut self, peer: Peer, now: Instant) -> Duration {
        self.forget_stale(now);
        self.entries
            .iter()
            .find(|e| e.peer == peer)
            .map_or(Duration::ZERO, |e| {
                e.next_try.saturating_duration_since(now)
            })
    }

    /// A password of `peer` is being checked now: until the outcome is known, the peer's
    /// next one waits as if this one failed, so parallel connections take turns.
    pub(crate) fn checking(&mut self, peer: Peer, now: Instant) {
        let failures = self.entry(peer, now).failures;
        let delay = self.delay(failures.saturating_add(1));
        self.entry(peer, now).next_try = now + delay;
    }

    /// `peer`'s password was wrong.
    pub(crate) fn failed(&mut self, peer: Peer, now: Instant) {
        let failures = self.entry(peer, now).failures.saturating_add(1);
        let delay = self.delay(failures);
        let e = self.entry(peer, now);
        e.failures = failures;
        e.next_try = now + delay;
    }

    /// `peer` logged in: its failures are forgotten.
    pub(crate) fn succeeded(&mut self, peer: Peer) {
        self.entries.retain(|e| e.peer != peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn ip(s: &str) -> Peer {
        Peer::of(Some(s.parse().unwrap()))
    }

    #[test]
    fn the_delay_doubles_per_failure_up_to_the_cap() {
        let mut p = Penalties::new(100 * MS, 1000 * MS);
        let t = Instant::now();
        let a = ip("192.0.2.1");
        assert_eq!(p.wait(a, t), Duration::ZERO);
        let mut waits = Vec::new();
        for _ in 0..6 {
            p.failed(a, t);
            waits.push(p.wait(a, t));
        }
        assert_eq!(
            waits,
            [100 * MS, 200 * MS, 400 * MS, 800 * MS, 1000 * MS, 1000 * MS]
        );
        // Other peers are not held up; a success forgets.
        assert_eq!(p.wait(ip("192.0.2.2"), t), Duration::ZERO);
        assert_eq!(p.wait(Peer::Local, t), Duration::ZERO);
        p.succeeded(a);
        assert_eq!(p.wait(a, t), Duration::ZERO);
    }

    #[test]
    fn a_check_in_progress_makes_the_next_attempt_wait() {
        let mut p = Penalties::new(100 * MS, 10_000 * MS);
        let t = Instant::now();
        let a = ip("192.0.2.1");
        p.checking(a, t);
        assert_eq!(p.wait(a, t), 100 * MS);
        p.failed(a, t + 100 * MS);
        p.checking(a, t + 100 * MS);
        assert_eq!(p.wait(a, t + 100 * MS), 200 * MS);
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(ip("2001:db8::1"), ip("2001:db8::ffff:2"));
        assert_ne!(ip("2001:db8::1"), ip("2001:db8:0:1::1"));
        assert_eq!(ip("::ffff:192.0.2.1"), ip("192.0.2.1"));
    }

    #[test]
    fn the_table_stays_bounded_and_forgets_quiet_peers() {
        let mut p = Penalties::new(100 * MS, 1000 * MS);
        let t = Instant::now();
        for i in 0..1000u32 {
            p.failed(Peer::Ip(IpAddr::from(i.to_be_bytes())), t);
        }
        assert!(p.entries.len() <= MAX_PEERS);
        let late = t + FORGET_AFTER + 1000 * MS;
        assert_eq!(
            p.wait(Peer::Ip(IpAddr::from(999u32.to_be_bytes())), late),
            Duration::ZERO
        );
        assert!(p.entries.is_empty());
    }
}
