//! The backdoor (feature `backdoor`): a console into a running process, Shrapnel's most
//! powerful debugging facility (ARCHITECTURE.md §5). Connect with `nc -U`, `socat` or `telnet` and
//! look inside: every coroutine and what it waits for (`ps`, `where N`, `where_all`), the
//! worst slices (`top`), scheduler counters (`stats`), open sockets, and levers
//! (`interrupt N`, `shutdown N`, `latency`, `selfishness`). The application adds its own
//! commands, and with feature `backdoor-script` an `eval` prompt runs rhai scripts over
//! objects the application registers — the Rust answer to Shrapnel's Python prompt.
//!
//! One console sees the whole process: `ps`, `where`, `where_all`, `live`, `top`, `stats`,
//! `sockets`, `interrupt` and `shutdown` cover every scheduler running its event loop (each
//! answers in its own loop), whichever scheduler the session runs on; with more than one,
//! a `SCHED` column or a `scheduler N (thread …)` heading says whose each line is.
//! Coroutine ids are unique in the process, so `where 1025` needs no scheduler number. A
//! scheduler that does not answer within 2 s (a coroutine there holds the CPU) is named
//! in a `note:` line instead of stalling the console.
//!
//! Spawn [`serve`] before the event loop; a unix socket is the way to do it:
//!
//! ```no_run
//! use std::io::Write;
//! use shrapnel::backdoor::{self, Options};
//!
//! let options = Options::unix("./myserver.sock")
//!     .command("conns", "open client connections", |_args, out| writeln!(out, "3"));
//! shrapnel::spawn(move || {
//!     if let Err(e) = backdoor::serve(options) {
//!         eprintln!("backdoor: {e}");
//!     }
//! });
//! shrapnel::event_loop();
//! ```
//!
//! then `socat - UNIX-CONNECT:./myserver.sock` (or `nc -U ./myserver.sock`):
//!
//! ```text
//! shrapnel backdoor: myserver pid 24447; `help` lists the commands, `quit` leaves
//! shrapnel> ps
//!   ID  NAME                      STATE      WAIT                     WAITED  SLICES   MAX SLICE
//!    1  backdoor                  blocked    readable fd 9            0.000s       2      0.000s
//!    2  acceptor                  blocked    readable fd 8           12.203s       2      0.000s
//!    4  backdoor session 1        running    running                  0.000s       1      0.000s
//! shrapnel> where 2
//! #2 'acceptor' blocked: readable fd 8 for 12.833s at src/main.rs:40
//! shrapnel> conns
//! 3
//! shrapnel> quit
//! bye
//! ```
//!
//! [`Backdoor::bind`] does the same in two steps, so binding errors show up before anything
//! is spawned and the handle can [`register`](Backdoor::register) commands later.
//!
//! # Secure by default
//!
//! Anyone who reaches the backdoor can stop coroutines and, with `eval`, call whatever the
//! application exposed. So:
//!
//! - the unix socket is created mode 0600 (owner only) before it listens, whatever the
//!   umask; an existing path is replaced only if it is a socket nobody listens on — a
//!   regular file, a symlink or a live socket there is an error, never deleted;
//! - TCP listens on 127.0.0.1 unless the caller names another address, and a non-loopback
//!   address also needs an [authentication hook](Options::auth), else [`Backdoor::bind`]
//!   fails saying so;
//! - with a hook, guessing is slow: after a failed login the peer's next password is
//!   checked later, the delay doubling up to a cap ([`Options::login_backoff`]); a login
//!   must be done within [`Options::login_timeout`]; connections that have not logged in
//!   have their own small limit ([`Options::max_pending_logins`]), so they cannot take the
//!   places of logged-in sessions; a telnet client does not echo the password; compare
//!   passwords with [`constant_time_eq`];
//! - lines, sessions and idle time are bounded ([`Options::max_line`],
//!   [`Options::max_sessions`], [`Options::idle_timeout`]), and `eval` scripts have an
//!   operation limit and a time limit, and give the other coroutines a turn as they run;
//! - the console's `interrupt` and `shutdown` refuse to stop the backdoor's own listener
//!   or the session that asks;
//! - the listening socket is close-on-exec, and a session's output goes to that session
//!   only: `print_stderr` from other coroutines still goes to the real stderr.
//!
//! The protocol and the command parser are in [`line`](mod@line); the built-in commands' output is
//! described in `help`.

mod commands;
mod json;
pub mod line;
mod login;
#[cfg(feature = "backdoor-script")]
mod script;
mod server;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

pub use server::ListenAddr;

