//! The backdoor's listener and sessions: binding with the secure defaults (the unix socket
//! file rules, loopback-only TCP without an auth hook), the accept loop with its limits (of
//! sessions, and of connections waiting to log in) that outlives stray interrupts, and one
//! coroutine per session that logs in (deadline, failed-login delays from `login.rs`, no
//! telnet echo for the password), reads lines with an idle timeout, runs them, and writes
//! the output to that session only.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use shrapnel_core::Interrupted;

use super::line::{self, Input, LineDecoder, Request};
use super::login::{Peer, Penalties};
use super::{commands, Listen, Options, Shared, SCAN_PORTS};
use crate::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// Where a bound backdoor listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    /// A unix-domain socket at this path.
    Unix(PathBuf),
    /// A TCP address.
    Tcp(SocketAddr),
}

impl fmt::Display for ListenAddr {
    /// The path, or `ip:port`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Unix(p) => write!(f, "{}", p.display()),
            ListenAddr::Tcp(a) => write!(f, "{a}"),
        }
    }
}

/// Stack for a session coroutine: `eval` runs the script interpreter, which recurses.
#[cfg(feature = "backdoor-script")]
const SESSION_STACK: usize = 4 << 20;
#[cfg(not(feature = "backdoor-script"))]
const SESSION_STACK: usize = 256 << 10;
/// How long a refusal line may take to write before the connection is just closed.
const REFUSAL_WRITE: Duration = Duration::from_secs(1);
/// Pause after an accept error the process can recover from (out of fds, memory).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener),
}

impl Listener {
    fn accept(&self) -> io::Result<(Conn, Option<SocketAddr>)> {
        match self {
            Listener::Unix(l) => Ok((Conn::Unix(l.accept()?), None)),
            Listener::Tcp(l) => {
                let (s, peer) = l.accept()?;
                Ok((Conn::Tcp(s), Some(peer)))
            }
        }
    }

    fn close(&self) {
        let _ = match self {
            Listener::Unix(l) => l.close(),
            Listener::Tcp(l) => l.close(),
        };
    }
}

/// One client connection.
enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Conn {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Unix(s) => (&*s).read(buf),
            Conn::Tcp(s) => (&*s).read(buf),
        }
    }

    fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        match self {
            Conn::Unix(s) => (&*s).write_all(buf),
            Conn::Tcp(s) => (&*s).write_all(buf),
        }
    }

    fn close(&self) {
        let _ = match self {
            Conn::Unix(s) => s.close(),
            Conn::Tcp(s) => s.close(),
        };
    }
}

/// The socket file a unix backdoor created, removed when the backdoor closes — if the path
/// still names that same socket (not one a later run put there).
struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if let Ok(m) = std::fs::symlink_metadata(&self.path) {
            if m.file_type().is_socket() && m.dev() == self.dev && m.ino() == self.ino {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// A bound backdoor (what [`Backdoor`](super::Backdoor) points at).
pub(crate) struct Inner {
    pub(crate) addr: ListenAddr,
    pub(crate) shared: Rc<Shared>,
    listener: Listener,
    socket_file: RefCell<Option<SocketFile>>,
    serving: Cell<bool>,
    closed: Cell<bool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.close();
    }
}

fn default_welcome() -> String {
    let program = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "process".into());
    format!(
        "shrapnel backdoor: {program} pid {}; `help` lists the commands, `quit` leaves",
        std::process::id()
    )
}

