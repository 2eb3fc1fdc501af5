//! The debugging facilities of Shrapnel's chapter 7: `where_all`/`where_is` (wait reasons,
//! growing wait times, and with `stacks` the function each coroutine is blocked in), the
//! exception notifier, print_stderr through redirected fds, the panic report's format, and
//! the debug signal. What changes process-wide state (fds 1 and 2, signal dispositions,
//! the default notifier's output) runs in a child process: this test binary re-executed.

use std::cell::RefCell;
use std::io::Read;
use std::process::Command;
use std::rc::Rc;
use std::time::Duration;

use shrapnel::{JoinError, PanicReport, State, WaitReason, Where, WhereAll};

/// Run the test `name` of this binary in a child process with `SHRAPNEL_DEBUG_CHILD` set;
/// returns (exit code, stderr).
fn run_child(name: &str) -> (Option<i32>, String) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = Command::new(exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env("SHRAPNEL_DEBUG_CHILD", "1")
        .output()
        .expect("re-running the test binary");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn in_child() -> bool {
    std::env::var_os("SHRAPNEL_DEBUG_CHILD").is_some()
}

/// `s` is `Www Mmm dd hh:mm:ss yyyy`, C's ctime without the newline.
fn is_ctime(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 24
        && b[3] == b' '
        && b[7] == b' '
        && b[10] == b' '
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b' '
        && s[20..].bytes().all(|c| c.is_ascii_digit())
        && s[..3].bytes().all(|c| c.is_ascii_alphabetic())
}

/// `N.NNNs` → seconds.
fn secs(s: &str) -> f64 {
    let s = s.strip_suffix('s').unwrap_or(s);
    let (whole, frac) = s.split_once('.').expect("N.NNN");
    assert_eq!(frac.len(), 3, "three decimals in {s}");
    whole.parse::<f64>().unwrap() + frac.parse::<f64>().unwrap() / 1000.0
}

#[inline(never)]
fn wait_for_data_xyz() {
    let _ = shrapnel::sleep(Duration::from_secs(30));
}

#[inline(never)]
fn wait_for_bytes_xyz(stream: &shrapnel::net::UnixStream) {
    let mut buf = [0u8; 16];
    let _ = (&*stream).read(&mut buf);
}

#[inline(never)]
fn join_helper_xyz(co: &shrapnel::Coro<()>) {
    let _ = co.join();
}

/// The suspended coroutines of one scenario, and two snapshots taken 40 ms apart.
struct Scenario {
    first: WhereAll,
    second: WhereAll,
    sleeper: u64,
    reader: u64,
    reader_fd: i32,
    joiner: u64,
    unstarted: u64,
}

fn blocked_scenario() -> Scenario {
    shrapnel::reset();
    let sleeper = shrapnel::Builder::new()
        .name("sleeper")
        .spawn(wait_for_data_xyz)
        .unwrap();
    let sleeper_id = sleeper.id();
    let (a, b) = shrapnel::net::socketpair().unwrap();
    let reader_fd = std::os::fd::AsRawFd::as_raw_fd(&a);
    let reader = shrapnel::Builder::new()
        .name("reader")
        .spawn(move || wait_for_bytes_xyz(&a))
        .unwrap();
    let joiner = shrapnel::Builder::new()
        .name("joiner")
        .spawn(move || join_helper_xyz(&sleeper))
        .unwrap();
    let unstarted = shrapnel::Builder::new()
        .name("unstarted")
        .build(|| ())
        .unwrap();
    let snapshots = Rc::new(RefCell::new(Vec::new()));
    let s2 = snapshots.clone();
    shrapnel::Builder::new()
        .name("inspector")
        .spawn(move || {
            shrapnel::sleep(Duration::from_millis(20)).unwrap();
            s2.borrow_mut().push(shrapnel::where_all());
            shrapnel::sleep(Duration::from_millis(40)).unwrap();
            s2.borrow_mut().push(shrapnel::where_all());
            shrapnel::set_exit(0);
        })
        .unwrap();
    assert_eq!(shrapnel::event_loop(), 0);
    let scenario = {
        let mut snaps = snapshots.borrow_mut();
        let second = snaps.pop().unwrap();
        let first = snaps.pop().unwrap();
        Scenario {
            first,
            second,
            sleeper: sleeper_id,
            reader: reader.id(),
            reader_fd,
            joiner: joiner.id(),
            unstarted: unstarted.id(),
        }
    };
    drop((b, reader, joiner, unstarted));
    shrapnel::reset();
    scenario
}

fn entry(all: &WhereAll, id: u64) -> &Where {
    all.get(id).unwrap_or_else(|| panic!("no #{id} in\n{all}"))
}

#[test]
fn where_all_names_each_wait_and_its_growing_duration() {
    let s = blocked_scenario();
    let ids: Vec<u64> = s.second.iter().map(|w| w.info.id).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "sorted by id");

    let cases = [
        (s.sleeper, "sleeper", State::Blocked),
        (s.reader, "reader", State::Blocked),
        (s.joiner, "joiner", State::Blocked),
        (s.unstarted, "unstarted", State::NotStarted),
    ];
    for (id, name, state) in cases {
        let (a, b) = (entry(&s.first, id), entry(&s.second, id));
        assert_eq!(b.info.name, name);
        assert_eq!(b.info.state, state, "{b}");
        assert_eq!(
            a.info.reason, b.info.reason,
            "the same wait in both snapshots"
        );
        assert!(
            b.info.waited >= a.info.waited + Duration::from_millis(30),
            "#{id} waited {:?} then {:?}",
            a.info.waited,
            b.info.waited
        );
    }
    assert!(matches!(
        entry(&s.second, s.sleeper).info.reason,
        WaitReason::Sleep(_)
    ));
    assert_eq!(
        entry(&s.second, s.reader).info.reason,
        WaitReason::Readable(s.reader_fd)
    );
    assert_eq!(
        entry(&s.second, s.joiner).info.reason,
        WaitReason::Join(s.sleeper)
    );
    assert_eq!(
        entry(&s.second, s.unstarted).info.reason,
        WaitReason::NotStarted
    );
}

