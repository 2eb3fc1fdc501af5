//! The guard ranges of this thread's live stacks, readable from a signal handler.
//!
//! A fixed-size chunk of slots is allocated the first time a thread creates a stack, and
//! more chunks as needed; chunks never move and are freed only at thread exit, so the
//! handler can walk them at any moment. A slot is published by writing its `end` last and
//! retired by clearing `end` first, so a handler that interrupts an update (say, a
//! coroutine overflowing inside `spawn`) sees either a whole entry or none. The handler
//! runs on the faulting thread, which is the thread that owns the table.

use core::cell::RefCell;
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// Slots per chunk: 256 slots of three words are 6 KiB on 64-bit targets.
const SLOTS_PER_CHUNK: usize = 256;

/// One stack's guard `[start, end)`, and the stack's base.
struct Slot {
    start: AtomicUsize,
    /// 0 when the slot is free; written last when filled, cleared first when freed.
    end: AtomicUsize,
    base: AtomicUsize,
}

struct Chunk {
    slots: [Slot; SLOTS_PER_CHUNK],
    /// The chunk created before this one, or null.
    next: *const Chunk,
}

/// Where a stack is recorded: chunk index × SLOTS_PER_CHUNK + slot index.
pub(super) struct SlotId(usize);

/// What the handler learns about a guard that was hit.
pub(super) struct GuardHit {
    /// First address of the guard.
    pub(super) start: usize,
    /// End of the guard: the stack's limit.
    pub(super) end: usize,
    /// The stack's base.
    pub(super) base: usize,
}

/// The chunks and free slots, touched only outside signal handlers.
struct Table {
    /// Every chunk, oldest first; boxed so the handler's pointers stay valid.
    chunks: Vec<Box<Chunk>>,
    /// Free slot ids, reused last-in first-out.
    free: Vec<usize>,
}

std::thread_local! {
    /// The newest chunk; the handler reads only this, a plain word with no destructor,
    /// so reading it from a signal handler needs no lazy initialisation.
    static HEAD: AtomicPtr<Chunk> = const { AtomicPtr::new(ptr::null_mut()) };
    static TABLE: RefCell<Table> =
        const { RefCell::new(Table { chunks: Vec::new(), free: Vec::new() }) };
}

impl Drop for Table {
    fn drop(&mut self) {
        // Unpublish before the chunks are freed by the field drops that follow.
        let _ = HEAD.try_with(|head| head.store(ptr::null_mut(), Ordering::Release));
    }
}

/// Record a stack's guard `[start, end)` and base; `None` once the thread is exiting.
pub(super) fn register(start: usize, end: usize, base: usize) -> Option<SlotId> {
    TABLE
        .try_with(|table| {
            let mut table = table.borrow_mut();
            let id = match table.free.pop() {
                Some(id) => id,
                None => grow(&mut table),
            };
            let slot = table.slot(id);
            slot.start.store(start, Ordering::Relaxed);
            slot.base.store(base, Ordering::Relaxed);
            slot.end.store(end, Ordering::Release);
            SlotId(id)
        })
        .ok()
}

/// Forget a stack recorded by [`register`].
pub(super) fn unregister(id: SlotId) {
    let _ = TABLE.try_with(|table| {
        let mut table = table.borrow_mut();
        table.slot(id.0).end.store(0, Ordering::Release);
        table.free.push(id.0);
    });
}

/// Add a chunk, returning one of its slot ids and putting the others on the free list.
fn grow(table: &mut Table) -> usize {
    let first = table.chunks.len() * SLOTS_PER_CHUNK;
    // Zeroed on the heap, not built on the stack: the caller may be a coroutine with a
    // small stack, and a chunk is 6 KiB.
    let layout = std::alloc::Layout::new::<Chunk>();
    // SAFETY: Chunk is not zero-sized, so the layout may be passed to alloc_zeroed.
    let raw = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<Chunk>();
    if raw.is_null() {
        std::alloc::handle_alloc_error(layout);
    }
    // SAFETY: `raw` is a fresh allocation with Chunk's layout, as Box requires, and all
    // zeroes is a valid Chunk: free slots (end == 0) and a null `next`.
    let mut chunk = unsafe { Box::from_raw(raw) };
    chunk.next = HEAD.with(|head| head.load(Ordering::Relaxed));
    // Publish only once the chunk is complete.
    HEAD.with(|head| head.store(ptr::from_ref(&*chunk).cast_mut(), Ordering::Release));
    table.chunks.push(chunk);
    table
        .free
        .extend((first + 1..first + SLOTS_PER_CHUNK).rev());
    first
}

impl Table {
    fn slot(&self, id: usize) -> &Slot {
        &self.chunks[id / SLOTS_PER_CHUNK].slots[id % SLOTS_PER_CHUNK]
    }
}

/// The registered guard containing `addr`, if any. Async-signal-safe: it reads atomics
/// and follows pointers to chunks that outlive any handler on this thread.
pub(super) fn find(addr: usize) -> Option<GuardHit> {
    let mut chunk = HEAD
        .try_with(|head| head.load(Ordering::Acquire))
        .unwrap_or(ptr::null_mut())
        .cast_const();
    while !chunk.is_null() {
        // SAFETY: published chunks stay allocated until the table is dropped at thread
        // exit, which unpublishes HEAD first; only this thread reads them.
        let current = unsafe { &*chunk };
        for slot in &current.slots {
            let end = slot.end.load(Ordering::Acquire);
            if end == 0 {
                continue;
            }
            let start = slot.start.load(Ordering::Relaxed);
            if (start..end).contains(&addr) {
                let base = slot.base.load(Ordering::Relaxed);
                return Some(GuardHit { start, end, base });
            }
        }
        chunk = current.next;
    }
    None
}

/// How many stacks this thread has registered now.
#[cfg(test)]
pub(super) fn live() -> usize {
    TABLE.with(|table| {
        let table = table.borrow();
        table.chunks.len() * SLOTS_PER_CHUNK - table.free.len()
    })
}
