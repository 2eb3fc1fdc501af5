//! The crash dump: when the process dies of a fatal signal that is not a coroutine stack
//! overflow (SIGSEGV or SIGBUS away from a guard page, SIGILL, SIGFPE, SIGABRT — which is
//! what `panic = "abort"`, `std::process::abort` and a failed allocation end in), every
//! coroutine of the crashing thread's scheduler, then of every other scheduler thread (each
//! prints its own: below), is printed to the saved stderr — id, name, state, wait reason,
//! the line it blocked at, and its stack as raw addresses — and the
//! signal then takes its default action, so the exit status names it and a core dump is
//! still written:
//!
//! ```text
//! shrapnel: fatal SIGSEGV (address 0x10) in coroutine #3 'crasher'
//!   #1 'sleeper' blocked: sleeping at src/main.rs:12
//!       at 0x3e1f4 0x3e0c9 0x5a2b7
//!   #2 'locker' blocked: mutex at src/main.rs:20
//!       at 0x3e5a1 0x3e3d2 0x5a2b7
//!   #3 'crasher' running: the signal came from here
//!       at 0x3f0a2 0x3ef81 0x5a2b7
//! shrapnel: 3 coroutines of this thread's scheduler
//! shrapnel: addresses are offsets in ./server, [bracketed] ones absolute; names:
//! shrapnel:   addr2line -C -f -i -e ./server 0x3f0a2 0x3ef81 …
//! ```
//!
//! The first address of the running coroutine is the faulting instruction; every other is
//! a return address minus one, so `addr2line` names the line of the call. When the signal
//! came from code without frame records (libc's `abort`), the rest of the running stack is
//! found by scanning it for a frame record and printed after a `~`; the first address after
//! it may belong to a call that had already returned. The running coroutine's stack is
//! walked from the frame pointer of the signal's interrupted context, the suspended ones'
//! from their saved contexts (both need frame pointers, as `where_all`'s stacks do). Addresses inside the executable are printed as offsets into its file
//! (`addr2line` reads those whether the program is a PIE or not); others (libc, another
//! library) absolute, in brackets. On macOS the executable's mapping is not looked up and
//! every address is absolute (`atos -o <binary> -l <load address>`).
//!
//! The runtime installs it with its first scheduler (`RuntimeConfig::crash_dump`, default
//! true; a scheduler configured with `false` prints no dump for its thread and installs
//! nothing). SIGSEGV and SIGBUS where the stack-overflow handler takes them reach the dump
//! through that handler's "not a guard page" path; the others get the handler here. A
//! handler the program installed before the runtime started is kept and still called after
//! the dump; a signal the program ignores is left alone. A stack overflow prints its own
//! report and no dump. A crash on a thread without a scheduler (a blocking-pool thread)
//! prints the signal, the faulting address and that there are no coroutines to show.
//!
//! # Why the handler is safe wherever the crash happened
//!
//! - It allocates and frees nothing: every line is formatted (`core::fmt`) into a buffer on
//!   the handler's stack (the thread's alternate signal stack) and written with write(2).
//!   A crash inside the allocator — its lock held, its lists half updated — cannot deadlock
//!   or crash the dump. What needs allocating (the executable's path) is made once, when
//!   the handler is installed, and only read here.
//! - It takes no lock and changes no `RefCell` borrow flag. The scheduler is found through
//!   its thread-local pointer (a plain `Cell`, no lazy initialisation). The list of
//!   coroutines is read with `RefCell::try_borrow_unguarded`
//!   ([`shrapnel_core::for_each_coro_for_signal`]): if the crash interrupted a spawn or a
//!   reap while it held the list mutably, the dump says so instead of reading it. A name
//!   being renamed is printed as `?`. Nothing else of the scheduler (run queue, timers, fd
//!   table), whose `RefCell`s the crashed code may hold, is touched.
//! - The remaining reads are plain `Cell` words of each coroutine (state, wait reason and
//!   line, stack bounds, saved context) and stack words checked to lie inside the
//!   coroutine's own stack, which is mapped (or in the heap copy of a shared-stack
//!   coroutine's frames). The crashed code is stopped under the handler on the same
//!   thread, so nothing changes them meanwhile. A signal sent from outside (`kill -ABRT`)
//!   may land between the two stores of one update; such a read is stale or mixed, never
//!   out of bounds: every field read is a plain integer or enum word, each stack read is
//!   bounds-checked.
//! - One dump per process: the first fatal signal claims it. A fault inside the dump (a
//!   corrupt frame chain that passed the bounds checks cannot make one; corrupted memory
//!   might) finds it claimed and goes straight to the default action. A second thread
//!   crashing while the first dumps waits up to two seconds for the dump to finish.
//!
//! Other scheduler threads (`run_per_core`) dump their own coroutines: their schedulers
//! are theirs alone, changed without synchronisation by running code, so the crashing
//! thread does not read them; it sends each of them (a table of up to 256 scheduler
//! threads, filled as schedulers start) a real-time signal whose handler, on that thread,
//! prints its scheduler's coroutines with the same allocation-free code and the same
//! guarantees as for a signal sent from outside (below), then waits for it (half a second
//! at most per thread) before the next, so the dumps do not interleave. Linux only (the
//! signal goes with tgkill); elsewhere the dump says the other threads are not shown.
//!
//! The same argument covers those handlers: each reads only its own thread's scheduler,
//! interrupted wherever it was.

