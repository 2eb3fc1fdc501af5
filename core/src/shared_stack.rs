//! Shrapnel's shared stack: many coroutines run on one *run stack* of the scheduler, and a
//! suspended one keeps only a heap copy of the part of the stack it used.
//!
//! A coroutine built with [`Builder::shared_stack`](crate::Builder::shared_stack) (or
//! spawned while [`set_shared_stack_default`](crate::sched::set_shared_stack_default) is
//! on) has no stack of its own. Its frames live on the scheduler's run stack — one stack of
//! the scheduler's default size, from the same allocator as every other stack (a guarded
//! mmap stack in the POSIX runtime), allocated by the first such spawn. At most one
//! coroutine's frames are on the run stack at a time: its *owner*. Before the scheduler
//! switches into a shared-stack coroutine that is not the owner, it copies the owner's
//! live frames, `[context - SAVED_BELOW, base)`, into a heap buffer of exactly that size,
//! then copies the incoming coroutine's buffer back to the very addresses it was taken
//! from (or, on its first run, lays out its initial frame there), and makes it the owner.
//! The copy is lazy: a coroutine resumed with no other shared-stack coroutine run in
//! between finds its frames where it left them and costs nothing more than a switch. Both
//! copies run on the scheduler's own stack, never on the run stack.
//!
//! A sleeping coroutine then costs its record, its closure and the few hundred bytes its
//! frames use, instead of a stack of its own (and no memory mapping: a million of them
//! fit under the kernel's map limit).
//!
//! # Compacting idle copies
//!
//! With feature `std`, the copy of a coroutine blocked for a second or more
//! ([`set_compact_after`]) is replaced by a compact form that drops the runs of zero words
//! (`SavedFrames`): a frame holding a fresh buffer is mostly zeros, so an idle echo
//! connection's 5,208-byte copy (its 4 KiB read buffer, 100 bytes of it used) shrinks to
//! 896 bytes. As Shrapnel compressed its idle coroutines' stacks, but only when the
//! scheduler has nothing else to do: the event loop gives the compaction a step when it is
//! about to wait in its poller anyway, a few hundred registry slots at a time and a sweep
//! at most once a second (`IdleCompaction`), so a busy scheduler does none and a million
//! idle coroutines delay an event by one step at most. Restoring a compact copy writes the
//! same bytes back (zeros between the runs); the debug walker reads its words in place.
//! After a sweep freed a megabyte or more, the scheduler calls the heap trim the runtime
//! installed ([`set_heap_trim`]; glibc's `malloc_trim`, a few milliseconds for tens of
//! megabytes), since glibc keeps freed heap inside the process. Without `std` (bare metal)
//! copies stay plain and the compaction is not linked.
//!
//! # Why this is sound, and what it forbids
//!
//! Copying a stack away and back is invisible to the coroutine itself: every byte of its
//! live frames is back at the same address, with the same contents, before it executes
//! another instruction, so pointers *within* its own stack (a local borrowed by a callee,
//! a frame record, a saved register holding a stack address) stay valid. What would break
//! is a pointer *into* a suspended coroutine's stack held by anybody else — another
//! coroutine, the scheduler, a timer, an interrupt handler — because while the coroutine
//! is suspended, those addresses belong to whoever owns the run stack now. Nothing in safe
//! Rust can make such a pointer here:
//!
//! - `spawn`, `new` and `Builder::spawn` take `F: FnOnce() -> T + 'static` and
//!   `T: 'static`: a coroutine cannot capture a borrow of another coroutine's locals, nor
//!   return one. Values it shares are owned (`Rc`, statics), so on the heap or in statics.
//! - Everything the scheduler keeps about a blocked coroutine is on the heap: wait-queue
//!   entries and their payloads (a fifo's or condvar's hand-off slot is an
//!   `Rc<Cell<Option<T>>>`, never a slot in the waiter's frame), the coroutine record, its
//!   result, its timers. `block` runs its registration closure on the coroutine's own stack
//!   before the switch, and hands over only owned `Waiter`s.
//! - The core has no scoped API that lends a stack borrow to another coroutine (no
//!   `scope`, no `in_parallel` over borrowed data). One added later must either require
//!   `'static` or refuse shared-stack callers with a panic that says so — never rely on
//!   stacks staying put.
//!
//! Unsafe code can still make such a pointer (a raw pointer to a local sent through a
//! channel, or a `static mut` pointing at a local); that is the one rule this mode adds:
//! **nothing outside a suspended shared-stack coroutine may point into its stack.**
//!
//! Compaction changes none of this. It touches only a suspended coroutine's heap copy,
//! never the run stack, and only from the scheduler's own context (no coroutine runs, so
//! nothing reads the copy meanwhile); the compact form stands for exactly the same bytes
//! (every word it drops is zero, and its decoder writes zero there), so restoring it
//! puts back the frames, byte for byte, at the addresses they were taken from, as a plain
//! copy would. What points into the frames — the coroutine's own pointers, stored among
//! those bytes — is restored with them. The form is told apart from a plain copy by its
//! length (never a whole number of words), is written only by `SavedFrames::compact_into`,
//! and is read with bounds checks (a corrupt one panics, it does not write outside the
//! range being restored).
//!
//! The debugging features keep working: `where_all` walks a suspended coroutine's frames
//! in its heap copy (addresses translated back to the run stack's), and the latency
//! sampler and the overflow report see the running coroutine on the run stack, whose range
//! its record carries.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::cell::Cell;
use core::time::Duration;

