//! The crash dump: a child process (this test binary run again with an environment
//! variable set) crashes in a coroutine while others are blocked, and must die of the same
//! signal with every coroutine named on its stderr; a stack overflow keeps its own report.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};
use std::rc::Rc;
use std::time::Duration;

/// Run the test `name` of this binary in a child with `var` set; its status and stderr.
fn run_child(name: &str, var: &str) -> (Output, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(var, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stderr)
}

/// Coroutines blocked in known ways — 'holder' sleeping with a mutex held, 'sleeper'
/// sleeping, 'locker' waiting for that mutex — then `crash` runs in 'crasher'.
fn crash_among_blocked(crash: fn()) -> ! {
    let lock = Rc::new(shrapnel::sync::Mutex::new(()));
    let held = lock.clone();
    shrapnel::Builder::new()
        .name("holder")
        .spawn(move || {
            let _guard = held.lock().unwrap();
            shrapnel::sleep(Duration::from_secs(60)).ok();
        })
        .unwrap();
    shrapnel::Builder::new()
        .name("sleeper")
        .spawn(|| shrapnel::sleep(Duration::from_secs(60)))
        .unwrap();
    shrapnel::Builder::new()
        .name("locker")
        .spawn(move || drop(lock.lock()))
        .unwrap();
    shrapnel::Builder::new()
        .name("crasher")
        .spawn(move || {
            shrapnel::sleep(Duration::from_millis(20)).unwrap();
            crash();
        })
        .unwrap();
    shrapnel::event_loop();
    unreachable!("the crash should have ended the process");
}

#[inline(never)]
fn read_bad_pointer() {
    // SAFETY: none — the point of the test: address 0x10 is never mapped, the read faults.
    let v = unsafe { std::ptr::read_volatile(0x10 as *const u64) };
    std::hint::black_box(v);
}

/// The line of the dump that names `name`, and the stack line after it.
fn entry<'a>(stderr: &'a str, name: &str) -> (&'a str, &'a str) {
    let mut lines = stderr.lines();
    let tag = format!("'{name}' ");
    let line = lines
        .by_ref()
        .find(|l| l.trim_start().starts_with('#') && l.contains(&tag))
        .unwrap_or_else(|| panic!("no dump line for '{name}' in:\n{stderr}"));
    (line, lines.next().unwrap_or(""))
}

/// The dump names every coroutine with its state and wait, each blocked one with a stack.
fn assert_dump_of_all(stderr: &str) {
    for (name, words) in [
        ("holder", "blocked: sleeping at tests/crash_dump.rs:"),
        ("sleeper", "blocked: sleeping at tests/crash_dump.rs:"),
        ("locker", "blocked: mutex at tests/crash_dump.rs:"),
        ("crasher", "running: the signal came from here"),
    ] {
        let (line, stack) = entry(stderr, name);
        assert!(line.contains(words), "{name}: {line}\nin:\n{stderr}");
        assert!(
            stack.trim_start().starts_with("at 0x") || stack.trim_start().starts_with("at ["),
            "{name} has no stack line: {stack:?}\nin:\n{stderr}"
        );
    }
    assert!(
        stderr.contains("shrapnel: 4 coroutines of this thread's scheduler"),
        "{stderr}"
    );
    assert!(stderr.contains("addr2line -C -f -i -e "), "{stderr}");
}

/// The offsets of `name`'s stack line (the ones inside the executable).
fn offsets(stderr: &str, name: &str) -> Vec<String> {
    let (_, stack) = entry(stderr, name);
    stack
        .split_whitespace()
        .filter(|w| w.starts_with("0x"))
        .map(str::to_owned)
        .collect()
}