use core::cell::{Cell, UnsafeCell};
use core::fmt::{self, Write as _};
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};

use libc::c_int;
use shrapnel_core::arch::{ContextSwitch, Native};
use shrapnel_core::{SignalCoro, SignalListError, State};

use crate::stderr::{ChunkWriter, SavedStderr};
use crate::sys::{self, signals, ImageMapping};

/// The fatal signals the dump covers.
const CRASH_SIGNALS: [c_int; 5] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGABRT,
];
/// Most addresses printed per coroutine.
const MAX_FRAMES: usize = 48;
/// How long a second crashing thread waits for the first one's dump (in 10 ms steps).
const WAIT_STEPS: u32 = 200;

/// The handlers are installed and dumps wanted.
static ARMED: AtomicBool = AtomicBool::new(false);
/// A report (this dump, or the overflow report) was begun: there is only one per process.
static CLAIMED: AtomicBool = AtomicBool::new(false);
/// The dump begun is finished.
static DONE: AtomicBool = AtomicBool::new(false);
/// The thread that claimed the dump (the address of its `OPTED_OUT`).
static DUMPER: AtomicUsize = AtomicUsize::new(0);
/// The saved stderr, found once at installation (finding it may duplicate fd 2).
static STDERR: OnceLock<SavedStderr> = OnceLock::new();
/// The executable: its path and where it is mapped, found once at installation.
static IMAGE: OnceLock<Image> = OnceLock::new();
/// The kernel ids of the scheduler threads that want the dump (0: a free slot).
static PEERS: [AtomicI64; MAX_PEERS] = [const { AtomicI64::new(0) }; MAX_PEERS];
/// Scheduler threads beyond the table's size (not dumped, counted).
static PEERS_LEFT_OUT: AtomicUsize = AtomicUsize::new(0);
/// Bumped by a peer's handler when its part of the dump is written.
static PEER_DONE: AtomicUsize = AtomicUsize::new(0);
/// The peer-dump signal, once its handler is installed (0 before, or if none).
static PEER_SIGNAL: AtomicI32 = AtomicI32::new(0);
/// How many scheduler threads the table holds.
const MAX_PEERS: usize = 256;
static INSTALL: Once = Once::new();

thread_local! {
    /// This thread's scheduler was configured with `crash_dump: false`.
    static OPTED_OUT: Cell<bool> = const { Cell::new(false) };
}

/// The executable the addresses are offsets in.
struct Image {
    path: String,
    mapping: ImageMapping,
}

/// The actions that were installed for `CRASH_SIGNALS` before ours (`None`: not ours to
/// take — left to the overflow handler, or ignored by the program).
struct SavedActions {
    actions: UnsafeCell<[Option<libc::sigaction>; CRASH_SIGNALS.len()]>,
}

// SAFETY: `actions` is written only inside INSTALL's call_once, before ARMED is set with
// Release and before any handler of ours is installed for that signal; afterwards it is
// only read.
unsafe impl Sync for SavedActions {}

static SAVED: SavedActions = SavedActions {
    actions: UnsafeCell::new([None; CRASH_SIGNALS.len()]),
};

