//! Latency reporting for the POSIX runtime (feature `latency`): Shrapnel's warning for a
//! slice that ran too long, plus — as Seastar's stall detector does — a *sample of where it
//! was* while it ran, so the report names the code that hogged the CPU.
//!
//! The core times every slice and publishes the running one in a
//! `SliceProbe`. A watchdog thread per scheduler
//! thread wakes every quarter threshold; when the same slice is still running at 1×, 2×,
//! 4×… the threshold it sends the scheduler thread `SIGURG`, whose handler (allocation-free,
//! on the alternate signal stack) copies the interrupted program counter and frame-pointer
//! chain into fixed atomic slots. Reports:
//!
//! - at the end of a slice longer than the threshold, Shrapnel's line
//!   `{ctime} High Latency: (0.250s) for <coro #1 name='…' dead=0 started=1 scheduled=0 at 0x…>`
//!   followed by ` at [file fn|line] …` when a sample of that slice was taken;
//! - while a stall goes on, from the watchdog at 2×, 4×, 8×… the threshold:
//!   `{ctime} High Latency: still running after (0.400s) for <coro #1 name='…'> at […]`.
//!
//! So a 250 ms stall with the default 200 ms threshold gives exactly one line, with the
//! stack sampled at 200 ms. Reports are rate-limited (at most [`BURST`] per
//! [`WINDOW`]); the next printed line says how many were suppressed.
//!
//! `SIGURG` is used because its default action is to ignore it and hardly anything else
//! uses it (Go's runtime picked it for preemption for the same reasons).

use std::cell::Cell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use shrapnel_core::arch::{ContextSwitch, Native};
use shrapnel_core::clock::Clock;
use shrapnel_core::latency::{LatencyReport, SliceProbe};
use shrapnel_core::sink::DebugSink;

pub use shrapnel_core::latency::LatencyFactorError;

/// Warn about slices longer than `factor × 0.2 s` (0 disables; outside 0..=300 is an
/// error). Returns the old factor. Shrapnel's `set_latency_warning`.
pub fn set_latency_warning(factor: f64) -> Result<f64, LatencyFactorError> {
    crate::runtime::ensure();
    shrapnel_core::latency::set_latency_warning(factor)
}

/// The current factor (default 1: warn above 0.2 s).
pub fn latency_warning() -> f64 {
    crate::runtime::ensure();
    shrapnel_core::latency::latency_warning()
}

use crate::runtime::MonotonicClock;
use crate::stderr::SavedStderr;

/// Most frames a sample keeps.
const MAX_FRAMES: usize = 48;
/// Most stack words copied above the stack pointer for the frameless-leaf scan.
const SCAN_WORDS: usize = 64;
/// Reports allowed per window before suppression starts.
pub const BURST: u32 = 5;
/// The rate-limit window.
pub const WINDOW: Duration = Duration::from_secs(10);

/// One stack sample, written by the signal handler, read by the watchdog and the scheduler.
struct Sample {
    /// The probe sequence number of the slice the watchdog wants sampled.
    want: AtomicU64,
    /// The probe sequence number of the slice the stored sample belongs to.
    seq: AtomicU64,
    len: AtomicUsize,
    ips: [AtomicUsize; MAX_FRAMES],
    /// The link register (aarch64), or 0: the return address of a leaf function.
    leaf: AtomicUsize,
    /// Words from the stack pointer up to the frame record: where the return address of a
    /// function without a frame record (precompiled std, libc) hides.
    words: [AtomicUsize; SCAN_WORDS],
    nwords: AtomicUsize,
    id: AtomicU64,
    name_len: AtomicUsize,
    name: [AtomicU8; 64],
}

impl Sample {
    fn new() -> Sample {
        Sample {
            want: AtomicU64::new(0),
            seq: AtomicU64::new(0),
            len: AtomicUsize::new(0),
            ips: std::array::from_fn(|_| AtomicUsize::new(0)),
            leaf: AtomicUsize::new(0),
            words: std::array::from_fn(|_| AtomicUsize::new(0)),
            nwords: AtomicUsize::new(0),
            id: AtomicU64::new(0),
            name_len: AtomicUsize::new(0),
            name: std::array::from_fn(|_| AtomicU8::new(0)),
        }
    }

