//! The may echo server of `bench/echo.sh`: may configured for one worker thread, or N with
//! `--workers N` (the `--cores` mode of the script), not pinned by may (the script pins the
//! process); one coroutine per connection, the read buffer on the heap (may's default
//! coroutine stack is small). may also runs a timer thread of its own.
//! `echo_may [--workers N] [PORT]` binds 127.0.0.1 and prints `port N` when ready.

use std::io::{Read, Write};

use may::net::{TcpListener, TcpStream};
use shrapnel_bench::echo::{announce, fail, ServerArgs, READ_SIZE};

const NAME: &str = "echo_may";

fn serve(mut conn: TcpStream) {
    let mut buf = vec![0u8; READ_SIZE];
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if conn.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
}

/// Accept forever, one coroutine per connection.
fn accept_loop(port: u16) {
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap_or_else(|e| fail(NAME, "bind", e));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| fail(NAME, "local_addr", e))
        .port();
    announce(port);
    loop {
        match listener.accept() {
            Ok((conn, _)) => {
                // As shrapnel's accept and Go's do.
                let _ = conn.set_nodelay(true);
                // SAFETY: may's contract for spawn: the coroutine must not overflow its
                // stack (`serve` keeps its buffer on the heap, a few small frames deep)
                // and must not rely on thread-locals across blocking calls (none used).
                unsafe {
                    may::coroutine::spawn(move || serve(conn));
                }
            }
            Err(e) => {
                eprintln!("{NAME}: accept: {e}");
                may::coroutine::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
}

fn main() {
    let args = ServerArgs::parse(NAME, "--workers", false);
    let (workers, port) = (args.threads.unwrap_or(1), args.port);
    may::config().set_workers(workers).set_pool_capacity(1000);
    may::config().set_worker_pin(false);
    // SAFETY: as in `accept_loop`: the acceptor only calls accept and spawn, a few frames
    // deep, and uses no thread-locals of its own.
    let acceptor = unsafe { may::coroutine::spawn(move || accept_loop(port)) };
    if acceptor.join().is_err() {
        fail(NAME, "acceptor", "panicked");
    }
}
