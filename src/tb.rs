//! Compact tracebacks, Shrapnel's `coro.tb`: `[file fn|line] [file fn|line] …`, innermost
//! first, for the current stack ([`stack_string`]), a panic ([`traceback_string`]), and the
//! suspended stacks that `where_all` shows with the `stacks` feature ([`compact`]).
//!
//! Return addresses come from the core (a frame-pointer walk of a suspended coroutine) or
//! from the `backtrace` crate (the current stack); they are symbolized here with the
//! `backtrace` crate's DWARF reader, which also expands inlined calls, so one address can
//! give several frames. Symbols are cached per thread by address, so `where_all` over many
//! coroutines blocked in the same places resolves each place once.
//!
//! # How a frame is written
//!
//! `[file fn|line]`:
//! - `file` is the base name of the source file (`main.rs`), `?` when there is no debug info;
//! - `fn` is the demangled function name without its hash, cut to its last two path
//!   segments (`worker::handle`, `Mutex::lock`); generic arguments are dropped
//!   (`Vec<T>::push` → `Vec::push`), a trait method is named by its type
//!   (`<net::TcpStream as std::io::Read>::read` → `TcpStream::read`), and a closure is
//!   named by the function it is written in (`worker::main::{closure}`). Without a symbol,
//!   the address;
//! - `line` is the line of the call (the address is looked up one byte before the return
//!   address), `?` when unknown.
//!
//! # What is left out
//!
//! Frames of the runtime's own plumbing: the context switch and the scheduler's `block`, the
//! coroutine's entry (`coro_main`, `run_body`) and everything outward of it,
//! `catch_unwind`/`FnOnce::call_once` shims, the panic machinery, the program's start-up
//! (`std::rt`, libc), and this module. So a suspended coroutine's stack starts at the
//! runtime's public blocking call (for a sleep, `[sched.rs sched::sleep_until|…]
//! [sched.rs sched::sleep|…]`), continues with the program's frames that led to it, and
//! ends at the coroutine's closure; a panic's starts at the function that panicked (not at
//! `unwrap` or `panic!` inside std).
//!
//! # Release builds
//!
//! Frame pointers (`-C force-frame-pointers=yes`) let the core walk suspended stacks; debug
//! info gives files, lines and inlined frames. `debug = "line-tables-only"` in the release
//! profile is enough (names are then unqualified: `[main.rs handle|40]`); `"limited"` or
//! more gives the qualified names of a dev build. With no debug info at all, functions
//! that were inlined vanish, and only symbol names remain (`[? worker::handle|?]`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::{Arc, LazyLock, Mutex, Once};

use crate::PanicReport;

/// One symbolized frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Base name of the source file, if debug info says.
    pub file: Option<String>,
    /// The function, shortened as the module documentation describes.
    pub function: String,
    /// The line of the call, if debug info says.
    pub line: Option<u32>,
    /// The full demangled name without its hash (bare, e.g. `block`, when the debug info
    /// has line tables only), for filtering and for readers who want it.
    pub full_name: String,
    /// The source file's full path, if debug info says.
    pub path: Option<String>,
}

impl fmt::Display for Frame {
    /// `[file fn|line]`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        f.write_str(self.file.as_deref().unwrap_or("?"))?;
        write!(f, " {}|", self.function)?;
        match self.line {
            Some(l) => write!(f, "{l}]"),
            None => f.write_str("?]"),
        }
    }
}

/// Write frames in the compact form, separated by spaces.
pub fn format_frames(frames: &[Frame]) -> String {
    let mut out = String::new();
    for (i, fr) in frames.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{fr}");
    }
    out
}

/// Entries kept by the symbol cache before it is cleared.
const CACHE_CAP: usize = 1 << 16;

