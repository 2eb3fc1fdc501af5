//! How many guarded stacks the process may hold, so that spawning never takes the last
//! memory mappings: past `vm.max_map_count` the allocator's own `mmap` fails and the
//! process aborts ("memory allocation of … bytes failed"). At the first stack, the limit
//! is derived from `vm.max_map_count`: an eighth of it (at least 1024 mappings) and the
//! mappings the process already has are kept for everything else, and each stack takes
//! two of the rest. `set_max_stacks` replaces it.

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