#[test]
fn where_all_display_prints_one_block_per_coroutine() {
    let s = blocked_scenario();
    let text = s.second.to_string();
    let first_lines: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(first_lines.len(), s.second.len(), "{text}");

    let line = |id: u64| {
        let prefix = format!("#{id} ");
        *first_lines
            .iter()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no #{id} in\n{text}"))
    };
    // `#1 'sleeper' blocked: sleeping (29.940s left) for 0.060s at tests/debug.rs:57`
    let sleeper = line(s.sleeper);
    let rest = sleeper
        .strip_prefix(&format!("#{} 'sleeper' blocked: sleeping (", s.sleeper))
        .unwrap_or_else(|| panic!("{sleeper}"));
    let (left, rest) = rest.split_once(" left) for ").unwrap();
    assert!(secs(left) > 29.0 && secs(left) <= 30.0, "{sleeper}");
    let (waited, at) = rest.split_once(" at ").unwrap();
    assert!(secs(waited) >= 0.04, "{sleeper}");
    assert!(at.starts_with("tests/debug.rs:"), "{sleeper}");

    let reader = line(s.reader);
    let expected = format!(
        "#{} 'reader' blocked: readable fd {} for ",
        s.reader, s.reader_fd
    );
    assert!(reader.starts_with(&expected), "{reader}");
    let joiner = line(s.joiner);
    let expected = format!(
        "#{} 'joiner' blocked: join #{} 'sleeper' for ",
        s.joiner, s.sleeper
    );
    assert!(joiner.starts_with(&expected), "{joiner}");
    let unstarted = line(s.unstarted);
    let expected = format!("#{} 'unstarted' new: not started for ", s.unstarted);
    assert!(unstarted.starts_with(&expected), "{unstarted}");
}