/// Return address → its frames. `where_all` over many coroutines blocked in the same
/// places resolves each address once.
static CACHE: LazyLock<Mutex<HashMap<usize, Arc<[Frame]>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The frames of one return address, innermost (inlined) first.
fn resolve_one(addr: usize) -> Arc<[Frame]> {
    let cache = || CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(hit) = cache().get(&addr).cloned() {
        return hit;
    }
    let mut out = Vec::new();
    // `backtrace::resolve` looks one byte back, inside the call instruction: its line is
    // the call's line, and the lookup cannot fall into the next function when the call was
    // the last instruction. (An address that is not a return address is passed one byte on.)
    backtrace::resolve(addr as *mut std::ffi::c_void, |sym| {
        let full_name = match sym.name() {
            Some(n) => format!("{n:#}"),
            None => String::new(),
        };
        let function = if full_name.is_empty() {
            format!("{addr:#x}")
        } else {
            short_name(&full_name)
        };
        let path = sym.filename().map(|p| p.to_string_lossy().into_owned());
        out.push(Frame {
            file: path.as_deref().map(|p| basename(p).to_string()),
            function,
            line: sym.lineno(),
            full_name,
            path,
        });
    });
    if out.is_empty() {
        out.push(Frame {
            file: None,
            function: format!("{addr:#x}"),
            line: None,
            full_name: String::new(),
            path: None,
        });
    }
    let frames: Arc<[Frame]> = out.into();
    let mut c = cache();
    if c.len() >= CACHE_CAP {
        c.clear();
    }
    c.insert(addr, frames.clone());
    frames
}

/// Load the program's debug info on a background thread, once per process, so the first
/// `where_all` of a running server does not pay for it (about 90 ms for a test binary
/// here). The symbolizer's cache is process-wide; a `where_all` that comes sooner waits
/// for the load instead of doing it again.
#[cfg(feature = "stacks")]
pub(crate) fn warm_up() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let here = warm_up as *const () as usize;
        let _ = std::thread::Builder::new()
            .name("shrapnel-symbols".into())
            .spawn(move || backtrace::resolve(here as *mut std::ffi::c_void, |_| {}));
    });
}

/// Symbolize return addresses (innermost first): each gives one frame, or several when
/// calls were inlined into it (innermost first). Nothing is filtered.
pub fn symbolize(frames: &[usize]) -> Vec<Frame> {
    let resolve = || {
        let mut out = Vec::with_capacity(frames.len());
        for &addr in frames {
            out.extend(resolve_one(addr).iter().cloned());
        }
        out
    };
    with_stack_room(resolve, || unresolved_frames(frames))
}

/// One frame per address, named by the address: what is shown when symbols cannot be had.
fn unresolved_frames(addrs: &[usize]) -> Vec<Frame> {
    let address = |&addr: &usize| Frame {
        file: None,
        function: format!("{addr:#x}"),
        line: None,
        full_name: String::new(),
        path: None,
    };
    addrs.iter().map(address).collect()
}

/// Symbolize a panicking coroutine's return addresses on another thread while the
/// coroutine sleeps, so the scheduler keeps running the others: the first symbolization
/// of a process loads its debug info, which takes up to seconds in a debug build, and the
/// addresses of a panic path are rarely in the cache. Interrupted while it waits (it is
/// only reporting), or with no thread to be had, it gives the addresses unresolved.
fn symbolize_beside_the_loop(addrs: Vec<usize>) -> Vec<Frame> {
    let unresolved = unresolved_frames;
    let (tx, rx) = std::sync::mpsc::channel();
    let work = addrs.clone();
    let spawned = std::thread::Builder::new()
        .name("shrapnel-symbolize".into())
        .spawn(move || {
            let _ = tx.send(symbolize(&work));
        });
    if spawned.is_err() {
        return unresolved(&addrs);
    }
    loop {
        if shrapnel_core::sched::sleep(std::time::Duration::from_millis(1)).is_err() {
            return unresolved(&addrs);
        }
        match rx.try_recv() {
            Ok(frames) => return frames,
            Err(std::sync::mpsc::TryRecvError::Disconnected) => return unresolved(&addrs),
            Err(std::sync::mpsc::TryRecvError::Empty) => {}
        }
    }
}

/// Stack that symbolizing may need: reading DWARF the first time takes tens of KiB (more
/// in debug builds), more than a small coroutine has to spare.
const SYMBOLIZE_ROOM: usize = 128 * 1024;

