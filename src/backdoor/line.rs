//! The backdoor's input side, pure and fuzzable: [`LineDecoder`] turns the bytes a client
//! sends (from `nc -U`, `socat`, or `telnet`) into lines, and [`parse`] turns a line into a
//! [`Request`]. Nothing here does I/O or touches the scheduler, so `fuzz/` drives both
//! with arbitrary bytes.
//!
//! What the decoder accepts:
//!
//! - lines ended by `\n`, `\r\n`, a bare `\r` or telnet's `\r\0`;
//! - telnet commands, which it strips: `IAC WILL/WONT/DO/DONT x`, `IAC SB … IAC SE`, and the
//!   two-byte commands; `IAC IAC` is a literal 255 byte; `IAC EC` / `IAC EL` erase a
//!   character / the line, `IAC EOF` ends the session;
//! - Ctrl-D (0x04) anywhere ends the session, as it does at a shell prompt;
//! - backspace and DEL erase the last character, Ctrl-U the line; other control bytes are
//!   dropped;
//! - bytes that are not UTF-8 are replaced with U+FFFD.
//!
//! Memory is bounded: a line (or a telnet subnegotiation) longer than the limit is reported
//! once as [`Input::TooLong`] and the decoder stops; it never holds more than the limit.
//!
//! ```
//! use shrapnel::backdoor::line::{parse, Format, Input, LineDecoder, Request};
//!
//! let mut dec = LineDecoder::new(4096);
//! let mut got = Vec::new();
//! dec.feed(b"\xff\xfd\x01where 3\r\nquit\n", &mut got);
//! assert_eq!(got, [Input::Line("where 3".into()), Input::Line("quit".into())]);
//! assert_eq!(parse("where 3").unwrap(), Request::Where(3, Format::Text));
//! assert_eq!(parse("exit").unwrap(), Request::Quit);
//! ```

use std::fmt;

/// Telnet "interpret as command".
pub const IAC: u8 = 255;
const DONT: u8 = 254;
/// Telnet `WONT` (after [`IAC`]): the sender stops doing an option.
pub const WONT: u8 = 252;
/// Telnet `WILL` (after [`IAC`]): the sender does an option.
pub const WILL: u8 = 251;
/// Telnet option `ECHO`: the server echoing what is typed (`IAC WILL ECHO` asks the
/// client to stop its local echo, as a login does for a password).
pub const ECHO: u8 = 1;
const SB: u8 = 250;
const EL: u8 = 248;
const EC: u8 = 247;
const TELNET_EOF: u8 = 236;
const SE: u8 = 240;
/// Ctrl-D.
pub const END_OF_TRANSMISSION: u8 = 0x04;
const CTRL_U: u8 = 0x15;
const BACKSPACE: u8 = 0x08;
const DEL: u8 = 0x7f;

/// What the decoder found in the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A complete line, without its terminator or telnet bytes.
    Line(String),
    /// Ctrl-D or telnet EOF: the client wants to leave.
    End,
    /// A line grew past the limit; the decoder has stopped.
    TooLong,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Telnet {
    /// Plain data.
    Data,
    /// After IAC.
    Command,
    /// After IAC WILL/WONT/DO/DONT: the option byte follows.
    Option,
    /// Inside IAC SB … IAC SE.
    Sub,
    /// After IAC inside a subnegotiation.
    SubCommand,
}

/// Bytes in, lines out; see the [module documentation](self).
#[derive(Clone, Debug)]
pub struct LineDecoder {
    line: Vec<u8>,
    max: usize,
    telnet: Telnet,
    /// The previous data byte was `\r`: a following `\n` or `\0` belongs to it.
    after_cr: bool,
    /// Bytes of the current subnegotiation, bounded like a line.
    sub_len: usize,
    /// `End` or `TooLong` was reported; further input is ignored.
    finished: bool,
}

impl LineDecoder {
    /// A decoder for lines of at most `max_line` bytes (at least 1).
    pub fn new(max_line: usize) -> Self {
        LineDecoder {
            line: Vec::new(),
            max: max_line.max(1),
            telnet: Telnet::Data,
            after_cr: false,
            sub_len: 0,
            finished: false,
        }
    }

    /// The line limit.
    pub fn max_line(&self) -> usize {
        self.max
    }