use crate::arch::{ContextSwitch, Native};
use crate::coro::{CoroInner, CoroRc, State};
use crate::hooks;
use crate::sched::SchedState;
use crate::stack::{BoxedStack, StackError};

/// The scheduler's run stack and whose frames are on it.
pub(crate) struct RunStack {
    /// Allocated by the first shared-stack spawn, kept until the scheduler is uninstalled.
    stack: Cell<Option<BoxedStack>>,
    /// `(limit, base, canary)` of that stack, or zeros before it exists.
    range: Cell<(usize, usize, *const usize)>,
    /// The coroutine whose live frames are on the run stack now, if any.
    owner: Cell<Option<CoroRc>>,
    /// Copies made (saves plus restores) and bytes copied, for `stats`.
    copies: Cell<u64>,
    bytes: Cell<u64>,
}

impl RunStack {
    pub(crate) const fn new() -> Self {
        RunStack {
            stack: Cell::new(None),
            range: Cell::new((0, 0, core::ptr::null())),
            owner: Cell::new(None),
            copies: Cell::new(0),
            bytes: Cell::new(0),
        }
    }

    /// `(limit, base, canary)` of the run stack, allocating it with `allocate` the first
    /// time.
    pub(crate) fn range(
        &self,
        allocate: impl FnOnce() -> Result<BoxedStack, StackError>,
    ) -> Result<(usize, usize, *const usize), StackError> {
        if self.range.get().1 == 0 {
            let stack = allocate()?;
            let canary = stack
                .canary()
                .map_or(core::ptr::null(), |p| p.as_ptr() as *const usize);
            self.range.set((
                stack.limit().as_ptr() as usize,
                stack.base().as_ptr() as usize,
                canary,
            ));
            self.stack.set(Some(stack));
        }
        Ok(self.range.get())
    }

    /// Make `co` (a shared-stack coroutine about to be switched into) the owner: save the
    /// previous owner's frames to its heap copy, then put `co`'s back (or lay out its first
    /// frame). Runs on the scheduler's stack.
    pub(crate) fn enter(&self, co: &CoroRc) {
        let owner = self.owner.take();
        if let Some(o) = &owner {
            if CoroRc::ptr_eq(o, co) {
                self.owner.set(owner);
                return;
            }
        }
        let (_, base, _) = self.range.get();
        if let Some(prev) = owner {
            let lo = prev.saved_context() - Native::SAVED_BELOW;
            // SAFETY: `prev` is suspended (the scheduler runs, not a coroutine), so its live
            // frames are exactly [lo, base) of the run stack (ContextSwitch::SAVED_BELOW),
            // which is mapped and which nobody else uses while `prev` owns it.
            let frames = unsafe { core::slice::from_raw_parts(lo as *const u8, base - lo) };
            prev.set_saved_frames(SavedFrames::copy_of(frames));
            self.count(frames.len());
        }
        match co.take_saved_frames() {
            Some(frames) => {
                let len = frames.len();
                // SAFETY: [base - len, base) is the range these frames were copied from,
                // inside the run stack, which has no owner now (the previous one was saved
                // above), so nothing live is overwritten; the copy is a separate heap
                // allocation.
                unsafe { frames.restore((base - len) as *mut u8) };
                self.count(len);
            }
            None => co.lay_out_first_frame(base),
        }
        self.owner.set(Some(co.clone()));
    }

