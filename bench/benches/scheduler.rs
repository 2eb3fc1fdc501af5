//! Scheduler round trips, shrapnel against tokio's current-thread runtime (BENCHMARKS.md):
//!
//! - `yield`: one coroutine calls `yield_slice()` in a loop (target ≤ 0.2× one tokio task
//!   calling `yield_now().await`);
//! - `spawn_join`: one coroutine spawns an empty coroutine and joins it, in a loop (target
//!   ≤ 0.4× `tokio::spawn(async {}).await` inside `block_on`).
//!
//! Shared-stack mode beside guarded stacks (what the copies cost): `yield/shrapnel-pair`
//! and `yield/shrapnel-pair-shared` time two coroutines taking turns (per yield; on the
//! shared stack every resumption copies the other's frames off and its own back), and
//! `spawn_join/shrapnel-shared` spawns and joins on the shared stack.
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

/// [`in_coroutine`], on the shared run stack (`shared`) or a guarded stack of its own.
fn in_coroutine_on<F: FnOnce() -> Duration + 'static>(shared: bool, body: F) -> Duration {
    let co = shrapnel::Builder::new()
        .shared_stack(shared)
        .spawn(body)
        .expect("the benchmark coroutine started");
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

    // Two coroutines taking turns: each yield resumes the other. On the shared stack every
    // resumption first copies the other's frames off the run stack and its own back.
    for (name, shared) in [("shrapnel-pair", false), ("shrapnel-pair-shared", true)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                in_coroutine_on(shared, move || {
                    let stop = std::rc::Rc::new(std::cell::Cell::new(false));
                    let partner = {
                        let stop = stop.clone();
                        shrapnel::Builder::new()
                            .shared_stack(shared)
                            .spawn(move || {
                                while !stop.get() {
                                    shrapnel::yield_slice();
                                }
                            })
                            .expect("the partner coroutine started")
                    };
                    let start = Instant::now();
                    for _ in 0..iters {
                        shrapnel::yield_slice();
                    }
                    let elapsed = start.elapsed();
                    stop.set(true);
                    partner.join().expect("the partner finished");
                    elapsed
                })
            });
        });
    }

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

    group.bench_function("shrapnel-shared", |b| {
        b.iter_custom(|iters| {
            in_coroutine_on(true, move || {
                let start = Instant::now();
                for _ in 0..iters {
                    let child = shrapnel::Builder::new()
                        .shared_stack(true)
                        .spawn(|| black_box(()))
                        .expect("the run stack is there");
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
