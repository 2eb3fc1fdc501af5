//! `--json`: the backdoor's commands as one JSON document each, for tools and scripts
//! (`ps`, `where N`, `where_all`, `top`, `stats`, `sockets`, `deadlocks`, `contention`),
//! and `metrics` in the Prometheus text format. Documents are one line, UTF-8, RFC 8259. Times are
//! seconds as numbers; ids and counts are integers.
//!
//! The schema (every document also has `"notes"`: a list of strings, one per scheduler
//! that did not answer):
//!
//! ```text
//! coroutine = {
//!   "id": int, "name": str, "scheduler": int | null,
//!   "state": "new" | "scheduled" | "running" | "blocked" | "dead",
//!   "wait": str,                      // as `where_all` says it: "mutex", "readable fd 7", …
//!   "waited_s": number,               // in this state for
//!   "sleep_left_s": number | null,    // a sleeper's time left
//!   "blocked_at": str | null,         // "src/main.rs:40", the blocking call
//!   "held_by": {"id": int, "name": str} | {"readers": int} | null,
//!   "stack_size": int,
//!   "slices": {"count": int, "total_s": number, "max_s": number},  // zeros without `latency`
//!   "stack": [ {"function": str, "file": str | null, "line": int | null} ]
//!                                     // `where`, `where_all`, `deadlocks` only; empty
//!                                     // without feature `stacks`
//! }
//! ps, where_all  → {"coroutines": [coroutine…], "notes": […]}      (by id)
//! top N          → {"coroutines": [coroutine…], "notes": […]}      (by longest slice)
//! where N        → {"coroutine": coroutine | null, "notes": […]}
//! stats          → {"schedulers": [{"scheduler": int, "thread": str, "uptime_s": number,
//!                    "switches": int, "polls": int, "passes": int, "spawned": int,
//!                    "live_coroutines": int, "run_queue": int, "timers_pending": int,
//!                    "live_sockets": int, "fds_registered": int, "eagain": int}],
//!                   "blocking_pool": {"threads": int, "busy": int, "max_threads": int,
//!                    "queued": int, "completed": int, "refused": int},
//!                   "backdoor": {"sessions": int, "pending_logins": int}, "notes": […]}
//! sockets        → {"sockets": [{"fd": int, "kind": str, "local": str, "peer": str,
//!                    "scheduler": int | null}], "notes": […]}
//! deadlocks      → {"deadlocks": [{"scheduler": int | null, "members": [coroutine…]}],
//!                   "blocked": int, "notes": […]}   (members: each waits for the next)
//! contention N   → {"contention": [{"kind": str, "location": "file:line", "count": int,
//!                   "total_s": number, "max_s": number}], "notes": […]}
//!                   (every scheduler's, merged; the longest total first)
//! ```
//!
//! `scheduler` is `null` for a scheduler the runtime did not install.

use std::fmt::{self, Write as _};

use shrapnel_core::{CoroInfo, HeldBy};

use crate::tb::Frame;

/// A JSON value, built by the commands and written compactly by `Display`.
pub(crate) enum Json {
    Null,
    Int(i128),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(&'static str, Json)>),
}

impl From<&str> for Json {
    fn from(s: &str) -> Self {
        Json::Str(s.to_string())
    }
}

impl From<String> for Json {
    fn from(s: String) -> Self {
        Json::Str(s)
    }
}

impl From<u64> for Json {
    fn from(n: u64) -> Self {
        Json::Int(n.into())
    }
}

impl From<usize> for Json {
    fn from(n: usize) -> Self {
        Json::Int(n as i128)
    }
}

impl From<std::time::Duration> for Json {
    /// Seconds.
    fn from(d: std::time::Duration) -> Self {
        Json::Num(d.as_secs_f64())
    }
}

impl<T: Into<Json>> From<Option<T>> for Json {
    fn from(v: Option<T>) -> Self {
        v.map_or(Json::Null, Into::into)
    }
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Json::Null => f.write_str("null"),
            Json::Int(n) => write!(f, "{n}"),
            // JSON has no NaN or infinity.
            Json::Num(x) if !x.is_finite() => f.write_str("null"),
            Json::Num(x) => write!(f, "{x}"),
            Json::Str(s) => write_str(f, s),
            Json::Arr(items) => {
                f.write_char('[')?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_char(']')
            }
            Json::Obj(fields) => {
                f.write_char('{')?;
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write_str(f, k)?;
                    write!(f, ":{v}")?;
                }
                f.write_char('}')
            }
        }
    }
}

/// A JSON string: quotes, and escapes for `"`, `\` and the control characters.
fn write_str(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

/// A scheduler number as JSON (`null` for an unregistered one).
pub(crate) fn scheduler(number: usize) -> Json {
    if number == crate::schedulers::UNREGISTERED {
        Json::Null
    } else {
        number.into()
    }
}

/// A coroutine object (the schema above); `stack` is added when given.
pub(crate) fn coro(info: &CoroInfo, number: usize, stack: Option<&[Frame]>) -> Json {
    let held_by = match &info.held_by {
        Some(HeldBy::Coro { id, name }) => {
            Json::Obj(vec![("id", (*id).into()), ("name", name.as_str().into())])
        }
        Some(HeldBy::Readers(n)) => Json::Obj(vec![("readers", (*n).into())]),
        None => Json::Null,
    };
    let mut fields = vec![
        ("id", info.id.into()),
        ("name", info.name.as_str().into()),
        ("scheduler", scheduler(number)),
        ("state", info.state.to_string().into()),
        ("wait", info.reason.to_string().into()),
        ("waited_s", info.waited.into()),
        ("sleep_left_s", info.sleep_left.into()),
        (
            "blocked_at",
            info.blocked_at
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .into(),
        ),
        ("held_by", held_by),
        ("stack_size", info.stack_size.into()),
        (
            "slices",
            Json::Obj(vec![
                ("count", info.slices.count.into()),
                ("total_s", info.slices.total.into()),
                ("max_s", info.slices.max.into()),
            ]),
        ),
    ];
    if let Some(frames) = stack {
        let frames = frames
            .iter()
            .map(|fr| {
                Json::Obj(vec![
                    ("function", fr.function.as_str().into()),
                    ("file", fr.file.clone().into()),
                    ("line", fr.line.map(u64::from).into()),
                ])
            })
            .collect();
        fields.push(("stack", Json::Arr(frames)));
    }
    Json::Obj(fields)
}

/// The `"notes"` member.
pub(crate) fn notes(notes: &[String]) -> (&'static str, Json) {
    (
        "notes",
        Json::Arr(notes.iter().map(|n| n.as_str().into()).collect()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_and_numbers_finite() {
        let v = Json::Obj(vec![
            ("s", "a\"b\\c\nd\u{1}é".into()),
            ("n", Json::Num(f64::NAN)),
            ("x", Json::Num(1.5)),
            ("i", Json::Int(-3)),
            ("a", Json::Arr(vec![Json::Null, Json::Int(0)])),
        ]);
        assert_eq!(
            v.to_string(),
            r#"{"s":"a\"b\\c\nd\u0001é","n":null,"x":1.5,"i":-3,"a":[null,0]}"#
        );
    }
}
