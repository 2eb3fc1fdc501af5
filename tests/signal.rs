//! Signals: `signal::wait`, `signal::register`, refused signals, and the clean stop on
//! SIGINT/SIGTERM — the last in child processes (this test binary run again, and the demo),
//! since it ends the process.
//!
//! Signals are process-wide and the tests of this file run in parallel threads, so each test
//! uses a signal of its own.

use std::cell::Cell;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use shrapnel::signal::{self, SignalError};

fn raise(sig: libc::c_int) {
    // SAFETY: kill(2) of our own process with a signal the test waits for.
    assert_eq!(unsafe { libc::kill(libc::getpid(), sig) }, 0);
}

#[test]
fn wait_returns_when_the_signal_comes_and_keeps_one_that_came_between_waits() {
    let woke = Rc::new(Cell::new(0));
    let w = woke.clone();
    let waiter = shrapnel::spawn(move || -> Result<(), SignalError> {
        signal::wait(libc::SIGUSR2)?;
        w.set(1);
        // Delivered while this coroutine was not waiting: the next wait returns at once.
        raise(libc::SIGUSR2);
        shrapnel::sleep(Duration::from_millis(50))?;
        signal::wait(libc::SIGUSR2)?;
        w.set(2);
        Ok(())
    });
    shrapnel::spawn(move || {
        // Let the waiter register first, then deliver.
        shrapnel::sleep(Duration::from_millis(20)).unwrap();
        raise(libc::SIGUSR2);
    });
    assert_eq!(shrapnel::event_loop(), 0);
    waiter.join().unwrap().unwrap();
    assert_eq!(woke.get(), 2);
}

#[test]
fn register_runs_the_handler_in_a_new_coroutine_once_per_delivery() {
    let runs = Rc::new(Cell::new(0u32));
    let handler_ids = Rc::new(std::cell::RefCell::new(Vec::new()));
    let (r, ids) = (runs.clone(), handler_ids.clone());
    let registration = signal::register(libc::SIGHUP, move || {
        r.set(r.get() + 1);
        ids.borrow_mut()
            .push(shrapnel::current().expect("in a coroutine").id());
    })
    .unwrap();
    assert_eq!(registration.signal(), libc::SIGHUP);
    let runs2 = runs.clone();
    let sender = shrapnel::spawn(move || {
        let sender_id = shrapnel::current().unwrap().id();
        for n in 1..=3 {
            raise(libc::SIGHUP);
            // One at a time: deliveries before the handler starts would be one.
            let start = Instant::now();
            while runs2.get() < n {
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "handler {n} never ran"
                );
                shrapnel::sleep(Duration::from_millis(5)).unwrap();
            }
        }
        registration.cancel();
        sender_id
    });
    assert_eq!(
        shrapnel::event_loop(),
        0,
        "a cancelled registration lets the loop end"
    );
    let sender_id = sender.join().unwrap();
    assert_eq!(runs.get(), 3);
    let ids = handler_ids.borrow();
    assert_eq!(ids.len(), 3);
    assert!(!ids.contains(&sender_id));
    assert!(
        ids[0] != ids[1] && ids[1] != ids[2],
        "a new coroutine per delivery: {ids:?}"
    );
}

#[test]
fn reserved_signals_are_refused_with_a_reason() {
    shrapnel::ensure();
    for (sig, words) in [
        (libc::SIGKILL, "SIGKILL"),
        (libc::SIGSTOP, "SIGSTOP"),
        (libc::SIGSEGV, "stack overflows"),
        (0, "not a signal number"),
        (1000, "not a signal number"),
    ] {
        let e = match signal::register(sig, || {}) {
            Ok(_) => panic!("signal {sig} was accepted"),
            Err(e) => e,
        };
        assert!(matches!(e, SignalError::Reserved { signal, .. } if signal == sig));
        let text = e.to_string();
        assert!(text.contains(words), "{text}");
        let io: std::io::Error = e.into();
        assert_eq!(io.kind(), std::io::ErrorKind::InvalidInput);
    }
    // The debug signal is the dump's while it is set.
    if let Some(debug) = shrapnel::debug_signal::get() {
        let e = signal::wait(debug).unwrap_err();
        assert!(e.to_string().contains("debug signal"), "{e}");
    }
}

