//! The built-in commands of the backdoor: each formats what the runtime knows (the core's
//! coroutine snapshots, scheduler counters, live sockets) as text for one session, or pulls
//! one of its levers (interrupt, shutdown, latency factor, selfishness).
//!
//! `ps`, `where`, `where_all`, `live`, `top`, `stats`, `sockets`, `interrupt` and
//! `shutdown` cover every scheduler of the process (`crate::schedulers`): each scheduler
//! answers in its own loop, and with more than one a `SCHED` column (or a heading) says
//! whose each line is. A scheduler that does not answer within 2 s is named in a note
//! instead of stalling the console.
//!
//! Tables have a header line and columns as wide as their widest value (with a minimum, so
//! the usual layout stays put); names and wait reasons longer than 24 and 20 characters are
//! cut with `…` (`where N` shows them whole).

use std::fmt::{self, Write as _};
use std::time::Duration;

use shrapnel_core::{CoroInfo, CoroRef};

use super::json::{self, Json};
use super::line::{Format, Request, BUILTINS};
use super::Shared;
use crate::net::{self, SocketInfo, SocketKind};
use crate::schedulers::{self, Answer};

/// How long a command waits for the other schedulers' answers.
const PATIENCE: Duration = Duration::from_secs(2);

/// What every scheduler answered to `ask`, tagged with its number, and a note line for
/// each one that did not answer; `multi` says whether the process has more than one
/// scheduler (then the output says whose each line is).
struct Gathered<T> {
    answers: Vec<(usize, T)>,
    notes: Vec<String>,
    multi: bool,
    /// Each answering scheduler's thread.
    threads: Vec<(usize, String)>,
}

impl<T> Gathered<T> {
    /// The thread of scheduler `number`.
    fn thread(&self, number: usize) -> &str {
        self.threads
            .iter()
            .find(|(n, _)| *n == number)
            .map_or("?", |(_, t)| t.as_str())
    }

    /// `scheduler 1 (thread shrapnel-core-1)`.
    fn heading(&self, number: usize) -> String {
        format!(
            "scheduler {} (thread {})",
            sched_label(number),
            self.thread(number)
        )
    }
}

fn gather<T, F>(ask: F) -> Gathered<T>
where
    T: Send + 'static,
    F: Fn() -> T + Send + Sync + 'static,
{
    let all = schedulers::ask_all(ask, PATIENCE);
    let multi = all.len() > 1;
    let mut g = Gathered {
        answers: Vec::new(),
        notes: Vec::new(),
        multi,
        threads: Vec::new(),
    };
    for Answer {
        number,
        thread,
        value,
    } in all
    {
        match value {
            Ok(v) => {
                g.answers.push((number, v));
                g.threads.push((number, thread));
            }
            Err(why) => g
                .notes
                .push(format!("scheduler {number} (thread {thread}): {why}")),
        }
    }
    g
}

/// A scheduler's number as the SCHED column shows it (`-` for one installed without the
/// runtime, which is not registered).
fn sched_label(number: usize) -> String {
    if number == schedulers::UNREGISTERED {
        "-".into()
    } else {
        number.to_string()
    }
}

/// Run a built-in command and return its output.
pub(crate) fn run(req: &Request<'_>, shared: &Shared) -> String {
    let mut out = String::new();
    let _ = match *req {
        Request::Help => help(&mut out, shared),
        Request::Ps(Format::Text) => ps(&mut out),
        Request::Ps(Format::Json) => ps_json(&mut out),
        Request::Where(id, Format::Text) => where_one(&mut out, id),
        Request::Where(id, Format::Json) => where_one_json(&mut out, id),
        Request::WhereAll(Format::Text) => where_all(&mut out),
        Request::WhereAll(Format::Json) => where_all_json(&mut out),
        Request::Live => live(&mut out),
        Request::Latency(factor) => latency(&mut out, factor),
        Request::Top(n, format) => top(&mut out, n, format),
        Request::Stats(Format::Text) => stats(&mut out, shared),
        Request::Stats(Format::Json) => stats_json(&mut out, shared),
        Request::Sockets(format) => sockets(&mut out, format),
        Request::Deadlocks(format) => deadlocks(&mut out, format),
        Request::Metrics => metrics(&mut out, shared),
        Request::Contention(n, format) => contention(&mut out, n, format),
        Request::Profile {
            seconds,
            folded,
            file,
        } => profile(&mut out, seconds, folded, file),
        Request::ContentionReset => each(
            &mut out,
            gather(|| {
                shrapnel_core::wait_profile::reset();
                "contention: counting afresh from now".to_string()
            }),
        ),
        Request::Interrupt { id, code } => lever(&mut out, "interrupt", id, move |c| {
            c.interrupt(code)
                .then(|| format!("its blocking call returns Interrupted::Interrupt({code})"))
        }),
        Request::Shutdown(id) => lever(&mut out, "shutdown", id, |c| {
            c.shutdown()
                .then(|| "its blocking call returns Interrupted::Shutdown".to_string())
        }),
        Request::Selfishness(n) => each(
            &mut out,
            gather(move || match crate::set_selfishness(n) {
                Ok(old) => format!("selfishness {n} (was {old})"),
                Err(e) => format!("selfishness: {e}; try `help`"),
            }),
        ),
        Request::Empty | Request::Quit | Request::Eval(_) | Request::Other { .. } => Ok(()),
    };
    out
}