/// Names for `addrs` from addr2line, if it is installed.
fn addr2line(addrs: &[String]) -> Option<String> {
    let out = Command::new("addr2line")
        .args(["-C", "-f", "-i", "-e"])
        .arg(std::env::current_exe().unwrap())
        .args(addrs)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn segv_child() {
    if std::env::var_os("SHRAPNEL_CRASH_SEGV_CHILD").is_some() {
        crash_among_blocked(read_bad_pointer);
    }
}

#[test]
fn a_bad_pointer_dumps_every_coroutine_and_dies_of_sigsegv() {
    let (out, stderr) = run_child("segv_child", "SHRAPNEL_CRASH_SEGV_CHILD");
    assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "{stderr}");
    assert!(
        stderr.contains("shrapnel: fatal SIGSEGV (address 0x10) in coroutine #4 'crasher'"),
        "{stderr}"
    );
    assert_dump_of_all(&stderr);
    assert_eq!(stderr.matches("shrapnel: fatal").count(), 1, "{stderr}");
    // The offsets name the crashing function and the blocking calls.
    let crasher = offsets(&stderr, "crasher");
    let sleeper = offsets(&stderr, "sleeper");
    assert!(crasher.len() >= 3, "{stderr}");
    match addr2line(&[crasher, sleeper].concat()) {
        Some(names) => {
            assert!(names.contains("read_bad_pointer"), "{names}");
            assert!(names.contains("sleep"), "{names}");
        }
        None => eprintln!("addr2line is not installed: the names were not checked"),
    }
}

#[test]
fn abort_child() {
    if std::env::var_os("SHRAPNEL_CRASH_ABORT_CHILD").is_some() {
        // What `panic = "abort"` and a failed allocation end in.
        crash_among_blocked(|| std::process::abort());
    }
}

#[test]
fn an_abort_dumps_every_coroutine_and_dies_of_sigabrt() {
    let (out, stderr) = run_child("abort_child", "SHRAPNEL_CRASH_ABORT_CHILD");
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{stderr}");
    assert!(
        stderr.contains(
            "shrapnel: fatal SIGABRT (sent: abort, raise or kill) in coroutine #4 'crasher'"
        ),
        "{stderr}"
    );
    assert_dump_of_all(&stderr);
    assert_eq!(stderr.matches("shrapnel: fatal").count(), 1, "{stderr}");
    // Below libc's abort (no frame records), the running stack is picked up again and
    // reaches the coroutine's root; the closure itself, unless inlined away (release).
    let crasher = offsets(&stderr, "crasher");
    if let Some(names) = addr2line(&crasher) {
        assert!(names.contains("coro_main"), "{names}");
        if cfg!(debug_assertions) {
            assert!(names.contains("abort_child"), "{names}");
        }
    }
}

static PROGRAM_HANDLER_RAN: &[u8] = b"the program's SIGABRT handler ran\n";

extern "C" fn program_abort_handler(_sig: libc::c_int) {
    // SAFETY: write(2) of a static buffer, async-signal-safe.
    unsafe {
        libc::write(
            2,
            PROGRAM_HANDLER_RAN.as_ptr().cast(),
            PROGRAM_HANDLER_RAN.len(),
        )
    };
}

#[test]
fn program_handler_child() {
    if std::env::var_os("SHRAPNEL_CRASH_CHAIN_CHILD").is_none() {
        return;
    }
    // SAFETY: an all-zero sigaction is valid (no flags, empty mask); the handler only
    // writes a static buffer.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = program_abort_handler as *const () as libc::sighandler_t;
        assert_eq!(
            libc::sigaction(libc::SIGABRT, &action, std::ptr::null_mut()),
            0
        );
    }
    crash_among_blocked(|| std::process::abort());
}

#[test]
fn a_handler_the_program_installed_first_still_runs_after_the_dump() {
    let (out, stderr) = run_child("program_handler_child", "SHRAPNEL_CRASH_CHAIN_CHILD");
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{stderr}");
    let dump = stderr.find("shrapnel: fatal SIGABRT").expect(&stderr);
    let program = stderr
        .find("the program's SIGABRT handler ran")
        .expect(&stderr);
    assert!(dump < program, "{stderr}");
}

#[test]
fn opted_out_child() {
    if std::env::var_os("SHRAPNEL_CRASH_OPTED_OUT_CHILD").is_none() {
        return;
    }
    shrapnel::configure(shrapnel::RuntimeConfig {
        crash_dump: false,
        ..Default::default()
    })
    .unwrap();
    crash_among_blocked(read_bad_pointer);
}

