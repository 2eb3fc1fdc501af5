//! The backdoor's commands against a known set of coroutines: every built-in, application
//! commands, output kept to its own session, the levers that refuse to stop the console,
//! an interrupted listener, and `eval` (feature `backdoor-script`) with its limits.
//! Timings are only asserted as lower bounds (a delay the server must impose).
#![cfg(feature = "backdoor")]

mod backdoor_support;

use backdoor_support::*;

#[test]
fn every_builtin_command_against_known_coroutines() {
    shrapnel::reset();
    let (opts, path) = unix("builtins");
    let bd = Backdoor::bind(opts.command("greet", "say hello", |args, out| {
        writeln!(out, "hello, {}", args.join(" and "))
    }))
    .unwrap();
    let saw = Rc::new(Cell::new(None));
    let k = spawn_known(saw.clone());
    let path2 = path.clone();
    let ids = [k.sleeper, k.reader, k.holder, k.locker, k.joiner, k.busy];
    let (nid, busy_id) = (k.not_started, k.busy);
    let out = drive(bd, move || {
        // The known coroutines reach their waits in the loop's first pass, before the
        // backdoor's accept returns.
        let mut c = Client::connect(&path2);
        assert!(c.welcome.contains("shrapnel backdoor: "), "{}", c.welcome);
        assert!(c.welcome.contains(&format!("pid {}", std::process::id())));

        check_help(&mut c);
        check_ps(&mut c, ids);
        check_latency_and_top(&mut c, busy_id);
        check_where(&mut c, ids, nid);
        check_live_and_stats(&mut c, ids);
        check_sockets(&mut c, &path2);
        check_levers(&mut c, ids);
        c.send(b"quit\n");
        c.rest()
    });
    assert_eq!(out, "bye\n");
    assert_eq!(saw.take(), Some(Err(Interrupted::Interrupt(7))));
    assert!(
        !path.exists(),
        "the socket file is removed when the backdoor closes"
    );
}

/// `help` lists every built-in, the application's command, and `eval` with `backdoor-script`.
fn check_help(c: &mut Client) {
    let help = c.cmd("help");
    for word in [
        "help",
        "ps",
        "where N",
        "where_all",
        "live",
        "latency [FACTOR]",
        "top [N]",
        "stats",
        "sockets",
        "interrupt N",
        "shutdown N",
        "selfishness N",
        "quit",
    ] {
        assert!(help.contains(&format!("  {word} ")), "{word} in\n{help}");
    }
    assert!(help.contains("application commands:\n  greet"), "{help}");
    assert_eq!(
        help.contains("eval SCRIPT"),
        cfg!(feature = "backdoor-script")
    );
}

/// `ps`: one row per coroutine with its state, wait and slice statistics.
fn check_ps(c: &mut Client, ids: [u64; 6]) {
    let ps = c.cmd("ps");
    // WAIT is as wide as its widest cell: here `mutex (held by #N)`.
    assert!(
        ps.starts_with("  ID  NAME                      STATE      WAIT  "),
        "{ps}"
    );
    assert!(
        ps.lines()
            .next()
            .unwrap()
            .ends_with("  WAITED  SLICES   MAX SLICE"),
        "{ps}"
    );
    let cells = |name: &str| -> Vec<String> {
        row(&ps, name)
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect()
    };
    assert_eq!(cells("sleeper")[2..4], ["blocked", "sleeping"]);
    assert_eq!(cells("reader")[2], "blocked");
    assert!(cells("reader")[3].starts_with("readable fd "), "{ps}");
    assert_eq!(cells("holder")[2..4], ["blocked", "sleeping"]);
    assert_eq!(
        cells("locker")[2..4],
        [
            "blocked".to_string(),
            format!("mutex (held by #{})", ids[2])
        ]
    );
    assert_eq!(cells("joiner")[3], format!("join #{}", ids[0]));
    assert_eq!(cells("unstarted")[2..4], ["new", "not started"]);
    assert_eq!(cells("backdoor")[2], "blocked");
    assert_eq!(cells("backdoor session 1")[2..4], ["running", "running"]);
    assert_eq!(cells("sleeper")[0], ids[0].to_string());
    if cfg!(feature = "latency") {
        let busy = cells("busy");
        assert!(busy[5].parse::<u64>().unwrap() >= 1, "{ps}");
        let max: f64 = busy[6].trim_end_matches('s').parse().unwrap();
        assert!(max >= 0.060, "{ps}");
    } else {
        assert_eq!(cells("busy")[5..7], ["-", "-"]);
    }
}

