//! At a stack limit the process keeps working: in a child process, spawn coroutines with
//! guarded stacks until the runtime refuses one (where each stack is two kernel mappings,
//! at the budget that keeps a reserve of `vm.max_map_count` for everything else; where
//! guard pages are made in place, at a cap of 5,000 stacks set for the test), then
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

const MANY_CHILD: &str = "SHRAPNEL_MANY_GUARDED_CHILD";

/// Where the kernel makes guard pages in place, guarded stacks come 64 to a mapping: more
/// coroutines than two mappings each would allow live at once, and the process's mapping
/// count stays far from the limit.
fn many_child() {
    if shrapnel::stack::budget::max_stacks().is_some() {
        println!("guard pages split mappings here");
        return;
    }
    let limit: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(65_530);
    let count = (limit / 2 + 5_000).min(200_000);
    shrapnel::configure(shrapnel::RuntimeConfig {
        default_stack_size: 32 * 1024,
        ..Default::default()
    })
    .unwrap();
    let main = shrapnel::spawn(move || {
        let sleepers: Vec<_> = (0..count)
            .map(|_| {
                shrapnel::Builder::new()
                    .spawn(|| shrapnel::sleep(Duration::from_secs(3600)).is_err())
                    .expect("a guarded stack")
            })
            .collect();
        shrapnel::yield_slice(); // every sleeper runs on its stack and blocks
        let maps = std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .count();
        let live = shrapnel::stack::budget::live_stacks();
        for c in &sleepers {
            c.shutdown();
        }
        let interrupted = sleepers.iter().filter(|c| c.join() == Ok(true)).count();
        (maps, live, interrupted)
    });
    assert_eq!(shrapnel::event_loop(), 0);
    let (maps, live, interrupted) = main.join().unwrap();
    println!("count={count} live={live} interrupted={interrupted} maps={maps} limit={limit}");
}

#[test]
fn more_guarded_coroutines_than_split_guards_would_allow() {
    if std::env::var_os(MANY_CHILD).is_some() {
        return many_child();
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "more_guarded_coroutines_than_split_guards_would_allow",
            "--nocapture",
        ])
        .env(MANY_CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    if stdout.contains("guard pages split mappings here") {
        return;
    }
    let field = |name: &str| -> usize {
        stdout
            .split(&format!("{name}="))
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {stdout}"))
    };
    let (count, limit) = (field("count"), field("limit"));
    assert!(count > limit / 2, "{stdout}");
    assert!(field("live") >= count, "{stdout}");
    assert_eq!(field("interrupted"), count, "{stdout}");
    assert!(field("maps") < limit / 8, "{stdout}");
}
