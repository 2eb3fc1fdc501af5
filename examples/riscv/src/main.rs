//! shrapnel-core on bare-metal RISC-V in QEMU (virt, RV32IMAC): coroutines that sleep on the
//! CLINT clock, yield, hand a mutex over, pass items through a fifo, time out, (with feature
//! `latency`) run past the latency threshold, and a final `where_all`. Every line it prints
//! is checked by `ci/riscv-embedded.sh`; the run ends with the test finisher's status.
//!
//! The same story as the Cortex-M demo (examples/cortex-m/src/main.rs), in phases, one
//! feature each: spawn a few coroutines, `event_loop()` until they are all done, spawn the
//! next few.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::rc::Rc;
use core::time::Duration;

use shrapnel_core::sync::{Fifo, Mutex};
use shrapnel_core::{event_loop, set_exit, sleep, where_all, with_timeout, yield_slice};
use shrapnel_core::{Builder, Coro};
use shrapnel_riscv::{millis, outln, say};

shrapnel_riscv::entry!(main);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Spawn a named coroutine and say so.
fn spawn<T: 'static>(name: &'static str, f: impl FnOnce() -> T + 'static) -> Coro<T> {
    let co = match Builder::new().name(name).spawn(f) {
        Ok(co) => co,
        Err(e) => panic!("spawning '{name}': {e}"),
    };
    say!("spawned #{} '{}'", co.id(), name);
    co
}

/// Run the scheduler until every coroutine of the phase has finished.
fn run_phase(title: &str) {
    let code = event_loop();
    say!("{title}: done (event_loop returned {code})");
}

fn sleeps() {
    say!("-- sleep: three coroutines sleep 30, 10 and 20 ms");
    for (name, d) in [("sleeper-30", 30), ("sleeper-10", 10), ("sleeper-20", 20)] {
        spawn(name, move || {
            let t0 = millis();
            sleep(ms(d)).expect("nobody interrupts the sleepers");
            say!("{name} woke after {} ms", millis() - t0);
        });
    }
    run_phase("sleep");
}

fn yields() {
    say!("-- yield: two coroutines take turns with yield_slice");
    for name in ["ping", "pong"] {
        spawn(name, move || {
            for round in 0..3 {
                say!("{name} {round}");
                yield_slice();
            }
        });
    }
    run_phase("yield");
}

fn mutex_and_timeout() {
    say!("-- mutex: 'holder' keeps it 20 ms; 'waiter' times out after 5 ms, then waits");
    let m: Rc<Mutex> = Rc::new(Mutex::new(()));
    let held = m.clone();
    spawn("holder", move || {
        let guard = held.lock().expect("the mutex is free");
        say!("holder: locked the mutex, working 20 ms");
        sleep(ms(20)).expect("not interrupted");
        say!("holder: unlocking");
        drop(guard);
    });
    spawn("waiter", move || {
        let t0 = millis();
        match with_timeout(ms(5), || m.lock().map(drop)) {
            Err(_timeout) => say!(
                "waiter: with_timeout(5 ms) fired after {} ms waiting for the mutex (owner #{})",
                millis() - t0,
                m.owner().unwrap_or(0)
            ),
            Ok(_) => say!("waiter: got the mutex before the timeout (unexpected)"),
        }
        let _guard = m.lock().expect("not interrupted");
        say!(
            "waiter: got the mutex from holder after {} ms (hand-off)",
            millis() - t0
        );
    });
    run_phase("mutex");
}

fn fifo() {
    say!("-- fifo: 'producer' pushes 3 items 5 ms apart, 'consumer' pops them");
    let q: Rc<Fifo<u32>> = Rc::new(Fifo::new());
    let rx = q.clone();
    spawn("consumer", move || {
        for _ in 0..3 {
            let item = rx.pop().expect("not interrupted");
            say!("consumer: got item {item} from the fifo");
        }
    });
    spawn("producer", move || {
        for item in 1..=3 {
            sleep(ms(5)).expect("not interrupted");
            say!("producer: pushing item {item}");
            q.push(item);
        }
    });
    run_phase("fifo");
}

#[cfg(feature = "latency")]
fn latency() {
    let _old = shrapnel_core::latency::set_latency_warning(0.25).expect("0.25 is in range");
    say!("-- latency: threshold 50 ms (factor 0.25); 'busy' spins 120 ms");
    spawn("busy", || {
        let t0 = millis();
        while millis() - t0 < 120 {
            core::hint::spin_loop();
        }
        yield_slice();
        say!("busy: done spinning");
    });
    run_phase("latency");
}

#[cfg(not(feature = "latency"))]
fn latency() {
    say!("-- latency: skipped (build with --features latency)");
}

fn finale() {
    say!("-- where_all: a sleeper and a fifo reader are blocked while 'reporter' looks");
    spawn("sleepy", || {
        let _ = sleep(Duration::from_secs(10));
    });
    let q: Rc<Fifo<u32>> = Rc::new(Fifo::new());
    let rx = q.clone();
    spawn("listener", move || {
        let _ = rx.pop();
    });
    spawn("reporter", move || {
        yield_slice(); // let the other two block first
        say!("where_all:");
        for info in where_all() {
            outln!("  {}", info);
        }
        let _keep_the_fifo = &q;
        set_exit(0);
    });
    run_phase("where_all");
}

fn main() -> ! {
    shrapnel_riscv::init();
    say!(
        "shrapnel-core on RISC-V (QEMU virt, RV32IMAC, machine mode): {} KiB heap, mtime at {} MHz",
        shrapnel_riscv::HEAP_SIZE / 1024,
        shrapnel_riscv::MTIME_HZ / 1_000_000
    );
    sleeps();
    yields();
    mutex_and_timeout();
    fifo();
    latency();
    finale();
    let stats = shrapnel_core::sched::stats();
    let (used, free) = shrapnel_riscv::heap_usage();
    say!(
        "stats: {} coroutines, {} switches, {} passes; heap {} B used, {} B free",
        stats.spawned,
        stats.switches,
        stats.passes,
        used,
        free
    );
    say!("demo: all phases done");
    shrapnel_riscv::exit(true)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    shrapnel_riscv::report_panic(info)
}