/// `latency [factor]` and `top [n]` (or what they say with feature `latency` off).
fn check_latency_and_top(c: &mut Client, busy_id: u64) {
    // Before `where`: with `stacks`, its first symbolization is a long slice itself.
    if cfg!(feature = "latency") {
        assert_eq!(
            c.cmd("latency"),
            "latency warning factor 1 (slices over 0.200s are reported)\n"
        );
        assert_eq!(
            c.cmd("latency 2.5"),
            "latency warning factor 2.5 (slices over 0.500s are reported); was 1\n"
        );
        assert_eq!(
            c.cmd("latency 0"),
            "latency warning off (factor 0); was 2.5\n"
        );
        assert!(c
            .cmd("latency 999")
            .starts_with("latency: latency factor 999 is out of range"));
        let top = c.cmd("top 1");
        let lines: Vec<&str> = top.lines().collect();
        assert_eq!(lines.len(), 2, "{top}");
        assert!(lines[0].contains("MAX SLICE"));
        assert!(
            lines[1].starts_with(&format!("{busy_id:>4}  busy ")),
            "{top}"
        );
        assert_eq!(c.cmd("top").lines().count(), 11, "header + 10");
    } else {
        assert!(c
            .cmd("latency")
            .contains("feature `latency` of shrapnel is off"));
        assert!(c
            .cmd("top")
            .contains("feature `latency` of shrapnel is off"));
    }
}

/// `where N` and `where_all`: each known coroutine's wait, and the line it blocked at.
fn check_where(c: &mut Client, ids: [u64; 6], nid: u64) {
    let w = c.cmd(&format!("where {}", ids[0]));
    assert!(
        w.starts_with(&format!("#{} 'sleeper' blocked: sleeping (", ids[0])),
        "{w}"
    );
    assert!(w.contains("tests/backdoor_support/mod.rs:"), "{w}");
    assert!(c
        .cmd("where 99999")
        .contains("where: no live coroutine #99999 (see `ps`)"));

    let all = c.cmd("where_all");
    for (i, name) in ["sleeper", "reader", "holder", "locker", "joiner", "busy"]
        .iter()
        .enumerate()
    {
        assert!(
            all.contains(&format!("#{} '{name}' blocked: ", ids[i])),
            "{all}"
        );
    }
    assert!(
        all.contains(&format!("#{nid} 'unstarted' new: not started")),
        "{all}"
    );
    assert!(
        all.contains(&format!(
            "#{} 'locker' blocked: mutex held by #{} 'holder' for ",
            ids[3], ids[2]
        )),
        "{all}"
    );
    assert!(
        all.contains(&format!(
            "#{} 'joiner' blocked: join #{} 'sleeper' for ",
            ids[4], ids[0]
        )),
        "{all}"
    );
}

/// `live` and `stats`: counts of coroutines, sessions, timers, sockets and switches.
fn check_live_and_stats(c: &mut Client, ids: [u64; 6]) {
    let live = c.cmd("live");
    assert!(live.starts_with("10 live coroutines\n"), "{live}");
    assert!(live.contains(&format!("{:>4}  reader\n", ids[1])), "{live}");

    let stats = c.cmd("stats");
    let value = |k: &str| -> String {
        stats
            .lines()
            .find(|l| l.starts_with(&format!("{k} ")))
            .unwrap_or_else(|| panic!("{k} in\n{stats}"))[k.len()..]
            .trim()
            .to_string()
    };
    assert_eq!(value("live coroutines"), "10");
    assert_eq!(value("backdoor sessions"), "1");
    // Timers: sleeper, holder, busy and the watcher (this session's idle timeout is not
    // armed while it runs a command). Only the watcher can be ready instead: its 2 ms
    // sleep may have ended in the loop pass that made this session readable.
    let queued: u64 = value("run queue").parse().unwrap();
    let timers: u64 = value("timers pending").parse().unwrap();
    assert!(queued <= 1 && timers + queued == 4, "{stats}");
    assert_eq!(value("live sockets"), "4"); // listener, session, the socketpair
    assert!(value("switches").parse::<u64>().unwrap() >= 8);
    assert!(value("polls").parse::<u64>().unwrap() >= 1);
    assert!(value("uptime").ends_with('s'));
    // The blocking pool, unused here: no thread yet, at most the default.
    assert!(
        value("blocking threads").ends_with("at most 64)"),
        "{stats}"
    );
    assert!(value("blocking queue").starts_with("0 ("), "{stats}");
}

