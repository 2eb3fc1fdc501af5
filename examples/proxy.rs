//! Shrapnel's tutorial TCP proxy: listen on 127.0.0.1, and for each client connect to a
//! target and copy both directions, a coroutine per direction.
//!
//! ```text
//! cargo run --example proxy -- 8000 127.0.0.1:7000     (then: nc 127.0.0.1 8000)
//! ```
//!
//! Port 0 picks a free port; the first line on stdout says which (`listening on ADDR`).
use std::io::Write;
use std::net::Shutdown;

use shrapnel::net::{TcpListener, TcpStream};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (port, target) = match args.as_slice() {
        [port, target] => match port.parse::<u16>() {
            Ok(p) => (p, target.clone()),
            Err(e) => usage(&format!("bad port {port:?}: {e}")),
        },
        _ => usage("two arguments expected"),
    };
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap_or_else(|e| fail(e));
    println!(
        "listening on {}",
        listener.local_addr().unwrap_or_else(|e| fail(e))
    );
    let _ = std::io::stdout().flush();
    shrapnel::spawn(move || {
        while let Ok((client, peer)) = listener.accept() {
            let target = target.clone();
            shrapnel::Builder::new()
                .name(format!("proxy {peer}"))
                .spawn(move || proxy(client, &target))
                .map(drop)
                .unwrap_or_else(|e| eprintln!("proxy: dropping {peer}: {e}"));
        }
    });
    std::process::exit(shrapnel::event_loop());
}

/// Copy both ways until both sides have finished; each direction closes the write half of
/// the other side when its source ends, so half-closed conversations work.
fn proxy(client: TcpStream, target: &str) {
    let server = match TcpStream::connect(target) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("proxy: cannot connect to {target}: {e}");
            return;
        }
    };
    let (client2, server2) = match (client.try_clone(), server.try_clone()) {
        (Ok(c), Ok(s)) => (c, s),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("proxy: {e}");
            return;
        }
    };
    let upstream = shrapnel::spawn(move || {
        let _ = std::io::copy(&mut &client2, &mut &server2);
        let _ = server2.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut &server, &mut &client);
    let _ = client.shutdown(Shutdown::Write);
    let _ = upstream.join();
}

fn usage(why: &str) -> ! {
    eprintln!("usage: proxy PORT HOST:PORT  ({why})");
    std::process::exit(2);
}

fn fail(e: std::io::Error) -> ! {
    eprintln!("proxy: {e}");
    std::process::exit(1);
}