    /// Bytes of the unfinished line held now (never more than the limit).
    pub fn buffered(&self) -> usize {
        self.line.len()
    }

    /// Whether `End` or `TooLong` has been reported.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Decode `bytes`, appending what they complete to `out`. After an [`Input::End`] or
    /// [`Input::TooLong`] (always the last item) the rest is ignored.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Input>) {
        for &b in bytes {
            if self.finished {
                return;
            }
            self.byte(b, out);
        }
    }

    fn finish(&mut self, why: Input, out: &mut Vec<Input>) {
        self.finished = true;
        self.line = Vec::new();
        out.push(why);
    }

    fn byte(&mut self, b: u8, out: &mut Vec<Input>) {
        match self.telnet {
            Telnet::Data => self.data(b, out),
            Telnet::Command => {
                self.telnet = Telnet::Data;
                match b {
                    IAC => self.push(IAC, out),
                    WILL..=DONT => self.telnet = Telnet::Option,
                    SB => {
                        self.telnet = Telnet::Sub;
                        self.sub_len = 0;
                    }
                    EC => self.erase_char(),
                    EL => self.line.clear(),
                    TELNET_EOF => self.finish(Input::End, out),
                    // NOP, data mark, break, interrupt process, are-you-there, go ahead…:
                    // nothing a line console acts on.
                    _ => {}
                }
            }
            Telnet::Option => self.telnet = Telnet::Data,
            Telnet::Sub | Telnet::SubCommand => {
                self.sub_len += 1;
                if self.sub_len > self.max {
                    return self.finish(Input::TooLong, out);
                }
                self.telnet = match (self.telnet, b) {
                    (Telnet::Sub, IAC) => Telnet::SubCommand,
                    (Telnet::SubCommand, SE) => Telnet::Data,
                    _ => Telnet::Sub,
                };
            }
        }
    }

    fn data(&mut self, b: u8, out: &mut Vec<Input>) {
        let after_cr = std::mem::replace(&mut self.after_cr, false);
        match b {
            IAC => {
                // A telnet command between `\r` and `\n` does not split the pair.
                self.after_cr = after_cr;
                self.telnet = Telnet::Command;
            }
            b'\n' | 0 if after_cr => {}
            b'\r' => {
                self.after_cr = true;
                self.end_line(out);
            }
            b'\n' => self.end_line(out),
            END_OF_TRANSMISSION => self.finish(Input::End, out),
            BACKSPACE | DEL => self.erase_char(),
            CTRL_U => self.line.clear(),
            b'\t' => self.push(b, out),
            0..=0x1f => {}
            _ => self.push(b, out),
        }
    }

    fn push(&mut self, b: u8, out: &mut Vec<Input>) {
        if self.line.len() >= self.max {
            return self.finish(Input::TooLong, out);
        }
        self.line.push(b);
    }

    /// Remove the last character, whole: its UTF-8 continuation bytes and its lead byte.
    fn erase_char(&mut self) {
        while let Some(b) = self.line.pop() {
            if b & 0xc0 != 0x80 {
                break;
            }
        }
    }

    fn end_line(&mut self, out: &mut Vec<Input>) {
        let line = String::from_utf8_lossy(&self.line).into_owned();
        self.line.clear();
        out.push(Input::Line(line));
    }
}

/// One parsed line.
#[derive(Clone, Debug, PartialEq)]
pub enum Request<'a> {
    /// A blank line: print the prompt again.
    Empty,
    /// `quit`, `exit`: close the session.
    Quit,
    /// `help`, `?`.
    Help,
    /// `ps [--json]`.
    Ps(Format),
    /// `where N [--json]`.
    Where(u64, Format),
    /// `where_all [--json]`.
    WhereAll(Format),
    /// `live`.
    Live,
    /// `latency [factor]`.
    Latency(Option<f64>),
    /// `top [n] [--json]`.
    Top(usize, Format),
    /// `stats [--json]`.
    Stats(Format),
    /// `sockets [--json]`.
    Sockets(Format),
    /// `deadlocks [--json]`.
    Deadlocks(Format),
    /// `metrics`: the Prometheus text format.
    Metrics,
    /// `contention [N] [--json]`: the N places coroutines waited longest in total.
    Contention(usize, Format),
    /// `contention reset`.
    ContentionReset,
    /// `profile [SECONDS] [folded [FILE]]`: a CPU profile of every scheduler.
    Profile {
        /// How long to sample.
        seconds: u64,
        /// Folded stacks (for flame graphs) instead of the report.
        folded: bool,
        /// Where to write them (relative to the process's working directory).
        file: Option<&'a str>,
    },
    /// `interrupt N [code]` (code 0 if not given).
    Interrupt {
        /// The coroutine.
        id: u64,
        /// What its blocking call's `Interrupted::Interrupt` carries.
        code: u64,
    },
    /// `shutdown N`.
    Shutdown(u64),
    /// `selfishness N`.
    Selfishness(u32),
    /// `eval <script>`: the rest of the line, as typed.
    Eval(&'a str),
    /// Anything else: an application command, or an unknown one.
    Other {
        /// The first word.
        name: &'a str,
        /// The other words.
        args: Vec<&'a str>,
    },
}

