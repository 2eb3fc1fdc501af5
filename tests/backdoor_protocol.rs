//! The backdoor's protocol with real clients (`socat`, `nc -U`) and a Rust one: line
//! decoding, bad and binary input, telnet negotiation, Ctrl-D, the 1 MiB line limit, the
//! session limit, the idle timeout, and a client vanishing mid-command.
//! Timings are only asserted as lower bounds (a delay the server must impose).
#![cfg(feature = "backdoor")]

mod backdoor_support;

use backdoor_support::*;

#[test]
fn bad_lines_get_one_line_saying_what_was_wrong_and_the_session_stays_open() {
    shrapnel::reset();
    let (opts, path) = unix("bad");
    let bd = Backdoor::bind(
        opts.command("fails", "returns an error", |_a, out| {
            write!(out, "partial")?;
            Err(std::io::Error::other("disk on fire"))
        })
        .command("panics", "panics", |_a, _out| panic!("boom in a command")),
    )
    .unwrap();
    drive(bd, move || {
        let mut c = Client::connect(&path);
        assert_eq!(
            c.cmd("frobnicate 1 2"),
            "unknown command 'frobnicate'; try `help`\n"
        );
        assert_eq!(
            c.cmd("where"),
            "where: expects one coroutine id, e.g. `where 3` (see `ps`); try `help`\n"
        );
        assert_eq!(
            c.cmd("where abc"),
            "where: 'abc' is not a coroutine id; try `help`\n"
        );
        assert_eq!(c.cmd("ps -ef"), "ps: takes no arguments; try `help`\n");
        assert_eq!(
            c.cmd("top many"),
            "top: 'many' is not a count; try `help`\n"
        );
        assert_eq!(
            c.cmd("interrupt 424242"),
            "interrupt: no live coroutine #424242 (see `ps`)\n"
        );
        assert_eq!(
            c.cmd("shutdown 424242"),
            "shutdown: no live coroutine #424242 (see `ps`)\n"
        );
        let me = c
            .cmd("live")
            .lines()
            .find(|l| l.ends_with("backdoor session 1"))
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string();
        assert_eq!(
            c.cmd(&format!("interrupt {me}")),
            format!("interrupt: #{me} is this backdoor session; use `quit` to leave\n")
        );
        assert_eq!(c.cmd("fails"), "partial\nfails: error: disk on fire\n");
        assert_eq!(c.cmd("panics"), "panics: panicked: boom in a command\n");
        assert_eq!(c.cmd(""), "");
        if !cfg!(feature = "backdoor-script") {
            assert!(c.cmd("eval 1+1").contains("feature `backdoor-script`"));
        }
        assert!(c.cmd("stats").contains("backdoor sessions  1"));
        c.send(b"exit\r\n");
        assert_eq!(c.rest(), "bye\n");
    });
}

#[test]
fn ctrl_d_closes_the_session() {
    shrapnel::reset();
    let (opts, path) = unix("ctrld");
    let bd = Backdoor::bind(opts).unwrap();
    drive(bd, move || {
        let mut c = Client::connect(&path);
        c.send(b"\x04");
        assert_eq!(c.rest(), "");
    });
}

#[test]
fn a_socat_session() {
    need("socat");
    shrapnel::reset();
    let (opts, path) = unix("socat");
    let bd = Backdoor::bind(opts.welcome("demo backdoor")).unwrap();
    let out = drive(bd, move || {
        let target = format!("UNIX-CONNECT:{}", path.display());
        run_tool(
            "socat",
            // -t5: after stdin's end, wait up to 5 s (not 0.5 s) for the replies.
            &["-t5", "-", &target],
            b"help\nps\nstats\nwhere_all\nquit\n",
        )
    });
    assert!(
        out.starts_with("demo backdoor\nshrapnel> commands:\n"),
        "{out}"
    );
    assert!(out.contains("\nshrapnel>   ID  NAME "), "{out}");
    assert!(out.contains("backdoor session 1        running"), "{out}");
    assert!(out.contains("\nbackdoor sessions  1\n"), "{out}");
    // Ids are unique in the process, so the other tests' coroutines took some: match the
    // name, not the number.
    assert!(out.contains("'backdoor' blocked: readable fd "), "{out}");
    assert!(out.ends_with("shrapnel> bye\n"), "{out}");
}

#[test]
fn an_nc_session() {
    need("nc");
    shrapnel::reset();
    let (opts, path) = unix("nc");
    let bd = Backdoor::bind(opts).unwrap();
    let out = drive(bd, move || {
        let p = path.display().to_string();
        run_tool(
            "nc",
            &["-U", &p],
            b"live\r\nwhere_all\r\nsockets\r\nquit\r\n",
        )
    });
    assert!(out.contains("shrapnel> 3 live coroutines\n"), "{out}");
    assert!(out.contains("  backdoor\n"), "{out}");
    assert!(out.contains("'watcher' blocked: sleeping"), "{out}");
    assert!(out.contains("unix listener"), "{out}");
    assert!(out.ends_with("shrapnel> bye\n"), "{out}");
}

