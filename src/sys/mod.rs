//! What differs between the operating systems the runtime runs on, and nothing else.
//!
//! This folder is the only place in the `shrapnel` crate with `cfg(target_os)` (or the
//! `kqueue_os` alias build.rs sets for the kqueue systems; ARCHITECTURE.md §1): which
//! Poller the target runs (`backend.rs`); every signal handler's installation, `errno` and
//! the async-signal-safe write (`signals.rs`); the alternate signal stack the handlers run
//! on (`altstack.rs`); the clocks (`clock.rs`); the registers of an interrupted context
//! (`context.rs`); where the executable is mapped and whether a signal came from a
//! faulting instruction (the crash dump); and for the stacks (`stack/`): the page size,
//! the flags an anonymous stack mapping takes, which signals a guard-page hit raises and
//! where the fault address lives in `siginfo_t`, and (Linux only) how many memory mappings
//! a process may have; the page advice slabs of stacks use (guard pages in place, commit,
//! discard), the one-shot announcement fd a blocking-pool call waits on (an eventfd, else a
//! pipe), and the per-thread CPU-time timer the profiler samples with (Linux).
//! Everything here is a thin, documented wrapper over one libc call or one file.

pub(crate) mod altstack;
pub(crate) mod backend;
pub(crate) mod clock;
#[cfg_attr(not(feature = "latency"), allow(dead_code))] // sp, lr: read by the latency sampler
pub(crate) mod context;
pub(crate) mod process;
pub(crate) mod signals;

use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use libc::c_int;

cfg_if::cfg_if! {
    if #[cfg(any(target_os = "linux", target_os = "android"))] {
        mod linux;
        use self::linux as os;
    } else {
        mod other;
        use self::other as os;
    }
}

#[cfg(test)]
pub(crate) use self::os::run_on_stack;
pub(crate) use self::os::{
    advise_pages, announce, announcement, map_count, max_map_count, peer_dump_signal,
    pin_this_thread, signal_thread, thread_id, ThreadCpuTimer,
};

/// Flags for the anonymous private mapping that holds a coroutine stack and its guard.
///
/// - Linux: `MAP_NORESERVE` keeps the kernel from charging the whole stack against the
///   commit limit up front (pages are committed when touched), and `MAP_STACK` marks the
///   region as a stack (it stops transparent huge pages from backing it on recent kernels).
/// - OpenBSD requires `MAP_STACK` on any memory the stack pointer points into; without it
///   the process is killed at the first system call made from a coroutine.
/// - FreeBSD's `MAP_STACK` means "auto-growing region with its own guard", which is not what
///   a fixed-size coroutine stack wants; macOS has no such flag. Both get a plain mapping.
pub(crate) const STACK_MAP_FLAGS: c_int = {
    cfg_if::cfg_if! {
        if #[cfg(any(target_os = "linux", target_os = "android"))] {
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK
        } else if #[cfg(any(target_os = "openbsd", target_os = "netbsd"))] {
            libc::MAP_PRIVATE | libc::MAP_ANON | libc::MAP_STACK
        } else {
            libc::MAP_PRIVATE | libc::MAP_ANON
        }
    }
};

/// The signals a touch of a `PROT_NONE` guard page raises. Linux raises SIGSEGV; macOS
/// raises SIGBUS for some protection faults, and the BSDs may too, so there both are caught.
pub(crate) const FAULT_SIGNALS: &[c_int] = {
    cfg_if::cfg_if! {
        if #[cfg(any(target_os = "linux", target_os = "android"))] {
            &[libc::SIGSEGV]
        } else {
            &[libc::SIGSEGV, libc::SIGBUS]
        }
    }
};

/// The address whose access faulted.
///
/// # Safety
/// `info` must be the `siginfo_t` the kernel passed to an `SA_SIGINFO` handler for SIGSEGV or
/// SIGBUS (for those signals the address member of the union is the one that is set).
pub(crate) unsafe fn fault_address(info: *const libc::siginfo_t) -> usize {
    // SAFETY: the caller guarantees `info` is valid and that it describes a memory fault,
    // so reading the address member of the union is reading the member that was written.
    unsafe { (*info).si_addr() as usize }
}

/// The size of a memory page: the granularity of `mmap` and `mprotect`.
pub(crate) fn page_size() -> usize {
    static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);
    let cached = PAGE_SIZE.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    // POSIX requires the page size to be known; 4 KiB is the smallest any supported OS uses,
    // so it is a safe answer should sysconf ever fail.
    let size = if size > 0 { size as usize } else { 4096 };
    PAGE_SIZE.store(size, Ordering::Relaxed);
    size
}

