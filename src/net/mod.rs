//! Sockets for coroutines: TCP and Unix-domain streams and listeners, `socketpair`, and
//! `live_sockets` for the backdoor; names resolved off the scheduler's thread
//! (`resolve.rs`: [`ToSocketAddrs`], [`lookup_host`]). Every socket is non-blocking and close-on-exec; a call
//! that would block waits for readiness through the scheduler, so code reads like
//! blocking code. The types implement `std::io::Read`/`Write` (also for `&T`), and each
//! can be closed through a shared reference: a coroutine blocked on it then gets a
//! `NotConnected` error saying the fd was closed by another coroutine.
//!
//! Defaults: every socket is close-on-exec and non-blocking; TCP listeners bind with
//! `SO_REUSEADDR` and a backlog of 1024; accepted and connected TCP streams have
//! `TCP_NODELAY` on (requests and answers are small and latency matters more than packet
//! count; `set_nodelay(false)` turns it off). For other options, lend the fd to socket2
//! (`socket2::SockRef::from(&stream)`), or build a listener with socket2 and adopt it
//! (`TcpListener::from(std::net::TcpListener::from(socket))`). Read and write timeouts
//! (`set_read_timeout`, `set_write_timeout`) have std's meaning, per call.
//!
//! A socket belongs to the scheduler of the thread that made it, so the types are `!Send`.
//! To hand one to another thread, convert it with `into_std` (deregistered, blocking
//! again), send that, and take it back with `from_std` there:
//!
//! ```compile_fail
//! fn needs_send<T: Send>(_: T) {}
//! let (a, _b) = shrapnel::net::socketpair().unwrap();
//! needs_send(a); // a shrapnel socket cannot cross threads
//! ```
//!
//! ```no_run
//! let (conn, _) = shrapnel::net::TcpListener::bind("127.0.0.1:0")?.accept()?;
//! let std_conn = conn.into_std()?;
//! std::thread::spawn(move || {
//!     let conn = shrapnel::net::TcpStream::from_std(std_conn).unwrap();
//!     shrapnel::spawn(move || { /* serve it on this thread's scheduler */ drop(conn) });
//!     shrapnel::event_loop();
//! });
//! # Ok::<(), std::io::Error>(())
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};
use std::path::Path;

use shrapnel_core::io::Direction;
use socket2::{Domain, SockAddr, Socket, Type};

use crate::fd::OwnedFd;

mod resolve;
pub use self::datagram::{UdpSocket, UnixDatagram};
pub use self::resolve::{lookup_host, set_resolver, system_resolver, Resolver, ToSocketAddrs};

/// What kind of socket a live fd is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketKind {
    /// A listening TCP socket.
    TcpListener,
    /// A connected TCP stream.
    TcpStream,
    /// A listening Unix-domain socket.
    UnixListener,
    /// A connected Unix-domain stream.
    UnixStream,
    /// A UDP socket.
    Udp,
    /// A Unix-domain datagram socket.
    UnixDatagram,
}

/// One entry of [`live_sockets`].
#[derive(Clone, Debug)]
pub struct SocketInfo {
    /// The fd.
    pub fd: RawFd,
    /// Its kind.
    pub kind: SocketKind,
    /// Local address, as text.
    pub local: String,
    /// Peer address, as text (empty for listeners).
    pub peer: String,
}

std::thread_local! {
    static LIVE: RefCell<BTreeMap<RawFd, SocketKind>> = const { RefCell::new(BTreeMap::new()) };
}

fn track(fd: RawFd, kind: SocketKind) {
    LIVE.with(|l| l.borrow_mut().insert(fd, kind));
}

pub(crate) fn forget_socket(fd: RawFd) {
    let _ = LIVE.try_with(|l| l.borrow_mut().remove(&fd));
}

fn describe(addr: io::Result<SockAddr>) -> String {
    match addr {
        Ok(a) => match a.as_socket() {
            Some(sa) => sa.to_string(),
            None => a
                .as_pathname()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "(unnamed)".into()),
        },
        Err(_) => String::new(),
    }
}

