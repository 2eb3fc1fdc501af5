//! The shrapnel echo server of `bench/echo.sh`: one coroutine per connection, the read
//! buffer on the coroutine's stack. `echo_shrapnel [--shared] [PORT]` binds 127.0.0.1 and
//! prints `port N` when ready.
//!
//! Without `--shared` every connection coroutine has its own default stack (guarded,
//! pooled mmap). With `--shared` every connection coroutine runs on the scheduler's shared
//! run stack (`Builder::shared_stack(true)`): a suspended one keeps a heap copy of the
//! stack it used (the read buffer included), copied off and back when another
//! shared-stack coroutine ran in between. The acceptor has its own stack in both modes.

use std::io::{Read, Write};

use shrapnel::net::TcpListener;
use shrapnel_bench::echo::{announce, fail, port_from, READ_SIZE};

const NAME: &str = "echo_shrapnel";

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let shared = args.first().map(String::as_str) == Some("--shared");
    if shared {
        args.remove(0);
    }
    if args.len() > 1 {
        eprintln!("usage: {NAME} [--shared] [PORT]");
        std::process::exit(2);
    }
    let listener = TcpListener::bind((
        "127.0.0.1",
        port_from(NAME, args.first().map(String::as_str)),
    ))
    .unwrap_or_else(|e| fail(NAME, "bind", e));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| fail(NAME, "local_addr", e))
        .port();
    shrapnel::Builder::new()
        .name("acceptor")
        .shared_stack(false)
        .spawn(move || loop {
            match listener.accept() {
                Ok((conn, _)) => {
                    let spawned = shrapnel::Builder::new()
                        .shared_stack(shared)
                        .spawn(move || {
                            let mut buf = [0u8; READ_SIZE];
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
                        eprintln!("{NAME}: dropping a connection: {e}");
                    }
                }
                // Shut down (Ctrl-C, SIGTERM): stop accepting.
                Err(e) if shrapnel::Interrupted::from_io_error(&e).is_some() => return,
                Err(e) => {
                    eprintln!("{NAME}: accept: {e}");
                    let _ = shrapnel::sleep(std::time::Duration::from_millis(10));
                }
            }
        })
        .unwrap_or_else(|e| fail(NAME, "spawn the acceptor", e));
    announce(port);
    std::process::exit(shrapnel::event_loop());
}
