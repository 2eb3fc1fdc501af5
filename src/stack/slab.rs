//! Batches of guarded stacks in one mapping: what a [`StackPool`](super::StackPool) carves
//! fresh stacks from, so that a fresh spawn costs no `mmap` of its own.
//!
//! ```text
//!  high addresses
//!  +----------------------+ <- start + len = base of slot count-1
//!  |  usable stack        |
//!  +----------------------+
//!  |  guard page          |
//!  +----------------------+ <- start + stride × i = slot i; its base is slot i+1's start
//!  |  …                   |
//!  +----------------------+ <- start + stride = base of slot 0
//!  |  usable stack        |
//!  +----------------------+ <- limit of slot 0
//!  |  guard page          |
//!  +----------------------+ <- start
//! ```
//!
//! A slab is mapped read/write with `MAP_NORESERVE` (pages are committed when touched).
//! Where the kernel makes guard pages in place (Linux 6.13's `MADV_GUARD_INSTALL`; the whole
//! slab stays one kernel mapping), every slot's guard is made when the slab is mapped and the
//! top page of every slot, which a coroutine's first frame lands on, is committed at once
//! (`MADV_POPULATE_WRITE`): two system calls for 64 stacks where `process_madvise` takes
//! them, and no page fault at the first touch. Elsewhere a slot's guard is made the first
//! time the slot is handed out, with `mprotect(PROT_NONE)`, which splits the mapping (two
//! more mappings per slot, claimed from the [`budget`](super::budget) first). A stack given back discards its pages (`MADV_DONTNEED`:
//! the memory returns to the OS, the guard stays) and its slot is handed out again before a
//! fresh one; the slab is unmapped when no stack and no pool refers to it.

use core::cell::{Cell, RefCell};
use core::ptr::NonNull;
use std::rc::Rc;

use shrapnel_core::stack::{Stack, StackError};

use super::{budget, guard_table, map_region, os_error, sys};

/// A slab holds at most this many stacks…
const MAX_SLOTS: usize = 64;
/// …and at most this much address space (fewer, larger stacks per slab).
const MAX_SLAB_BYTES: usize = 64 << 20;

/// Slots given back whose pages are still committed, per slab, before they are discarded
/// together: at most this many stacks' memory is held by free slots of a slab.
const DISCARD_BATCH: usize = 16;

/// One mapping of `count` slots of `stride` bytes: a guard page, then `usable` bytes.
pub(super) struct Slab {
    start: NonNull<u8>,
    len: usize,
    stride: usize,
    usable: usize,
    count: usize,
    /// Slots below this index have been handed out at least once.
    fresh_from: Cell<usize>,
    /// Whether every slot's guard was made when the slab was mapped (in place).
    guards_made: bool,
    /// Slots given back with their pages still committed (last in, first out: the warmest),
    /// fewer than DISCARD_BATCH.
    dirty: RefCell<Vec<u32>>,
    /// Slots given back whose pages were discarded.
    returned: RefCell<Vec<u32>>,
    /// Slots handed out now.
    in_use: Cell<usize>,
    /// Kernel mappings claimed from the budget for this slab.
    mappings: Cell<usize>,
    /// Whether the owning pool lists it among the slabs with a free slot.
    listed: Cell<bool>,
}

impl Slab {
    /// Map a slab for stacks of `usable` bytes (`requested` is what the caller asked for,
    /// named in errors).
    pub(super) fn map(requested: usize, usable: usize) -> Result<Rc<Slab>, StackError> {
        let stride = usable.saturating_add(sys::page_size());
        let count = (MAX_SLAB_BYTES / stride).clamp(1, MAX_SLOTS);
        let claim = budget::claim_mappings(requested, 1)?;
        let (start, len) = map_region(requested, usable, count)?;
        let page = sys::page_size();
        let mut guards_made = false;
        if sys::guards_in_place() {
            let base = start.as_ptr() as usize;
            let guards: Vec<usize> = (0..count).map(|i| base + i * stride).collect();
            // SAFETY: each guard is the first page of a slot of the slab just mapped, which
            // nothing uses yet.
            guards_made = unsafe { sys::advise_pages(&guards, page, sys::Advice::Guard) }.is_ok();
            if guards_made {
                let tops: Vec<usize> = guards.iter().map(|g| g + stride - page).collect();
                // SAFETY: each is the top page of a slot of the slab just mapped; committing
                // it changes nothing but when the page is allocated. A refusal (no memory
                // now) only means the first touch faults the page in as usual.
                let _ = unsafe { sys::advise_pages(&tops, page, sys::Advice::Populate) };
            }
        }
        claim.keep();
        Ok(Rc::new(Slab {
            start,
            len,
            stride,
            usable,
            count,
            fresh_from: Cell::new(0),
            guards_made,
            dirty: RefCell::new(Vec::new()),
            returned: RefCell::new(Vec::new()),
            in_use: Cell::new(0),
            mappings: Cell::new(1),
            listed: Cell::new(false),
        }))
    }

    /// The usable size of its stacks.
    pub(super) fn usable(&self) -> usize {
        self.usable
    }

    /// Whether a slot is free.
    pub(super) fn has_room(&self) -> bool {
        self.fresh_from.get() < self.count
            || !self.dirty.borrow().is_empty()
            || !self.returned.borrow().is_empty()
    }

    /// Stacks handed out now.
    pub(super) fn in_use(&self) -> usize {
        self.in_use.get()
    }

