//! In and out of std's types and socket2: `From<std>`, `into_std`, raw fds, `AsFd` for
//! `socket2::SockRef`, `try_clone`, `incoming`, `peek`, `TCP_NODELAY`, and read/write
//! timeouts with std's meaning.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::time::{Duration, Instant};

use shrapnel::net::{TcpListener, TcpStream};

#[test]
fn std_sockets_come_in_and_go_out() {
    shrapnel::reset();
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = std_listener.local_addr().unwrap();
    let listener = TcpListener::from(std_listener);
    let server = shrapnel::spawn(move || -> std::io::Result<Vec<u8>> {
        let mut got = Vec::new();
        for conn in listener.incoming().take(2) {
            let conn = conn?;
            let mut buf = [0; 5];
            // peek leaves the bytes for the read that follows
            let n = conn.peek(&mut buf)?;
            assert!(n > 0);
            (&conn).read_exact(&mut buf)?;
            got.extend_from_slice(&buf);
        }
        Ok(got)
    });
    let client = shrapnel::spawn(move || -> std::io::Result<()> {
        // A std stream adopted with From, and one made here and handed back through a raw fd.
        let std_stream = std::net::TcpStream::connect(addr)?;
        let a = TcpStream::from(std_stream);
        (&a).write_all(b"hello")?;
        let b = TcpStream::connect(addr)?;
        let raw = b.into_raw_fd();
        // SAFETY: the fd was just given up by `b` and is owned by nobody else.
        let b = unsafe { TcpStream::from_raw_fd(raw) };
        assert_eq!(b.as_raw_fd(), raw);
        (&b).write_all(b"world")?;
        // And out again, blocking, for a plain thread.
        let back: std::net::TcpStream = a.into_std()?;
        std::thread::spawn(move || drop(back)).join().unwrap();
        Ok(())
    });
    shrapnel::event_loop();
    client.join().unwrap().unwrap();
    let got = server.join().unwrap().unwrap();
    assert!(got == b"helloworld" || got == b"worldhello", "{got:?}");
}

#[test]
fn socket2_sets_options_through_as_fd_and_nodelay_is_on_by_default() {
    shrapnel::reset();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let c = shrapnel::spawn(move || -> std::io::Result<()> {
        let s = TcpStream::connect(addr)?;
        let (accepted, _) = listener.accept()?;
        assert!(s.nodelay()?, "connect turns TCP_NODELAY on");
        assert!(accepted.nodelay()?, "accept turns TCP_NODELAY on");
        s.set_nodelay(false)?;
        assert!(!s.nodelay()?);
        let sock = socket2::SockRef::from(&s);
        assert!(!sock.keepalive()?);
        sock.set_keepalive(true)?;
        assert!(socket2::SockRef::from(&s).keepalive()?);
        s.set_ttl(33)?;
        assert_eq!(s.ttl()?, 33);
        Ok(())
    });
    shrapnel::event_loop();
    c.join().unwrap().unwrap();
}

#[test]
fn read_and_write_timeouts_have_std_meaning() {
    shrapnel::reset();
    let (a, b) = shrapnel::net::socketpair().unwrap();
    let c = shrapnel::spawn(move || -> std::io::Result<()> {
        assert_eq!(a.read_timeout()?, None);
        let zero = a.set_read_timeout(Some(Duration::ZERO)).unwrap_err();
        assert_eq!(zero.kind(), std::io::ErrorKind::InvalidInput);
        a.set_read_timeout(Some(Duration::from_millis(50)))?;
        assert_eq!(a.read_timeout()?, Some(Duration::from_millis(50)));
        let start = Instant::now();
        let e = (&a).read(&mut [0; 8]).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
        assert!(e.to_string().contains("read timeout of 50ms"), "{e}");
        assert!(start.elapsed() >= Duration::from_millis(50));
        // Data within the limit is read as usual, and the socket still works after.
        (&b).write_all(b"x")?;
        let mut one = [0; 1];
        (&a).read_exact(&mut one)?;
        assert_eq!(&one, b"x");
        // A write that cannot proceed (the peer never reads) times out too.
        b.set_write_timeout(Some(Duration::from_millis(50)))?;
        let chunk = vec![0u8; 64 * 1024];
        let e = loop {
            if let Err(e) = (&b).write(&chunk) {
                break e;
            }
        };
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
        Ok(())
    });
    shrapnel::event_loop();
    c.join().unwrap().unwrap();
}

#[test]
fn a_clone_reads_while_the_original_writes() {
    shrapnel::reset();
    let (a, b) = shrapnel::net::socketpair().unwrap();
    let reader = a.try_clone().unwrap();
    assert_ne!(reader.as_raw_fd(), a.as_raw_fd());
    let r = shrapnel::spawn(move || {
        let mut buf = [0; 4];
        (&reader).read_exact(&mut buf).map(|_| buf)
    });
    let w = shrapnel::spawn(move || -> std::io::Result<()> {
        (&a).write_all(b"ping")?;
        let mut buf = [0; 4];
        (&b).read_exact(&mut buf)?;
        (&b).write_all(&buf)
    });
    shrapnel::event_loop();
    w.join().unwrap().unwrap();
    assert_eq!(&r.join().unwrap().unwrap(), b"ping");
}

#[test]
fn connect_timeout_connects_and_timeout_converts_with_question_mark() {
    shrapnel::reset();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let c = shrapnel::spawn(move || -> std::io::Result<()> {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        assert_eq!(s.peer_addr()?, addr);
        // `with_timeout(..)??` in an io::Result function: Timeout becomes TimedOut.
        let slow = || -> std::io::Result<()> {
            shrapnel::with_timeout(Duration::from_millis(10), || listener.accept().map(drop))??;
            Ok(())
        };
        let _first = listener.accept()?; // the connection above
        assert_eq!(slow().unwrap_err().kind(), std::io::ErrorKind::TimedOut);
        Ok(())
    });
    shrapnel::event_loop();
    c.join().unwrap().unwrap();
}

#[test]
fn a_listener_configured_with_socket2_keeps_the_callers_choices_and_accepts() {
    use socket2::{Domain, Socket, Type};
    shrapnel::reset();
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_reuse_address(false).unwrap();
    let addr: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket.bind(&addr.into()).unwrap();
    socket.listen(7).unwrap();
    let listener = TcpListener::from(std::net::TcpListener::from(socket));
    let addr = listener.local_addr().unwrap();
    let c = shrapnel::spawn(move || -> std::io::Result<Vec<u8>> {
        assert!(
            !socket2::SockRef::from(&listener).reuse_address()?,
            "adopting a listener must not turn SO_REUSEADDR back on"
        );
        let client = shrapnel::spawn(move || -> std::io::Result<()> {
            let mut s = TcpStream::connect(addr)?;
            s.write_all(b"configured")?;
            Ok(())
        });
        let (mut conn, _) = listener.accept()?;
        let mut got = Vec::new();
        conn.read_to_end(&mut got)?;
        client.join().unwrap()?;
        Ok(got)
    });
    shrapnel::event_loop();
    assert_eq!(c.join().unwrap().unwrap(), b"configured");
}