/// Run `f` here if there is room on the stack, else on a short-lived helper thread (a
/// coroutine with a small stack, or one deep in its stack, calling `where_all` or
/// panicking must not overflow it). If no thread can be had, or `f` panics there, the
/// answer is `fallback()`: this runs while a panic is being reported, where a second panic
/// would abort the process.
fn with_stack_room<R: Send>(f: impl FnOnce() -> R + Send, fallback: impl FnOnce() -> R) -> R {
    let marker = 0u8;
    let here = std::hint::black_box(&marker) as *const u8 as usize;
    let short = shrapnel_core::running_for_signal()
        .is_some_and(|r| here.saturating_sub(r.stack_limit) < SYMBOLIZE_ROOM);
    if !short {
        return f();
    }
    let on_helper = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("shrapnel-symbolize".into())
            .spawn_scoped(scope, f)
            .ok()
            .and_then(|handle| handle.join().ok())
    });
    on_helper.unwrap_or_else(fallback)
}

/// The compact form of a suspended coroutine's return addresses, runtime plumbing left out
/// (see the module documentation).
pub fn compact(frames: &[usize]) -> String {
    format_frames(&suspended_frames(frames))
}

/// The symbolized, filtered frames of a suspended coroutine's return addresses.
pub fn suspended_frames(frames: &[usize]) -> Vec<Frame> {
    filter_suspended(symbolize(frames))
}

fn filter_suspended(mut v: Vec<Frame>) -> Vec<Frame> {
    cut_at_coroutine_root(&mut v);
    // The first frames are the switch into the scheduler and its bookkeeping.
    let lead = v.iter().take_while(|f| f.is_switch_internal()).count();
    v.drain(..lead);
    v.retain(|f| !f.is_plumbing());
    v
}

/// The current stack in the compact form, innermost first, starting at the caller of this
/// function (Shrapnel's `tb.stack_string()`). Inside a coroutine it ends at the coroutine's
/// closure.
#[inline(never)]
pub fn stack_string() -> String {
    format_frames(&current_frames())
}

/// The current stack, symbolized and filtered, starting at the caller of `tb`.
#[inline(never)]
pub fn current_frames() -> Vec<Frame> {
    let addrs = capture();
    let mut v = symbolize(&addrs);
    cut_at_coroutine_root(&mut v);
    let lead = v.iter().take_while(|f| f.is_tb_internal()).count();
    v.drain(..lead);
    v.retain(|f| !f.is_plumbing());
    v
}

/// Return addresses of the current stack, innermost first (this function's own frame is
/// the first). At most 128.
#[inline(never)]
pub(crate) fn capture() -> Vec<usize> {
    let mut addrs = Vec::with_capacity(32);
    backtrace::trace(|f| {
        let ip = f.ip() as usize;
        if ip != 0 {
            addrs.push(ip);
        }
        addrs.len() < 128
    });
    addrs
}

/// Shrapnel's `tb.traceback_string()` for a coroutine panic: the message, then the compact
/// stack where it panicked (the report's `traceback`).
pub fn traceback_string(report: &PanicReport) -> String {
    report.traceback_string()
}

/// A coroutine panic as the panic hook saw it, waiting for the core to ask for it.
struct CapturedPanic {
    /// The coroutine that panicked.
    coro: u64,
    /// Return addresses at the hook, innermost first (symbolized only when asked for).
    addrs: Vec<usize>,
    /// Base name of the file and the line `panic!` (or `unwrap`, …) was called at.
    file: String,
    line: u32,
}

thread_local! {
    /// The last panic of a coroutine on this thread.
    static LAST_PANIC: RefCell<Option<CapturedPanic>> = const { RefCell::new(None) };
}

