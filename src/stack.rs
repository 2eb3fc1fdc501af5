//! Coroutine stacks from the OS: one mapping with a guard page, a per-thread pool, and the
//! signal handler that turns a guard-page hit into a message naming the coroutine.
//!
//! This is the POSIX implementation of [`shrapnel_core::stack::Stack`] promised in
//! ARCHITECTURE.md §2. Each [`MmapStack`] is a single anonymous mapping:
//!
//! ```text
//!  high addresses
//!  +----------------------+ <- base()     mapping start + guard + size, page aligned
//!  |                      |
//!  |   usable stack       |    size() bytes (the request rounded up to the page size),
//!  |   grows downwards    |    read/write, committed page by page as it is touched
//!  |                      |
//!  +----------------------+ <- limit()
//!  |   guard page         |    PROT_NONE: the first access below limit() faults
//!  +----------------------+ <- guard().0  mapping start
//!  low addresses
//! ```
//!
//! The guard splits the mapping in two, so every guarded stack costs two of the kernel's
//! memory mappings; on Linux `vm.max_map_count` (65530 by default) therefore caps a process
//! near 32k stacks. The [`budget`] stops short of that, keeping a reserve of mappings for
//! the allocator and the rest of the program (past the kernel's limit malloc's own `mmap`
//! fails and the process aborts): a stack beyond it is a [`StackError::Exhausted`] that says
//! so and what to do, never a bare ENOMEM. One guard page is enough for Rust code: the compiler probes
//! every page of a large frame in order, so a frame cannot jump over the guard.
//!
//! [`StackPool`] is the [`StackAllocator`] a scheduler owns: a capped free list per stack
//! size, so spawning a coroutine usually costs no system call at all.
//!
//! Every live stack's guard range is recorded in a per-thread table the fault handler can
//! read without locks or allocation. When a coroutine overruns its stack, the handler
//! (installed when a [`StackPool`] is created, running on a per-thread alternate signal
//! stack because the faulting stack has no room left) finds the guard in that table, writes
//! `coroutine #7 'worker' overflowed its stack (256 KiB)` to stderr and aborts. Faults
//! anywhere else are handed back to the previous handler (normally the default action), so
//! ordinary crashes still dump core as before.

use core::mem::ManuallyDrop;
use core::ptr::{self, NonNull};
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::sync::Mutex;

use shrapnel_core::stack::{BoxedStack, Stack, StackAllocator, StackError, MIN_STACK_SIZE};

use crate::sys;

#[allow(
    unused_imports,
    reason = "ensure_altstack is for the scheduler, which calls it once on each thread it runs on"
)]
pub(crate) use self::overflow::ensure_altstack;
pub(crate) use self::overflow::install_overflow_handler;

/// The stack size a coroutine gets when nobody asks for another: 256 KiB.
///
/// That is plenty for typical server code (a request handler with a few levels of parsing,
/// formatting and I/O rarely uses more than 32 KiB) and leaves room for a panic that
/// captures and prints a backtrace, which alone can take tens of KiB. It costs little:
/// the memory is reserved, not committed, so a coroutine only pays for the pages it
/// touches (usually two or three), and the address space of 1M such stacks is 256 GiB,
/// a small fraction of a 64-bit address space.
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// How many free stacks a [`StackPool`] keeps by default before unmapping released ones.
pub const DEFAULT_POOL_CAP: usize = 64;

/// A coroutine stack in its own anonymous mapping, with a `PROT_NONE` guard page below it.
///
/// The mapping is created by [`MmapStack::new`] and unmapped on drop. The value is neither
/// `Send` nor `Sync`: its guard is registered with the creating thread's overflow table,
/// and coroutines never move between threads.
pub struct MmapStack {
    /// Lowest address of the mapping: the start of the guard.
    mapping: NonNull<u8>,
    /// Length of the whole mapping, guard included.
    len: usize,
    /// Length of the guard at the low end.
    guard_len: usize,
    /// Where the guard is recorded for the fault handler; `None` if the thread was exiting.
    slot: Option<guard_table::SlotId>,
}

impl MmapStack {
    /// Map a stack of at least `size` usable bytes (rounded up to the page size) with one
    /// guard page below it.
    ///
    /// Fails with [`StackError::TooSmall`] below [`MIN_STACK_SIZE`], and with
    /// [`StackError::Exhausted`] when the OS refuses, whose `detail` names the limit that was
    /// hit (on Linux usually `vm.max_map_count`) and the remedies.
    pub fn new(size: usize) -> Result<MmapStack, StackError> {
        let budget = budget::claim(size)?;
        let stack = MmapStack::map(size)?;
        budget.keep();
        Ok(stack)
    }

    /// Map the stack; its budget place is claimed by the caller.
    fn map(size: usize) -> Result<MmapStack, StackError> {
        let usable = round_size(size)?;
        if sys::physical_memory().is_some_and(|memory| usable > memory) {
            return Err(StackError::Exhausted {
                requested: size,
                detail: LARGER_THAN_MEMORY,
                errno: libc::ENOMEM,
            });
        }
        let guard_len = sys::page_size();
        let len = usable.checked_add(guard_len).ok_or(StackError::Exhausted {
            requested: size,
            detail: BEYOND_ADDRESS_SPACE,
            errno: libc::ENOMEM,
        })?;

        // SAFETY: an anonymous mapping at an address of the kernel's choosing touches no
        // existing memory; the result is checked against MAP_FAILED before use.
        let raw = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                sys::STACK_MAP_FLAGS,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return Err(os_error(size, last_errno()));
        }
        // SAFETY: `raw` is the start of the mapping just created, page aligned, and the guard
        // (one page) lies inside its `len` bytes; nothing else refers to the mapping yet.
        if unsafe { libc::mprotect(raw, guard_len, libc::PROT_NONE) } != 0 {
            let errno = last_errno();
            // SAFETY: unmapping exactly the mapping created above, which nothing uses.
            unsafe { libc::munmap(raw, len) };
            return Err(os_error(size, errno));
        }
        let start = raw as usize;
        let slot = guard_table::register(start, start + guard_len, start + len);
        Ok(MmapStack {
            // SAFETY: mmap never returns a null mapping on success (it returned MAP_FAILED
            // otherwise, which was handled above).
            mapping: unsafe { NonNull::new_unchecked(raw.cast()) },
            len,
            guard_len,
            slot,
        })
    }
}

