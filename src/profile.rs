//! A live CPU profile per coroutine: [`cpu`]`(duration)` in code, `profile [SECONDS]` in
//! the backdoor (every scheduler at once).
//!
//! While a profile runs, each scheduler thread has a timer on its own CPU clock
//! (`CLOCK_THREAD_CPUTIME_ID`, Linux) that sends it `SIGPROF` every 1/99 s of CPU time it
//! uses — an idle scheduler is not sampled. The handler, on the alternate signal stack and
//! without allocating, copies the interrupted program counter, the frame-pointer chain of
//! the running coroutine's stack and the coroutine's id and name into the next slot of a
//! buffer made before the timer started (a full buffer drops samples and counts them).
//! When the time is up the timer is deleted and the samples are symbolized and counted:
//! [`Profile::report`] gives the top coroutines and the top functions by share of samples,
//! [`Profile::folded`] the folded stacks flame-graph tools read
//! (`coroutine;outer;…;inner count`).
//!
//! Overhead: none while no profile runs (no timer, no handler work); while one runs, one
//! signal per 10 ms of CPU per scheduler thread, each a few microseconds.
//!
//! Samples taken outside any coroutine (the scheduler's own work between switches) are
//! counted under `(scheduler)` with their program counter only.
//!
//! ```no_run
//! shrapnel::spawn(|| {
//!     let profile = shrapnel::profile::cpu(std::time::Duration::from_secs(5)).unwrap();
//!     print!("{}", profile.report(10));
//!     std::fs::write("cpu.folded", profile.folded()).unwrap();
//! });
//! # shrapnel::event_loop();
//! ```

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Once;
use std::time::Duration;

use crate::sys::ThreadCpuTimer;

/// Samples per second of CPU time, per scheduler thread (99, not 100, so the sampling does
/// not fall in step with work that runs every 10 ms).
pub const HZ: u32 = 99;
/// The longest profile.
pub const MAX_DURATION: Duration = Duration::from_secs(300);
/// Frames kept per sample, the program counter included.
const MAX_FRAMES: usize = 48;
/// Bytes of a coroutine name kept per sample.
const NAME_BYTES: usize = 48;

/// Why no profile was taken.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProfileError {
    /// `cpu` was called outside a coroutine (it sleeps while the others run).
    NotInCoroutine,
    /// A profile of this scheduler is running already.
    Busy,
    /// Longer than [`MAX_DURATION`], or zero.
    BadDuration(Duration),
    /// The per-thread CPU timer could not be made (or this OS has none yet).
    Timer(std::io::Error),
    /// The waiting coroutine was interrupted; the profile was stopped.
    Interrupted(crate::Interrupted),
}

impl std::fmt::Display for ProfileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProfileError::NotInCoroutine => {
                f.write_str("profile: call it from a coroutine: it sleeps while the others run")
            }
            ProfileError::Busy => {
                f.write_str("profile: a profile of this scheduler is running already; wait for it")
            }
            ProfileError::BadDuration(d) => write!(
                f,
                "profile: {d:?} is not a duration to profile for: give more than 0 and at most {}s",
                MAX_DURATION.as_secs()
            ),
            ProfileError::Timer(e) => write!(f, "profile: no CPU timer for this thread: {e}"),
            ProfileError::Interrupted(i) => write!(f, "profile: {i}; stopped"),
        }
    }
}

impl std::error::Error for ProfileError {}

/// One slot of the buffer, written by the handler (plain atomics, no allocation).
struct Slot {
    id: AtomicU64,
    name_len: AtomicUsize,
    name: [AtomicU8; NAME_BYTES],
    len: AtomicUsize,
    frames: [AtomicUsize; MAX_FRAMES],
}

impl Slot {
    fn new() -> Slot {
        Slot {
            id: AtomicU64::new(0),
            name_len: AtomicUsize::new(0),
            name: std::array::from_fn(|_| AtomicU8::new(0)),
            len: AtomicUsize::new(0),
            frames: std::array::from_fn(|_| AtomicUsize::new(0)),
        }
    }
}

/// A running profile's samples.
struct Buffer {
    slots: Box<[Slot]>,
    next: AtomicUsize,
    dropped: AtomicU64,
}

thread_local! {
    /// The buffer of this thread's running profile (null when none runs); read by the
    /// handler.
    static ACTIVE: Cell<*const Buffer> = const { Cell::new(std::ptr::null()) };
}

/// A sample as taken, before symbolization (`Send`, so another scheduler can hand it over).
#[derive(Clone, Debug)]
pub(crate) struct RawSample {
    /// The coroutine's id and name; `None` outside any coroutine.
    coroutine: Option<(u64, String)>,
    /// The program counter, then return addresses, innermost first.
    frames: Vec<usize>,
}

