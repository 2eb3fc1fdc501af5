//! [`StackPool`]: the per-thread free lists of stacks a scheduler allocates from, and the
//! slabs it carves fresh ones from.

use core::mem::ManuallyDrop;
use core::ptr::NonNull;
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use shrapnel_core::stack::{BoxedStack, Stack, StackAllocator, StackError};

use super::slab::{Slab, SlabStack};
use super::{install_overflow_handler, round_size, DEFAULT_POOL_CAP};

/// A per-thread pool of guarded stacks: the [`StackAllocator`] a scheduler owns.
///
/// Fresh stacks are carved from slabs (`slab.rs`): one mapping holds up to 64 stacks, each
/// with its guard page, so a fresh spawn costs no `mmap`, and where the kernel makes guard
/// pages in place the whole slab is one of the process's limited kernel mappings.
///
/// Released stacks go on a free list for their size and are handed out again as they are,
/// in the very box the scheduler gave back (so a reused stack costs no allocation either),
/// without discarding their pages: a reused stack needs no page faults to warm up, and the
/// memory the pool can pin is bounded by `cap × stack size` (16 MiB per scheduler with the
/// defaults), which is small next to the live stacks themselves. A program that wants that
/// memory back calls [`StackPool::clear`], or picks a smaller cap. A release beyond the cap
/// gives the stack's memory back to the OS at once (`MADV_DONTNEED`) and its slot to the
/// slab; a slab with no stack in use is unmapped unless it is the only one with free slots.
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
    /// Slabs with a free slot, by usable size.
    slabs: RefCell<Vec<SlabList>>,
}

/// The slabs with a free slot for stacks of one usable size.
struct SlabList {
    usable: usize,
    /// Carved from the last; each has `listed` set.
    partial: Vec<Rc<Slab>>,
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
                slabs: RefCell::new(Vec::new()),
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

    /// Give back the memory of every free stack the pool holds, and unmap every slab none
    /// of whose stacks is in use.
    pub fn clear(&self) {
        let lists = core::mem::take(&mut *self.shared.free.borrow_mut());
        self.shared.pooled.set(0);
        self.shared.draining.set(true);
        drop(lists);
        self.shared.draining.set(false);
        let mut emptied = Vec::new();
        for list in self.shared.slabs.borrow_mut().iter_mut() {
            list.partial.retain(|slab| {
                let keep = slab.in_use() > 0;
                if !keep {
                    slab.set_listed(false);
                    emptied.push(slab.clone());
                }
                keep
            });
        }
        drop(emptied);
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

    /// A fresh stack of `usable` bytes from a slab (a new slab if none has room).
    fn carve(&self, requested: usize, usable: usize) -> Result<SlabStack, StackError> {
        let mut slabs = self.slabs.borrow_mut();
        let at = match slabs.iter().position(|list| list.usable == usable) {
            Some(at) => at,
            None => {
                slabs.push(SlabList {
                    usable,
                    partial: Vec::new(),
                });
                slabs.len() - 1
            }
        };
        let list = &mut slabs[at];
        if list.partial.is_empty() {
            let slab = Slab::map(requested, usable)?;
            slab.set_listed(true);
            list.partial.push(slab);
        }
        let slab = list
            .partial
            .last()
            .expect("a slab with room was just listed");
        let stack = slab.carve(requested)?;
        if !slab.has_room() {
            slab.set_listed(false);
            list.partial.pop();
        }
        Ok(stack)
    }

    /// Give a stack's slot back to its slab for good (not kept warm): list the slab again
    /// if it was full, and let it go if nothing in it is in use and another slab has room.
    fn retire(&self, stack: SlabStack) {
        let slab = stack.slab().clone();
        drop(stack);
        let mut slabs = self.slabs.borrow_mut();
        let Some(list) = slabs.iter_mut().find(|list| list.usable == slab.usable()) else {
            return;
        };
        let unused = slab.in_use() == 0;
        if unused && list.partial.iter().any(|other| !Rc::ptr_eq(other, &slab)) {
            if slab.listed() {
                slab.set_listed(false);
                list.partial.retain(|other| !Rc::ptr_eq(other, &slab));
            }
        } else if !slab.listed() {
            slab.set_listed(true);
            list.partial.push(slab);
        }
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
            stack: ManuallyDrop::new(self.shared.carve(size, usable)?),
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
/// reuse, and dropping it otherwise returns it to the pool too (or, when the pool is full
/// or gone, gives its slot back to the slab).
struct PooledStack {
    /// Always initialised; taken out only in `drop`.
    stack: ManuallyDrop<SlabStack>,
    /// The pool to return to; weak so that dropping the pool unmaps its free stacks at once.
    pool: Weak<PoolShared>,
}

// SAFETY: every method forwards to the SlabStack this value owns, which upholds the
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
            Some(pool) => pool.retire(stack),
            None => drop(stack),
        }
    }
}