// SAFETY: `[limit, base)` is the read/write part of a mapping this value owns alone and
// unmaps only on drop; base is the page-aligned (hence 16-aligned) end of the mapping;
// round_size guarantees at least MIN_STACK_SIZE usable bytes; the guard below the limit is
// PROT_NONE for the whole life of the value.
unsafe impl Stack for MmapStack {
    fn base(&self) -> NonNull<u8> {
        // SAFETY: one past the end of the mapping is a valid, non-null pointer to form.
        unsafe { NonNull::new_unchecked(self.mapping.as_ptr().add(self.len)) }
    }

    fn limit(&self) -> NonNull<u8> {
        // SAFETY: the guard is shorter than the mapping, so the result is inside it.
        unsafe { NonNull::new_unchecked(self.mapping.as_ptr().add(self.guard_len)) }
    }

    fn guard(&self) -> Option<(usize, usize)> {
        Some((self.mapping.as_ptr() as usize, self.guard_len))
    }

    fn size(&self) -> usize {
        self.len - self.guard_len
    }
}

impl Drop for MmapStack {
    fn drop(&mut self) {
        budget::release();
        if let Some(slot) = self.slot.take() {
            guard_table::unregister(slot);
        }
        // SAFETY: the mapping was created by MmapStack::new with this address and length,
        // is unmapped exactly once, and no coroutine runs on it any more (the Stack contract
        // makes the scheduler drop a stack only after its coroutine is gone).
        let rc = unsafe { libc::munmap(self.mapping.as_ptr().cast(), self.len) };
        debug_assert_eq!(rc, 0, "munmap of a stack mapping failed");
    }
}

/// The usable size for a request: at least [`MIN_STACK_SIZE`], rounded up to the page size
/// (a power of two, so without a division: this runs on every spawn).
fn round_size(size: usize) -> Result<usize, StackError> {
    if size < MIN_STACK_SIZE {
        return Err(StackError::TooSmall { requested: size });
    }
    let page = sys::page_size();
    debug_assert!(page.is_power_of_two(), "page size {page}");
    match size.checked_add(page - 1) {
        Some(end) => Ok(end & !(page - 1)),
        None => Err(StackError::Exhausted {
            requested: size,
            detail: BEYOND_ADDRESS_SPACE,
            errno: libc::ENOMEM,
        }),
    }
}

/// A per-thread pool of [`MmapStack`]s: the [`StackAllocator`] a scheduler owns.
///
/// Released stacks go on a free list for their size and are handed out again as they are,
/// in the very box the scheduler gave back (so a reused stack costs no allocation either),
/// without `madvise(MADV_DONTNEED)`: a reused stack needs no page faults to warm up, and the
/// memory the pool can pin is bounded by `cap × stack size` (16 MiB per scheduler with the
/// defaults), which is small next to the live stacks themselves. A program that wants that
/// memory back calls [`StackPool::clear`], or picks a smaller cap. A release beyond the cap
/// unmaps the stack at once.
///
/// The pool belongs to one thread (a scheduler never shares it), so its bookkeeping is
/// plain `Cell`/`RefCell`. Creating a pool installs the stack-overflow handler and this
/// thread's alternate signal stack, so overflows of its stacks are reported.
pub struct StackPool {
    shared: Rc<PoolShared>,
}

/// The free lists, shared with the stacks handed out so that dropping one returns it.
struct PoolShared {
    /// At most this many free stacks are kept, over all sizes.
    cap: usize,
    /// How many free stacks are kept now.
    pooled: Cell<usize>,
    /// Free stacks by usable size; a scheduler uses one or two sizes, so a short list.
    free: RefCell<Vec<FreeList>>,
    /// Set while [`StackPool::clear`] drops the free stacks, so they do not come back.
    draining: Cell<bool>,
}

/// Free stacks of one usable size, each still in the box it was handed out in.
struct FreeList {
    size: usize,
    stacks: Vec<BoxedStack>,
}

impl StackPool {
    /// A pool that keeps up to [`DEFAULT_POOL_CAP`] free stacks.
    pub fn new() -> StackPool {
        StackPool::with_cap(DEFAULT_POOL_CAP)
    }

    /// A pool that keeps up to `cap` free stacks (0 disables pooling).
    pub fn with_cap(cap: usize) -> StackPool {
        install_overflow_handler();
        StackPool {
            shared: Rc::new(PoolShared {
                cap,
                pooled: Cell::new(0),
                free: RefCell::new(Vec::new()),
                draining: Cell::new(false),
            }),
        }
    }

    /// The most free stacks this pool keeps.
    pub fn cap(&self) -> usize {
        self.shared.cap
    }

    /// How many free stacks the pool holds now.
    pub fn pooled(&self) -> usize {
        self.shared.pooled.get()
    }

    /// Unmap every free stack the pool holds.
    pub fn clear(&self) {
        let lists = core::mem::take(&mut *self.shared.free.borrow_mut());
        self.shared.pooled.set(0);
        self.shared.draining.set(true);
        drop(lists);
        self.shared.draining.set(false);
    }
}

impl Default for StackPool {
    fn default() -> StackPool {
        StackPool::new()
    }
}

impl PoolShared {
    /// A free stack of exactly `usable` bytes, if one is pooled.
    fn take(&self, usable: usize) -> Option<BoxedStack> {
        let mut free = self.free.borrow_mut();
        let list = free.iter_mut().find(|list| list.size == usable)?;
        let stack = list.stacks.pop()?;
        self.pooled.set(self.pooled.get() - 1);
        Some(stack)
    }

    /// Whether a released stack would be kept.
    fn has_room(&self) -> bool {
        self.pooled.get() < self.cap && !self.draining.get()
    }