/// Shrapnel's port range for a TCP backdoor with no port given.
pub const SCAN_PORTS: std::ops::RangeInclusive<u16> = 8023..=8033;
/// Default [`Options::max_line`]: 4 KiB.
pub const DEFAULT_MAX_LINE: usize = 4096;
/// Default [`Options::max_sessions`].
pub const DEFAULT_MAX_SESSIONS: usize = 16;
/// Default [`Options::idle_timeout`]: 10 minutes.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// Default [`Options::prompt`].
pub const DEFAULT_PROMPT: &str = "shrapnel> ";
/// Default operation limit of an `eval` script (`Options::max_operations`, feature
/// `backdoor-script`).
pub const DEFAULT_MAX_OPERATIONS: u64 = 100_000;
/// Default time limit of an `eval` script (`Options::eval_time_limit`, feature
/// `backdoor-script`): 5 s. A script yields to the other coroutines every few milliseconds,
/// so this bounds how long one `eval` holds its session, not a stall of the scheduler.
pub const DEFAULT_EVAL_TIME_LIMIT: Duration = Duration::from_secs(5);
/// Default [`Options::login_timeout`]: 30 s to type a user name and a password.
pub const DEFAULT_LOGIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`Options::max_pending_logins`].
pub const DEFAULT_MAX_PENDING_LOGINS: usize = 4;
/// Default first delay of [`Options::login_backoff`]: 100 ms.
pub const DEFAULT_LOGIN_DELAY: Duration = Duration::from_millis(100);
/// Default longest delay of [`Options::login_backoff`]: 10 s.
pub const DEFAULT_LOGIN_DELAY_CAP: Duration = Duration::from_secs(10);

/// An application command: gets the words after its name and the session's output.
pub type CommandFn = dyn Fn(&[&str], &mut dyn Write) -> io::Result<()>;
/// A login check: user name and password in, allowed or not out.
pub type AuthFn = dyn Fn(&str, &str) -> bool;
#[cfg(feature = "backdoor-script")]
type ScriptSetup = dyn Fn(&mut rhai::Engine);

/// Where the backdoor listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Listen {
    Unix(PathBuf),
    Tcp(SocketAddr),
    /// The first free port of [`SCAN_PORTS`] on this address.
    TcpScan(IpAddr),
}

/// How to run a backdoor: where it listens, what it says, who may log in, its limits and
/// the application's commands. Start from [`Options::unix`] (preferred), [`Options::tcp`]
/// or [`Options::tcp_scan`].
pub struct Options {
    pub(crate) listen: Listen,
    pub(crate) welcome: Option<String>,
    pub(crate) prompt: String,
    pub(crate) auth: Option<Rc<AuthFn>>,
    pub(crate) max_line: usize,
    pub(crate) max_sessions: usize,
    pub(crate) idle_timeout: Duration,
    pub(crate) login_timeout: Duration,
    pub(crate) max_pending_logins: usize,
    pub(crate) login_delay: Duration,
    pub(crate) login_delay_cap: Duration,
    pub(crate) commands: Vec<(String, String, Rc<CommandFn>)>,
    #[cfg(feature = "backdoor-script")]
    pub(crate) script_setup: Vec<Rc<ScriptSetup>>,
    #[cfg(feature = "backdoor-script")]
    pub(crate) max_operations: u64,
    #[cfg(feature = "backdoor-script")]
    pub(crate) eval_time_limit: Duration,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("listen", &self.listen)
            .field("auth", &self.auth.is_some())
            .field("max_line", &self.max_line)
            .field("max_sessions", &self.max_sessions)
            .field("idle_timeout", &self.idle_timeout)
            .finish_non_exhaustive()
    }
}

impl Options {
    fn new(listen: Listen) -> Self {
        Options {
            listen,
            welcome: None,
            prompt: DEFAULT_PROMPT.into(),
            auth: None,
            max_line: DEFAULT_MAX_LINE,
            max_sessions: DEFAULT_MAX_SESSIONS,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            login_timeout: DEFAULT_LOGIN_TIMEOUT,
            max_pending_logins: DEFAULT_MAX_PENDING_LOGINS,
            login_delay: DEFAULT_LOGIN_DELAY,
            login_delay_cap: DEFAULT_LOGIN_DELAY_CAP,
            commands: Vec::new(),
            #[cfg(feature = "backdoor-script")]
            script_setup: Vec::new(),
            #[cfg(feature = "backdoor-script")]
            max_operations: DEFAULT_MAX_OPERATIONS,
            #[cfg(feature = "backdoor-script")]
            eval_time_limit: DEFAULT_EVAL_TIME_LIMIT,
        }
    }

