//! Channels: order and no loss from a plain thread, closing from either side, bounded
//! channels, an interrupted receive that loses nothing. The tests that need no thread are in
//! `portable/channel.rs`, shared with the bare-metal suite runners.

extern crate alloc;

mod support;

#[path = "portable/channel.rs"]
mod portable;

use std::time::Duration;

use shrapnel_core::channel::{self, RecvError};
use shrapnel_core::sched::{event_loop, with_timeout};
use shrapnel_core::*;
use support::*;

#[test]
fn a_million_messages_from_a_plain_thread_arrive_in_order() {
    setup();
    let (tx, rx) = channel::channel::<u64>();
    let producer = std::thread::spawn(move || {
        for i in 0..1_000_000u64 {
            tx.send(i).unwrap();
        }
    });
    let consumer = spawn(move || {
        let mut next = 0u64;
        while let Ok(i) = rx.recv() {
            assert_eq!(i, next, "out of order");
            next += 1;
        }
        next
    });
    event_loop();
    producer.join().unwrap();
    assert_eq!(consumer.join().unwrap(), 1_000_000);
}

#[test]
fn an_interrupted_receive_loses_no_message() {
    setup();
    let (tx, rx) = channel::channel::<u32>();
    let c = spawn(move || {
        let first = with_timeout(ms(20), || rx.recv());
        assert!(
            matches!(first, Err(_) | Ok(Err(RecvError::Interrupted(_)))),
            "{first:?}"
        );
        let mut got = Vec::new();
        while let Ok(v) = rx.recv() {
            got.push(v);
        }
        got
    });
    let producer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(60));
        for i in 0..100 {
            tx.send(i).unwrap();
        }
    });
    event_loop();
    producer.join().unwrap();
    assert_eq!(c.join().unwrap(), (0..100).collect::<Vec<_>>());
}