impl Inner {
    pub(crate) fn bind(o: Options) -> io::Result<Inner> {
        crate::ensure();
        let shared = Shared {
            welcome: o.welcome.unwrap_or_else(default_welcome),
            prompt: o.prompt,
            auth: o.auth,
            max_line: o.max_line,
            max_sessions: o.max_sessions,
            idle_timeout: o.idle_timeout,
            login_timeout: o.login_timeout,
            max_pending_logins: o.max_pending_logins,
            penalties: RefCell::new(Penalties::new(o.login_delay, o.login_delay_cap)),
            commands: RefCell::new(BTreeMap::new()),
            sessions: Cell::new(0),
            pending_logins: Cell::new(0),
            accepted: Cell::new(0),
            #[cfg(feature = "backdoor-script")]
            script_setup: o.script_setup,
            #[cfg(feature = "backdoor-script")]
            max_operations: o.max_operations,
            #[cfg(feature = "backdoor-script")]
            eval_time_limit: o.eval_time_limit,
        };
        for (name, help, run) in o.commands {
            shared.register(name, help, run)?;
        }
        let has_auth = shared.auth.is_some();
        let (listener, addr, socket_file) = match o.listen {
            Listen::Unix(path) => {
                let (l, file) = bind_unix(&path)?;
                (Listener::Unix(l), ListenAddr::Unix(path), Some(file))
            }
            Listen::Tcp(a) => {
                check_exposure(a.ip(), has_auth)?;
                let l = TcpListener::bind(a)?;
                let a = l.local_addr()?;
                (Listener::Tcp(l), ListenAddr::Tcp(a), None)
            }
            Listen::TcpScan(ip) => {
                check_exposure(ip, has_auth)?;
                let (l, a) = bind_scan(ip)?;
                (Listener::Tcp(l), ListenAddr::Tcp(a), None)
            }
        };
        Ok(Inner {
            addr,
            shared: Rc::new(shared),
            listener,
            socket_file: RefCell::new(socket_file),
            serving: Cell::new(false),
            closed: Cell::new(false),
        })
    }

    pub(crate) fn serve(&self) -> io::Result<()> {
        if self.serving.replace(true) {
            return Err(io::Error::other(format!(
                "backdoor on {}: already served by another coroutine; call serve once",
                self.addr
            )));
        }
        let _listening = ListenerMark::new();
        let result = loop {
            if self.closed.get() {
                break Ok(());
            }
            match self.listener.accept() {
                Ok((conn, peer)) => self.admit(Rc::new(conn), peer),
                Err(_) if self.closed.get() => break Ok(()),
                Err(e) => match Interrupted::from_io_error(&e) {
                    // A request to finish (or the caller's with_timeout): stop, saying so,
                    // since `Ok` tells the caller nothing.
                    Some(i @ (Interrupted::Shutdown | Interrupted::Timeout(_))) => {
                        let why = match i {
                            Interrupted::Shutdown => "was shut down",
                            _ => "reached the end of a with_timeout",
                        };
                        crate::stderr::print_stderr(&format!(
                            "backdoor on {}: closed: its coroutine {} {why}",
                            self.addr,
                            who_am_i()
                        ));
                        break Ok(());
                    }
                    // An interrupt or a wake-up is not a request to finish: a stray one
                    // must not take the console away.
                    Some(i) => crate::stderr::print_stderr(&format!(
                        "backdoor on {}: its coroutine {} was {i}; still accepting (shut it \
                         down or call Backdoor::close to stop the backdoor)",
                        self.addr,
                        who_am_i()
                    )),
                    None if is_transient(&e) => {
                        crate::stderr::write_stderr(&format!(
                            "backdoor on {}: accept failed, retrying: {e}\n",
                            self.addr
                        ));
                        if let Err(i) = crate::sleep(ACCEPT_BACKOFF) {
                            crate::stderr::print_stderr(&format!(
                                "backdoor on {}: closed: its coroutine {} was {i} while \
                                 waiting to retry",
                                self.addr,
                                who_am_i()
                            ));
                            break Ok(());
                        }
                    }
                    None => {
                        break Err(io::Error::new(
                            e.kind(),
                            format!("backdoor on {}: accept failed: {e}", self.addr),
                        ))
                    }
                },
            }
        };
        self.close();
        result
    }

    pub(crate) fn close(&self) {
        self.closed.set(true);
        self.listener.close();
        drop(self.socket_file.borrow_mut().take());
    }