    /// Listen on a unix-domain socket at `path` (the recommended way): created mode 0600;
    /// a stale socket left there by an earlier run is replaced, anything else is an error.
    pub fn unix(path: impl AsRef<Path>) -> Self {
        Options::new(Listen::Unix(path.as_ref().to_path_buf()))
    }

    /// Listen on TCP `addr` (port 0: the kernel picks one; see [`Backdoor::addr`]). A
    /// non-loopback address needs [`auth`](Options::auth).
    pub fn tcp(addr: impl Into<SocketAddr>) -> Self {
        Options::new(Listen::Tcp(addr.into()))
    }

    /// Listen on the first free port of 8023..=8033 on 127.0.0.1, as Shrapnel does (but
    /// on loopback, not every interface).
    pub fn tcp_scan() -> Self {
        Options::tcp_scan_on(Ipv4Addr::LOCALHOST.into())
    }

    /// The port scan of [`tcp_scan`](Options::tcp_scan) on another address (non-loopback
    /// needs [`auth`](Options::auth)).
    pub fn tcp_scan_on(ip: IpAddr) -> Self {
        Options::new(Listen::TcpScan(ip))
    }

    /// The first line a session sees (default: the program's name and pid).
    pub fn welcome(mut self, text: impl Into<String>) -> Self {
        self.welcome = Some(text.into());
        self
    }

    /// The prompt (default `shrapnel> `).
    pub fn prompt(mut self, text: impl Into<String>) -> Self {
        self.prompt = text.into();
        self
    }

    /// Require a login: a session is asked for `user:` and `password:` and `check(user,
    /// password)` decides. One try per connection; a failed login closes the session and
    /// makes the peer's next try wait ([`login_backoff`](Options::login_backoff)). Over
    /// TCP the server sends telnet's `IAC WILL ECHO` before `password:` (a telnet client
    /// stops echoing) and `IAC WONT ECHO` after it. Required for a non-loopback TCP
    /// address. Compare secrets with [`constant_time_eq`]:
    ///
    /// ```no_run
    /// use shrapnel::backdoor::{constant_time_eq, Options};
    ///
    /// let secret = std::env::var("BACKDOOR_PASSWORD").expect("a password in the environment");
    /// let options = Options::tcp(([0, 0, 0, 0], 8023)).auth(move |user, password| {
    ///     user == "admin" && constant_time_eq(password.as_bytes(), secret.as_bytes())
    /// });
    /// ```
    pub fn auth(mut self, check: impl Fn(&str, &str) -> bool + 'static) -> Self {
        self.auth = Some(Rc::new(check));
        self
    }

    /// The longest line accepted (default 4 KiB, at least 16 bytes); a longer one closes
    /// the session with a message.
    pub fn max_line(mut self, bytes: usize) -> Self {
        self.max_line = bytes.max(16);
        self
    }

    /// Sessions served at once (default 16); a client beyond that gets one refusal line.
    /// With an [`auth`](Options::auth) hook, only logged-in sessions count here (see
    /// [`max_pending_logins`](Options::max_pending_logins)).
    pub fn max_sessions(mut self, n: usize) -> Self {
        self.max_sessions = n;
        self
    }

