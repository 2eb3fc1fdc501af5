//! Running out of file descriptors while accepting: `accept` fails with an error that names
//! the listening fd and the remedy, the listener stays usable, and the pending connection
//! is accepted once a descriptor is free. Run in a child process (it lowers RLIMIT_NOFILE).

use std::os::fd::AsRawFd;
use std::process::Command;

#[test]
fn emfile_child() {
    if std::env::var_os("SHRAPNEL_EMFILE_CHILD").is_none() {
        return;
    }
    // The poller needs descriptors of its own.
    shrapnel::ensure();
    // With feature `stacks`, installing started loading the debug info on a background
    // thread, which opens and closes files of its own; a symbolization waits for that load
    // to end, so no descriptor comes free behind the test's back once the table is full.
    let _ = shrapnel::tb::stack_string();
    let listener = shrapnel::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let lfd = listener.as_raw_fd();
    let addr = listener.local_addr().unwrap();
    // The client connects before the table is full; the connection waits in the backlog.
    let _client = std::net::TcpStream::connect(addr).unwrap();
    let lim = libc::rlimit {
        rlim_cur: 64,
        rlim_max: 64,
    };
    // SAFETY: setrlimit reads a valid rlimit; lowering the soft and hard limit is allowed.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    let mut hogs = vec![];
    loop {
        // SAFETY: dup of an open fd; the result is closed below or at exit.
        let fd = unsafe { libc::dup(0) };
        if fd < 0 {
            break;
        }
        hogs.push(fd);
    }
    let c = shrapnel::spawn(move || {
        let first = listener.accept().map(|_| ()).unwrap_err();
        // Free one descriptor: the same listener now accepts the queued connection.
        // SAFETY: closes one of our own dups.
        unsafe { libc::close(hogs.pop().unwrap()) };
        let second = listener.accept().map(|(s, _)| s.peer_addr().is_ok());
        (first, second)
    });
    shrapnel::event_loop();
    let (first, second) = c.join().unwrap();
    let msg = first.to_string();
    assert_eq!(
        first.raw_os_error(),
        None,
        "annotated error keeps its kind: {msg}"
    );
    assert!(
        msg.contains(&format!("accept on listening fd {lfd} failed")),
        "{msg}"
    );
    assert!(
        msg.contains("out of file descriptors") && msg.contains("ulimit -n"),
        "{msg}"
    );
    assert!(second.unwrap(), "the listener still works after EMFILE");
    println!("EMFILE-OK");
}

#[test]
fn accept_at_emfile_reports_and_recovers() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "emfile_child", "--nocapture", "--test-threads=1"])
        .env("SHRAPNEL_EMFILE_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("EMFILE-OK"),
        "stdout {stdout}\nstderr {stderr}"
    );
}
