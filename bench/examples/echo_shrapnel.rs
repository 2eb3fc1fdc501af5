//! The shrapnel echo server of `bench/echo.sh`: one coroutine per connection on the
//! default (guarded, pooled mmap) stacks, the read buffer on the coroutine's stack.
//! `echo_shrapnel [PORT]` binds 127.0.0.1 and prints `port N` when ready.

use std::io::{Read, Write};

use shrapnel::net::TcpListener;
use shrapnel_bench::echo::{announce, fail, port_from_args, READ_SIZE};

const NAME: &str = "echo_shrapnel";

fn main() {
    let listener = TcpListener::bind(("127.0.0.1", port_from_args(NAME)))
        .unwrap_or_else(|e| fail(NAME, "bind", e));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| fail(NAME, "local_addr", e))
        .port();
    shrapnel::Builder::new()
        .name("acceptor")
        .spawn(move || loop {
            match listener.accept() {
                Ok((conn, _)) => {
                    let spawned = shrapnel::Builder::new().spawn(move || {
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
