//! The completion floor of `bench/echo.sh`: an echo server as a raw io_uring loop (the
//! `io-uring` crate over the kernel's submission and completion rings), no runtime at all.
//! Per connection one operation is in flight: a receive of up to `READ_SIZE` bytes into the
//! connection's own buffer, then a send of what came (the rest again after a short send),
//! then the next receive. One `io_uring_enter` per turn of the loop submits every new
//! operation and waits for at least one completion, so a busy loop makes far fewer than
//! the two system calls per request a readiness loop makes (`echo_epoll`): it shows what a
//! server could save by leaving readiness for completions. Accepting is one multishot
//! accept per listener.
//!
//! `echo_uring [--workers N] [PORT]` binds 127.0.0.1 and prints `port N` when ready; with
//! N > 1, N threads, each with its own ring and its own `SO_REUSEPORT` listener on the one
//! port. It fails with a message if the kernel refuses io_uring (`io_uring_setup`), which
//! `bench/echo.sh` reports as a failed run.

use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, RawFd};

use io_uring::{cqueue, opcode, squeue, types, IoUring};
use shrapnel_bench::echo::{announce, fail, reuseport_listeners, set_flag, ServerArgs, READ_SIZE};

const NAME: &str = "echo_uring";
/// Submission queue entries (the completion queue has twice as many).
const ENTRIES: u32 = 4096;
/// The multishot accept's user data; connections use their fd.
const ACCEPT: u64 = u64::MAX;

/// One accepted connection: its buffer, and while a send is in flight, which part of it.
struct Conn {
    buf: Box<[u8]>,
    /// `(sent, len)`: the bytes `buf[..len]` being sent back, `sent` of them done.
    sending: Option<(usize, usize)>,
}

/// The ring, with SINGLE_ISSUER and DEFER_TASKRUN where the kernel has them (6.1 on), else
/// a plain one.
fn ring() -> IoUring {
    IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(ENTRIES)
        .or_else(|_| IoUring::new(ENTRIES))
        .unwrap_or_else(|e| fail(NAME, "io_uring_setup", e))
}

/// Queue `entry`, submitting what is queued first if the submission queue is full.
///
/// # Safety
/// The buffer `entry` names must stay valid, unmoved, until its completion is reaped.
unsafe fn push(ring: &mut IoUring, entry: &squeue::Entry) {
    loop {
        // SAFETY: the caller keeps the entry's buffer valid until its completion.
        if unsafe { ring.submission().push(entry) }.is_ok() {
            return;
        }
        ring.submit()
            .unwrap_or_else(|e| fail(NAME, "io_uring_enter", e));
    }
}

fn recv(fd: RawFd, conn: &mut Conn) -> squeue::Entry {
    opcode::Recv::new(types::Fd(fd), conn.buf.as_mut_ptr(), conn.buf.len() as u32)
        .build()
        .user_data(fd as u64)
}

fn send(fd: RawFd, conn: &Conn, sent: usize, len: usize) -> squeue::Entry {
    let rest = &conn.buf[sent..len];
    opcode::Send::new(types::Fd(fd), rest.as_ptr(), rest.len() as u32)
        .build()
        .user_data(fd as u64)
}

fn close(fd: RawFd) {
    // SAFETY: `fd` is a connection this loop accepted and owns, with no operation in flight
    // (each connection has one at a time, and this follows its completion); it is closed
    // once, here, and its `Conn` slot is cleared by the caller.
    unsafe { libc::close(fd) };
}

/// Serve `listener`'s connections on this thread, forever.
fn serve(listener: TcpListener) -> ! {
    let mut ring = ring();
    let lfd = listener.as_raw_fd();
    let accept = opcode::AcceptMulti::new(types::Fd(lfd))
        .flags(libc::SOCK_CLOEXEC)
        .build()
        .user_data(ACCEPT);
    // SAFETY: an accept names no buffer.
    unsafe { push(&mut ring, &accept) };
    // Boxed buffers: a `Conn` may move when `conns` grows, its buffer does not.
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut done: Vec<(u64, i32, u32)> = Vec::with_capacity(2 * ENTRIES as usize);
    loop {
        match ring.submit_and_wait(1) {
            Ok(_) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) => {}
            Err(e) => fail(NAME, "io_uring_enter", e),
        }
        done.clear();
        done.extend(
            ring.completion()
                .map(|c| (c.user_data(), c.result(), c.flags())),
        );
        for &(token, res, flags) in &done {
            if token == ACCEPT {
                if res >= 0 {
                    let fd = res;
                    // As shrapnel's accept and Go's do.
                    let _ = set_flag(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY);
                    let i = fd as usize;
                    if conns.len() <= i {
                        conns.resize_with(i + 1, || None);
                    }
                    let conn = conns[i].insert(Conn {
                        buf: vec![0u8; READ_SIZE].into_boxed_slice(),
                        sending: None,
                    });
                    let entry = recv(fd, conn);
                    // SAFETY: the buffer is boxed in `conns[fd]`, which is cleared only
                    // after this operation's completion.
                    unsafe { push(&mut ring, &entry) };
                } else {
                    eprintln!("{NAME}: accept: {}", io::Error::from_raw_os_error(-res));
                }
                if !cqueue::more(flags) {
                    // The multishot accept ended (an error, or a full queue): again.
                    // SAFETY: an accept names no buffer.
                    unsafe { push(&mut ring, &accept) };
                }
                continue;
            }
            let fd = token as RawFd;
            let Some(conn) = conns.get_mut(fd as usize).and_then(Option::as_mut) else {
                continue;
            };
            if res <= 0 {
                // EOF, or an error on either operation: the connection is over.
                conns[fd as usize] = None;
                close(fd);
                continue;
            }
            let entry = match conn.sending {
                None => {
                    conn.sending = Some((0, res as usize));
                    send(fd, conn, 0, res as usize)
                }
                Some((sent, len)) if sent + (res as usize) < len => {
                    conn.sending = Some((sent + res as usize, len));
                    send(fd, conn, sent + res as usize, len)
                }
                Some(_) => {
                    conn.sending = None;
                    recv(fd, conn)
                }
            };
            // SAFETY: as above, the buffer lives in `conns[fd]` until this completes.
            unsafe { push(&mut ring, &entry) };
        }
    }
}

fn main() {
    let args = ServerArgs::parse(NAME, "--workers", false);
    let workers = args.threads.unwrap_or(1);
    let listeners =
        reuseport_listeners(args.port, workers).unwrap_or_else(|e| fail(NAME, "bind", e));
    let port = listeners[0]
        .local_addr()
        .unwrap_or_else(|e| fail(NAME, "local_addr", e))
        .port();
    // Every thread's ring is set up before the port is announced, so a kernel without
    // io_uring fails the start, not the first connection.
    drop(ring());
    announce(port);
    let mut listeners = listeners.into_iter();
    let first = listeners.next().expect("at least one listener");
    for listener in listeners {
        std::thread::spawn(move || serve(listener));
    }
    serve(first)
}