/// When the runtime configures a scheduler on this thread: remember whether this thread
/// wants dumps, and install the handlers once per process if it does.
pub(crate) fn on_scheduler_start(wanted: bool) {
    OPTED_OUT.with(|o| o.set(!wanted));
    if !wanted {
        return;
    }
    register_peer();
    // SIGSEGV (and SIGBUS where it catches it) come to the dump through this handler.
    crate::stack::install_overflow_handler();
    INSTALL.call_once(|| {
        let _ = STDERR.set(SavedStderr::get());
        if let Some(mapping) = sys::image_containing(on_scheduler_start as *const () as usize) {
            let path = std::env::current_exe()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|_| String::from("<this program>"));
            let _ = IMAGE.set(Image { path, mapping });
        }
        // SAFETY: call_once runs this once, before ARMED is set and before the handlers
        // that read `actions` are installed.
        let actions = unsafe { &mut *SAVED.actions.get() };
        for (&sig, saved) in CRASH_SIGNALS.iter().zip(actions.iter_mut()) {
            if sys::FAULT_SIGNALS.contains(&sig) {
                continue;
            }
            let Some(previous) = signals::current(sig) else {
                continue;
            };
            if previous.sa_sigaction == libc::SIG_IGN {
                continue;
            }
            *saved = Some(previous);
        }
        ARMED.store(true, Ordering::Release);
        let flags = signals::Flags {
            on_altstack: true,
            restart: false,
        };
        for (&sig, saved) in CRASH_SIGNALS.iter().zip(actions.iter()) {
            if saved.is_some() {
                let _ = signals::install(sig, signals::Handler::Info(on_crash_signal), flags);
            }
        }
    });
}

/// Put this scheduler thread in the table the crash dump signals (once per thread; it
/// leaves the table when the thread ends).
fn register_peer() {
    /// This thread's slot; clearing it when the thread ends.
    struct Slot(usize);
    impl Drop for Slot {
        fn drop(&mut self) {
            PEERS[self.0].store(0, Ordering::Release);
        }
    }
    thread_local! {
        static MINE: std::cell::OnceCell<Option<Slot>> = const { std::cell::OnceCell::new() };
    }
    MINE.with(|m| {
        m.get_or_init(|| {
            install_peer_handler();
            let tid = sys::thread_id();
            if tid == 0 {
                return None;
            }
            let free = PEERS.iter().position(|p| {
                p.compare_exchange(0, tid, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            });
            if free.is_none() {
                PEERS_LEFT_OUT.fetch_add(1, Ordering::Relaxed);
            }
            free.map(Slot)
        });
    });
}

/// The handler every scheduler thread runs when the crashing thread asks for its part.
fn install_peer_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let Some(sig) = sys::peer_dump_signal() else {
            return;
        };
        let flags = signals::Flags {
            on_altstack: true,
            restart: true,
        };
        if signals::install(sig, signals::Handler::Info(on_peer_signal), flags).is_ok() {
            PEER_SIGNAL.store(sig, Ordering::Release);
        }
    });
}

/// A peer's part of the dump: its scheduler's coroutines, then "done". Only while a dump
/// is under way (a stray signal prints nothing).
extern "C" fn on_peer_signal(_sig: c_int, _info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    if !CLAIMED.load(Ordering::Acquire) || DONE.load(Ordering::Acquire) {
        return;
    }
    let saved_errno = signals::errno();
    if let Some(&stderr) = STDERR.get() {
        let mut out = ChunkWriter::for_signal_handler(stderr);
        // SAFETY: `context` is this SA_SIGINFO handler's argument.
        let regs = unsafe { sys::context::regs(context) };
        let _ = writeln!(out, "shrapnel: scheduler thread {}:", sys::thread_id());
        let listed = shrapnel_core::for_each_coro_for_signal(|co| {
            let _ = write_coro(&mut out, co, regs);
        });
        let _ = match listed {
            Ok(n) => writeln!(out, "shrapnel: {n} coroutines of that scheduler"),
            Err(SignalListError::NoScheduler) => {
                out.write_str("shrapnel: no scheduler on that thread any more\n")
            }
            Err(SignalListError::ListBeingChanged) => out.write_str(
                "shrapnel: its list of coroutines was being changed when the signal came: \
                 not shown\n",
            ),
        };
        out.flush();
    }
    PEER_DONE.fetch_add(1, Ordering::AcqRel);
    signals::set_errno(saved_errno);
}