#[test]
fn a_scheduler_configured_without_it_prints_no_dump() {
    let (out, stderr) = run_child("opted_out_child", "SHRAPNEL_CRASH_OPTED_OUT_CHILD");
    assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "{stderr}");
    assert!(!stderr.contains("shrapnel: fatal"), "{stderr}");
}

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let mut local = [depth as u8; 512];
    std::hint::black_box(&mut local);
    if depth == u64::MAX {
        return 0;
    }
    recurse(depth + 1) + u64::from(std::hint::black_box(local[7]))
}

#[test]
fn overflow_child() {
    if std::env::var_os("SHRAPNEL_CRASH_OVERFLOW_CHILD").is_none() {
        return;
    }
    shrapnel::Builder::new()
        .name("sleeper")
        .spawn(|| shrapnel::sleep(Duration::from_secs(60)))
        .unwrap();
    shrapnel::Builder::new()
        .name("recursor")
        .stack_size(64 * 1024)
        .spawn(|| recurse(0))
        .unwrap();
    shrapnel::event_loop();
    unreachable!("the overflow should have aborted the process");
}

#[test]
fn a_stack_overflow_keeps_its_own_report_and_no_dump() {
    let (out, stderr) = run_child("overflow_child", "SHRAPNEL_CRASH_OVERFLOW_CHILD");
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{stderr}");
    assert!(
        stderr.contains("coroutine #2 'recursor' overflowed its stack (64 KiB)"),
        "{stderr}"
    );
    assert!(!stderr.contains("shrapnel: fatal"), "{stderr}");
    assert!(!stderr.contains("'sleeper'"), "{stderr}");
}

#[test]
fn peers_child() {
    if std::env::var_os("SHRAPNEL_CRASH_PEERS_CHILD").is_none() {
        return;
    }
    let _ = shrapnel::run_per_core(2, |core| {
        if core == 1 {
            shrapnel::Builder::new()
                .name("peer sleeper")
                .spawn(|| shrapnel::sleep(Duration::from_secs(60)))
                .unwrap();
            shrapnel::sleep(Duration::from_secs(60)).ok();
        } else {
            // Time for the other scheduler to start and block.
            shrapnel::sleep(Duration::from_millis(200)).unwrap();
            shrapnel::Builder::new()
                .name("crasher")
                .spawn(read_bad_pointer)
                .unwrap();
            shrapnel::sleep(Duration::from_secs(60)).ok();
        }
    });
    unreachable!("the crash should have ended the process");
}

/// With two schedulers (`run_per_core`), the other scheduler thread prints its own
/// coroutines after the crashing one's (Linux: the peer signal).
#[cfg(target_os = "linux")]
#[test]
fn every_scheduler_thread_dumps_its_coroutines() {
    let (out, stderr) = run_child("peers_child", "SHRAPNEL_CRASH_PEERS_CHILD");
    assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "{stderr}");
    assert_eq!(stderr.matches("shrapnel: fatal").count(), 1, "{stderr}");
    let (line, _) = entry(&stderr, "crasher");
    assert!(
        line.contains("running: the signal came from here"),
        "{stderr}"
    );
    let (line, stack) = entry(&stderr, "peer sleeper");
    assert!(
        line.contains("blocked: sleeping at tests/crash_dump.rs:"),
        "{stderr}"
    );
    assert!(stack.trim_start().starts_with("at "), "{stderr}");
    let (line, _) = entry(&stderr, "core 1");
    assert!(line.contains("blocked: sleeping"), "{stderr}");
    // The peer's part comes after the crashing thread's, under its own heading.
    let peer_at = stderr
        .find("shrapnel: scheduler thread ")
        .expect("a peer heading");
    assert!(stderr.find("'crasher'").unwrap() < peer_at, "{stderr}");
    assert!(peer_at < stderr.find("'peer sleeper'").unwrap(), "{stderr}");
    assert!(
        stderr.contains("shrapnel: 2 coroutines of that scheduler"),
        "{stderr}"
    );
    assert!(!stderr.contains("did not answer"), "{stderr}");
}