    /// `co` died or was abandoned: its frames on the run stack are garbage.
    pub(crate) fn forget(&self, co: &CoroInner) {
        let owner = self.owner.take();
        match owner {
            Some(o) if core::ptr::eq(&*o, co) => drop(o),
            other => self.owner.set(other),
        }
    }

    /// The run stack, to release when the scheduler goes (no coroutine is left).
    pub(crate) fn take(&self) -> Option<BoxedStack> {
        drop(self.owner.take());
        self.range.set((0, 0, core::ptr::null()));
        self.stack.take()
    }

    /// `(copies, bytes)` made since start.
    pub(crate) fn copied(&self) -> (u64, u64) {
        (self.copies.get(), self.bytes.get())
    }

    fn count(&self, bytes: usize) {
        self.copies.set(self.copies.get() + 1);
        self.bytes.set(self.bytes.get() + bytes as u64);
    }
}

/// The size of a stack word: a copy is a whole number of words, and so are compacted runs.
const WORD: usize = core::mem::size_of::<usize>();

/// The fewest zero words between two runs that the compact form drops (fewer are kept as
/// data: a run's entry costs two `u32`s).
const MIN_GAP: usize = 4;

/// Ends a compact copy, whose length is then never a whole number of words.
const COMPACT_TAG: u8 = 0xc5;

/// A suspended shared-stack coroutine's live frames off the run stack: a plain copy of
/// `[lo, base)`, or, once it has been idle a while (feature `std`), their compact form.
///
/// The compact form keeps the runs of words that are not zero and drops the stretches of
/// at least [`MIN_GAP`] zero words between them: a stack copy is mostly zeros when a frame
/// holds a fresh buffer (an echo connection's 4 KiB read buffer, a few hundred bytes of it
/// used). Its bytes, `u32`s in native order:
///
/// ```text
/// [len][runs] runs × ([first][data]) [data words …] [COMPACT_TAG]
/// ```
///
/// `len` is the plain copy's length in bytes; run `i` is words `[first_i, first_i + n_i)` of
/// the plain copy, whose values are data words `[data_i, data_i + n_i)`, where `n_i` is
/// `data_{i+1} - data_i` (for the last run, the data's end). Every other word is zero. A
/// plain copy is a whole number of words long and a compact one never is (the tag byte):
/// that is how the two are told apart, without a field of their own. Only [`compact_into`]
/// writes the compact form, so its runs are in order and inside `len`.
///
/// [`compact_into`]: SavedFrames::compact_into
pub(crate) struct SavedFrames(Box<[u8]>);

impl SavedFrames {
    /// A plain copy of `frames`, a whole number of words.
    pub(crate) fn copy_of(frames: &[u8]) -> Self {
        debug_assert!(frames.len().is_multiple_of(WORD));
        SavedFrames(Box::from(frames))
    }

    /// In the compact form. Always false without feature `std` (the check folds away: only
    /// the compaction, a `std` hook, makes that form).
    #[inline]
    pub(crate) fn is_compact(&self) -> bool {
        hooks::COMPACTS_IDLE_COPIES && !self.0.len().is_multiple_of(WORD)
    }