/// Ask every other scheduler thread for its part, one after the other (half a second at
/// most each); how many answered and how many were asked.
fn dump_peers() -> (usize, usize) {
    let sig = PEER_SIGNAL.load(Ordering::Acquire);
    if sig == 0 {
        return (0, 0);
    }
    let me = sys::thread_id();
    let (mut asked, mut answered) = (0, 0);
    for peer in &PEERS {
        let tid = peer.load(Ordering::Acquire);
        if tid == 0 || tid == me {
            continue;
        }
        let before = PEER_DONE.load(Ordering::Acquire);
        if !sys::signal_thread(tid, sig) {
            continue;
        }
        asked += 1;
        for _ in 0..50 {
            if PEER_DONE.load(Ordering::Acquire) != before {
                answered += 1;
                break;
            }
            let step = libc::timespec {
                tv_sec: 0,
                tv_nsec: 10_000_000,
            };
            // SAFETY: nanosleep is async-signal-safe and only reads `step`.
            unsafe { libc::nanosleep(&step, core::ptr::null_mut()) };
        }
    }
    (answered, asked)
}

/// The overflow handler found no guard page at the fault: dump, then it passes the signal
/// on as it did before. Async-signal-safe.
pub(crate) fn on_fault(sig: c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    report(sig, info, context);
}

/// The overflow handler is reporting a stack overflow: no dump after it (its abort would
/// otherwise bring one). Async-signal-safe.
pub(crate) fn claim_for_overflow() {
    CLAIMED.store(true, Ordering::Release);
    DONE.store(true, Ordering::Release);
}

/// The handler for the crash signals the overflow handler does not take.
extern "C" fn on_crash_signal(sig: c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let saved_errno = signals::errno();
    report(sig, info, context);
    pass_on(sig, info);
    signals::set_errno(saved_errno);
}

/// Hand the signal to what was there before: the program's own handler (for a fault by
/// returning, so the instruction runs again and faults into it with the kernel's
/// information; for a sent signal by raising it again), else the default action.
fn pass_on(sig: c_int, info: *mut libc::siginfo_t) {
    let previous = CRASH_SIGNALS
        .iter()
        .position(|&s| s == sig)
        .filter(|_| ARMED.load(Ordering::Acquire))
        // SAFETY: ARMED says `actions` was written and is immutable now.
        .and_then(|i| unsafe { (*SAVED.actions.get())[i] });
    match previous {
        Some(action)
            if action.sa_sigaction != libc::SIG_DFL && action.sa_sigaction != libc::SIG_IGN =>
        {
            signals::restore(sig, &action);
            // SAFETY: `info` is this SA_SIGINFO handler's argument.
            if !unsafe { sys::raised_by_instruction(info) } {
                // SAFETY: raise(3) is async-signal-safe; the signal is blocked until this
                // handler returns, then delivered to the restored handler.
                unsafe { libc::raise(sig) };
            }
        }
        _ => signals::raise_default(sig),
    }
}

/// Print the dump once per process, unless this thread opted out.
fn report(sig: c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    if !ARMED.load(Ordering::Acquire) || OPTED_OUT.try_with(Cell::get).unwrap_or(true) {
        return;
    }
    let me = OPTED_OUT.with(|o| o as *const Cell<bool> as usize);
    if CLAIMED.swap(true, Ordering::AcqRel) {
        // Another thread's dump may be under way: let it finish before this thread's
        // signal ends the process (not if it is this thread's, faulting inside it).
        if DUMPER.load(Ordering::Acquire) != me {
            wait_for_dump();
        }
        return;
    }
    DUMPER.store(me, Ordering::Release);
    // Set before ARMED, so always there.
    if let Some(&stderr) = STDERR.get() {
        let mut out = ChunkWriter::for_signal_handler(stderr);
        let _ = dump(&mut out, sig, info, context);
        out.flush();
    }
    DONE.store(true, Ordering::Release);
}

/// Sleep in 10 ms steps until the dump is done, two seconds at most (async-signal-safe:
/// nanosleep).
fn wait_for_dump() {
    for _ in 0..WAIT_STEPS {
        if DONE.load(Ordering::Acquire) {
            return;
        }
        let step = libc::timespec {
            tv_sec: 0,
            tv_nsec: 10_000_000,
        };
        // SAFETY: nanosleep is async-signal-safe and only reads `step`.
        unsafe { libc::nanosleep(&step, core::ptr::null_mut()) };
    }
}

