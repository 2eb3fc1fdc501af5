//! A message's round trip between two threads (issue 12 item 5; BENCHMARKS.md): one side
//! sends a number, the other receives it and sends it back, and the first receives it;
//! criterion's time per iteration is one such round trip (two messages, two cross-thread
//! wake-ups when the receiver was blocked). Target: shrapnel's ≤ tokio mpsc's.
//!
//! - `shrapnel`: two schedulers (`PerCore::new(2).pin(true)`: CPUs 0 and 1), a coroutine on
//!   each, `shrapnel::channel` unbounded channels; a blocked receiver is woken through its
//!   scheduler's poller notify (an eventfd write on Linux).
//! - `shrapnel-idle-spin`: the same, each scheduler spinning up to 30 µs before it blocks
//!   (`RuntimeConfig::idle_spin`): a message that comes within the window is found by the
//!   receiver's next spin; its scheduler's thread was not asleep in `epoll_wait`.
//! - `shrapnel-same-scheduler`: the same two coroutines on one scheduler (the bench's
//!   thread), for comparison with what tokio's multi-thread runtime does (below).
//! - `tokio-multi-thread`: two tasks on a multi-thread runtime with 2 workers (pinned to
//!   CPUs 0 and 1), `tokio::sync::mpsc` unbounded channels. tokio decides where each task
//!   runs: a task woken from a worker goes to that worker's queue, so the pair may share
//!   one worker for long stretches. Before the group, an untimed run of 100,000 round trips
//!   counts how many receives ran on another thread than the receive before; the line is
//!   printed and written to `channel_crossings.txt` in `$CRITERION_HOME` (default
//!   `target/criterion`), where `ci/bench.sh` reads it.
//! - `tokio-two-runtimes`: each task on its own current-thread runtime on its own thread
//!   (pinned to CPUs 0 and 1), the same channels: every message crosses threads, as with
//!   shrapnel's two schedulers.
//! - `std`: two plain threads (pinned to CPUs 0 and 1), `std::sync::mpsc` channels.
//!
//! Each side times its loop from inside (`iter_custom`) after a short warm-up, so starting
//! the threads, schedulers or runtime is not counted.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use shrapnel::channel::{self, Sender};
use shrapnel::per_core::PerCore;
use shrapnel_bench::pin::pin_this_thread;
use shrapnel_bench::short_measurement;

/// Round trips before the timed ones, so both sides are running and caches are warm.
const WARM_UP_TRIPS: u64 = 1000;

/// Where one scheduler's first coroutine leaves its sender for the other's.
type Slot = Arc<Mutex<Option<Sender<u64>>>>;

fn take_when_ready(slot: &Slot) -> Sender<u64> {
    loop {
        if let Some(tx) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return tx;
        }
        shrapnel::sleep(Duration::from_micros(100)).expect("not interrupted in the bench");
    }
}

/// `iters` round trips between two pinned schedulers, each spinning up to `idle_spin`
/// before it blocks; the time they took.
fn shrapnel_round_trips(iters: u64, idle_spin: Option<Duration>) -> Duration {
    let slots: [Slot; 2] = Default::default();
    let elapsed = Arc::new(Mutex::new(None));
    let (slots_in, elapsed_in) = (slots.clone(), elapsed.clone());
    let config = shrapnel::RuntimeConfig {
        idle_spin,
        ..Default::default()
    };
    PerCore::new(2)
        .pin(true)
        .config(config)
        .run(move |core| {
            let (tx, rx) = channel::channel::<u64>();
            *slots_in[core].lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
            let peer = take_when_ready(&slots_in[1 - core]);
            if core == 0 {
                let trip = |i| {
                    peer.send(i).expect("the echoing scheduler is alive");
                    rx.recv().expect("the echoing scheduler answers")
                };
                for i in 0..WARM_UP_TRIPS {
                    trip(i);
                }
                let start = Instant::now();
                for i in 0..iters {
                    std::hint::black_box(trip(i));
                }
                *elapsed_in.lock().unwrap_or_else(|e| e.into_inner()) = Some(start.elapsed());
                // Returning drops `peer`: the other side's recv ends with Closed.
            } else {
                while let Ok(v) = rx.recv() {
                    if peer.send(v).is_err() {
                        break;
                    }
                }
            }
        })
        .expect("both schedulers ran");
    let taken = elapsed.lock().unwrap_or_else(|e| e.into_inner()).take();
    taken.expect("core 0 timed its round trips")
}

