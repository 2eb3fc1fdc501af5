//! `where_is` / `where_all`: what every coroutine is doing, recorded cheaply at each
//! blocking call (the reason, when it began, and the `#[track_caller]` source line), and,
//! with the `stacks` feature, the return addresses of a suspended coroutine's call stack,
//! walked from its saved frame-pointer record without running it.
//!
//! The walk needs frame pointers in every frame between the blocking call and the
//! coroutine's root; the workspace builds with `-C force-frame-pointers=yes` (see
//! `.cargo/config.toml` and the README for what a user's release build needs).
//! Symbolising the addresses needs std and debug info, so it lives in the `shrapnel`
//! crate; this module hands out raw addresses.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::panic::Location;
use core::time::Duration;

use crate::coro::{CoroInner, CoroRef, State};
use crate::sched::{sched, try_sched};
use crate::wait::WaitReason;

/// Per-coroutine slice statistics (feature `latency`; zeros without it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SliceStats {
    /// Slices run (resume → yield or block).
    pub count: u64,
    /// Total time in those slices.
    pub total: Duration,
    /// The longest slice.
    pub max: Duration,
}

/// Who holds what a blocked coroutine waits for, in a snapshot ([`CoroInfo::held_by`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeldBy {
    /// A coroutine: a mutex's owner, a rwlock's writer, the coroutine being joined.
    Coro {
        /// Its id.
        id: u64,
        /// Its name (empty if it is gone).
        name: String,
    },
    /// A rwlock held by this many readers (their ids are not kept).
    Readers(usize),
}

/// A snapshot of one coroutine for `where`/`where_all`/`ps`.
#[derive(Clone, Debug)]
pub struct CoroInfo {
    /// Id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Life-cycle state.
    pub state: State,
    /// What it waits for.
    pub reason: WaitReason,
    /// How long it has been in that state.
    pub waited: Duration,
    /// For a sleeper, the time left until its deadline.
    pub sleep_left: Option<Duration>,
    /// The source line of the blocking call (from `#[track_caller]`).
    pub blocked_at: Option<&'static Location<'static>>,
    /// Usable stack size in bytes.
    pub stack_size: usize,
    /// Slice statistics (feature `latency`).
    pub slices: SliceStats,
    /// Return addresses of the suspended call stack, innermost first (feature `stacks`;
    /// empty for a coroutine that is running, not started, or dead).
    pub frames: Vec<usize>,
    /// Who holds what it waits for: a mutex's owner, a rwlock's writer or readers, the
    /// coroutine it joins (hosted builds; `None` on bare metal, or when nobody does).
    pub held_by: Option<HeldBy>,
}

impl fmt::Display for CoroInfo {
    /// `#12 'worker' blocked: readable fd 7 for 1.204s at src/main.rs:40`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} '{}' {}: {}",
            self.id, self.name, self.state, self.reason
        )?;
        // Hosted builds only: on bare metal `held_by` is always `None` (hooks.rs), and
        // the code would cost the core's `.text` budget.
        #[cfg(feature = "std")]
        match &self.held_by {
            Some(HeldBy::Coro { name, .. }) if matches!(self.reason, WaitReason::Join(_)) => {
                write!(f, " '{name}'")?
            }
            Some(HeldBy::Coro { id, name }) => write!(f, " held by #{id} '{name}'")?,
            Some(HeldBy::Readers(n)) => write!(f, " held by {n} readers")?,
            None => {}
        }
        if let Some(left) = self.sleep_left {
            write!(f, " ({}.{:03}s left)", left.as_secs(), left.subsec_millis())?;
        }
        write!(
            f,
            " for {}.{:03}s",
            self.waited.as_secs(),
            self.waited.subsec_millis()
        )?;
        if let Some(loc) = self.blocked_at {
            write!(f, " at {}:{}", loc.file(), loc.line())?;
        }
        Ok(())
    }
}

/// What `co` is doing now.
pub fn where_is(co: &CoroRef) -> CoroInfo {
    let s = sched();
    // Taking (and printing) snapshots is not a coroutine's time: with `latency`, the next
    // slice starts after it.
    s.break_slice_chain();
    #[cfg_attr(not(feature = "std"), allow(unused_mut))]
    let mut one = info(&co.inner, s.now_ticks());
    #[cfg(feature = "std")]
    if let Some(HeldBy::Coro { id, name }) = &mut one.held_by {
        s.for_each_live(|c| {
            if c.id() == *id {
                *name = c.name_str();
            }
        });
    }
    one
}

/// Every live coroutine, sorted by id.
///
/// ```
/// # shrapnel_core::doc_scheduler!();
/// # use shrapnel_core as shrapnel;
/// use std::time::Duration;
///
/// let napper = shrapnel::Builder::new()
///     .name("napper")
///     .spawn(|| shrapnel::sleep(Duration::from_millis(50)))
///     .unwrap();
/// shrapnel::spawn(move || {
///     shrapnel::yield_slice();
///     let all = shrapnel::where_all();
///     let nap = all.iter().find(|c| c.id == napper.id()).unwrap();
///     assert_eq!(nap.name, "napper");
///     assert!(nap.to_string().contains("blocked: sleeping"), "{nap}");
///     napper.shutdown();
/// });
/// shrapnel::event_loop();
/// ```
pub fn where_all() -> Vec<CoroInfo> {
    let Some(s) = try_sched() else {
        return Vec::new();
    };
    s.break_slice_chain();
    let now = s.now_ticks();
    let mut v: Vec<CoroInfo> = Vec::new();
    s.for_each_live(|co| v.push(info(co, now)));
    v.sort_unstable_by_key(|i| i.id);
    #[cfg(feature = "std")]
    name_holders(&mut v);
    v
}

