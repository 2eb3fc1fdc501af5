//! Spawn N coroutines that each sleep one second, then join them all:
//! `spawn_shrapnel [--mode guarded|shared] N`. Prints the time the spawning took, the total
//! time and the process's peak RSS (`spawn n=.. spawn_ms=.. total_ms=.. peak_rss_mib=..`);
//! `bench/echo.sh` runs it in a fresh process per case.
//!
//! `guarded`: every coroutine has its own default stack (256 KiB of address space, guard
//! page, pooled). Every guarded stack costs kernel memory mappings, so past tens of
//! thousands the spawn fails: that prints `failed: <error> after K coroutines` and exits 1.
//!
//! `shared`: every coroutine runs on the scheduler's shared run stack
//! (`Builder::shared_stack(true)`); asleep, it keeps only a heap copy of the stack it used.
//! The spawning coroutine has its own stack in both modes.

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
    let shared = match mode.as_str() {
        "guarded" => false,
        "shared" => true,
        _ => usage(),
    };

    let start = Instant::now();
    let main = shrapnel::Builder::new().shared_stack(false).spawn(move || {
        let mut children = Vec::with_capacity(n);
        for i in 0..n {
            match shrapnel::Builder::new().shared_stack(shared).spawn(|| {
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
    let main = main.unwrap_or_else(|e| {
        println!("failed: {e} (the spawning coroutine)");
        std::process::exit(1);
    });
    shrapnel::event_loop();
    let spawned = main.join().expect("the spawning coroutine finished");
    report(n, spawned, start.elapsed());
}