/// How a command's answer is written: for people, or as one JSON document (`--json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Tables and lines.
    Text,
    /// One JSON document (schema: the backdoor's `json` module).
    Json,
}

/// How long `profile` samples when not told, in seconds.
pub const PROFILE_DEFAULT_SECS: u64 = 5;

/// How many entries `contention` shows when not told.
pub const CONTENTION_DEFAULT: usize = 20;

/// How many entries `top` shows when not told.
pub const TOP_DEFAULT: usize = 10;

/// The built-in commands: usage and one line of help, in the order `help` lists them.
pub const BUILTINS: &[(&str, &str)] = &[
    ("help", "this list"),
    (
        "ps",
        "coroutines: id, name, state, wait reason, waited, slices, max slice",
    ),
    ("where N", "what coroutine N is doing (and its stack)"),
    ("where_all", "what every coroutine is doing"),
    ("live", "ids and names of the live coroutines"),
    (
        "latency [FACTOR]",
        "show or set the high-latency warning (factor × 0.2 s; 0 = off)",
    ),
    (
        "top [N]",
        "the N coroutines with the longest slices (default 10)",
    ),
    (
        "stats",
        "switches, polls, timers, run queue, coroutines, sockets, uptime",
    ),
    ("sockets", "open sockets: fd, kind, local and peer address"),
    (
        "deadlocks",
        "cycles of coroutines waiting for each other (mutexes, rwlock writers, joins), with stacks",
    ),
    (
        "metrics",
        "counters and gauges in the Prometheus text format",
    ),
    (
        "profile [SECS] [folded [FILE]]",
        "sample the CPU for SECS (default 5): top coroutines and functions, or folded stacks",
    ),
    (
        "contention [N|reset]",
        "where coroutines waited (mutex, fifo, fd, join…): count, total, max (default 20)",
    ),
    (
        "… --json",
        "ps, where, where_all, top, stats, sockets, deadlocks, contention as JSON",
    ),
    (
        "interrupt N [CODE]",
        "make coroutine N's blocking call return Interrupted (code 0)",
    ),
    ("shutdown N", "ask coroutine N to finish"),
    (
        "selfishness N",
        "I/O completions a coroutine gets before a forced yield",
    ),
    (
        "eval SCRIPT",
        "run a rhai script over the application's objects",
    ),
    ("quit", "close this session (also `exit`, Ctrl-D)"),
];

/// Whether `name` is a built-in command word (applications cannot take these names).
pub fn is_builtin(name: &str) -> bool {
    matches!(name, "?" | "exit")
        || BUILTINS
            .iter()
            .any(|(usage, _)| usage.split(' ').next() == Some(name))
}

/// A line [`parse`] rejected: says what was wrong; its `Display` suggests `help`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; try `help`", self.0)
    }
}

impl std::error::Error for ParseError {}