/// Install, once per process, the panic hook that captures a coroutine's stack where it
/// panicked for the exception notifier, instead of printing std's `thread '…' panicked at`
/// message (the notifier reports it: `thread {id} ({name}): error {message} [file fn|line] …`).
/// Panics outside coroutines go to the hook that was installed before, unchanged. The
/// runtime calls this when it starts a scheduler.
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // Read without borrowing the scheduler's tables: the panic may come from inside
            // the scheduler while they are borrowed.
            match shrapnel_core::running_for_signal() {
                Some(running) => {
                    let addrs = capture();
                    let (file, line) = match info.location() {
                        Some(l) => (basename(l.file()).to_string(), l.line()),
                        None => (String::from("?"), 0),
                    };
                    LAST_PANIC.with(|p| {
                        if let Ok(mut p) = p.try_borrow_mut() {
                            *p = Some(CapturedPanic {
                                coro: running.id,
                                addrs,
                                file,
                                line,
                            });
                        }
                    });
                }
                None => previous(info),
            }
        }));
    });
}

/// Hand over the compact traceback of the running coroutine's panic, captured by the hook
/// of [`install_panic_hook`]; the runtime registers this with
/// `shrapnel_core::panic::set_traceback_source` on every scheduler thread.
pub fn take_panic_traceback() -> Option<String> {
    // The core calls this after catching the panic, outside any catch_unwind: a panic here
    // would abort the process.
    std::panic::catch_unwind(panic_traceback).ok().flatten()
}

fn panic_traceback() -> Option<String> {
    let captured = LAST_PANIC.with(|p| p.borrow_mut().take())?;
    let running = shrapnel_core::running_for_signal()?;
    if captured.coro != running.id {
        return None; // a stale capture (that panic was caught inside its coroutine)
    }
    let mut v = symbolize_beside_the_loop(captured.addrs);
    cut_at_coroutine_root(&mut v);
    // Innermost first: the stack walk, this module's hook, std's panic machinery, then the
    // library function that panicked on the caller's behalf (`unwrap`, `expect`,
    // indexing). The traceback starts at the first frame after those: the caller.
    let lead = v
        .iter()
        .take_while(|f| {
            f.full_name.is_empty()
                || f.is_tb_internal()
                || f.plain().starts_with("shrapnel::tb::")
                || f.path.as_deref().is_some_and(|p| p.ends_with("src/tb.rs"))
                || f.in_std_library()
                || f.is_plumbing()
        })
        .count();
    v.drain(..lead);
    v.retain(|f| !f.is_plumbing());
    // Without debug info, the panic's location still names the file and line of the
    // innermost frame (the one `#[track_caller]` points at).
    if let Some(first) = v.first_mut() {
        if first.file.is_none() && first.line.is_none() {
            first.file = Some(captured.file.clone());
            first.line = Some(captured.line);
        }
    }
    if v.is_empty() {
        v.push(Frame {
            file: Some(captured.file),
            function: String::from("?"),
            line: Some(captured.line),
            full_name: String::new(),
            path: None,
        });
    }
    Some(format_frames(&v))
}

