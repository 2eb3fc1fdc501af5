//! `eval` (feature `backdoor-script`): a [rhai] prompt over what the application exposes,
//! the Rust answer to Shrapnel's Python prompt. Each session gets its own engine and scope
//! (so `let x = …;` persists across that session's lines), built with:
//!
//! - limits: [`Options::max_operations`](super::Options::max_operations) and
//!   [`Options::eval_time_limit`](super::Options::eval_time_limit) per `eval` (a loop that
//!   never ends is stopped by whichever comes first), strings of at most 64 KiB, arrays
//!   and maps of at most 10 000 entries, 32 nested calls, 64 nested expressions, and at
//!   most 1 MiB of `print` output per `eval`;
//! - sharing: the script runs on its session's coroutine and gives the others a turn
//!   (`yield_slice`) every 1 000 operations or 5 ms, from rhai's progress callback, so a
//!   long script slows its own session only; hence a time limit of seconds, not
//!   milliseconds. `sleep(seconds)` is a coroutine sleep (rhai's own, which blocks the
//!   thread and so every coroutine, is replaced), cut short by the time limit or by an
//!   interrupt of the session's coroutine;
//! - the built-ins as functions returning data (ids are integers, durations seconds):
//!   `ps()` and `top(n)` (arrays of maps with `id name state reason waited slices
//!   max_slice`), `live()` (ids), `where_is(id)` and `where_all()` (text), `stats()` (a
//!   map), `sockets()`, `interrupt(id)`, `interrupt(id, code)`, `shutdown(id)`,
//!   `wake_up(id)` (true if it was alive; an error for the session's own coroutine and a
//!   backdoor listener, as with the built-in commands), `selfishness(n)` (the old value), and with
//!   feature `latency` `latency()` and `set_latency(factor)` (the old factor);
//! - then the application's [`Options::script_engine`](super::Options::script_engine)
//!   hooks.
//!
//! `print` and `debug` write to the session. A panic in a registered function is caught:
//! the session reports it and starts the next `eval` with a fresh engine.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use rhai::{Array, Dynamic, Engine, EvalAltResult, Map, Scope, FLOAT, INT};
use shrapnel_core::CoroInfo;

use super::commands::{human, lever_refusal};
use super::Shared;

/// Longest string a script may build.
const MAX_STRING: usize = 64 << 10;
/// Most entries of an array or a map.
const MAX_ENTRIES: usize = 10_000;
/// Most `print`/`debug` output kept per `eval`.
const MAX_PRINTED: usize = 1 << 20;

/// A script gives the other coroutines a turn after this many operations…
const YIELD_EVERY_OPS: u64 = 1_000;
/// …or after running this long, whichever comes first (one operation can be slow: a
/// 64 KiB string, a sort of 10 000 entries).
const YIELD_EVERY: Duration = Duration::from_millis(5);

/// A session's script engine and variables.
pub(crate) struct ScriptState {
    engine: Engine,
    scope: Scope<'static>,
    printed: Rc<RefCell<Vec<u8>>>,
    budget: Rc<Budget>,
    max_operations: u64,
}

/// The time one `eval` may take, and when it last let the other coroutines run. Rhai calls
/// [`Budget::tick`] between operations, on this session's coroutine, so it may yield there:
/// the engine and its scope belong to this session alone, and no `RefCell` of ours is
/// borrowed across the call.
struct Budget {
    limit: Duration,
    started: Cell<Instant>,
    ran_since: Cell<Instant>,
    ops: Cell<u64>,
    /// The limit stopped this `eval` (by `tick` or by `sleep`).
    expired: Cell<bool>,
}

impl Budget {
    fn new(limit: Duration) -> Self {
        let now = Instant::now();
        Budget {
            limit,
            started: Cell::new(now),
            ran_since: Cell::new(now),
            ops: Cell::new(0),
            expired: Cell::new(false),
        }
    }

    fn start(&self) {
        let now = Instant::now();
        self.started.set(now);
        self.ran_since.set(now);
        self.ops.set(0);
        self.expired.set(false);
    }

    fn left(&self, now: Instant) -> Duration {
        self.limit
            .saturating_sub(now.duration_since(self.started.get()))
    }

    /// Between two operations: stop the script (`Some`) when its time is up, else give the
    /// other coroutines a turn every so often.
    fn tick(&self) -> Option<Dynamic> {
        let now = Instant::now();
        if self.left(now).is_zero() {
            self.expired.set(true);
            return Some(Dynamic::UNIT);
        }
        let ops = self.ops.get() + 1;
        if ops >= YIELD_EVERY_OPS || now.duration_since(self.ran_since.get()) >= YIELD_EVERY {
            crate::yield_slice();
            self.ran_since.set(Instant::now());
            self.ops.set(0);
        } else {
            self.ops.set(ops);
        }
        None
    }

