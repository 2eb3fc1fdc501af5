//! Every signal handler of the runtime is installed here, through one `sigaction` call
//! site ([`install`]): the stack-overflow handler (SIGSEGV/SIGBUS, on the alternate stack),
//! the latency sampler (SIGURG, on the alternate stack) and the `where_all` dump (SIGUSR1 or
//! SIGINFO). Also here: `errno`, which a handler must leave as it found it, and the
//! async-signal-safe [`write_all`] every handler and the saved stderr write with.
//!
//! The debug signal's OS differences, which signal asks a running program for `where_all`
//! by default:
//! - On the BSDs and macOS it is SIGINFO: the terminal sends it on Ctrl-T (`stty status`),
//!   and its default action is to ignore it, so taking it over disturbs nothing — Shrapnel
//!   did the same.
//! - Linux has no SIGINFO; SIGUSR1 is the signal nobody else sends by default (its default
//!   action ends the process, so it is taken only when the program has not claimed it).

use libc::c_int;

cfg_if::cfg_if! {
    if #[cfg(kqueue_os)] {
        /// SIGINFO (Ctrl-T at a terminal).
        pub(crate) const DEFAULT_DEBUG_SIGNAL: c_int = libc::SIGINFO;
    } else {
        /// SIGUSR1: Linux has no SIGINFO.
        pub(crate) const DEFAULT_DEBUG_SIGNAL: c_int = libc::SIGUSR1;
    }
}

/// A signal handler of one of the two shapes `sigaction` takes.
#[derive(Clone, Copy)]
pub(crate) enum Handler {
    /// `handler(sig)`.
    Plain(extern "C" fn(c_int)),
    /// `handler(sig, info, context)` (`SA_SIGINFO`).
    Info(extern "C" fn(c_int, *mut libc::siginfo_t, *mut libc::c_void)),
    /// The default action.
    Default,
}

/// Options for [`install`].
#[derive(Clone, Copy, Default)]
pub(crate) struct Flags {
    /// Run on the thread's alternate signal stack (see `sys::altstack`): needed when the
    /// signal can arrive with the stack full, and for handlers that take a coroutine's
    /// stack space.
    pub(crate) on_altstack: bool,
    /// Restart system calls the signal interrupts (`SA_RESTART`).
    pub(crate) restart: bool,
}

/// The action installed for `sig` now, if the OS says.
pub(crate) fn current(sig: c_int) -> Option<libc::sigaction> {
    // SAFETY: an all-zero sigaction is a valid value of this plain C struct; sigaction with
    // a null new action only reads the current one into it.
    let mut old: libc::sigaction = unsafe { core::mem::zeroed() };
    // SAFETY: `old` is valid for writes; a null `act` changes nothing.
    let rc = unsafe { libc::sigaction(sig, core::ptr::null(), &mut old) };
    (rc == 0).then_some(old)
}

/// Whether the program has left `sig` at its default action (no handler, not ignored).
pub(crate) fn is_default(sig: c_int) -> bool {
    current(sig).is_some_and(|a| a.sa_sigaction == libc::SIG_DFL)
}

/// Install `handler` for `sig`, with an empty mask; returns the action it replaces.
pub(crate) fn install(
    sig: c_int,
    handler: Handler,
    flags: Flags,
) -> std::io::Result<libc::sigaction> {
    // SAFETY: an all-zero sigaction is valid (empty mask, no flags); the fields that matter
    // are set below.
    let mut action: libc::sigaction = unsafe { core::mem::zeroed() };
    action.sa_sigaction = match handler {
        Handler::Plain(h) => h as *const () as libc::sighandler_t,
        Handler::Info(h) => {
            action.sa_flags |= libc::SA_SIGINFO;
            h as *const () as libc::sighandler_t
        }
        Handler::Default => libc::SIG_DFL,
    };
    if flags.on_altstack {
        action.sa_flags |= libc::SA_ONSTACK;
    }
    if flags.restart {
        action.sa_flags |= libc::SA_RESTART;
    }
    // SAFETY: `action.sa_mask` is a valid sigset_t to initialise.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    set_action(sig, &action)
}