/// The last component of a path.
fn basename(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// Drop the coroutine's entry and everything outward of it (the scheduler that resumed
/// it): the body's closure is the last frame kept.
fn cut_at_coroutine_root(v: &mut Vec<Frame>) {
    if let Some(i) = v.iter().position(Frame::is_coroutine_root) {
        v.truncate(i);
    }
}

/// How the filters recognise a frame. With full debug info (the dev profile, or release
/// with `debug = "limited"` or more) names are qualified (`shrapnel_core::sched::sleep`);
/// with `debug = "line-tables-only"` the names of inlined frames are bare (`block`,
/// `call_once`), so a bare name is recognised together with the file it is in.
impl Frame {
    /// The name without a leading `<` or `&` (`<T as Trait>::f` is matched by `T`).
    fn plain(&self) -> &str {
        self.full_name.trim_start_matches(['<', '&'])
    }

    /// A bare name (no path, as line-tables-only debug info gives), without its generic
    /// arguments: `block<shrapnel_core::…>` → `block`.
    fn bare(&self) -> Option<&str> {
        let head = self.full_name.split('<').next().unwrap_or_default();
        (!head.is_empty() && !head.contains("::")).then_some(head)
    }

    /// A bare name among `names`, in a file whose path ends with `suffix`.
    fn is_bare_in(&self, names: &[&str], suffix: &str) -> bool {
        self.bare().is_some_and(|b| names.contains(&b))
            && self.path.as_deref().is_some_and(|p| p.ends_with(suffix))
    }

    /// Source of Rust's standard library (core, alloc, std).
    fn in_std_library(&self) -> bool {
        let std_path = self.path.as_deref().is_some_and(|p| {
            [
                "/library/core/src/",
                "/library/alloc/src/",
                "/library/std/src/",
            ]
            .iter()
            .any(|d| p.contains(d))
        });
        let std_name = ["core::", "alloc::", "std::"]
            .iter()
            .any(|c| self.plain().starts_with(c));
        std_path || std_name
    }

    /// The coroutine's entry in the core: `run_body` (its `catch_unwind`) and `coro_main`.
    fn is_coroutine_root(&self) -> bool {
        let plain = self.plain();
        plain.starts_with("shrapnel_core::hooks::run_body")
            || plain.starts_with("shrapnel_core::coro::coro_main")
            || self.is_bare_in(&["run_body"], "hooks.rs")
            || self.is_bare_in(&["coro_main"], "coro.rs")
    }

    /// Between a blocking call and the context switch: the scheduler's `block`, its
    /// suspend, the switch.
    fn is_switch_internal(&self) -> bool {
        let plain = self.plain();
        plain.starts_with("shrapnel_core::sched::state::SchedState")
            || plain.starts_with("shrapnel_core::arch::")
            || self.is_bare_in(&["block", "suspend_current"], "sched/state.rs")
            || (self.bare() == Some("switch")
                && self.path.as_deref().is_some_and(|p| p.contains("arch")))
    }

    /// This module's capture functions and the crate that walks the stack for them.
    fn is_tb_internal(&self) -> bool {
        const OURS: &[&str] = &["capture", "current_frames", "stack_string"];
        let plain = self.plain();
        OURS.iter()
            .any(|f| plain.strip_prefix("shrapnel::tb::") == Some(*f))
            || plain.starts_with("backtrace::")
            || self.is_bare_in(OURS, "tb.rs")
            || self
                .path
                .as_deref()
                .is_some_and(|p| p.contains("/backtrace-"))
    }

    /// Frames nobody wants in a traceback, wherever they are: closure-call and
    /// `catch_unwind` shims, the coroutine entry, program and thread start-up.
    fn is_plumbing(&self) -> bool {
        const PREFIXES: &[&str] = &[
            "shrapnel_core::coro::coro_main",
            "shrapnel_core::hooks::run_body",
            "shrapnel_core::arch::",
            "std::panicking::",
            "std::panic::",
            "core::panicking::",
            "core::ops::function::",
            "core::panic::unwind_safe::AssertUnwindSafe<",
            "std::rt::",
            "std::sys::",
            "std::thread::",
            "__rust_",
            "__rustc::",
            "rust_begin_unwind",
            "__libc_start",
            "_start",
            "start_thread",
            "clone",
        ];
        /// `<F as FnOnce<A>>::call_once` and friends, and the test harness's marker.
        const INFIXES: &[&str] = &[
            " as core::ops::function::FnOnce<",
            " as core::ops::function::FnMut<",
            " as core::ops::function::Fn<",
            "__rust_begin_short_backtrace",
        ];
        /// The same shims by their bare names, in std's source.
        const BARE_SHIMS: &[&str] = &[
            "call_once",
            "call_once{{vtable.shim}}",
            "call_mut",
            "call",
            "do_call",
            "catch_unwind",
            "lang_start",
            "lang_start_internal",
            "thread_start",
        ];
        let name = self.full_name.as_str();
        let plain = self.plain();
        // C's `main` has no debug info; a Rust `main` has a source file.
        (name == "main" && self.path.is_none())
            || PREFIXES.iter().any(|p| plain.starts_with(p))
            || INFIXES.iter().any(|p| name.contains(p))
            || self.is_coroutine_root()
            || (self.in_std_library() && self.bare().is_some_and(|b| BARE_SHIMS.contains(&b)))
    }
}

/// `full` (demangled, no hash) shortened: the last two path segments, generic arguments
/// dropped, `<T as Trait>::f` named by `T`, trailing closures kept as one `{closure}`.
pub fn short_name(full: &str) -> String {
    let (self_ty, rest) = split_qualified(full);
    let mut segs: Vec<String> = Vec::new();
    if let Some(ty) = self_ty {
        if let Some(last) = path_segments(ty).pop() {
            segs.push(last);
        }
    }
    segs.extend(path_segments(rest));
    let mut closure = false;
    while segs.last().is_some_and(|s| s.starts_with('{')) {
        closure |= segs.pop().is_some_and(|s| s.contains("closure"));
    }
    let start = segs.len().saturating_sub(2);
    let mut out = segs[start..].join("::");
    if closure {
        if !out.is_empty() {
            out.push_str("::");
        }
        out.push_str("{closure}");
    }
    if out.is_empty() {
        out = full.to_string();
    }
    out
}

/// Each character of `s` with its byte index and the `<…>` nesting depth *after* it, the
/// `>` of a `->` not counting as a closing bracket.
fn angle_depths(s: &str) -> impl Iterator<Item = (usize, char, usize)> + '_ {
    let mut depth = 0usize;
    let mut prev = ' ';
    s.char_indices().map(move |(i, ch)| {
        match ch {
            '<' => depth += 1,
            '>' if prev != '-' => depth = depth.saturating_sub(1),
            _ => {}
        }
        prev = ch;
        (i, ch, depth)
    })
}