/// `1.204s`.
pub(crate) fn secs(d: Duration) -> String {
    format!("{}.{:03}s", d.as_secs(), d.subsec_millis())
}

/// `10m`, `1h02m03s`, `250ms`: a duration as a person says it.
pub(crate) fn human(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, 0) => format!("{}ms", d.as_millis()),
        (0, 0, sec) => format!("{sec}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, sec) => format!("{m}m{sec:02}s"),
        (h, m, sec) => format!("{h}h{m:02}m{sec:02}s"),
    }
}

/// `text` cut to `width` characters, the last one `…` if it was longer.
fn cut(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut s: String = text.chars().take(width.saturating_sub(1)).collect();
    s.push('…');
    s
}

/// A column of a [`table`]: its header, which side its cells line up on, and its
/// narrowest width (so small tables keep a steady layout).
#[derive(Clone)]
struct Column {
    head: std::borrow::Cow<'static, str>,
    right: bool,
    min: usize,
}

impl Column {
    const fn left(head: &'static str, min: usize) -> Self {
        Column {
            head: std::borrow::Cow::Borrowed(head),
            right: false,
            min,
        }
    }

    const fn right(head: &'static str, min: usize) -> Self {
        Column {
            head: std::borrow::Cow::Borrowed(head),
            right: true,
            min,
        }
    }

    fn right_owned(head: String, min: usize) -> Self {
        Column {
            head: std::borrow::Cow::Owned(head),
            right: true,
            min,
        }
    }
}