/// Put back an action [`install`] returned (async-signal-safe: the overflow handler does it
/// for a fault that is not a guard-page hit).
pub(crate) fn restore(sig: c_int, saved: &libc::sigaction) -> bool {
    set_action(sig, saved).is_ok()
}

/// The one `sigaction` call that changes an action.
fn set_action(sig: c_int, action: &libc::sigaction) -> std::io::Result<libc::sigaction> {
    // SAFETY: an all-zero sigaction is valid for the kernel to overwrite.
    let mut old: libc::sigaction = unsafe { core::mem::zeroed() };
    // SAFETY: `action` is a complete sigaction (built by `install` or saved from the
    // kernel); its handler, if any, is a plain function valid for the life of the process.
    if unsafe { libc::sigaction(sig, action, &mut old) } == 0 {
        Ok(old)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// write(2) all of `bytes` to `fd`, retrying on EINTR and short writes, giving up on any
/// other error (disk full, closed: a debug line is not worth more). Async-signal-safe: no
/// allocation, no lock, `errno` read in place.
pub(crate) fn write_all(fd: c_int, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: writes from a live slice of the given length; write is async-signal-safe.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n > 0 {
            bytes = &bytes[n as usize..];
        } else if n < 0 && errno() == libc::EINTR {
            continue;
        } else {
            return;
        }
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

/// Give `sig` back its default action and raise it (async-signal-safe: sigaction and
/// raise). From inside `sig`'s own handler the signal is blocked until the handler returns,
/// so the default action (ending the process) happens right after it.
pub(crate) fn raise_default(sig: c_int) {
    let _ = install(sig, Handler::Default, Flags::default());
    // SAFETY: raise(3) is async-signal-safe and takes any signal number.
    unsafe { libc::raise(sig) };
}

/// The signals that cannot be handled at all (the OS refuses), with the name messages use.
pub(crate) const UNCATCHABLE: &[c_int] = &[libc::SIGKILL, libc::SIGSTOP];

/// The conventional name of `sig` (`"SIGINT"`), or `"signal"` for one without a name here.
pub(crate) fn name(sig: c_int) -> &'static str {
    const NAMES: &[(c_int, &str)] = &[
        (libc::SIGHUP, "SIGHUP"),
        (libc::SIGINT, "SIGINT"),
        (libc::SIGQUIT, "SIGQUIT"),
        (libc::SIGILL, "SIGILL"),
        (libc::SIGTRAP, "SIGTRAP"),
        (libc::SIGABRT, "SIGABRT"),
        (libc::SIGBUS, "SIGBUS"),
        (libc::SIGFPE, "SIGFPE"),
        (libc::SIGKILL, "SIGKILL"),
        (libc::SIGUSR1, "SIGUSR1"),
        (libc::SIGSEGV, "SIGSEGV"),
        (libc::SIGUSR2, "SIGUSR2"),
        (libc::SIGPIPE, "SIGPIPE"),
        (libc::SIGALRM, "SIGALRM"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGCHLD, "SIGCHLD"),
        (libc::SIGCONT, "SIGCONT"),
        (libc::SIGSTOP, "SIGSTOP"),
        (libc::SIGTSTP, "SIGTSTP"),
        (libc::SIGTTIN, "SIGTTIN"),
        (libc::SIGTTOU, "SIGTTOU"),
        (libc::SIGURG, "SIGURG"),
        (libc::SIGXCPU, "SIGXCPU"),
        (libc::SIGXFSZ, "SIGXFSZ"),
        (libc::SIGVTALRM, "SIGVTALRM"),
        (libc::SIGPROF, "SIGPROF"),
        (libc::SIGWINCH, "SIGWINCH"),
        (libc::SIGIO, "SIGIO"),
        (libc::SIGSYS, "SIGSYS"),
    ];
    NAMES
        .iter()
        .find(|(s, _)| *s == sig)
        .map_or("signal", |(_, n)| n)
}
