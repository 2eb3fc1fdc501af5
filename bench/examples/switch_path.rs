//! The scheduler's switch path in a small program, for `bench/code-size.sh`: one coroutine
//! yields a thousand times under `event_loop`, so `event_loop` (with `SchedState::run`
//! inlined) and `yield_slice` are compiled exactly as a program uses them. Built with the
//! debug features off, with `latency` and with `stacks`, their sizes and instructions show
//! what each feature costs on that path.

fn main() {
    let co = shrapnel::spawn(|| {
        for _ in 0..1_000 {
            shrapnel::yield_slice();
        }
    });
    assert_eq!(shrapnel::event_loop(), 0);
    co.join().expect("the yielding coroutine finished");
}
