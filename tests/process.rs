//! Child processes: waiting through the poller (interruptible, as in Shrapnel's test of a
//! timeout while waiting on a sleeping child), output without deadlock, non-blocking pipes
//! that block only their coroutine, waitpid, and many children at once.

use std::cell::Cell;
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::rc::Rc;
use std::time::{Duration, Instant};

use shrapnel::process::{self, Command};

/// Run `f` as a coroutine on a fresh scheduler and return its value.
fn run<T: 'static>(f: impl FnOnce() -> T + 'static) -> T {
    shrapnel::reset();
    let c = shrapnel::spawn(f);
    shrapnel::event_loop();
    c.join().unwrap()
}

#[test]
fn a_timeout_while_waiting_on_a_sleeping_child_leaves_it_waitable() {
    let (timed_out, took, status) = run(|| {
        let mut child = Command::new("sleep").arg("10").spawn().unwrap();
        let start = Instant::now();
        let r = shrapnel::with_timeout(Duration::from_millis(200), || child.wait());
        let took = start.elapsed();
        child.kill().unwrap();
        let status = child.wait().unwrap();
        (r.is_err(), took, status)
    });
    assert!(timed_out, "the wait on `sleep 10` did not time out");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
}

#[test]
fn output_captures_both_streams_and_the_code() {
    let out = run(|| {
        Command::new("sh")
            .args(["-c", "echo out; echo err >&2; exit 3"])
            .output()
            .unwrap()
    });
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn output_larger_than_the_pipe_buffers_on_both_streams_completes() {
    // 1 MB to each stream, stderr first: a reader of only stdout would deadlock.
    let out = run(|| {
        Command::new("sh")
            .args([
                "-c",
                "head -c 1000000 /dev/zero >&2; head -c 1000000 /dev/zero; exit 0",
            ])
            .output()
            .unwrap()
    });
    assert!(out.status.success());
    assert_eq!(out.stdout.len(), 1_000_000);
    assert_eq!(out.stderr.len(), 1_000_000);
}

#[test]
fn pipes_block_only_their_coroutine() {
    let ticks = Rc::new(Cell::new(0u32));
    let t = ticks.clone();
    shrapnel::reset();
    let ticker = shrapnel::spawn(move || {
        while shrapnel::sleep(Duration::from_millis(10)).is_ok() {
            t.set(t.get() + 1);
        }
    });
    let tick_handle = ticker.handle();
    let worker = shrapnel::spawn(move || -> std::io::Result<(Vec<u8>, u32, u32)> {
        let mut child = Command::new("sh")
            .args(["-c", "sleep 0.5; cat"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"through the pipe\n")?;
        drop(stdin);
        let before = ticks.get();
        let mut got = Vec::new();
        child.stdout.as_mut().unwrap().read_to_end(&mut got)?;
        let during = ticks.get() - before;
        let status = child.wait()?;
        tick_handle.shutdown();
        Ok((got, during, status.code().unwrap_or(-1) as u32))
    });
    shrapnel::event_loop();
    let (got, during, code) = worker.join().unwrap().unwrap();
    assert_eq!(got, b"through the pipe\n");
    assert_eq!(code, 0);
    // Half a second of reading from the child: the ticker ran meanwhile.
    assert!(
        during >= 5,
        "the ticker ran {during} times while the pipe was read"
    );
}

#[test]
fn waitpid_reaps_a_child_spawned_by_std() {
    let status = run(|| {
        // Reaped by shrapnel's waitpid, not by std's wait.
        #[allow(clippy::zombie_processes)]
        let child = std::process::Command::new("sh")
            .args(["-c", "exit 7"])
            .spawn()
            .unwrap();
        process::waitpid(child.id()).unwrap()
    });
    assert_eq!(status.code(), Some(7));
    // Not a child: a clear error.
    let e = run(|| process::waitpid(1).unwrap_err());
    assert!(e.to_string().contains("pid 1"), "{e}");
}

#[test]
fn twenty_children_are_waited_for_concurrently() {
    shrapnel::reset();
    let start = Instant::now();
    let waiters: Vec<_> = (0..20)
        .map(|_| {
            shrapnel::spawn(|| {
                Command::new("sleep")
                    .arg("0.3")
                    .status()
                    .map(|s| s.success())
            })
        })
        .collect();
    shrapnel::event_loop();
    let took = start.elapsed();
    for w in waiters {
        assert!(w.join().unwrap().unwrap());
    }
    // Serially it would take 6 s.
    assert!(took < Duration::from_secs(4), "took {took:?}");
}

#[test]
fn a_missing_program_is_named_in_the_error() {
    let e = run(|| Command::new("no-such-program-here").spawn().unwrap_err());
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    assert!(e.to_string().contains("no-such-program-here"), "{e}");
}

#[test]
fn status_outside_a_coroutine_waits_on_the_thread() {
    shrapnel::reset();
    let status = Command::new("sh").args(["-c", "exit 4"]).status().unwrap();
    assert_eq!(status.code(), Some(4));
}

#[test]
fn output_outside_a_coroutine_is_std_s() {
    shrapnel::reset();
    let out = Command::new("sh").args(["-c", "echo hi"]).output().unwrap();
    assert_eq!(out.stdout, b"hi\n");
}