/// Parse one line. Words are separated by whitespace; unknown commands come back as
/// [`Request::Other`] for the application's registry to resolve.
pub fn parse(line: &str) -> Result<Request<'_>, ParseError> {
    let line = line.trim();
    let mut words = line.split_whitespace();
    let Some(name) = words.next() else {
        return Ok(Request::Empty);
    };
    let mut args: Vec<&str> = words.collect();
    // `--json` anywhere among the arguments of the commands that have it.
    let mut format = Format::Text;
    if JSON_COMMANDS.contains(&name) {
        if let Some(at) = args.iter().position(|a| *a == "--json") {
            args.remove(at);
            format = Format::Json;
        }
    }
    let req = match name {
        "quit" | "exit" => none(name, &args, Request::Quit)?,
        "help" | "?" => none(name, &args, Request::Help)?,
        "ps" => none(name, &args, Request::Ps(format))?,
        "where_all" => none(name, &args, Request::WhereAll(format))?,
        "live" => none(name, &args, Request::Live)?,
        "stats" => none(name, &args, Request::Stats(format))?,
        "sockets" => none(name, &args, Request::Sockets(format))?,
        "deadlocks" => none(name, &args, Request::Deadlocks(format))?,
        "metrics" => none(name, &args, Request::Metrics)?,
        "profile" => {
            let (seconds, rest) = match args.as_slice() {
                [] => (PROFILE_DEFAULT_SECS, &[][..]),
                [s, rest @ ..] => match s.parse::<u64>() {
                    Ok(n) if (1..=300).contains(&n) => (n, rest),
                    _ if *s == "folded" => (PROFILE_DEFAULT_SECS, &args[..]),
                    _ => {
                        return Err(ParseError(format!(
                            "profile: '{}' is not a number of seconds from 1 to 300",
                            shorten(s)
                        )))
                    }
                },
            };
            match rest {
                [] => Request::Profile {
                    seconds,
                    folded: false,
                    file: None,
                },
                ["folded"] => Request::Profile {
                    seconds,
                    folded: true,
                    file: None,
                },
                ["folded", file] => Request::Profile {
                    seconds,
                    folded: true,
                    file: Some(file),
                },
                _ => return Err(usage(name, "[SECONDS] [folded [FILE]]")),
            }
        }
        "contention" => match args.as_slice() {
            [] => Request::Contention(CONTENTION_DEFAULT, format),
            ["reset"] if format == Format::Text => Request::ContentionReset,
            [n] => Request::Contention(number(name, "count", n)?, format),
            _ => return Err(usage(name, "an optional count, or `reset`")),
        },
        "where" => Request::Where(id_arg(name, &args)?, format),
        "shutdown" => Request::Shutdown(id_arg(name, &args)?),
        "interrupt" => match args.as_slice() {
            [id] => Request::Interrupt {
                id: number(name, "coroutine id", id)?,
                code: 0,
            },
            [id, code] => Request::Interrupt {
                id: number(name, "coroutine id", id)?,
                code: number(name, "interrupt code", code)?,
            },
            _ => return Err(usage(name, "a coroutine id and an optional code")),
        },
        "selfishness" => match args.as_slice() {
            [n] => Request::Selfishness(number(name, "count", n)?),
            _ => return Err(usage(name, "a count")),
        },
        "top" => match args.as_slice() {
            [] => Request::Top(TOP_DEFAULT, format),
            [n] => Request::Top(number(name, "count", n)?, format),
            _ => return Err(usage(name, "an optional count")),
        },
        "latency" => match args.as_slice() {
            [] => Request::Latency(None),
            [f] => match f.parse::<f64>() {
                Ok(v) if v.is_finite() => Request::Latency(Some(v)),
                _ => {
                    return Err(ParseError(format!(
                        "latency: '{}' is not a factor (a number such as 1 or 2.5)",
                        shorten(f)
                    )))
                }
            },
            _ => return Err(usage(name, "an optional factor")),
        },
        "eval" => {
            let script = line["eval".len()..].trim();
            if script.is_empty() {
                return Err(ParseError(
                    "eval: give a script, e.g. `eval ps().len()`".into(),
                ));
            }
            Request::Eval(script)
        }
        _ => Request::Other { name, args },
    };
    Ok(req)
}

/// The commands that take `--json`.
const JSON_COMMANDS: &[&str] = &[
    "ps",
    "where",
    "where_all",
    "top",
    "stats",
    "sockets",
    "deadlocks",
    "contention",
];

fn none<'a>(name: &str, args: &[&str], req: Request<'a>) -> Result<Request<'a>, ParseError> {
    if args.is_empty() {
        Ok(req)
    } else {
        Err(ParseError(format!("{name}: takes no arguments")))
    }
}