/// The same round trips between two coroutines of this thread's scheduler.
fn shrapnel_same_scheduler_round_trips(iters: u64) -> Duration {
    let (to_echo, echo_rx) = channel::channel::<u64>();
    let (to_timer, timer_rx) = channel::channel::<u64>();
    shrapnel::spawn(move || {
        while let Ok(v) = echo_rx.recv() {
            if to_timer.send(v).is_err() {
                break;
            }
        }
    });
    let timer = shrapnel::spawn(move || {
        let trip = |i| {
            to_echo.send(i).expect("the echoing coroutine is alive");
            timer_rx.recv().expect("the echoing coroutine answers")
        };
        for i in 0..WARM_UP_TRIPS {
            trip(i);
        }
        let start = Instant::now();
        for i in 0..iters {
            std::hint::black_box(trip(i));
        }
        start.elapsed()
    });
    shrapnel::event_loop();
    timer.join().expect("the timing coroutine finished")
}

/// The side that answers, for the tokio benches: receive, send back, until closed.
async fn tokio_echo(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<u64>,
    tx: tokio::sync::mpsc::UnboundedSender<u64>,
    moved: Option<Arc<ThreadCrossings>>,
) {
    while let Some(v) = rx.recv().await {
        if let Some(m) = &moved {
            m.note();
        }
        if tx.send(v).is_err() {
            break;
        }
    }
}

/// The side that times, for the tokio benches: `iters` round trips after the warm-up.
async fn tokio_time(
    tx: tokio::sync::mpsc::UnboundedSender<u64>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<u64>,
    iters: u64,
    moved: Option<Arc<ThreadCrossings>>,
) -> Duration {
    for i in 0..WARM_UP_TRIPS {
        tx.send(i).expect("the echoing task is alive");
        rx.recv().await.expect("the echoing task answers");
    }
    let start = Instant::now();
    for i in 0..iters {
        tx.send(i).expect("the echoing task is alive");
        std::hint::black_box(rx.recv().await.expect("the echoing task answers"));
        if let Some(m) = &moved {
            m.note();
        }
    }
    start.elapsed()
}

/// How many messages were received on a different thread than the previous one: on a
/// multi-thread runtime, whether the pair really talks across threads.
#[derive(Default)]
struct ThreadCrossings {
    last: Mutex<Option<ThreadId>>,
    messages: AtomicU64,
    crossed: AtomicU64,
}

impl ThreadCrossings {
    fn note(&self) {
        let me = std::thread::current().id();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| t != me) {
            self.crossed.fetch_add(1, Ordering::Relaxed);
        }
        *last = Some(me);
        self.messages.fetch_add(1, Ordering::Relaxed);
    }
}

