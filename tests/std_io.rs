//! An interrupted socket call surfaces through std's helpers instead of being retried by
//! them: `read_exact`, `write_all`, `read_to_end`, `read_line`, `lines()` and `io::copy`
//! (directly and through `BufReader`/`BufWriter`) return the interruption, and it can be
//! recovered from the `io::Error`. A timeout stays `TimedOut`.

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::rc::Rc;
use std::time::Duration;

use shrapnel::net::{socketpair, UnixStream};
use shrapnel::{Interrupted, State};

type Op = Box<dyn FnOnce(Rc<UnixStream>) -> io::Result<()>>;

fn ops() -> Vec<(&'static str, Op)> {
    vec![
        (
            "read_exact",
            Box::new(|s: Rc<UnixStream>| (&*s).read_exact(&mut [0; 8])),
        ),
        (
            "write_all",
            Box::new(|s: Rc<UnixStream>| (&*s).write_all(&vec![7u8; 64 << 20])),
        ),
        (
            "read_to_end",
            Box::new(|s: Rc<UnixStream>| (&*s).read_to_end(&mut Vec::new()).map(drop)),
        ),
        (
            "BufReader::read_line",
            Box::new(|s: Rc<UnixStream>| {
                BufReader::new(&*s).read_line(&mut String::new()).map(drop)
            }),
        ),
        (
            "BufReader::lines",
            Box::new(|s: Rc<UnixStream>| {
                for line in BufReader::new(&*s).lines() {
                    line?;
                }
                Ok(())
            }),
        ),
        (
            "BufReader::read_exact",
            Box::new(|s: Rc<UnixStream>| BufReader::new(&*s).read_exact(&mut [0; 8])),
        ),
        (
            "BufWriter::write_all+flush",
            Box::new(|s: Rc<UnixStream>| {
                let mut w = BufWriter::new(&*s);
                w.write_all(&vec![7u8; 64 << 20])?;
                w.flush()
            }),
        ),
        (
            "io::copy",
            Box::new(|s: Rc<UnixStream>| io::copy(&mut &*s, &mut io::sink()).map(drop)),
        ),
    ]
}

#[test]
fn shutdown_inside_a_std_helper_returns_instead_of_being_retried() {
    for (name, op) in ops() {
        shrapnel::reset();
        let (a, b) = socketpair().unwrap();
        let (a, b) = (Rc::new(a), Rc::new(b));
        // Some data first, so the helpers are mid-way when they block (read_exact wants 8).
        (&*b).write_all(b"abc").unwrap();
        let a2 = a.clone();
        let target = shrapnel::spawn(move || op(a2));
        let h = target.handle();
        let guard = shrapnel::spawn(move || {
            shrapnel::sleep(Duration::from_millis(20)).unwrap();
            assert_eq!(h.state(), State::Blocked, "{name}: blocked in the helper");
            assert!(h.shutdown());
            shrapnel::sleep(Duration::from_millis(200)).unwrap();
            let still_blocked = !h.dead();
            // Do not hang the test if the helper retried: closing ends it.
            a.close().unwrap();
            drop(b);
            still_blocked
        });
        shrapnel::event_loop();
        assert!(
            !guard.join().unwrap(),
            "{name}: still blocked after shutdown (std retried the interruption)"
        );
        let err = target.join().unwrap().expect_err(name);
        assert_ne!(err.kind(), io::ErrorKind::Interrupted, "{name}: {err}");
        assert_eq!(
            Interrupted::from_io_error(&err),
            Some(Interrupted::Shutdown),
            "{name}: {err}"
        );
    }
}

#[test]
fn a_timeout_inside_a_std_helper_is_timed_out_and_names_the_fd() {
    shrapnel::reset();
    let (a, _b) = socketpair().unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&a);
    let c = shrapnel::spawn(move || {
        let mut err = None;
        let r = shrapnel::with_timeout(Duration::from_millis(10), || {
            err = (&a).read_exact(&mut [0; 4]).err();
        });
        (r, err.unwrap())
    });
    shrapnel::event_loop();
    let (r, err) = c.join().unwrap();
    assert!(r.is_err(), "the timeout fired");
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert!(
        matches!(
            Interrupted::from_io_error(&err),
            Some(Interrupted::Timeout(_))
        ),
        "{err}"
    );
    assert!(err.to_string().contains(&format!("fd {fd}")), "{err}");
}

#[test]
fn waiting_on_a_regular_file_keeps_the_hint() {
    shrapnel::reset();
    let f = std::fs::File::open("Cargo.toml").unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&f);
    let c = shrapnel::spawn(move || shrapnel::wait_readable(fd));
    shrapnel::event_loop();
    let got = c.join().unwrap();
    if std::any::type_name::<shrapnel::OsPoller>().contains("Kqueue") {
        // kqueue (a BSD kernel, or libkqueue) takes a regular file as always readable.
        assert!(got.is_ok(), "{got:?}");
        return;
    }
    let err = got.unwrap_err();
    assert!(err.to_string().contains("regular file"), "{err}");
    assert!(err.to_string().contains(&format!("fd {fd}")), "{err}");
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
    drop(f);
}