    pub(super) fn listed(&self) -> bool {
        self.listed.get()
    }

    pub(super) fn set_listed(&self, listed: bool) {
        self.listed.set(listed);
    }

    /// Address of slot `index`: the start of its guard.
    fn slot_start(&self, index: usize) -> usize {
        self.start.as_ptr() as usize + index * self.stride
    }

    /// Hand out a free slot as a stack; the caller checked [`has_room`](Self::has_room).
    pub(super) fn carve(self: &Rc<Slab>, requested: usize) -> Result<SlabStack, StackError> {
        let stack_claim = budget::claim_stack(requested)?;
        let dirty = self.dirty.borrow_mut().pop();
        let returned = dirty.or_else(|| self.returned.borrow_mut().pop());
        let index = match returned {
            Some(index) => index as usize,
            None => {
                let index = self.fresh_from.get();
                debug_assert!(index < self.count, "carve from a full slab");
                if !self.guards_made {
                    self.make_guard(index, requested)?;
                }
                self.fresh_from.set(index + 1);
                index
            }
        };
        let start = self.slot_start(index);
        let guard_end = start + sys::page_size();
        let slot = guard_table::register(start, guard_end, start + self.stride);
        stack_claim.keep();
        self.in_use.set(self.in_use.get() + 1);
        Ok(SlabStack {
            slab: self.clone(),
            index: index as u32,
            slot,
        })
    }
}

impl Slab {
    /// Make slot `index`'s guard, which splits the mapping unless made in place.
    fn make_guard(&self, index: usize, requested: usize) -> Result<(), StackError> {
        let mapping_claim = if sys::guards_in_place() {
            None
        } else {
            Some(budget::claim_mappings(requested, 2)?)
        };
        // SAFETY: the slot's first page lies inside this slab's mapping, is page aligned,
        // and has never been handed out, so nothing uses it.
        unsafe { sys::make_guard(self.slot_start(index) as *mut u8, sys::page_size()) }
            .map_err(|errno| os_error(requested, errno))?;
        if let Some(claim) = mapping_claim {
            claim.keep();
            self.mappings.set(self.mappings.get() + 2);
        }
        Ok(())
    }
}

impl Slab {
    /// Take slot `index` back: discard the pages of the waiting slots once a batch is full.
    fn give_back(&self, index: u32) {
        self.in_use.set(self.in_use.get() - 1);
        let mut dirty = self.dirty.borrow_mut();
        dirty.push(index);
        if dirty.len() < DISCARD_BATCH {
            return;
        }
        let page = sys::page_size();
        let usable: Vec<usize> = dirty
            .iter()
            .map(|&i| self.slot_start(i as usize) + page)
            .collect();
        // SAFETY: each range is the usable part of a slot of this slab that was given back
        // (no coroutine runs on it any more: the Stack contract makes the scheduler drop a
        // stack only after its coroutine is gone), so its contents are not needed. A
        // refusal leaves the pages committed, which costs memory, not correctness.
        let _ = unsafe { sys::advise_pages(&usable, self.usable, sys::Advice::Discard) };
        self.returned.borrow_mut().extend(dirty.drain(..));
    }
}

impl Drop for Slab {
    fn drop(&mut self) {
        budget::release_mappings(self.mappings.get());
        // SAFETY: the mapping was made by Slab::map with this address and length, is
        // unmapped exactly once, and no stack refers to it any more (each holds an Rc).
        let rc = unsafe { libc::munmap(self.start.as_ptr().cast(), self.len) };
        debug_assert_eq!(rc, 0, "munmap of a stack slab failed");
    }
}

/// One slot of a [`Slab`] on loan as a stack; dropping it gives the slot back.
pub(super) struct SlabStack {
    slab: Rc<Slab>,
    index: u32,
    /// Where the guard is recorded for the fault handler; `None` if the thread was exiting.
    slot: Option<guard_table::SlotId>,
}

impl SlabStack {
    /// The slab it comes from.
    pub(super) fn slab(&self) -> &Rc<Slab> {
        &self.slab
    }

    fn guard_start(&self) -> usize {
        self.slab.slot_start(self.index as usize)
    }
}

// SAFETY: `[limit, base)` is the read/write part of slot `index`, which this value alone has
// on loan until it is dropped (the slab hands a slot to one SlabStack at a time); base is
// page aligned (hence 16-aligned); the usable size is round_size's, at least MIN_STACK_SIZE;
// the guard below the limit was made before the slot was first handed out and stays.
unsafe impl Stack for SlabStack {
    fn base(&self) -> NonNull<u8> {
        // SAFETY: the end of a slot is inside the slab or one past its end: not null.
        unsafe { NonNull::new_unchecked((self.guard_start() + self.slab.stride) as *mut u8) }
    }

    fn limit(&self) -> NonNull<u8> {
        // SAFETY: inside the slab's mapping, which is not at address 0.
        unsafe { NonNull::new_unchecked((self.guard_start() + sys::page_size()) as *mut u8) }
    }

    fn guard(&self) -> Option<(usize, usize)> {
        Some((self.guard_start(), sys::page_size()))
    }

    fn size(&self) -> usize {
        self.slab.usable
    }
}

impl Drop for SlabStack {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            guard_table::unregister(slot);
        }
        budget::release_stack();
        self.slab.give_back(self.index);
    }
}