    /// Bytes of the run stack the frames cover.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        if self.is_compact() {
            self.field(0)
        } else {
            self.0.len()
        }
    }

    /// Bytes of heap the copy holds.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.0.len()
    }

    /// Write the frames back to `[lo, lo + len())`.
    ///
    /// # Safety
    /// That range must be writable, must not overlap the copy, and nothing may use it
    /// meanwhile.
    #[inline]
    pub(crate) unsafe fn restore(&self, lo: *mut u8) {
        if self.is_compact() {
            // SAFETY: forwarded from the caller's contract.
            unsafe { self.expand(lo) }
        } else {
            // SAFETY: forwarded from the caller's contract; `len()` is the copy's length.
            unsafe { core::ptr::copy_nonoverlapping(self.0.as_ptr(), lo, self.0.len()) }
        }
    }

    /// `restore` of the compact form: zeros between the runs, each run's data in place.
    ///
    /// # Safety
    /// As for [`restore`](Self::restore).
    #[cold]
    #[inline(never)]
    unsafe fn expand(&self, lo: *mut u8) {
        assert!(self.compact_ok(), "corrupt compact stack copy");
        let len = self.len();
        let data = self.data_start();
        let mut at = 0; // bytes of `[lo, lo + len)` written so far
        for i in 0..self.runs() {
            let (first, from, n) = self.run(i);
            let (start, bytes) = (first * WORD, n * WORD);
            assert!(
                at <= start && start + bytes <= len,
                "corrupt compact stack copy"
            );
            // SAFETY: `at <= start` and `start + bytes <= len` (checked above), so both
            // writes stay inside the caller's range `[lo, lo + len)`; the run's data is
            // inside the copy (`run` keeps data words inside it), which does not overlap
            // that range (the caller's contract).
            unsafe {
                core::ptr::write_bytes(lo.add(at), 0, start - at);
                core::ptr::copy_nonoverlapping(
                    self.0.as_ptr().add(data + from * WORD),
                    lo.add(start),
                    bytes,
                );
            }
            at = start + bytes;
        }
        // SAFETY: `at <= len` (checked for each run), inside the caller's range.
        unsafe { core::ptr::write_bytes(lo.add(at), 0, len - at) };
    }

    /// The word at byte `offset` of the frames, for the debug walker (`None` if `offset` is
    /// not a word inside them).
    pub(crate) fn word_at(&self, offset: usize) -> Option<usize> {
        if self.is_compact() && !self.compact_ok() {
            return None; // a corrupt copy (the crash dump may read one): no panic here
        }
        if !offset.is_multiple_of(WORD) || offset.checked_add(WORD)? > self.len() {
            return None;
        }
        if !self.is_compact() {
            return Some(read_word(&self.0[offset..]));
        }
        let w = offset / WORD;
        // How many runs begin at or before word `w` (their `first`s are increasing).
        let (mut lo, mut hi) = (0, self.runs());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.run(mid).0 <= w {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let Some(i) = lo.checked_sub(1) else {
            return Some(0);
        };
        let (first, from, n) = self.run(i);
        if w >= first + n {
            return Some(0); // in the gap after run `i`
        }
        let at = self.data_start() + (from + w - first) * WORD;
        Some(read_word(self.0.get(at..)?))
    }

    /// Write the compact form of a plain copy into `out` (cleared first); false if this one
    /// is compact already, or compaction is off in this build. [`from_compact`] makes the
    /// copy of it.
    ///
    /// [`from_compact`]: Self::from_compact
    #[allow(dead_code)] // called only with feature `std` (the idle compaction)
    pub(crate) fn compact_into(&self, out: &mut Vec<u8>) -> bool {
        out.clear();
        if !hooks::COMPACTS_IDLE_COPIES || self.is_compact() {
            return false;
        }
        let len = self.0.len();
        let Ok(len32) = u32::try_from(len) else {
            return false;
        };
        let words = len / WORD;
        let word = |i: usize| read_word(&self.0[i * WORD..]);
        // Runs `[first, end)` of words: each begins and ends with a word that is not zero
        // and holds no stretch of MIN_GAP zero words. Their entries go in as they are found,
        // the data after them.
        out.extend_from_slice(&len32.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes()); // the number of runs, set below
        let (mut runs, mut data_words) = (0u32, 0usize);
        let mut i = 0;
        while i < words {
            if word(i) == 0 {
                i += 1;
                continue;
            }
            let first = i;
            let mut end = i + 1;
            i += 1;
            while i < words && i - end < MIN_GAP {
                if word(i) != 0 {
                    end = i + 1;
                }
                i += 1;
            }
            out.extend_from_slice(&(first as u32).to_ne_bytes());
            out.extend_from_slice(&(data_words as u32).to_ne_bytes());
            runs += 1;
            data_words += end - first;
        }
        out[4..8].copy_from_slice(&runs.to_ne_bytes());
        let runs = runs as usize;
        for r in 0..runs {
            let (first, from) = (u32_at(out, 2 + 2 * r), u32_at(out, 3 + 2 * r));
            let to = if r + 1 < runs {
                u32_at(out, 3 + 2 * (r + 1))
            } else {
                data_words
            };
            out.extend_from_slice(&self.0[first * WORD..(first + to - from) * WORD]);
        }
        out.push(COMPACT_TAG);
        true
    }

    /// The copy whose compact form [`compact_into`](Self::compact_into) wrote.
    #[allow(dead_code)] // called only with feature `std` (the idle compaction)
    pub(crate) fn from_compact(bytes: &[u8]) -> Self {
        let copy = SavedFrames(Box::from(bytes));
        debug_assert!(copy.is_compact());
        copy
    }

    /// A compact copy's header and run table fit in it, so `field`, `runs` and `run` stay
    /// inside it.
    fn compact_ok(&self) -> bool {
        let n = self.0.len();
        n > 8 && u32_at(&self.0, 1).saturating_mul(8).saturating_add(8) < n
    }

    /// The `i`th `u32` of a compact copy.
    fn field(&self, i: usize) -> usize {
        u32_at(&self.0, i)
    }

    /// Runs in a compact copy.
    fn runs(&self) -> usize {
        self.field(1)
    }

    /// Where a compact copy's data words begin (bytes).
    fn data_start(&self) -> usize {
        8 + 8 * self.runs()
    }

    /// Run `i` of a compact copy: `(first word, first data word, words)`, its data words
    /// kept inside the copy.
    fn run(&self, i: usize) -> (usize, usize, usize) {
        let data_words = (self.0.len() - 1).saturating_sub(self.data_start()) / WORD;
        let (first, from) = (self.field(2 + 2 * i), self.field(3 + 2 * i));
        let to = if i + 1 < self.runs() {
            self.field(3 + 2 * (i + 1))
        } else {
            data_words
        };
        let to = to.min(data_words);
        (first, from.min(to), to - from.min(to))
    }
}