/// A header line and `rows`, each column as wide as its widest cell or header (at least
/// its minimum), two spaces apart, without trailing blanks. Widths count characters.
fn table(out: &mut String, columns: &[Column], rows: &[Vec<String>]) -> fmt::Result {
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|cell| cell.chars().count())
                .fold(c.min.max(c.head.chars().count()), usize::max)
        })
        .collect();
    let header: Vec<String> = columns.iter().map(|c| c.head.to_string()).collect();
    let mut line = String::new();
    for row in std::iter::once(&header).chain(rows) {
        line.clear();
        for (i, ((cell, c), &w)) in row.iter().zip(columns).zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            if c.right {
                write!(line, "{cell:>w$}")?;
            } else {
                write!(line, "{cell:<w$}")?;
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

fn help(out: &mut String, shared: &Shared) -> fmt::Result {
    writeln!(out, "commands:")?;
    for (usage, what) in BUILTINS {
        if usage.starts_with("eval") && !cfg!(feature = "backdoor-script") {
            continue;
        }
        writeln!(out, "  {usage:<20} {what}")?;
    }
    let commands = shared.commands.borrow();
    if !commands.is_empty() {
        writeln!(out, "application commands:")?;
        for (name, c) in commands.iter() {
            writeln!(out, "  {name:<20} {}", c.help)?;
        }
    }
    Ok(())
}

/// The slice columns: counts and times with feature `latency`, `-` without.
fn slice_cells(info: &CoroInfo) -> (String, String) {
    if cfg!(feature = "latency") {
        (info.slices.count.to_string(), secs(info.slices.max))
    } else {
        ("-".into(), "-".into())
    }
}

/// Every scheduler's coroutine snapshots, each tagged with its scheduler, in id order.
fn all_coros() -> Gathered<Vec<CoroInfo>> {
    gather(shrapnel_core::where_all)
}

/// `rows` (each starting with the id cell) with the scheduler's number as the second cell,
/// and `columns` with the SCHED column there, when the process has several schedulers.
fn with_sched_column(
    multi: bool,
    columns: &[Column],
    rows: Vec<(usize, Vec<String>)>,
) -> (Vec<Column>, Vec<Vec<String>>) {
    let mut columns: Vec<Column> = columns.to_vec();
    if multi {
        columns.insert(1, Column::right("SCHED", 5));
    }
    let rows = rows
        .into_iter()
        .map(|(number, mut cells)| {
            if multi {
                cells.insert(1, sched_label(number));
            }
            cells
        })
        .collect();
    (columns, rows)
}

/// One line per scheduler (`scheduler 1 (thread …): …` when there are several), then the
/// notes.
fn each(out: &mut String, g: Gathered<String>) -> fmt::Result {
    for (number, line) in &g.answers {
        if g.multi {
            writeln!(out, "{}: {line}", g.heading(*number))?;
        } else {
            writeln!(out, "{line}")?;
        }
    }
    notes(out, &g.notes)
}

/// The notes of schedulers that did not answer, after a command's output.
fn notes(out: &mut String, notes: &[String]) -> fmt::Result {
    for n in notes {
        writeln!(out, "note: {n}")?;
    }
    Ok(())
}

fn ps(out: &mut String) -> fmt::Result {
    let g = all_coros();
    let mut coros: Vec<(usize, CoroInfo)> = g
        .answers
        .into_iter()
        .flat_map(|(n, list)| list.into_iter().map(move |c| (n, c)))
        .collect();
    coros.sort_by_key(|(_, c)| c.id);
    ps_table(out, g.multi, &coros)?;
    notes(out, &g.notes)
}

/// `mutex (held by #7)`, `rwlock (write) (held by 3 readers)`, `join #12`.
fn wait_cell(info: &CoroInfo) -> String {
    match &info.held_by {
        Some(shrapnel_core::HeldBy::Coro { id, .. })
            if !matches!(info.reason, shrapnel_core::WaitReason::Join(_)) =>
        {
            format!("{} (held by #{id})", info.reason)
        }
        Some(shrapnel_core::HeldBy::Readers(n)) => format!("{} (held by {n} readers)", info.reason),
        _ => info.reason.to_string(),
    }
}

/// `{"coroutines": [...], "notes": [...]}` on one line.
fn coroutines_doc(out: &mut String, coros: Vec<Json>, notes: &[String]) -> fmt::Result {
    let doc = Json::Obj(vec![("coroutines", Json::Arr(coros)), json::notes(notes)]);
    writeln!(out, "{doc}")
}

fn ps_json(out: &mut String) -> fmt::Result {
    let g = all_coros();
    let mut coros: Vec<(usize, CoroInfo)> = g
        .answers
        .into_iter()
        .flat_map(|(n, list)| list.into_iter().map(move |c| (n, c)))
        .collect();
    coros.sort_by_key(|(_, c)| c.id);
    let list = coros.iter().map(|(n, c)| json::coro(c, *n, None)).collect();
    coroutines_doc(out, list, &g.notes)
}

fn where_all_json(out: &mut String) -> fmt::Result {
    let g = gather(|| crate::where_all().0);
    let mut all: Vec<(usize, crate::Where)> = g
        .answers
        .into_iter()
        .flat_map(|(n, list)| list.into_iter().map(move |w| (n, w)))
        .collect();
    all.sort_by_key(|(_, w)| w.info.id);
    let list = all
        .iter()
        .map(|(n, w)| json::coro(&w.info, *n, Some(&w.stack)))
        .collect();
    coroutines_doc(out, list, &g.notes)
}

fn where_one_json(out: &mut String, id: u64) -> fmt::Result {
    let g = gather(move || crate::coro_by_id(id).map(|c| crate::where_is(&c)));
    let found = g
        .answers
        .iter()
        .find_map(|(n, w)| Some(json::coro(&w.as_ref()?.info, *n, Some(&w.as_ref()?.stack))));
    let doc = Json::Obj(vec![
        ("coroutine", found.unwrap_or(Json::Null)),
        json::notes(&g.notes),
    ]);
    writeln!(out, "{doc}")
}

fn ps_table(out: &mut String, multi: bool, coros: &[(usize, CoroInfo)]) -> fmt::Result {
    const COLUMNS: &[Column] = &[
        Column::right("ID", 4),
        Column::left("NAME", 24),
        Column::left("STATE", 9),
        Column::left("WAIT", 20),
        Column::right("WAITED", 9),
        Column::right("SLICES", 6),
        Column::right("MAX SLICE", 10),
    ];
    let rows = coros
        .iter()
        .map(|(number, info)| {
            let (count, max) = slice_cells(info);
            let cells = vec![
                info.id.to_string(),
                cut(&info.name, 24),
                info.state.to_string(),
                cut(&wait_cell(info), 28),
                secs(info.waited),
                count,
                max,
            ];
            (*number, cells)
        })
        .collect();
    let (columns, rows) = with_sched_column(multi, COLUMNS, rows);
    table(out, &columns, &rows)
}

fn no_such(out: &mut String, verb: &str, id: u64) -> fmt::Result {
    writeln!(out, "{verb}: no live coroutine #{id} (see `ps`)")
}

fn where_one(out: &mut String, id: u64) -> fmt::Result {
    let g = gather(move || crate::coro_by_id(id).map(|c| crate::where_is(&c).to_string()));
    let found = g.answers.iter().find_map(|(n, w)| Some((*n, w.as_ref()?)));
    match found {
        Some((number, w)) if g.multi => writeln!(out, "{}:\n{w}", g.heading(number)),
        Some((_, w)) => writeln!(out, "{w}"),
        None => no_such(out, "where", id),
    }?;
    notes(out, &g.notes)
}

fn where_all(out: &mut String) -> fmt::Result {
    let g = gather(|| crate::where_all().to_string());
    for (number, text) in &g.answers {
        if g.multi {
            writeln!(out, "{}:", g.heading(*number))?;
        }
        write!(out, "{text}")?;
    }
    notes(out, &g.notes)
}

fn live(out: &mut String) -> fmt::Result {
    let g = gather(|| {
        crate::live_coros()
            .iter()
            .map(|c| (c.id(), c.name().to_string()))
            .collect::<Vec<_>>()
    });
    let mut coros: Vec<(usize, u64, String)> = g
        .answers
        .into_iter()
        .flat_map(|(n, list)| list.into_iter().map(move |(id, name)| (n, id, name)))
        .collect();
    coros.sort_by_key(|c| c.1);
    writeln!(out, "{} live coroutines", coros.len())?;
    let w = coros
        .iter()
        .map(|c| c.1.to_string().len())
        .fold(4, usize::max);
    for (number, id, name) in coros {
        if g.multi {
            writeln!(out, "{id:>w$}  {name} (scheduler {})", sched_label(number))?;
        } else {
            writeln!(out, "{id:>w$}  {name}")?;
        }
    }
    notes(out, &g.notes)
}

#[cfg(feature = "latency")]
fn latency(out: &mut String, factor: Option<f64>) -> fmt::Result {
    use shrapnel_core::latency::{latency_warning, set_latency_warning, BASE_THRESHOLD};
    let describe = |f: f64| {
        if f == 0.0 {
            "off (factor 0)".to_string()
        } else {
            format!(
                "factor {f} (slices over {} are reported)",
                secs(BASE_THRESHOLD.mul_f64(f))
            )
        }
    };
    if let Some(f) = factor {
        // Refused before any scheduler changes.
        if !(0.0..=shrapnel_core::latency::MAX_FACTOR).contains(&f) {
            let e = shrapnel_core::latency::LatencyFactorError(f);
            return writeln!(out, "latency: {e}; try `help`");
        }
    }
    each(
        out,
        gather(move || match factor {
            None => format!("latency warning {}", describe(latency_warning())),
            Some(f) => match set_latency_warning(f) {
                Ok(old) => format!("latency warning {}; was {old}", describe(f)),
                Err(e) => format!("latency: {e}; try `help`"),
            },
        }),
    )
}

#[cfg(not(feature = "latency"))]
fn latency(out: &mut String, _factor: Option<f64>) -> fmt::Result {
    writeln!(
        out,
        "latency: slices are not timed in this build (feature `latency` of shrapnel is off)"
    )
}

fn top(out: &mut String, n: usize, format: Format) -> fmt::Result {
    if !cfg!(feature = "latency") && format == Format::Text {
        return writeln!(
            out,
            "top: slices are not timed in this build (feature `latency` of shrapnel is off)"
        );
    }
    let g = all_coros();
    let mut all: Vec<(usize, CoroInfo)> = g
        .answers
        .into_iter()
        .flat_map(|(n, list)| list.into_iter().map(move |c| (n, c)))
        .collect();
    all.sort_by(|(_, a), (_, b)| b.slices.max.cmp(&a.slices.max).then(a.id.cmp(&b.id)));
    if format == Format::Json {
        let list = all
            .iter()
            .take(n)
            .map(|(number, c)| json::coro(c, *number, None))
            .collect();
        return coroutines_doc(out, list, &g.notes);
    }
    const COLUMNS: &[Column] = &[
        Column::right("ID", 4),
        Column::left("NAME", 24),
        Column::right("MAX SLICE", 10),
        Column::right("SLICES", 8),
        Column::right("TOTAL", 10),
        Column::right("MEAN", 10),
    ];
    let rows = all
        .iter()
        .take(n)
        .map(|(number, info)| {
            let s = info.slices;
            let mean = match u32::try_from(s.count) {
                Ok(c) if c > 0 => s.total / c,
                _ => Duration::ZERO,
            };
            let cells = vec![
                info.id.to_string(),
                cut(&info.name, 24),
                secs(s.max),
                s.count.to_string(),
                secs(s.total),
                secs(mean),
            ];
            (*number, cells)
        })
        .collect();
    let (columns, rows) = with_sched_column(g.multi, COLUMNS, rows);
    table(out, &columns, &rows)?;
    notes(out, &g.notes)
}

/// One scheduler's counters.
struct SchedulerStats {
    uptime: Duration,
    core: shrapnel_core::sched::Stats,
    /// Live coroutines by state: new, scheduled, running, blocked.
    states: [(&'static str, usize); 4],
    run_queue: usize,
    timers_pending: usize,
    live_sockets: usize,
    fds_registered: usize,
    eagain: u64,
    /// Slices over the latency threshold (feature `latency`).
    slow_slices: Option<u64>,
}

impl SchedulerStats {
    /// This thread's scheduler's, now.
    fn here() -> Self {
        use shrapnel_core::sched;
        let mut states = [("new", 0), ("scheduled", 0), ("running", 0), ("blocked", 0)];
        for c in crate::live_coros() {
            let k = match c.state() {
                shrapnel_core::State::NotStarted => 0,
                shrapnel_core::State::Ready => 1,
                shrapnel_core::State::Running => 2,
                _ => 3,
            };
            states[k].1 += 1;
        }
        SchedulerStats {
            uptime: sched::uptime(),
            core: sched::stats(),
            states,
            run_queue: sched::run_queue_len(),
            timers_pending: sched::timers_pending(),
            live_sockets: net::live_sockets().len(),
            fds_registered: shrapnel_core::io::registered(),
            eagain: shrapnel_core::io::would_block_count(),
            slow_slices: slow_slices(),
        }
    }

    fn live(&self) -> usize {
        self.states.iter().map(|(_, n)| n).sum()
    }

    /// The rows `stats` shows.
    fn rows(&self) -> Vec<(&'static str, String)> {
        vec![
            ("uptime", secs(self.uptime)),
            ("switches", self.core.switches.to_string()),
            ("polls", self.core.polls.to_string()),
            ("loop passes", self.core.passes.to_string()),
            ("spawned", self.core.spawned.to_string()),
            ("live coroutines", self.live().to_string()),
            ("run queue", self.run_queue.to_string()),
            ("timers pending", self.timers_pending.to_string()),
            ("live sockets", self.live_sockets.to_string()),
            ("fds registered", self.fds_registered.to_string()),
            ("EAGAIN syscalls", self.eagain.to_string()),
        ]
    }
}

#[cfg(feature = "latency")]
fn slow_slices() -> Option<u64> {
    Some(crate::latency::slow_slices())
}

#[cfg(not(feature = "latency"))]
fn slow_slices() -> Option<u64> {
    None
}

fn stats_json(out: &mut String, shared: &Shared) -> fmt::Result {
    let g = gather(SchedulerStats::here);
    let pool = crate::blocking::pool_stats();
    let schedulers = g
        .answers
        .iter()
        .map(|(n, st)| {
            Json::Obj(vec![
                ("scheduler", json::scheduler(*n)),
                ("thread", g.thread(*n).into()),
                ("uptime_s", st.uptime.into()),
                ("switches", st.core.switches.into()),
                ("polls", st.core.polls.into()),
                ("passes", st.core.passes.into()),
                ("spawned", st.core.spawned.into()),
                ("live_coroutines", st.live().into()),
                ("run_queue", st.run_queue.into()),
                ("timers_pending", st.timers_pending.into()),
                ("live_sockets", st.live_sockets.into()),
                ("fds_registered", st.fds_registered.into()),
                ("eagain", st.eagain.into()),
            ])
        })
        .collect();
    let doc = Json::Obj(vec![
        ("schedulers", Json::Arr(schedulers)),
        (
            "blocking_pool",
            Json::Obj(vec![
                ("threads", pool.threads.into()),
                ("busy", pool.busy.into()),
                ("max_threads", crate::blocking::pool_config().threads.into()),
                ("queued", pool.queued.into()),
                ("completed", pool.completed.into()),
                ("refused", pool.refused.into()),
            ]),
        ),
        (
            "backdoor",
            Json::Obj(vec![
                ("sessions", shared.sessions.get().into()),
                ("pending_logins", shared.pending_logins.get().into()),
            ]),
        ),
        json::notes(&g.notes),
    ]);
    writeln!(out, "{doc}")
}

/// `metrics`: every scheduler's counters and gauges, and the process's, in the Prometheus
/// text exposition format (labels `scheduler` and `state`).
fn metrics(out: &mut String, shared: &Shared) -> fmt::Result {
    let g = gather(SchedulerStats::here);
    type Metric = (
        &'static str,
        &'static str,
        &'static str,
        fn(&SchedulerStats) -> u64,
    );
    const PER_SCHEDULER: &[Metric] = &[
        (
            "shrapnel_uptime_seconds",
            "gauge",
            "Seconds since the scheduler started.",
            |s| s.uptime.as_secs(),
        ),
        (
            "shrapnel_switches_total",
            "counter",
            "Context switches into coroutines.",
            |s| s.core.switches,
        ),
        (
            "shrapnel_polls_total",
            "counter",
            "Calls to the poller.",
            |s| s.core.polls,
        ),
        (
            "shrapnel_loop_passes_total",
            "counter",
            "Passes of the event loop.",
            |s| s.core.passes,
        ),
        (
            "shrapnel_spawned_total",
            "counter",
            "Coroutines spawned.",
            |s| s.core.spawned,
        ),
        (
            "shrapnel_run_queue",
            "gauge",
            "Coroutines ready to run.",
            |s| s.run_queue as u64,
        ),
        ("shrapnel_timers_pending", "gauge", "Timers pending.", |s| {
            s.timers_pending as u64
        }),
        ("shrapnel_live_sockets", "gauge", "Open sockets.", |s| {
            s.live_sockets as u64
        }),
        (
            "shrapnel_fds_registered",
            "gauge",
            "File descriptors registered with the poller.",
            |s| s.fds_registered as u64,
        ),
        (
            "shrapnel_eagain_total",
            "counter",
            "System calls that returned EAGAIN.",
            |s| s.eagain,
        ),
        (
            "shrapnel_stack_copies_total",
            "counter",
            "Shared-stack frame copies.",
            |s| s.core.stack_copies,
        ),
    ];
    let label = |n: usize| format!("scheduler=\"{}\"", sched_label(n));
    writeln!(out, "# HELP shrapnel_coroutines Live coroutines by state.")?;
    writeln!(out, "# TYPE shrapnel_coroutines gauge")?;
    for (n, st) in &g.answers {
        for (state, count) in st.states {
            writeln!(
                out,
                "shrapnel_coroutines{{{},state=\"{state}\"}} {count}",
                label(*n)
            )?;
        }
    }
    for (name, kind, help, value) in PER_SCHEDULER {
        writeln!(out, "# HELP {name} {help}")?;
        writeln!(out, "# TYPE {name} {kind}")?;
        for (n, st) in &g.answers {
            writeln!(out, "{name}{{{}}} {}", label(*n), value(st))?;
        }
    }
    if g.answers.iter().any(|(_, st)| st.slow_slices.is_some()) {
        let name = "shrapnel_slow_slices_total";
        writeln!(
            out,
            "# HELP {name} Slices over the latency warning's threshold."
        )?;
        writeln!(out, "# TYPE {name} counter")?;
        for (n, st) in &g.answers {
            writeln!(
                out,
                "{name}{{{}}} {}",
                label(*n),
                st.slow_slices.unwrap_or(0)
            )?;
        }
    }
    let pool = crate::blocking::pool_stats();
    let process: [(&str, &str, &str, u64); 7] = [
        (
            "shrapnel_blocking_threads",
            "gauge",
            "Threads of the blocking pool.",
            pool.threads as u64,
        ),
        (
            "shrapnel_blocking_busy",
            "gauge",
            "Blocking-pool threads running a closure.",
            pool.busy as u64,
        ),
        (
            "shrapnel_blocking_queued",
            "gauge",
            "Closures waiting for a blocking-pool thread.",
            pool.queued as u64,
        ),
        (
            "shrapnel_blocking_completed_total",
            "counter",
            "Blocking-pool closures finished.",
            pool.completed,
        ),
        (
            "shrapnel_blocking_refused_total",
            "counter",
            "Blocking calls refused (queue full).",
            pool.refused,
        ),
        (
            "shrapnel_backdoor_sessions",
            "gauge",
            "Open backdoor sessions.",
            shared.sessions.get() as u64,
        ),
        (
            "shrapnel_schedulers",
            "gauge",
            "Schedulers that answered.",
            g.answers.len() as u64,
        ),
    ];
    for (name, kind, help, value) in process {
        writeln!(out, "# HELP {name} {help}")?;
        writeln!(out, "# TYPE {name} {kind}")?;
        writeln!(out, "{name} {value}")?;
    }
    // A scheduler that did not answer: a comment line, which scrapers ignore.
    for n in &g.notes {
        writeln!(out, "# note: {n}")?;
    }
    Ok(())
}

fn stats(out: &mut String, shared: &Shared) -> fmt::Result {
    let g = gather(|| SchedulerStats::here().rows());
    let pool = crate::blocking::pool_stats();
    let process: [(&str, String); 4] = [
        (
            "blocking threads",
            format!(
                "{} ({} busy, at most {})",
                pool.threads,
                pool.busy,
                crate::blocking::pool_config().threads
            ),
        ),
        (
            "blocking queue",
            format!(
                "{} ({} done, {} refused)",
                pool.queued, pool.completed, pool.refused
            ),
        ),
        ("backdoor sessions", shared.sessions.get().to_string()),
        ("backdoor logins", shared.pending_logins.get().to_string()),
    ];
    if g.multi {
        // A column per scheduler.
        let mut columns = vec![Column::left("", 18)];
        let heads: Vec<String> = g
            .answers
            .iter()
            .map(|(n, _)| format!("sched {}", sched_label(*n)))
            .collect();
        columns.extend(heads.iter().map(|h| Column::right_owned(h.clone(), 8)));
        let labels = g.answers.first().map(|(_, rows)| rows.len()).unwrap_or(0);
        let rows: Vec<Vec<String>> = (0..labels)
            .map(|i| {
                let mut row = vec![g.answers[0].1[i].0.to_string()];
                row.extend(g.answers.iter().map(|(_, r)| r[i].1.clone()));
                row
            })
            .collect();
        table(out, &columns, &rows)?;
    } else {
        for (k, v) in g.answers.iter().flat_map(|(_, rows)| rows) {
            writeln!(out, "{k:<18} {v}")?;
        }
    }
    for (k, v) in process {
        writeln!(out, "{k:<18} {v}")?;
    }
    notes(out, &g.notes)
}

/// One scheduler's deadlocks, each member as `where N` shows it, and how many of its
/// coroutines are blocked.
fn scheduler_deadlocks() -> (Vec<Vec<crate::Where>>, usize) {
    let cycles = shrapnel_core::wait_for::deadlocks()
        .into_iter()
        .map(|cycle| {
            cycle
                .into_iter()
                .map(|c| match crate::coro_by_id(c.id) {
                    Some(r) => crate::where_is(&r),
                    None => crate::Where {
                        info: c,
                        stack: Vec::new(),
                    },
                })
                .collect()
        })
        .collect();
    let blocked = shrapnel_core::where_all()
        .iter()
        .filter(|c| c.state == shrapnel_core::State::Blocked)
        .count();
    (cycles, blocked)
}

fn deadlocks(out: &mut String, format: Format) -> fmt::Result {
    let g = gather(scheduler_deadlocks);
    if format == Format::Json {
        let mut list = Vec::new();
        let mut blocked = 0usize;
        for (number, (cycles, b)) in &g.answers {
            blocked += b;
            for cycle in cycles {
                let members = cycle
                    .iter()
                    .map(|w| json::coro(&w.info, *number, Some(&w.stack)))
                    .collect();
                list.push(Json::Obj(vec![
                    ("scheduler", json::scheduler(*number)),
                    ("members", Json::Arr(members)),
                ]));
            }
        }
        let doc = Json::Obj(vec![
            ("deadlocks", Json::Arr(list)),
            ("blocked", blocked.into()),
            json::notes(&g.notes),
        ]);
        return writeln!(out, "{doc}");
    }
    let mut found = 0;
    let mut blocked = 0;
    for (number, (cycles, b)) in &g.answers {
        blocked += b;
        for cycle in cycles {
            found += 1;
            let whose = if g.multi {
                format!(" on {}", g.heading(*number))
            } else {
                String::new()
            };
            writeln!(
                out,
                "deadlock {found}{whose}: {} coroutines, each waiting for the next:",
                cycle.len()
            )?;
            for member in cycle {
                for line in member.to_string().lines() {
                    writeln!(out, "  {line}")?;
                }
            }
        }
    }
    if found == 0 {
        writeln!(
            out,
            "no deadlock among {blocked} blocked coroutines (looked at mutex owners, rwlock \
             writers and joins)"
        )?;
    }
    notes(out, &g.notes)
}

/// `profile`: start a CPU profile on every scheduler, sleep, stop them all, report.
fn profile(out: &mut String, seconds: u64, folded: bool, file: Option<&str>) -> fmt::Result {
    let duration = Duration::from_secs(seconds);
    let started = gather(move || crate::profile::start(duration).err().map(|e| e.to_string()));
    let mut notes_all = started.notes.clone();
    for (n, err) in &started.answers {
        if let Some(e) = err {
            notes_all.push(format!("{}: {e}", started.heading(*n)));
        }
    }
    if started.answers.iter().all(|(_, e)| e.is_some()) {
        return notes(out, &notes_all);
    }
    let slept = crate::sleep(duration);
    let stopped = gather(crate::profile::stop);
    notes_all.extend(stopped.notes.iter().cloned());
    let mut p = crate::profile::Profile::default();
    for (n, taken) in stopped.answers {
        if let Some((raw, dropped, took)) = taken {
            p.dropped += dropped;
            p.duration = p.duration.max(took);
            p.add((n != schedulers::UNREGISTERED).then_some(n), raw);
        }
    }
    if let Err(i) = slept {
        notes_all.push(format!("the wait was cut short: {i}"));
    }
    if !folded {
        write!(out, "{}", p.report(15))?;
    } else {
        let text = p.folded();
        match file {
            None => write!(out, "{text}")?,
            Some(path) => match std::fs::write(path, &text) {
                Ok(()) => writeln!(
                    out,
                    "profile: wrote {} stacks ({} samples) to {path}",
                    text.lines().count(),
                    p.samples.len()
                )?,
                Err(e) => writeln!(out, "profile: cannot write {path}: {e}")?,
            },
        }
    }
    notes(out, &notes_all)
}

/// `contention [N]`: the blocking profile of every scheduler, merged by place and kind,
/// the longest total wait first.
fn contention(out: &mut String, n: usize, format: Format) -> fmt::Result {
    let g = gather(shrapnel_core::wait_profile::contention);
    let mut merged: Vec<shrapnel_core::wait_profile::Contention> = Vec::new();
    for (_, list) in g.answers {
        for e in list {
            match merged
                .iter_mut()
                .find(|m| m.kind == e.kind && std::ptr::eq(m.location, e.location))
            {
                Some(m) => {
                    m.count += e.count;
                    m.total += e.total;
                    m.max = m.max.max(e.max);
                }
                None => merged.push(e),
            }
        }
    }
    merged.sort_by(|a, b| b.total.cmp(&a.total).then(b.count.cmp(&a.count)));
    merged.truncate(n);
    let place = |e: &shrapnel_core::wait_profile::Contention| {
        format!("{}:{}", e.location.file(), e.location.line())
    };
    if format == Format::Json {
        let list = merged
            .iter()
            .map(|e| {
                Json::Obj(vec![
                    ("kind", e.kind.into()),
                    ("location", place(e).into()),
                    ("count", e.count.into()),
                    ("total_s", e.total.into()),
                    ("max_s", e.max.into()),
                ])
            })
            .collect();
        let doc = Json::Obj(vec![("contention", Json::Arr(list)), json::notes(&g.notes)]);
        return writeln!(out, "{doc}");
    }
    const COLUMNS: &[Column] = &[
        Column::right("WAITS", 6),
        Column::right("TOTAL", 9),
        Column::right("MAX", 9),
        Column::left("KIND", 14),
        Column::left("WHERE", 0),
    ];
    let rows: Vec<Vec<String>> = merged
        .iter()
        .map(|e| {
            vec![
                e.count.to_string(),
                secs(e.total),
                secs(e.max),
                e.kind.to_string(),
                place(e),
            ]
        })
        .collect();
    if rows.is_empty() {
        writeln!(
            out,
            "contention: no waits recorded yet (sleeps are not counted)"
        )?;
    } else {
        table(out, COLUMNS, &rows)?;
    }
    notes(out, &g.notes)
}

fn kind_name(k: SocketKind) -> &'static str {
    match k {
        SocketKind::TcpListener => "tcp listener",
        SocketKind::TcpStream => "tcp",
        SocketKind::UnixListener => "unix listener",
        SocketKind::UnixStream => "unix",
        SocketKind::Udp => "udp",
        SocketKind::UnixDatagram => "unix datagram",
    }
}

fn sockets(out: &mut String, format: Format) -> fmt::Result {
    const COLUMNS: &[Column] = &[
        Column::right("FD", 4),
        Column::left("KIND", 13),
        Column::left("LOCAL", 28),
        Column::left("PEER", 0),
    ];
    let g = gather(net::live_sockets);
    let mut all: Vec<(usize, SocketInfo)> = g
        .answers
        .into_iter()
        .flat_map(|(n, list)| list.into_iter().map(move |s| (n, s)))
        .collect();
    all.sort_by_key(|(_, s)| s.fd);
    if format == Format::Json {
        let list = all
            .iter()
            .map(|(n, s)| {
                Json::Obj(vec![
                    ("fd", Json::Int(s.fd.into())),
                    ("kind", kind_name(s.kind).into()),
                    ("local", s.local.as_str().into()),
                    ("peer", s.peer.as_str().into()),
                    ("scheduler", json::scheduler(*n)),
                ])
            })
            .collect();
        let doc = Json::Obj(vec![("sockets", Json::Arr(list)), json::notes(&g.notes)]);
        return writeln!(out, "{doc}");
    }
    let rows = all
        .into_iter()
        .map(|(n, s)| {
            let cells = vec![s.fd.to_string(), kind_name(s.kind).into(), s.local, s.peer];
            (n, cells)
        })
        .collect();
    let (columns, rows) = with_sched_column(g.multi, COLUMNS, rows);
    table(out, &columns, &rows)?;
    notes(out, &g.notes)
}

/// Why a session must not pull `verb` on coroutine `id`, if it must not: `id` is the
/// session itself (its next read would fail and end it) or a backdoor's listener (the
/// console would be gone). The built-in commands and `eval`'s functions both ask.
pub(crate) fn lever_refusal(verb: &str, id: u64) -> Option<String> {
    if crate::current().is_some_and(|me| me.id() == id) {
        return Some(format!(
            "{verb}: #{id} is this backdoor session; use `quit` to leave"
        ));
    }
    if super::server::is_listener(id) {
        return Some(format!(
            "{verb}: #{id} is the backdoor's listener; stopping it would close the backdoor \
             (the application can call Backdoor::close)"
        ));
    }
    None
}

/// `interrupt` / `shutdown`: refuse this session's own coroutine and a listener, then
/// pull the lever on whichever scheduler has the coroutine (in that scheduler's loop).
fn lever(
    out: &mut String,
    verb: &str,
    id: u64,
    pull: impl Fn(&CoroRef) -> Option<String> + Send + Sync + 'static,
) -> fmt::Result {
    if let Some(refusal) = lever_refusal(verb, id) {
        return writeln!(out, "{refusal}");
    }
    let g = gather(move || {
        let c = crate::coro_by_id(id)?;
        let name = c.name().to_string();
        Some((name, pull(&c)))
    });
    let found = g.answers.into_iter().find_map(|(n, r)| Some((n, r?)));
    let whose = |n: usize| {
        if g.multi {
            format!(" (scheduler {})", sched_label(n))
        } else {
            String::new()
        }
    };
    match found {
        None => no_such(out, verb, id),
        Some((n, (name, Some(effect)))) => {
            writeln!(out, "{verb} #{id} '{name}'{}: {effect}", whose(n))
        }
        Some((n, (name, None))) => {
            writeln!(
                out,
                "{verb}: #{id} '{name}'{} has already finished",
                whose(n)
            )
        }
    }?;
    notes(out, &g.notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shrapnel_core::State;

    #[test]
    fn durations_read_like_a_person_says_them() {
        assert_eq!(secs(Duration::from_millis(1204)), "1.204s");
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_secs(600)), "10m");
        assert_eq!(human(Duration::from_secs(3723)), "1h02m03s");
        assert_eq!(human(Duration::from_secs(75)), "1m15s");
    }

    fn info(id: u64, name: &str, waited: Duration, slices: u64) -> CoroInfo {
        CoroInfo {
            id,
            name: name.into(),
            state: State::Blocked,
            reason: shrapnel_core::WaitReason::Yield,
            waited,
            sleep_left: None,
            blocked_at: None,
            stack_size: 0,
            slices: shrapnel_core::debug::SliceStats {
                count: slices,
                total: Duration::ZERO,
                max: Duration::from_millis(1),
            },
            frames: Vec::new(),
            held_by: None,
        }
    }

    #[test]
    fn ps_columns_fit_the_widest_value() {
        let mut out = String::new();
        ps_table(
            &mut out,
            false,
            &[
                (0, info(7, "small", Duration::from_millis(5), 3)),
                (
                    0,
                    info(123_456, "big", Duration::from_secs(1_000_000), 12_345_678),
                ),
            ],
        )
        .unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        // Each column as wide as its widest cell: the id column is 6 wide, the waited
        // column 12 ("1000000.000s"), and every line ends at the same place.
        assert!(lines[0].starts_with("    ID  NAME "), "{out}");
        assert!(lines[1].starts_with("     7  small "), "{out}");
        assert!(lines[2].starts_with("123456  big "), "{out}");
        assert_eq!(
            lines[1].find("0.005s").map(|i| i + 6),
            lines[2].find("1000000.000s").map(|i| i + 12),
            "{out}"
        );
        let widths: Vec<usize> = lines.iter().map(|l| l.chars().count()).collect();
        assert!(widths.iter().all(|&w| w == widths[0]), "{widths:?}\n{out}");
    }

    #[test]
    fn cut_marks_what_it_cut() {
        assert_eq!(cut("sleeper", 24), "sleeper");
        assert_eq!(cut("abcdef", 4), "abc…");
    }
}