/// What [`advise_pages`] does to each of its ranges.
#[derive(Clone, Copy)]
pub(crate) enum Advice {
    /// Make it a guard page in place, without a mapping of its own (Linux 6.13's
    /// `MADV_GUARD_INSTALL`; refused with `EINVAL` elsewhere).
    Guard,
    /// Commit it now, so the first touch takes no fault (Linux's `MADV_POPULATE_WRITE`;
    /// nothing to do elsewhere, where pages are committed when touched).
    Populate,
    /// Give its memory back to the OS (Linux's `MADV_DONTNEED`, at once; `MADV_FREE`
    /// elsewhere, reclaimed when the OS needs it). Guard pages stay guards.
    Discard,
}

/// Whether guard pages can be made in place, without a mapping of their own (Linux 6.13's
/// `MADV_GUARD_INSTALL`). Then a batch of guarded stacks is one kernel mapping; otherwise
/// each guard is a `PROT_NONE` mapping that splits the one around it, and every guarded
/// stack costs two of the `vm.max_map_count` a process may have. Probed once, on a scratch
/// page.
pub(crate) fn guards_in_place() -> bool {
    match GUARDS.load(Ordering::Relaxed) {
        GUARDS_IN_PLACE => true,
        GUARDS_SPLIT => false,
        _ => {
            let page = page_size();
            // SAFETY: a fresh anonymous mapping of one page, checked before use, touched only
            // by the probe and unmapped right after it.
            let works = unsafe {
                let raw = libc::mmap(
                    core::ptr::null_mut(),
                    page,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANON,
                    -1,
                    0,
                );
                if raw == libc::MAP_FAILED {
                    false
                } else {
                    let works = os::advise_pages(&[raw as usize], page, Advice::Guard).is_ok();
                    libc::munmap(raw, page);
                    works
                }
            };
            let state = if works { GUARDS_IN_PLACE } else { GUARDS_SPLIT };
            let _ = GUARDS.compare_exchange(
                GUARDS_UNKNOWN,
                state,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            GUARDS.load(Ordering::Relaxed) == GUARDS_IN_PLACE
        }
    }
}

static GUARDS: AtomicU8 = AtomicU8::new(GUARDS_UNKNOWN);
const GUARDS_UNKNOWN: u8 = 0;
const GUARDS_IN_PLACE: u8 = 1;
const GUARDS_SPLIT: u8 = 2;

/// Test support: make guards split mappings from now on, as on kernels without in-place
/// guards (call it in a child process: it is process-wide).
#[cfg(test)]
pub(crate) fn split_guards_from_now_on() {
    GUARDS.store(GUARDS_SPLIT, Ordering::Relaxed);
}

/// Make `[addr, addr + len)` a guard page: in place where [`guards_in_place`], else by
/// `mprotect(PROT_NONE)` (which splits the mapping). `Err(errno)` if the kernel refuses.
///
/// # Safety
/// The range must be page aligned, inside a private anonymous mapping the caller owns, and
/// hold nothing anyone will read again.
pub(crate) unsafe fn make_guard(addr: *mut u8, len: usize) -> Result<(), i32> {
    if guards_in_place() {
        // SAFETY: forwarded from the caller's contract.
        return unsafe { os::advise_pages(&[addr as usize], len, Advice::Guard) };
    }
    // SAFETY: forwarded from the caller's contract; PROT_NONE only removes access.
    if unsafe { libc::mprotect(addr.cast(), len, libc::PROT_NONE) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

/// Bytes of physical memory, if the OS says. Asked once: on Linux the answer costs a
/// system call, and stacks are created often.
pub(crate) fn physical_memory() -> Option<usize> {
    /// 0: not asked yet; usize::MAX: the OS did not say.
    static MEMORY: AtomicUsize = AtomicUsize::new(0);
    let cached = MEMORY.load(Ordering::Relaxed);
    if cached == 0 {
        // SAFETY: sysconf has no preconditions.
        let pages = unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) };
        let memory = usize::try_from(pages)
            .ok()
            .filter(|&pages| pages > 0)
            .and_then(|pages| pages.checked_mul(page_size()))
            .unwrap_or(usize::MAX);
        MEMORY.store(memory, Ordering::Relaxed);
        return (memory != usize::MAX).then_some(memory);
    }
    (cached != usize::MAX).then_some(cached)
}

/// Where an executable image (the program, or a shared library) is mapped: what the crash
/// dump needs to print addresses that `addr2line -e <file>` reads.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ImageMapping {
    /// Load bias: the mapped address minus the address in the file (0 for a non-PIE
    /// program; where a PIE or a library was loaded otherwise).
    pub bias: usize,
    /// The lowest and one past the highest address its loaded segments cover.
    pub start: usize,
    pub end: usize,
}