#[cfg(feature = "stacks")]
#[test]
fn where_all_shows_the_function_each_coroutine_is_blocked_in() {
    let s = blocked_scenario();
    let text = s.second.to_string();
    for (id, function) in [
        (s.sleeper, "wait_for_data_xyz"),
        (s.reader, "wait_for_bytes_xyz"),
        (s.joiner, "join_helper_xyz"),
    ] {
        let w = entry(&s.second, id);
        let stack = shrapnel::tb::format_frames(&w.stack);
        assert!(stack.contains(function), "#{id}: {stack}");
        // Compact form, on the line after the coroutine's own.
        assert!(stack.starts_with('[') && stack.ends_with(']'), "{stack}");
        assert!(text.contains(&format!("\n    {stack}\n")), "{text}");
        // The switch plumbing is left out; the coroutine's entry too.
        assert!(
            !stack.contains("suspend_current") && !stack.contains("coro_main"),
            "{stack}"
        );
    }
    let sleeper = shrapnel::tb::format_frames(&entry(&s.second, s.sleeper).stack);
    assert!(sleeper.starts_with("[sched.rs sched::sleep"), "{sleeper}");
    // A coroutine that never ran has no stack to show.
    assert!(entry(&s.second, s.unstarted).stack.is_empty());
}

#[test]
fn where_is_describes_one_coroutine() {
    shrapnel::reset();
    let co = shrapnel::Builder::new()
        .name("napper")
        .spawn(wait_for_data_xyz)
        .unwrap();
    let seen = Rc::new(RefCell::new(None));
    let seen2 = seen.clone();
    let handle = co.handle();
    shrapnel::spawn(move || {
        shrapnel::sleep(Duration::from_millis(10)).unwrap();
        *seen2.borrow_mut() = Some(shrapnel::where_is(&handle));
        shrapnel::set_exit(0);
    });
    shrapnel::event_loop();
    let w = seen.borrow_mut().take().unwrap();
    assert_eq!(w.info.id, co.id());
    assert!(matches!(w.info.reason, WaitReason::Sleep(_)));
    assert!(w
        .to_string()
        .starts_with(&format!("#{} 'napper' blocked: sleeping (", co.id())));
    drop(co);
    shrapnel::reset();
}

#[inline(never)]
fn explode_xyz() {
    panic!("boom at {}", 42);
}

#[test]
fn a_panicking_coroutine_reaches_a_custom_notifier_while_its_siblings_finish() {
    shrapnel::reset();
    let reports: Rc<RefCell<Vec<PanicReport>>> = Rc::default();
    let r2 = reports.clone();
    let old = shrapnel::set_exception_notifier(Some(Box::new(move |r: &PanicReport| {
        r2.borrow_mut().push(r.clone());
    })));
    assert!(old.is_none(), "the default was in place");

    let finished = Rc::new(RefCell::new(Vec::new()));
    let mut siblings = Vec::new();
    for i in 0..3u32 {
        let f = finished.clone();
        siblings.push(shrapnel::spawn(move || {
            shrapnel::sleep(Duration::from_millis(5 * u64::from(i + 1))).unwrap();
            f.borrow_mut().push(i);
            i
        }));
    }
    let bomb = shrapnel::Builder::new()
        .name("bomb")
        .spawn(|| {
            shrapnel::yield_slice();
            explode_xyz();
        })
        .unwrap();
    shrapnel::event_loop();

    assert_eq!(
        *finished.borrow(),
        vec![0, 1, 2],
        "the siblings ran to the end"
    );
    let reports = reports.borrow();
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert_eq!(
        (r.id, r.name.as_str(), r.message.as_str()),
        (bomb.id(), "bomb", "boom at 42")
    );
    assert!(r.traceback.starts_with("[debug.rs "), "{}", r.traceback);
    assert!(r.traceback.contains("explode_xyz|"), "{}", r.traceback);
    assert!(!r.traceback.contains("panicking.rs"), "{}", r.traceback);
    assert_eq!(
        shrapnel::tb::traceback_string(r),
        format!("boom at 42 {}", r.traceback)
    );
    match bomb.join() {
        Err(JoinError::Panicked { id, name, message }) => {
            assert_eq!(
                (id, name.as_str(), message.as_str()),
                (bomb.id(), "bomb", "boom at 42")
            );
        }
        other => panic!("join gave {other:?}"),
    }
    for (i, s) in siblings.iter().enumerate() {
        assert_eq!(s.join().unwrap(), i as u32);
    }

    // Replacing returns the custom one; None restores the default and returns the last.
    let mine = shrapnel::set_exception_notifier(Some(Box::new(|_: &PanicReport| {})));
    assert!(mine.is_some());
    assert!(shrapnel::set_exception_notifier(None).is_some());
    assert!(shrapnel::set_exception_notifier(None).is_none());
    shrapnel::reset();
}