    /// Keep `stack` for reuse; the caller checked [`has_room`](Self::has_room).
    fn keep(&self, stack: BoxedStack) {
        let size = stack.size();
        let mut free = self.free.borrow_mut();
        match free.iter_mut().find(|list| list.size == size) {
            Some(list) => list.stacks.push(stack),
            None => free.push(FreeList {
                size,
                stacks: vec![stack],
            }),
        }
        self.pooled.set(self.pooled.get() + 1);
    }
}

impl StackAllocator for StackPool {
    fn allocate(&self, size: usize) -> Result<BoxedStack, StackError> {
        let usable = round_size(size)?;
        if let Some(stack) = self.shared.take(usable) {
            return Ok(stack);
        }
        Ok(Box::new(PooledStack {
            stack: ManuallyDrop::new(MmapStack::new(size)?),
            pool: Rc::downgrade(&self.shared),
        }))
    }

    fn release(&self, stack: BoxedStack) {
        // Any `Stack` may be pooled and handed out again: the trait's contract holds for as
        // long as the value lives, whoever made it.
        if self.shared.has_room() {
            self.shared.keep(stack);
        } else {
            drop(stack);
        }
    }
}

/// A stack on loan from a [`StackPool`]; [`StackPool::release`] keeps it (box and all) for
/// reuse, and dropping it otherwise returns the mapping to the pool too (or unmaps it when
/// the pool is full or gone).
struct PooledStack {
    /// Always initialised; taken out only in `drop`.
    stack: ManuallyDrop<MmapStack>,
    /// The pool to return to; weak so that dropping the pool unmaps its free stacks at once.
    pool: Weak<PoolShared>,
}

// SAFETY: every method forwards to the MmapStack this value owns, which upholds the
// contract; the mapping stays alive and exclusively owned until this value is dropped.
unsafe impl Stack for PooledStack {
    fn base(&self) -> NonNull<u8> {
        self.stack.base()
    }
    fn limit(&self) -> NonNull<u8> {
        self.stack.limit()
    }
    fn guard(&self) -> Option<(usize, usize)> {
        self.stack.guard()
    }
    fn size(&self) -> usize {
        self.stack.size()
    }
}

impl Drop for PooledStack {
    fn drop(&mut self) {
        // SAFETY: `stack` is initialised (it is only taken here) and not used again.
        let stack = unsafe { ManuallyDrop::take(&mut self.stack) };
        match self.pool.upgrade() {
            Some(pool) if pool.has_room() => pool.keep(Box::new(PooledStack {
                stack: ManuallyDrop::new(stack),
                pool: self.pool.clone(),
            })),
            _ => drop(stack),
        }
    }
}

/// The detail for a stack larger than the machine's memory.
const LARGER_THAN_MEMORY: &str = "the stack asked for is larger than this machine's physical \
     memory, which is almost always a unit mistake; coroutine stacks are typically 64 KiB to a \
     few MiB (the default is 256 KiB): ask for a smaller stack";

/// The detail for a size that overflows the address space.
const BEYOND_ADDRESS_SPACE: &str =
    "the size does not fit the address space; ask for a smaller stack (the default is 256 KiB)";

/// The detail for ENOMEM that is not the mapping limit.
const OUT_OF_MEMORY: &str = "the OS is out of memory or address space for stacks (see \
     ulimit -v and the system's overcommit policy); use smaller stacks, fewer coroutines, or \
     the shared-stack mode";

/// The detail for any other refusal by mmap or mprotect.
const MAP_REFUSED: &str = "the OS refused to map memory for a coroutine stack; the errno says \
     why (a sandbox or security policy forbidding anonymous mappings is the usual cause)";

/// The errno of the last failed call on this thread.
fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// The error for a failed mmap or mprotect with `errno`.
fn os_error(requested: usize, errno: i32) -> StackError {
    let detail = if errno == libc::ENOMEM {
        match mapping_limit_reached() {
            Some(max) => mapping_limit_detail(max),
            None => OUT_OF_MEMORY,
        }
    } else {
        MAP_REFUSED
    };
    StackError::Exhausted {
        requested,
        detail,
        errno,
    }
}

/// `vm.max_map_count`, if this process is at (or within 1/64 of) that limit. When the
/// mappings cannot be counted the limit is still blamed: with a reserve-free mapping of a
/// few hundred KiB it is by far the likeliest cause of ENOMEM.
fn mapping_limit_reached() -> Option<usize> {
    let max = sys::max_map_count()?;
    match sys::map_count() {
        Some(count) if count + max / 64 < max => None,
        _ => Some(max),
    }
}

/// The sentence for the mapping limit `max`, formatted once per distinct limit and kept for
/// the life of the process (`StackError::detail` is `&'static str`).
fn mapping_limit_detail(max: usize) -> &'static str {
    static CACHE: Mutex<Option<(usize, &'static str)>> = Mutex::new(None);
    let mut cache = CACHE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((cached_max, detail)) = *cache {
        if cached_max == max {
            return detail;
        }
    }
    let suggestion = max.saturating_mul(4).max(262_144);
    let detail: &'static str = String::leak(format!(
        "each guarded stack needs two memory mappings and vm.max_map_count is {max}, which this \
         process has reached; raise it (sysctl -w vm.max_map_count={suggestion}), use a smaller \
         stack pool or fewer coroutines"
    ));
    *cache = Some((max, detail));
    detail
}

/// How many guarded stacks the process may hold, so that spawning never takes the last
/// memory mappings: past `vm.max_map_count` the allocator's own `mmap` fails and the
/// process aborts ("memory allocation of … bytes failed"). At the first stack, the limit
/// is derived from `vm.max_map_count`: an eighth of it (at least 1024 mappings) and the
/// mappings the process already has are kept for everything else, and each stack takes
/// two of the rest. `set_max_stacks` replaces it.
pub mod budget {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use shrapnel_core::stack::StackError;

    use crate::sys;

    /// Guarded stacks alive in this process (pooled ones included: they stay mapped).
    static LIVE: AtomicUsize = AtomicUsize::new(0);
    /// The most allowed; `UNSET` until derived or set, `usize::MAX` for no limit.
    static MAX: AtomicUsize = AtomicUsize::new(UNSET);
    const UNSET: usize = 0;

