//! Channels: order and no loss from a plain thread, closing from either side, bounded
//! channels, an interrupted receive that loses nothing.

extern crate alloc;

mod support;

use std::time::Duration;

use shrapnel_core::channel::{self, RecvError, SendError, TryRecvError, TrySendError};
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
fn closing_either_side_is_seen_by_the_other() {
    setup();
    let (tx, rx) = channel::channel::<&'static str>();
    let tx2 = tx.clone();
    tx.send("queued before the close").unwrap();
    drop(tx);
    assert_eq!(rx.try_recv(), Ok("queued before the close"));
    assert_eq!(
        rx.try_recv(),
        Err(TryRecvError::Empty),
        "a clone still sends"
    );
    let waiter = spawn(move || rx.recv());
    spawn(move || {
        sched::sleep(ms(20)).unwrap();
        drop(tx2); // the last sender: the blocked receiver wakes with Closed
    });
    event_loop();
    assert_eq!(waiter.join().unwrap(), Err(RecvError::Closed));

    let (tx, rx) = channel::channel::<u8>();
    drop(rx);
    assert!(tx.is_closed());
    assert_eq!(tx.send(7), Err(SendError::Closed(7)));
    assert_eq!(tx.try_send(8), Err(TrySendError::Closed(8)));
}

#[test]
fn a_bounded_channel_refuses_past_its_capacity_and_send_waits_for_room() {
    setup();
    let (tx, rx) = channel::bounded::<u32>(2);
    tx.try_send(1).unwrap();
    tx.try_send(2).unwrap();
    assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
    let sender = spawn(move || {
        for i in 3..=10 {
            tx.send(i).unwrap(); // waits while two are queued
        }
    });
    let receiver = spawn(move || {
        let mut got = Vec::new();
        while let Ok(i) = rx.recv() {
            assert!(rx.len() <= 2);
            got.push(i);
            sched::sleep(ms(2)).unwrap();
        }
        got
    });
    event_loop();
    sender.join().unwrap();
    assert_eq!(receiver.join().unwrap(), (1..=10).collect::<Vec<_>>());
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

#[test]
fn waiting_senders_queue_in_order_and_an_interrupted_one_gets_its_message_back() {
    setup();
    let (tx, rx) = channel::bounded::<u32>(1);
    tx.try_send(0).unwrap();
    let (a_tx, b_tx, c_tx) = (tx.clone(), tx.clone(), tx.clone());
    drop(tx);
    let a = spawn(move || a_tx.send(1));
    let b = spawn(move || b_tx.send(2));
    let c = spawn(move || c_tx.send(3));
    let (b_ref, a_ref) = (b.handle(), a.handle());
    let receiver = spawn(move || {
        sched::sleep(ms(20)).unwrap();
        // Every sender waits for room, each shown as waiting on the channel.
        let waits: Vec<WaitReason> = [&a_ref, &b_ref]
            .iter()
            .map(|c| {
                where_all()
                    .into_iter()
                    .find(|i| i.id == c.id())
                    .unwrap()
                    .reason
            })
            .collect();
        assert_eq!(waits, vec![WaitReason::Channel, WaitReason::Channel]);
        assert!(b_ref.interrupt(5));
        sched::sleep(ms(5)).unwrap();
        let mut got = Vec::new();
        while let Ok(v) = rx.recv() {
            got.push(v);
        }
        got
    });
    event_loop();
    assert_eq!(a.join().unwrap(), Ok(()));
    assert_eq!(
        b.join().unwrap(),
        Err(SendError::Interrupted(2, Interrupted::Interrupt(5)))
    );
    assert_eq!(c.join().unwrap(), Ok(()));
    // First come, first served; the interrupted sender's message was never queued.
    assert_eq!(receiver.join().unwrap(), vec![0, 1, 3]);
}

#[test]
fn dropping_the_receiver_wakes_waiting_senders_with_their_messages() {
    setup();
    let (tx, rx) = channel::bounded::<&'static str>(1);
    tx.try_send("queued").unwrap();
    let waiting = spawn(move || tx.send("waiting"));
    spawn(move || {
        sched::sleep(ms(10)).unwrap();
        drop(rx);
    });
    event_loop();
    assert_eq!(waiting.join().unwrap(), Err(SendError::Closed("waiting")));
}
