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
//! The debugging features keep working: `where_all` walks a suspended coroutine's frames
//! in its heap copy (addresses translated back to the run stack's), and the latency
//! sampler and the overflow report see the running coroutine on the run stack, whose range
//! its record carries.

use alloc::boxed::Box;
use core::cell::Cell;

use crate::arch::{ContextSwitch, Native};
use crate::coro::{CoroInner, CoroRc};
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
            prev.set_saved_frames(Box::from(frames));
            self.count(frames.len());
        }
        match co.take_saved_frames() {
            Some(frames) => {
                let lo = base - frames.len();
                // SAFETY: [lo, base) is the range these bytes were copied from, inside the
                // run stack, which has no owner now (the previous one was saved above), so
                // nothing live is overwritten; the buffer is a separate heap allocation.
                unsafe {
                    core::ptr::copy_nonoverlapping(frames.as_ptr(), lo as *mut u8, frames.len())
                };
                self.count(frames.len());
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