/// The sockets this thread's coroutines have open, sorted by fd.
pub fn live_sockets() -> Vec<SocketInfo> {
    let list: Vec<(RawFd, SocketKind)> =
        LIVE.with(|l| l.borrow().iter().map(|(a, b)| (*a, *b)).collect());
    list.into_iter()
        .map(|(fd, kind)| {
            // SAFETY: the fd is open (it is removed from LIVE before it is closed); the
            // ManuallyDrop keeps this borrowed Socket from closing it.
            let s = std::mem::ManuallyDrop::new(unsafe { Socket::from_raw_fd(fd) });
            let peer = match kind {
                SocketKind::TcpListener | SocketKind::UnixListener => String::new(),
                // An unconnected datagram socket has no peer: describe() leaves it empty.
                _ => describe(s.peer_addr()),
            };
            SocketInfo {
                fd,
                kind,
                local: describe(s.local_addr()),
                peer,
            }
        })
        .collect()
}

fn new_socket(domain: Domain) -> io::Result<Socket> {
    // socket2 sets close-on-exec on every socket it creates, on every Unix.
    let s = Socket::new(domain, Type::STREAM, None)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

fn adopt(s: impl IntoRawFd, kind: SocketKind) -> OwnedFd {
    let fd = s.into_raw_fd();
    track(fd, kind);
    OwnedFd::new(fd)
}

/// `AsRawFd`, `AsFd`, `FromRawFd`, `IntoRawFd` and `try_clone` for a socket type with an `fd` field and
/// a `KIND` (from `std_conversion`).
macro_rules! fd_interop {
    ($t:ident) => {
        impl AsRawFd for $t {
            fn as_raw_fd(&self) -> RawFd {
                self.fd.raw()
            }
        }
        impl std::os::fd::AsFd for $t {
            /// Lend the fd (for `socket2::SockRef` and the like).
            ///
            /// # Panics
            /// If the socket was closed with `close` (there is no fd left to lend). Do not
            /// `close` it while a borrowed fd is in use.
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                let fd = self.fd.raw();
                assert!(
                    fd >= 0,
                    "as_fd: this {} was closed with close(); there is no fd to lend",
                    stringify!($t)
                );
                // SAFETY: fd is open (not -1) and owned by `self`, which the borrow keeps
                // alive; only `close` (documented above as not to be called meanwhile) or
                // drop could end it sooner.
                unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
            }
        }
        impl FromRawFd for $t {
            /// Adopt an open socket fd of this kind (made non-blocking and registered with
            /// this thread's scheduler on first use).
            unsafe fn from_raw_fd(fd: RawFd) -> $t {
                // SAFETY: the caller hands over an open socket fd it owns.
                let s = unsafe { Socket::from_raw_fd(fd) };
                // On an fd we own, setting O_NONBLOCK cannot fail.
                let _ = s.set_nonblocking(true);
                $t {
                    fd: adopt(s, $t::KIND),
                }
            }
        }
        impl IntoRawFd for $t {
            /// Give the fd up: deregistered from the scheduler, still non-blocking; -1 if
            /// the socket was closed with `close`.
            fn into_raw_fd(self) -> RawFd {
                self.fd.release().unwrap_or(-1)
            }
        }
        impl $t {
            /// Another handle on the same socket, under a new fd (as std's `try_clone`).
            /// Two coroutines may then wait on it at once, one per handle.
            pub fn try_clone(&self) -> io::Result<$t> {
                let fd = self.fd.duplicate()?;
                // SAFETY: the fd was just made by dup and is owned by nobody else.
                let s = unsafe { Socket::from_raw_fd(fd) };
                Ok($t {
                    fd: adopt(s, $t::KIND),
                })
            }
        }
    };
}

