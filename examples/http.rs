//! A small HTTP/1.1 server with keep-alive, parsing requests with httparse: `/` says hello,
//! `/count` says how many requests this server has answered, anything else is 404; a request
//! it cannot parse gets 400 and the connection is closed.
//!
//! ```text
//! cargo run --example http -- 8080       (then: curl -v http://127.0.0.1:8080/ http://127.0.0.1:8080/count)
//! ```
//!
//! Port 0 picks a free port; the first line on stdout says which (`listening on ADDR`).
use std::cell::Cell;
use std::io::{BufRead, BufReader, Read, Write};
use std::rc::Rc;

use shrapnel::net::{TcpListener, TcpStream};

/// Requests larger than this (head and body) are refused.
const MAX_HEAD: usize = 16 * 1024;

fn main() {
    let port: u16 = match std::env::args().nth(1).map(|p| p.parse()) {
        None => 8080,
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            eprintln!("usage: http [PORT]  (bad port: {e})");
            std::process::exit(2);
        }
    };
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap_or_else(|e| {
        eprintln!("http: {e}");
        std::process::exit(1);
    });
    println!("listening on {}", listener.local_addr().unwrap());
    let _ = std::io::stdout().flush();
    let count = Rc::new(Cell::new(0u64));
    shrapnel::spawn(move || {
        while let Ok((conn, peer)) = listener.accept() {
            let count = count.clone();
            let _ = shrapnel::Builder::new()
                .name(format!("http {peer}"))
                .spawn(move || {
                    if let Err(e) = serve(conn, &count) {
                        eprintln!("http: {peer}: {e}");
                    }
                });
        }
    });
    std::process::exit(shrapnel::event_loop());
}

/// Answer requests on one connection until the client closes it or asks to.
fn serve(conn: TcpStream, count: &Cell<u64>) -> std::io::Result<()> {
    let mut reader = BufReader::new(&conn);
    loop {
        // Read the head: up to the empty line.
        let mut head = Vec::new();
        loop {
            let n = reader.read_until(b'\n', &mut head)?;
            if n == 0 {
                return Ok(()); // closed between requests
            }
            if head.ends_with(b"\r\n\r\n") || head.ends_with(b"\n\n") {
                break;
            }
            if head.len() > MAX_HEAD {
                return respond(&conn, 431, "text/plain", b"request head too large\n", true);
            }
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        let (path, close, body_len) = match req.parse(&head) {
            Ok(httparse::Status::Complete(_)) => {
                let header = |name: &str| {
                    req.headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .and_then(|h| std::str::from_utf8(h.value).ok())
                };
                let close = header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))
                    || req.version == Some(0);
                let len = header("content-length").and_then(|v| v.trim().parse::<usize>().ok());
                (req.path.unwrap_or("/").to_string(), close, len.unwrap_or(0))
            }
            Ok(httparse::Status::Partial) | Err(_) => {
                return respond(&conn, 400, "text/plain", b"bad request\n", true);
            }
        };
        if body_len > MAX_HEAD {
            return respond(&conn, 413, "text/plain", b"body too large\n", true);
        }
        let mut body = vec![0; body_len];
        reader.read_exact(&mut body)?;
        count.set(count.get() + 1);
        match path.as_str() {
            "/" => respond(&conn, 200, "text/plain", b"hello from shrapnel\n", close)?,
            "/count" => {
                let text = format!("{} requests\n", count.get());
                respond(&conn, 200, "text/plain", text.as_bytes(), close)?
            }
            _ => respond(&conn, 404, "text/plain", b"not found\n", close)?,
        }
        if close {
            return Ok(());
        }
    }
}

fn respond(
    mut conn: &TcpStream,
    status: u16,
    kind: &str,
    body: &[u8],
    close: bool,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        413 => "Payload Too Large",
        _ => "Request Header Fields Too Large",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\n{}\r\n",
        body.len(),
        if close { "connection: close\r\n" } else { "" }
    );
    conn.write_all(head.as_bytes())?;
    conn.write_all(body)
}