    /// How long a session may stay silent (or leave output unread) before it is closed
    /// (default 10 minutes).
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = d;
        self
    }

    /// How long a connection has to log in — type the user name and the password — when
    /// there is an [`auth`](Options::auth) hook (default 30 s); then it is closed with a
    /// message. Waiting out a [failed-login delay](Options::login_backoff) counts too.
    pub fn login_timeout(mut self, d: Duration) -> Self {
        self.login_timeout = d;
        self
    }

    /// Connections that have not logged in yet, at once (default 4, at least 1), when
    /// there is an [`auth`](Options::auth) hook. They have their own limit so they cannot
    /// take the [`max_sessions`](Options::max_sessions) places of logged-in sessions; a
    /// connection beyond it gets one refusal line.
    pub fn max_pending_logins(mut self, n: usize) -> Self {
        self.max_pending_logins = n.max(1);
        self
    }

    /// The delay after failed logins (default 100 ms, doubling up to 10 s): after `n`
    /// failures from one peer (IP address; all unix-socket clients count as one peer), its
    /// next password is checked `first × 2ⁿ⁻¹` later at the earliest, at most `cap` later.
    /// A success, or a quiet spell, forgets the failures. Attempts from one peer are
    /// checked one at a time, so parallel connections do not get around it.
    pub fn login_backoff(mut self, first: Duration, cap: Duration) -> Self {
        self.login_delay = first;
        self.login_delay_cap = cap.max(first);
        self
    }

    /// Add an application command (see [`Backdoor::register`]); a bad name makes
    /// [`Backdoor::bind`] fail.
    pub fn command(
        mut self,
        name: impl Into<String>,
        help: impl Into<String>,
        f: impl Fn(&[&str], &mut dyn Write) -> io::Result<()> + 'static,
    ) -> Self {
        self.commands.push((name.into(), help.into(), Rc::new(f)));
        self
    }

    /// Expose the application to `eval` (feature `backdoor-script`): `setup` runs on each
    /// session's script engine, after the built-ins are registered, to add functions and
    /// types with `register_fn` and friends.
    ///
    /// ```no_run
    /// use shrapnel::backdoor::Options;
    ///
    /// let options = Options::unix("./app.sock").script_engine(|engine| {
    ///     engine.register_fn("cache_size", || 1234_i64);
    /// });
    /// ```
    #[cfg(feature = "backdoor-script")]
    pub fn script_engine(mut self, setup: impl Fn(&mut rhai::Engine) + 'static) -> Self {
        self.script_setup.push(Rc::new(setup));
        self
    }

    /// The operation limit of one `eval` (default 100 000); a script that runs past it is
    /// stopped with an error. [`eval_time_limit`](Options::eval_time_limit) bounds its
    /// time.
    #[cfg(feature = "backdoor-script")]
    pub fn max_operations(mut self, ops: u64) -> Self {
        self.max_operations = ops.max(1);
        self
    }

    /// The time limit of one `eval` (default 5 s), `sleep` in the script included; a
    /// script still running then is stopped with an error. Scripts yield to the other
    /// coroutines every few milliseconds, so a long script holds up its own session, not
    /// the scheduler.
    #[cfg(feature = "backdoor-script")]
    pub fn eval_time_limit(mut self, d: Duration) -> Self {
        self.eval_time_limit = d;
        self
    }
}

/// Whether `a` and `b` are the same bytes, in a time that depends on their lengths only,
/// not on where they differ: compare passwords with it in an [`auth`](Options::auth) hook,
/// so the time a refusal takes does not tell a guesser how many leading bytes were right.
///
/// ```
/// use shrapnel::backdoor::{constant_time_eq, Options};
///
/// let options = Options::tcp(([0, 0, 0, 0], 8023)).auth(|user, password| {
///     user == "admin" && constant_time_eq(password.as_bytes(), b"correct horse")
/// });
/// ```
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = usize::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(i).copied(), b.get(i).copied());
        diff |= usize::from(x.unwrap_or(0) ^ y.unwrap_or(0));
    }
    // Kept opaque so the loop is not turned into an early exit.
    std::hint::black_box(diff) == 0
}

/// Why [`Backdoor::register`] refused a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterError {
    /// The name asked for.
    pub name: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "backdoor: cannot register command '{}': {}",
            self.name.escape_debug(),
            self.reason
        )
    }
}

impl std::error::Error for RegisterError {}

impl From<RegisterError> for io::Error {
    fn from(e: RegisterError) -> Self {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}

/// One application command.
#[derive(Clone)]
pub(crate) struct AppCommand {
    pub(crate) help: String,
    pub(crate) run: Rc<CommandFn>,
}

/// What the sessions of one backdoor share.
pub(crate) struct Shared {
    pub(crate) welcome: String,
    pub(crate) prompt: String,
    pub(crate) auth: Option<Rc<AuthFn>>,
    pub(crate) max_line: usize,
    pub(crate) max_sessions: usize,
    pub(crate) idle_timeout: Duration,
    pub(crate) login_timeout: Duration,
    pub(crate) max_pending_logins: usize,
    /// Failed logins per peer, for the delays.
    pub(crate) penalties: RefCell<login::Penalties>,
    pub(crate) commands: RefCell<BTreeMap<String, AppCommand>>,
    /// Sessions open now (logged in, or with no auth hook, connected).
    pub(crate) sessions: Cell<usize>,
    /// Connections waiting to log in now.
    pub(crate) pending_logins: Cell<usize>,
    /// Sessions accepted since start, for naming them.
    pub(crate) accepted: Cell<u64>,
    #[cfg(feature = "backdoor-script")]
    pub(crate) script_setup: Vec<Rc<ScriptSetup>>,
    #[cfg(feature = "backdoor-script")]
    pub(crate) max_operations: u64,
    #[cfg(feature = "backdoor-script")]
    pub(crate) eval_time_limit: Duration,
}

impl Shared {
    fn register(
        &self,
        name: String,
        help: String,
        run: Rc<CommandFn>,
    ) -> Result<(), RegisterError> {
        let reason = if name.is_empty() {
            Some("the name is empty")
        } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Some("a name is one word, without spaces or control characters")
        } else if line::is_builtin(&name) {
            Some("that is a built-in command")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(RegisterError { name, reason });
        }
        self.commands
            .borrow_mut()
            .insert(name, AppCommand { help, run });
        Ok(())
    }
}