    /// The script's `sleep(seconds)`: a coroutine sleep, so everything else runs meanwhile;
    /// cut short by the time limit (which then stops the script) or an interrupt of this
    /// session's coroutine (an error the script can catch).
    fn sleep(&self, seconds: FLOAT) -> Result<(), Box<EvalAltResult>> {
        if seconds.is_nan() || seconds < 0.0 {
            return Err(script_error(format!(
                "sleep: {seconds} is not a number of seconds (give 0 or more)"
            )));
        }
        let want = Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX);
        let left = self.left(Instant::now());
        let slept = crate::sleep(want.min(left));
        self.ran_since.set(Instant::now());
        self.ops.set(0);
        if let Err(i) = slept {
            return Err(script_error(format!("sleep: {i}")));
        }
        if want > left {
            self.expired.set(true);
            return Err(EvalAltResult::ErrorTerminated(Dynamic::UNIT, rhai::Position::NONE).into());
        }
        Ok(())
    }
}

fn append_bounded(buf: &RefCell<Vec<u8>>, text: &str) {
    let mut b = buf.borrow_mut();
    if b.len() >= MAX_PRINTED {
        return;
    }
    let room = MAX_PRINTED - b.len();
    if text.len() < room {
        b.extend_from_slice(text.as_bytes());
        b.push(b'\n');
    } else {
        b.extend_from_slice(&text.as_bytes()[..room]);
        b.extend_from_slice(b"\n[print output cut at 1 MiB]\n");
    }
}

impl ScriptState {
    pub(crate) fn new(shared: &Shared) -> Self {
        let mut engine = Engine::new();
        engine
            .set_max_operations(shared.max_operations)
            .set_max_string_size(MAX_STRING)
            .set_max_array_size(MAX_ENTRIES)
            .set_max_map_size(MAX_ENTRIES)
            .set_max_call_levels(32)
            .set_max_expr_depths(64, 32);
        let budget = Rc::new(Budget::new(shared.eval_time_limit));
        let b = budget.clone();
        engine.on_progress(move |_ops| b.tick());
        // Rhai's own `sleep` blocks the thread, and with it every coroutine; this one
        // replaces it (functions registered on the engine come before its packages).
        let b = budget.clone();
        engine.register_fn("sleep", move |s: FLOAT| b.sleep(s));
        let b = budget.clone();
        engine.register_fn("sleep", move |s: INT| b.sleep(s as FLOAT));
        let printed = Rc::new(RefCell::new(Vec::new()));
        let p = printed.clone();
        engine.on_print(move |s| append_bounded(&p, s));
        let p = printed.clone();
        engine.on_debug(move |s, _source, pos| append_bounded(&p, &format!("[{pos}] {s}")));
        register_builtins(&mut engine);
        for setup in &shared.script_setup {
            setup(&mut engine);
        }
        ScriptState {
            engine,
            scope: Scope::new(),
            printed,
            budget,
            max_operations: shared.max_operations,
        }
    }

    /// Run `script`, writing what it printed and its value (or its error) to `out`. A panic
    /// in a registered function comes back as `Err`; the state should then be dropped.
    pub(crate) fn eval(
        &mut self,
        script: &str,
        out: &mut Vec<u8>,
    ) -> Result<(), Box<dyn Any + Send>> {
        self.printed.borrow_mut().clear();
        self.budget.start();
        let (engine, scope) = (&self.engine, &mut self.scope);
        let result = catch_unwind(AssertUnwindSafe(|| {
            engine.eval_with_scope::<Dynamic>(scope, script)
        }));
        out.append(&mut self.printed.borrow_mut());
        let value = result?;
        let _ = match value {
            Ok(v) if v.is_unit() => Ok(()),
            Ok(v) => writeln!(out, "{v}"),
            // Whatever the error looks like by now (wrapped by a script function's call…).
            Err(_) if self.budget.expired.get() => writeln!(
                out,
                "eval: stopped after {}, the time limit (a loop or a sleep that does not \
                 end?); Options::eval_time_limit sets it",
                human(self.budget.limit)
            ),
            Err(e) => match *e {
                EvalAltResult::ErrorTooManyOperations(pos) => writeln!(
                    out,
                    "eval: stopped at {pos} after {} operations, the limit (a loop that does \
                     not end?); Options::max_operations sets it",
                    self.max_operations
                ),
                // A registered function's refusal reads as itself, not "Runtime error: …".
                EvalAltResult::ErrorRuntime(msg, pos) if msg.is_string() && !pos.is_none() => {
                    writeln!(out, "eval: {msg} ({pos})")
                }
                e => writeln!(out, "eval: {e}"),
            },
        };
        Ok(())
    }
}

fn seconds(d: std::time::Duration) -> FLOAT {
    d.as_secs_f64()
}