#[test]
fn a_1_mib_line_without_newline_closes_the_session_with_a_message() {
    shrapnel::reset();
    let (opts, path) = unix("long");
    let bd = Backdoor::bind(opts).unwrap();
    drive(bd, move || {
        let mut c = Client::connect(&path);
        // The server stops reading after 4 KiB, so this write fails part way: fine.
        let _ = c.s.write_all(&vec![b'x'; 1 << 20]);
        let rest = c.rest();
        assert_eq!(
            rest,
            "\nbackdoor: line longer than 4096 bytes; closing the session\n"
        );
    });
}

#[test]
fn binary_garbage_and_telnet_negotiation_do_not_break_the_session() {
    shrapnel::reset();
    let (opts, path) = unix("garbage");
    let bd = Backdoor::bind(opts).unwrap();
    drive(bd, move || {
        let mut c = Client::connect(&path);
        // What telnet sends first: WILL/DO negotiation and a terminal-type subnegotiation.
        c.send(b"\xff\xfb\x1f\xff\xfb\x20\xff\xfd\x03\xff\xfa\x18\x00xterm\xff\xf0");
        assert_eq!(c.cmd("selfishness 5"), "selfishness 5 (was 4)\n");
        // 8 KiB of pseudo-random bytes in 64-byte lines (no Ctrl-D, no IAC).
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut garbage = Vec::new();
        for i in 0..8192 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = match (x >> 32) as u8 {
                0x04 | 0xff | b'\n' | b'\r' => b'.',
                b => b,
            };
            garbage.push(if i % 64 == 63 { b'\n' } else { b });
        }
        c.send(&garbage);
        for _ in 0..128 {
            let reply = c.read_until(PROMPT);
            assert!(
                reply.is_empty() || reply.ends_with("try `help`\n") || reply.starts_with("eval"),
                "{reply:?}"
            );
        }
        c.send(b"selfishness\xff\xff 4\n");
        assert_eq!(
            c.read_until(PROMPT),
            "unknown command 'selfishness\u{fffd}'; try `help`\n"
        );
        assert!(c.cmd("stats").contains("backdoor sessions  1"));
        c.send(b"\xff\xfd\x01selfishness 4\r\0");
        assert_eq!(c.read_until(PROMPT), "selfishness 4 (was 5)\n");
    });
}

#[test]
fn a_hundred_clients_against_a_limit_of_16() {
    shrapnel::reset();
    let (opts, path) = unix("limit");
    let bd = Backdoor::bind(opts.welcome("welcome")).unwrap();
    assert_eq!(bd.sessions(), 0);
    drive(bd, move || {
        let mut clients: Vec<Client> = (0..100).map(|_| Client::raw(&path)).collect();
        let mut welcomed = 0;
        let mut refused = 0;
        for c in &mut clients {
            let first = c.read_until("\n");
            match first.as_str() {
                "welcome" => welcomed += 1,
                "backdoor: too many sessions (16 open, the limit); try again later" => {
                    assert_eq!(c.rest(), "");
                    refused += 1;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!((welcomed, refused), (16, 84));
        // A session that ends frees its place.
        clients.truncate(16);
        let mut leaving = clients.pop().unwrap();
        leaving.send(b"quit\n");
        // The session's count is dropped in the same slice that closes the connection.
        assert_eq!(leaving.rest(), "shrapnel> bye\n");
        let mut again = Client::connect(&path);
        assert_eq!(again.welcome, "welcome\n");
        assert!(again.cmd("stats").contains("backdoor sessions  16"));
    });
}

#[test]
fn an_idle_session_is_timed_out() {
    shrapnel::reset();
    let (opts, path) = unix("idle");
    let bd = Backdoor::bind(opts.idle_timeout(Duration::from_millis(150))).unwrap();
    drive(bd, move || {
        let mut c = Client::connect(&path);
        assert_eq!(c.cmd("selfishness 4"), "selfishness 4 (was 4)\n");
        let t = Instant::now();
        assert_eq!(
            c.rest(),
            "\nbackdoor: idle for 150ms; closing the session\n"
        );
        assert!(
            t.elapsed() >= Duration::from_millis(140),
            "{:?}",
            t.elapsed()
        );
    });
}

#[test]
fn a_client_that_disconnects_mid_command_ends_only_its_session() {
    shrapnel::reset();
    let (opts, path) = unix("disconnect");
    let bd = Backdoor::bind(
        opts.command("slow", "sleeps, then writes a lot", |_a, out| {
            shrapnel::sleep(Duration::from_millis(50))
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::Interrupted, e))?;
            out.write_all(&vec![b'y'; 1 << 20])
        }),
    )
    .unwrap();
    drive(bd, move || {
        let mut c = Client::connect(&path);
        c.send(b"slow\n");
        drop(c);
        let mut half = Client::connect(&path);
        half.send(b"whe");
        drop(half);
        let mut d = Client::connect(&path);
        // Session 1 ends when its command's output cannot be written (after a 50 ms sleep),
        // session 2 at the end of its input.
        let deadline = Instant::now() + Duration::from_secs(5);
        let ps = loop {
            let ps = d.cmd("ps");
            if !ps.contains("backdoor session 1") || Instant::now() > deadline {
                break ps;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        assert!(!ps.contains("backdoor session 1"), "{ps}");
        assert!(!ps.contains("backdoor session 2"), "{ps}");
        assert!(ps.contains("backdoor session 3"), "{ps}");
        assert!(d.cmd("stats").contains("backdoor sessions  1"));
    });
}