/// Write the dump to `out`.
fn dump(
    out: &mut ChunkWriter,
    sig: c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) -> fmt::Result {
    // SAFETY: `info` and `context` are the arguments of the SA_SIGINFO handler running now.
    let by_instruction = unsafe { sys::raised_by_instruction(info) };
    // SAFETY: as above.
    let regs = unsafe { sys::context::regs(context) };
    write!(out, "\nshrapnel: fatal {}", signals::name(sig))?;
    if !by_instruction {
        out.write_str(" (sent: abort, raise or kill)")?;
    } else if sig == libc::SIGSEGV || sig == libc::SIGBUS {
        // SAFETY: a SIGSEGV/SIGBUS raised by an instruction has its address member set.
        write!(out, " (address {:#x})", unsafe { sys::fault_address(info) })?;
    }
    match shrapnel_core::running_for_signal() {
        Some(r) => writeln!(out, " in coroutine #{} '{}'", r.id, r.name)?,
        None => out.write_str(" outside any coroutine\n")?,
    }
    let listed = shrapnel_core::for_each_coro_for_signal(|co| {
        let _ = write_coro(out, co, regs);
    });
    match listed {
        Ok(n) => writeln!(out, "shrapnel: {n} coroutines of this thread's scheduler")?,
        Err(SignalListError::NoScheduler) => {
            out.write_str("shrapnel: no scheduler on this thread, no coroutines to show\n")?
        }
        Err(SignalListError::ListBeingChanged) => out.write_str(
            "shrapnel: the scheduler's list of coroutines was being changed (a spawn or an \
             exit) when the signal came: not shown\n",
        )?,
    }
    let shown_running = listed.is_ok() && shrapnel_core::running_for_signal().is_some();
    if let (false, Some(regs)) = (shown_running, regs) {
        out.write_str("shrapnel: the signal came from")?;
        write_addr(out, regs.pc)?;
        out.write_str("\n")?;
    }
    // What this thread wrote goes out before the others write theirs.
    out.flush();
    let (answered, asked) = dump_peers();
    if PEER_SIGNAL.load(Ordering::Acquire) == 0 {
        out.write_str("shrapnel: other scheduler threads are not shown (no peer signal here)\n")?;
    } else if asked > answered {
        writeln!(
            out,
            "shrapnel: {} of {asked} other scheduler threads did not answer within 0.5 s",
            asked - answered
        )?;
    }
    let left_out = PEERS_LEFT_OUT.load(Ordering::Relaxed);
    if left_out > 0 {
        writeln!(
            out,
            "shrapnel: {left_out} scheduler threads beyond the first {MAX_PEERS} are not shown"
        )?;
    }
    write_hint(out)
}

/// One coroutine: `#3 'name' blocked: mutex at src/x.rs:12` and its stack.
fn write_coro(
    out: &mut ChunkWriter,
    co: &SignalCoro<'_>,
    regs: Option<sys::context::Regs>,
) -> fmt::Result {
    write!(out, "  #{} '", co.id())?;
    match co.name() {
        Some(name) => out.write_str(&name)?,
        None => out.write_str("?")?,
    }
    write!(out, "' {}", co.state())?;
    if co.is_running() {
        out.write_str(": the signal came from here")?;
    } else {
        write!(out, ": {}", co.wait_reason())?;
    }
    if let Some(at) = co.blocked_at() {
        write!(out, " at {}:{}", at.file(), at.line())?;
    }
    out.write_str("\n")?;
    let mut frames = [0usize; MAX_FRAMES];
    let (n, scanned) = if co.is_running() {
        match regs {
            Some(regs) => running_frames(co.stack_range(), regs, &mut frames),
            None => (0, false),
        }
    } else {
        let n = co.suspended_frames(&mut frames);
        // Return addresses: minus one, inside the call.
        for f in &mut frames[..n] {
            *f = f.saturating_sub(1);
        }
        (n, false)
    };
    if n == 0 {
        if co.is_running() || matches!(co.state(), State::Blocked | State::Ready) {
            out.write_str("      (no stack: registers or frame pointers missing)\n")?;
        }
        return Ok(());
    }
    out.write_str("      at")?;
    for (i, &f) in frames[..n].iter().enumerate() {
        if scanned && i == 1 {
            out.write_str(" ~")?;
        }
        write_addr(out, f)?;
    }
    out.write_str("\n")
}

