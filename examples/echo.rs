//! A TCP echo server on 127.0.0.1: `cargo run --example echo -- 7000`.
use std::io::{Read, Write};

use shrapnel::net::TcpListener;

fn main() {
    let port: u16 = match std::env::args().nth(1).map(|p| p.parse()) {
        None => 7000,
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            eprintln!("usage: echo [PORT]  (bad port: {e})");
            std::process::exit(2);
        }
    };
    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("echo: {e}");
            std::process::exit(1);
        }
    };
    println!("echo: listening on 127.0.0.1:{port}");
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
                                loop {
                                    match (&conn).read(&mut buf) {
                                        Ok(0) | Err(_) => break,
                                        Ok(n) => {
                                            if (&conn).write_all(&buf[..n]).is_err() {
                                                break;
                                            }
                                        }
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
    std::process::exit(shrapnel::event_loop());
}
