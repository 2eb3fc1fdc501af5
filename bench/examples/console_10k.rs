//! The backdoor's heavy commands on 10,000 coroutines (issue 13): `where_all --json`,
//! `ps --json`, `deadlocks` and `contention`, each timed as a client sees it (from sending
//! the line to the next prompt), five times, the median printed as
//! `console <command>: <ms> ms (<bytes> bytes)`.
//!
//! The coroutines: 6,000 sleepers, 2,000 waiting on 500 mutexes held by 500 holders, 1,480
//! waiting on fifos, and 10 two-coroutine deadlocks (mutex cycles) — 10,000 with the
//! backdoor's own. Built with `stacks`, so `where_all` walks and symbolizes every stack.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

use shrapnel::backdoor::{Backdoor, Options};
use shrapnel::sync::{Fifo, Mutex};

const PROMPT: &[u8] = b"shrapnel> ";

fn main() {
    let path =
        std::env::temp_dir().join(format!("shrapnel-console-10k-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let bd = Backdoor::bind(Options::unix(&path)).expect("bind the backdoor");
    let long = Duration::from_secs(3600);
    for i in 0..6000 {
        shrapnel::Builder::new()
            .name(format!("sleeper {i}"))
            .spawn(move || shrapnel::sleep(long))
            .unwrap();
    }
    for m in 0..500 {
        let mutex = Rc::new(Mutex::new(()));
        let held = mutex.clone();
        shrapnel::Builder::new()
            .name(format!("holder {m}"))
            .spawn(move || {
                let _g = held.lock()?;
                shrapnel::sleep(long)
            })
            .unwrap();
        for w in 0..4 {
            let mutex = mutex.clone();
            shrapnel::Builder::new()
                .name(format!("waiter {m}.{w}"))
                .spawn(move || mutex.lock().map(drop))
                .unwrap();
        }
    }
    let fifos: Vec<Rc<Fifo<u32>>> = (0..100).map(|_| Rc::new(Fifo::new())).collect();
    for i in 0..1480 {
        let f = fifos[i % fifos.len()].clone();
        shrapnel::Builder::new()
            .name(format!("consumer {i}"))
            .spawn(move || f.pop().map(drop))
            .unwrap();
    }
    for d in 0..10 {
        let (a, b) = (Rc::new(Mutex::new(())), Rc::new(Mutex::new(())));
        for (first, second) in [(a.clone(), b.clone()), (b, a)] {
            shrapnel::Builder::new()
                .name(format!("deadlocked {d}"))
                .spawn(move || {
                    let _one = first.lock()?;
                    shrapnel::sleep(Duration::from_millis(5))?;
                    let _two = second.lock()?;
                    Ok::<_, shrapnel::Interrupted>(())
                })
                .unwrap();
        }
    }
    let server = bd.clone();
    shrapnel::Builder::new()
        .name("backdoor")
        .spawn(move || server.serve())
        .unwrap();
    let client_path = path.clone();
    let client = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        let mut s = UnixStream::connect(&client_path).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut buf = Vec::new();
        until_prompt(&mut s, &mut buf);
        // The first where_all symbolizes every return address: a warm-up, not measured.
        run(&mut s, &mut buf, "where_all");
        for cmd in ["where_all --json", "ps --json", "deadlocks", "contention"] {
            let mut times = Vec::new();
            let mut bytes = 0;
            for _ in 0..5 {
                let t = Instant::now();
                bytes = run(&mut s, &mut buf, cmd);
                times.push(t.elapsed());
            }
            times.sort();
            println!(
                "console {cmd}: {:.1} ms ({bytes} bytes)",
                times[2].as_secs_f64() * 1e3
            );
        }
        let live = run_text(&mut s, &mut buf, "stats");
        let n = live
            .lines()
            .find(|l| l.starts_with("live coroutines"))
            .unwrap_or("?")
            .to_string();
        println!("console: {n}");
        let _ = s.write_all(b"quit\n");
    });
    shrapnel::spawn(move || {
        while !client.is_finished() {
            if shrapnel::sleep(Duration::from_millis(20)).is_err() {
                break;
            }
        }
        client.join().expect("client");
        bd.close();
        std::process::exit(0);
    });
    shrapnel::event_loop();
}

fn until_prompt(s: &mut UnixStream, buf: &mut Vec<u8>) -> Vec<u8> {
    loop {
        if let Some(i) = buf.windows(PROMPT.len()).position(|w| w == PROMPT) {
            let out = buf[..i].to_vec();
            buf.drain(..i + PROMPT.len());
            return out;
        }
        let mut chunk = [0u8; 65536];
        let n = s.read(&mut chunk).expect("read from the backdoor");
        assert!(n > 0, "the backdoor closed the session");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Run `cmd`; the output's size.
fn run(s: &mut UnixStream, buf: &mut Vec<u8>, cmd: &str) -> usize {
    run_text(s, buf, cmd).len()
}

fn run_text(s: &mut UnixStream, buf: &mut Vec<u8>, cmd: &str) -> String {
    s.write_all(format!("{cmd}\n").as_bytes()).expect("write");
    String::from_utf8_lossy(&until_prompt(s, buf)).into_owned()
}
