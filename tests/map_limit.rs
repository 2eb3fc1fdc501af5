//! At the memory-mapping limit the process keeps working: in a child process, spawn
//! coroutines with guarded stacks until the runtime refuses one (each stack is two kernel
//! mappings; the runtime keeps a reserve of `vm.max_map_count` for everything else), then
//! check that the refusal was an error naming the limit (not a panic, not an abort), that
//! the process still allocates 64 MiB and serves an echo round trip, and that spawning
//! works again once coroutines end.

use std::cell::Cell;
use std::io::{Read, Write};
use std::rc::Rc;
use std::time::Duration;

use shrapnel::net::TcpListener;

const CHILD: &str = "SHRAPNEL_MAP_LIMIT_CHILD";

fn child() {
    shrapnel::configure(shrapnel::RuntimeConfig {
        default_stack_size: 32 * 1024,
        ..Default::default()
    })
    .unwrap();
    // Where vm.max_map_count is very large, a smaller limit keeps the test short.
    if shrapnel::stack::budget::max_stacks().is_none_or(|m| m > 100_000) {
        shrapnel::stack::budget::set_max_stacks(Some(5_000));
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // The server exists before the limit is reached; it answers inline.
    shrapnel::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut buf = [0; 5];
        (&conn).read_exact(&mut buf).unwrap();
        (&conn).write_all(&buf).unwrap();
    });
    let refused = Rc::new(Cell::new(0));
    let r = refused.clone();
    let main = shrapnel::spawn(move || {
        let mut sleepers = Vec::new();
        loop {
            let c = shrapnel::spawn(|| shrapnel::sleep(Duration::from_secs(3600)));
            if c.dead() {
                let err = c.join().unwrap_err().to_string();
                assert!(
                    err.contains("vm.max_map_count") || err.contains("the most it allows"),
                    "{err}"
                );
                break;
            }
            sleepers.push(c);
        }
        // More attempts at the limit: each refused, none fatal.
        for _ in 0..100 {
            assert!(shrapnel::spawn(|| ()).dead());
        }
        r.set(sleepers.len());
        shrapnel::yield_slice(); // the sleepers start (and touch their stacks)
        let big = vec![7u8; 64 << 20];
        assert_eq!(big.iter().map(|&b| b as u64).sum::<u64>(), 7 * (64 << 20));
        let client = std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(b"hello").unwrap();
            let mut back = [0; 5];
            s.read_exact(&mut back).unwrap();
            back
        });
        while !client.is_finished() {
            shrapnel::sleep(Duration::from_millis(1)).unwrap();
        }
        assert_eq!(&client.join().unwrap(), b"hello");
        // Room again once coroutines end.
        for c in sleepers.drain(..10) {
            c.shutdown();
        }
        shrapnel::yield_slice();
        let again = shrapnel::spawn(|| 5);
        assert_eq!(again.join(), Ok(5));
        for c in &sleepers {
            c.shutdown();
        }
    });
    assert_eq!(shrapnel::event_loop(), 0);
    main.join().unwrap();
    println!("spawned {} coroutines before the limit", refused.get());
}

#[test]
fn at_the_mapping_limit_spawn_fails_cleanly_and_the_process_keeps_serving() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "at_the_mapping_limit_spawn_fails_cleanly_and_the_process_keeps_serving",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("coroutines before the limit"), "{stdout}");
    assert_eq!(
        stderr.matches("spawn at").count(),
        1,
        "one report, rate-limited: {stderr}"
    );
    assert!(
        stderr.contains("map_limit.rs"),
        "names the caller: {stderr}"
    );
}
