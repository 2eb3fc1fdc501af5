//! Spawn N coroutines that each sleep one second, then join them all:
//! `spawn_shrapnel [--mode guarded|shared] N`. Prints the time the spawning took, the total
//! time and the process's peak RSS (`spawn n=.. spawn_ms=.. total_ms=.. peak_rss_mib=..`);
//! `bench/echo.sh --spawn` runs it in a fresh process per case.
//!
//! `guarded` is today's runtime: default stacks (256 KiB of address space each, guard page,
//! pooled). Every guarded stack costs kernel memory mappings, so past tens of thousands the
//! spawn fails: that prints `failed: <error> after K coroutines` and exits 1.
//!
//! `shared` is the place for the shared-stack mode (ISSUES 10) when it exists: today it
//! prints `not implemented yet` and exits 2.

use std::time::Instant;

use shrapnel_bench::spawn::{report, SLEEP};

fn usage() -> ! {
    eprintln!("usage: spawn_shrapnel [--mode guarded|shared] N");
    std::process::exit(2);
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut mode = "guarded".to_string();
    if args.first().map(String::as_str) == Some("--mode") && args.len() >= 2 {
        mode = args.remove(1);
        args.remove(0);
    }
    let n: usize = match args.as_slice() {
        [n] => n.parse().unwrap_or_else(|_| usage()),
        _ => usage(),
    };
    match mode.as_str() {
        "guarded" => {}
        "shared" => {
            // The shared-stack mode goes here when the runtime has it.
            println!("not implemented yet");
            std::process::exit(2);
        }
        _ => usage(),
    }

    let start = Instant::now();
    let main = shrapnel::spawn(move || {
        let mut children = Vec::with_capacity(n);
        for i in 0..n {
            match shrapnel::Builder::new().spawn(|| {
                let _ = shrapnel::sleep(SLEEP);
            }) {
                Ok(c) => children.push(c),
                Err(e) => {
                    println!("failed: {e} after {i} coroutines");
                    std::process::exit(1);
                }
            }
        }
        let spawned = start.elapsed();
        for c in &children {
            c.join().expect("a sleeping coroutine finished");
        }
        spawned
    });
    shrapnel::event_loop();
    let spawned = main.join().expect("the spawning coroutine finished");
    report(n, spawned, start.elapsed());
}