fn coro_map(info: &CoroInfo) -> Dynamic {
    let mut m = Map::new();
    m.insert("id".into(), (info.id as INT).into());
    m.insert("name".into(), info.name.clone().into());
    m.insert("state".into(), info.state.to_string().into());
    m.insert("reason".into(), info.reason.to_string().into());
    m.insert("waited".into(), seconds(info.waited).into());
    m.insert("slices".into(), (info.slices.count as INT).into());
    m.insert("max_slice".into(), seconds(info.slices.max).into());
    m.into()
}

fn coro(id: INT) -> Option<shrapnel_core::CoroRef> {
    u64::try_from(id).ok().and_then(crate::coro_by_id)
}

/// `interrupt`, `shutdown`, `wake_up`: refused for this session and a backdoor listener,
/// as the built-in commands refuse them; else whether the coroutine was alive.
fn lever(
    verb: &str,
    id: INT,
    pull: impl FnOnce(&shrapnel_core::CoroRef) -> bool,
) -> Result<bool, Box<EvalAltResult>> {
    if let Some(refusal) = u64::try_from(id)
        .ok()
        .and_then(|id| lever_refusal(verb, id))
    {
        return Err(script_error(refusal));
    }
    Ok(coro(id).is_some_and(|c| pull(&c)))
}

fn script_error(msg: String) -> Box<EvalAltResult> {
    msg.into()
}

fn register_builtins(engine: &mut Engine) {
    engine.register_fn("ps", || -> Array {
        shrapnel_core::where_all().iter().map(coro_map).collect()
    });
    engine.register_fn("top", |n: INT| -> Array {
        let mut all = shrapnel_core::where_all();
        all.sort_by(|a, b| b.slices.max.cmp(&a.slices.max).then(a.id.cmp(&b.id)));
        let n = usize::try_from(n).unwrap_or(0);
        all.iter().take(n).map(coro_map).collect()
    });
    engine.register_fn("live", || -> Array {
        crate::live_coros()
            .iter()
            .map(|c| Dynamic::from(c.id() as INT))
            .collect()
    });
    engine.register_fn("where_all", || crate::where_all().to_string());
    engine.register_fn(
        "where_is",
        |id: INT| -> Result<String, Box<EvalAltResult>> {
            match coro(id) {
                Some(c) => Ok(crate::where_is(&c).to_string()),
                None => Err(script_error(format!("no live coroutine #{id}"))),
            }
        },
    );
    engine.register_fn("stats", || -> Map {
        use shrapnel_core::sched;
        let st = sched::stats();
        let mut m = Map::new();
        m.insert("uptime".into(), seconds(sched::uptime()).into());
        m.insert("switches".into(), (st.switches as INT).into());
        m.insert("polls".into(), (st.polls as INT).into());
        m.insert("passes".into(), (st.passes as INT).into());
        m.insert("spawned".into(), (st.spawned as INT).into());
        m.insert("live".into(), (crate::live_coros().len() as INT).into());
        m.insert("run_queue".into(), (sched::run_queue_len() as INT).into());
        m.insert("timers".into(), (sched::timers_pending() as INT).into());
        m.insert(
            "sockets".into(),
            (crate::net::live_sockets().len() as INT).into(),
        );
        m
    });
    engine.register_fn("sockets", || -> Array {
        crate::net::live_sockets()
            .into_iter()
            .map(|s| {
                let mut m = Map::new();
                m.insert("fd".into(), (s.fd as INT).into());
                m.insert("kind".into(), format!("{:?}", s.kind).into());
                m.insert("local".into(), s.local.into());
                m.insert("peer".into(), s.peer.into());
                Dynamic::from(m)
            })
            .collect()
    });
    engine.register_fn("interrupt", |id: INT| {
        lever("interrupt", id, |c| c.interrupt(0))
    });
    engine.register_fn("interrupt", |id: INT, code: INT| {
        lever("interrupt", id, |c| c.interrupt(code as u64))
    });
    engine.register_fn("shutdown", |id: INT| {
        lever("shutdown", id, |c| c.shutdown())
    });
    engine.register_fn("wake_up", |id: INT| lever("wake_up", id, |c| c.wake_up()));
    engine.register_fn("selfishness", |n: INT| -> Result<INT, Box<EvalAltResult>> {
        let n = u32::try_from(n).map_err(|_| script_error(format!("bad count {n}")))?;
        crate::set_selfishness(n)
            .map(INT::from)
            .map_err(|e| script_error(e.to_string()))
    });
    #[cfg(feature = "latency")]
    {
        use shrapnel_core::latency::{latency_warning, set_latency_warning};
        engine.register_fn("latency", latency_warning);
        engine.register_fn(
            "set_latency",
            |f: FLOAT| -> Result<FLOAT, Box<EvalAltResult>> {
                set_latency_warning(f).map_err(|e| script_error(e.to_string()))
            },
        );
    }
}