    /// Mappings kept for the rest of the program out of a limit of `max_map_count`.
    fn reserve(max_map_count: usize) -> usize {
        (max_map_count / 8).max(1024.min(max_map_count / 2))
    }

    fn derive() -> usize {
        match sys::max_map_count() {
            Some(limit) => {
                let used = sys::map_count().unwrap_or(0);
                (limit.saturating_sub(reserve(limit)).saturating_sub(used) / 2).max(1)
            }
            None => usize::MAX,
        }
    }

    /// The most guarded stacks this process may hold (`None`: no limit on this OS).
    pub fn max_stacks() -> Option<usize> {
        let mut max = MAX.load(Ordering::Relaxed);
        if max == UNSET {
            max = derive();
            let _ = MAX.compare_exchange(UNSET, max, Ordering::Relaxed, Ordering::Relaxed);
            max = MAX.load(Ordering::Relaxed);
        }
        (max != usize::MAX).then_some(max)
    }

    /// Set the most guarded stacks this process may hold (`None`: derive it again from
    /// `vm.max_map_count`). Stacks already alive stay; new ones wait for room.
    pub fn set_max_stacks(max: Option<usize>) {
        let max = match max {
            Some(n) => n.clamp(1, usize::MAX - 1),
            None => derive(),
        };
        MAX.store(max, Ordering::Relaxed);
    }

    /// Guarded stacks alive now.
    pub fn live_stacks() -> usize {
        LIVE.load(Ordering::Relaxed)
    }

    /// A place claimed for one stack; given back on drop unless [`keep`](Self::keep)
    /// hands it to the stack that was made.
    pub(super) struct Claim(());

    impl Claim {
        pub(super) fn keep(self) {
            core::mem::forget(self);
        }
    }

    impl Drop for Claim {
        fn drop(&mut self) {
            release();
        }
    }

    /// Claim a place for a new stack of `size` bytes, or the error naming the limit.
    pub(super) fn claim(size: usize) -> Result<Claim, StackError> {
        let max = max_stacks().unwrap_or(usize::MAX);
        if LIVE.fetch_add(1, Ordering::Relaxed) >= max {
            LIVE.fetch_sub(1, Ordering::Relaxed);
            return Err(StackError::Exhausted {
                requested: size,
                detail: detail(max),
                errno: libc::ENOMEM,
            });
        }
        Ok(Claim(()))
    }

    /// A stack was unmapped.
    pub(super) fn release() {
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }

    /// The sentence for the limit `max`, made once per distinct limit (the detail of a
    /// `StackError` is `&'static str`).
    fn detail(max: usize) -> &'static str {
        static CACHE: Mutex<Option<(usize, &'static str)>> = Mutex::new(None);
        let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((cached, detail)) = *cache {
            if cached == max {
                return detail;
            }
        }
        let limit = match sys::max_map_count() {
            Some(l) => format!(
                ", which keeps {} of vm.max_map_count's {l} memory mappings for the allocator \
                 and the rest of the program (each stack takes two)",
                reserve(l)
            ),
            None => String::new(),
        };
        let detail: &'static str = String::leak(format!(
            "this process holds {max} guarded coroutine stacks, the most it allows itself{limit}; \
             so that reaching the limit cannot abort the process, spawning fails here instead. \
             Raise vm.max_map_count (then shrapnel::stack::budget::set_max_stacks(None)), set \
             the limit with set_max_stacks, or run fewer coroutines at once"
        ));
        *cache = Some((max, detail));
        detail
    }
}

/// The guard ranges of this thread's live stacks, readable from a signal handler.
///
/// A fixed-size chunk of slots is allocated the first time a thread creates a stack, and
/// more chunks as needed; chunks never move and are freed only at thread exit, so the
/// handler can walk them at any moment. A slot is published by writing its `end` last and
/// retired by clearing `end` first, so a handler that interrupts an update (say, a
/// coroutine overflowing inside `spawn`) sees either a whole entry or none. The handler
/// runs on the faulting thread, which is the thread that owns the table.
mod guard_table {
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
}

/// The SIGSEGV/SIGBUS handler that reports stack overflows, and the alternate signal
/// stacks it runs on.
mod overflow {
    use super::guard_table;
    use crate::sys;
    use core::cell::{RefCell, UnsafeCell};
    use core::fmt::Write as _;
    use core::mem::MaybeUninit;
    use core::ptr;
    use core::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Once;

    /// Size of the alternate signal stack each thread gets: far more than the handler needs
    /// (a few hundred bytes of locals plus the kernel's signal frame), so later handlers
    /// that share it (latency sampling, where_all dumps) have room too.
    const ALTSTACK_SIZE: usize = 64 * 1024;

    /// The actions that were installed for `sys::FAULT_SIGNALS` before ours, in that order.
    struct SavedActions {
        actions: UnsafeCell<[MaybeUninit<libc::sigaction>; 2]>,
        /// Set once `actions` holds every previous action.
        ready: AtomicBool,
    }

    // SAFETY: `actions` is written only inside INSTALL's call_once, before `ready` is set
    // with Release and before our handler is installed; afterwards it is only read.
    unsafe impl Sync for SavedActions {}

    // SAVED has room for two previous actions.
    const _: () = assert!(sys::FAULT_SIGNALS.len() <= 2);

    static SAVED: SavedActions = SavedActions {
        actions: UnsafeCell::new([MaybeUninit::uninit(), MaybeUninit::uninit()]),
        ready: AtomicBool::new(false),
    };
    static INSTALL: Once = Once::new();

