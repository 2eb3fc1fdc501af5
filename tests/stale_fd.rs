//! An fd registration cannot go stale: a number reused after an fd was closed outside the
//! runtime, and a socket handed to another thread, both keep working. One test: fd
//! numbers are process-wide, so nothing else in this binary may open fds meanwhile.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::time::Duration;

use shrapnel::net::{TcpListener, TcpStream};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Waits on a std socket's fd, then drops the socket (closed behind the runtime's back);
/// returns the freed number.
fn wait_then_close_behind_the_runtimes_back() -> i32 {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let fd = std_listener.as_raw_fd();
    let c = shrapnel::spawn(move || shrapnel::with_timeout(ms(5), || shrapnel::wait_readable(fd)));
    shrapnel::event_loop();
    assert!(
        c.join().unwrap().is_err(),
        "nobody connected: the wait timed out"
    );
    drop(std_listener);
    fd
}

fn reused_numbers() {
    shrapnel::reset();
    // A runtime socket gets the freed number.
    let fd = wait_then_close_behind_the_runtimes_back();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    assert_eq!(
        listener.as_raw_fd(),
        fd,
        "the OS reuses the lowest free number"
    );
    let addr = listener.local_addr().unwrap();
    let client = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(b"hi").unwrap();
    });
    let c = shrapnel::spawn(move || {
        shrapnel::with_timeout(ms(5_000), || {
            let (conn, _) = listener.accept().unwrap();
            let mut buf = [0; 2];
            (&conn).read_exact(&mut buf).unwrap();
            buf
        })
    });
    shrapnel::event_loop();
    client.join().unwrap();
    assert_eq!(
        c.join().unwrap(),
        Ok(*b"hi"),
        "accept on the reused number woke"
    );

    // A raw wait on another std socket that got the freed number.
    let fd = wait_then_close_behind_the_runtimes_back();
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    assert_eq!(std_listener.as_raw_fd(), fd);
    let addr = std_listener.local_addr().unwrap();
    let client = std::thread::spawn(move || std::net::TcpStream::connect(addr).map(drop));
    let c = shrapnel::spawn(move || {
        let r = shrapnel::with_timeout(ms(5_000), || shrapnel::wait_readable(fd));
        drop(std_listener);
        r.map(|r| r.is_ok())
    });
    shrapnel::event_loop();
    client.join().unwrap().unwrap();
    assert_eq!(
        c.join().unwrap(),
        Ok(true),
        "the raw wait on the reused number woke"
    );
}

fn sockets_moved_between_threads() {
    shrapnel::reset();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (to_b, from_a) = std::sync::mpsc::channel::<std::net::TcpStream>();
    // Thread B: adopts each connection and echoes one message on it.
    let b = std::thread::spawn(move || {
        let served = std::rc::Rc::new(std::cell::Cell::new(0));
        for s in from_a {
            let conn = TcpStream::from_std(s).unwrap();
            let served = served.clone();
            shrapnel::spawn(move || {
                let mut buf = [0; 5];
                (&conn).read_exact(&mut buf).unwrap();
                (&conn).write_all(&buf).unwrap();
                served.set(served.get() + 1);
            });
            // Serve it (the client sends it all, then waits for the echo).
            shrapnel::event_loop();
        }
        shrapnel::event_loop();
        served.get()
    });
    let clients = std::thread::spawn(move || {
        for i in 0..25u8 {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(b"ab").unwrap();
            std::thread::sleep(ms(2));
            s.write_all(&[b'c', b'd', b'0' + i % 10]).unwrap();
            let mut back = [0; 5];
            s.read_exact(&mut back).unwrap();
            assert_eq!(&back[..4], b"abcd");
        }
    });
    // Thread A: accepts, waits on each connection once (registering it here), then hands
    // it over.
    let a = shrapnel::spawn(move || {
        for _ in 0..25 {
            let (conn, _) = listener.accept().unwrap();
            let mut peek = [0; 2];
            let n = conn.peek_wait(&mut peek);
            assert!(n > 0);
            to_b.send(conn.into_std().unwrap()).unwrap();
        }
    });
    shrapnel::event_loop();
    a.join().unwrap();
    clients.join().unwrap();
    assert_eq!(b.join().unwrap(), 25);
    assert_eq!(
        shrapnel::platform::io::registered(),
        0,
        "nothing is left registered here"
    );
}

trait PeekWait {
    fn peek_wait(&self, buf: &mut [u8]) -> usize;
}

impl PeekWait for TcpStream {
    /// Wait until data is there (registering the fd with this thread), without taking it.
    fn peek_wait(&self, buf: &mut [u8]) -> usize {
        loop {
            // SAFETY: peeks into a live, writable buffer of the given length.
            let n = unsafe {
                libc::recv(
                    self.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_PEEK,
                )
            };
            if n > 0 {
                return n as usize;
            }
            shrapnel::wait_readable(self.as_raw_fd()).unwrap();
        }
    }
}

#[test]
fn fd_registrations_cannot_go_stale() {
    reused_numbers();
    sockets_moved_between_threads();
}
