//! How many kernel memory mappings coroutine stacks may take, so that spawning never takes
//! the last ones: past `vm.max_map_count` the allocator's own `mmap` fails and the process
//! aborts ("memory allocation of … bytes failed").
//!
//! At the first stack the mapping budget is derived from `vm.max_map_count`: an eighth of
//! it (at least 1024 mappings) and the mappings the process already has are kept for
//! everything else; stacks may take the rest. What a stack costs depends on the kernel: where
//! guard pages can be made in place (Linux 6.13 and later) a batch of stacks is one mapping,
//! so the budget practically never binds; elsewhere each guard splits its mapping and every
//! guarded stack takes two. [`set_max_mappings`] replaces the derived budget.
//!
//! Independently, [`set_max_stacks`] caps the number of guarded stacks (none by default),
//! for a program that wants to bound its coroutines' memory.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use shrapnel_core::stack::StackError;

use crate::sys;

/// Guarded stacks alive in this process (pooled ones included).
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// The most guarded stacks allowed; `usize::MAX` (the default) for no cap.
static MAX: AtomicUsize = AtomicUsize::new(usize::MAX);
/// Kernel mappings held by stacks.
static MAPPINGS: AtomicUsize = AtomicUsize::new(0);
/// The most mappings stacks may hold; `UNSET` until derived or set, `usize::MAX` for no
/// limit.
static MAX_MAPPINGS: AtomicUsize = AtomicUsize::new(UNSET);
const UNSET: usize = 0;

/// Mappings kept for the rest of the program out of a limit of `max_map_count`.
fn reserve(max_map_count: usize) -> usize {
    (max_map_count / 8).max(1024.min(max_map_count / 2))
}

fn derive_mappings() -> usize {
    match sys::max_map_count() {
        Some(limit) => {
            let used = sys::map_count().unwrap_or(0);
            (limit.saturating_sub(reserve(limit)).saturating_sub(used)).max(2)
        }
        None => usize::MAX,
    }
}

/// The most kernel mappings stacks may hold (`None`: no limit on this OS).
pub fn max_mappings() -> Option<usize> {
    let mut max = MAX_MAPPINGS.load(Ordering::Relaxed);
    if max == UNSET {
        max = derive_mappings();
        let _ = MAX_MAPPINGS.compare_exchange(UNSET, max, Ordering::Relaxed, Ordering::Relaxed);
        max = MAX_MAPPINGS.load(Ordering::Relaxed);
    }
    (max != usize::MAX).then_some(max)
}

/// Set the most kernel mappings stacks may hold (`None`: derive it again from
/// `vm.max_map_count`, for instance after raising that). Stacks already mapped stay.
pub fn set_max_mappings(max: Option<usize>) {
    let max = match max {
        Some(n) => n.clamp(1, usize::MAX - 1),
        None => derive_mappings(),
    };
    MAX_MAPPINGS.store(max, Ordering::Relaxed);
}

/// Kernel mappings stacks hold now.
pub fn live_mappings() -> usize {
    MAPPINGS.load(Ordering::Relaxed)
}

/// The most guarded stacks this process may hold: the cap [`set_max_stacks`] set or, without
/// one, what the mapping budget allows where each stack takes two mappings (`None`: no
/// limit short of memory, as where guard pages are made in place).
pub fn max_stacks() -> Option<usize> {
    let cap = MAX.load(Ordering::Relaxed);
    if cap != usize::MAX {
        return Some(cap);
    }
    if sys::guards_in_place() {
        return None;
    }
    max_mappings().map(|m| m / 2)
}

/// Cap the guarded stacks this process may hold (`None`: no cap but the mapping budget).
/// Stacks already alive stay; new ones wait for room.
pub fn set_max_stacks(max: Option<usize>) {
    let max = match max {
        Some(n) => n.clamp(1, usize::MAX - 1),
        None => usize::MAX,
    };
    MAX.store(max, Ordering::Relaxed);
}

