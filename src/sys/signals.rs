//! The debug signal's OS differences: which signal asks a running program for `where_all`
//! by default, installing a plain handler for it, and `errno`, which a handler must leave
//! as it found it.
//!
//! - On the BSDs and macOS it is SIGINFO: the terminal sends it on Ctrl-T (`stty status`),
//!   and its default action is to ignore it, so taking it over disturbs nothing — Shrapnel
//!   did the same.
//! - Linux has no SIGINFO; SIGUSR1 is the signal nobody else sends by default (its default
//!   action ends the process, so it is taken only when the program has not claimed it).

use libc::c_int;

cfg_if::cfg_if! {
    if #[cfg(any(target_os = "freebsd", target_os = "macos", target_os = "netbsd", target_os = "openbsd", target_os = "dragonfly"))] {
        /// SIGINFO (Ctrl-T at a terminal).
        pub(crate) const DEFAULT_DEBUG_SIGNAL: c_int = libc::SIGINFO;
    } else {
        /// SIGUSR1: Linux has no SIGINFO.
        pub(crate) const DEFAULT_DEBUG_SIGNAL: c_int = libc::SIGUSR1;
    }
}

/// Whether the program has left `sig` at its default action (no handler, not ignored).
pub(crate) fn is_default(sig: c_int) -> bool {
    // SAFETY: an all-zero sigaction is a valid value of this plain C struct; sigaction with
    // a null new action only reads the current one into it.
    let mut old: libc::sigaction = unsafe { core::mem::zeroed() };
    // SAFETY: `old` is valid for writes; a null `act` changes nothing.
    let rc = unsafe { libc::sigaction(sig, core::ptr::null(), &mut old) };
    rc == 0 && old.sa_sigaction == libc::SIG_DFL
}

/// Install `handler` for `sig`, restarting interrupted system calls, or restore the default
/// action with `None`.
pub(crate) fn set_handler(
    sig: c_int,
    handler: Option<extern "C" fn(c_int)>,
) -> std::io::Result<()> {
    // SAFETY: an all-zero sigaction is valid (empty mask, no flags); the fields that matter
    // are set below.
    let mut action: libc::sigaction = unsafe { core::mem::zeroed() };
    action.sa_sigaction = match handler {
        Some(h) => h as *const () as libc::sighandler_t,
        None => libc::SIG_DFL,
    };
    action.sa_flags = libc::SA_RESTART;
    // SAFETY: `action.sa_mask` is a valid sigset_t to initialise.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: `action` is fully initialised; the handler, if any, is an `extern "C" fn(c_int)`
    // that stays valid for the life of the process (a plain function).
    if unsafe { libc::sigaction(sig, &action, core::ptr::null_mut()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The calling thread's `errno`.
fn errno_location() -> *mut c_int {
    cfg_if::cfg_if! {
        if #[cfg(any(target_os = "linux", target_os = "android"))] {
            // SAFETY: always returns this thread's errno slot.
            unsafe { libc::__errno_location() }
        } else if #[cfg(any(target_os = "freebsd", target_os = "macos", target_os = "dragonfly"))] {
            // SAFETY: always returns this thread's errno slot.
            unsafe { libc::__error() }
        } else {
            // SAFETY: always returns this thread's errno slot.
            unsafe { libc::__errno() }
        }
    }
}

/// Read `errno` (async-signal-safe).
pub(crate) fn errno() -> c_int {
    // SAFETY: the pointer is this thread's errno slot, valid for the thread's life.
    unsafe { *errno_location() }
}

/// Put back an `errno` saved with [`errno`] (async-signal-safe).
pub(crate) fn set_errno(value: c_int) {
    // SAFETY: as in `errno`.
    unsafe { *errno_location() = value }
}
