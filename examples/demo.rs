//! The backdoor in a running server: a TCP echo server on 127.0.0.1 and the backdoor on a
//! unix socket in the working directory, with latency reporting on.
//!
//! ```text
//! cargo run --example demo --features backdoor,latency [-- PORT]
//! socat - UNIX-CONNECT:./shrapnel-demo.sock      (or: nc -U ./shrapnel-demo.sock)
//! ```
//!
//! `$SHRAPNEL_BACKDOOR` names another socket path; with `$SHRAPNEL_BACKDOOR_PASSWORD` set,
//! a session must log in first (user `admin`, that password). Try `ps`, `where_all`, `stats`,
//! `sockets`, `top`, the demo's own `echoes` command, and `stall 300` to see a high-latency
//! warning on the server's stderr and the slice in `top`. Built with
//! `--features backdoor,latency,backdoor-script`, `eval` runs rhai scripts such as
//! `eval ps().filter(|c| c.state == "blocked").len()` or `eval echoed()`.
use std::cell::Cell;
use std::io::{Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use shrapnel::backdoor::{self, Backdoor, Options};
use shrapnel::net::TcpListener;

fn main() {
    let port: u16 = match std::env::args().nth(1).map(|p| p.parse()) {
        None => 7000,
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            eprintln!("usage: demo [PORT]  (bad port: {e})");
            std::process::exit(2);
        }
    };
    let path = std::env::var_os("SHRAPNEL_BACKDOOR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "./shrapnel-demo.sock".into());

    // Slices longer than 1 × 0.2 s are reported on stderr.
    shrapnel::ensure();
    if let Err(e) = shrapnel::latency::set_latency_warning(1.0) {
        eprintln!("demo: {e}");
    }

    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("demo: {e}");
            std::process::exit(1);
        }
    };
    let echoed = Rc::new(Cell::new(0u64));
    let mut options = Options::unix(&path);
    if let Some(password) = std::env::var_os("SHRAPNEL_BACKDOOR_PASSWORD") {
        let password = password.into_encoded_bytes();
        options = options.auth(move |user, typed| {
            user == "admin" && backdoor::constant_time_eq(typed.as_bytes(), &password)
        });
    }
    // With `--features backdoor-script` too: `eval echoed() / 1024` and friends.
    #[cfg(feature = "backdoor-script")]
    let options = {
        let count = echoed.clone();
        options.script_engine(move |engine| {
            let count = count.clone();
            engine.register_fn("echoed", move || count.get() as i64);
        })
    };
    let backdoor = match Backdoor::bind(options) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("demo: {e}");
            std::process::exit(1);
        }
    };
    let count = echoed.clone();
    let registered = backdoor
        .register(
            "echoes",
            "bytes the echo server has echoed",
            move |_args, out| writeln!(out, "{} bytes echoed", count.get()),
        )
        .and_then(|()| {
            backdoor.register(
                "stall",
                "stall MS: hog the CPU for MS milliseconds (try 300, then `top`)",
                |args, out| {
                    let ms: u64 = match args {
                        [ms] => ms.parse().map_err(|_| {
                            std::io::Error::new(
                                std::io::ErrorKind::InvalidInput,
                                format!("'{ms}' is not a number of milliseconds"),
                            )
                        })?,
                        _ => 300,
                    };
                    let start = Instant::now();
                    while start.elapsed() < Duration::from_millis(ms.min(5_000)) {
                        std::hint::spin_loop();
                    }
                    writeln!(out, "stalled the scheduler for {ms} ms")
                },
            )
        });
    if let Err(e) = registered {
        eprintln!("demo: {e}");
        std::process::exit(1);
    }

    println!("demo: echo server on 127.0.0.1:{port} (try: nc 127.0.0.1 {port})");
    println!("demo: backdoor on {}; connect with", backdoor.addr());
    println!("    socat - UNIX-CONNECT:{}", path.display());
    println!("    nc -U {}", path.display());
    println!("demo: Ctrl-C stops it cleanly (exit status 130)");

    shrapnel::Builder::new()
        .name("backdoor")
        .spawn(move || {
            if let Err(e) = backdoor.serve() {
                eprintln!("demo: {e}");
            }
        })
        .expect("spawn the backdoor");
    shrapnel::Builder::new()
        .name("acceptor")
        .spawn(move || loop {
            let (conn, peer) = match listener.accept() {
                Ok(c) => c,
                // Shut down (Ctrl-C, SIGTERM, or `shutdown` in the backdoor): stop accepting.
                Err(e) if shrapnel::Interrupted::from_io_error(&e).is_some() => return,
                Err(e) => {
                    eprintln!("demo: {e}");
                    let _ = shrapnel::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            let echoed = echoed.clone();
            let spawned = shrapnel::Builder::new()
                .name(format!("echo {peer}"))
                .spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    while let Ok(n @ 1..) = (&conn).read(&mut buf) {
                        if (&conn).write_all(&buf[..n]).is_err() {
                            break;
                        }
                        echoed.set(echoed.get() + n as u64);
                    }
                });
            if let Err(e) = spawned {
                eprintln!("demo: dropping connection from {peer}: {e}");
            }
        })
        .expect("spawn the acceptor");
    std::process::exit(shrapnel::event_loop());
}