/// The `i`th native-endian `u32` of `bytes`.
fn u32_at(bytes: &[u8], i: usize) -> usize {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[4 * i..4 * i + 4]);
    u32::from_ne_bytes(b) as usize
}

/// The native-endian word at the start of `bytes` (which holds at least one).
fn read_word(bytes: &[u8]) -> usize {
    let mut b = [0u8; WORD];
    b.copy_from_slice(&bytes[..WORD]);
    usize::from_ne_bytes(b)
}

/// How long a shared-stack coroutine must have been blocked before its copy is compacted,
/// unless [`set_compact_after`] says otherwise.
pub const DEFAULT_COMPACT_AFTER: Duration = Duration::from_secs(1);

/// Sweeps over the registry begin at most this often.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Registry slots looked at each time the loop is about to wait: the most a sweep delays
/// the loop by (a compaction of a few KiB each, a check of a few loads for the others).
const SLOTS_PER_STEP: usize = 256;

/// Heap freed by compaction after which the scheduler's heap trim runs (at a sweep's end).
const TRIM_AFTER_BYTES: usize = 1 << 20;

/// Feature `std`: the scheduler's compaction of idle copies (`hooks::CompactionPart`).
///
/// When the event loop is about to wait in its poller anyway, it gives this a step: a few
/// hundred registry slots, every shared-stack coroutine among them that has been blocked
/// for [`set_compact_after`]'s age or longer getting its plain copy replaced by the compact
/// form. A *sweep* (slot 0 to the end, a step per wait) begins at most once a second, and
/// only when the run stack made copies since the last one began, or the last one met copies
/// too young to compact: a loaded scheduler, which never waits, pays nothing, and an idle
/// one with nothing new sleeps as long as its poller lets it.
#[allow(dead_code)] // used only with feature `std`
pub(crate) struct IdleCompaction {
    /// How long a coroutine must have been blocked (`None`: never compact).
    after: Cell<Option<Duration>>,
    /// Called at the end of a sweep that freed [`TRIM_AFTER_BYTES`] or more since the last
    /// call (the POSIX runtime's `malloc_trim`: glibc keeps freed heap inside the process).
    trim: Cell<Option<fn()>>,
    /// The next registry slot to look at, while a sweep is under way.
    cursor: Cell<Option<usize>>,
    /// When the next sweep may begin (ticks), if one is wanted.
    due: Cell<Option<u64>>,
    /// When the sweep under way began (ticks).
    began: Cell<u64>,
    /// The run stack's copy count when it was last looked at: a change means new copies.
    copies_seen: Cell<u64>,
    /// The sweep under way met plain copies too young: the earliest of their waits began.
    young: Cell<Option<u64>>,
    /// Heap bytes freed since the trim last ran.
    freed: Cell<usize>,
    /// Where a copy's compact form is written before it gets an allocation of its size.
    scratch: Cell<Vec<u8>>,
}

