//! Latency reporting: a small echo server with one coroutine that hogs the CPU.
//!
//! `cargo run --example latency --features latency`: every two seconds `cruncher` computes
//! for 300 ms without yielding. With the default threshold (factor 1 = 0.2 s) each stall
//! prints Shrapnel's High Latency line with a stack sampled *while* it ran, naming
//! `crunch_numbers`; a longer stall also gets "still running" reports at 2x, 4x... the
//! threshold. Ctrl-C ends it.
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use shrapnel::net::TcpListener;

/// Burns CPU for `d` without yielding (the bug a latency warning is there to find).
#[inline(never)]
fn crunch_numbers(d: Duration) -> u64 {
    let t = Instant::now();
    let mut x = 1u64;
    while t.elapsed() < d {
        for _ in 0..1_000_000 {
            x = std::hint::black_box(
                x.wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407),
            );
        }
    }
    x
}

fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(7001);
    let old = shrapnel::latency::set_latency_warning(1.0).expect("1.0 is in range");
    println!(
        "latency: threshold {:.1} s (factor 1, was {old}); echo server on 127.0.0.1:{port}",
        0.2
    );
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap_or_else(|e| {
        eprintln!("latency: {e}");
        std::process::exit(1)
    });
    shrapnel::Builder::new()
        .name("acceptor")
        .spawn(move || loop {
            let Ok((conn, _)) = listener.accept() else {
                continue;
            };
            shrapnel::spawn(move || {
                let mut buf = [0; 4096];
                while let Ok(n @ 1..) = (&conn).read(&mut buf) {
                    if (&conn).write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        })
        .expect("spawn acceptor");
    let rounds: Option<u32> = std::env::var("LATENCY_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok());
    shrapnel::Builder::new()
        .name("cruncher")
        .spawn(move || {
            let mut round = 0;
            loop {
                shrapnel::sleep(Duration::from_secs(2))?;
                let ms = if round % 3 == 2 { 900 } else { 300 };
                println!("cruncher: computing for {ms} ms without yielding");
                crunch_numbers(Duration::from_millis(ms));
                round += 1;
                if Some(round) == rounds {
                    shrapnel::set_exit(0);
                }
            }
            #[allow(unreachable_code)]
            Ok::<(), shrapnel::Interrupted>(())
        })
        .expect("spawn cruncher");
    std::process::exit(shrapnel::event_loop());
}