/// Read and write timeouts (std's meaning) and `close`, for the stream and datagram types.
macro_rules! timeouts_and_close {
    ($t:ident) => {
        impl $t {
            /// How long one read may wait before it fails with `TimedOut` (std's meaning:
            /// per call, `None` for no limit; `Some(0)` is refused with `InvalidInput`).
            pub fn set_read_timeout(&self, t: Option<std::time::Duration>) -> io::Result<()> {
                self.fd.set_timeout(Direction::Read, t)
            }
            /// How long one write may wait before it fails with `TimedOut`.
            pub fn set_write_timeout(&self, t: Option<std::time::Duration>) -> io::Result<()> {
                self.fd.set_timeout(Direction::Write, t)
            }
            /// The read timeout set, if any.
            pub fn read_timeout(&self) -> io::Result<Option<std::time::Duration>> {
                Ok(self.fd.timeout(Direction::Read))
            }
            /// The write timeout set, if any.
            pub fn write_timeout(&self) -> io::Result<Option<std::time::Duration>> {
                Ok(self.fd.timeout(Direction::Write))
            }
            /// Close now (idempotent); a coroutine blocked on this socket wakes with an error.
            pub fn close(&self) -> io::Result<()> {
                self.fd.close()
            }
        }
    };
}

/// `into_std` and `from_std` between a socket type and std's.
macro_rules! std_conversion {
    ($t:ident, $std:ty, $kind:expr) => {
        impl $t {
            /// Take it out of this thread's scheduler as std's type, to send to another
            /// thread: deregistered, put back in blocking mode. A coroutine of this thread
            /// still waiting on it wakes with a "closed" error.
            pub fn into_std(self) -> io::Result<$std> {
                let fd = self.fd.release()?;
                // SAFETY: `release` gave up the fd without closing it; it is ours to own.
                let s = unsafe { <$std>::from_raw_fd(fd) };
                s.set_nonblocking(false)?;
                Ok(s)
            }

            /// Adopt a std socket into this thread's scheduler (made non-blocking).
            pub fn from_std(s: $std) -> io::Result<$t> {
                s.set_nonblocking(true)?;
                Ok($t {
                    fd: adopt(s, $kind),
                })
            }

            const KIND: SocketKind = $kind;
        }

        impl From<$std> for $t {
            /// [`from_std`](Self::from_std), for a socket std made (setting O_NONBLOCK on
            /// an fd one owns cannot fail).
            fn from(s: $std) -> $t {
                let _ = s.set_nonblocking(true);
                $t {
                    fd: adopt(s, $kind),
                }
            }
        }
    };
}

// After the macros it uses (`fd_interop`, `timeouts_and_close`, `std_conversion`).
mod datagram;

std_conversion!(TcpListener, std::net::TcpListener, SocketKind::TcpListener);
std_conversion!(TcpStream, std::net::TcpStream, SocketKind::TcpStream);
std_conversion!(
    UnixListener,
    std::os::unix::net::UnixListener,
    SocketKind::UnixListener
);
std_conversion!(
    UnixStream,
    std::os::unix::net::UnixStream,
    SocketKind::UnixStream
);

#[track_caller]
fn accept_on(fd: &OwnedFd) -> io::Result<(Socket, SockAddr)> {
    fd.io(Direction::Read, |raw| {
        // SAFETY: borrowed for the duration of the accept; ManuallyDrop keeps it open.
        let l = std::mem::ManuallyDrop::new(unsafe { Socket::from_raw_fd(raw) });
        let r = l.accept4_or_accept();
        r.map_err(|e| annotate_accept(e, raw))
    })
}

fn annotate_accept(e: io::Error, fd: RawFd) -> io::Error {
    match e.raw_os_error() {
        Some(libc::EMFILE) | Some(libc::ENFILE) => io::Error::new(
            e.kind(),
            format!(
                "accept on listening fd {fd} failed: {e} — the process is out of file descriptors; \
                 raise the limit (ulimit -n) or close idle connections. The listener stays open \
                 and the pending connection stays queued"
            ),
        ),
        _ => e,
    }
}

trait AcceptNonblocking {
    fn accept4_or_accept(&self) -> io::Result<(Socket, SockAddr)>;
}

impl AcceptNonblocking for Socket {
    fn accept4_or_accept(&self) -> io::Result<(Socket, SockAddr)> {
        // socket2 uses accept4(SOCK_CLOEXEC) where the OS has it; make it non-blocking too.
        let (s, a) = self.accept()?;
        s.set_nonblocking(true)?;
        Ok((s, a))
    }
}

