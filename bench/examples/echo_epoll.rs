//! The floor of `bench/echo.sh`: an echo server as a raw edge-triggered epoll loop over
//! libc, no runtime at all. Each socket is registered once for both directions,
//! edge-triggered (as shrapnel's and tokio's pollers do); per readiness edge a connection
//! reads up to `READ_SIZE` bytes and writes them back until a read returns `EAGAIN`, so it
//! makes the same read, write, read-until-`EAGAIN` calls as the other servers. One shared
//! read buffer; bytes a full socket did not take wait in the connection's own buffer, and
//! it reads no more until they are written. `echo_epoll [--workers N] [PORT]` binds
//! 127.0.0.1 and prints `port N` when ready; with N > 1, N threads, each with its own epoll
//! instance and its own `SO_REUSEPORT` listener on the one port (the floor of the script's
//! `--cores N` mode).

use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, RawFd};

use shrapnel_bench::echo::{announce, fail, reuseport_listeners, set_flag, ServerArgs, READ_SIZE};

const NAME: &str = "echo_epoll";
/// The listener's epoll token; connections use their fd.
const LISTENER: u64 = u64::MAX;

/// One accepted connection: bytes read but not yet written back.
#[derive(Default)]
struct Conn {
    pending: Vec<u8>,
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn add(epfd: RawFd, fd: RawFd, token: u64, events: u32) -> io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: token };
    // SAFETY: `epfd` is our epoll instance and `fd` an open socket; `ev` is a valid
    // epoll_event that the kernel only reads during the call.
    if unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn close(fd: RawFd) {
    // SAFETY: `fd` is a connection this loop accepted and owns; it is closed once, here,
    // and its `Conn` slot is cleared by the caller (closing also removes it from epoll).
    unsafe { libc::close(fd) };
}

/// Write as much of `data` as the socket takes: `Ok(written)`, or `Err` for a dead socket.
fn write_some(fd: RawFd, data: &[u8]) -> Result<usize, ()> {
    let mut done = 0;
    while done < data.len() {
        let rest = &data[done..];
        // SAFETY: `rest` is a live, initialised slice of `rest.len()` bytes; `fd` is open.
        let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        if n >= 0 {
            done += n as usize;
        } else {
            match errno() {
                libc::EAGAIN => break,
                libc::EINTR => continue,
                _ => return Err(()),
            }
        }
    }
    Ok(done)
}

/// Serve one readiness edge of `fd`. Returns false when the connection is over.
fn serve(fd: RawFd, conn: &mut Conn, buf: &mut [u8]) -> bool {
    loop {
        if !conn.pending.is_empty() {
            match write_some(fd, &conn.pending) {
                Ok(n) => {
                    conn.pending.drain(..n);
                }
                Err(()) => return false,
            }
            if !conn.pending.is_empty() {
                return true; // wait for the next writable edge
            }
        }
        // SAFETY: `buf` is a live, writable buffer of `buf.len()` bytes; `fd` is open.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n == 0 {
            return false;
        }
        if n < 0 {
            return match errno() {
                libc::EAGAIN => true,
                libc::EINTR => continue,
                _ => false,
            };
        }
        let data = &buf[..n as usize];
        match write_some(fd, data) {
            Ok(w) => conn.pending.extend_from_slice(&data[w..]),
            Err(()) => return false,
        }
    }
}

fn main() {
    let args = ServerArgs::parse(NAME, "--workers", false);
    let listeners = reuseport_listeners(args.port, args.threads.unwrap_or(1))
        .unwrap_or_else(|e| fail(NAME, "bind", e));
    let port = listeners[0]
        .local_addr()
        .unwrap_or_else(|e| fail(NAME, "local_addr", e))
        .port();
    announce(port);
    let mut listeners = listeners.into_iter();
    let first = listeners.next().expect("at least one listener");
    for listener in listeners {
        std::thread::spawn(move || run(listener));
    }
    run(first)
}

/// Serve `listener`'s connections on this thread, forever.
fn run(listener: TcpListener) -> ! {
    listener
        .set_nonblocking(true)
        .unwrap_or_else(|e| fail(NAME, "nonblocking", e));
    let lfd = listener.as_raw_fd();
    // SAFETY: plain system call; the result is checked.
    let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if epfd < 0 {
        fail(NAME, "epoll_create1", io::Error::last_os_error());
    }
    let edge = (libc::EPOLLIN | libc::EPOLLET) as u32;
    add(epfd, lfd, LISTENER, edge).unwrap_or_else(|e| fail(NAME, "epoll_ctl", e));

    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut buf = vec![0u8; READ_SIZE];
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let both = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
    loop {
        // SAFETY: `events` has room for `events.len()` entries, which the kernel fills.
        let n = unsafe { libc::epoll_wait(epfd, events.as_mut_ptr(), events.len() as i32, -1) };
        if n < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            fail(NAME, "epoll_wait", io::Error::last_os_error());
        }
        for ev in &events[..n as usize] {
            let token = ev.u64;
            if token == LISTENER {
                loop {
                    // SAFETY: `lfd` is the listening socket; null address pointers are
                    // allowed (we do not want the peer's address).
                    let fd = unsafe {
                        libc::accept4(
                            lfd,
                            std::ptr::null_mut(),
                            std::ptr::null_mut(),
                            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                        )
                    };
                    if fd < 0 {
                        match errno() {
                            libc::EAGAIN => break,
                            libc::EINTR | libc::ECONNABORTED => continue,
                            e => {
                                eprintln!("{NAME}: accept: {}", io::Error::from_raw_os_error(e));
                                break;
                            }
                        }
                    }
                    // As shrapnel's accept and Go's do.
                    let _ = set_flag(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY);
                    if add(epfd, fd, fd as u64, both).is_err() {
                        close(fd);
                        continue;
                    }
                    let i = fd as usize;
                    if conns.len() <= i {
                        conns.resize_with(i + 1, || None);
                    }
                    conns[i] = Some(Conn::default());
                }
                continue;
            }
            let fd = token as RawFd;
            let Some(conn) = conns.get_mut(fd as usize).and_then(Option::as_mut) else {
                continue;
            };
            if !serve(fd, conn, &mut buf) {
                conns[fd as usize] = None;
                close(fd);
            }
        }
    }
}