#[test]
fn coroutines_with_small_stacks_can_panic_and_ask_where_all() {
    shrapnel::reset();
    let reports: Rc<RefCell<Vec<PanicReport>>> = Rc::default();
    let r2 = reports.clone();
    shrapnel::set_exception_notifier(Some(Box::new(move |r: &PanicReport| {
        r2.borrow_mut().push(r.clone());
    })));
    // Symbolizing needs more stack than these have: it must move elsewhere, not overflow.
    let small = shrapnel::Builder::new()
        .name("small")
        .stack_size(16 * 1024)
        .spawn(explode_xyz)
        .unwrap();
    let napper = shrapnel::Builder::new()
        .name("napper")
        .spawn(wait_for_data_xyz)
        .unwrap();
    let asker = shrapnel::Builder::new()
        .name("asker")
        .stack_size(16 * 1024)
        .spawn(|| {
            shrapnel::sleep(Duration::from_millis(5)).unwrap();
            let all = shrapnel::where_all();
            shrapnel::set_exit(0);
            all.to_string()
        })
        .unwrap();
    shrapnel::event_loop();
    let reports = reports.borrow();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].id, small.id());
    assert!(
        reports[0].traceback.contains("explode_xyz|"),
        "{}",
        reports[0].traceback
    );
    let text = asker.join().unwrap();
    let napping = format!("#{} 'napper' blocked: sleeping", napper.id());
    assert!(text.contains(&napping), "{text}");
    #[cfg(feature = "stacks")]
    assert!(text.contains("wait_for_data_xyz|"), "{text}");
    drop(napper);
    shrapnel::set_exception_notifier(None);
    shrapnel::reset();
}

#[test]
fn default_notifier_child() {
    if !in_child() {
        return;
    }
    let notifier_panics = std::env::var_os("SHRAPNEL_NOTIFIER_PANICS").is_some();
    if notifier_panics {
        shrapnel::set_exception_notifier(Some(Box::new(|_: &PanicReport| {
            panic!("the notifier itself failed");
        })));
    }
    let bomb = shrapnel::Builder::new()
        .name("bomb")
        .spawn(explode_xyz)
        .unwrap();
    let sibling = shrapnel::spawn(|| {
        shrapnel::sleep(Duration::from_millis(5)).unwrap();
        7
    });
    shrapnel::event_loop();
    assert!(bomb.join().is_err());
    assert_eq!(sibling.join().unwrap(), 7);
    shrapnel::print_stderr!("child done");
}

fn check_default_report(stderr: &str) {
    // `thread 1 (bomb): error boom at 42 [debug.rs debug::explode_xyz|NN] …`, possibly
    // behind print_stderr's `1:\t{ctime} `.
    let line = stderr
        .lines()
        .find(|l| l.contains("(bomb): error"))
        .unwrap_or_else(|| panic!("no report in:\n{stderr}"));
    let report = match line.split_once(":\t") {
        Some((id, rest)) => {
            assert_eq!(id, "1", "{line}");
            assert!(is_ctime(&rest[..24]), "{line}");
            &rest[25..]
        }
        None => line,
    };
    let tb = report
        .strip_prefix("thread 1 (bomb): error boom at 42 ")
        .unwrap_or_else(|| panic!("{line}"));
    assert!(tb.starts_with("[debug.rs debug::explode_xyz|"), "{line}");
    assert!(
        !stderr.contains("panicked at"),
        "std's message is not printed:\n{stderr}"
    );
    assert!(stderr.contains("child done"), "{stderr}");
}