    /// The raw sample taken during slice `seq`, if there is one (cheap: no symbolization).
    fn frames_for(&self, seq: u64) -> Option<Raw> {
        if self.seq.load(Ordering::Acquire) != seq {
            return None;
        }
        let n = self.len.load(Ordering::Relaxed).min(MAX_FRAMES);
        Some(Raw {
            chain: self.ips[..n]
                .iter()
                .map(|a| a.load(Ordering::Relaxed))
                .collect(),
            leaf: self.leaf.load(Ordering::Relaxed),
            words: self.words[..self.nwords.load(Ordering::Relaxed).min(SCAN_WORDS)]
                .iter()
                .map(|a| a.load(Ordering::Relaxed))
                .collect(),
        })
    }

    fn name(&self) -> String {
        let n = self.name_len.load(Ordering::Relaxed).min(64);
        let bytes: Vec<u8> = self.name[..n]
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// A sample as taken: the program counter and frame-record chain, plus what may reveal
/// the caller of a function that has no frame record.
struct Raw {
    chain: Vec<usize>,
    leaf: usize,
    words: Vec<usize>,
}

impl Raw {
    /// The addresses to symbolize: the program counter, then — when the program counter is
    /// in code without frame records (unknown code, the precompiled standard library) — the
    /// first return address found in the link register or on the stack above the stack
    /// pointer that names another function (a heuristic, as crash reporters' stack scans
    /// are), then the frame-record chain. Without it, a frameless function hides its caller:
    /// the chain starts at the caller's caller.
    ///
    /// The symbolizer takes every address as a return address and looks one byte back, to
    /// land inside the call; the sampled program counter is the instruction about to run, so
    /// it is handed over one byte on. (Looked up as it is, a program counter at a function's
    /// first instruction names whatever function precedes it in the binary.)
    fn addresses(&self) -> Vec<usize> {
        let mut v = self.chain.clone();
        let Some(&pc) = v.first() else { return v };
        v[0] = pc.wrapping_add(1);
        let top = crate::tb::symbolize(&v[..1]);
        let frameless = match top.first() {
            None => true,
            Some(f) => {
                f.function == "?"
                    || f.line.is_none()
                    || f.path.as_deref().is_some_and(is_prebuilt)
                    || outside_frame_record(pc)
            }
        };
        if !frameless {
            return v;
        }
        let pc_fn = top.first().map(|f| f.full_name.clone());
        let candidates = std::iter::once(self.leaf).chain(self.words.iter().copied());
        for c in candidates.filter(|&c| c != 0 && Some(&c) != v.get(1)) {
            let frames = crate::tb::symbolize(&[c]);
            let Some(f) = frames.last() else { continue };
            if f.function != "?" && f.line.is_some() && Some(&f.full_name) != pc_fn.as_ref() {
                v.insert(1, c);
                break;
            }
        }
        v
    }
}

/// Whether the instruction at `pc` runs while its function has no frame record of its
/// own (see `sys::context::outside_frame_record`).
fn outside_frame_record(pc: usize) -> bool {
    crate::sys::context::outside_frame_record(pc).is_some()
}

/// Source paths of code that was compiled elsewhere, without our frame pointers.
fn is_prebuilt(path: &str) -> bool {
    path.starts_with("/rustc/") || path.contains("/library/std/") || path.contains("/library/core/")
}

/// Counts reports and suppresses bursts.
struct Limiter {
    window_start: Option<std::time::Instant>,
    printed: u32,
    suppressed: u64,
}

impl Limiter {
    /// Whether to print now; when printing, also how many were suppressed since the last one.
    fn admit(&mut self) -> Option<u64> {
        let now = std::time::Instant::now();
        match self.window_start {
            Some(t) if now.duration_since(t) < WINDOW => {}
            _ => {
                self.window_start = Some(now);
                self.printed = 0;
            }
        }
        if self.printed >= BURST {
            self.suppressed += 1;
            return None;
        }
        self.printed += 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// What a scheduler thread shares with its watchdog.
struct Shared {
    probe: Arc<SliceProbe>,
    sample: Sample,
    limiter: Mutex<Limiter>,
    stop: AtomicBool,
}

std::thread_local! {
    /// This thread's sample slots, for the signal handler.
    static SAMPLE: Cell<*const Shared> = const { Cell::new(std::ptr::null()) };
    static SHARED: Cell<Option<StopOnExit>> = const { Cell::new(None) };
}

/// Stops the watchdog when its scheduler thread exits.
struct StopOnExit(Arc<Shared>);

impl Drop for StopOnExit {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::Relaxed);
        SAMPLE.with(|c| c.set(std::ptr::null()));
    }
}

/// Start latency reporting for this thread's scheduler: the report hook, the sampling
/// signal handler, and the watchdog thread. Called by `configure`.
pub(crate) fn start() {
    install_handler();
    let shared = Arc::new(Shared {
        probe: shrapnel_core::latency::slice_probe(),
        sample: Sample::new(),
        limiter: Mutex::new(Limiter {
            window_start: None,
            printed: 0,
            suppressed: 0,
        }),
        stop: AtomicBool::new(false),
    });
    SAMPLE.with(|c| c.set(Arc::as_ptr(&shared)));
    // A scheduler installed again on this thread replaces (and stops) the old watchdog.
    if let Some(old) = SHARED.with(|c| c.replace(Some(StopOnExit(shared.clone())))) {
        old.0.stop.store(true, Ordering::Relaxed);
        drop(old);
        SAMPLE.with(|c| c.set(Arc::as_ptr(&shared)));
    }
    shrapnel_core::latency::set_latency_hook(Some(report_slice));
    // SAFETY: pthread_self has no preconditions.
    let target = unsafe { libc::pthread_self() } as usize;
    let spawned = std::thread::Builder::new()
        .name("shrapnel-watchdog".into())
        .stack_size(256 * 1024)
        .spawn(move || watchdog(shared, target));
    if let Err(e) = spawned {
        SavedStderr::get().write(
            format!("shrapnel: latency watchdog not started ({e}); stalls are reported only when they end\n")
                .as_bytes(),
        );
    }
}

fn install_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let flags = crate::sys::signals::Flags {
            on_altstack: true,
            restart: true,
        };
        let handler = crate::sys::signals::Handler::Info(on_sample_signal);
        if let Err(e) = crate::sys::signals::install(libc::SIGURG, handler, flags) {
            SavedStderr::get().write(
                format!("shrapnel: latency sampler not installed ({e}); stalls are reported without a stack\n")
                    .as_bytes(),
            );
        }
    });
}

