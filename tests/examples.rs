//! The example programs driven by real clients: `proxy` with curl through it to `http`,
//! `http` with curl (keep-alive) and a malformed request through socat, `tls` with
//! `openssl s_client`, `chat` with two socat clients.
//!
//! The examples are built by `cargo test` (all targets); each runs as a child process on a
//! free port and is killed at the end.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// A running example, killed when dropped.
struct Running {
    child: Child,
    addr: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn example_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: `cargo test` (without --test) builds the examples",
        path.display()
    );
    path
}

/// Start example `name` with `args` (port 0) and read its `listening on ADDR` line.
fn start(name: &str, args: &[&str]) -> Running {
    let mut child = Command::new(example_path(name))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{name} printed {line:?} instead of its address"))
        .to_string();
    Running { child, addr }
}

/// Run a client command with `input` on its stdin; its stdout and stderr, with a 20 s limit.
fn client(cmd: &mut Command, input: &[u8]) -> (String, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (ci/test.sh installs it)"));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    drop(stdin);
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("{cmd:?} did not finish in 20 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn http_keeps_the_connection_alive_and_refuses_garbage() {
    let http = start("http", &["0"]);
    let base = format!("http://{}", http.addr);
    let (out, err) = client(
        Command::new("curl").args(["-sv", &format!("{base}/"), &format!("{base}/count")]),
        b"",
    );
    assert!(out.contains("hello from shrapnel"), "{out}");
    assert!(out.contains("2 requests"), "{out}");
    assert!(
        err.contains("Re-using existing connection") || err.contains("Reusing existing connection"),
        "curl opened a second connection:\n{err}"
    );
    let (out, _) = client(
        Command::new("socat").args(["-t", "5", "-", &format!("TCP:{}", http.addr)]),
        b"NOT HTTP AT ALL\r\n\r\n",
    );
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
}

#[test]
fn proxy_relays_both_ways_to_its_target() {
    let http = start("http", &["0"]);
    let proxy = start("proxy", &["0", &http.addr]);
    let (out, err) = client(
        Command::new("curl").args(["-s", &format!("http://{}/count", proxy.addr)]),
        b"",
    );
    assert_eq!(out, "1 requests\n", "{err}");
    // A large request body goes through and the answer comes back.
    let body = vec![b'x'; 10_000];
    let mut request = format!(
        "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let (out, _) = client(
        Command::new("socat").args(["-t", "5", "-", &format!("TCP:{}", proxy.addr)]),
        &request,
    );
    assert!(
        out.starts_with("HTTP/1.1 200") && out.ends_with("hello from shrapnel\n"),
        "{out}"
    );
}

#[cfg(target_os = "linux")] // the TLS crates are Linux-only dev-dependencies
#[test]
fn tls_echoes_lines_to_openssl() {
    let tls = start("tls", &["0"]);
    let mut openssl = LineClient::spawn(
        Command::new("openssl").args(["s_client", "-connect", &tls.addr, "-quiet"]),
    );
    openssl.say("hello over tls");
    openssl.expect("echo: hello over tls");
}

/// A line-oriented client (socat, openssl) fed lines through its stdin.
struct LineClient {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl LineClient {
    fn connect(addr: &str) -> LineClient {
        Self::spawn(Command::new("socat").args(["-", &format!("TCP:{addr}")]))
    }

    fn spawn(cmd: &mut Command) -> LineClient {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (ci/test.sh installs it)"));
        let out: ChildStdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        LineClient { child, lines }
    }

    fn say(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    /// Wait (up to 10 s) for a line containing `text`.
    fn expect(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return,
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        panic!("no line with {text:?}; got {seen:?}");
    }
}

impl Drop for LineClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn chat_delivers_lines_with_nicks_and_announces_leaves() {
    let chat = start("chat", &["0"]);
    let mut ann = LineClient::connect(&chat.addr);
    ann.expect("welcome");
    let mut bob = LineClient::connect(&chat.addr);
    bob.expect("welcome");
    ann.expect("joined");
    ann.say("/nick ann");
    bob.expect("is now ann");
    ann.say("hello bob");
    bob.expect("<ann> hello bob");
    bob.say("/nick bob");
    ann.expect("is now bob");
    bob.say("/quit");
    ann.expect("* bob left");
    // The room still works for those who stayed.
    let cy = LineClient::connect(&chat.addr);
    cy.expect("welcome");
    ann.say("still here");
    cy.expect("<ann> still here");
}