/// `sockets`: the listener at its path and the three unix streams.
fn check_sockets(c: &mut Client, path: &std::path::Path) {
    let socks = c.cmd("sockets");
    assert!(socks.starts_with("  FD  KIND "), "{socks}");
    let shown = path.display().to_string();
    assert!(
        socks
            .lines()
            .any(|l| l.contains("unix listener") && l.trim_end().ends_with(&shown)),
        "{socks}"
    );
    // The session's stream and the two ends of the reader's socketpair.
    let streams = socks
        .lines()
        .filter(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w[1] == "unix" && w[2] != "listener"
        })
        .count();
    assert_eq!(streams, 3, "{socks}");
}

/// `selfishness`, an application command, `interrupt` and `shutdown`, and the coroutines they end leaving.
fn check_levers(c: &mut Client, ids: [u64; 6]) {
    assert_eq!(c.cmd("selfishness 8"), "selfishness 8 (was 4)\n");
    assert!(c
        .cmd("selfishness 0")
        .starts_with("selfishness: selfishness must be at least 1"));
    assert_eq!(c.cmd("greet bob alice"), "hello, bob and alice\n");

    assert_eq!(
        c.cmd(&format!("interrupt {} 7", ids[0])),
        format!(
            "interrupt #{} 'sleeper': its blocking call returns Interrupted::Interrupt(7)\n",
            ids[0]
        )
    );
    assert_eq!(
        c.cmd(&format!("shutdown {}", ids[2])),
        format!(
            "shutdown #{} 'holder': its blocking call returns Interrupted::Shutdown\n",
            ids[2]
        )
    );
    // The sleeper ends (its joiner too), the holder lets the locker in and the locker
    // finishes, once the scheduler gets to them.
    let gone = [ids[0], ids[2], ids[3], ids[4]];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let live = c.cmd("live");
        let left: Vec<u64> = gone
            .into_iter()
            .filter(|id| live.contains(&format!("{id:>4}  ")))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "{left:?} still in {live}");
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(c
        .cmd(&format!("interrupt {}", ids[0]))
        .contains("no live coroutine"));
}