/// The sampling handler: copies pc and the frame-pointer chain of the running coroutine.
/// Async-signal-safe: it reads memory inside the coroutine's stack bounds and writes
/// atomics, nothing else.
extern "C" fn on_sample_signal(
    _sig: libc::c_int,
    _info: *mut libc::siginfo_t,
    uc: *mut libc::c_void,
) {
    let Ok(p) = SAMPLE.try_with(|c| c.get()) else {
        return;
    };
    // SAFETY: the pointer is set by `start` to an Arc that the thread-local StopOnExit keeps
    // alive for as long as it is set.
    let Some(shared) = (unsafe { p.as_ref() }) else {
        return;
    };
    let s = &shared.sample;
    let want = s.want.load(Ordering::Acquire);
    if shared.probe.seq.load(Ordering::Acquire) != want {
        return; // a late signal: the slice it was meant for has ended
    }
    // SAFETY: `uc` is this SA_SIGINFO handler's context argument.
    let Some(regs) = (unsafe { crate::sys::context::regs(uc) }) else {
        return;
    };
    let lo = shared.probe.stack_limit.load(Ordering::Relaxed) as usize;
    let hi = shared.probe.stack_base.load(Ordering::Relaxed) as usize;
    let word = std::mem::size_of::<usize>();
    s.leaf.store(regs.lr.unwrap_or(0), Ordering::Relaxed);
    let mut nwords = 0;
    let mut at = regs.sp;
    while nwords < SCAN_WORDS && at >= lo && at + word <= hi && at < regs.fp.max(regs.sp + word) {
        // SAFETY: `at` is inside the running coroutine's stack (checked), which is mapped.
        s.words[nwords].store(unsafe { *(at as *const usize) }, Ordering::Relaxed);
        nwords += 1;
        at += word;
    }
    s.nwords.store(nwords, Ordering::Relaxed);
    // Each frame pointer names a record `FP_ABOVE_RECORD` below it (RISC-V), or at it.
    let record_of = |fp: usize| fp.wrapping_sub(Native::FP_ABOVE_RECORD);
    let mut fp = record_of(regs.fp);
    s.ips[0].store(regs.pc, Ordering::Relaxed);
    let mut n = 1;
    while n < MAX_FRAMES && fp >= lo && fp <= hi.saturating_sub(2 * word) && fp.is_multiple_of(word)
    {
        // SAFETY: fp lies inside the running coroutine's stack (bounds checked above), which
        // is mapped; the two words of its frame record are readable.
        let (next, ret) = unsafe { (*(fp as *const usize), *((fp + word) as *const usize)) };
        if ret == 0 {
            break;
        }
        s.ips[n].store(ret, Ordering::Relaxed);
        n += 1;
        let next = record_of(next);
        if next <= fp {
            break;
        }
        fp = next;
    }
    s.len.store(n, Ordering::Relaxed);
    if let Some(info) = shrapnel_core::running_for_signal() {
        s.id.store(info.id, Ordering::Relaxed);
        let b = info.name.as_bytes();
        for (slot, byte) in s.name.iter().zip(b) {
            slot.store(*byte, Ordering::Relaxed);
        }
        s.name_len.store(b.len().min(64), Ordering::Relaxed);
    }
    if shared.probe.seq.load(Ordering::Acquire) == want {
        s.seq.store(want, Ordering::Release);
    }
}

