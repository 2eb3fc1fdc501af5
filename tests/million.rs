//! A million coroutines: in shared-stack mode each one costs a record and a heap copy of
//! its frames, no stack of its own and no memory mapping, so a million sleeping at once
//! fit in one process (with guarded stacks, the kernel's map limit stops them near 32,000).

use std::time::Duration;

/// Peak resident memory of this process so far, in KiB (Linux: ru_maxrss).
fn peak_rss_kib() -> i64 {
    // SAFETY: getrusage writes the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    ru.ru_maxrss as i64
}

#[test]
fn a_million_sleeping_coroutines_on_the_shared_stack() {
    const N: u64 = 1_000_000;
    shrapnel::reset();
    shrapnel::set_shared_stack_default(true);
    let rss0 = peak_rss_kib();
    let done = std::rc::Rc::new(std::cell::Cell::new(0u64));
    for i in 0..N {
        let done = done.clone();
        shrapnel::spawn(move || {
            shrapnel::sleep(Duration::from_millis(50)).unwrap();
            done.set(done.get() + i % 2 + 1);
        });
    }
    assert_eq!(shrapnel::live_coros().len() as u64, N);
    assert_eq!(shrapnel::event_loop(), 0);
    shrapnel::set_shared_stack_default(false);
    assert_eq!(done.get(), N / 2 * 3, "every coroutine ran to completion");
    let per = (peak_rss_kib() - rss0) * 1024 / N as i64;
    let st = shrapnel::stats();
    eprintln!(
        "peak RSS grew {per} bytes per coroutine; {} copies, {} bytes per copy",
        st.stack_copies,
        st.stack_bytes_copied / st.stack_copies.max(1)
    );
    // Release: about 920 bytes (a 424-byte frame copy, the record, the closure, a timer
    // entry, a registry slot). Debug builds' frames are about five times larger. Either way
    // far below one guarded stack's first page, let alone its 256 KiB.
    let bound = if cfg!(debug_assertions) {
        3 * 1024
    } else {
        1024
    };
    assert!(per <= bound, "{per} bytes per coroutine");
}