/// Guarded stacks alive now.
pub fn live_stacks() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// A place claimed for one stack, or for mappings; given back on drop unless
/// [`keep`](Self::keep) hands it to what was made, which gives it back with
/// [`release_stack`] or [`release_mappings`].
pub(super) struct Claim {
    /// 0: a stack; otherwise this many mappings.
    mappings: usize,
}

impl Claim {
    pub(super) fn keep(self) {
        core::mem::forget(self);
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        match self.mappings {
            0 => release_stack(),
            n => release_mappings(n),
        }
    }
}

/// Claim a place for a new stack of `size` bytes, or the error naming the cap.
pub(super) fn claim_stack(size: usize) -> Result<Claim, StackError> {
    let max = MAX.load(Ordering::Relaxed);
    if LIVE.fetch_add(1, Ordering::Relaxed) >= max {
        LIVE.fetch_sub(1, Ordering::Relaxed);
        return Err(StackError::Exhausted {
            requested: size,
            detail: cached(max, &STACK_DETAIL, stack_detail),
            errno: libc::ENOMEM,
        });
    }
    Ok(Claim { mappings: 0 })
}

/// Claim `n` kernel mappings for stacks of `size` bytes, or the error naming the budget.
pub(super) fn claim_mappings(size: usize, n: usize) -> Result<Claim, StackError> {
    let max = max_mappings().unwrap_or(usize::MAX);
    let before = MAPPINGS.fetch_add(n, Ordering::Relaxed);
    if before.saturating_add(n) > max {
        MAPPINGS.fetch_sub(n, Ordering::Relaxed);
        return Err(StackError::Exhausted {
            requested: size,
            detail: cached(max, &MAPPING_DETAIL, mapping_detail),
            errno: libc::ENOMEM,
        });
    }
    Ok(Claim { mappings: n })
}

/// A stack was given back.
pub(super) fn release_stack() {
    LIVE.fetch_sub(1, Ordering::Relaxed);
}

/// `n` mappings of stacks were unmapped.
pub(super) fn release_mappings(n: usize) {
    MAPPINGS.fetch_sub(n, Ordering::Relaxed);
}

static STACK_DETAIL: Mutex<Option<(usize, &'static str)>> = Mutex::new(None);
static MAPPING_DETAIL: Mutex<Option<(usize, &'static str)>> = Mutex::new(None);

/// The sentence `make(max)`, made once per distinct limit (the detail of a `StackError` is
/// `&'static str`).
fn cached(
    max: usize,
    cache: &Mutex<Option<(usize, &'static str)>>,
    make: fn(usize) -> String,
) -> &'static str {
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((cached, detail)) = *cache {
        if cached == max {
            return detail;
        }
    }
    let detail: &'static str = String::leak(make(max));
    *cache = Some((max, detail));
    detail
}

fn stack_detail(max: usize) -> String {
    format!(
        "this process holds {max} guarded coroutine stacks, the most it allows itself \
         (shrapnel::stack::budget::set_max_stacks); raise the cap, run fewer coroutines at \
         once, or use the shared-stack mode"
    )
}

fn mapping_detail(max: usize) -> String {
    let limit = match sys::max_map_count() {
        Some(l) => format!(
            ", which keeps {} of vm.max_map_count's {l} memory mappings for the allocator \
             and the rest of the program ({})",
            reserve(l),
            if sys::guards_in_place() {
                "a batch of stacks takes one"
            } else {
                "this kernel cannot make guard pages in place, so each stack takes two"
            }
        ),
        None => String::new(),
    };
    format!(
        "coroutine stacks hold {max} memory mappings, the most this process allows \
         itself{limit}; so that reaching the limit cannot abort the process, spawning fails \
         here instead. Raise vm.max_map_count (then \
         shrapnel::stack::budget::set_max_mappings(None)), run fewer coroutines at once, or \
         use the shared-stack mode"
    )
}