    /// Install the stack-overflow handler for SIGSEGV (and SIGBUS where the OS raises it)
    /// once per process, and an alternate signal stack for the calling thread.
    ///
    /// Idempotent. Every other thread that runs coroutines must call [`ensure_altstack`]
    /// (a scheduler does so when it starts), or an overflow there is a plain crash.
    pub(crate) fn install_overflow_handler() {
        // Without an alternate stack an overflow is still a crash, just an unnamed one, so
        // a failure to map one is not worth failing the caller for.
        let _ = ensure_altstack();
        INSTALL.call_once(|| {
            let signals = sys::FAULT_SIGNALS;
            // SAFETY: call_once runs this exactly once, before `ready` is set, so nothing
            // reads `actions` concurrently.
            let actions = unsafe { &mut *SAVED.actions.get() };
            for (&signal, saved) in signals.iter().zip(actions.iter_mut()) {
                // SAFETY: querying the current action writes a whole sigaction to `saved`.
                unsafe { libc::sigaction(signal, ptr::null(), saved.as_mut_ptr()) };
            }
            SAVED.ready.store(true, Ordering::Release);
            for &signal in signals {
                // SAFETY: an all-zero sigaction is valid; the fields that matter are set
                // below; the handler has the SA_SIGINFO signature.
                unsafe {
                    let mut action: libc::sigaction = core::mem::zeroed();
                    action.sa_sigaction = handle_fault as *const () as libc::sighandler_t;
                    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                    libc::sigemptyset(&mut action.sa_mask);
                    libc::sigaction(signal, &action, ptr::null_mut());
                }
            }
        });
    }

    /// This thread's alternate signal stack, unmapped at thread exit.
    struct AltStack {
        /// Start of the mapping (a guard page, then ALTSTACK_SIZE usable bytes).
        mapping: *mut libc::c_void,
        len: usize,
        /// The usable part handed to sigaltstack.
        stack: *mut libc::c_void,
    }

    std::thread_local! {
        static ALTSTACK: RefCell<Option<AltStack>> = const { RefCell::new(None) };
    }

    /// Give the calling thread an alternate signal stack of 64 KiB (with a guard page), so
    /// the overflow handler can run when the coroutine stack is full. Idempotent; keeps an
    /// existing alternate stack that is at least as large. Call once on every thread that
    /// runs coroutines on guarded stacks.
    pub(crate) fn ensure_altstack() -> std::io::Result<()> {
        ALTSTACK
            .try_with(|slot| {
                if slot.borrow().is_some() {
                    return Ok(());
                }
                // SAFETY: an all-zero stack_t is valid for sigaltstack to overwrite.
                let mut current: libc::stack_t = unsafe { core::mem::zeroed() };
                // SAFETY: querying only; `current` is valid for writes.
                if unsafe { libc::sigaltstack(ptr::null(), &mut current) } != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if current.ss_flags & libc::SS_DISABLE == 0 && current.ss_size >= ALTSTACK_SIZE {
                    return Ok(());
                }
                let guard = sys::page_size();
                let len = ALTSTACK_SIZE + guard;
                // SAFETY: a fresh anonymous mapping touches no existing memory; checked below.
                let mapping = unsafe {
                    libc::mmap(
                        ptr::null_mut(),
                        len,
                        libc::PROT_READ | libc::PROT_WRITE,
                        libc::MAP_PRIVATE | libc::MAP_ANON,
                        -1,
                        0,
                    )
                };
                if mapping == libc::MAP_FAILED {
                    return Err(std::io::Error::last_os_error());
                }
                // SAFETY: the guard page lies inside the mapping just created; `stack` is
                // the rest of it, which the kernel uses only while delivering a signal.
                let stack = unsafe {
                    libc::mprotect(mapping, guard, libc::PROT_NONE);
                    mapping.cast::<u8>().add(guard).cast::<libc::c_void>()
                };
                let new = libc::stack_t {
                    ss_sp: stack,
                    ss_flags: 0,
                    ss_size: ALTSTACK_SIZE,
                };
                // SAFETY: `new` describes memory that stays mapped until AltStack's drop,
                // which first takes it out of use.
                if unsafe { libc::sigaltstack(&new, ptr::null_mut()) } != 0 {
                    let error = std::io::Error::last_os_error();
                    // SAFETY: the mapping was never handed to the kernel; unmap it whole.
                    unsafe { libc::munmap(mapping, len) };
                    return Err(error);
                }
                *slot.borrow_mut() = Some(AltStack {
                    mapping,
                    len,
                    stack,
                });
                Ok(())
            })
            .unwrap_or_else(|_| {
                Err(std::io::Error::other(
                    "the thread is exiting; no alternate signal stack installed",
                ))
            })
    }

    impl Drop for AltStack {
        fn drop(&mut self) {
            // SAFETY: an all-zero stack_t is valid for sigaltstack to overwrite.
            let mut current: libc::stack_t = unsafe { core::mem::zeroed() };
            // SAFETY: query, then disable the alternate stack only if it is still ours (the
            // standard library's thread teardown may already have disabled it).
            unsafe {
                libc::sigaltstack(ptr::null(), &mut current);
                if current.ss_sp == self.stack && current.ss_flags & libc::SS_DISABLE == 0 {
                    let disable = libc::stack_t {
                        ss_sp: ptr::null_mut(),
                        ss_flags: libc::SS_DISABLE,
                        ss_size: ALTSTACK_SIZE,
                    };
                    libc::sigaltstack(&disable, ptr::null_mut());
                }
            }
            // SAFETY: the mapping is no longer the thread's signal stack; unmapped once.
            unsafe { libc::munmap(self.mapping, self.len) };
        }
    }

    /// The handler for SIGSEGV/SIGBUS. Allocates nothing and takes no lock.
    extern "C" fn handle_fault(
        signal: libc::c_int,
        info: *mut libc::siginfo_t,
        _context: *mut libc::c_void,
    ) {
        // SAFETY: the kernel passes a valid siginfo for the memory fault being handled.
        let addr = unsafe { sys::fault_address(info) };
        if let Some(hit) = guard_table::find(addr) {
            report_overflow(&hit);
            // SAFETY: abort is async-signal-safe and never returns.
            unsafe { libc::abort() };
        }
        // Not a guard page: put back what was there before and return, so the faulting
        // instruction runs again and the fault takes its ordinary course (a core dump).
        let index = sys::FAULT_SIGNALS.iter().position(|&s| s == signal);
        let restored = match index {
            Some(index) if SAVED.ready.load(Ordering::Acquire) => {
                // SAFETY: `ready` says every saved action was written and is immutable now;
                // `index` is below FAULT_SIGNALS.len(), which fits the array.
                let saved = unsafe { (*SAVED.actions.get())[index].as_ptr() };
                // SAFETY: `saved` is a complete sigaction obtained from the kernel.
                unsafe { libc::sigaction(signal, saved, ptr::null_mut()) == 0 }
            }
            _ => false,
        };
        if !restored {
            // SAFETY: resetting a signal to its default action is async-signal-safe.
            unsafe { libc::signal(signal, libc::SIG_DFL) };
        }
    }