    /// Start a session for `conn`, or refuse it when its limit is reached: the limit of
    /// sessions, or with an auth hook the limit of connections waiting to log in.
    fn admit(&self, conn: Rc<Conn>, peer: Option<SocketAddr>) {
        let shared = &self.shared;
        let place = if shared.auth.is_some() {
            Place::waiting(shared.clone())
        } else {
            Place::session(shared.clone())
        };
        let place = match place {
            Ok(p) => p,
            Err(refusal) => {
                let msg = format!("{refusal}\n");
                let _ = crate::with_timeout(REFUSAL_WRITE, || conn.write_all(msg.as_bytes()));
                conn.close();
                return;
            }
        };
        let n = shared.accepted.get() + 1;
        shared.accepted.set(n);
        let name = match peer {
            Some(p) => format!("backdoor session {n} ({p})"),
            None => format!("backdoor session {n}"),
        };
        let session = Session::new(conn.clone(), shared.clone(), peer);
        let spawned = crate::Builder::new()
            .name(name)
            .stack_size(SESSION_STACK)
            .spawn(move || session.run(place));
        if let Err(e) = spawned {
            let msg = format!("backdoor: cannot start a session: {e}\n");
            let _ = crate::with_timeout(REFUSAL_WRITE, || conn.write_all(msg.as_bytes()));
            conn.close();
        }
    }
}

thread_local! {
    /// The coroutines serving a backdoor on this thread's scheduler, which the console's
    /// levers refuse to pull (see [`is_listener`]).
    static LISTENERS: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// Whether coroutine `id` is serving a backdoor's accept loop.
pub(crate) fn is_listener(id: u64) -> bool {
    LISTENERS.with(|l| l.borrow().contains(&id))
}

/// Marks the running coroutine as a listener while it serves.
struct ListenerMark(Option<u64>);

impl ListenerMark {
    fn new() -> Self {
        let id = crate::current().map(|c| c.id());
        if let Some(id) = id {
            LISTENERS.with(|l| l.borrow_mut().push(id));
        }
        ListenerMark(id)
    }
}

impl Drop for ListenerMark {
    fn drop(&mut self) {
        if let Some(id) = self.0 {
            LISTENERS.with(|l| {
                let mut l = l.borrow_mut();
                if let Some(i) = l.iter().position(|&x| x == id) {
                    l.swap_remove(i);
                }
            });
        }
    }
}

/// `#3 'backdoor'`: the running coroutine, for a message.
fn who_am_i() -> String {
    match crate::current() {
        Some(c) => format!("#{} '{}'", c.id(), c.name()),
        None => "(none)".into(),
    }
}

/// The place a connection holds, counted for its limit until dropped: one of the
/// sessions, or (with an auth hook, until it logs in) one of the connections waiting to
/// log in.
struct Place {
    shared: Rc<Shared>,
    holds: Holds,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Holds {
    Session,
    Waiting,
    Nothing,
}

impl Place {
    fn counter(shared: &Shared, holds: Holds) -> Option<&Cell<usize>> {
        match holds {
            Holds::Session => Some(&shared.sessions),
            Holds::Waiting => Some(&shared.pending_logins),
            Holds::Nothing => None,
        }
    }

    fn take(shared: Rc<Shared>, holds: Holds) -> Result<Place, String> {
        let (limit, refusal) = match holds {
            Holds::Session => (
                shared.max_sessions,
                format!(
                    "backdoor: too many sessions ({} open, the limit); try again later",
                    shared.max_sessions
                ),
            ),
            _ => (
                shared.max_pending_logins,
                format!(
                    "backdoor: too many connections waiting to log in ({}, the limit); try \
                     again later",
                    shared.max_pending_logins
                ),
            ),
        };
        let count = Place::counter(&shared, holds).expect("a real place");
        if count.get() >= limit {
            return Err(refusal);
        }
        count.set(count.get() + 1);
        Ok(Place { shared, holds })
    }

    /// A session's place.
    fn session(shared: Rc<Shared>) -> Result<Place, String> {
        Place::take(shared, Holds::Session)
    }

    /// A place among the connections waiting to log in.
    fn waiting(shared: Rc<Shared>) -> Result<Place, String> {
        Place::take(shared, Holds::Waiting)
    }

    /// Logged in: trade the waiting place for a session's, if one is free.
    fn log_in(&mut self) -> Result<(), String> {
        self.release();
        let mut session = Place::session(self.shared.clone())?;
        self.holds = std::mem::replace(&mut session.holds, Holds::Nothing);
        Ok(())
    }

    fn release(&mut self) {
        if let Some(c) = Place::counter(&self.shared, self.holds) {
            c.set(c.get() - 1);
        }
        self.holds = Holds::Nothing;
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.release();
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM | libc::ECONNABORTED)
    )
}

/// A TCP backdoor anyone else can reach must ask who is there.
fn check_exposure(ip: IpAddr, has_auth: bool) -> io::Result<()> {
    if ip.is_loopback() || has_auth {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "backdoor: refusing to listen on {ip} without an authentication hook: anyone who \
             can reach that address could run commands in this process. Listen on 127.0.0.1 \
             or a unix socket, or set Options::auth"
        ),
    ))
}