/// A profile of this thread's scheduler in progress (see [`start`]).
pub(crate) struct Running {
    buffer: Box<Buffer>,
    timer: Option<ThreadCpuTimer>,
    began: std::time::Instant,
}

fn install_handler() -> std::io::Result<()> {
    static ONCE: Once = Once::new();
    static FAILED: AtomicU64 = AtomicU64::new(0);
    ONCE.call_once(|| {
        let flags = crate::sys::signals::Flags {
            on_altstack: true,
            restart: true,
        };
        let handler = crate::sys::signals::Handler::Info(on_prof_signal);
        if let Err(e) = crate::sys::signals::install(libc::SIGPROF, handler, flags) {
            FAILED.store(
                e.raw_os_error().unwrap_or(libc::EIO) as u64,
                Ordering::Relaxed,
            );
        }
    });
    match FAILED.load(Ordering::Relaxed) {
        0 => Ok(()),
        errno => Err(std::io::Error::from_raw_os_error(errno as i32)),
    }
}

thread_local! {
    static RUNNING: std::cell::RefCell<Option<Running>> = const { std::cell::RefCell::new(None) };
}

/// Start profiling this thread's scheduler for up to `duration` (the buffer holds that
/// much); [`stop`] ends it.
pub(crate) fn start(duration: Duration) -> Result<(), ProfileError> {
    if duration.is_zero() || duration > MAX_DURATION {
        return Err(ProfileError::BadDuration(duration));
    }
    if RUNNING.with(|r| r.borrow().is_some()) {
        return Err(ProfileError::Busy);
    }
    install_handler().map_err(ProfileError::Timer)?;
    crate::sys::altstack::ensure_altstack().map_err(ProfileError::Timer)?;
    let slots = (duration.as_secs_f64() * f64::from(HZ)).ceil() as usize + 16;
    let buffer = Box::new(Buffer {
        slots: (0..slots).map(|_| Slot::new()).collect(),
        next: AtomicUsize::new(0),
        dropped: AtomicU64::new(0),
    });
    ACTIVE.with(|a| a.set(&*buffer));
    let period = Duration::from_secs(1) / HZ;
    let timer = match ThreadCpuTimer::start(libc::SIGPROF, period) {
        Ok(t) => t,
        Err(e) => {
            ACTIVE.with(|a| a.set(std::ptr::null()));
            return Err(ProfileError::Timer(e));
        }
    };
    RUNNING.with(|r| {
        *r.borrow_mut() = Some(Running {
            buffer,
            timer: Some(timer),
            began: std::time::Instant::now(),
        })
    });
    Ok(())
}

/// Stop this thread's profile: its samples, how many were dropped (buffer full) and how
/// long it ran; `None` if none ran.
pub(crate) fn stop() -> Option<(Vec<RawSample>, u64, Duration)> {
    let mut running = RUNNING.with(|r| r.borrow_mut().take())?;
    // The timer goes first; then the handler, which runs on this thread only, finds no
    // buffer, so freeing it below cannot race with a sample.
    drop(running.timer.take());
    ACTIVE.with(|a| a.set(std::ptr::null()));
    let b = &running.buffer;
    let n = b.next.load(Ordering::Acquire).min(b.slots.len());
    let samples = b.slots[..n]
        .iter()
        .map(|s| {
            let len = s.len.load(Ordering::Relaxed).min(MAX_FRAMES);
            let frames = s.frames[..len]
                .iter()
                .map(|f| f.load(Ordering::Relaxed))
                .collect();
            let id = s.id.load(Ordering::Relaxed);
            let coroutine = (id != 0).then(|| {
                let nl = s.name_len.load(Ordering::Relaxed).min(NAME_BYTES);
                let bytes: Vec<u8> = s.name[..nl]
                    .iter()
                    .map(|c| c.load(Ordering::Relaxed))
                    .collect();
                (id, String::from_utf8_lossy(&bytes).into_owned())
            });
            RawSample { coroutine, frames }
        })
        .collect();
    Some((
        samples,
        b.dropped.load(Ordering::Relaxed),
        running.began.elapsed(),
    ))
}

/// The SIGPROF handler: one sample into the next slot. Async-signal-safe: atomics, reads
/// inside the running coroutine's stack bounds, `running_for_signal`.
extern "C" fn on_prof_signal(
    _sig: libc::c_int,
    _info: *mut libc::siginfo_t,
    uc: *mut libc::c_void,
) {
    let saved = crate::sys::signals::errno();
    sample_into_buffer(uc);
    crate::sys::signals::set_errno(saved);
}