#[track_caller]
fn connect_on(s: Socket, addr: &SockAddr, kind: SocketKind) -> io::Result<OwnedFd> {
    let fd = adopt(s, kind);
    // SAFETY: borrowed; ManuallyDrop keeps it open (OwnedFd owns it).
    let sock = std::mem::ManuallyDrop::new(unsafe { Socket::from_raw_fd(fd.get()?) });
    match sock.connect(addr) {
        Ok(()) => return Ok(fd),
        Err(e)
            if e.raw_os_error() == Some(libc::EINPROGRESS)
                || e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    crate::fd::wait_writable(fd.get()?)?;
    match sock.take_error()? {
        None => Ok(fd),
        Some(e) => Err(e),
    }
}

macro_rules! stream_io {
    // Read and Write for the socket and for a shared reference to it.
    (@rw $ty:ty) => {
        impl ::std::io::Read for $ty {
            #[track_caller]
            fn read(&mut self, buf: &mut [u8]) -> ::std::io::Result<usize> {
                self.fd.read(buf)
            }
            /// One `readv(2)` into all of `bufs`.
            #[track_caller]
            fn read_vectored(&mut self, bufs: &mut [::std::io::IoSliceMut<'_>]) -> ::std::io::Result<usize> {
                self.fd.read_vectored(bufs)
            }
        }
        impl ::std::io::Write for $ty {
            #[track_caller]
            fn write(&mut self, buf: &[u8]) -> ::std::io::Result<usize> {
                self.fd.write(buf)
            }
            /// One `writev(2)` of all of `bufs`.
            #[track_caller]
            fn write_vectored(&mut self, bufs: &[::std::io::IoSlice<'_>]) -> ::std::io::Result<usize> {
                self.fd.write_vectored(bufs)
            }
            fn flush(&mut self) -> ::std::io::Result<()> {
                Ok(())
            }
        }
    };
    ($t:ident) => {
        stream_io!(@rw $t);
        stream_io!(@rw &$t);
        fd_interop!($t);
        timeouts_and_close!($t);
        impl $t {
            /// Read without taking the bytes out of the socket (`MSG_PEEK`), waiting if none
            /// are there.
            #[track_caller]
            pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
                self.fd.io(Direction::Read, |fd| {
                    // SAFETY: receives into a live, writable slice of the given length.
                    let n = unsafe {
                        libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_PEEK)
                    };
                    if n < 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(n as usize)
                })
            }
            /// Shut down one or both directions.
            pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
                self.borrowed()?.shutdown(how)
            }
            fn borrowed(&self) -> io::Result<std::mem::ManuallyDrop<Socket>> {
                // SAFETY: borrowed while self keeps the fd open; ManuallyDrop never closes it.
                Ok(std::mem::ManuallyDrop::new(unsafe {
                    Socket::from_raw_fd(self.fd.get()?)
                }))
            }
        }
    };
}
/// Read and Write over an `OwnedFd` field `fd`, for the child-process pipes too.
pub(crate) use stream_io;

/// A listening TCP socket.
///
/// ```
/// use std::io::{Read, Write};
/// use shrapnel::net::{TcpListener, TcpStream};
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let addr = listener.local_addr()?;
/// let server = shrapnel::spawn(move || -> std::io::Result<String> {
///     let (conn, _peer) = listener.accept()?; // blocks only this coroutine
///     let mut got = String::new();
///     (&conn).read_to_string(&mut got)?;
///     Ok(got)
/// });
/// shrapnel::spawn(move || -> std::io::Result<()> {
///     let conn = TcpStream::connect(addr)?;
///     (&conn).write_all(b"ping")?;
///     conn.shutdown(std::net::Shutdown::Write)
/// });
/// shrapnel::event_loop();
/// assert_eq!(server.join().unwrap()?, "ping");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct TcpListener {
    fd: OwnedFd,
}