#[test]
fn output_goes_to_its_own_session_and_print_stderr_to_the_real_stderr() {
    const NAME: &str = "output_goes_to_its_own_session_and_print_stderr_to_the_real_stderr";
    if std::env::var_os("SHRAPNEL_BACKDOOR_CHILD").is_none() {
        let err = child_stderr(NAME);
        assert!(err.contains("noise from a coroutine"), "{err}");
        return;
    }
    shrapnel::reset();
    let (opts, path) = unix("own");
    let bd = Backdoor::bind(opts.command("say", "say the words", |args, out| {
        // Yield half-way, so the other session's command runs in between.
        write!(out, "{}", args[0])?;
        shrapnel::yield_slice();
        writeln!(out, " {}", args[1])
    }))
    .unwrap();
    shrapnel::spawn(|| {
        while shrapnel::sleep(Duration::from_millis(1)).is_ok() {
            shrapnel::print_stderr!("noise from a coroutine");
        }
    });
    drive(bd, move || {
        let mut a = Client::connect(&path);
        let mut b = Client::connect(&path);
        for i in 0..20 {
            a.send(format!("say a{i} A{i}\n").as_bytes());
            b.send(format!("say b{i} B{i}\n").as_bytes());
            assert_eq!(a.read_until(PROMPT), format!("a{i} A{i}\n"));
            assert_eq!(b.read_until(PROMPT), format!("b{i} B{i}\n"));
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

#[test]
fn close_stops_serving_and_serve_runs_once() {
    shrapnel::reset();
    let (opts, path) = unix("close");
    let bd = Backdoor::bind(opts).unwrap();
    let (a, b, c) = (bd.clone(), bd.clone(), bd.clone());
    let first = shrapnel::spawn(move || a.serve());
    let second = shrapnel::spawn(move || b.serve());
    shrapnel::spawn(move || {
        shrapnel::sleep(Duration::from_millis(5)).unwrap();
        c.close();
    });
    assert_eq!(shrapnel::event_loop(), 0);
    first.join().unwrap().unwrap();
    let e = second.join().unwrap().unwrap_err();
    assert!(e.to_string().contains("already served"), "{e}");
    assert!(!path.exists());
    assert!(UnixStream::connect(&path).is_err());
}

#[test]
fn registering_builtin_or_bad_names_is_refused() {
    shrapnel::reset();
    let (opts, _path) = unix("register");
    let bd = Backdoor::bind(opts).unwrap();
    let e = bd.register("ps", "mine", |_, _| Ok(())).unwrap_err();
    assert_eq!(
        e.to_string(),
        "backdoor: cannot register command 'ps': that is a built-in command"
    );
    assert!(bd.register("two words", "", |_, _| Ok(())).is_err());
    assert!(bd.register("", "", |_, _| Ok(())).is_err());
    bd.register("mine", "ok", |_, _| Ok(())).unwrap();
    let (opts, path) = unix("register2");
    let e = Backdoor::bind(opts.command("quit", "", |_, _| Ok(()))).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(!path.exists(), "nothing is bound when the options are bad");
}

#[test]
fn the_console_refuses_to_stop_the_listener_or_its_own_session() {
    shrapnel::reset();
    let (opts, path) = unix("levers");
    let bd = Backdoor::bind(opts).unwrap();
    drive(bd, move || {
        let mut c = Client::connect(&path);
        let listener = id_of(&mut c, "backdoor");
        let me = id_of(&mut c, "backdoor session 1");
        for verb in ["interrupt", "shutdown"] {
            assert_eq!(
                c.cmd(&format!("{verb} {listener}")),
                format!(
                    "{verb}: #{listener} is the backdoor's listener; stopping it would close \
                     the backdoor (the application can call Backdoor::close)\n"
                )
            );
            assert_eq!(
                c.cmd(&format!("{verb} {me}")),
                format!("{verb}: #{me} is this backdoor session; use `quit` to leave\n")
            );
        }
        // Still listening, and this session still works.
        let mut d = Client::connect(&path);
        assert!(d.cmd("live").contains("backdoor session 2"));
        assert!(c.cmd("live").contains("backdoor session 1"));
    });
}

#[test]
fn an_interrupted_listener_says_why_on_stderr_and_keeps_accepting() {
    const NAME: &str = "an_interrupted_listener_says_why_on_stderr_and_keeps_accepting";
    if std::env::var_os("SHRAPNEL_BACKDOOR_CHILD").is_none() {
        let err = child_stderr(NAME);
        assert!(
            err.contains("'backdoor' was interrupted (code 5); still accepting"),
            "{err}"
        );
        assert!(
            err.contains("closed: its coroutine #1 'backdoor' was shut down"),
            "{err}"
        );
        return;
    }
    shrapnel::reset();
    let (opts, path) = unix("relisten");
    let coro = |args: &[&str]| -> std::io::Result<shrapnel::CoroRef> {
        let id: u64 = args[0].parse().map_err(std::io::Error::other)?;
        shrapnel::coro_by_id(id).ok_or_else(|| std::io::Error::other("no such coroutine"))
    };
    let bd = Backdoor::bind(
        opts.command(
            "poke",
            "interrupt from application code",
            move |args, out| writeln!(out, "{}", coro(args)?.interrupt(5)),
        )
        .command(
            "stop",
            "shut down from application code",
            move |args, out| writeln!(out, "{}", coro(args)?.shutdown()),
        ),
    )
    .unwrap();
    drive(bd, move || {
        let mut c = Client::connect(&path);
        let listener = id_of(&mut c, "backdoor");
        assert_eq!(listener, 1);
        assert_eq!(c.cmd(&format!("poke {listener}")), "true\n");
        // The listener sees the interrupt in its accept, says so, and accepts again.
        let mut d = Client::connect(&path);
        assert!(d.cmd("live").contains("backdoor session 2"));
        assert!(path.exists());
        // A shutdown is a request to finish: the backdoor closes, saying so.
        assert_eq!(d.cmd(&format!("stop {listener}")), "true\n");
        let deadline = Instant::now() + Duration::from_secs(5);
        while path.exists() {
            assert!(Instant::now() < deadline, "the listener did not close");
            std::thread::sleep(Duration::from_millis(2));
        }
        // Open sessions go on.
        assert!(c.cmd("live").contains("backdoor session 1"));
    });
}

#[cfg(feature = "backdoor-script")]
mod script {
    use super::*;

    fn with_app(tag: &str) -> (Backdoor, PathBuf) {
        let (opts, path) = unix(tag);
        let opts = opts.max_operations(50_000).script_engine(|engine| {
            engine.register_fn("cache_size", || 1234_i64);
            engine.register_fn("boom", || -> i64 { panic!("boom in a script function") });
        });
        (Backdoor::bind(opts).unwrap(), path)
    }

    #[test]
    fn eval_sees_the_builtins_and_the_applications_objects() {
        shrapnel::reset();
        let (bd, path) = with_app("eval");
        let saw = Rc::new(Cell::new(None));
        let k = spawn_known(saw.clone());
        let sleeper = k.sleeper;
        drive(bd, move || {
            let mut c = Client::connect(&path);
            assert_eq!(c.cmd("eval cache_size() * 2"), "2468\n");
            assert_eq!(c.cmd("eval 40 + 2"), "42\n");
            assert_eq!(c.cmd("eval let x = 5;"), "");
            assert_eq!(
                c.cmd("eval x * 3"),
                "15\n",
                "variables persist in a session"
            );
            assert_eq!(c.cmd("eval ps().len()"), "10\n");
            assert_eq!(c.cmd("eval live().len()"), "10\n");
            assert_eq!(
                c.cmd("eval ps().filter(|c| c.name == \"locker\")[0].reason"),
                "mutex\n"
            );
            assert_eq!(c.cmd("eval stats().live"), "10\n");
            assert_eq!(c.cmd("eval sockets().len()"), "4\n");
            assert!(c
                .cmd(&format!("eval where_is({sleeper})"))
                .starts_with(&format!("#{sleeper} 'sleeper' blocked: sleeping")));
            assert!(c
                .cmd("eval where_all()")
                .contains("'reader' blocked: readable fd"));
            assert_eq!(
                c.cmd("eval print(\"to the session\"); 1"),
                "to the session\n1\n"
            );
            assert_eq!(c.cmd("eval selfishness(6)"), "4\n");
            assert!(c
                .cmd("eval where_is(99999)")
                .contains("no live coroutine #99999"));
            if cfg!(feature = "latency") {
                assert_eq!(c.cmd("eval top(1)[0].name"), "busy\n");
            }
            assert_eq!(c.cmd(&format!("eval interrupt({sleeper}, 3)")), "true\n");
            assert_eq!(c.cmd("eval interrupt(99999)"), "false\n");
            let deadline = Instant::now() + Duration::from_secs(5);
            while c.cmd(&format!("eval live().contains({sleeper})")) == "true\n" {
                assert!(Instant::now() < deadline, "the sleeper did not end");
                std::thread::sleep(Duration::from_millis(2));
            }
            assert!(c.cmd("eval 1 +").starts_with("eval: "));
        });
        assert_eq!(saw.take(), Some(Err(Interrupted::Interrupt(3))));
    }

    #[test]
    fn an_endless_script_is_stopped_by_the_operation_limit() {
        shrapnel::reset();
        let (bd, path) = with_app("loop");
        drive(bd, move || {
            let mut c = Client::connect(&path);
            let t = Instant::now();
            let out = c.cmd("eval loop { }");
            assert!(out.starts_with("eval: stopped at "), "{out}");
            assert!(out.contains("after 50000 operations, the limit"), "{out}");
            assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
            let out = c.cmd("eval fn f(n) { f(n + 1) } f(0)");
            assert!(out.starts_with("eval: "), "{out}");
            let out = c.cmd("eval let s = \"x\"; loop { s += s }");
            assert!(out.starts_with("eval: "), "{out}");
            assert_eq!(c.cmd("eval 1"), "1\n");
        });
    }

    /// A coroutine that counts its turns (it yields after each): when the count moves while
    /// a script runs, the script let the other coroutines run.
    fn spawn_ticker() -> Rc<Cell<i64>> {
        let n = Rc::new(Cell::new(0));
        let m = n.clone();
        shrapnel::Builder::new()
            .name("ticker")
            .spawn(move || loop {
                m.set(m.get() + 1);
                shrapnel::yield_slice();
            })
            .unwrap();
        n
    }

    /// A backdoor whose scripts can read the ticker's count with `ticks()`.
    fn with_ticker(tag: &str, opts: impl FnOnce(Options) -> Options) -> (Backdoor, PathBuf) {
        let ticks = spawn_ticker();
        let (o, path) = unix(tag);
        let o = opts(o).script_engine(move |engine| {
            let t = ticks.clone();
            engine.register_fn("ticks", move || t.get());
        });
        (Backdoor::bind(o).unwrap(), path)
    }

    #[test]
    fn eval_sleep_is_a_coroutine_sleep_that_lets_others_run() {
        shrapnel::reset();
        let (bd, path) = with_ticker("sleep", |o| o);
        drive(bd, move || {
            let mut c = Client::connect(&path);
            let ran: i64 = c
                .cmd("eval let a = ticks(); sleep(0.05); ticks() - a")
                .trim()
                .parse()
                .unwrap();
            assert!(ran > 0, "the ticker did not run while the script slept");
            assert_eq!(
                c.cmd("eval let a = ticks(); sleep(0); ticks() > a"),
                "true\n"
            );
            let out = c.cmd("eval sleep(-1)");
            assert!(out.starts_with("eval: sleep: -1"), "{out}");
            assert!(out.contains("not a number of seconds"), "{out}");
        });
    }

    #[test]
    fn an_endless_sleep_is_cut_by_the_time_limit() {
        shrapnel::reset();
        let (bd, path) = with_ticker("sleep-forever", |o| {
            o.eval_time_limit(Duration::from_millis(300))
        });
        drive(bd, move || {
            let mut c = Client::connect(&path);
            let t = Instant::now();
            let out = c.cmd("eval sleep(1e19)");
            assert!(
                t.elapsed() >= Duration::from_millis(300),
                "{:?}",
                t.elapsed()
            );
            assert!(
                out.starts_with("eval: stopped after 300ms, the time limit"),
                "{out}"
            );
            assert!(out.contains("Options::eval_time_limit"), "{out}");
            assert_eq!(c.cmd("eval 1"), "1\n");
        });
    }

    #[test]
    fn a_long_script_lets_the_other_coroutines_run() {
        shrapnel::reset();
        let (bd, path) = with_ticker("share", |o| o.max_operations(50_000));
        drive(bd, move || {
            let mut c = Client::connect(&path);
            // Each round is one operation that takes a while (a 64 KiB string); the loop
            // ends as soon as the ticker has had a turn.
            let out = c.cmd(
                "eval let a = ticks(); while ticks() == a { let s = \"x\"; s.pad(65000, \"x\"); } \
                 \"others ran\"",
            );
            assert_eq!(out, "others ran\n");
        });
    }

    #[test]
    fn a_slow_script_is_stopped_by_the_time_limit() {
        shrapnel::reset();
        let (bd, path) = with_ticker("slow", |o| {
            o.max_operations(u64::MAX)
                .eval_time_limit(Duration::from_millis(300))
        });
        drive(bd, move || {
            let mut c = Client::connect(&path);
            let t = Instant::now();
            let out =
                c.cmd("eval let a = ticks(); loop { print(ticks() - a); let s = \"x\"; s.pad(65000, \"x\"); }");
            assert!(
                t.elapsed() >= Duration::from_millis(300),
                "{:?}",
                t.elapsed()
            );
            let last = out.lines().last().unwrap();
            assert!(
                last.starts_with("eval: stopped after 300ms, the time limit"),
                "{last}"
            );
            assert!(last.contains("Options::eval_time_limit"), "{last}");
            // What it printed: the ticker's turns since the start, growing.
            let seen: Vec<i64> = out.lines().filter_map(|l| l.parse().ok()).collect();
            assert!(seen.last().is_some_and(|&n| n > 0), "{out}");
            assert_eq!(c.cmd("eval 2"), "2\n");
        });
    }

    #[test]
    fn eval_levers_refuse_the_session_and_the_listener() {
        shrapnel::reset();
        let (bd, path) = with_app("eval-levers");
        drive(bd, move || {
            let mut c = Client::connect(&path);
            let me = id_of(&mut c, "backdoor session 1");
            let listener = id_of(&mut c, "backdoor");
            for call in [
                "interrupt(ID)",
                "interrupt(ID, 7)",
                "shutdown(ID)",
                "wake_up(ID)",
            ] {
                let verb = &call[..call.find('(').unwrap()];
                let out = c.cmd(&format!("eval {}", call.replace("ID", &me.to_string())));
                assert!(
                    out.starts_with(&format!(
                        "eval: {verb}: #{me} is this backdoor session; use `quit` to leave"
                    )),
                    "{out}"
                );
                let out = c.cmd(&format!(
                    "eval {}",
                    call.replace("ID", &listener.to_string())
                ));
                assert!(
                    out.starts_with(&format!(
                        "eval: {verb}: #{listener} is the backdoor's listener"
                    )),
                    "{out}"
                );
            }
            // Twice, as in the report: the session is still there.
            let out = c.cmd(&format!("eval interrupt({me})"));
            assert!(out.contains("is this backdoor session"), "{out}");
            assert_eq!(c.cmd("eval 1"), "1\n");
            assert!(Client::connect(&path)
                .cmd("live")
                .contains("backdoor session 2"));
        });
    }

    #[test]
    fn a_panicking_script_function_does_not_end_the_session() {
        shrapnel::reset();
        let (bd, path) = with_app("panic");
        drive(bd, move || {
            let mut c = Client::connect(&path);
            assert_eq!(c.cmd("eval let y = 2;"), "");
            assert_eq!(
                c.cmd("eval boom()"),
                "eval: the script panicked: boom in a script function; its variables were reset\n"
            );
            assert!(c.cmd("eval y").starts_with("eval: "), "a fresh scope");
            assert_eq!(c.cmd("eval cache_size()"), "1234\n");
            assert!(c.cmd("stats").contains("backdoor sessions  1"));
        });
    }
}

/// `deadlocks` prints each cycle with its members as `where N` does; `ps` and `where`
/// say who holds the mutex each waits for.
#[test]
fn deadlocks_lists_each_cycle_and_ps_names_the_holders() {
    use shrapnel::sync::Mutex;
    shrapnel::reset();
    let (opts, path) = unix("deadlocks");
    let bd = Backdoor::bind(opts).unwrap();
    let (a, b) = (Rc::new(Mutex::new(())), Rc::new(Mutex::new(())));
    let mut ids = Vec::new();
    for (name, first, second) in [("left", a.clone(), b.clone()), ("right", b, a)] {
        let c = shrapnel::Builder::new()
            .name(name)
            .spawn(move || {
                let _one = first.lock()?;
                shrapnel::sleep(Duration::from_millis(2))?;
                let _two = second.lock()?;
                Ok::<_, Interrupted>(())
            })
            .unwrap();
        ids.push(c.id());
    }
    let (left, right) = (ids[0], ids[1]);
    let (out, ps, after) = drive(bd, move || {
        std::thread::sleep(Duration::from_millis(50));
        let mut c = Client::connect(&path);
        let out = c.cmd("deadlocks");
        let ps = c.cmd("ps");
        c.cmd(&format!("shutdown {left}"));
        std::thread::sleep(Duration::from_millis(50));
        let after = c.cmd("deadlocks");
        c.send(b"quit\n");
        (out, ps, after)
    });
    assert!(
        out.starts_with("deadlock 1: 2 coroutines, each waiting for the next:\n"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "  #{left} 'left' blocked: mutex held by #{right} 'right' for "
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "  #{right} 'right' blocked: mutex held by #{left} 'left' for "
        )),
        "{out}"
    );
    assert!(
        row(&ps, "left").contains(&format!("mutex (held by #{right})")),
        "{ps}"
    );
    assert!(
        after.starts_with("no deadlock among "),
        "shutting one down broke the cycle: {after}"
    );
}

/// Every `--json` document parses and has the documented members and types; `metrics`
/// is the Prometheus text format.
#[test]
fn json_documents_and_metrics_follow_their_schema() {
    use serde_json::Value;
    shrapnel::reset();
    let (opts, path) = unix("json");
    let bd = Backdoor::bind(opts).unwrap();
    let k = spawn_known(Rc::new(Cell::new(None)));
    let (holder, locker, sleeper) = (k.holder, k.locker, k.sleeper);
    // One wait that surely ends before the client asks: a pop of an empty fifo (the first
    // pass: it blocks), pushed to in the next pass, so it ends before the loop first polls
    // for the client. (The session's own reads may or may not wait, depending on timing;
    // a push 1 ms later was not soon enough: nine commands can be answered within 1 ms.)
    let fifo: Rc<shrapnel::sync::Fifo<u8>> = Rc::new(shrapnel::sync::Fifo::new());
    let f = fifo.clone();
    shrapnel::spawn(move || f.pop().map(drop));
    shrapnel::spawn(move || {
        shrapnel::yield_slice();
        fifo.push(1);
    });
    let docs = drive(bd, move || {
        let mut c = Client::connect(&path);
        let mut docs = Vec::new();
        for cmd in [
            "ps --json".to_string(),
            format!("where {locker} --json"),
            "where 999999 --json".to_string(),
            "where_all --json".to_string(),
            "top 3 --json".to_string(),
            "stats --json".to_string(),
            "sockets --json".to_string(),
            "deadlocks --json".to_string(),
            "metrics".to_string(),
            "contention 5 --json".to_string(),
            "contention".to_string(),
        ] {
            docs.push((cmd.clone(), c.cmd(&cmd)));
        }
        c.send(b"quit\n");
        docs
    });
    let parse = |k: usize| -> Value {
        let (cmd, text) = &docs[k];
        assert_eq!(text.lines().count(), 1, "{cmd}: one line:\n{text}");
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{cmd}: {e}:\n{text}"))
    };
    let check_coro = |c: &Value, with_stack: bool| {
        assert!(c["id"].is_u64(), "{c}");
        assert!(c["name"].is_string(), "{c}");
        assert!(c["scheduler"].is_u64() || c["scheduler"].is_null(), "{c}");
        let state = c["state"].as_str().unwrap();
        assert!(
            ["new", "scheduled", "running", "blocked", "dead"].contains(&state),
            "{c}"
        );
        assert!(c["wait"].is_string() && c["waited_s"].is_number(), "{c}");
        assert!(c["sleep_left_s"].is_number() || c["sleep_left_s"].is_null());
        assert!(c["blocked_at"].is_string() || c["blocked_at"].is_null());
        assert!(c["stack_size"].is_u64());
        for k in ["count", "total_s", "max_s"] {
            assert!(c["slices"][k].is_number(), "{c}");
        }
        assert_eq!(c.get("stack").is_some(), with_stack, "{c}");
        if with_stack {
            for f in c["stack"].as_array().unwrap() {
                assert!(f["function"].is_string(), "{c}");
            }
        }
    };

    let ps = parse(0);
    let list = ps["coroutines"].as_array().unwrap();
    assert!(list.len() >= 8, "{ps}");
    list.iter().for_each(|c| check_coro(c, false));
    assert_eq!(ps["notes"], serde_json::json!([]));
    let lock = list.iter().find(|c| c["id"] == locker).unwrap();
    assert_eq!(lock["wait"], "mutex");
    assert_eq!(lock["held_by"]["id"], holder);
    assert_eq!(lock["held_by"]["name"], "holder");
    assert!(lock["blocked_at"]
        .as_str()
        .unwrap()
        .contains("backdoor_support"));
    let sleep = list.iter().find(|c| c["id"] == sleeper).unwrap();
    assert!(sleep["sleep_left_s"].as_f64().unwrap() > 3000.0, "{sleep}");

    let one = parse(1);
    check_coro(&one["coroutine"], true);
    assert_eq!(one["coroutine"]["id"], locker);
    assert_eq!(parse(2)["coroutine"], Value::Null);

    let all = parse(3);
    all["coroutines"]
        .as_array()
        .unwrap()
        .iter()
        .for_each(|c| check_coro(c, true));
    let top = parse(4);
    assert!(top["coroutines"].as_array().unwrap().len() <= 3);

    let stats = parse(5);
    let s0 = &stats["schedulers"][0];
    for k in [
        "switches",
        "polls",
        "passes",
        "spawned",
        "live_coroutines",
        "run_queue",
        "timers_pending",
        "live_sockets",
        "fds_registered",
        "eagain",
    ] {
        assert!(s0[k].is_u64(), "{k}: {stats}");
    }
    assert!(s0["uptime_s"].is_number() && s0["thread"].is_string());
    assert!(stats["blocking_pool"]["max_threads"].is_u64());
    assert_eq!(stats["backdoor"]["sessions"], 1);

    let sockets = parse(6);
    let kinds: Vec<&str> = sockets["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"unix listener"), "{sockets}");

    let dl = parse(7);
    assert_eq!(dl["deadlocks"], serde_json::json!([]));
    assert!(dl["blocked"].as_u64().unwrap() >= 5, "{dl}");

    let (_, metrics) = &docs[8];
    assert!(
        metrics.contains("# TYPE shrapnel_coroutines gauge\n"),
        "{metrics}"
    );
    let blocked_line = metrics
        .lines()
        .find(|l| l.starts_with("shrapnel_coroutines{") && l.contains("state=\"blocked\""))
        .unwrap();
    let n: u64 = blocked_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= 5, "{metrics}");
    // Every sample line is `name{labels} value` or `name value` with a number.
    for line in metrics.lines().filter(|l| !l.starts_with('#')) {
        let (name, value) = line.rsplit_once(' ').unwrap();
        assert!(name.starts_with("shrapnel_"), "{line}");
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
    assert!(metrics.contains("# TYPE shrapnel_switches_total counter\n"));

    // The fifo's pop waited: the blocking profile has it.
    let cont = parse(9);
    let list = cont["contention"].as_array().unwrap();
    assert!(!list.is_empty() && list.len() <= 5, "{cont}");
    for e in list {
        assert!(e["kind"].is_string() && e["location"].is_string(), "{e}");
        assert!(e["count"].as_u64().unwrap() >= 1, "{e}");
        assert!(e["total_s"].is_number() && e["max_s"].is_number(), "{e}");
    }
    assert!(list.iter().any(|e| e["kind"] == "fifo"), "{cont}");
    let (_, text) = &docs[10];
    assert!(
        text.starts_with(" WAITS      TOTAL        MAX  KIND"),
        "{text}"
    );
    assert!(text.contains("fifo"), "{text}");
}