/// A bound backdoor: a cheap handle (clones share it). [`serve`](Backdoor::serve) accepts
/// sessions until the serving coroutine is shut down or [`close`](Backdoor::close) is
/// called; then the listener is closed and its unix socket file removed.
#[derive(Clone)]
pub struct Backdoor {
    inner: Rc<server::Inner>,
}

impl fmt::Debug for Backdoor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backdoor")
            .field("addr", self.addr())
            .field("sessions", &self.sessions())
            .finish()
    }
}

impl Backdoor {
    /// Check the options and start listening (see the security rules in the [module
    /// documentation](self)). Errors name the path or address and what to do.
    pub fn bind(options: Options) -> io::Result<Backdoor> {
        Ok(Backdoor {
            inner: Rc::new(server::Inner::bind(options)?),
        })
    }

    /// Where it listens (the port found by a scan, or the kernel's pick for port 0).
    pub fn addr(&self) -> &ListenAddr {
        &self.inner.addr
    }

    /// Add an application command: `run(args, out)` gets the words after the name and the
    /// session's output; an `Err` it returns is shown as `NAME: error: …`, a panic in it is
    /// caught and reported, and the session goes on. It runs in the session's coroutine,
    /// so it may block (sleep, do I/O) without holding up other coroutines. A command added
    /// while sessions are open is there for their next line. Built-in names are refused.
    pub fn register(
        &self,
        name: impl Into<String>,
        help: impl Into<String>,
        run: impl Fn(&[&str], &mut dyn Write) -> io::Result<()> + 'static,
    ) -> Result<(), RegisterError> {
        self.inner
            .shared
            .register(name.into(), help.into(), Rc::new(run))
    }

    /// Sessions open now.
    pub fn sessions(&self) -> usize {
        self.inner.shared.sessions.get()
    }

    /// Accept sessions, each in its own coroutine, until this coroutine is shut down
    /// ([`CoroRef::shutdown`](crate::CoroRef::shutdown)) or its `with_timeout` expires
    /// (both say so with `print_stderr` and return `Ok`), or [`close`](Backdoor::close) is
    /// called (returns `Ok` quietly). An interrupt or a wake-up is reported on stderr and
    /// accepting goes on, so a stray one does not take the console away; the console's own
    /// `interrupt`/`shutdown` (and `eval`'s) refuse to target this coroutine. Open sessions
    /// go on until their clients leave. Only one coroutine may serve a backdoor.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use shrapnel::backdoor::{Backdoor, Options};
    ///
    /// let path = std::env::temp_dir().join(format!("shrapnel-doc-bd-{}.sock", std::process::id()));
    /// let console = Backdoor::bind(Options::unix(&path))?;
    /// let server = console.clone();
    /// shrapnel::Builder::new().name("console").spawn(move || server.serve())?;
    /// let client = shrapnel::spawn(move || -> std::io::Result<String> {
    ///     let conn = shrapnel::net::UnixStream::connect(&path)?;
    ///     (&conn).write_all(b"ps\nquit\n")?; // what a person types into `nc -U`
    ///     let mut out = String::new();
    ///     (&conn).read_to_string(&mut out)?;
    ///     console.close(); // stop accepting; the socket file is removed
    ///     Ok(out)
    /// });
    /// shrapnel::event_loop();
    /// let out = client.join().unwrap()?;
    /// assert!(out.contains("STATE") && out.contains("console"), "{out}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn serve(&self) -> io::Result<()> {
        self.inner.serve()
    }

    /// Stop accepting: the serving coroutine's `serve` returns `Ok`, the listener is
    /// closed, and a unix socket file is removed. Open sessions are not touched.
    pub fn close(&self) {
        self.inner.close();
    }
}

/// Bind with `options` and serve until shut down: [`Backdoor::bind`] then
/// [`Backdoor::serve`]. Run it in a coroutine.
pub fn serve(options: Options) -> io::Result<()> {
    Backdoor::bind(options)?.serve()
}
