//! Channels within one scheduler: closing from either side, bounded channels, senders
//! waiting for room in order, and dropping the receiver.
//!
//! Needs nothing from an OS (`no_std` + `alloc`): `tests/channel.rs` runs it on the host
//! (with the tests that send from plain threads), the bare-metal suite runners in QEMU.

use alloc::vec;
use alloc::vec::Vec;

use shrapnel_core::channel::{self, RecvError, SendError, TryRecvError, TrySendError};
use shrapnel_core::sched::event_loop;
use shrapnel_core::*;

use crate::support::*;

#[cfg_attr(test, test)]
pub fn closing_either_side_is_seen_by_the_other() {
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

#[cfg_attr(test, test)]
pub fn a_bounded_channel_refuses_past_its_capacity_and_send_waits_for_room() {
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

#[cfg_attr(test, test)]
pub fn waiting_senders_queue_in_order_and_an_interrupted_one_gets_its_message_back() {
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

#[cfg_attr(test, test)]
pub fn dropping_the_receiver_wakes_waiting_senders_with_their_messages() {
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
