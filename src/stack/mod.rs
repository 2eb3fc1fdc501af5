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
//! Made with `mprotect(PROT_NONE)`, the guard splits the mapping in two, so the stack costs
//! two of the kernel's memory mappings, and on Linux `vm.max_map_count` (65530 by default)
//! caps a process near 32k such stacks. Where the kernel can make a guard page in place
//! (Linux 6.13's `MADV_GUARD_INSTALL`) it costs none, and the pool's stacks come in slabs of
//! 64 to a mapping (`slab.rs`), so the limit stops mattering. The [`budget`] keeps a reserve
//! of mappings for the allocator and the rest of the program (past the kernel's limit
//! malloc's own `mmap` fails and the process aborts): a stack beyond it is a
//! [`StackError::Exhausted`] that says so and what to do, never a bare ENOMEM. One guard
//! page is enough for Rust code: the compiler probes every page of a large frame in order,
//! so a frame cannot jump over the guard.
//!
//! [`StackPool`] is the [`StackAllocator`](shrapnel_core::stack::StackAllocator) a scheduler owns: a capped free list per stack
//! size, so spawning a coroutine usually costs no system call at all, and slabs that fresh
//! stacks are carved from, so a fresh one costs no `mmap` of its own either.
//!
//! Every live stack's guard range is recorded in a per-thread table the fault handler can
//! read without locks or allocation. When a coroutine overruns its stack, the handler
//! (installed when a [`StackPool`] is created, running on a per-thread alternate signal
//! stack because the faulting stack has no room left) finds the guard in that table, writes
//! `coroutine #7 'worker' overflowed its stack (256 KiB)` to stderr and aborts. Faults
//! anywhere else are handed back to the previous handler (normally the default action), so
//! ordinary crashes still dump core as before.

use core::ptr::{self, NonNull};
use std::sync::Mutex;

use shrapnel_core::stack::{Stack, StackError, MIN_STACK_SIZE};

use crate::sys;

pub mod budget;
mod guard_table;
mod overflow;
mod pool;
mod slab;
#[cfg(test)]
mod tests;

pub(crate) use self::overflow::install_overflow_handler;
pub use self::pool::StackPool;

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

/// A coroutine stack in its own anonymous mapping, with a guard page below it (in place
/// where the kernel can, else `PROT_NONE`). [`StackPool`] carves its stacks from slabs
/// instead; this is the stack for a program that wants one outside any pool.
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
    /// Kernel mappings claimed from the budget for it.
    mappings: usize,
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
        let usable = round_size(size)?;
        let stack_claim = budget::claim_stack(size)?;
        let mappings = mappings_per_guarded_region();
        let mapping_claim = budget::claim_mappings(size, mappings)?;
        let (raw, len) = map_region(size, usable, 1)?;
        let guard_len = sys::page_size();
        // SAFETY: the guard is the first page of the mapping just made, which nothing uses.
        if let Err(errno) = unsafe { sys::make_guard(raw.as_ptr(), guard_len) } {
            // SAFETY: unmapping exactly the mapping created above, which nothing uses.
            unsafe { libc::munmap(raw.as_ptr().cast(), len) };
            return Err(os_error(size, errno));
        }
        let start = raw.as_ptr() as usize;
        let slot = guard_table::register(start, start + guard_len, start + len);
        stack_claim.keep();
        mapping_claim.keep();
        Ok(MmapStack {
            mapping: raw,
            len,
            guard_len,
            mappings,
            slot,
        })
    }
}

/// Kernel mappings one region with guards in it costs: one where guards are made in place,
/// else the region plus two per guard (the guard and the part above it).
fn mappings_per_guarded_region() -> usize {
    if sys::guards_in_place() {
        1
    } else {
        2
    }
}

/// Map `count` stacks of `usable` bytes, each with a guard page below it (not made yet):
/// the start of the read/write mapping and its length.
fn map_region(
    requested: usize,
    usable: usize,
    count: usize,
) -> Result<(NonNull<u8>, usize), StackError> {
    if sys::physical_memory().is_some_and(|memory| usable > memory) {
        return Err(StackError::Exhausted {
            requested,
            detail: LARGER_THAN_MEMORY,
            errno: libc::ENOMEM,
        });
    }
    let too_big = StackError::Exhausted {
        requested,
        detail: BEYOND_ADDRESS_SPACE,
        errno: libc::ENOMEM,
    };
    let stride = usable
        .checked_add(sys::page_size())
        .ok_or(too_big.clone())?;
    let len = stride.checked_mul(count).ok_or(too_big)?;
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
        return Err(os_error(requested, last_errno()));
    }
    // SAFETY: mmap never returns a null mapping on success (it returned MAP_FAILED
    // otherwise, which was handled above).
    Ok((unsafe { NonNull::new_unchecked(raw.cast()) }, len))
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
        budget::release_stack();
        budget::release_mappings(self.mappings);
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
    let cost = if sys::guards_in_place() {
        "guarded stacks come 64 to a memory mapping"
    } else {
        "each guarded stack needs two memory mappings"
    };
    let detail: &'static str = String::leak(format!(
        "{cost} and vm.max_map_count is {max}, which this process has reached; raise it \
         (sysctl -w vm.max_map_count={suggestion}), use a smaller stack pool or fewer \
         coroutines"
    ));
    *cache = Some((max, detail));
    detail
}