#[allow(dead_code)] // used only with feature `std`
impl IdleCompaction {
    pub(crate) fn new() -> Self {
        IdleCompaction {
            after: Cell::new(Some(DEFAULT_COMPACT_AFTER)),
            trim: Cell::new(None),
            cursor: Cell::new(None),
            due: Cell::new(None),
            began: Cell::new(0),
            copies_seen: Cell::new(0),
            young: Cell::new(None),
            freed: Cell::new(0),
            scratch: Cell::new(Vec::new()),
        }
    }

    /// See [`set_compact_after`].
    pub(crate) fn set_after(&self, after: Option<Duration>) -> Option<Duration> {
        self.due.set(None);
        self.copies_seen.set(0); // look again, with the new age
        self.after.replace(after)
    }

    /// See [`set_heap_trim`].
    pub(crate) fn set_trim(&self, trim: Option<fn()>) -> Option<fn()> {
        self.trim.replace(trim)
    }

    /// The loop of `s` is about to wait up to `timeout` (`None`: until an event): take a
    /// step if one is due, and return how long to wait instead (zero while a sweep is
    /// under way, no longer than until the next sweep is due).
    pub(crate) fn about_to_wait(
        &self,
        s: &SchedState,
        timeout: Option<Duration>,
    ) -> Option<Duration> {
        let Some(after) = self.after.get() else {
            return timeout;
        };
        let (copies, _) = s.stack_copies();
        let new_copies = copies != self.copies_seen.get();
        if self.cursor.get().is_none() && self.due.get().is_none() && !new_copies {
            return timeout; // nothing to do, and no clock read
        }
        let rate = s.rate();
        // Coarse is precise enough here, and the loop's own reading (`wait_clock`) must
        // stay unset: after the wait it would be stale.
        let now = s.clock().now_coarse();
        let cursor = match self.cursor.get() {
            Some(cursor) => cursor,
            None => {
                if new_copies {
                    // New copies, made about now: old enough `after` from now.
                    self.copies_seen.set(copies);
                    if self.due.get().is_none() {
                        self.due.set(Some(now.saturating_add(rate.ticks(after))));
                    }
                }
                let Some(due) = self.due.get() else {
                    return timeout;
                };
                if now < due {
                    return Some(shorter(timeout, rate.duration(due - now)));
                }
                self.due.set(None);
                self.began.set(now);
                self.young.set(None);
                0
            }
        };
        let age = rate.ticks(after);
        let mut scratch = self.scratch.take();
        let next = s.for_each_live_from(cursor, SLOTS_PER_STEP, |co| {
            if !co.is_shared() || co.state() != State::Blocked {
                return;
            }
            let (since, _) = co.waiting_since();
            if now.saturating_sub(since) < age {
                if co.has_plain_saved_frames() {
                    self.young
                        .set(Some(self.young.get().map_or(since, |y| y.min(since))));
                }
                return;
            }
            if let Some((plain, compact)) = co.compact_saved_frames(&mut scratch) {
                s.count_compaction(plain.saturating_sub(compact));
                self.freed.set(
                    self.freed
                        .get()
                        .saturating_add(plain.saturating_sub(compact)),
                );
            }
        });
        self.scratch.set(scratch);
        if let Some(cursor) = next {
            self.cursor.set(Some(cursor));
            return Some(Duration::ZERO);
        }
        // The sweep is over.
        self.cursor.set(None);
        if self.freed.get() >= TRIM_AFTER_BYTES {
            self.freed.set(0);
            if let Some(trim) = self.trim.get() {
                trim();
            }
        }
        let Some(young) = self.young.take() else {
            return timeout;
        };
        let due = young
            .saturating_add(age)
            .max(self.began.get().saturating_add(rate.ticks(SWEEP_EVERY)));
        self.due.set(Some(due));
        Some(shorter(timeout, rate.duration(due.saturating_sub(now))))
    }
}

/// The shorter of a poll timeout (`None`: no limit) and `d`.
fn shorter(timeout: Option<Duration>, d: Duration) -> Duration {
    timeout.map_or(d, |t| t.min(d))
}