fn bind_scan(ip: IpAddr) -> io::Result<(TcpListener, SocketAddr)> {
    let mut last = None;
    for port in SCAN_PORTS {
        match TcpListener::bind((ip, port)) {
            Ok(l) => {
                let a = l.local_addr()?;
                return Ok((l, a));
            }
            Err(e) => last = Some(e),
        }
    }
    let last = last.map(|e| e.to_string()).unwrap_or_default();
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!(
            "backdoor: no free port in {}..={} on {ip} (last error: {last}); name a port with \
             Options::tcp or use a unix socket",
            SCAN_PORTS.start(),
            SCAN_PORTS.end()
        ),
    ))
}

/// Bind a unix socket at `path`: replace a stale socket, refuse anything else.
fn bind_unix(path: &Path) -> io::Result<(UnixListener, SocketFile)> {
    let shown = path.display();
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if socket_is_live(path) {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!(
                        "backdoor: {shown} is a socket another process is listening on; \
                         choose another path or stop that process"
                    ),
                ));
            }
            std::fs::remove_file(path).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("backdoor: cannot remove the stale socket {shown}: {e}"),
                )
            })?;
        }
        Ok(m) => {
            let what = if m.is_file() {
                "a regular file"
            } else if m.is_dir() {
                "a directory"
            } else if m.file_type().is_symlink() {
                "a symbolic link"
            } else {
                "not a socket"
            };
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "backdoor: {shown} exists and is {what}; it is left alone. Remove it or \
                     choose another path for the backdoor socket"
                ),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("backdoor: cannot look at {shown}: {e}"),
            ))
        }
    }
    // Mode 0600 is set between bind and listen, so no one else can connect in between.
    let listener =
        UnixListener::bind(path).map_err(|e| io::Error::new(e.kind(), format!("backdoor: {e}")))?;
    let m = std::fs::symlink_metadata(path)?;
    let file = SocketFile {
        path: path.to_path_buf(),
        dev: m.dev(),
        ino: m.ino(),
    };
    Ok((listener, file))
}

/// Whether some process accepts connections on the socket at `path` (a non-blocking
/// connect: a full backlog counts as live).
fn socket_is_live(path: &Path) -> bool {
    use socket2::{Domain, SockAddr, Socket, Type};
    let Ok(s) = Socket::new(Domain::UNIX, Type::STREAM, None) else {
        return false;
    };
    if s.set_nonblocking(true).is_err() {
        return false;
    }
    let Ok(addr) = SockAddr::unix(path) else {
        return false;
    };
    match s.connect(&addr) {
        Ok(()) => true,
        Err(e) => matches!(e.raw_os_error(), Some(libc::EINPROGRESS | libc::EAGAIN)),
    }
}

/// The text of a caught panic.
pub(crate) fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-text panic payload".into()
    }
}

/// What to do after a line.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

/// One connected client, run by its own coroutine.
struct Session {
    conn: Rc<Conn>,
    shared: Rc<Shared>,
    /// Who is connected, for the failed-login delays.
    peer: Peer,
    /// IAC WILL ECHO was sent (while a TCP client types its password) and not yet undone.
    echo_off: bool,
    decoder: LineDecoder,
    pending: VecDeque<Input>,
    #[cfg(feature = "backdoor-script")]
    script: Option<super::script::ScriptState>,
}

