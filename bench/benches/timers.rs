//! Timer insert + cancel with n other timers pending, n = 1k, 100k, 1M (BENCHMARKS.md:
//! ≤ 0.5× tokio, flat as n grows). One criterion group, `timers`, with three functions per n:
//!
//! - `shrapnel/n`: the scheduler path a user sees. `with_timeout(1 h, || ())` inside a
//!   coroutine: one clock read, one insert into the scheduler's timer queue, one cancel, and
//!   the timeout bookkeeping on the coroutine.
//! - `tokio/n`: `tokio::time::sleep(1 h)` created, pinned, polled once (which registers it
//!   with the timer driver) and dropped (which deregisters it), inside `block_on` of a
//!   current-thread runtime.
//! - `queue/n`: shrapnel-core's `TimerQueue::insert` + `cancel` alone, no clock read and no
//!   scheduler: the floor under `shrapnel/n`.
//!
//! How the n pending timers are made:
//! - shrapnel, n = 1k: n coroutines, each in `sleep(1 h)`.
//! - shrapnel, n ≥ 100k: n / 1000 coroutines, each nesting 999 `with_timeout(1 h, ..)` calls
//!   and sleeping 1 h in the innermost one, so each holds 1000 pending timers. n sleeping
//!   coroutines are not possible here: every guarded stack costs two kernel mappings and
//!   Linux's default `vm.max_map_count` (65530) caps a process near 32k of them.
//! - tokio: n `Sleep`s of 1 h, each boxed, pinned and polled once, held in a `Vec`.
//! - queue: n inserts with increasing deadlines.
//!
//! Every pending deadline is earlier than the timers being measured, as in a server whose
//! timeouts all have the same length. The pending timers are made once per n and kept across
//! all samples.

use std::future::Future;
use std::hint::black_box;
use std::pin::{pin, Pin};
use std::task::Poll;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use shrapnel_bench::short_measurement;
use shrapnel_core::timer::TimerQueue;

const HOUR: Duration = Duration::from_secs(3600);

/// The numbers of pending timers measured.
const PENDING: [usize; 3] = [1_000, 100_000, 1_000_000];

/// Pending timers held by one filler coroutine when n is too large for one coroutine each.
const TIMERS_PER_FILLER: usize = 1_000;

/// Stack for a filler coroutine nesting `TIMERS_PER_FILLER - 1` `with_timeout` calls.
const FILLER_STACK: usize = 1024 * 1024;

/// Hold `depth` more pending timers by nesting `with_timeout`, then sleep in the innermost.
fn nest_timeouts(depth: usize) {
    if depth == 0 {
        let _ = shrapnel::sleep(HOUR);
    } else {
        let _ = shrapnel::with_timeout(HOUR, || nest_timeouts(depth - 1));
    }
}

/// Leave `n` timers pending in this thread's scheduler (see the module doc for how).
fn fill_shrapnel(n: usize) {
    if n <= TIMERS_PER_FILLER {
        for _ in 0..n {
            shrapnel::spawn(|| {
                let _ = shrapnel::sleep(HOUR);
            });
        }
    } else {
        assert_eq!(
            n % TIMERS_PER_FILLER,
            0,
            "n is a multiple of the timers per filler"
        );
        for _ in 0..n / TIMERS_PER_FILLER {
            shrapnel::Builder::new()
                .stack_size(FILLER_STACK)
                .spawn(|| nest_timeouts(TIMERS_PER_FILLER - 1))
                .expect("a filler coroutine");
        }
    }
}

/// Run `iters` timeouts in a fresh coroutine while the fillers stay asleep; returns the
/// time they took.
fn measure_shrapnel(iters: u64) -> Duration {
    let co = shrapnel::spawn(move || {
        let start = Instant::now();
        for _ in 0..iters {
            let _ = black_box(shrapnel::with_timeout(HOUR, || black_box(())));
        }
        let elapsed = start.elapsed();
        shrapnel::set_exit(0);
        elapsed
    });
    shrapnel::event_loop();
    co.join().expect("the measuring coroutine finished")
}

/// Poll `fut` once, registering it with whatever it waits on, and drop the result.
async fn poll_once<F: Future>(mut fut: Pin<&mut F>) {
    std::future::poll_fn(|cx| {
        let _ = fut.as_mut().poll(cx);
        Poll::Ready(())
    })
    .await
}

fn timers(c: &mut Criterion) {
    let mut group = c.benchmark_group("timers");
    short_measurement!(group);

    for n in PENDING {
        group.bench_with_input(BenchmarkId::new("shrapnel", n), &n, |b, &n| {
            fill_shrapnel(n);
            let first = measure_shrapnel(1);
            assert!(first < HOUR, "the fillers are asleep, not timed out");
            assert_eq!(shrapnel::platform::timers_pending(), n, "n timers pending");
            b.iter_custom(measure_shrapnel);
            shrapnel::reset();
        });

        group.bench_with_input(BenchmarkId::new("tokio", n), &n, |b, &n| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("a tokio current-thread runtime");
            let pending = rt.block_on(async {
                let mut pending = Vec::with_capacity(n);
                for _ in 0..n {
                    let mut sleep = Box::pin(tokio::time::sleep(HOUR));
                    poll_once(sleep.as_mut()).await;
                    pending.push(sleep);
                }
                pending
            });
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let sleep = pin!(tokio::time::sleep(HOUR));
                        poll_once(sleep).await;
                    }
                    start.elapsed()
                })
            });
            drop(pending);
        });

        group.bench_with_input(BenchmarkId::new("queue", n), &n, |b, &n| {
            let mut queue = TimerQueue::new();
            let mut deadline = 0u64;
            for i in 0..n {
                deadline += 1;
                queue.insert(deadline, i as u64);
            }
            b.iter(|| {
                deadline += 1;
                let id = queue.insert(black_box(deadline), deadline);
                black_box(queue.cancel(id))
            });
            assert_eq!(queue.len(), n, "n timers still pending");
        });
    }

    group.finish();
}

criterion_group!(benches, timers);
criterion_main!(benches);