/// Compact the saved copy of a shared-stack coroutine once it has been blocked for `after`
/// (`None`: never), on this thread's scheduler; returns the previous setting
/// ([`DEFAULT_COMPACT_AFTER`] at first). Feature `std`: without it copies are never
/// compacted and this does nothing.
///
/// The work is done when the event loop is about to wait anyway, a few hundred coroutines
/// at a time; `sched::stats()` counts the copies compacted and the bytes that saved.
pub fn set_compact_after(after: Option<Duration>) -> Option<Duration> {
    crate::sched::sched().compaction().set_after(after)
}

/// Install a function this thread's scheduler calls after compaction freed a lot of heap
/// (a megabyte or more since the last call), to hand free memory back to the OS; returns
/// the previous one. The POSIX runtime installs glibc's `malloc_trim` where it has it
/// (glibc keeps freed chunks inside the process). Feature `std`: without it, never called.
pub fn set_heap_trim(trim: Option<fn()>) -> Option<fn()> {
    crate::sched::sched().compaction().set_trim(trim)
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use alloc::vec;

    /// A copy of `words`, its compact form, and every check that it stands for the same
    /// frames: the same length, every word read the same, and restored byte for byte.
    fn round_trip(words: &[usize]) -> SavedFrames {
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        let plain = SavedFrames::copy_of(&bytes);
        assert!(!plain.is_compact());
        let mut scratch = Vec::new();
        assert!(plain.compact_into(&mut scratch), "a plain copy compacts");
        let compact = SavedFrames::from_compact(&scratch);
        assert!(compact.is_compact());
        assert!(!compact.compact_into(&mut scratch), "compact twice");
        assert_eq!(compact.len(), bytes.len());
        for (i, &w) in words.iter().enumerate() {
            assert_eq!(plain.word_at(i * WORD), Some(w), "plain word {i}");
            assert_eq!(compact.word_at(i * WORD), Some(w), "compact word {i}");
        }
        assert_eq!(compact.word_at(bytes.len()), None);
        assert_eq!(compact.word_at(1), None);
        let mut out = vec![0xaau8; bytes.len()];
        // SAFETY (test): `out` is `len()` bytes, a separate allocation.
        unsafe { compact.restore(out.as_mut_ptr()) };
        assert_eq!(out, bytes);
        compact
    }

    #[test]
    fn compact_copies_read_and_restore_as_the_plain_ones() {
        round_trip(&[]);
        round_trip(&[0]);
        round_trip(&[7]);
        round_trip(&[0; 100]);
        round_trip(&[usize::MAX; 100]);
        // Runs at both ends, short gaps kept as data, long ones dropped.
        let mut words = vec![0usize; 600];
        for (i, w) in words.iter_mut().enumerate() {
            if i < 3 || i % 97 == 0 || (200..203).contains(&i) || i == 205 || i >= 597 {
                *w = i * 31 + 1;
            }
        }
        let compact = round_trip(&words);
        assert!(
            compact.heap_bytes() < 600 * WORD / 4,
            "{}",
            compact.heap_bytes()
        );
    }

    /// A corrupt compact copy (a run table longer than the copy) reads as nothing, without
    /// a panic: the crash dump reads copies from a signal handler.
    #[test]
    fn a_corrupt_compact_copy_reads_as_nothing() {
        let corrupt = SavedFrames(Box::from(&[0xffu8; 9][..]));
        assert!(corrupt.is_compact());
        assert_eq!(corrupt.word_at(0), None);
        let tiny = SavedFrames(Box::from(&[1u8; 3][..]));
        assert!(tiny.is_compact());
        assert_eq!(tiny.word_at(0), None);
    }

    /// An echo connection's copy: a 4 KiB buffer, 100 bytes of it used, among frames.
    #[test]
    fn a_mostly_zero_copy_shrinks_to_its_used_words() {
        let mut words = vec![0usize; 4608 / WORD];
        for w in &mut words[..40] {
            *w = 0x1234;
        }
        for w in &mut words[100..113] {
            *w = usize::from_ne_bytes([b'x'; WORD]);
        }
        let compact = round_trip(&words);
        // Two runs (two entries), 53 data words, the header and the tag.
        assert_eq!(compact.heap_bytes(), 8 + 2 * 8 + 53 * WORD + 1);
    }
}
