//! The backdoor's security rules: the unix socket is 0600 whatever the umask, only a stale
//! socket is replaced, nothing listens beyond loopback without an authentication hook, and
//! logins over TCP (one try, growing waits, one check at a time, a pre-login limit, a
//! deadline, no echo of the password, constant-time comparison).
//! Timings are only asserted as lower bounds (a delay the server must impose).
#![cfg(feature = "backdoor")]

mod backdoor_support;

use backdoor_support::*;

#[test]
fn the_unix_socket_is_0600_even_with_umask_000() {
    shrapnel::reset();
    let (opts, path) = unix("mode");
    // SAFETY: umask only swaps the process's file mode mask; restored right after.
    let old = unsafe { libc::umask(0) };
    let bd = Backdoor::bind(opts);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let bd = bd.unwrap();
    let mode = std::fs::symlink_metadata(&path)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    assert_eq!(bd.addr(), &ListenAddr::Unix(path.clone()));
    // The listening fd is close-on-exec: a child process does not inherit the backdoor.
    let listener = shrapnel::net::live_sockets()
        .into_iter()
        .find(|s| s.local == path.display().to_string())
        .expect("the listener among the live sockets");
    assert_eq!(listener.kind, shrapnel::net::SocketKind::UnixListener);
    // SAFETY: F_GETFD only reads the fd's flags.
    let flags = unsafe { libc::fcntl(listener.fd, libc::F_GETFD) };
    assert!(flags >= 0 && flags & libc::FD_CLOEXEC != 0, "{flags}");
    drop(bd);
    assert!(!path.exists());
}

#[test]
fn a_regular_file_at_the_path_is_an_error_and_is_not_deleted() {
    shrapnel::reset();
    let (opts, path) = unix("file");
    std::fs::write(&path, b"precious").unwrap();
    let e = Backdoor::bind(opts).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
    let msg = e.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("is a regular file; it is left alone"), "{msg}");
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_stale_socket_is_replaced_and_a_live_one_is_not() {
    shrapnel::reset();
    let path = sock_path("stale");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap()); // leaves the file
    assert!(path.exists());
    let bd = Backdoor::bind(Options::unix(&path)).unwrap();
    let e = Backdoor::bind(Options::unix(&path)).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
    assert!(
        e.to_string().contains("another process is listening"),
        "{e}"
    );
    drop(bd);
    assert!(!path.exists());
}