/// The running coroutine's stack from the interrupted registers: the faulting pc, then the
/// frame-record chain from the frame pointer, within the coroutine's stack bounds. When the
/// signal came from code without frame records (libc's `abort`, which uses the frame
/// pointer register for other things), the chain is picked up at the first plausible frame
/// record above the stack pointer: one that links upward in the stack and whose return
/// address lies in the executable (the second value says so: the first of those may be a
/// stale record of a call that has returned).
fn running_frames(
    (lo, hi): (usize, usize),
    regs: sys::context::Regs,
    frames: &mut [usize; MAX_FRAMES],
) -> (usize, bool) {
    frames[0] = regs.pc;
    let stack = StackWords {
        lo,
        hi,
        root: Native::root_slot(hi as *mut u8) as usize,
    };
    let n = 1 + stack.walk(record_below(regs.fp), &mut frames[1..]);
    if n > 1 {
        return (n, false);
    }
    match stack.find_record(regs.sp) {
        Some(record) => (1 + stack.walk(record, &mut frames[1..]), true),
        None => (1, false),
    }
}

/// The frame record a frame pointer names: at it, or on RISC-V two words below it
/// (`ContextSwitch::FP_ABOVE_RECORD`).
fn record_below(fp: usize) -> usize {
    fp.wrapping_sub(Native::FP_ABOVE_RECORD)
}

/// The running coroutine's stack, `[lo, hi)`, read a word at a time inside its bounds.
struct StackWords {
    lo: usize,
    hi: usize,
    /// The frame record at the stack's root, whose link leaves the stack.
    root: usize,
}

impl StackWords {
    const WORD: usize = core::mem::size_of::<usize>();

    /// The frame record at `at` (its link and return address), if it lies in the stack.
    fn record(&self, at: usize) -> Option<(usize, usize)> {
        let in_stack = at >= self.lo
            && at.checked_add(2 * Self::WORD)? <= self.hi
            && at.is_multiple_of(Self::WORD)
            && at != self.root;
        // SAFETY: `at` and the word after it lie inside the running coroutine's stack
        // (checked), which is mapped and readable.
        in_stack.then(|| unsafe { (*(at as *const usize), *((at + Self::WORD) as *const usize)) })
    }

    /// Follow the chain from the record at `rec`, writing return addresses minus one into
    /// `out`; returns how many.
    fn walk(&self, mut rec: usize, out: &mut [usize]) -> usize {
        let mut n = 0;
        while let (Some(slot), Some((next, ret))) = (out.get_mut(n), self.record(rec)) {
            if ret == 0 {
                break;
            }
            *slot = ret - 1;
            n += 1;
            let next = record_below(next);
            if next <= rec {
                break;
            }
            rec = next;
        }
        n
    }

    /// The first frame record at or above `sp` that links upward inside the stack and
    /// returns into the executable.
    fn find_record(&self, sp: usize) -> Option<usize> {
        let image = IMAGE.get()?;
        let in_image = |ret: usize| (image.mapping.start..image.mapping.end).contains(&ret);
        let mut at = sp.checked_next_multiple_of(Self::WORD)?.max(self.lo);
        while at < self.hi {
            if let Some((next, ret)) = self.record(at) {
                let next = record_below(next);
                if next > at && in_image(ret) && (next == self.root || self.record(next).is_some())
                {
                    return Some(at);
                }
            }
            at += Self::WORD;
        }
        None
    }
}

/// ` 0x1b2c3` (an offset in the executable) or ` [0x7f3a…]` (absolute, outside it).
fn write_addr(out: &mut ChunkWriter, addr: usize) -> fmt::Result {
    match IMAGE.get() {
        Some(image) if (image.mapping.start..image.mapping.end).contains(&addr) => {
            write!(out, " {:#x}", addr - image.mapping.bias)
        }
        _ => write!(out, " [{addr:#x}]"),
    }
}

/// The last lines: how to turn the addresses into names.
fn write_hint(out: &mut ChunkWriter) -> fmt::Result {
    match IMAGE.get() {
        Some(image) => write!(
            out,
            "shrapnel: addresses are offsets in {path}, [bracketed] ones absolute; names:\n\
             shrapnel:   addr2line -C -f -i -e {path} <addresses>\n",
            path = image.path
        ),
        None => out.write_str(
            "shrapnel: addresses are absolute; names: addr2line (or atos) with the \
             executable's load address\n",
        ),
    }
}
