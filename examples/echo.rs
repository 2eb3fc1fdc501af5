//! A TCP echo server on 127.0.0.1: `cargo run --example echo -- 7000 [--cores N]`.
//!
//! With `--cores N` (0: one per CPU) it runs a scheduler per core with `run_per_core`, each
//! with its own SO_REUSEPORT listener on the port; the kernel spreads connections among
//! them. Ctrl-C stops it cleanly.
use std::io::{Read, Write};

use shrapnel::net::TcpListener;

#[path = "server_args/mod.rs"]
mod server_args;

fn main() {
    let server_args::ServerArgs { port, cores } = server_args::parse("echo");
    match cores {
        None => {
            let listener = bind(port, false);
            println!("echo: listening on 127.0.0.1:{port}");
            serve(listener);
            std::process::exit(shrapnel::event_loop());
        }
        Some(n) => {
            println!("echo: listening on 127.0.0.1:{port} with a scheduler per core");
            let result = shrapnel::run_per_core(n, move |_core| serve(bind(port, true)));
            match result {
                Ok(codes) => std::process::exit(codes.into_iter().max().unwrap_or(0)),
                Err(e) => {
                    eprintln!("echo: {e}");
                    std::process::exit(1);
                }
            }
        }
    }
}

fn bind(port: u16, reuseport: bool) -> TcpListener {
    let bound = if reuseport {
        TcpListener::bind_reuseport(("127.0.0.1", port))
    } else {
        TcpListener::bind(("127.0.0.1", port))
    };
    bound.unwrap_or_else(|e| {
        eprintln!("echo: {e}");
        std::process::exit(1);
    })
}

/// Accept on `listener` in a coroutine, one coroutine per connection echoing what it reads.
fn serve(listener: TcpListener) {
    shrapnel::Builder::new()
        .name("acceptor")
        .spawn(move || loop {
            match listener.accept() {
                Ok((conn, peer)) => {
                    let spawned =
                        shrapnel::Builder::new()
                            .name(format!("echo {peer}"))
                            .spawn(move || {
                                let mut buf = [0u8; 16 * 1024];
                                while let Ok(n @ 1..) = (&conn).read(&mut buf) {
                                    if (&conn).write_all(&buf[..n]).is_err() {
                                        break;
                                    }
                                }
                            });
                    if let Err(e) = spawned {
                        eprintln!("echo: dropping connection from {peer}: {e}");
                    }
                }
                // Shut down (Ctrl-C, SIGTERM): stop accepting.
                Err(e) if shrapnel::Interrupted::from_io_error(&e).is_some() => return,
                Err(e) => {
                    eprintln!("echo: {e}");
                    let _ = shrapnel::sleep(std::time::Duration::from_millis(100));
                }
            }
        })
        .expect("spawn acceptor");
}
