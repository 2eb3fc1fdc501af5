//! The tokio echo server of `bench/echo.sh`: one task per connection, the read buffer in
//! the task's future. `echo_tokio [--workers N] [PORT]` binds 127.0.0.1 and prints
//! `port N` when ready.
//!
//! Without `--workers`, or with `--workers 1`, a current-thread runtime. With `--workers N`
//! above 1 (the `--cores` mode of `bench/echo.sh`), a multi-thread runtime with N worker
//! threads (not pinned: the script pins the process to N CPUs): one task accepts on the
//! single listener and every connection's task is spawned onto the runtime, whose workers
//! share them out (work stealing).

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use shrapnel_bench::echo::{announce, fail, ServerArgs, READ_SIZE};

const NAME: &str = "echo_tokio";

fn main() {
    let args = ServerArgs::parse(NAME, "--workers", false);
    let (workers, port) = (args.threads.unwrap_or(1), args.port);
    let mut builder = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    };
    let rt = builder
        .enable_io()
        .build()
        .unwrap_or_else(|e| fail(NAME, "runtime", e));
    rt.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| fail(NAME, "bind", e));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| fail(NAME, "local_addr", e))
            .port();
        announce(port);
        loop {
            match listener.accept().await {
                Ok((mut conn, _)) => {
                    // As shrapnel's accept and Go's do.
                    let _ = conn.set_nodelay(true);
                    tokio::spawn(async move {
                        let mut buf = [0u8; READ_SIZE];
                        loop {
                            match conn.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    if conn.write_all(&buf[..n]).await.is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                    });
                }
                Err(e) => {
                    eprintln!("{NAME}: accept: {e}");
                    // Out of fds, say: a pause like the other servers', not a spin.
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
        }
    });
}
