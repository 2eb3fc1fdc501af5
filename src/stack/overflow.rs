//! The SIGSEGV/SIGBUS handler that reports stack overflows. It runs on the thread's
//! alternate signal stack (`sys::altstack`), because the faulting stack has no room left,
//! and is installed through `sys::signals` like every other handler of the runtime.

use core::cell::UnsafeCell;
use core::fmt::Write as _;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use super::guard_table;
use crate::sys::{self, signals};

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
/// Idempotent. Every other thread that runs coroutines must call
/// `sys::altstack::ensure_altstack` (a scheduler does so when it starts), or an overflow
/// there is a plain crash.
pub(crate) fn install_overflow_handler() {
    // Without an alternate stack an overflow is still a crash, just an unnamed one, so
    // a failure to map one is not worth failing the caller for.
    let _ = sys::altstack::ensure_altstack();
    INSTALL.call_once(|| {
        let signals = sys::FAULT_SIGNALS;
        // SAFETY: call_once runs this exactly once, before `ready` is set, so nothing
        // reads `actions` concurrently.
        let actions = unsafe { &mut *SAVED.actions.get() };
        for (&signal, saved) in signals.iter().zip(actions.iter_mut()) {
            // The previous action (the default one if the OS does not say).
            let previous = signals::current(signal).unwrap_or_else(|| {
                // SAFETY: an all-zero sigaction is SIG_DFL with an empty mask.
                unsafe { core::mem::zeroed() }
            });
            saved.write(previous);
        }
        SAVED.ready.store(true, Ordering::Release);
        let flags = signals::Flags {
            on_altstack: true,
            restart: false,
        };
        for &signal in signals {
            let _ = signals::install(signal, signals::Handler::Info(handle_fault), flags);
        }
    });
}

/// The handler for SIGSEGV/SIGBUS. Allocates nothing and takes no lock.
extern "C" fn handle_fault(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid siginfo for the memory fault being handled.
    let addr = unsafe { sys::fault_address(info) };
    if let Some(hit) = guard_table::find(addr) {
        crate::crash_dump::claim_for_overflow();
        report_overflow(&hit);
        // SAFETY: abort is async-signal-safe and never returns.
        unsafe { libc::abort() };
    }
    // Not a guard page: a crash. Dump every coroutine, then put back what was there
    // before and return, so the faulting instruction runs again and the fault takes its
    // ordinary course (the program's handler, or the default action and a core dump).
    crate::crash_dump::on_fault(signal, info, context);
    let index = sys::FAULT_SIGNALS.iter().position(|&s| s == signal);
    let restored = match index {
        Some(index) if SAVED.ready.load(Ordering::Acquire) => {
            // SAFETY: `ready` says every saved action was written and is immutable now;
            // `index` is below FAULT_SIGNALS.len(), which fits the array.
            let saved = unsafe { (*SAVED.actions.get())[index].assume_init_ref() };
            signals::restore(signal, saved)
        }
        _ => false,
    };
    if !restored {
        let _ = signals::install(signal, signals::Handler::Default, signals::Flags::default());
    }
    // SAFETY: `info` is this SA_SIGINFO handler's argument.
    if !unsafe { sys::raised_by_instruction(info) } {
        // Sent (kill, raise): no instruction will fault again, so send it on.
        // SAFETY: raise(3) is async-signal-safe; the signal stays blocked until this
        // handler returns, then the action just restored takes it.
        unsafe { libc::raise(signal) };
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
    signals::write_all(2, line.as_bytes());
}