fn watchdog(shared: Arc<Shared>, target: usize) {
    let clock = MonotonicClock;
    let mut slice = 0u64;
    let mut next_mark = 0u64;
    loop {
        if shared.stop.load(Ordering::Relaxed) || Arc::strong_count(&shared.probe) == 1 {
            return; // the scheduler is gone
        }
        let threshold = shared.probe.threshold.load(Ordering::Relaxed);
        let nap = if threshold == 0 {
            100_000_000
        } else {
            (threshold / 4).clamp(2_000_000, 250_000_000)
        };
        std::thread::sleep(Duration::from_nanos(nap));
        if threshold == 0 {
            continue;
        }
        let seq = shared.probe.seq.load(Ordering::Acquire);
        if seq.is_multiple_of(2) {
            continue; // between slices
        }
        if seq != slice {
            slice = seq;
            next_mark = threshold.saturating_mul(2);
        }
        let start = shared.probe.start.load(Ordering::Relaxed);
        let elapsed = clock.now().saturating_sub(start);
        if elapsed < threshold / 2 {
            continue;
        }
        // Past half the threshold: keep a fresh sample, so the end-of-slice report of a
        // stall has one however soon after the threshold it ends.
        let frames = take_sample(&shared, target, seq);
        if elapsed < next_mark {
            continue;
        }
        next_mark = next_mark.saturating_mul(2);
        if frames.is_none() || shared.probe.seq.load(Ordering::Acquire) != seq {
            continue; // it ended meanwhile: the end-of-slice report covers it
        }
        // Formatted (and symbolized) before taking the printing lock, which the scheduler
        // thread's end-of-slice report needs too.
        let mut line = ctime_now();
        let d = Duration::from_nanos(elapsed);
        let _ = write!(
            line,
            " High Latency: still running after ({}.{:03}s) for <coro #{} name='{}' dead=0 started=1 scheduled=0>",
            d.as_secs(),
            d.subsec_millis(),
            shared.sample.id.load(Ordering::Relaxed),
            shared.sample.name()
        );
        append_stack(&mut line, frames.as_ref());
        let Ok(mut limiter) = shared.limiter.lock() else {
            continue;
        };
        // The slice's final report is its last word: if the slice ended while this line
        // was being made, the final report is printed (or about to be, after this lock),
        // and an older "still running" must not follow it.
        if shared.probe.seq.load(Ordering::Acquire) != seq {
            continue;
        }
        let Some(suppressed) = limiter.admit() else {
            continue;
        };
        end_line(&mut line, suppressed);
        SavedStderr::get().write(line.as_bytes());
        drop(limiter);
    }
}

/// Signal the scheduler thread and wait (at most 50 ms) for its sample of slice `seq`.
fn take_sample(shared: &Shared, target: usize, seq: u64) -> Option<Raw> {
    shared.sample.want.store(seq, Ordering::Release);
    // SAFETY: `target` is the scheduler thread, alive while a slice runs on it (a slice is
    // running: seq was odd), and SIGURG has our handler installed.
    unsafe { libc::pthread_kill(target as libc::pthread_t, libc::SIGURG) };
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(1));
        if let Some(raw) = shared.sample.frames_for(seq) {
            return Some(raw);
        }
        if shared.probe.seq.load(Ordering::Acquire) != seq {
            return None;
        }
    }
    None
}