impl Session {
    fn new(conn: Rc<Conn>, shared: Rc<Shared>, peer: Option<SocketAddr>) -> Self {
        Session {
            decoder: LineDecoder::new(shared.max_line),
            conn,
            shared,
            peer: Peer::of(peer.map(|p| p.ip())),
            echo_off: false,
            pending: VecDeque::new(),
            #[cfg(feature = "backdoor-script")]
            script: None,
        }
    }

    fn run(mut self, mut place: Place) {
        // An error here is the client going away or timing out; nothing to report.
        let _ = self.converse(&mut place);
        self.conn.close();
    }

    fn converse(&mut self, place: &mut Place) -> io::Result<()> {
        if let Some(auth) = self.shared.auth.clone() {
            if !self.login(&*auth)? {
                return Ok(());
            }
            if let Err(refusal) = place.log_in() {
                return self.send(format!("{refusal}\n").as_bytes());
            }
        }
        let hello = format!("{}\n{}", self.shared.welcome, self.shared.prompt);
        self.send(hello.as_bytes())?;
        while let Some(text) = self.next_line()? {
            let mut out = Vec::new();
            let flow = self.dispatch(&text, &mut out);
            if !out.is_empty() && !out.ends_with(b"\n") {
                out.push(b'\n');
            }
            if flow == Flow::Close {
                out.extend_from_slice(b"bye\n");
                return self.send(&out);
            }
            out.extend_from_slice(self.shared.prompt.as_bytes());
            self.send(&out)?;
            if !self.pending.is_empty() {
                // A client that pasted many lines gets them run one slice each, so a burst
                // of commands does not hold up the other coroutines.
                crate::yield_slice();
            }
        }
        Ok(())
    }

    /// One try within the login deadline; the hook's answer, or false if the client left
    /// or ran out of time (told so).
    fn login(&mut self, auth: &super::AuthFn) -> io::Result<bool> {
        let limit = self.shared.login_timeout;
        match crate::with_timeout(limit, || self.try_login(auth)) {
            Ok(r) => r,
            Err(crate::Timeout) => {
                // Echo back on ends the client's line already.
                let newline = if self.echo_off { "" } else { "\n" };
                self.echo(true)?;
                let msg = format!(
                    "{newline}backdoor: no login within {}; closing the connection\n",
                    commands::human(limit)
                );
                self.send(msg.as_bytes())?;
                Ok(false)
            }
        }
    }

    /// `user:`, `password:` (without echo on TCP), the wait that earlier failures from
    /// this peer impose, then the hook decides.
    fn try_login(&mut self, auth: &super::AuthFn) -> io::Result<bool> {
        self.send(b"user: ")?;
        let Some(user) = self.next_line()? else {
            return Ok(false);
        };
        self.echo(false)?;
        self.send(b"password: ")?;
        let Some(password) = self.next_line()? else {
            return Ok(false);
        };
        self.echo(true)?;
        let penalties = &self.shared.penalties;
        loop {
            let wait = penalties.borrow_mut().wait(self.peer, Instant::now());
            if wait.is_zero() {
                break;
            }
            crate::sleep(wait)?;
        }
        penalties.borrow_mut().checking(self.peer, Instant::now());
        let ok = catch_unwind(AssertUnwindSafe(|| auth(&user, &password))).unwrap_or(false);
        if ok {
            penalties.borrow_mut().succeeded(self.peer);
        } else {
            penalties.borrow_mut().failed(self.peer, Instant::now());
            self.send(b"login failed\n")?;
        }
        Ok(ok)
    }

    /// Ask a TCP (telnet) client to stop echoing what is typed (IAC WILL ECHO: "the server
    /// echoes", and it does not), or let it echo again (IAC WONT ECHO, then the newline the
    /// client did not show). The decoder drops the client's DO/DONT answers. Unix-socket
    /// clients (`nc -U`, `socat`) do not speak telnet and get nothing.
    fn echo(&mut self, on: bool) -> io::Result<()> {
        if !matches!(*self.conn, Conn::Tcp(_)) || on != self.echo_off {
            return Ok(());
        }
        self.echo_off = !on;
        if on {
            self.send(&[line::IAC, line::WONT, line::ECHO, b'\n'])
        } else {
            self.send(&[line::IAC, line::WILL, line::ECHO])
        }
    }

