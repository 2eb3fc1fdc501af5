//! The blocking profile (hosted builds, feature `std`): for each place coroutines block
//! (the `#[track_caller]` line of the blocking call) and each kind of wait — mutex,
//! semaphore, condvar, fifo, rwlock, fd readable/writable, join, channel, interrupt event,
//! blocking pool; sleeps and yields are not contention and are left out — how many waits
//! ended there, and their total and longest time. Go's block and mutex profiles, for
//! coroutines.
//!
//! Recorded when a wait ends (`SchedState::block`, through `hooks::wait_ended`): the wait
//! began at the loop iteration's cached coarse time and ends at the current one, so the
//! record costs no clock read of its own, only a lookup in a small open-addressing table
//! keyed by the source line. On by default; [`set_enabled`] turns it off (then the cost is
//! one flag test), [`reset`] starts counting afresh.
//!
//! ```
//! # shrapnel_core::doc_scheduler!();
//! # use shrapnel_core as shrapnel;
//! use std::{rc::Rc, time::Duration};
//! use shrapnel::sync::Mutex;
//!
//! let m = Rc::new(Mutex::new(()));
//! for _ in 0..3 {
//!     let m = m.clone();
//!     shrapnel::spawn(move || {
//!         let _g = m.lock()?; // two of the three wait here
//!         shrapnel::sleep(Duration::from_millis(2))
//!     });
//! }
//! shrapnel::event_loop();
//! let top = shrapnel::wait_profile::contention();
//! let mutex = top.iter().find(|e| e.kind == "mutex").unwrap();
//! assert_eq!(mutex.count, 2);
//! assert!(mutex.max >= Duration::from_millis(1));
//! ```

use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::panic::Location;
use core::time::Duration;

use crate::sched::{sched, try_sched};
use crate::wait::WaitReason;

/// One place and kind of wait, as [`contention`] reports it.
#[derive(Clone, Debug)]
pub struct Contention {
    /// The kind of wait: `mutex`, `semaphore`, `inverted semaphore`, `condvar`, `fifo`,
    /// `rwlock (read)`, `rwlock (write)`, `readable fd`, `writable fd`, `join`, `channel`,
    /// `interrupt event`, `blocking pool`.
    pub kind: &'static str,
    /// The blocking call's source line.
    pub location: &'static Location<'static>,
    /// Waits that ended there.
    pub count: u64,
    /// Their total time.
    pub total: Duration,
    /// The longest.
    pub max: Duration,
}

/// The kind a wait counts as, or `None` for the waits that are not contention.
fn kind(reason: WaitReason) -> Option<&'static str> {
    Some(match reason {
        WaitReason::Mutex => "mutex",
        WaitReason::Semaphore => "semaphore",
        WaitReason::InvertedSemaphore => "inverted semaphore",
        WaitReason::Condvar => "condvar",
        WaitReason::Fifo => "fifo",
        WaitReason::RwLockRead => "rwlock (read)",
        WaitReason::RwLockWrite => "rwlock (write)",
        WaitReason::Readable(_) => "readable fd",
        WaitReason::Writable(_) => "writable fd",
        WaitReason::Join(_) => "join",
        WaitReason::Channel => "channel",
        WaitReason::Irq => "interrupt event",
        WaitReason::Blocking(_) => "blocking pool",
        WaitReason::NotStarted
        | WaitReason::Running
        | WaitReason::Scheduled
        | WaitReason::Yield
        | WaitReason::Sleep(_)
        | WaitReason::Dead => return None,
    })
}

#[derive(Clone, Copy)]
struct Entry {
    kind: &'static str,
    location: &'static Location<'static>,
    count: u64,
    total: u64,
    max: u64,
}

/// A scheduler's profile: the entries, and an open-addressing index over them keyed by
/// (location, kind); `u32::MAX` marks an empty slot.
pub(crate) struct WaitProfile {
    enabled: Cell<bool>,
    entries: RefCell<Vec<Entry>>,
    index: RefCell<Vec<u32>>,
}

impl Default for WaitProfile {
    fn default() -> Self {
        WaitProfile {
            enabled: Cell::new(true),
            entries: RefCell::new(Vec::new()),
            index: RefCell::new(Vec::new()),
        }
    }
}

const EMPTY: u32 = u32::MAX;

fn slot_of(location: &'static Location<'static>, kind: &'static str, mask: usize) -> usize {
    let key =
        (location as *const Location<'static> as usize) ^ (kind.as_ptr() as usize).rotate_left(17);
    // Fibonacci hashing: the high bits of the product.
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15_u64 as usize) >> 7) & mask
}

impl WaitProfile {
    /// A wait for `reason` from `location` that began at tick `since` ended at `now`.
    #[inline]
    pub(crate) fn record(
        &self,
        reason: WaitReason,
        location: &'static Location<'static>,
        since: u64,
        now: u64,
    ) {
        if !self.enabled.get() {
            return;
        }
        let Some(kind) = kind(reason) else {
            return;
        };
        self.add(kind, location, now.saturating_sub(since));
    }

    fn add(&self, kind: &'static str, location: &'static Location<'static>, ticks: u64) {
        let mut entries = self.entries.borrow_mut();
        let mut index = self.index.borrow_mut();
        if (entries.len() + 1) * 2 > index.len() {
            let size = (index.len() * 2).max(64);
            *index = alloc::vec![EMPTY; size];
            let mask = size - 1;
            for (i, e) in entries.iter().enumerate() {
                let mut s = slot_of(e.location, e.kind, mask);
                while index[s] != EMPTY {
                    s = (s + 1) & mask;
                }
                index[s] = i as u32;
            }
        }
        let mask = index.len() - 1;
        let mut s = slot_of(location, kind, mask);
        loop {
            match index[s] {
                EMPTY => {
                    index[s] = entries.len() as u32;
                    entries.push(Entry {
                        kind,
                        location,
                        count: 1,
                        total: ticks,
                        max: ticks,
                    });
                    return;
                }
                i => {
                    let e = &mut entries[i as usize];
                    if core::ptr::eq(e.location, location) && core::ptr::eq(e.kind, kind) {
                        e.count += 1;
                        e.total += ticks;
                        e.max = e.max.max(ticks);
                        return;
                    }
                }
            }
            s = (s + 1) & mask;
        }
    }
}

/// This thread's scheduler's blocking profile, the longest total wait first.
pub fn contention() -> Vec<Contention> {
    let Some(s) = try_sched() else {
        return Vec::new();
    };
    let rate = s.rate();
    let mut v: Vec<Contention> = s
        .wait_profile()
        .entries
        .borrow()
        .iter()
        .map(|e| Contention {
            kind: e.kind,
            location: e.location,
            count: e.count,
            total: rate.duration(e.total),
            max: rate.duration(e.max),
        })
        .collect();
    v.sort_by(|a, b| b.total.cmp(&a.total).then(b.count.cmp(&a.count)));
    v
}

/// Forget what was recorded on this thread's scheduler; count from now.
pub fn reset() {
    let s = sched();
    let p = s.wait_profile();
    p.entries.borrow_mut().clear();
    p.index.borrow_mut().clear();
}

/// Record waits on this thread's scheduler (on by default) or not; returns the previous
/// setting.
pub fn set_enabled(on: bool) -> bool {
    sched().wait_profile().enabled.replace(on)
}