thread_local! {
    /// Slices of this thread's scheduler over the threshold, reported or not.
    static SLOW_SLICES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many slices of this thread's scheduler ran over the latency threshold (each one
/// the warning was for, printed or suppressed by the rate limit).
#[cfg_attr(not(feature = "backdoor"), allow(dead_code))] // read by the backdoor's metrics
pub(crate) fn slow_slices() -> u64 {
    SLOW_SLICES.with(std::cell::Cell::get)
}

/// The end-of-slice report (the core's latency hook), with the sample if one was taken.
fn report_slice(r: &LatencyReport) {
    SLOW_SLICES.with(|n| n.set(n.get() + 1));
    let p = SAMPLE.with(|c| c.get());
    // SAFETY: as in the signal handler: kept alive by the thread-local StopOnExit.
    let shared = unsafe { p.as_ref() };
    // Held until the line is written, so the watchdog cannot print an older "still running"
    // line for this slice after it.
    let mut limiter = shared.map(|s| s.limiter.lock());
    let suppressed = match limiter.as_mut() {
        Some(Ok(l)) => match l.admit() {
            Some(n) => n,
            None => return,
        },
        _ => 0,
    };
    let frames = shared.and_then(|s| s.sample.frames_for(r.seq));
    let mut line = ctime_now();
    line.push(' ');
    line.push_str(&r.body());
    append_stack(&mut line, frames.as_ref());
    end_line(&mut line, suppressed);
    SavedStderr::get().write(line.as_bytes());
    drop(limiter);
}

/// ` at [file fn|line] …`: the sampled stack, symbolized.
fn append_stack(line: &mut String, sample: Option<&Raw>) {
    if let Some(raw) = sample {
        let stack = crate::tb::compact(&raw.addresses());
        if !stack.is_empty() {
            line.push_str(" at ");
            line.push_str(&stack);
        }
    }
}

/// The count of suppressed reports, and the newline.
fn end_line(line: &mut String, suppressed: u64) {
    if suppressed > 0 {
        let _ = write!(line, " ({suppressed} earlier reports suppressed)");
    }
    line.push('\n');
}

fn ctime_now() -> String {
    let mut s = String::new();
    let secs = MonotonicClock.wall_clock().unwrap_or(0);
    let _ = shrapnel_core::clock::write_ctime(&mut s, secs);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Return addresses of the stack at the call of `capture` inside `callee`: `[into
    /// capture's caller chain…]`, found by name so inlining of the helpers does not matter.
    #[inline(never)]
    fn callee() -> Vec<usize> {
        std::hint::black_box(crate::tb::capture())
    }

    #[inline(never)]
    fn caller() -> Vec<usize> {
        std::hint::black_box(callee())
    }

    fn names(addrs: &[usize]) -> Vec<String> {
        crate::tb::symbolize(addrs)
            .into_iter()
            .map(|f| f.full_name)
            .collect()
    }

    /// A sample taken at `callee`'s first instruction: the frame pointer still names
    /// `caller`'s record, whose return address leads into the test; `caller` is found only
    /// as the return address at the stack pointer. The report must name both, innermost
    /// first, and must not name the function that precedes `callee` in the binary.
    #[test]
    fn a_sample_at_a_function_entry_names_the_function_and_its_caller() {
        let stack = caller();
        let into = |name: &str| {
            stack
                .iter()
                .copied()
                .find(|&a| names(&[a]).iter().any(|n| n.ends_with(name)))
                .unwrap_or_else(|| panic!("no return address into {name} in {:?}", names(&stack)))
        };
        let into_caller = into("latency::tests::caller");
        let into_test = into("a_sample_at_a_function_entry_names_the_function_and_its_caller");
        let entry = callee as fn() -> Vec<usize> as usize;
        assert!(outside_frame_record(entry));
        let raw = Raw {
            chain: vec![entry, into_test],
            leaf: if cfg!(any(
                target_arch = "aarch64",
                target_arch = "riscv64",
                target_arch = "riscv32"
            )) {
                into_caller
            } else {
                0
            },
            words: vec![into_caller, 0x10, entry],
        };
        let got = names(&raw.addresses());
        let pos = |name: &str| got.iter().position(|n| n.ends_with(name));
        let (Some(a), Some(b), Some(c)) = (
            pos("latency::tests::callee"),
            pos("latency::tests::caller"),
            pos("a_sample_at_a_function_entry_names_the_function_and_its_caller"),
        ) else {
            panic!("callee, caller and the test, innermost first: {got:?}");
        };
        assert!(a < b && b < c, "{got:?}");
    }

    /// A sample in the middle of a function with its frame record keeps the chain as it is.
    #[test]
    fn a_sample_inside_a_framed_function_adds_nothing() {
        let stack = caller();
        let into_caller = stack
            .iter()
            .copied()
            .find(|&a| {
                names(&[a])
                    .iter()
                    .any(|n| n.ends_with("latency::tests::caller"))
            })
            .unwrap();
        // One byte before the return address into `caller` is inside its call instruction:
        // a program counter in the body of `caller`, past its prologue.
        let pc = into_caller - 1;
        assert!(!outside_frame_record(pc));
        let raw = Raw {
            chain: vec![pc, 0],
            leaf: 0,
            words: vec![callee as fn() -> Vec<usize> as usize + 1],
        };
        assert_eq!(raw.addresses(), vec![pc + 1, 0]);
    }
}