fn sample_into_buffer(uc: *mut libc::c_void) {
    let Ok(p) = ACTIVE.try_with(|a| a.get()) else {
        return;
    };
    // SAFETY: `start` sets the pointer to a buffer kept in RUNNING on this thread, and
    // `stop` clears it (after deleting the timer) before the buffer is freed; the handler
    // runs on this thread, so it cannot see a freed buffer.
    let Some(b) = (unsafe { p.as_ref() }) else {
        return;
    };
    let i = b.next.fetch_add(1, Ordering::AcqRel);
    let Some(slot) = b.slots.get(i) else {
        b.next.store(b.slots.len(), Ordering::Release);
        b.dropped.fetch_add(1, Ordering::Relaxed);
        return;
    };
    // SAFETY: `uc` is this SA_SIGINFO handler's context argument.
    let Some(regs) = (unsafe { crate::sys::context::regs(uc) }) else {
        slot.len.store(0, Ordering::Relaxed);
        return;
    };
    slot.frames[0].store(regs.pc, Ordering::Relaxed);
    let mut n = 1;
    match shrapnel_core::running_for_signal() {
        Some(info) => {
            slot.id.store(info.id, Ordering::Relaxed);
            let bytes = info.name.as_bytes();
            for (dst, byte) in slot.name.iter().zip(bytes) {
                dst.store(*byte, Ordering::Relaxed);
            }
            slot.name_len
                .store(bytes.len().min(NAME_BYTES), Ordering::Relaxed);
            let (lo, hi) = (info.stack_limit, info.stack_base);
            let word = std::mem::size_of::<usize>();
            // A function interrupted outside its frame record (in its prologue or at its
            // return): the frame-pointer chain would skip its caller, whose return address
            // is on the stack or in the link register.
            use crate::sys::context::{outside_frame_record, OutsideRecord};
            let at = match outside_frame_record(regs.pc) {
                Some(OutsideRecord::AtSp) => Some(regs.sp),
                Some(OutsideRecord::AboveSp) => Some(regs.sp + word),
                Some(OutsideRecord::InLr) => {
                    if let Some(lr) = regs.lr {
                        slot.frames[n].store(lr, Ordering::Relaxed);
                        n += 1;
                    }
                    None
                }
                None => None,
            };
            if let Some(at) = at.filter(|&a| a >= lo && a + word <= hi) {
                // SAFETY: inside the running coroutine's stack (checked), which is mapped.
                slot.frames[n].store(unsafe { *(at as *const usize) }, Ordering::Relaxed);
                n += 1;
            }
            // Each frame pointer names a record FP_ABOVE_RECORD below it (RISC-V), or at it.
            use shrapnel_core::arch::{ContextSwitch, Native};
            let record_of = |fp: usize| fp.wrapping_sub(Native::FP_ABOVE_RECORD);
            let mut fp = record_of(regs.fp);
            while n < MAX_FRAMES
                && fp >= lo
                && fp <= hi.saturating_sub(2 * word)
                && fp.is_multiple_of(word)
            {
                // SAFETY: the frame record lies inside the running coroutine's stack
                // (bounds checked above), which is mapped.
                let (next, ret) =
                    unsafe { (*(fp as *const usize), *((fp + word) as *const usize)) };
                if ret == 0 {
                    break;
                }
                slot.frames[n].store(ret, Ordering::Relaxed);
                n += 1;
                let next = record_of(next);
                if next <= fp {
                    break;
                }
                fp = next;
            }
        }
        None => slot.id.store(0, Ordering::Relaxed),
    }
    slot.len.store(n, Ordering::Relaxed);
}

/// A symbolized sample.
#[derive(Clone, Debug)]
pub struct Sample {
    /// The scheduler it was taken on (`None` for one the runtime did not install).
    pub scheduler: Option<usize>,
    /// The coroutine's id and name; `None` for the scheduler's own work.
    pub coroutine: Option<(u64, String)>,
    /// Function names, innermost first (inlined calls included).
    pub stack: Vec<String>,
}

/// A CPU profile: every sample, symbolized.
#[derive(Clone, Debug, Default)]
pub struct Profile {
    /// The samples, in no particular order.
    pub samples: Vec<Sample>,
    /// Samples lost because a buffer was full.
    pub dropped: u64,
    /// How long it ran.
    pub duration: Duration,
}

impl Profile {
    /// Symbolize raw samples of scheduler `scheduler`.
    pub(crate) fn add(&mut self, scheduler: Option<usize>, raw: Vec<RawSample>) {
        for r in raw {
            let mut addrs = r.frames.clone();
            // The program counter is the instruction about to run; the symbolizer looks
            // one byte back from what it takes as a return address.
            if let Some(pc) = addrs.first_mut() {
                *pc = pc.wrapping_add(1);
            }
            let stack = crate::tb::symbolize(&addrs)
                .into_iter()
                .map(|f| f.function)
                .collect();
            self.samples.push(Sample {
                scheduler,
                coroutine: r.coroutine,
                stack,
            });
        }
    }

