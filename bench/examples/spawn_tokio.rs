//! The tokio side of the spawn benchmark: N tasks on a current-thread runtime that each
//! sleep one second, then all joined: `spawn_tokio N`. Prints the same line as
//! `spawn_shrapnel` (`spawn n=.. spawn_ms=.. total_ms=.. peak_rss_mib=..`).

use std::time::Instant;

use shrapnel_bench::spawn::{report, SLEEP};

fn main() {
    let n: usize = match std::env::args().nth(1).map(|s| s.parse()) {
        Some(Ok(n)) => n,
        _ => {
            eprintln!("usage: spawn_tokio N");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio current-thread runtime");
    let start = Instant::now();
    let spawned = rt.block_on(async move {
        let mut children = Vec::with_capacity(n);
        for _ in 0..n {
            children.push(tokio::spawn(tokio::time::sleep(SLEEP)));
        }
        let spawned = start.elapsed();
        for c in children {
            c.await.expect("a sleeping task finished");
        }
        spawned
    });
    report(n, spawned, start.elapsed());
}