    /// The next line, or `None` when the session is over (the client left, sent Ctrl-D,
    /// stayed idle too long, or sent an overlong line — the last two are told why).
    fn next_line(&mut self) -> io::Result<Option<String>> {
        loop {
            match self.pending.pop_front() {
                Some(Input::Line(l)) => return Ok(Some(l)),
                Some(Input::End) => return Ok(None),
                Some(Input::TooLong) => {
                    let msg = format!(
                        "\nbackdoor: line longer than {} bytes; closing the session\n",
                        self.shared.max_line
                    );
                    self.send(msg.as_bytes())?;
                    return Ok(None);
                }
                None if self.decoder.is_finished() => return Ok(None),
                None => {}
            }
            let mut buf = [0u8; 4096];
            let conn = &self.conn;
            let n = match crate::with_timeout(self.shared.idle_timeout, || conn.read(&mut buf)) {
                Err(crate::Timeout) => {
                    let msg = format!(
                        "\nbackdoor: idle for {}; closing the session\n",
                        commands::human(self.shared.idle_timeout)
                    );
                    let _ = self.send(msg.as_bytes());
                    return Ok(None);
                }
                Ok(r) => r?,
            };
            if n == 0 {
                return Ok(None);
            }
            let mut got = Vec::new();
            self.decoder.feed(&buf[..n], &mut got);
            self.pending.extend(got);
        }
    }

    /// Write to this session only; a client that does not read for the idle time is
    /// dropped.
    fn send(&self, bytes: &[u8]) -> io::Result<()> {
        let conn = &self.conn;
        match crate::with_timeout(self.shared.idle_timeout, || conn.write_all(bytes)) {
            Ok(r) => r,
            Err(crate::Timeout) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "backdoor: the client did not read its output",
            )),
        }
    }

    fn dispatch(&mut self, text: &str, out: &mut Vec<u8>) -> Flow {
        let req = match line::parse(text) {
            Ok(r) => r,
            Err(e) => {
                let _ = writeln!(out, "{e}");
                return Flow::Continue;
            }
        };
        match req {
            Request::Empty => {}
            Request::Quit => return Flow::Close,
            Request::Eval(script) => self.eval(script, out),
            Request::Other { name, args } => self.app_command(name, &args, out),
            builtin => out.extend_from_slice(commands::run(&builtin, &self.shared).as_bytes()),
        }
        Flow::Continue
    }

    fn app_command(&self, name: &str, args: &[&str], out: &mut Vec<u8>) {
        let cmd = self.shared.commands.borrow().get(name).cloned();
        let Some(cmd) = cmd else {
            let _ = writeln!(
                out,
                "unknown command '{}'; try `help`",
                line::shorten(name).escape_debug()
            );
            return;
        };
        let failure = match catch_unwind(AssertUnwindSafe(|| (cmd.run)(args, out))) {
            Ok(Ok(())) => return,
            Ok(Err(e)) => format!("{name}: error: {e}"),
            Err(p) => format!("{name}: panicked: {}", panic_message(&*p)),
        };
        if !out.is_empty() && !out.ends_with(b"\n") {
            out.push(b'\n');
        }
        let _ = writeln!(out, "{failure}");
    }

    #[cfg(feature = "backdoor-script")]
    fn eval(&mut self, script: &str, out: &mut Vec<u8>) {
        let shared = &self.shared;
        let state = self
            .script
            .get_or_insert_with(|| super::script::ScriptState::new(shared));
        if let Err(p) = state.eval(script, out) {
            self.script = None;
            let _ = writeln!(
                out,
                "eval: the script panicked: {}; its variables were reset",
                panic_message(&*p)
            );
        }
    }

    #[cfg(not(feature = "backdoor-script"))]
    fn eval(&mut self, _script: &str, out: &mut Vec<u8>) {
        let _ = writeln!(
            out,
            "eval: the script prompt is not in this build (feature `backdoor-script` of shrapnel)"
        );
    }
}
