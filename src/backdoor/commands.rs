//! The built-in commands of the backdoor: each formats what the runtime knows (the core's
//! coroutine snapshots, scheduler counters, live sockets) as text for one session, or pulls
//! one of its levers (interrupt, shutdown, latency factor, selfishness).
//!
//! Tables have a header line and fixed-width columns; names and wait reasons longer than
//! their column are cut with `…` (`where N` shows them whole).

use std::fmt::{self, Write as _};
use std::time::Duration;

use shrapnel_core::{CoroInfo, CoroRef, State};

use super::line::{Request, BUILTINS};
use super::Shared;
use crate::net::{self, SocketKind};

/// Run a built-in command and return its output.
pub(crate) fn run(req: &Request<'_>, shared: &Shared) -> String {
    let mut out = String::new();
    let _ = match *req {
        Request::Help => help(&mut out, shared),
        Request::Ps => ps(&mut out),
        Request::Where(id) => where_one(&mut out, id),
        Request::WhereAll => write!(out, "{}", crate::where_all()),
        Request::Live => live(&mut out),
        Request::Latency(factor) => latency(&mut out, factor),
        Request::Top(n) => top(&mut out, n),
        Request::Stats => stats(&mut out, shared),
        Request::Sockets => sockets(&mut out),
        Request::Interrupt { id, code } => lever(&mut out, "interrupt", id, |c| {
            c.interrupt(code)
                .then(|| format!("its blocking call returns Interrupted::Interrupt({code})"))
        }),
        Request::Shutdown(id) => lever(&mut out, "shutdown", id, |c| {
            c.shutdown()
                .then(|| "its blocking call returns Interrupted::Shutdown".to_string())
        }),
        Request::Selfishness(n) => match crate::set_selfishness(n) {
            Ok(old) => writeln!(out, "selfishness {n} (was {old})"),
            Err(e) => writeln!(out, "selfishness: {e}; try `help`"),
        },
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

pub(crate) fn state_name(s: State) -> &'static str {
    match s {
        State::NotStarted => "new",
        State::Ready => "scheduled",
        State::Running => "running",
        State::Blocked => "blocked",
        State::Dead => "dead",
    }
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

fn ps(out: &mut String) -> fmt::Result {
    writeln!(
        out,
        "{:>4}  {:<24}  {:<9}  {:<20}  {:>9}  {:>6}  {:>10}",
        "ID", "NAME", "STATE", "WAIT", "WAITED", "SLICES", "MAX SLICE"
    )?;
    for info in shrapnel_core::where_all() {
        let (count, max) = slice_cells(&info);
        writeln!(
            out,
            "{:>4}  {:<24}  {:<9}  {:<20}  {:>9}  {:>6}  {:>10}",
            info.id,
            cut(&info.name, 24),
            state_name(info.state),
            cut(&info.reason.to_string(), 20),
            secs(info.waited),
            count,
            max
        )?;
    }
    Ok(())
}

fn no_such(out: &mut String, verb: &str, id: u64) -> fmt::Result {
    writeln!(out, "{verb}: no live coroutine #{id} (see `ps`)")
}

fn where_one(out: &mut String, id: u64) -> fmt::Result {
    match crate::coro_by_id(id) {
        Some(c) => writeln!(out, "{}", crate::where_is(&c)),
        None => no_such(out, "where", id),
    }
}

fn live(out: &mut String) -> fmt::Result {
    let coros = crate::live_coros();
    writeln!(out, "{} live coroutines", coros.len())?;
    for c in coros {
        writeln!(out, "{:>4}  {}", c.id(), c.name())?;
    }
    Ok(())
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
    match factor {
        None => writeln!(out, "latency warning {}", describe(latency_warning())),
        Some(f) => match set_latency_warning(f) {
            Ok(old) => writeln!(out, "latency warning {}; was {old}", describe(f)),
            Err(e) => writeln!(out, "latency: {e}; try `help`"),
        },
    }
}

#[cfg(not(feature = "latency"))]
fn latency(out: &mut String, _factor: Option<f64>) -> fmt::Result {
    writeln!(
        out,
        "latency: slices are not timed in this build (feature `latency` of shrapnel is off)"
    )
}

fn top(out: &mut String, n: usize) -> fmt::Result {
    if !cfg!(feature = "latency") {
        return writeln!(
            out,
            "top: slices are not timed in this build (feature `latency` of shrapnel is off)"
        );
    }
    let mut all = shrapnel_core::where_all();
    all.sort_by(|a, b| b.slices.max.cmp(&a.slices.max).then(a.id.cmp(&b.id)));
    writeln!(
        out,
        "{:>4}  {:<24}  {:>10}  {:>8}  {:>10}  {:>10}",
        "ID", "NAME", "MAX SLICE", "SLICES", "TOTAL", "MEAN"
    )?;
    for info in all.iter().take(n) {
        let s = info.slices;
        let mean = match u32::try_from(s.count) {
            Ok(c) if c > 0 => s.total / c,
            _ => Duration::ZERO,
        };
        writeln!(
            out,
            "{:>4}  {:<24}  {:>10}  {:>8}  {:>10}  {:>10}",
            info.id,
            cut(&info.name, 24),
            secs(s.max),
            s.count,
            secs(s.total),
            secs(mean)
        )?;
    }
    Ok(())
}

fn stats(out: &mut String, shared: &Shared) -> fmt::Result {
    use shrapnel_core::sched;
    let st = sched::stats();
    let rows: [(&str, String); 11] = [
        ("uptime", secs(sched::uptime())),
        ("switches", st.switches.to_string()),
        ("polls", st.polls.to_string()),
        ("loop passes", st.passes.to_string()),
        ("spawned", st.spawned.to_string()),
        ("live coroutines", crate::live_coros().len().to_string()),
        ("run queue", sched::run_queue_len().to_string()),
        ("timers pending", sched::timers_pending().to_string()),
        ("live sockets", net::live_sockets().len().to_string()),
        (
            "fds registered",
            shrapnel_core::io::registered().to_string(),
        ),
        ("backdoor sessions", shared.sessions.get().to_string()),
    ];
    for (k, v) in rows {
        writeln!(out, "{k:<18} {v}")?;
    }
    Ok(())
}

fn kind_name(k: SocketKind) -> &'static str {
    match k {
        SocketKind::TcpListener => "tcp listener",
        SocketKind::TcpStream => "tcp",
        SocketKind::UnixListener => "unix listener",
        SocketKind::UnixStream => "unix",
    }
}

fn sockets(out: &mut String) -> fmt::Result {
    writeln!(out, "{:>4}  {:<13}  {:<28}  PEER", "FD", "KIND", "LOCAL")?;
    for s in net::live_sockets() {
        let line = format!(
            "{:>4}  {:<13}  {:<28}  {}",
            s.fd,
            kind_name(s.kind),
            s.local,
            s.peer
        );
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
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

/// `interrupt` / `shutdown`: find the coroutine, refuse this session's own and a
/// listener, pull the lever.
fn lever(
    out: &mut String,
    verb: &str,
    id: u64,
    pull: impl FnOnce(&CoroRef) -> Option<String>,
) -> fmt::Result {
    let Some(c) = crate::coro_by_id(id) else {
        return no_such(out, verb, id);
    };
    if let Some(refusal) = lever_refusal(verb, id) {
        return writeln!(out, "{refusal}");
    }
    let name = c.name();
    match pull(&c) {
        Some(effect) => writeln!(out, "{verb} #{id} '{name}': {effect}"),
        None => writeln!(out, "{verb}: #{id} '{name}' has already finished"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_person_says_them() {
        assert_eq!(secs(Duration::from_millis(1204)), "1.204s");
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_secs(600)), "10m");
        assert_eq!(human(Duration::from_secs(3723)), "1h02m03s");
        assert_eq!(human(Duration::from_secs(75)), "1m15s");
    }

    #[test]
    fn cut_marks_what_it_cut() {
        assert_eq!(cut("sleeper", 24), "sleeper");
        assert_eq!(cut("abcdef", 4), "abc…");
    }
}
