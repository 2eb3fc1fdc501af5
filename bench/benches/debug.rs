//! `where_all` with the `stacks` feature over 10 000 suspended coroutines (the debugging
//! issue's target: under 100 ms), three ways:
//!
//! - `where_all/core_10k`: shrapnel-core's snapshots, each stack walked from its saved
//!   frame record to raw return addresses;
//! - `where_all/symbolized_10k`: `shrapnel::where_all()`, the same with every address
//!   symbolized (the runtime caches symbols per address, so after the first call this is
//!   lookups; what the first call in a process costs more, loading the debug info and
//!   filling that cache, is printed by this bench and reported by `ci/bench.sh`);
//! - `where_all/printed_10k`: that, formatted as the text a SIGUSR1 dump or the backdoor's
//!   `where_all` prints.
//!
//! Each of the 10 000 coroutines is three calls deep in its own code and blocked on a
//! condition variable (default 256 KiB pooled stacks, 20 000 mappings: under Linux's
//! default `vm.max_map_count`). The snapshots are taken from a coroutine, as the backdoor
//! takes them. Build with `--features stacks` (`ci/bench.sh` does).

use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use shrapnel::sync::Condvar;

/// Suspended coroutines in the snapshot.
const COROUTINES: usize = 10_000;

#[inline(never)]
fn wait_level_3(cv: &Condvar<()>) {
    let _ = black_box(cv.wait());
}

#[inline(never)]
fn wait_level_2(cv: &Condvar<()>) {
    wait_level_3(cv);
    black_box(());
}

#[inline(never)]
fn wait_level_1(cv: &Condvar<()>) {
    wait_level_2(cv);
    black_box(());
}

/// Run `measure` in a coroutine while `COROUTINES` others are suspended three calls deep;
/// returns what it returns. The sleepers are woken and finish before this returns.
fn with_sleepers<R: 'static>(measure: impl FnOnce() -> R + 'static) -> R {
    let cv = Rc::new(Condvar::new());
    for _ in 0..COROUTINES {
        let cv = cv.clone();
        shrapnel::spawn(move || wait_level_1(&cv));
    }
    let wake = cv.clone();
    let co = shrapnel::spawn(move || {
        shrapnel::yield_slice(); // every sleeper has blocked
        let r = measure();
        wake.wake_all(());
        r
    });
    assert_eq!(shrapnel::event_loop(), 0);
    co.join().expect("the measuring coroutine finished")
}

fn where_all(c: &mut Criterion) {
    // The first call in a process does two things the later ones do not: load the debug
    // info (once per process, whatever is symbolized first) and fill the symbol cache (once
    // per address). Measured apart: one stack symbolized first, then the first where_all.
    let start = Instant::now();
    black_box(shrapnel::tb::stack_string());
    let load = start.elapsed();
    let (fill, frames) = with_sleepers(|| {
        let start = Instant::now();
        let all = shrapnel::where_all();
        let fill = start.elapsed();
        let frames = all.iter().map(|w| w.stack.len()).sum::<usize>();
        assert_eq!(all.len(), COROUTINES + 1, "every coroutine in the snapshot");
        (fill, frames)
    });
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "where_all cold (first call, {COROUTINES} coroutines, {frames} symbolized frames): \
         {:.1} ms = loading debug info {:.1} ms + filling the symbol cache {:.1} ms",
        ms(load + fill),
        ms(load),
        ms(fill)
    );
    assert!(
        frames >= 3 * COROUTINES,
        "the stacks were walked: {frames} frames"
    );

    let mut group = c.benchmark_group("where_all");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sample_size(10);
    group.bench_function("core_10k", |b| {
        b.iter_custom(|iters| {
            with_sleepers(move || {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(shrapnel::platform::debug::where_all());
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("symbolized_10k", |b| {
        b.iter_custom(|iters| {
            with_sleepers(move || {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(shrapnel::where_all());
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("printed_10k", |b| {
        b.iter_custom(|iters| {
            with_sleepers(move || {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(shrapnel::where_all().to_string());
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, where_all);
criterion_main!(benches);