/// `<T as Trait>::rest` → (Some(T), rest); `<T>::rest` → (Some(T), rest); else (None, full).
fn split_qualified(full: &str) -> (Option<&str>, &str) {
    if !full.starts_with('<') {
        return (None, full);
    }
    let Some((i, _, _)) = angle_depths(full).find(|&(_, ch, d)| ch == '>' && d == 0) else {
        return (None, full);
    };
    let inner = &full[1..i];
    let ty = match find_top_level(inner, " as ") {
        Some(j) => &inner[..j],
        None => inner,
    };
    (Some(ty), full[i + 1..].trim_start_matches("::"))
}

/// Position of `pat` in `s` outside any `<…>`.
fn find_top_level(s: &str, pat: &str) -> Option<usize> {
    angle_depths(s)
        .find(|&(i, ch, d)| d == 0 && ch != '>' && s[i..].starts_with(pat))
        .map(|(i, _, _)| i)
}

/// `a::b<T>::c` → `["a", "b", "c"]`; references and `dyn`/`mut` markers are dropped.
fn path_segments(path: &str) -> Vec<String> {
    let path = path
        .trim_start_matches('&')
        .trim_start_matches("mut ")
        .trim_start_matches("dyn ");
    let mut segs = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    let mut prev = ' ';
    let mut chars = path.chars().peekable();
    while let Some(ch) = chars.next() {
        let arrow = prev == '-';
        prev = ch;
        match ch {
            '<' => depth += 1,
            '>' if arrow => {}
            '>' => depth = depth.saturating_sub(1),
            ':' if depth == 0 && chars.peek() == Some(&':') => {
                chars.next();
                if !cur.is_empty() {
                    segs.push(std::mem::take(&mut cur));
                }
            }
            _ if depth == 0 => cur.push(ch),
            _ => {}
        }
    }
    if !cur.is_empty() {
        segs.push(cur);
    }
    segs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names() {
        assert_eq!(short_name("worker::handle"), "worker::handle");
        assert_eq!(short_name("app::net::worker::handle"), "worker::handle");
        assert_eq!(short_name("shrapnel_core::sched::sleep"), "sched::sleep");
        assert_eq!(short_name("alloc::vec::Vec<T,A>::push"), "Vec::push");
        assert_eq!(
            short_name("<shrapnel::net::TcpStream as std::io::Read>::read"),
            "TcpStream::read"
        );
        assert_eq!(
            short_name("<&shrapnel::net::TcpStream as std::io::Read>::read"),
            "TcpStream::read"
        );
        assert_eq!(
            short_name("where::main::{{closure}}"),
            "where::main::{closure}"
        );
        assert_eq!(
            short_name("debug::spawns::{{closure}}::{{closure}}"),
            "debug::spawns::{closure}"
        );
        assert_eq!(short_name("main"), "main");
        assert_eq!(
            short_name("test::run<fn() -> core::result::Result<(),E>>::go"),
            "run::go"
        );
    }

    #[test]
    fn frame_display() {
        let f = Frame {
            file: Some("main.rs".into()),
            function: "worker::handle".into(),
            line: Some(40),
            full_name: "app::worker::handle".into(),
            path: Some("src/worker/main.rs".into()),
        };
        assert_eq!(f.to_string(), "[main.rs worker::handle|40]");
        let g = Frame {
            file: None,
            function: "0x1234".into(),
            line: None,
            full_name: String::new(),
            path: None,
        };
        assert_eq!(
            format_frames(&[f, g]),
            "[main.rs worker::handle|40] [? 0x1234|?]"
        );
    }

    fn frame(full_name: &str, path: &str) -> Frame {
        Frame {
            file: Some(basename(path).to_string()),
            function: short_name(full_name),
            line: Some(1),
            full_name: full_name.to_string(),
            path: Some(path.to_string()),
        }
    }

    fn names(v: &[Frame]) -> Vec<&str> {
        v.iter().map(|f| f.function.as_str()).collect()
    }

    #[test]
    fn suspended_stacks_keep_the_blocking_call_and_the_program() {
        let lib = "/rustc/abc/library/core/src/ops/function.rs";
        let qualified = vec![
            frame("<shrapnel_core::arch::x86_64::X86_64 as shrapnel_core::arch::ContextSwitch>::switch", "core/src/arch/x86_64.rs"),
            frame("shrapnel_core::sched::state::SchedState::suspend_current", "core/src/sched/state.rs"),
            frame("shrapnel_core::sched::state::SchedState::block", "core/src/sched/state.rs"),
            frame("shrapnel_core::sched::sleep", "core/src/sched.rs"),
            frame("app::nap", "src/main.rs"),
            frame("app::main::{{closure}}", "src/main.rs"),
            frame("<core::panic::unwind_safe::AssertUnwindSafe<F> as core::ops::function::FnOnce<()>>::call_once", lib),
            frame("std::panicking::catch_unwind::do_call", lib),
            frame("shrapnel_core::hooks::run_body", "core/src/hooks.rs"),
            frame("shrapnel_core::coro::coro_main", "core/src/coro.rs"),
        ];
        assert_eq!(
            names(&filter_suspended(qualified)),
            ["sched::sleep", "app::nap", "app::main::{closure}"]
        );
        // `debug = "line-tables-only"`: inlined frames have bare, possibly generic, names.
        let bare = vec![
            frame("switch", "core/src/arch/x86_64.rs"),
            frame("suspend_current", "core/src/sched/state.rs"),
            frame(
                "block<shrapnel_core::sched::sleep::{closure_env#0}>",
                "core/src/sched/state.rs",
            ),
            frame("sleep", "core/src/sched.rs"),
            frame("{closure#0}", "src/main.rs"),
            frame("call_once<app::main::{closure_env#0}, ()>", lib),
            frame("do_call<F, ()>", "/rustc/abc/library/std/src/panicking.rs"),
            frame("run_body<F, ()>", "core/src/hooks.rs"),
            frame("coro_main", "core/src/coro.rs"),
        ];
        assert_eq!(names(&filter_suspended(bare)), ["sleep", "{closure}"]);
    }

    #[inline(never)]
    fn current_stack_names_its_caller_xyz() -> String {
        stack_string()
    }

    #[test]
    fn stack_string_starts_at_the_caller() {
        let s = current_stack_names_its_caller_xyz();
        assert!(
            s.starts_with("[tb.rs tests::current_stack_names_its_caller_xyz|"),
            "{s}"
        );
        assert!(!s.contains("capture"), "{s}");
        assert!(!s.contains("thread_start"), "{s}");
    }
}