/// Holders' names, from the same snapshot (sorted by id).
#[cfg(feature = "std")]
fn name_holders(v: &mut [CoroInfo]) {
    let holders: Vec<(usize, usize)> = v
        .iter()
        .enumerate()
        .filter_map(|(k, i)| match &i.held_by {
            Some(HeldBy::Coro { id, .. }) => {
                v.binary_search_by_key(id, |h| h.id).ok().map(|at| (k, at))
            }
            _ => None,
        })
        .collect();
    for (k, at) in holders {
        let name = v[at].name.clone();
        if let Some(HeldBy::Coro { name: n, .. }) = &mut v[k].held_by {
            *n = name;
        }
    }
}

fn info(co: &CoroInner, now: u64) -> CoroInfo {
    let s = sched();
    let reason = co.wait_reason();
    let state = co.state();
    let (since, at) = co.waiting_since();
    let waited = match state {
        State::Running => Duration::ZERO,
        _ => s.rate().duration(now.saturating_sub(since)),
    };
    let sleep_left = match reason {
        WaitReason::Sleep(t) => Some(s.rate().duration(t.0.saturating_sub(now))),
        _ => None,
    };
    let (limit, base) = co.stack_range();
    CoroInfo {
        id: co.id(),
        name: co.name_str(),
        state,
        reason,
        waited,
        sleep_left,
        blocked_at: if state == State::Blocked { at } else { None },
        stack_size: base.saturating_sub(limit),
        slices: crate::hooks::slice_stats(s, co),
        frames: suspended_frames(co),
        held_by: crate::hooks::holder_of(co).map(|h| match h {
            Ok(id) => HeldBy::Coro {
                id,
                name: String::new(),
            },
            Err(readers) => HeldBy::Readers(readers),
        }),
    }
}

/// Walk the frame-pointer chain of a suspended coroutine (feature `stacks`).
#[cfg(feature = "stacks")]
pub(crate) fn suspended_frames(co: &CoroInner) -> Vec<usize> {
    let mut frames = Vec::new();
    walk_suspended(co, |ret| {
        frames.push(ret);
        frames.len() < 128
    });
    frames
}

/// Hand each return address of a suspended coroutine's frame-pointer chain to `f`,
/// innermost first, while `f` returns true; nothing for a coroutine that is running, not
/// started or dead. Allocation-free: the crash dump calls it from a signal handler
/// (`running::for_each_coro_for_signal`), `suspended_frames` for `where_all`.
pub(crate) fn walk_suspended(co: &CoroInner, mut f: impl FnMut(usize) -> bool) {
    use crate::arch::{ContextSwitch, Native};
    let suspended = co.has_started() && matches!(co.state(), State::Blocked | State::Ready);
    if !suspended {
        return;
    }
    let (lo, hi) = co.stack_range();
    let root = Native::root_slot(hi as *mut u8) as usize;
    let word = core::mem::size_of::<usize>();
    // The context and each saved frame pointer name a record `FP_ABOVE_RECORD` below them
    // (two words on RISC-V, none elsewhere).
    let record_of = |fp: usize| fp.wrapping_sub(Native::FP_ABOVE_RECORD);
    let mut rec = record_of(co.saved_context());
    while rec >= lo && rec <= hi.saturating_sub(2 * word) && rec.is_multiple_of(word) && rec != root
    {
        // Read from its stack, or from the copy of its frames when a shared-stack
        // coroutine's are off the run stack; a corrupt chain is cut off by the bounds
        // checks above and by `suspended_word`'s.
        let (Some(next), Some(ret)) = (co.suspended_word(rec), co.suspended_word(rec + word))
        else {
            break;
        };
        let next = record_of(next);
        if ret == 0 || !f(ret) || next <= rec {
            break;
        }
        rec = next;
    }
}

#[cfg(not(feature = "stacks"))]
pub(crate) fn suspended_frames(_co: &CoroInner) -> Vec<usize> {
    Vec::new()
}

/// The loop ends because nothing can wake anything: say so if coroutines are still blocked
/// (a deadlock, a fifo nobody will push to, a join of one of them), naming each and its
/// wait, instead of returning silently. Hosted builds only (`hooks::report_blocked_forever`):
/// on bare metal it would take about 1 KiB of the core's 16 KiB `.text` budget.
#[cfg(feature = "std")]
#[cold]
#[inline(never)]
pub(crate) fn report_blocked_forever(s: &crate::sched::SchedState) {
    let stuck: Vec<_> = crate::sched::live_coros()
        .into_iter()
        .filter(|c| c.state() == crate::coro::State::Blocked)
        .collect();
    if stuck.is_empty() {
        return;
    }
    let all = where_all();
    let cycles = crate::wait_for::cycles(&all);
    s.debug_fmt(format_args!(
        "shrapnel: event_loop ends: {} coroutines are blocked forever, with no timer, fd or \
         interrupt event that could wake them ({}):\n",
        stuck.len(),
        match cycles.len() {
            0 => "nothing can wake them".into(),
            1 => "a deadlock".into(),
            n => alloc::format!("{n} deadlocks"),
        }
    ));
    for (k, cycle) in cycles.iter().enumerate() {
        s.debug_fmt(format_args!("  deadlock {}: ", k + 1));
        for id in cycle {
            s.debug_fmt(format_args!("#{id} → "));
        }
        s.debug_fmt(format_args!("#{} (each waits for the next)\n", cycle[0]));
    }
    for c in &stuck {
        s.debug_fmt(format_args!("  {}\n", where_is(c)));
    }
}
