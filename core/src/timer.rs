//! The timer queue: a 4-ary min-heap with lazy deletion over a slab of timer records.
//!
//! Insert is O(log₄ n) (and O(1) on average for deadlines later than most pending ones,
//! the common case), cancel is O(1): it frees the slab record, and the heap entry that
//! points at it is recognised as stale (its sequence number no longer matches) when it
//! reaches the top or when the heap is compacted. Compaction runs when stale entries
//! outnumber live ones, so memory stays proportional to the pending timers. A cancelled
//! entry that is the heap's last one (insert then cancel, with a deadline later than most
//! pending ones) is removed at once instead. Entries with equal deadlines fire in
//! insertion order.

use alloc::vec::Vec;

/// Names one pending timer; stale after it fires or is cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerId {
    slot: u32,
    seq: u64,
}

#[derive(Clone, Copy)]
struct HeapEntry {
    deadline: u64,
    seq: u64,
    slot: u32,
}

impl HeapEntry {
    #[inline]
    fn key(&self) -> (u64, u64) {
        (self.deadline, self.seq)
    }
}

struct Record<A> {
    seq: u64,
    action: Option<A>,
}

/// Pending timers, each carrying an action `A` handed back when it expires.
pub struct TimerQueue<A> {
    heap: Vec<HeapEntry>,
    records: Vec<Record<A>>,
    free: Vec<u32>,
    next_seq: u64,
    live: usize,
}

impl<A> Default for TimerQueue<A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A> TimerQueue<A> {
    /// An empty queue.
    pub const fn new() -> Self {
        TimerQueue {
            heap: Vec::new(),
            records: Vec::new(),
            free: Vec::new(),
            next_seq: 1,
            live: 0,
        }
    }

    /// Number of pending (not fired, not cancelled) timers.
    pub fn len(&self) -> usize {
        self.live
    }

    /// True when no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Schedule `action` at `deadline` (ticks).
    #[inline]
    pub fn insert(&mut self, deadline: u64, action: A) -> TimerId {
        self.insert_with(deadline, || action)
    }

