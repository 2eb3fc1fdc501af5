//! The core's channel on firmware: a bounded channel between two coroutines (the sender
//! blocks for room and is woken by the receives), the receiver's wait cut short by
//! `with_timeout`, and closing (the last sender dropped: `recv` says `Closed`). The same
//! channel carries messages between schedulers on hosted targets; here it runs on the
//! spin lock and atomics of a Cortex-M3, idling with WFI while both sides wait.
#![no_std]
#![no_main]

use core::time::Duration;

use cortex_m_rt::entry;
use shrapnel_core::channel::{self, RecvError};
use shrapnel_core::{event_loop, with_timeout, Builder};
use shrapnel_cortex_m::{outln, say};

const MESSAGES: u32 = 1000;

#[entry]
fn main() -> ! {
    shrapnel_cortex_m::init();
    let (tx, rx) = channel::bounded::<u32>(4);
    let consumer = Builder::new().name("consumer").spawn(move || {
        // Nothing is sent for the first 20 ms: the timeout fires first.
        let early = with_timeout(Duration::from_millis(5), || rx.recv());
        say!(
            "consumer: recv with a 5 ms timeout: {}",
            if early.is_err() {
                "timed out"
            } else {
                "got one"
            }
        );
        let (mut sum, mut count, mut most_queued) = (0u64, 0u32, 0usize);
        loop {
            most_queued = most_queued.max(rx.len());
            match rx.recv() {
                Ok(v) => {
                    if v != count {
                        say!("consumer: out of order: got {v}, expected {count}");
                    }
                    sum += u64::from(v);
                    count += 1;
                }
                Err(RecvError::Closed) => break,
                Err(RecvError::Interrupted(i)) => {
                    say!("consumer: interrupted: {i}");
                    break;
                }
            }
        }
        say!("consumer: {count} messages, sum {sum}, at most {most_queued} queued; then Closed");
        (early.is_err(), count, sum, most_queued)
    });
    let producer = Builder::new().name("producer").spawn(move || {
        let _ = shrapnel_core::sleep(Duration::from_millis(20));
        for i in 0..MESSAGES {
            if tx.send(i).is_err() {
                say!("producer: the receiver is gone at {i}");
                return;
            }
        }
        say!("producer: sent {MESSAGES}; dropping the sender closes the channel");
    });
    let (Ok(consumer), Ok(_producer)) = (consumer, producer) else {
        panic!("spawning the two coroutines");
    };
    event_loop();
    let passed = match consumer.join() {
        Ok((timed_out, count, sum, most_queued)) => {
            timed_out
                && count == MESSAGES
                && sum == u64::from(MESSAGES) * u64::from(MESSAGES - 1) / 2
                && most_queued <= 4
        }
        Err(_) => false,
    };
    outln!("channel: {}", if passed { "passed" } else { "FAILED" });
    shrapnel_cortex_m::exit(passed)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    shrapnel_cortex_m::report_panic(info)
}