fn id_arg(name: &str, args: &[&str]) -> Result<u64, ParseError> {
    match args {
        [id] => number(name, "coroutine id", id),
        _ => Err(ParseError(format!(
            "{name}: expects one coroutine id, e.g. `{name} 3` (see `ps`)"
        ))),
    }
}

fn usage(name: &str, what: &str) -> ParseError {
    ParseError(format!("{name}: expects {what}"))
}

fn number<T: std::str::FromStr>(name: &str, what: &str, word: &str) -> Result<T, ParseError> {
    let digits = word.strip_prefix('#').unwrap_or(word);
    digits
        .parse()
        .map_err(|_| ParseError(format!("{name}: '{}' is not a {what}", shorten(word))))
}

/// At most 40 characters of what the user typed, for an error message.
pub(crate) fn shorten(word: &str) -> String {
    match word.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &word[..i]),
        None => word.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(max: usize, chunks: &[&[u8]]) -> Vec<Input> {
        let mut d = LineDecoder::new(max);
        let mut out = Vec::new();
        for c in chunks {
            d.feed(c, &mut out);
        }
        out
    }

    fn line(s: &str) -> Input {
        Input::Line(s.into())
    }

    #[test]
    fn line_ends_lf_crlf_cr_and_cr_nul() {
        assert_eq!(
            lines(64, &[b"a\nb\r\nc\rd\r\0e\n"]),
            [line("a"), line("b"), line("c"), line("d"), line("e")]
        );
        // A CRLF split across reads is still one line end.
        assert_eq!(lines(64, &[b"a\r", b"\nb\n"]), [line("a"), line("b")]);
        assert_eq!(lines(64, &[b"\r\n\r\n"]), [line(""), line("")]);
    }

    #[test]
    fn telnet_negotiation_is_stripped_and_iac_iac_is_255() {
        let input = b"\xff\xfb\x01\xff\xfd\x03p\xff\xfa\x18\x01xterm\xff\xf0s\xff\xf1\r\n";
        assert_eq!(lines(64, &[input]), [line("ps")]);
        let mut d = LineDecoder::new(64);
        let mut out = Vec::new();
        d.feed(b"a\xff\xff\n", &mut out);
        assert_eq!(out, [line("a\u{fffd}")]);
        // Split inside the sequences.
        assert_eq!(
            lines(
                64,
                &[
                    b"\xff",
                    b"\xfd",
                    b"\x01p",
                    b"s\xff",
                    b"\xfa\x18",
                    b"\xff\xf0\n"
                ]
            ),
            [line("ps")]
        );
    }

    #[test]
    fn ctrl_d_and_telnet_eof_end_the_session() {
        assert_eq!(lines(64, &[b"ps\n\x04stats\n"]), [line("ps"), Input::End]);
        assert_eq!(lines(64, &[b"ps\xff\xecstats\n"]), [Input::End]);
    }

    #[test]
    fn editing_bytes() {
        assert_eq!(lines(64, &[b"pq\x08s\n"]), [line("ps")]);
        assert_eq!(lines(64, &[b"p\xc3\xa9\x7fs\n"]), [line("ps")]);
        assert_eq!(lines(64, &[b"junk\x15ps\n"]), [line("ps")]);
        assert_eq!(lines(64, &[b"p\x01\x1bs\tx\n"]), [line("ps\tx")]);
    }

    #[test]
    fn long_line_is_reported_once_and_memory_stays_bounded() {
        let mut d = LineDecoder::new(4096);
        let mut out = Vec::new();
        d.feed(&[b'a'; 4096], &mut out);
        assert!(out.is_empty());
        assert_eq!(d.buffered(), 4096);
        let big = vec![b'a'; 1 << 20];
        d.feed(&big, &mut out);
        d.feed(b"\nps\n", &mut out);
        assert_eq!(out, [Input::TooLong]);
        assert!(d.buffered() <= 4096 && d.is_finished());
        // A line of exactly the limit is fine.
        assert_eq!(lines(3, &[b"abc\n"]), [line("abc")]);
        assert_eq!(lines(3, &[b"abcd\n"]), [Input::TooLong]);
    }

    #[test]
    fn endless_subnegotiation_is_bounded_too() {
        let mut d = LineDecoder::new(16);
        let mut out = Vec::new();
        d.feed(b"\xff\xfa", &mut out);
        d.feed(&[b'x'; 100], &mut out);
        assert_eq!(out, [Input::TooLong]);
    }

    #[test]
    fn parses_builtins() {
        assert_eq!(parse("  ").unwrap(), Request::Empty);
        assert_eq!(parse("ps").unwrap(), Request::Ps(Format::Text));
        assert_eq!(parse("ps --json").unwrap(), Request::Ps(Format::Json));
        assert_eq!(
            parse(" where   12 ").unwrap(),
            Request::Where(12, Format::Text)
        );
        assert_eq!(
            parse("where #12").unwrap(),
            Request::Where(12, Format::Text)
        );
        assert_eq!(
            parse("where --json 12").unwrap(),
            Request::Where(12, Format::Json)
        );
        assert_eq!(
            parse("top").unwrap(),
            Request::Top(TOP_DEFAULT, Format::Text)
        );
        assert_eq!(parse("top 3").unwrap(), Request::Top(3, Format::Text));
        assert_eq!(
            parse("top 3 --json").unwrap(),
            Request::Top(3, Format::Json)
        );
        assert_eq!(parse("metrics").unwrap(), Request::Metrics);
        assert_eq!(
            parse("contention").unwrap(),
            Request::Contention(CONTENTION_DEFAULT, Format::Text)
        );
        assert_eq!(
            parse("contention 5 --json").unwrap(),
            Request::Contention(5, Format::Json)
        );
        assert_eq!(parse("contention reset").unwrap(), Request::ContentionReset);
        assert_eq!(
            parse("profile").unwrap(),
            Request::Profile {
                seconds: PROFILE_DEFAULT_SECS,
                folded: false,
                file: None
            }
        );
        assert_eq!(
            parse("profile 2 folded out.folded").unwrap(),
            Request::Profile {
                seconds: 2,
                folded: true,
                file: Some("out.folded")
            }
        );
        assert!(parse("profile 0").is_err());
        assert!(parse("profile 9999").is_err());
        assert!(parse("profile 3 flame").is_err());
        assert!(parse("contention lots").is_err());
        assert!(
            parse("live --json").is_err(),
            "only the listed commands have it"
        );
        assert_eq!(parse("latency").unwrap(), Request::Latency(None));
        assert_eq!(parse("latency 2.5").unwrap(), Request::Latency(Some(2.5)));
        assert_eq!(
            parse("interrupt 4").unwrap(),
            Request::Interrupt { id: 4, code: 0 }
        );
        assert_eq!(
            parse("interrupt 4 9").unwrap(),
            Request::Interrupt { id: 4, code: 9 }
        );
        assert_eq!(parse("shutdown 4").unwrap(), Request::Shutdown(4));
        assert_eq!(parse("selfishness 8").unwrap(), Request::Selfishness(8));
        assert_eq!(parse("eval  1 +  2 ").unwrap(), Request::Eval("1 +  2"));
        assert_eq!(
            parse("greet bob  alice").unwrap(),
            Request::Other {
                name: "greet",
                args: vec!["bob", "alice"]
            }
        );
    }

    #[test]
    fn bad_arguments_say_what_was_wrong_and_suggest_help() {
        let e = parse("where").unwrap_err().to_string();
        assert_eq!(
            e,
            "where: expects one coroutine id, e.g. `where 3` (see `ps`); try `help`"
        );
        let e = parse("shutdown x").unwrap_err().to_string();
        assert_eq!(e, "shutdown: 'x' is not a coroutine id; try `help`");
        assert!(parse("ps now")
            .unwrap_err()
            .0
            .contains("takes no arguments"));
        assert!(parse("latency fast")
            .unwrap_err()
            .0
            .contains("not a factor"));
        assert!(parse("latency NaN").is_err());
        assert!(parse("selfishness -1").is_err());
        assert!(parse("eval").is_err());
        let long = "9".repeat(100);
        let e = parse(&format!("where {long}")).unwrap_err().0;
        assert!(e.len() < 100, "{e}");
    }

    #[test]
    fn builtin_names() {
        for n in [
            "help",
            "ps",
            "where",
            "where_all",
            "eval",
            "quit",
            "exit",
            "?",
        ] {
            assert!(is_builtin(n), "{n}");
        }
        assert!(!is_builtin("greet"));
    }
}
