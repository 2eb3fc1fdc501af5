//! The backdoor in a running server: a TCP echo server on 127.0.0.1, served by a scheduler
//! per core (`run_per_core`, each with its own SO_REUSEPORT listener), and the backdoor on
//! a unix socket in the working directory, with latency reporting on.
//!
//! ```text
//! cargo run --example demo --features backdoor,latency [-- PORT] [--cores N]
//! socat - UNIX-CONNECT:./shrapnel-demo.sock      (or: nc -U ./shrapnel-demo.sock)
//! ```
//!
//! `--cores N` sets the number of schedulers (default 0: one per CPU). The backdoor runs on
//! the first; its commands see every scheduler (a SCHED column says which).
//! `$SHRAPNEL_BACKDOOR` names another socket path; with `$SHRAPNEL_BACKDOOR_PASSWORD` set,
//! a session must log in first (user `admin`, that password). Try `ps`, `where_all`, `stats`,
//! `sockets`, `top`, the demo's own `echoes` command, and `stall 300` to see a high-latency
//! warning on the server's stderr and the slice in `top`. Built with
//! `--features backdoor,latency,backdoor-script`, `eval` runs rhai scripts such as
//! `eval ps().filter(|c| c.state == "blocked").len()` or `eval echoed()`.
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shrapnel::backdoor::{self, Backdoor, Options};
use shrapnel::net::TcpListener;

#[path = "server_args/mod.rs"]
mod server_args;

fn main() {
    let server_args::ServerArgs { port, cores } = server_args::parse("demo");
    let path: PathBuf = std::env::var_os("SHRAPNEL_BACKDOOR")
        .map(PathBuf::from)
        .unwrap_or_else(|| "./shrapnel-demo.sock".into());
    let echoed = Arc::new(AtomicU64::new(0));
    let schedulers = match cores.unwrap_or(0) {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let result = shrapnel::run_per_core(schedulers, move |core| {
        // Slices longer than 1 × 0.2 s are reported on stderr.
        if let Err(e) = shrapnel::latency::set_latency_warning(1.0) {
            eprintln!("demo: {e}");
        }
        let listener = match TcpListener::bind_reuseport(("127.0.0.1", port)) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("demo: core {core}: {e}");
                std::process::exit(1);
            }
        };
        if core == 0 {
            start_backdoor(&path, port, schedulers, echoed.clone());
        }
        accept(listener, echoed.clone());
    });
    match result {
        // Every scheduler ends with the same status (130 after Ctrl-C, 143 after SIGTERM).
        Ok(codes) => std::process::exit(codes.into_iter().max().unwrap_or(0)),
        Err(e) => {
            eprintln!("demo: {e}");
            std::process::exit(1);
        }
    }
}

/// The backdoor on `path`, with the demo's own commands, served by a coroutine of this
/// scheduler.
fn start_backdoor(path: &std::path::Path, port: u16, schedulers: usize, echoed: Arc<AtomicU64>) {
    let mut options = Options::unix(path);
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
            engine.register_fn("echoed", move || count.load(Ordering::Relaxed) as i64);
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
            move |_args, out| writeln!(out, "{} bytes echoed", count.load(Ordering::Relaxed)),
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

    println!(
        "demo: echo server on 127.0.0.1:{port} with {schedulers} schedulers (try: nc 127.0.0.1 {port})"
    );
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
}

/// Accept connections on `listener` and echo each in its own coroutine.
fn accept(listener: TcpListener, echoed: Arc<AtomicU64>) {
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
                        echoed.fetch_add(n as u64, Ordering::Relaxed);
                    }
                });
            if let Err(e) = spawned {
                eprintln!("demo: dropping connection from {peer}: {e}");
            }
        })
        .expect("spawn the acceptor");
}