#[test]
fn non_loopback_tcp_without_auth_is_refused() {
    shrapnel::reset();
    let e = Backdoor::bind(Options::tcp(([0, 0, 0, 0], 0))).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    let msg = e.to_string();
    assert!(
        msg.contains("refusing to listen on 0.0.0.0 without an authentication hook"),
        "{msg}"
    );
    assert!(msg.contains("Options::auth"), "{msg}");
    let e = Backdoor::bind(Options::tcp_scan_on([192, 0, 2, 1].into())).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn loopback_tcp_and_shrapnels_port_scan() {
    shrapnel::reset();
    let bd = Backdoor::bind(Options::tcp(([127, 0, 0, 1], 0))).unwrap();
    let ListenAddr::Tcp(addr) = bd.addr().clone() else {
        panic!("{:?}", bd.addr())
    };
    assert!(addr.ip().is_loopback() && addr.port() != 0);
    let scan = Backdoor::bind(Options::tcp_scan()).unwrap();
    let ListenAddr::Tcp(scanned) = scan.addr().clone() else {
        panic!()
    };
    assert_eq!(scanned.ip(), std::net::Ipv4Addr::LOCALHOST);
    assert!((8023..=8033).contains(&scanned.port()), "{scanned}");
    drop(scan);
    let out = drive(bd, move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s.write_all(b"live\r\nquit\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    });
    assert!(out.contains("  watcher\n"), "{out}");
    assert!(out.contains("backdoor session 1 (127.0.0.1:"), "{out}");
    assert!(out.ends_with("shrapnel> bye\n"), "{out}");
}

#[test]
fn login_one_try_and_a_failure_closes_the_session() {
    shrapnel::reset();
    let (opts, path) = unix("login");
    let bd = Backdoor::bind(
        opts.welcome("hi admin")
            .auth(|user, password| user == "admin" && password == "s3cret"),
    )
    .unwrap();
    drive(bd, move || {
        let mut bad = Client::raw(&path);
        assert_eq!(bad.read_until("user: "), "");
        bad.send(b"admin\n");
        assert_eq!(bad.read_until("password: "), "");
        bad.send(b"guess\nps\n");
        assert_eq!(bad.rest(), "login failed\n");

        let mut good = Client::raw(&path);
        good.read_until("user: ");
        good.send(b"admin\r\n");
        good.read_until("password: ");
        good.send(b"s3cret\r\n");
        assert_eq!(good.read_until(PROMPT), "hi admin\n");
        assert!(good.cmd("live").contains("live coroutines"));
    });
}

#[test]
fn a_non_loopback_bind_with_auth_is_allowed() {
    shrapnel::reset();
    let bd = Backdoor::bind(Options::tcp(([0, 0, 0, 0], 0)).auth(|_, _| false)).unwrap();
    assert!(matches!(bd.addr(), ListenAddr::Tcp(a) if a.port() != 0));
}

#[test]
fn failed_logins_from_one_peer_wait_longer_each_time() {
    shrapnel::reset();
    let (bd, addr) =
        tcp_with_login(|o| o.login_backoff(Duration::from_millis(50), Duration::from_secs(1)));
    drive(bd, move || {
        let t = Instant::now();
        for _ in 0..5 {
            let e = login(addr, "guess")
                .err()
                .expect("a wrong password is refused");
            assert!(e.contains("login failed"), "{e:?}");
        }
        // The 2nd attempt is checked 50 ms after the 1st failure at the earliest, the 3rd
        // 100 ms after the 2nd, then 200 and 400 ms.
        assert!(
            t.elapsed() >= Duration::from_millis(750),
            "5 failures in {:?}",
            t.elapsed()
        );
        // The right password waits its turn too (800 ms after the 5th failure), then works.
        let mut c = login(addr, "s3cret").expect("the right password");
        assert!(
            t.elapsed() >= Duration::from_millis(1550),
            "5 failures and a success in {:?}",
            t.elapsed()
        );
        assert!(c.cmd("stats").contains("backdoor sessions  1"));
    });
}

#[test]
fn parallel_failed_logins_are_checked_one_at_a_time() {
    shrapnel::reset();
    let (bd, addr) =
        tcp_with_login(|o| o.login_backoff(Duration::from_millis(100), Duration::from_secs(1)));
    drive(bd, move || {
        let t = Instant::now();
        let tries: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(move || login(addr, "guess").err()))
            .collect();
        for t in tries {
            let e = t.join().unwrap().expect("a wrong password is refused");
            assert!(e.contains("login failed"), "{e:?}");
        }
        // Checked one after the other: 100 + 200 + 400 ms between the four checks.
        assert!(
            t.elapsed() >= Duration::from_millis(700),
            "4 parallel failures in {:?}",
            t.elapsed()
        );
    });
}

#[test]
fn connections_that_have_not_logged_in_cannot_take_the_sessions_places() {
    shrapnel::reset();
    let (bd, addr) = tcp_with_login(|o| o);
    drive(bd, move || {
        let mut admin = login(addr, "s3cret").expect("the right password");
        let mut idle: Vec<Client> = (0..20).map(|_| Client::tcp(addr)).collect();
        let (mut asked, mut refused) = (0, 0);
        for c in &mut idle {
            let first = c.read_until(" ");
            match first.as_str() {
                "user:" => asked += 1,
                "backdoor:" => {
                    assert_eq!(
                        c.rest(),
                        "too many connections waiting to log in (4, the limit); try again \
                         later\n"
                    );
                    refused += 1;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!((asked, refused), (4, 16));
        // The logged-in session is not held up by them.
        assert!(admin.cmd("stats").contains("backdoor sessions  1"));
        // When they leave, logging in works again.
        drop(idle);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut again = loop {
            let mut c = Client::tcp(addr);
            if c.read_until(" ") == "user:" {
                break c;
            }
            assert!(
                Instant::now() < deadline,
                "the waiting places were not freed"
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        again.send(b"admin\r\n");
        again.read_until("password: ");
        again.send(b"s3cret\r\n");
        again.read_until(PROMPT);
        assert!(again.cmd("stats").contains("backdoor sessions  2"));
    });
}

#[test]
fn the_login_deadline_closes_a_connection_that_does_not_log_in() {
    shrapnel::reset();
    let (bd, addr) = tcp_with_login(|o| o.login_timeout(Duration::from_millis(300)));
    drive(bd, move || {
        let t = Instant::now();
        let mut silent = Client::tcp(addr);
        assert_eq!(silent.read_until("user: "), "");
        assert_eq!(
            silent.rest(),
            "\nbackdoor: no login within 300ms; closing the connection\n"
        );
        assert!(
            t.elapsed() >= Duration::from_millis(300),
            "{:?}",
            t.elapsed()
        );
        // The deadline covers the whole login, not each line.
        let t = Instant::now();
        let mut slow = Client::tcp(addr);
        slow.read_until("user: ");
        slow.send(b"admin\r\n");
        let rest = slow.rest();
        assert!(
            rest.ends_with(
                "\u{fffd}\u{fffd}\u{1}password: \u{fffd}\u{fffd}\u{1}\nbackdoor: no login within \
                 300ms; closing the connection\n"
            ),
            "{rest:?}"
        );
        assert!(
            t.elapsed() >= Duration::from_millis(300),
            "{:?}",
            t.elapsed()
        );
    });
}

#[test]
fn echo_is_off_while_the_password_is_typed() {
    shrapnel::reset();
    let (bd, addr) = tcp_with_login(|o| o.welcome("hi admin"));
    drive(bd, move || {
        let mut c = Client::tcp(addr);
        assert_eq!(c.read_until_bytes(b"user: "), b"");
        c.send(b"admin\r\n");
        // IAC WILL ECHO: the server says it echoes, so the client stops echoing.
        assert_eq!(c.read_until_bytes(b"password: "), b"\xff\xfb\x01");
        // A telnet client answers IAC DO ECHO; the password line is read whole around it.
        c.send(b"\xff\xfd\x01s3cret\r\n");
        // IAC WONT ECHO, and the newline the client did not echo.
        assert_eq!(
            c.read_until_bytes(PROMPT.as_bytes()),
            b"\xff\xfc\x01\nhi admin\n"
        );
        // Its IAC DONT ECHO reply is ignored too.
        c.send(b"\xff\xfe\x01");
        assert!(c.cmd("live").contains("backdoor session 1"));
    });
}

#[test]
fn constant_time_eq_compares_whole_slices() {
    use shrapnel::backdoor::constant_time_eq;
    assert!(constant_time_eq(b"s3cret", b"s3cret"));
    assert!(constant_time_eq(b"", b""));
    assert!(!constant_time_eq(b"s3cret", b"s3creT"));
    assert!(!constant_time_eq(b"s3cret", b"s3cre"));
    assert!(!constant_time_eq(b"s3cre", b"s3cret"));
    assert!(!constant_time_eq(b"", b"x"));
    assert!(!constant_time_eq(b"\0", b""));
}
