//! Raw context switch: one resume plus one suspend, shrapnel-core's `arch::Native` against
//! corosensei (target ≤ 1.1×, BENCHMARKS.md).
//!
//! Both sides do the same work per iteration: the caller resumes the coroutine with a
//! word, the coroutine adds one and suspends back with it. No scheduler is involved; ours
//! uses the `ContextSwitch` protocol directly, exactly as `sched/state.rs` does
//! (`switch(root_slot(base), sp, arg)` to resume, `switch(&mut sp, *root_slot(base), arg)` to
//! suspend).

use std::cell::Cell;
use std::hint::black_box;

use corosensei::{Coroutine, CoroutineResult, Yielder};
use criterion::{criterion_group, criterion_main, Criterion};
use shrapnel_bench::short_measurement;
use shrapnel_core::arch::{ContextSwitch, Native};
use shrapnel_core::stack::{HeapStack, Stack};

/// What the raw coroutine needs to suspend itself: where to save its context and the top
/// of its stack (whose root slot holds the resumer's context).
struct RawCoro {
    sp: Cell<usize>,
    base: *mut u8,
}

/// The body of the raw coroutine: add one to what it was resumed with, suspend with that,
/// forever. It owns nothing, so abandoning it suspended (dropping its stack) is harmless.
unsafe extern "C" fn echo_plus_one(mut arg: usize, data: *mut u8) -> ! {
    // SAFETY: `data` is the `RawCoro` given to `init`, which outlives every resumption
    // (the benchmark keeps it alive until after the last switch into this stack).
    let coro = unsafe { &*(data as *const RawCoro) };
    loop {
        // SAFETY: we run on the stack at `coro.base`, resumed through its root slot, which
        // therefore holds the resumer's live context; `coro.sp` is ours to overwrite.
        arg = unsafe { Native::switch(coro.sp.as_ptr(), *Native::root_slot(coro.base), arg + 1) };
    }
}

fn raw_switch(c: &mut Criterion) {
    let mut group = c.benchmark_group("switch");
    short_measurement!(group);

    group.bench_function("shrapnel", |b| {
        let stack = HeapStack::new(64 * 1024).expect("a 64 KiB heap stack");
        let base = stack.base().as_ptr();
        let coro = Box::new(RawCoro {
            sp: Cell::new(0),
            base,
        });
        // SAFETY: the stack is ours, alive for this whole closure, and its base 16-aligned
        // (the `Stack` contract); `data` points at `coro`, which lives as long as the stack.
        let sp = unsafe { Native::init(base, echo_plus_one, &*coro as *const RawCoro as *mut u8) };
        coro.sp.set(sp);
        let mut x = 0usize;
        b.iter(|| {
            // SAFETY: `coro.sp` holds the context the coroutine saved when it last suspended
            // (or `init`'s), never resumed since; its stack is alive.
            x = unsafe { Native::switch(Native::root_slot(base), coro.sp.get(), black_box(x)) };
        });
        assert!(x > 0, "the coroutine ran");
        drop(stack);
    });

    group.bench_function("corosensei", |b| {
        let mut co = Coroutine::new(|yielder: &Yielder<usize, usize>, mut x: usize| loop {
            x = yielder.suspend(x + 1);
        });
        let mut x = 0usize;
        b.iter(|| match co.resume(black_box(x)) {
            CoroutineResult::Yield(y) => x = y,
            CoroutineResult::Return(()) => unreachable!("the coroutine loops forever"),
        });
        assert!(x > 0, "the coroutine ran");
    });

    group.finish();
}

criterion_group!(benches, raw_switch);
criterion_main!(benches);