fn tokio_multi_thread_round_trips(iters: u64, moved: Option<Arc<ThreadCrossings>>) -> Duration {
    let next_cpu = AtomicUsize::new(0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .on_thread_start(move || pin_this_thread(next_cpu.fetch_add(1, Ordering::Relaxed) % 2))
        .build()
        .expect("a tokio multi-thread runtime");
    let (to_echo, echo_rx) = tokio::sync::mpsc::unbounded_channel();
    let (to_timer, timer_rx) = tokio::sync::mpsc::unbounded_channel();
    let echo = rt.spawn(tokio_echo(echo_rx, to_timer, moved.clone()));
    let timer = rt.spawn(tokio_time(to_echo, timer_rx, iters, moved));
    rt.block_on(async move {
        let elapsed = timer.await.expect("the timing task finished");
        echo.await.expect("the echoing task finished");
        elapsed
    })
}

fn tokio_two_runtimes_round_trips(iters: u64) -> Duration {
    let current_thread = || {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a tokio current-thread runtime")
    };
    let (to_echo, echo_rx) = tokio::sync::mpsc::unbounded_channel();
    let (to_timer, timer_rx) = tokio::sync::mpsc::unbounded_channel();
    let echo = std::thread::spawn(move || {
        pin_this_thread(1);
        current_thread().block_on(tokio_echo(echo_rx, to_timer, None));
    });
    let timer = std::thread::spawn(move || {
        pin_this_thread(0);
        current_thread().block_on(tokio_time(to_echo, timer_rx, iters, None))
    });
    let elapsed = timer.join().expect("the timing thread finished");
    echo.join().expect("the echoing thread finished");
    elapsed
}

fn std_round_trips(iters: u64) -> Duration {
    let (to_echo, echo_rx) = std::sync::mpsc::channel::<u64>();
    let (to_timer, timer_rx) = std::sync::mpsc::channel::<u64>();
    let echo = std::thread::spawn(move || {
        pin_this_thread(1);
        while let Ok(v) = echo_rx.recv() {
            if to_timer.send(v).is_err() {
                break;
            }
        }
    });
    let timer = std::thread::spawn(move || {
        pin_this_thread(0);
        let trip = |i| {
            to_echo.send(i).expect("the echoing thread is alive");
            timer_rx.recv().expect("the echoing thread answers")
        };
        for i in 0..WARM_UP_TRIPS {
            trip(i);
        }
        let start = Instant::now();
        for i in 0..iters {
            std::hint::black_box(trip(i));
        }
        start.elapsed()
    });
    let elapsed = timer.join().expect("the timing thread finished");
    echo.join().expect("the echoing thread finished");
    elapsed
}

fn ping_pong(c: &mut Criterion) {
    // Not timed: how often tokio's pair of tasks really received on different threads.
    let moved = Arc::new(ThreadCrossings::default());
    tokio_multi_thread_round_trips(100_000, Some(moved.clone()));
    let (crossed, messages) = (
        moved.crossed.load(Ordering::Relaxed),
        moved.messages.load(Ordering::Relaxed),
    );
    let line = format!(
        "channel_ping_pong/tokio-multi-thread: {crossed} of {messages} receives ({:.1}%) on \
         another thread than the receive before",
        crossed as f64 * 100.0 / messages.max(1) as f64
    );
    println!("{line}");
    let dir = std::env::var_os("CRITERION_HOME").unwrap_or_else(|| "target/criterion".into());
    let file = std::path::Path::new(&dir).join("channel_crossings.txt");
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&file, line)) {
        eprintln!("channel: cannot write {}: {e}", file.display());
    }

    let mut group = c.benchmark_group("channel_ping_pong");
    short_measurement!(group);
    group.bench_function("shrapnel", |b| {
        b.iter_custom(|iters| shrapnel_round_trips(iters, None))
    });
    group.bench_function("shrapnel-idle-spin", |b| {
        b.iter_custom(|iters| shrapnel_round_trips(iters, Some(Duration::from_micros(30))))
    });
    group.bench_function("shrapnel-same-scheduler", |b| {
        b.iter_custom(shrapnel_same_scheduler_round_trips)
    });
    group.bench_function("tokio-multi-thread", |b| {
        b.iter_custom(|iters| tokio_multi_thread_round_trips(iters, None))
    });
    group.bench_function("tokio-two-runtimes", |b| {
        b.iter_custom(tokio_two_runtimes_round_trips)
    });
    group.bench_function("std", |b| b.iter_custom(std_round_trips));
    group.finish();
}

criterion_group!(benches, ping_pong);
criterion_main!(benches);
