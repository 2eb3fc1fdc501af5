//! Scheduler round trips, shrapnel against tokio's current-thread runtime (BENCHMARKS.md):
//!
//! - `yield`: one coroutine calls `yield_slice()` in a loop (target ≤ 0.2× one tokio task
//!   calling `yield_now().await`);
//! - `spawn_join`: one coroutine spawns an empty coroutine and joins it, in a loop (target
//!   ≤ 0.4× `tokio::spawn(async {}).await` inside `block_on`).
//!
//! Each side times its loop from inside (`iter_custom`), so setting up the coroutine or the
//! runtime is not counted. Build with `--features latency` to measure the same loops with
//! the latency debug feature compiled in; `ci/bench.sh` saves that run as a separate
//! criterion baseline and reports the on/off ratio.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use shrapnel_bench::short_measurement;

/// Run `body` as the only coroutine of this thread's scheduler and return what it returns.
fn in_coroutine<F: FnOnce() -> Duration + 'static>(body: F) -> Duration {
    let co = shrapnel::spawn(body);
    shrapnel::event_loop();
    co.join().expect("the benchmark coroutine finished")
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio current-thread runtime")
}

fn yield_round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("yield");
    short_measurement!(group);

    group.bench_function("shrapnel", |b| {
        b.iter_custom(|iters| {
            in_coroutine(move || {
                let start = Instant::now();
                for _ in 0..iters {
                    shrapnel::yield_slice();
                }
                start.elapsed()
            })
        });
    });

    group.bench_function("tokio", |b| {
        let rt = current_thread_runtime();
        b.iter_custom(|iters| {
            rt.block_on(async {
                tokio::spawn(async move {
                    let start = Instant::now();
                    for _ in 0..iters {
                        tokio::task::yield_now().await;
                    }
                    start.elapsed()
                })
                .await
                .expect("the benchmark task finished")
            })
        });
    });

    group.finish();
}

fn spawn_join(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawn_join");
    short_measurement!(group);

    group.bench_function("shrapnel", |b| {
        b.iter_custom(|iters| {
            in_coroutine(move || {
                let start = Instant::now();
                for _ in 0..iters {
                    let child = shrapnel::spawn(|| black_box(()));
                    child.join().expect("the empty coroutine finished");
                }
                start.elapsed()
            })
        });
    });

    group.bench_function("tokio", |b| {
        let rt = current_thread_runtime();
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    tokio::spawn(async { black_box(()) })
                        .await
                        .expect("the empty task finished");
                }
                start.elapsed()
            })
        });
    });

    group.finish();
}

criterion_group!(benches, yield_round_trip, spawn_join);
criterion_main!(benches);
