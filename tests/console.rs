//! `shrapnel-console` (the workspace's command-line client) against the demo: one command
//! per run, `--json` through it, `metrics`, `--watch` refreshing `top`, and a login.
#![cfg(all(feature = "backdoor", feature = "latency"))]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// target/debug (the directory above this test binary's `deps`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// The console binary, built if need be (`cargo test --workspace` builds it already).
fn console() -> PathBuf {
    let bin = target_dir().join("shrapnel-console");
    if !bin.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "shrapnel-console"])
            .status()
            .unwrap();
        assert!(status.success(), "building shrapnel-console failed");
    }
    bin
}

/// The demo on a free port with its backdoor on `sock` (optionally with a password), and
/// the port.
fn start_demo_on(sock: &Path, password: Option<&str>) -> (Child, u16) {
    let demo = target_dir().join("examples/demo");
    assert!(
        demo.exists(),
        "{} is missing: `cargo test --features backdoor,latency` builds it",
        demo.display()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new(demo);
    cmd.args([&port.to_string(), "--cores", "2"])
        .env("SHRAPNEL_BACKDOOR", sock)
        .env_remove("SHRAPNEL_BACKDOOR_PASSWORD")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(p) = password {
        cmd.env("SHRAPNEL_BACKDOOR_PASSWORD", p);
    }
    let mut child = cmd.spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let t0 = Instant::now();
    let mut line = String::new();
    while !line.contains("Ctrl-C stops it") {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the demo ended early"
        );
        assert!(t0.elapsed() < Duration::from_secs(30));
    }
    (child, port)
}

fn start_demo(sock: &Path, password: Option<&str>) -> Child {
    start_demo_on(sock, password).0
}

fn stop(mut demo: Child) {
    // SAFETY: kill(2) of the child we started.
    unsafe { libc::kill(demo.id() as i32, libc::SIGINT) };
    let status = demo.wait().unwrap();
    assert_eq!(status.code(), Some(130));
}

fn run(args: &[&str], password: Option<&str>) -> Output {
    let mut cmd = Command::new(console());
    cmd.args(args).env_remove("SHRAPNEL_BACKDOOR_PASSWORD");
    if let Some(p) = password {
        cmd.env("SHRAPNEL_BACKDOOR_PASSWORD", p);
    }
    cmd.output().unwrap()
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn temp_sock(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shrapnel-console-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("demo.sock")
}

#[test]
fn the_console_drives_the_demo() {
    let sock = temp_sock("plain");
    let demo = start_demo(&sock, None);
    let s = sock.to_str().unwrap();

    let ps = run(&[s, "ps"], None);
    assert!(ps.status.success(), "{ps:?}");
    let out = text(&ps);
    assert!(out.starts_with("  ID  SCHED  NAME "), "{out}");
    assert!(out.contains("acceptor"), "{out}");
    assert!(out.contains("backdoor session 1"), "{out}");

    let all = run(&[s, "where_all", "--json"], None);
    let doc: serde_json::Value = serde_json::from_str(&text(&all)).unwrap();
    let acceptors = doc["coroutines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == "acceptor")
        .count();
    assert_eq!(acceptors, 2, "one acceptor per scheduler: {doc}");

    let metrics = text(&run(&[s, "metrics"], None));
    assert!(
        metrics.contains("shrapnel_coroutines{scheduler=\"0\",state=\"blocked\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("shrapnel_schedulers 2\n"), "{metrics}");

    // --watch: `top` again and again until stopped.
    let mut watch = Command::new(console())
        .args(["--watch", "0.2", s, "top"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    watch.kill().unwrap();
    let out = text(&watch.wait_with_output().unwrap());
    let refreshes = out.matches("\x1b[H\x1b[2J").count();
    assert!(refreshes >= 3, "{refreshes} refreshes:\n{out}");
    assert!(out.contains("MAX SLICE"), "{out}");

    let bad = run(&[s, "frobnicate"], None);
    assert!(bad.status.success());
    assert!(text(&bad).contains("unknown command 'frobnicate'"));
    let missing = run(&["/nonexistent/shrapnel.sock", "ps"], None);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/shrapnel.sock"));
    assert_eq!(run(&[s], None).status.code(), Some(2));
    stop(demo);
}

/// `profile 2` while a client keeps the echo servers busy: the echoing coroutines are in
/// the report; `profile 1 folded FILE` writes folded stacks.
#[test]
fn the_console_profiles_the_demo_under_load() {
    use std::io::{Read, Write};
    let sock = temp_sock("profile");
    let (demo, port) = start_demo_on(&sock, None);
    let s = sock.to_str().unwrap().to_string();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let done = done.clone();
            std::thread::spawn(move || {
                let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                let mut buf = [0u8; 4096];
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    c.write_all(&[7u8; 4096]).unwrap();
                    c.read_exact(&mut buf).unwrap();
                }
            })
        })
        .collect();
    let report = text(&run(&[&s, "profile", "2"], None));
    let folded_file = sock.with_file_name("cpu.folded");
    let wrote = text(&run(
        &[&s, "profile", "1", "folded", folded_file.to_str().unwrap()],
        None,
    ));
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    assert!(report.starts_with("profile: "), "{report}");
    assert!(report.contains("top coroutines:"), "{report}");
    assert!(report.contains("'echo 127.0.0.1:"), "{report}");
    assert!(wrote.starts_with("profile: wrote "), "{wrote}");
    let folded = std::fs::read_to_string(&folded_file).unwrap();
    let line = folded.lines().next().unwrap();
    let (stack, count) = line.rsplit_once(' ').unwrap();
    assert!(count.parse::<u64>().unwrap() >= 1, "{line}");
    assert!(stack.contains(';'), "{line}");
    stop(demo);
}

#[test]
fn the_console_logs_in_when_the_backdoor_asks() {
    let sock = temp_sock("login");
    let demo = start_demo(&sock, Some("s3cret"));
    let s = sock.to_str().unwrap();
    let ok = run(&["--user", "admin", s, "stats"], Some("s3cret"));
    assert!(ok.status.success(), "{ok:?}");
    assert!(text(&ok).contains("backdoor sessions"), "{}", text(&ok));
    let wrong = run(&["--user", "admin", s, "stats"], Some("guess"));
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("login failed"));
    let no_user = run(&[s, "stats"], None);
    assert_eq!(no_user.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&no_user.stderr).contains("--user"));
    stop(demo);
}