#[test]
fn the_default_notifier_prints_shrapnels_line_with_a_compact_traceback() {
    let (code, stderr) = run_child("default_notifier_child");
    assert_eq!(code, Some(0), "{stderr}");
    check_default_report(&stderr);
}

#[test]
fn a_notifier_that_panics_falls_back_to_the_default() {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([
            "--exact",
            "default_notifier_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SHRAPNEL_DEBUG_CHILD", "1")
        .env("SHRAPNEL_NOTIFIER_PANICS", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    check_default_report(&stderr);
}

#[test]
fn print_stderr_child() {
    if !in_child() {
        return;
    }
    shrapnel::ensure(); // the runtime saves fd 2 when it starts
    let mut fds = [0; 2];
    // SAFETY: pipe fills the array; dup2 replaces fds 1 and 2 with its write end.
    unsafe {
        assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
        assert!(libc::dup2(fds[1], 1) >= 0 && libc::dup2(fds[1], 2) >= 0);
    }
    println!("into the pipe (stdout)");
    eprintln!("into the pipe (stderr)");
    shrapnel::stderr::print_stderr("outside any coroutine");
    let co = shrapnel::spawn(|| {
        shrapnel::print_stderr!("inside coroutine #{}\n", shrapnel::current().unwrap().id());
        let long = "y".repeat(3000);
        shrapnel::print_stderr!("{long}");
        shrapnel::stderr::write_stderr("verbatim|");
        shrapnel::stderr::write_stderr("no newline");
    });
    shrapnel::event_loop();
    co.join().unwrap();
}

#[test]
fn print_stderr_reaches_the_saved_stderr_after_fds_1_and_2_are_redirected() {
    let (code, stderr) = run_child("print_stderr_child");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("into the pipe"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(":\t")).collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    let expect = [
        ("0", "outside any coroutine".to_string()),
        ("1", "inside coroutine #1".to_string()),
        ("1", "y".repeat(3000)),
    ];
    for (line, (id, msg)) in lines.iter().zip(expect) {
        let (got_id, rest) = line.split_once(":\t").unwrap();
        assert_eq!(got_id, id, "{line}");
        assert!(is_ctime(&rest[..24]), "{line}");
        assert_eq!(&rest[24..25], " ");
        assert_eq!(rest[25..], msg, "one newline, added only when missing");
    }
    assert!(stderr.ends_with("verbatim|no newline"), "{stderr}");
}

#[test]
fn debug_signal_child() {
    if !in_child() {
        return;
    }
    shrapnel::ensure();
    let sig = shrapnel::debug_signal::DEFAULT;
    assert_eq!(
        shrapnel::debug_signal::get(),
        Some(sig),
        "installed by default"
    );
    let sleeper = shrapnel::Builder::new()
        .name("sleeper")
        .spawn(|| {
            let _ = shrapnel::sleep(Duration::from_secs(60));
        })
        .unwrap();
    let sleeping = sleeper.handle();
    // Each pause gives the dump time to happen, loaded machine included.
    let pause = Duration::from_millis(300);
    let signaller = shrapnel::Builder::new()
        .name("signaller")
        .spawn(move || {
            shrapnel::sleep(Duration::from_millis(20)).unwrap();
            // SAFETY: sending a signal to ourselves.
            unsafe { libc::kill(libc::getpid(), sig) };
            shrapnel::sleep(pause).unwrap();
            let old = shrapnel::debug_signal::set(Some(libc::SIGUSR2)).unwrap();
            assert_eq!(old, Some(sig));
            // SAFETY: as above.
            unsafe { libc::kill(libc::getpid(), libc::SIGUSR2) };
            shrapnel::sleep(pause).unwrap();
            let refused = shrapnel::debug_signal::set(Some(libc::SIGSEGV)).unwrap_err();
            assert!(refused.to_string().contains("stack overflows"), "{refused}");
            assert!(shrapnel::debug_signal::set(Some(libc::SIGKILL)).is_err());
            assert_eq!(shrapnel::debug_signal::get(), Some(libc::SIGUSR2));
            assert_eq!(
                shrapnel::debug_signal::set(None).unwrap(),
                Some(libc::SIGUSR2)
            );
            assert_eq!(shrapnel::debug_signal::get(), None);
            sleeping.shutdown();
        })
        .unwrap();
    assert_eq!(shrapnel::event_loop(), 0);
    sleeper.join().unwrap();
    signaller.join().unwrap();
    shrapnel::print_stderr!("child done");
}

#[inline(never)]
#[cfg(feature = "stacks")]
fn check_stack_in_dump(dump: &str) {
    assert!(
        dump.contains("[debug.rs debug::debug_signal_child::{closure}|"),
        "{dump}"
    );
}

#[test]
fn the_debug_signal_prints_where_all_and_the_program_goes_on() {
    let (code, stderr) = run_child("debug_signal_child");
    assert_eq!(code, Some(0), "{stderr}");
    let dumps: Vec<&str> = stderr.split("where_all: ").skip(1).collect();
    assert_eq!(dumps.len(), 2, "one dump per signal:\n{stderr}");
    for dump in &dumps {
        assert!(dump.starts_with("2 coroutines on thread"), "{stderr}");
        assert!(
            dump.contains("\n#1 'sleeper' blocked: sleeping ("),
            "{stderr}"
        );
        assert!(
            dump.contains("\n#2 'signaller' blocked: sleeping ("),
            "{stderr}"
        );
        #[cfg(feature = "stacks")]
        check_stack_in_dump(dump);
    }
    assert!(
        stderr.contains("coro #2 'signaller' is running")
            || stderr.contains("no coroutine running"),
        "{stderr}"
    );
    let done = stderr
        .find("child done")
        .expect("the child went on to the end");
    assert!(done > stderr.rfind("where_all: ").unwrap());
}

#[test]
fn debug_signal_per_core_child() {
    if !in_child() {
        return;
    }
    static SIGNALLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let codes = shrapnel::run_per_core(2, |core| {
        let sleeper = shrapnel::Builder::new()
            .name(format!("sleeper on core {core}"))
            .spawn(|| {
                let _ = shrapnel::sleep(Duration::from_secs(60));
            })
            .unwrap();
        if core == 1 {
            shrapnel::sleep(Duration::from_millis(50)).unwrap();
            // SAFETY: sending a signal to ourselves.
            unsafe { libc::kill(libc::getpid(), shrapnel::debug_signal::DEFAULT) };
            SIGNALLED.store(true, std::sync::atomic::Ordering::Release);
        }
        while !SIGNALLED.load(std::sync::atomic::Ordering::Acquire) {
            shrapnel::sleep(Duration::from_millis(5)).unwrap();
        }
        // Time for both dumps, loaded machine included.
        shrapnel::sleep(Duration::from_millis(300)).unwrap();
        sleeper.handle().shutdown();
    })
    .unwrap();
    assert_eq!(codes, vec![0, 0]);
    shrapnel::print_stderr!("child done");
}

/// The SIGUSR1 dump covers every scheduler of `run_per_core`, each from its own thread.
#[test]
fn the_debug_signal_dumps_every_scheduler_of_run_per_core() {
    let (code, stderr) = run_child("debug_signal_per_core_child");
    assert_eq!(code, Some(0), "{stderr}");
    let dumps: Vec<&str> = stderr.split("where_all: ").skip(1).collect();
    assert_eq!(dumps.len(), 2, "one dump per scheduler:\n{stderr}");
    for core in 0..2 {
        let dump = dumps
            .iter()
            .find(|d| d.contains(&format!("'sleeper on core {core}' blocked: sleeping")))
            .unwrap_or_else(|| panic!("no dump names the sleeper on core {core}:\n{stderr}"));
        assert!(
            dump.contains(&format!("'core {core}' blocked: sleeping")),
            "{stderr}"
        );
    }
}