    /// Schedule the action `make` returns at `deadline` (ticks); `make` is called last,
    /// when the record is ready.
    ///
    /// What that is for: an action that already exists while something that may unwind
    /// runs (a vector growing) has to live in memory, where the compiler stores it a word
    /// at a time and then copies it in wider pieces, which stalls store forwarding (5 ns of
    /// `with_timeout`'s 40 here). Made at the end, it goes from registers into its record.
    #[cfg_attr(feature = "std", inline(always))] // firmware (no std) builds optimise for size
    pub(crate) fn insert_with(&mut self, deadline: u64, make: impl FnOnce() -> A) -> TimerId {
        let seq = self.next_seq;
        self.next_seq += 1;
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.records.push(Record { seq, action: None });
                (self.records.len() - 1) as u32
            }
        };
        self.live += 1;
        let entry = HeapEntry {
            deadline,
            seq,
            slot,
        };
        self.heap.push(entry);
        self.sift_up(self.heap.len() - 1, entry);
        if let Some(record) = self.records.get_mut(slot as usize) {
            // A free record's action is `None` (taken or dropped when it was freed), so
            // nothing is dropped here either.
            debug_assert!(
                record.action.is_none(),
                "a free timer record holds an action"
            );
            record.seq = seq;
            record.action.get_or_insert_with(make);
        }
        TimerId { slot, seq }
    }

    /// Cancel a pending timer, returning its action; `None` if it already fired or was
    /// cancelled.
    #[inline]
    pub fn cancel(&mut self, id: TimerId) -> Option<A> {
        let action = self.pending_record(id)?.action.take();
        self.forget(id);
        action
    }

    /// Cancel a pending timer and drop its action where it lies (cheaper than [`cancel`]
    /// when the action is not wanted); false if it already fired or was cancelled.
    ///
    /// [`cancel`]: Self::cancel
    #[inline]
    pub fn remove(&mut self, id: TimerId) -> bool {
        let Some(record) = self.pending_record(id) else {
            return false;
        };
        record.action = None;
        self.forget(id);
        true
    }

    /// The record of a pending timer.
    #[inline]
    fn pending_record(&mut self, id: TimerId) -> Option<&mut Record<A>> {
        self.records
            .get_mut(id.slot as usize)
            .filter(|record| record.seq == id.seq && record.action.is_some())
    }

    /// Free the record of a timer whose action was just taken or dropped.
    #[inline]
    fn forget(&mut self, id: TimerId) {
        self.records[id.slot as usize].seq = 0;
        self.free.push(id.slot);
        self.live -= 1;
        // A timer cancelled right after it was inserted (a `with_timeout` whose body did not
        // block) is usually still the heap's last entry: remove it at once, which keeps the
        // heap as small as the pending timers and its tail in cache.
        if self
            .heap
            .last()
            .is_some_and(|e| e.slot == id.slot && e.seq == id.seq)
        {
            self.heap.pop();
        } else if self.heap.len() > 64 && self.heap.len() > 2 * self.live + 32 {
            self.compact();
        }
    }

    /// The earliest pending deadline.
    pub fn next_deadline(&mut self) -> Option<u64> {
        self.drop_stale_top();
        self.heap.first().map(|e| e.deadline)
    }

    /// Remove and return the earliest timer if its deadline is at or before `now`.
    pub fn pop_expired(&mut self, now: u64) -> Option<A> {
        self.drop_stale_top();
        let top = *self.heap.first()?;
        if top.deadline > now {
            return None;
        }
        self.pop_top();
        let record = &mut self.records[top.slot as usize];
        record.seq = 0;
        let action = record.action.take();
        self.free.push(top.slot);
        self.live -= 1;
        action
    }

    fn is_stale(&self, e: &HeapEntry) -> bool {
        self.records[e.slot as usize].seq != e.seq
    }

    fn drop_stale_top(&mut self) {
        while let Some(top) = self.heap.first() {
            if !self.is_stale(top) {
                break;
            }
            self.pop_top();
        }
    }

    fn pop_top(&mut self) {
        let last = self.heap.pop();
        if let (Some(last), false) = (last, self.heap.is_empty()) {
            self.heap[0] = last;
            self.sift_down(0);
        }
    }

    fn compact(&mut self) {
        let records = &self.records;
        self.heap.retain(|e| records[e.slot as usize].seq == e.seq);
        if self.heap.len() > 1 {
            for i in (0..=(self.heap.len() - 2) / 4).rev() {
                self.sift_down(i);
            }
        }
    }

    /// Move `entry`, which is at `i`, up to its place.
    fn sift_up(&mut self, mut i: usize, entry: HeapEntry) {
        while i > 0 {
            let parent = (i - 1) / 4;
            if self.heap[parent].key() <= entry.key() {
                break;
            }
            self.heap[i] = self.heap[parent];
            i = parent;
        }
        self.heap[i] = entry;
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        let entry = self.heap[i];
        loop {
            let first = 4 * i + 1;
            if first >= n {
                break;
            }
            let mut best = first;
            for c in first + 1..(first + 4).min(n) {
                if self.heap[c].key() < self.heap[best].key() {
                    best = c;
                }
            }
            if self.heap[best].key() >= entry.key() {
                break;
            }
            self.heap[i] = self.heap[best];
            i = best;
        }
        self.heap[i] = entry;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn fires_in_deadline_then_insertion_order() {
        let mut q = TimerQueue::new();
        q.insert(30, "c");
        q.insert(10, "a1");
        q.insert(20, "b");
        q.insert(10, "a2");
        assert_eq!(q.next_deadline(), Some(10));
        assert_eq!(q.pop_expired(5), None);
        let mut out = vec![];
        while let Some(a) = q.pop_expired(25) {
            out.push(a);
        }
        assert_eq!(out, vec!["a1", "a2", "b"]);
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn cancel_is_final_and_ids_do_not_alias() {
        let mut q = TimerQueue::new();
        let a = q.insert(10, 1);
        assert_eq!(q.cancel(a), Some(1));
        assert_eq!(q.cancel(a), None);
        let b = q.insert(10, 2); // reuses the slot
        assert_eq!(
            q.cancel(a),
            None,
            "a stale id must not cancel the slot's new timer"
        );
        assert_eq!(q.pop_expired(10), Some(2));
        assert_eq!(q.cancel(b), None);
        assert!(q.is_empty());
    }

    #[test]
    fn many_timers_with_cancellations_stay_ordered_and_compact() {
        let mut q = TimerQueue::new();
        let mut ids = vec![];
        // A deterministic shuffle of deadlines.
        for i in 0..100_000u64 {
            let d = (i * 7919) % 100_000;
            ids.push((d, q.insert(d, d)));
        }
        for (d, id) in &ids {
            if d % 3 != 0 {
                assert_eq!(q.cancel(*id), Some(*d));
            }
        }
        assert!(
            q.heap.len() <= 2 * q.len() + 64,
            "compaction keeps the heap bounded"
        );
        let mut last = 0;
        let mut n = 0;
        while let Some(d) = q.pop_expired(u64::MAX) {
            assert!(d >= last && d % 3 == 0);
            last = d;
            n += 1;
        }
        assert_eq!(n, 33_334);
    }

    #[test]
    fn insert_then_cancel_leaves_no_stale_entry() {
        let mut q = TimerQueue::new();
        for d in 0..1_000u64 {
            q.insert(d, d);
        }
        for i in 0..10_000u64 {
            let id = q.insert(5_000 + i, i);
            assert_eq!(q.cancel(id), Some(i));
            assert_eq!(q.heap.len(), 1_000, "the cancelled tail entry is gone");
        }
        // An entry that is not last stays until it surfaces, and fires never.
        let early = q.insert(0, u64::MAX);
        q.insert(10_000, 8);
        assert_eq!(q.cancel(early), Some(u64::MAX));
        let mut fired = vec![];
        while let Some(a) = q.pop_expired(u64::MAX) {
            fired.push(a);
        }
        assert_eq!(fired.len(), 1_001);
        assert!(!fired.contains(&u64::MAX));
        assert!(q.is_empty());
    }

    #[test]
    fn a_million_pending_timers() {
        let mut q = TimerQueue::new();
        for i in 0..1_000_000u64 {
            q.insert(1_000_000 - i, ());
        }
        assert_eq!(q.len(), 1_000_000);
        assert_eq!(q.next_deadline(), Some(1));
    }
}