#[test]
fn a_signal_wait_ends_with_the_timeout_around_it() {
    let waiter = shrapnel::spawn(|| {
        let start = Instant::now();
        let r = shrapnel::with_timeout(Duration::from_millis(30), || signal::wait(libc::SIGWINCH));
        (r.map(|inner| inner.is_ok()), start.elapsed())
    });
    assert_eq!(shrapnel::event_loop(), 0);
    let (r, took) = waiter.join().unwrap();
    assert!(
        r.is_err(),
        "no SIGWINCH was sent, yet the wait returned: {r:?}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

/// Run `test` of this binary in a child process with `SHRAPNEL_SIGNAL_CHILD` set.
fn child(test: &str, extra_env: &[(&str, &std::path::Path)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("SHRAPNEL_SIGNAL_CHILD", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// Read lines until one contains `marker` (panics after 30 s or at end of output).
fn wait_for_line(out: &mut impl BufRead, marker: &str) -> String {
    let mut seen = String::new();
    let start = Instant::now();
    loop {
        let mut line = String::new();
        let n = out.read_line(&mut line).unwrap();
        seen.push_str(&line);
        if line.contains(marker) {
            return seen;
        }
        assert!(
            n > 0,
            "the child ended before printing {marker:?}; it printed:\n{seen}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no {marker:?} yet:\n{seen}"
        );
    }
}

/// Wait for the child to end (killing it after 30 s), returning its status and stderr.
fn finish(mut child: Child) -> (std::process::ExitStatus, String) {
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(30) {
            // Ask it where every coroutine is (the SIGUSR1 dump), then end it and show that.
            // SAFETY: kill(2) of the child we started, which has not been reaped.
            unsafe { libc::kill(child.id() as i32, libc::SIGUSR1) };
            std::thread::sleep(Duration::from_secs(2));
            let _ = child.kill();
            let _ = child.wait();
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("the child did not end within 30 s of the signal; its stderr:\n{err}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status, err)
}

/// A dropped value prints this, so the parent sees destructors ran.
struct SaysWhenDropped(&'static str);
impl Drop for SaysWhenDropped {
    fn drop(&mut self) {
        println!("dropped {}", self.0);
    }
}

/// The child's part of the clean-stop tests: a server with a coroutine blocked in accept,
/// one asleep, and one holding a value whose destructor prints; then the loop's status.
#[test]
fn child_server_for_the_clean_stop() {
    if std::env::var_os("SHRAPNEL_SIGNAL_CHILD").is_none() {
        return;
    }
    let listener = shrapnel::net::TcpListener::bind("127.0.0.1:0").unwrap();
    shrapnel::spawn(move || {
        let _guard = SaysWhenDropped("acceptor");
        while listener.accept().is_ok() {}
    });
    shrapnel::spawn(|| {
        let _guard = SaysWhenDropped("sleeper");
        let _ = shrapnel::sleep(Duration::from_secs(3600));
    });
    println!("ready");
    let code = shrapnel::event_loop();
    println!("event_loop returned {code}");
    std::process::exit(code);
}

#[test]
fn sigint_and_sigterm_stop_the_loop_cleanly_with_the_conventional_status() {
    for (sig, status) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let mut c = child("child_server_for_the_clean_stop", &[]);
        let mut out = BufReader::new(c.stdout.take().unwrap());
        wait_for_line(&mut out, "ready");
        // SAFETY: kill(2) of the child we started.
        assert_eq!(unsafe { libc::kill(c.id() as i32, sig) }, 0);
        let printed = wait_for_line(&mut out, "event_loop returned");
        let (exit, err) = finish(c);
        assert_eq!(exit.code(), Some(status), "stderr:\n{err}");
        assert!(printed.contains("dropped acceptor"), "{printed}");
        assert!(printed.contains("dropped sleeper"), "{printed}");
        assert!(
            printed.contains(&format!("event_loop returned {status}")),
            "{printed}"
        );
        assert!(err.contains("shutting down every coroutine"), "{err}");
    }
}

/// The child's part of the late-scheduler test: SIGINT comes before a second thread's
/// scheduler starts (as a `run_per_core` thread still starting when Ctrl-C comes would).
#[test]
fn child_with_a_scheduler_started_after_the_signal() {
    if std::env::var_os("SHRAPNEL_SIGNAL_CHILD").is_none() {
        return;
    }
    // This thread's scheduler takes SIGINT for the clean stop; then the signal comes.
    shrapnel::spawn(|| {
        let _ = shrapnel::sleep(Duration::from_secs(3600));
    });
    raise(libc::SIGINT);
    let late = std::thread::spawn(|| {
        // Dropped with the closure whether the stop cancels it before it starts or shuts
        // it down in its sleep.
        let guard = SaysWhenDropped("late sleeper");
        shrapnel::spawn(move || {
            let _guard = guard;
            let _ = shrapnel::sleep(Duration::from_secs(3600));
        });
        shrapnel::event_loop()
    });
    let late_code = late.join().unwrap();
    println!("late scheduler returned {late_code}");
    let code = shrapnel::event_loop();
    println!("event_loop returned {code}");
    std::process::exit(code);
}

#[test]
fn a_scheduler_started_after_sigint_stops_too() {
    let mut c = child("child_with_a_scheduler_started_after_the_signal", &[]);
    let mut out = c.stdout.take().unwrap();
    // The child ends by itself (`finish` kills it after 30 s and fails), then its output is read.
    let (exit, err) = finish(c);
    let mut printed = String::new();
    out.read_to_string(&mut printed).unwrap();
    assert_eq!(exit.code(), Some(130), "stderr:\n{err}\nstdout:\n{printed}");
    assert!(printed.contains("dropped late sleeper"), "{printed}");
    assert!(printed.contains("late scheduler returned 130"), "{printed}");
    assert!(printed.contains("event_loop returned 130"), "{printed}");
}

/// The child's part of the second-signal test: a coroutine that ignores its shutdown.
#[test]
fn child_server_that_ignores_shutdown() {
    if std::env::var_os("SHRAPNEL_SIGNAL_CHILD").is_none() {
        return;
    }
    shrapnel::spawn(|| loop {
        let _ = shrapnel::sleep(Duration::from_secs(3600));
    });
    println!("ready");
    std::process::exit(shrapnel::event_loop());
}

#[test]
fn a_second_sigint_during_the_stop_ends_the_process_at_once() {
    let mut c = child("child_server_that_ignores_shutdown", &[]);
    let mut out = BufReader::new(c.stdout.take().unwrap());
    wait_for_line(&mut out, "ready");
    let pid = c.id() as i32;
    // SAFETY: kill(2) of the child we started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    // The first one is taken (the line on stderr), then the second ends it by default.
    let mut err = BufReader::new(c.stderr.take().unwrap());
    let said = wait_for_line(&mut err, "shutting down every coroutine");
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let start = Instant::now();
    let status = loop {
        if let Some(s) = c.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(4), "{said}");
        std::thread::sleep(Duration::from_millis(10));
    };
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}");
}

/// Ctrl-C on the demo: it ends with 130 and its backdoor socket file is gone.
#[cfg(all(feature = "backdoor", feature = "latency"))]
#[test]
fn ctrl_c_on_the_demo_exits_130_and_removes_the_backdoor_socket() {
    let exe = std::env::current_exe().unwrap();
    let demo = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/demo");
    assert!(
        demo.exists(),
        "{} is missing: `cargo test --features backdoor,latency` builds it",
        demo.display()
    );
    let dir = std::env::temp_dir().join(format!("shrapnel-signal-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("demo.sock");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = Command::new(&demo)
        .arg(port.to_string())
        .env("SHRAPNEL_BACKDOOR", &sock)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(c.stdout.take().unwrap());
    wait_for_line(&mut out, "Ctrl-C stops it");
    assert!(sock.exists());
    // A backdoor session and an echo connection are open when Ctrl-C comes.
    let mut session = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    session
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut prompt = [0u8; 64];
    assert!(session.read(&mut prompt).unwrap() > 0);
    let echo = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    // SAFETY: kill(2) of the child we started.
    assert_eq!(unsafe { libc::kill(c.id() as i32, libc::SIGINT) }, 0);
    let (status, err) = finish(c);
    assert_eq!(status.code(), Some(130), "stderr:\n{err}");
    assert!(!sock.exists(), "the backdoor socket file is left behind");
    drop((session, echo));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_fresh_scheduler_after_reset_still_gets_the_signal() {
    for round in 0..2 {
        shrapnel::reset();
        // Bounded, so a scheduler that never passes the signal on fails instead of hanging.
        let waiter = shrapnel::spawn(|| {
            shrapnel::with_timeout(Duration::from_secs(10), || signal::wait(libc::SIGALRM))
        });
        shrapnel::spawn(|| {
            shrapnel::sleep(Duration::from_millis(20)).unwrap();
            raise(libc::SIGALRM);
        });
        assert_eq!(shrapnel::event_loop(), 0, "round {round}");
        let got = waiter.join().unwrap();
        assert!(matches!(got, Ok(Ok(()))), "round {round}: {got:?}");
    }
}