    /// `(coroutine, samples)`, the most sampled first; the scheduler's own work is
    /// `(0, "(scheduler)")`.
    pub fn top_coroutines(&self) -> Vec<((u64, String), u64)> {
        let mut counts: HashMap<(u64, String), u64> = HashMap::new();
        for s in &self.samples {
            let key = s
                .coroutine
                .clone()
                .unwrap_or_else(|| (0, "(scheduler)".to_string()));
            *counts.entry(key).or_default() += 1;
        }
        sorted(counts)
    }

    /// `(function, samples)` by the innermost function of each sample (self time), the
    /// most sampled first.
    pub fn top_functions(&self) -> Vec<(String, u64)> {
        let mut counts: HashMap<String, u64> = HashMap::new();
        for s in &self.samples {
            let f = s.stack.first().cloned().unwrap_or_else(|| "?".into());
            *counts.entry(f).or_default() += 1;
        }
        sorted(counts)
    }

    /// `(function, samples)` by every function on each sample's stack (total time, each
    /// function counted once per sample), the most sampled first.
    pub fn top_functions_total(&self) -> Vec<(String, u64)> {
        let mut counts: HashMap<String, u64> = HashMap::new();
        for s in &self.samples {
            let mut seen: Vec<&String> = Vec::new();
            for f in &s.stack {
                if !seen.contains(&f) {
                    seen.push(f);
                    *counts.entry(f.clone()).or_default() += 1;
                }
            }
        }
        sorted(counts)
    }

    /// The folded stacks: one line per distinct stack, `coroutine;outermost;…;innermost
    /// count`, where the coroutine is `#id name` (or `(scheduler)`). `;` in a name becomes
    /// `:`. Flame-graph tools (flamegraph.pl, inferno, speedscope) read it.
    pub fn folded(&self) -> String {
        let mut counts: HashMap<String, u64> = HashMap::new();
        for s in &self.samples {
            let mut line = match &s.coroutine {
                Some((id, name)) => format!("#{id} {}", name.replace(';', ":")),
                None => "(scheduler)".to_string(),
            };
            for f in s.stack.iter().rev() {
                line.push(';');
                line.push_str(&f.replace(';', ":"));
            }
            *counts.entry(line).or_default() += 1;
        }
        let mut out = String::new();
        for (line, n) in sorted(counts) {
            let _ = writeln!(out, "{line} {n}");
        }
        out
    }

    /// For people: the sample count, then the top `n` coroutines and functions with their
    /// share of the samples.
    pub fn report(&self, n: usize) -> String {
        let total = self.samples.len() as u64;
        let mut out = format!(
            "profile: {total} samples in {:.1}s at {HZ} Hz of CPU time per scheduler thread",
            self.duration.as_secs_f64()
        );
        if self.dropped > 0 {
            let _ = write!(out, " ({} dropped: buffer full)", self.dropped);
        }
        out.push('\n');
        if total == 0 {
            out.push_str("no samples: the schedulers used no CPU time meanwhile\n");
            return out;
        }
        let pct = |k: u64| 100.0 * k as f64 / total as f64;
        out.push_str("top coroutines:\n");
        for ((id, name), k) in self.top_coroutines().into_iter().take(n) {
            let who = if id == 0 {
                name
            } else {
                format!("#{id} '{name}'")
            };
            let _ = writeln!(out, "  {:>5.1}%  {k:>6}  {who}", pct(k));
        }
        out.push_str("top functions (self):\n");
        for (f, k) in self.top_functions().into_iter().take(n) {
            let _ = writeln!(out, "  {:>5.1}%  {k:>6}  {f}", pct(k));
        }
        out.push_str("top functions (total: on the stack):\n");
        for (f, k) in self.top_functions_total().into_iter().take(n) {
            let _ = writeln!(out, "  {:>5.1}%  {k:>6}  {f}", pct(k));
        }
        out
    }
}

fn sorted<K: Ord>(counts: HashMap<K, u64>) -> Vec<(K, u64)> {
    let mut v: Vec<(K, u64)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

/// Profile this thread's scheduler for `duration`: the calling coroutine sleeps while the
/// others run and are sampled (the backdoor's `profile` covers every scheduler).
pub fn cpu(duration: Duration) -> Result<Profile, ProfileError> {
    if crate::current().is_none() {
        return Err(ProfileError::NotInCoroutine);
    }
    start(duration)?;
    let slept = crate::sleep(duration);
    let (raw, dropped, took) = stop().unwrap_or_default();
    let mut p = Profile {
        dropped,
        duration: took,
        ..Profile::default()
    };
    p.add(crate::schedulers::this_number(), raw);
    match slept {
        Ok(()) => Ok(p),
        Err(i) => Err(ProfileError::Interrupted(i)),
    }
}