/// The mapping of the image that contains `addr` (call outside signal handlers: the
/// loader's list is walked under its lock). `None` where the OS gives no such list here
/// (macOS: its loader has another API, and its addresses go to `atos`, not `addr2line`).
pub(crate) fn image_containing(addr: usize) -> Option<ImageMapping> {
    cfg_if::cfg_if! {
        if #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd", target_os = "dragonfly"))] {
            /// ELF's loadable segment type.
            const PT_LOAD: u32 = 1;
            struct Search {
                addr: usize,
                found: Option<ImageMapping>,
            }
            unsafe extern "C" fn visit(
                info: *mut libc::dl_phdr_info,
                _size: libc::size_t,
                data: *mut libc::c_void,
            ) -> libc::c_int {
                // SAFETY: `data` is the `Search` passed to dl_iterate_phdr below, alive and
                // not otherwise borrowed during the walk; `info` is the loader's record for
                // one image, valid during this call.
                let (search, info) = unsafe { (&mut *data.cast::<Search>(), &*info) };
                let bias = info.dlpi_addr as usize;
                let (mut start, mut end) = (usize::MAX, 0);
                for i in 0..usize::from(info.dlpi_phnum) {
                    // SAFETY: dlpi_phdr points at dlpi_phnum program headers.
                    let ph = unsafe { &*info.dlpi_phdr.add(i) };
                    if ph.p_type == PT_LOAD {
                        let lo = bias.wrapping_add(ph.p_vaddr as usize);
                        start = start.min(lo);
                        end = end.max(lo.wrapping_add(ph.p_memsz as usize));
                    }
                }
                if (start..end).contains(&search.addr) {
                    search.found = Some(ImageMapping { bias, start, end });
                    return 1;
                }
                0
            }
            let mut search = Search { addr, found: None };
            // SAFETY: `visit` only reads the records it is handed and writes `search`,
            // which outlives the call.
            unsafe { libc::dl_iterate_phdr(Some(visit), (&mut search as *mut Search).cast()) };
            search.found
        } else {
            let _ = addr;
            None
        }
    }
}

/// Whether the signal `info` describes was raised by the instruction that faulted (so
/// returning from the handler runs it again and it faults again), rather than sent with
/// kill(2), raise(3) or abort(3).
///
/// # Safety
/// `info` must be the `siginfo_t` the kernel passed to an `SA_SIGINFO` handler running now.
pub(crate) unsafe fn raised_by_instruction(info: *const libc::siginfo_t) -> bool {
    if info.is_null() {
        return false;
    }
    // SAFETY: per the contract, `info` points at the kernel-written siginfo.
    let code = unsafe { (*info).si_code };
    cfg_if::cfg_if! {
        if #[cfg(any(target_os = "linux", target_os = "android"))] {
            // Sent signals have SI_USER (0) or negative codes (SI_TKILL, SI_QUEUE…); the
            // kernel's own, faults included, are positive.
            code > 0
        } else {
            // The BSDs and macOS number their "sent" codes from 0x10001 (SI_USER…) and use
            // 0 for "no information"; fault codes are small positive numbers.
            code > 0 && code < 0x10000
        }
    }
}

/// Hand the free pages inside the heap back to the OS: glibc's `malloc_trim(0)`, which
/// releases whole free pages anywhere in its arenas (a plain `free` gives back only the top
/// of the heap). The scheduler calls it after compacting idle shared-stack copies freed a
/// lot of heap (`shrapnel_core::shared_stack::set_heap_trim`). Elsewhere: nothing.
pub(crate) fn trim_heap() {
    cfg_if::cfg_if! {
        if #[cfg(all(target_os = "linux", target_env = "gnu"))] {
            // SAFETY: malloc_trim has no preconditions; it takes the allocator's own locks.
            unsafe { libc::malloc_trim(0) };
        }
    }
}
