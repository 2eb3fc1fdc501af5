//! The runtime over real sockets and the real poller.

use std::io::{Read, Write};
use std::time::Duration;

use shrapnel::net::{socketpair, TcpListener, TcpStream};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn tcp_echo_many_clients() {
    shrapnel::reset();
    tcp_echo_100_clients();
}

/// The same with every coroutine (acceptor, 100 echo handlers, 100 clients) on the shared
/// run stack: their frames are copied off and back at every switch between them.
#[test]
fn tcp_echo_many_clients_on_the_shared_stack() {
    shrapnel::reset();
    shrapnel::set_shared_stack_default(true);
    let before = shrapnel::stats().stack_copies;
    tcp_echo_100_clients();
    assert!(shrapnel::stats().stack_copies - before > 200);
    shrapnel::set_shared_stack_default(false);
}

fn tcp_echo_100_clients() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = shrapnel::spawn(move || {
        for _ in 0..100 {
            let (c, _) = listener.accept().unwrap();
            shrapnel::spawn(move || {
                let mut buf = [0; 256];
                loop {
                    match (&c).read(&mut buf).unwrap() {
                        0 => break,
                        n => (&c).write_all(&buf[..n]).unwrap(),
                    }
                }
            });
        }
    });
    let mut clients = vec![];
    for i in 0..100u32 {
        clients.push(shrapnel::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            let msg = format!("hello {i:03} {}", "x".repeat(90));
            s.write_all(msg.as_bytes()).unwrap();
            let mut back = vec![0; msg.len()];
            s.read_exact(&mut back).unwrap();
            assert_eq!(back, msg.as_bytes());
            i
        }));
    }
    assert_eq!(shrapnel::event_loop(), 0);
    server.join().unwrap();
    for (i, c) in clients.iter().enumerate() {
        assert_eq!(c.join().unwrap(), i as u32);
    }
    assert!(
        shrapnel::net::live_sockets().is_empty(),
        "{:?}",
        shrapnel::net::live_sockets()
    );
}

#[test]
fn closing_a_socket_wakes_its_reader_with_an_error_naming_the_fd() {
    shrapnel::reset();
    let (a, _b) = socketpair().unwrap();
    let a = std::rc::Rc::new(a);
    let fd = std::os::fd::AsRawFd::as_raw_fd(&*a);
    let a2 = a.clone();
    let reader = shrapnel::spawn(move || {
        let mut buf = [0; 8];
        (&*a2).read(&mut buf)
    });
    shrapnel::spawn(move || {
        shrapnel::sleep(ms(5)).unwrap();
        a.close().unwrap();
    });
    shrapnel::event_loop();
    let err = reader.join().unwrap().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotConnected);
    assert!(
        err.to_string().contains(&format!("fd {fd} was closed")),
        "{err}"
    );
}

#[test]
fn two_readers_on_one_fd_is_an_error_naming_both() {
    shrapnel::reset();
    let (a, b) = socketpair().unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&a);
    let first = shrapnel::spawn(move || shrapnel::wait_readable(fd));
    let second = shrapnel::spawn(move || shrapnel::wait_readable(fd));
    let (id1, id2) = (first.id(), second.id());
    shrapnel::spawn(move || {
        shrapnel::sleep(ms(5)).unwrap();
        (&b).write_all(b"x").unwrap();
    });
    shrapnel::event_loop();
    assert!(first.join().unwrap().is_ok());
    let e = second.join().unwrap().unwrap_err().to_string();
    assert!(
        e.contains(&format!("coroutine #{id2}")) && e.contains(&format!("coroutine #{id1}")),
        "{e}"
    );
    assert!(e.contains(&format!("fd {fd}")), "{e}");
    drop(a);
}

