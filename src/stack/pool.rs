//! [`StackPool`]: the per-thread free lists of [`MmapStack`]s a scheduler allocates from.

use core::mem::ManuallyDrop;
use core::ptr::NonNull;
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use shrapnel_core::stack::{BoxedStack, Stack, StackAllocator, StackError};

use super::{install_overflow_handler, round_size, MmapStack, DEFAULT_POOL_CAP};

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
