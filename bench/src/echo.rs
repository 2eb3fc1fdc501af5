//! What the echo servers of `bench/echo.sh` share, so they behave identically: the port
//! from the command line, the read size, and the line that says they are ready.
//!
//! Every server binds 127.0.0.1 only, accepts, and per connection reads up to
//! [`READ_SIZE`] bytes and writes them back until EOF (or an error), one thread doing the
//! work (`taskset -c 0` in the script pins the whole process), or N with the servers'
//! threads flag (`--cores N`, `--workers N`: [`ServerArgs`]) in the script's `--cores` mode.

use std::io::Write;

/// Bytes asked for per read, in every server (and the Go one, `bench/go/echo.go`).
pub const READ_SIZE: usize = 4096;

/// The port `arg` names, `0` (any free port) if none; exits 2 with a usage line if bad.
pub fn port_from(server: &str, arg: Option<&str>) -> u16 {
    match arg.map(str::parse) {
        None => 0,
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            eprintln!("usage: {server} [PORT]  (bad port: {e})");
            std::process::exit(2);
        }
    }
}

/// A server's command line: `[--shared] [THREADS_FLAG N] [PORT]`, the flags only where the
/// server takes them.
pub struct ServerArgs {
    /// `--shared` was given (only shrapnel's server takes it).
    pub shared: bool,
    /// The number of threads (schedulers, workers) asked for, if any.
    pub threads: Option<usize>,
    /// The port to listen on, `0` (any free port) if none.
    pub port: u16,
}

impl ServerArgs {
    /// Parse the process's arguments; exits 2 with a usage line if they are bad.
    /// `threads_flag` names the flag taking a thread count (`--cores`, `--workers`);
    /// `shared` says whether `--shared` is accepted.
    pub fn parse(server: &str, threads_flag: &str, shared: bool) -> ServerArgs {
        let usage = |why: &str| -> ! {
            let shared_flag = if shared { "[--shared] " } else { "" };
            eprintln!("usage: {server} {shared_flag}[{threads_flag} N] [PORT]  ({why})");
            std::process::exit(2);
        };
        let mut parsed = ServerArgs {
            shared: false,
            threads: None,
            port: 0,
        };
        let mut port = None;
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            if shared && arg == "--shared" {
                parsed.shared = true;
            } else if arg == threads_flag {
                match args.next().map(|n| n.parse::<usize>()) {
                    Some(Ok(n)) if n > 0 => parsed.threads = Some(n),
                    _ => usage(&format!("{threads_flag} needs a number, at least 1")),
                }
            } else if port.is_none() && !arg.starts_with('-') {
                port = Some(arg);
            } else {
                usage(&format!("unexpected {arg:?}"));
            }
        }
        parsed.port = port_from(server, port.as_deref());
        parsed
    }
}

/// Turn on the boolean socket option `name` at `level` of `fd` (`TCP_NODELAY`,
/// `SO_REUSEPORT`…).
pub fn set_flag(
    fd: std::os::fd::RawFd,
    level: libc::c_int,
    name: libc::c_int,
) -> std::io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: `one` outlives the call and its size is passed; a bad `fd` is an error return.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// `n` listeners on 127.0.0.1:`port`, for a server with `n` threads that each accept on
/// their own: one plain listener if `n` is 1, else `n` with `SO_REUSEPORT` on one port
/// (port 0: the port the first one got), so the kernel spreads connections over them.
pub fn reuseport_listeners(port: u16, n: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    use std::os::fd::FromRawFd;
    if n <= 1 {
        return Ok(vec![std::net::TcpListener::bind(("127.0.0.1", port))?]);
    }
    let mut port = port;
    let mut listeners = Vec::with_capacity(n);
    for _ in 0..n {
        let check = |r: libc::c_int| {
            if r < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(r)
            }
        };
        // SAFETY: plain system call; the result is checked.
        let fd = check(unsafe {
            libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0)
        })?;
        // SAFETY: `fd` is the socket just made and owned by nothing else: the listener
        // takes it, and closes it if a step below fails.
        let listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
        for opt in [libc::SO_REUSEADDR, libc::SO_REUSEPORT] {
            set_flag(fd, libc::SOL_SOCKET, opt)?;
        }
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
            },
            sin_zero: [0; 8],
        };
        // SAFETY: `addr` is a valid sockaddr_in whose size is passed; the kernel only
        // reads it.
        check(unsafe {
            libc::bind(
                fd,
                (&addr as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        })?;
        // SAFETY: plain system call on our socket.
        check(unsafe { libc::listen(fd, 1024) })?;
        port = listener.local_addr()?.port();
        listeners.push(listener);
    }
    Ok(listeners)
}

/// Say on stdout, flushed, which port the server listens on: `bench/echo.sh` waits for
/// this line (`port N`) before it starts the load.
pub fn announce(port: u16) {
    let mut out = std::io::stdout().lock();
    // A driver that stopped reading is no reason to stop serving.
    let _ = writeln!(out, "port {port}");
    let _ = out.flush();
}

/// Print `server: what: error` and exit 1: for setup failures (bind, runtime).
pub fn fail(server: &str, what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("{server}: {what}: {e}");
    std::process::exit(1);
}
