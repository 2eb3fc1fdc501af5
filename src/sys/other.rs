//! Operating systems other than Linux: no per-process mapping limit worth reporting.
//!
//! macOS and the BSDs have no counterpart of Linux's `vm.max_map_count`, so a failed stack
//! mapping there is reported as a lack of memory or address space.

/// The per-process mapping limit: none to report on this OS.
pub(crate) fn max_map_count() -> Option<usize> {
    None
}

/// How many mappings this process has: not known on this OS.
pub(crate) fn map_count() -> Option<usize> {
    None
}

/// Test support: running a function on a given stack is not available here.
#[cfg(test)]
pub(crate) fn run_on_stack(limit: *mut u8, size: usize, f: extern "C" fn()) -> bool {
    let _ = (limit, size, f);
    false
}