impl TcpListener {
    /// Bind and listen (SO_REUSEADDR on, backlog 1024). Bind `127.0.0.1` unless the service
    /// must be reachable from elsewhere.
    #[track_caller]
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        Self::bind_with(addr, false)
    }

    /// Bind with SO_REUSEPORT too, so each thread running a scheduler can have its own
    /// listener on the same port, and the kernel spreads connections among them.
    #[track_caller]
    pub fn bind_reuseport(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        Self::bind_with(addr, true)
    }

    #[track_caller]
    fn bind_with(addr: impl ToSocketAddrs, reuseport: bool) -> io::Result<TcpListener> {
        let mut last = None;
        for a in addr.resolve()? {
            let s = new_socket(Domain::for_address(a))?;
            s.set_reuse_address(true)?;
            if reuseport {
                s.set_reuse_port(true)?;
            }
            match s.bind(&a.into()).and_then(|_| s.listen(1024)) {
                Ok(()) => {
                    return Ok(TcpListener {
                        fd: adopt(s, SocketKind::TcpListener),
                    })
                }
                Err(e) => {
                    last = Some(io::Error::new(
                        e.kind(),
                        format!("cannot listen on {a}: {e}"),
                    ))
                }
            }
        }
        Err(last
            .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind")))
    }

    /// Wait for and accept a connection.
    #[track_caller]
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (s, a) = accept_on(&self.fd)?;
        let peer = a
            .as_socket()
            .ok_or_else(|| io::Error::other("accepted a non-IP peer"))?;
        s.set_nodelay(true).ok();
        Ok((
            TcpStream {
                fd: adopt(s, SocketKind::TcpStream),
            },
            peer,
        ))
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        // SAFETY: borrowed while self keeps the fd open; ManuallyDrop never closes it.
        let s = std::mem::ManuallyDrop::new(unsafe { Socket::from_raw_fd(self.fd.get()?) });
        s.local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("not an IP socket"))
    }

    /// Close now; a coroutine blocked in `accept` wakes with an error.
    pub fn close(&self) -> io::Result<()> {
        self.fd.close()
    }
}

fd_interop!(TcpListener);

impl TcpListener {
    /// The connections as they come: `accept` in a loop (as std's `incoming`).
    pub fn incoming(&self) -> Incoming<'_, TcpListener> {
        Incoming { listener: self }
    }
}

/// The iterator of [`TcpListener::incoming`] and [`UnixListener::incoming`]: never ends,
/// each item one `accept`.
#[derive(Debug)]
pub struct Incoming<'a, L> {
    listener: &'a L,
}

impl Iterator for Incoming<'_, TcpListener> {
    type Item = io::Result<TcpStream>;
    #[track_caller]
    fn next(&mut self) -> Option<Self::Item> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

impl Iterator for Incoming<'_, UnixListener> {
    type Item = io::Result<UnixStream>;
    #[track_caller]
    fn next(&mut self) -> Option<Self::Item> {
        Some(self.listener.accept())
    }
}

/// A connected TCP stream.
#[derive(Debug)]
pub struct TcpStream {
    fd: OwnedFd,
}

stream_io!(TcpStream);

impl TcpStream {
    /// Connect, waiting for the handshake; tries each address in turn.
    #[track_caller]
    pub fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let mut last = None;
        for a in addr.resolve()? {
            let s = new_socket(Domain::for_address(a))?;
            s.set_nodelay(true).ok();
            match connect_on(s, &a.into(), SocketKind::TcpStream) {
                Ok(fd) => return Ok(TcpStream { fd }),
                Err(e) => {
                    last = Some(io::Error::new(
                        e.kind(),
                        format!("cannot connect to {a}: {e}"),
                    ))
                }
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "no address to connect to")
        }))
    }

    /// [`connect`](Self::connect) with a limit on the whole attempt, as std's
    /// `connect_timeout`: past it, an error of kind `TimedOut`.
    #[track_caller]
    pub fn connect_timeout(
        addr: &SocketAddr,
        timeout: std::time::Duration,
    ) -> io::Result<TcpStream> {
        crate::with_timeout(timeout, || TcpStream::connect(addr))?
    }

    /// Set `TCP_NODELAY` (on by default for accepted and connected streams: see the
    /// module doc).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.borrowed()?.set_nodelay(on)
    }

    /// Whether `TCP_NODELAY` is on.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.borrowed()?.nodelay()
    }

    /// Set the IP time-to-live of outgoing packets.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.borrowed()?.set_ttl(ttl)
    }

    /// The IP time-to-live of outgoing packets.
    pub fn ttl(&self) -> io::Result<u32> {
        self.borrowed()?.ttl()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.borrowed()?
            .peer_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("not an IP socket"))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.borrowed()?
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("not an IP socket"))
    }
}

