//! The tokio echo server of `bench/echo.sh`: a current-thread runtime, one task per
//! connection, the read buffer in the task's future. `echo_tokio [PORT]` binds 127.0.0.1
//! and prints `port N` when ready.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use shrapnel_bench::echo::{announce, fail, port_from_args, READ_SIZE};

const NAME: &str = "echo_tokio";

fn main() {
    let port = port_from_args(NAME);
    let rt = tokio::runtime::Builder::new_current_thread()
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