    /// Write `coroutine #N 'name' overflowed its stack (S KiB)` to stderr, without
    /// allocating.
    fn report_overflow(hit: &guard_table::GuardHit) {
        let kib = (hit.base - hit.end) / 1024;
        let mut line: heapless::String<256> = heapless::String::new();
        // Name the running coroutine only if the stack that overflowed is its stack.
        let running = shrapnel_core::running_for_signal()
            .filter(|info| info.stack_base == hit.base || info.stack_limit == hit.end);
        // A line that does not fit is cut short; the name is at most 64 bytes, so it fits.
        let _ = match running {
            Some(info) => writeln!(
                line,
                "coroutine #{} '{}' overflowed its stack ({kib} KiB)",
                info.id, info.name
            ),
            None => writeln!(
                line,
                "a coroutine overflowed its stack ({kib} KiB) at guard page {:#x}",
                hit.start
            ),
        };
        let _ = line.push_str(
            "shrapnel: aborting; give the coroutine a larger stack (Builder::stack_size) or \
             make it use less (deep recursion, large locals)\n",
        );
        write_stderr(line.as_bytes());
    }

    /// write(2) all of `bytes` to fd 2, retrying on EINTR and short writes.
    fn write_stderr(mut bytes: &[u8]) {
        while !bytes.is_empty() {
            // SAFETY: `bytes` is valid for reads of its length; write is async-signal-safe.
            let n = unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
            if n > 0 {
                bytes = &bytes[n as usize..];
            } else if n < 0
                && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
            {
                continue;
            } else {
                return;
            }
        }
    }