/// A listening Unix-domain socket.
///
/// ```
/// use std::io::{BufRead, BufReader, Write};
/// use std::os::unix::fs::PermissionsExt;
/// use shrapnel::net::{UnixListener, UnixStream};
///
/// let path = std::env::temp_dir().join(format!("shrapnel-doc-{}.sock", std::process::id()));
/// let listener = UnixListener::bind(&path)?;
/// // Owner only, whatever the umask.
/// assert_eq!(std::fs::metadata(&path)?.permissions().mode() & 0o777, 0o600);
/// shrapnel::spawn(move || -> std::io::Result<()> {
///     let conn = listener.accept()?;
///     (&conn).write_all(b"welcome\n")
/// });
/// let p = path.clone();
/// let client = shrapnel::spawn(move || -> std::io::Result<String> {
///     let mut line = String::new();
///     BufReader::new(&UnixStream::connect(&p)?).read_line(&mut line)?;
///     Ok(line)
/// });
/// shrapnel::event_loop();
/// assert_eq!(client.join().unwrap()?, "welcome\n");
/// std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct UnixListener {
    fd: OwnedFd,
}

impl UnixListener {
    /// Bind `path` and listen. The socket file is made mode 0600 (owner only) before the
    /// socket starts listening, whatever the umask. The path must not exist.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        Self::bind_mode(path, 0o600)
    }

    /// Bind with an explicit file mode.
    pub fn bind_mode(path: impl AsRef<Path>, mode: u32) -> io::Result<UnixListener> {
        let path = path.as_ref();
        let s = new_socket(Domain::UNIX)?;
        s.bind(&SockAddr::unix(path)?).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot bind unix socket {}: {e}", path.display()),
            )
        })?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        s.listen(128)?;
        Ok(UnixListener {
            fd: adopt(s, SocketKind::UnixListener),
        })
    }

    /// Wait for and accept a connection.
    #[track_caller]
    pub fn accept(&self) -> io::Result<UnixStream> {
        let (s, _) = accept_on(&self.fd)?;
        Ok(UnixStream {
            fd: adopt(s, SocketKind::UnixStream),
        })
    }

    /// Close now; a coroutine blocked in `accept` wakes with an error.
    pub fn close(&self) -> io::Result<()> {
        self.fd.close()
    }
}

fd_interop!(UnixListener);

impl UnixListener {
    /// The connections as they come: `accept` in a loop (as std's `incoming`).
    pub fn incoming(&self) -> Incoming<'_, UnixListener> {
        Incoming { listener: self }
    }
}

/// A connected Unix-domain stream.
#[derive(Debug)]
pub struct UnixStream {
    fd: OwnedFd,
}

stream_io!(UnixStream);

impl UnixStream {
    /// Connect to the socket at `path`.
    #[track_caller]
    pub fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let s = new_socket(Domain::UNIX)?;
        let fd = connect_on(s, &SockAddr::unix(path.as_ref())?, SocketKind::UnixStream)?;
        Ok(UnixStream { fd })
    }
}

/// A connected pair of Unix-domain streams.
///
/// ```
/// use std::io::{Read, Write};
///
/// let (mut left, mut right) = shrapnel::net::socketpair()?;
/// let echo = shrapnel::spawn(move || -> std::io::Result<()> {
///     let mut buf = [0; 5];
///     right.read_exact(&mut buf)?;
///     right.write_all(&buf)
/// });
/// let asker = shrapnel::spawn(move || -> std::io::Result<[u8; 5]> {
///     left.write_all(b"hello")?;
///     let mut back = [0; 5];
///     left.read_exact(&mut back)?;
///     Ok(back)
/// });
/// shrapnel::event_loop();
/// echo.join().unwrap()?;
/// assert_eq!(&asker.join().unwrap()?, b"hello");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn socketpair() -> io::Result<(UnixStream, UnixStream)> {
    let (a, b) = Socket::pair(Domain::UNIX, Type::STREAM, None)?;
    a.set_nonblocking(true)?;
    b.set_nonblocking(true)?;
    Ok((
        UnixStream {
            fd: adopt(a, SocketKind::UnixStream),
        },
        UnixStream {
            fd: adopt(b, SocketKind::UnixStream),
        },
    ))
}