#[test]
fn waiting_on_an_invalid_fd_is_a_typed_error() {
    shrapnel::reset();
    let c = shrapnel::spawn(|| shrapnel::wait_readable(987_654));
    shrapnel::event_loop();
    let e = c.join().unwrap().unwrap_err();
    // The OS error's kind, and a message with the fd and the hint; the errno stays in the
    // typed error inside.
    assert_eq!(
        e.kind(),
        std::io::Error::from_raw_os_error(libc::EBADF).kind()
    );
    assert!(
        e.to_string().contains("fd 987654") && e.to_string().contains("EBADF"),
        "{e}"
    );
    match e
        .get_ref()
        .and_then(|i| i.downcast_ref::<shrapnel::platform::io::IoError>())
    {
        Some(shrapnel::platform::io::IoError::Os { err, .. }) => assert_eq!(err.errno, libc::EBADF),
        other => panic!("{other:?}"),
    }
}

#[test]
fn connect_refused_is_reported() {
    shrapnel::reset();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let c = shrapnel::spawn(move || TcpStream::connect(addr).map(|_| ()));
    shrapnel::event_loop();
    let e = c.join().unwrap().unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
}

#[test]
fn read_with_timeout() {
    shrapnel::reset();
    let (a, _b) = socketpair().unwrap();
    let c = shrapnel::spawn(move || {
        shrapnel::with_timeout(ms(10), || {
            let mut buf = [0; 4];
            (&a).read(&mut buf)
        })
    });
    shrapnel::event_loop();
    assert_eq!(c.join().unwrap().unwrap_err(), shrapnel::Timeout);
}

#[test]
fn unix_listener_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    shrapnel::reset();
    let dir = std::env::temp_dir().join(format!("shrapnel-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.sock");
    let _ = std::fs::remove_file(&path);
    // SAFETY: umask only changes this process's file-creation mask.
    let old = unsafe { libc::umask(0) };
    let l = shrapnel::net::UnixListener::bind(&path).unwrap();
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let p2 = path.clone();
    let client = shrapnel::spawn(move || {
        let mut s = shrapnel::net::UnixStream::connect(&p2).unwrap();
        s.write_all(b"ping").unwrap();
    });
    let server = shrapnel::spawn(move || {
        let c = l.accept().unwrap();
        let mut buf = [0; 4];
        (&c).read_exact(&mut buf).unwrap();
        buf
    });
    shrapnel::event_loop();
    client.join().unwrap();
    assert_eq!(&server.join().unwrap(), b"ping");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_self_interrupt_before_a_read_leaves_the_io_wait_count_balanced() {
    shrapnel::reset();
    let (a, b) = socketpair().unwrap();
    let (c, d) = socketpair().unwrap();
    // A self-interrupted read returns at once, without waiting; it must not uncount the
    // reader below, whose data comes later.
    let impatient = shrapnel::spawn(move || {
        shrapnel::current().unwrap().interrupt(9);
        let e = (&a).read(&mut [0; 4]).unwrap_err();
        drop(b);
        shrapnel::Interrupted::from_io_error(&e)
    });
    let patient = shrapnel::spawn(move || {
        let mut buf = [0; 5];
        (&c).read_exact(&mut buf).map(|_| buf)
    });
    let mut d = d.into_std().unwrap();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(ms(200));
        // A plain blocking write from another thread: the loop must still be waiting.
        d.write_all(b"later").unwrap();
        d
    });
    assert_eq!(shrapnel::event_loop(), 0);
    drop(writer.join().unwrap());
    assert_eq!(
        impatient.join().unwrap(),
        Some(shrapnel::Interrupted::Interrupt(9))
    );
    assert_eq!(patient.join().unwrap().unwrap(), *b"later");
}