    /// Test support: the calling thread's alternate signal stack, `(start, size)`.
    #[cfg(test)]
    pub(super) fn current_altstack() -> Option<(usize, usize)> {
        // SAFETY: an all-zero stack_t is valid for sigaltstack to overwrite.
        let mut current: libc::stack_t = unsafe { core::mem::zeroed() };
        // SAFETY: querying only; `current` is valid for writes.
        let rc = unsafe { libc::sigaltstack(ptr::null(), &mut current) };
        (rc == 0 && current.ss_flags & libc::SS_DISABLE == 0)
            .then_some((current.ss_sp as usize, current.ss_size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::FromRawFd;
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    /// How a forked child ended, and what it wrote to stdout and stderr (one pipe).
    struct Child {
        status: ExitStatus,
        output: String,
    }

    /// Run `action` in a forked child of this test process with stdout and stderr going to a
    /// pipe, and wait for it. Forking (rather than running the test binary again) also works
    /// under a user-mode emulator such as qemu-aarch64. The child is a copy of this one
    /// thread: `action` must not wait for anything another thread of the parent holds, so
    /// process-wide setup (the fault handler) is done in the parent before the fork.
    fn in_child(action: fn()) -> Child {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe writes.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
        let [read_end, write_end] = fds;
        // SAFETY: the child only redirects its output, runs `action` and leaves with _exit,
        // never returning into the test harness; the parent continues normally.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // SAFETY: plain descriptor operations and setrlimit on valid arguments.
            unsafe {
                libc::close(read_end);
                libc::dup2(write_end, 1);
                libc::dup2(write_end, 2);
                libc::close(write_end);
                // The child crashes on purpose: no core file.
                let limit = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                libc::setrlimit(libc::RLIMIT_CORE, &limit);
            }
            let code = match std::panic::catch_unwind(action) {
                Ok(()) => 0,
                Err(_) => 101,
            };
            // SAFETY: _exit ends the child without running the parent's atexit handlers.
            unsafe { libc::_exit(code) };
        }
        // SAFETY: the parent owns both ends; it closes the write end so that reading ends
        // when the child exits, and takes ownership of the read end exactly once.
        let mut pipe = unsafe {
            libc::close(write_end);
            std::fs::File::from_raw_fd(read_end)
        };
        let mut bytes = Vec::new();
        pipe.read_to_end(&mut bytes)
            .expect("read the child's output");
        let mut status = 0;
        // SAFETY: waiting for the child forked above; `status` is valid for writes.
        assert_eq!(
            unsafe { libc::waitpid(pid, &mut status, 0) },
            pid,
            "waitpid"
        );
        Child {
            status: ExitStatus::from_raw(status),
            output: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// Write to the child's stdout, bypassing the harness's output capture.
    fn child_print(text: &str) {
        // SAFETY: `text` is valid for reads of its length.
        unsafe { libc::write(1, text.as_ptr().cast(), text.len()) };
    }

    #[test]
    fn size_is_rounded_up_to_the_page_size() {
        let page = sys::page_size();
        let stack = MmapStack::new(MIN_STACK_SIZE + 1).expect("map a small stack");
        assert_eq!(stack.size(), (MIN_STACK_SIZE + 1).next_multiple_of(page));
        assert_eq!(stack.size() % page, 0);
        assert_eq!(stack.base().as_ptr() as usize % 16, 0);
        let (guard_start, guard_len) = stack.guard().expect("an mmap stack has a guard");
        assert_eq!(guard_len, page);
        assert_eq!(guard_start + guard_len, stack.limit().as_ptr() as usize);

        let exact = MmapStack::new(DEFAULT_STACK_SIZE).expect("map a default stack");
        assert_eq!(exact.size(), DEFAULT_STACK_SIZE);
    }

    #[test]
    fn the_whole_usable_range_is_writable() {
        let stack = MmapStack::new(DEFAULT_STACK_SIZE).expect("map a default stack");
        let limit = stack.limit().as_ptr();
        // SAFETY: [limit, base) is read/write memory owned by `stack`.
        unsafe {
            limit.write_volatile(1);
            stack.base().as_ptr().sub(1).write_volatile(2);
            assert_eq!(limit.read_volatile(), 1);
            assert_eq!(stack.base().as_ptr().sub(1).read_volatile(), 2);
        }
    }

    #[test]
    fn too_small_is_refused_with_the_minimum() {
        let error = MmapStack::new(4096)
            .err()
            .expect("4 KiB is below the minimum");
        assert_eq!(error, StackError::TooSmall { requested: 4096 });
        let message = error.to_string();
        assert!(message.contains("4096"), "{message}");
        assert!(message.contains("16 KiB"), "{message}");
        let pool = StackPool::new();
        assert_eq!(
            pool.allocate(0).err(),
            Some(StackError::TooSmall { requested: 0 })
        );
    }

    #[test]
    fn a_huge_stack_is_exhausted_not_a_panic() {
        let tib = 1usize << 40;
        let error = MmapStack::new(tib)
            .err()
            .expect("no machine here backs a 1 TiB stack");
        match &error {
            StackError::Exhausted {
                requested, detail, ..
            } => {
                assert_eq!(*requested, tib);
                assert!(detail.contains("smaller stack"), "{detail}");
            }
            other => panic!("expected Exhausted, got {other:?}"),
        }
        assert!(error.to_string().contains("1099511627776"), "{error}");
        let overflowing = MmapStack::new(usize::MAX - 1).err();
        assert!(matches!(
            overflowing,
            Some(StackError::Exhausted {
                detail: BEYOND_ADDRESS_SPACE,
                ..
            }) | Some(StackError::Exhausted {
                detail: LARGER_THAN_MEMORY,
                ..
            })
        ));
    }

    #[test]
    fn guards_are_registered_for_the_life_of_the_stack() {
        let before = guard_table::live();
        let stack = MmapStack::new(DEFAULT_STACK_SIZE).expect("map a default stack");
        let (start, len) = stack.guard().expect("a guard");
        assert_eq!(guard_table::live(), before + 1);
        let hit = guard_table::find(start + len - 1).expect("the guard is registered");
        assert_eq!(hit.start, start);
        assert_eq!(hit.end, stack.limit().as_ptr() as usize);
        assert_eq!(hit.base, stack.base().as_ptr() as usize);
        assert!(guard_table::find(stack.limit().as_ptr() as usize).is_none());
        drop(stack);
        assert_eq!(guard_table::live(), before);
        assert!(guard_table::find(start).is_none());
    }

    #[test]
    fn the_table_grows_past_one_chunk() {
        let stacks: Vec<MmapStack> = (0..300)
            .map(|_| MmapStack::new(MIN_STACK_SIZE).expect("map a small stack"))
            .collect();
        for stack in &stacks {
            let (start, _) = stack.guard().expect("a guard");
            let hit = guard_table::find(start).expect("every guard is registered");
            assert_eq!(hit.base, stack.base().as_ptr() as usize);
        }
    }

    /// Write one byte to the guard page of a fresh default-size stack.
    fn touch_a_guard_page() {
        let stack = MmapStack::new(DEFAULT_STACK_SIZE).expect("map a default stack");
        let (start, _) = stack.guard().expect("a guard");
        // SAFETY: deliberately not safe: the child process running this exists to fault.
        unsafe { (start as *mut u8).write_volatile(1) };
    }

    #[test]
    fn the_guard_page_faults() {
        let child = in_child(|| {
            // Whatever another test installed, this child sees the default action.
            for &signal in sys::FAULT_SIGNALS {
                // SAFETY: resetting a signal's action to the default.
                unsafe { libc::signal(signal, libc::SIG_DFL) };
            }
            touch_a_guard_page();
        });
        let signal = child.status.signal();
        assert!(
            signal.is_some_and(|signal| sys::FAULT_SIGNALS.contains(&signal)),
            "{:?}\n{}",
            child.status,
            child.output
        );
    }

    #[test]
    fn a_guard_hit_is_reported_and_aborts() {
        install_overflow_handler();
        let child = in_child(touch_a_guard_page);
        let text = &child.output;
        assert_eq!(child.status.signal(), Some(libc::SIGABRT), "{text}");
        assert!(text.contains("overflowed its stack (256 KiB)"), "{text}");
        assert!(text.contains("at guard page 0x"), "{text}");
        assert!(text.contains("Builder::stack_size"), "{text}");
    }

    #[test]
    fn other_faults_keep_their_default_action() {
        install_overflow_handler();
        let child = in_child(|| {
            let _stack = MmapStack::new(DEFAULT_STACK_SIZE).expect("map a default stack");
            // SAFETY: a fresh PROT_NONE mapping; the write below is meant to fault.
            unsafe {
                let other = libc::mmap(
                    ptr::null_mut(),
                    sys::page_size(),
                    libc::PROT_NONE,
                    libc::MAP_PRIVATE | libc::MAP_ANON,
                    -1,
                    0,
                );
                assert_ne!(other, libc::MAP_FAILED);
                other.cast::<u8>().write_volatile(1);
            }
        });
        let text = &child.output;
        let signal = child.status.signal();
        assert!(
            signal.is_some_and(|signal| sys::FAULT_SIGNALS.contains(&signal)),
            "{:?}\n{text}",
            child.status
        );
        assert!(!text.contains("overflowed"), "{text}");
    }

    /// Recurse until the stack runs out.
    extern "C" fn recurse_forever() {
        fn deeper(depth: usize) -> usize {
            // Never true: 256 KiB holds a few hundred frames. It only tells the compiler
            // that the recursion has an end.
            if depth == usize::MAX {
                return 0;
            }
            let frame = std::hint::black_box([depth as u8; 512]);
            deeper(depth + 1) + frame[depth % 512] as usize
        }
        std::hint::black_box(deeper(0));
    }

    /// What the recursion child prints where it cannot run a function on another stack.
    const NO_RUN_ON_STACK: &str = "run_on_stack is not available on this OS";

    #[test]
    fn recursion_on_a_guarded_stack_is_reported_on_the_altstack() {
        install_overflow_handler();
        let child = in_child(|| {
            // The child is a copy of this test's thread, which may have no altstack yet.
            ensure_altstack().expect("an alternate signal stack");
            let stack = MmapStack::new(DEFAULT_STACK_SIZE).expect("map a default stack");
            if !sys::run_on_stack(stack.limit().as_ptr(), stack.size(), recurse_forever) {
                child_print(NO_RUN_ON_STACK);
            }
        });
        let text = &child.output;
        if child.status.success() && text.contains(NO_RUN_ON_STACK) {
            return;
        }
        assert_eq!(child.status.signal(), Some(libc::SIGABRT), "{text}");
        assert!(text.contains("overflowed its stack (256 KiB)"), "{text}");
    }

    #[test]
    fn ensure_altstack_installs_one_per_thread() {
        std::thread::spawn(|| {
            ensure_altstack().expect("an alternate signal stack");
            let (start, size) = overflow::current_altstack().expect("enabled");
            assert!(size >= 64 * 1024);
            ensure_altstack().expect("idempotent");
            assert_eq!(overflow::current_altstack(), Some((start, size)));
        })
        .join()
        .expect("the thread checks its altstack");
    }

    #[test]
    fn the_pool_reuses_a_released_stack() {
        let pool = StackPool::new();
        let first = pool.allocate(DEFAULT_STACK_SIZE).expect("a stack");
        let base = first.base();
        pool.release(first);
        assert_eq!(pool.pooled(), 1);
        let second = pool.allocate(DEFAULT_STACK_SIZE).expect("a stack");
        assert_eq!(second.base(), base);
        assert_eq!(pool.pooled(), 0);
        // A different size is a different free list.
        pool.release(second);
        let small = pool.allocate(MIN_STACK_SIZE).expect("a small stack");
        assert_ne!(small.base(), base);
        assert_eq!(
            small.size(),
            MIN_STACK_SIZE.next_multiple_of(sys::page_size())
        );
        assert_eq!(pool.pooled(), 1);
        // Dropping a stack returns it just like release does.
        drop(small);
        assert_eq!(pool.pooled(), 2);
        let again = pool.allocate(MIN_STACK_SIZE).expect("a small stack");
        assert_eq!(
            again.size(),
            MIN_STACK_SIZE.next_multiple_of(sys::page_size())
        );
    }

    #[test]
    fn the_pool_unmaps_beyond_its_cap() {
        let live = guard_table::live();
        let pool = StackPool::with_cap(2);
        let stacks: Vec<BoxedStack> = (0..3)
            .map(|_| pool.allocate(DEFAULT_STACK_SIZE).expect("a stack"))
            .collect();
        assert_eq!(guard_table::live(), live + 3);
        for stack in stacks {
            pool.release(stack);
        }
        assert_eq!(pool.pooled(), 2);
        assert_eq!(guard_table::live(), live + 2);
        pool.clear();
        assert_eq!(pool.pooled(), 0);
        assert_eq!(guard_table::live(), live);

        // A stack outliving its pool is unmapped when dropped.
        let orphan = pool.allocate(DEFAULT_STACK_SIZE).expect("a stack");
        drop(pool);
        assert_eq!(guard_table::live(), live + 1);
        drop(orphan);
        assert_eq!(guard_table::live(), live);
    }

    /// What the mapping-limit child prints where there is no limit it can reach quickly.
    const NO_MAPPING_LIMIT: &str = "no mapping limit to exhaust here";

    #[test]
    fn the_mapping_limit_is_named_with_its_remedies() {
        let child = in_child(|| {
            let Some(max) = sys::max_map_count().filter(|&max| max <= 300_000) else {
                child_print(NO_MAPPING_LIMIT);
                return;
            };
            let mut stacks = Vec::with_capacity(max / 2 + 16);
            let fill = |stacks: &mut Vec<MmapStack>| loop {
                match MmapStack::new(MIN_STACK_SIZE) {
                    Ok(stack) => stacks.push(stack),
                    Err(error) => break error,
                }
            };
            // The budget stops first, with a reserve of mappings left.
            let error = fill(&mut stacks);
            child_print(&format!("budget={} error={error}\n", stacks.len()));
            // Without it, the kernel's limit is reached and named.
            budget::set_max_stacks(Some(usize::MAX - 1));
            let error = fill(&mut stacks);
            let count = stacks.len();
            drop(stacks);
            child_print(&format!("stacks={count} max={max}\nerror={error}\n"));
        });
        let text = &child.output;
        assert!(child.status.success(), "{:?}\n{text}", child.status);
        if text.contains(NO_MAPPING_LIMIT) {
            return;
        }
        let counts = text
            .split_once("stacks=")
            .and_then(|(_, rest)| rest.lines().next()?.split_once(" max="))
            .and_then(|(count, max)| Some((count.parse().ok()?, max.parse().ok()?)));
        let Some((count, max)): Option<(usize, usize)> = counts else {
            panic!("no counts in the child's output:\n{text}");
        };
        assert!(
            count > max / 2 - max / 16 && count <= max / 2,
            "{count} of {max}\n{text}"
        );
        assert!(
            text.contains(&format!("vm.max_map_count is {max}")),
            "{text}"
        );
        assert!(text.contains("two memory mappings"), "{text}");
        assert!(text.contains("sysctl -w vm.max_map_count="), "{text}");
        assert!(text.contains("fewer coroutines"), "{text}");
        assert!(text.contains(&format!("errno {}", libc::ENOMEM)), "{text}");
        let budget: usize = text
            .split_once("budget=")
            .and_then(|(_, rest)| rest.split_once(' ')?.0.parse().ok())
            .unwrap_or_else(|| panic!("no budget count:\n{text}"));
        let kept = (max - max / 8) / 2;
        assert!(
            budget <= kept && budget + 2_000 > kept,
            "{budget} stacks within the budget of {max} mappings\n{text}"
        );
        assert!(text.contains("the most it allows itself"), "{text}");
        assert!(
            text.contains(&format!("vm.max_map_count's {max}")),
            "{text}"
        );
        assert!(text.contains("set_max_stacks"), "{text}");
    }
}
