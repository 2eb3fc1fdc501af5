//! The Stack trait and the heap stack used without an OS.
//!
//! A coroutine runs on a [`Stack`]: a region `[limit, base)` that grows down from `base`.
//! The runtime crate provides mmap stacks with a guard page and a per-thread pool; this
//! module provides [`HeapStackAllocator`], which takes stacks from the global allocator and
//! protects them with a canary word checked on every switch.

use alloc::alloc::{alloc, dealloc, Layout};
use core::fmt;
use core::ptr::NonNull;

/// Stacks smaller than this are refused: the switch frame, the entry trampoline and (with
/// `std`) a panic's unwinding and report need room. Without `std` a panic does not unwind,
/// so firmware may use much smaller stacks.
#[cfg(feature = "std")]
pub const MIN_STACK_SIZE: usize = 16 * 1024;
/// Stacks smaller than this are refused (no `std`: no unwinding, small frames).
#[cfg(not(feature = "std"))]
pub const MIN_STACK_SIZE: usize = 2 * 1024;

/// The word written at a canary-protected stack's limit.
pub const CANARY: usize = 0x5348_5241_504e_454c_u64 as usize; // "SHRAPNEL"

/// A region a coroutine can run on.
///
/// # Safety
///
/// An implementor guarantees, for as long as the value lives and is not moved out of:
/// - `[limit(), base())` is readable and writable memory owned exclusively by this stack;
/// - `base()` is 16-byte aligned and `base() - limit()` is at least [`MIN_STACK_SIZE`];
/// - the memory is not freed or reused while a coroutine may still be suspended on it;
/// - `guard()`, when `Some`, is an inaccessible range directly below `limit()` whose access
///   faults (that is how overflow is caught on hosts with an MMU).
pub unsafe trait Stack {
    /// The highest address, exclusive; the stack grows down from here.
    fn base(&self) -> NonNull<u8>;
    /// The lowest usable address.
    fn limit(&self) -> NonNull<u8>;
    /// The guard range below the limit, if there is one: `(start, len)`.
    fn guard(&self) -> Option<(usize, usize)> {
        None
    }
    /// Usable size in bytes.
    fn size(&self) -> usize {
        self.base().as_ptr() as usize - self.limit().as_ptr() as usize
    }
    /// False if a software canary at the limit has been overwritten (stack overflow).
    fn intact(&self) -> bool {
        match self.canary() {
            // SAFETY: an implementor's canary word lies inside memory it owns.
            Some(p) => unsafe { p.as_ptr().read_volatile() == CANARY },
            None => true,
        }
    }
    /// The canary word below the usable region, if this stack has one; the scheduler
    /// checks it after every switch out of the coroutine.
    fn canary(&self) -> Option<NonNull<usize>> {
        None
    }
}

/// Why a stack could not be had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StackError {
    /// The requested size is below [`MIN_STACK_SIZE`].
    TooSmall {
        /// What was asked for.
        requested: usize,
    },
    /// The OS or the allocator refused; `detail` says what to do about it.
    Exhausted {
        /// The size asked for.
        requested: usize,
        /// A sentence naming the limit that was hit and the remedies.
        detail: &'static str,
        /// The raw errno, if an OS call failed.
        errno: i32,
    },
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StackError::TooSmall { requested } => write!(
                f,
                "stack size {requested} bytes is below the minimum of {MIN_STACK_SIZE} bytes; \
                 ask for at least {} KiB",
                MIN_STACK_SIZE / 1024
            ),
            StackError::Exhausted {
                requested,
                detail,
                errno,
            } => {
                write!(
                    f,
                    "could not allocate a {requested}-byte stack (errno {errno}): {detail}"
                )
            }
        }
    }
}

/// A stack owned by the scheduler: an allocator-specific handle behind the [`Stack`] trait.
pub type BoxedStack = alloc::boxed::Box<dyn Stack>;

/// Gives stacks to the scheduler and takes them back.
pub trait StackAllocator {
    /// A stack of at least `size` usable bytes.
    fn allocate(&self, size: usize) -> Result<BoxedStack, StackError>;
    /// Take back a stack no coroutine runs on any more (for pooling); the default drops it.
    fn release(&self, stack: BoxedStack) {
        drop(stack)
    }
}

/// A stack from the global allocator, protected by a canary word at its limit.
pub struct HeapStack {
    ptr: NonNull<u8>,
    layout: Layout,
}

impl HeapStack {
    /// Allocate `size` bytes (rounded up to 16) plus the canary.
    pub fn new(size: usize) -> Result<HeapStack, StackError> {
        if size < MIN_STACK_SIZE {
            return Err(StackError::TooSmall { requested: size });
        }
        let size = size.next_multiple_of(16) + 16;
        let layout = Layout::from_size_align(size, 16).map_err(|_| StackError::Exhausted {
            requested: size,
            detail: "the size does not fit the address space",
            errno: 0,
        })?;
        // SAFETY: layout has a non-zero size (at least MIN_STACK_SIZE + 16).
        let raw = unsafe { alloc(layout) };
        let ptr = NonNull::new(raw).ok_or(StackError::Exhausted {
            requested: size,
            detail: "the heap is exhausted; use smaller stacks or fewer coroutines",
            errno: 0,
        })?;
        // SAFETY: the allocation is at least 16 bytes and 16-aligned, so the first word is
        // in bounds and aligned for usize.
        unsafe { ptr.as_ptr().cast::<usize>().write(CANARY) };
        Ok(HeapStack { ptr, layout })
    }
}

// SAFETY: the allocation is owned by this value until drop; base is ptr + size, which is
// 16-aligned because ptr is 16-aligned and the size is a multiple of 16; the usable region
// starts after the 16 bytes that hold the canary.
unsafe impl Stack for HeapStack {
    fn base(&self) -> NonNull<u8> {
        // SAFETY: one past the end of the allocation is a valid pointer to form.
        unsafe { NonNull::new_unchecked(self.ptr.as_ptr().add(self.layout.size())) }
    }
    fn limit(&self) -> NonNull<u8> {
        // SAFETY: 16 is within the allocation (its size is at least MIN_STACK_SIZE + 16).
        unsafe { NonNull::new_unchecked(self.ptr.as_ptr().add(16)) }
    }
    fn canary(&self) -> Option<NonNull<usize>> {
        Some(self.ptr.cast())
    }
}

impl Drop for HeapStack {
    fn drop(&mut self) {
        // SAFETY: ptr came from alloc with this layout and is freed once.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// Allocates [`HeapStack`]s: the default without an OS.
pub struct HeapStackAllocator;

impl StackAllocator for HeapStackAllocator {
    fn allocate(&self, size: usize) -> Result<BoxedStack, StackError> {
        Ok(alloc::boxed::Box::new(HeapStack::new(size)?))
    }
}