/// A read shorter than its buffer drained the socket: the next read waits for the poller's
/// event instead of making a syscall that returns EAGAIN. 1,000 request/response round
/// trips over TCP and over a socketpair cost a handful of EAGAINs (the first read of each
/// side), not one per round trip (1,001 before); and nothing is lost or stuck: every byte comes back.
#[test]
fn a_short_read_saves_the_syscall_that_would_return_eagain() {
    fn ping_pong(client: impl Read + Write + 'static, server: impl Read + Write + 'static) {
        let mut server = server;
        let echo = shrapnel::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut total = 0;
            loop {
                match server.read(&mut buf) {
                    Ok(0) => return total,
                    Ok(n) => {
                        server.write_all(&buf[..n]).unwrap();
                        total += n;
                    }
                    Err(e) => panic!("server read: {e}"),
                }
            }
        });
        let mut client = client;
        let before = shrapnel::platform::io::would_block_count();
        let msg = [7u8; 100];
        for _ in 0..1000 {
            client.write_all(&msg).unwrap();
            // Read as a server does, into a buffer larger than the reply: a read_exact of
            // exactly 100 bytes would fill its buffer, which says nothing about what is left.
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while got.len() < msg.len() {
                let n = client.read(&mut buf).unwrap();
                assert!(n > 0, "the echo closed early");
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(got, msg);
        }
        let eagains = shrapnel::platform::io::would_block_count() - before;
        drop(client);
        assert_eq!(echo.join().unwrap(), 100_000);
        assert!(
            eagains <= 10,
            "{eagains} reads or writes returned EAGAIN in 1000 round trips"
        );
    }
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let accepted = shrapnel::spawn(move || l.accept().unwrap().0);
    let c = shrapnel::spawn(move || {
        let client = TcpStream::connect(addr).unwrap();
        let server = accepted.join().unwrap();
        ping_pong(client, server);
        let (a, b) = socketpair().unwrap();
        ping_pong(a, b);
    });
    assert_eq!(shrapnel::event_loop(), 0);
    c.join().unwrap();
}

/// A read shorter than its buffer does not mean "nothing left" when the peer's FIN came
/// with the data: the EOF is a final state that no later event repeats, so the next read
/// must make the syscall (and get 0), not wait for an event that never comes. The reader is
/// registered and blocked before the peer writes and shuts down, so one poll reports data
/// and hang-up together. (With this case wrong, `read_to_string` would hang; the timeout
/// turns that into a failure.)
#[test]
fn a_short_read_with_the_peer_gone_still_reaches_eof() {
    for kind in ["tcp", "socketpair"] {
        shrapnel::reset();
        let (server_side, client_side): (Box<dyn ReadShut>, Box<dyn ReadShut>) = if kind == "tcp" {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let accepted = shrapnel::spawn(move || l.accept().unwrap().0);
            let client = shrapnel::spawn(move || TcpStream::connect(addr).unwrap());
            assert_eq!(shrapnel::event_loop(), 0);
            (
                Box::new(accepted.join().unwrap()),
                Box::new(client.join().unwrap()),
            )
        } else {
            let (a, b) = socketpair().unwrap();
            (Box::new(a), Box::new(b))
        };
        let got = shrapnel::spawn(move || {
            let mut s = server_side;
            shrapnel::with_timeout(Duration::from_secs(5), move || {
                let mut all = String::new();
                s.read_to_string(&mut all).map(|_| all)
            })
        });
        shrapnel::spawn(move || {
            let mut c = client_side;
            shrapnel::yield_slice(); // the reader is blocked on its fd by now
            c.write_all(b"ping").unwrap();
            c.shut_write();
        });
        assert_eq!(shrapnel::event_loop(), 0);
        let r = got.join().unwrap();
        assert_eq!(
            r.map(|r| r.ok()),
            Ok(Some("ping".to_string())),
            "{kind}: the reader must see the data and then EOF"
        );
    }
}

/// Read, write and shut down the write side, for both socket kinds.
trait ReadShut: Read + Write {
    fn shut_write(&self);
}
impl ReadShut for TcpStream {
    fn shut_write(&self) {
        self.shutdown(std::net::Shutdown::Write).unwrap();
    }
}
impl ReadShut for shrapnel::net::UnixStream {
    fn shut_write(&self) {
        self.shutdown(std::net::Shutdown::Write).unwrap();
    }
}
