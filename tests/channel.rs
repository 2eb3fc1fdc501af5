//! Channels between two real schedulers (epoll/kqueue pollers woken by their notify): a
//! million messages in order, and a ping-pong (also between schedulers that spin before
//! they block).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use shrapnel::channel::{self, Sender};
use shrapnel::per_core::PerCore;

/// A slot to hand a sender from one core's first coroutine to the other's.
type Slot<T> = Arc<Mutex<Option<Sender<T>>>>;

fn take_when_ready<T>(slot: &Slot<T>) -> Sender<T> {
    loop {
        if let Some(tx) = slot.lock().unwrap().take() {
            return tx;
        }
        shrapnel::sleep(Duration::from_millis(1)).unwrap();
    }
}

#[test]
fn a_million_messages_between_two_schedulers_in_order() {
    let slot: Slot<u64> = Arc::new(Mutex::new(None));
    let received = Arc::new(Mutex::new(0u64));
    let (s, r) = (slot.clone(), received.clone());
    let codes = shrapnel::run_per_core(2, move |core| {
        if core == 0 {
            let (tx, rx) = channel::channel::<u64>();
            *s.lock().unwrap() = Some(tx);
            let mut next = 0;
            while let Ok(v) = rx.recv() {
                assert_eq!(v, next, "out of order");
                next += 1;
            }
            *r.lock().unwrap() = next;
        } else {
            let tx = take_when_ready(&s);
            for i in 0..1_000_000u64 {
                tx.send(i).unwrap();
            }
        }
    })
    .unwrap();
    assert_eq!(codes, vec![0, 0]);
    assert_eq!(*received.lock().unwrap(), 1_000_000);
}

/// A bounded channel between two schedulers: the sending coroutine blocks for room and is
/// woken by the other scheduler's receives; a plain thread sends through it too.
#[test]
fn a_bounded_channel_between_two_schedulers_and_a_thread_loses_nothing() {
    let slot: Slot<u64> = Arc::new(Mutex::new(None));
    let received = Arc::new(Mutex::new(Vec::new()));
    let (s, r) = (slot.clone(), received.clone());
    let codes = shrapnel::run_per_core(2, move |core| {
        if core == 0 {
            let (tx, rx) = channel::bounded::<u64>(8);
            let from_thread = tx.clone();
            let thread = std::thread::spawn(move || {
                for i in 0..50_000u64 {
                    from_thread.send(1_000_000 + i).unwrap();
                }
            });
            *s.lock().unwrap() = Some(tx);
            let (mut next_core, mut next_thread) = (0u64, 1_000_000u64);
            while let Ok(v) = rx.recv() {
                assert!(rx.len() <= 8);
                // Each sender's messages stay in order.
                if v >= 1_000_000 {
                    assert_eq!(v, next_thread);
                    next_thread += 1;
                } else {
                    assert_eq!(v, next_core);
                    next_core += 1;
                }
            }
            thread.join().unwrap();
            *r.lock().unwrap() = vec![next_core, next_thread - 1_000_000];
        } else {
            let tx = take_when_ready(&s);
            for i in 0..100_000u64 {
                tx.send(i).unwrap();
            }
        }
    })
    .unwrap();
    assert_eq!(codes, vec![0, 0]);
    assert_eq!(*received.lock().unwrap(), vec![100_000, 50_000]);
}

#[test]
fn ping_pong_between_two_schedulers() {
    let to_0: Slot<u32> = Arc::new(Mutex::new(None));
    let to_1: Slot<u32> = Arc::new(Mutex::new(None));
    let (a, b) = (to_0.clone(), to_1.clone());
    let codes = shrapnel::run_per_core(2, move |core| {
        let (mine, theirs) = if core == 0 { (&a, &b) } else { (&b, &a) };
        let (tx, rx) = channel::channel::<u32>();
        *mine.lock().unwrap() = Some(tx);
        let peer = take_when_ready(theirs);
        if core == 0 {
            peer.send(0).unwrap();
        }
        while let Ok(n) = rx.recv() {
            if n >= 10_000 {
                break; // drops `peer`: the other side's recv ends with Closed
            }
            if peer.send(n + 1).is_err() {
                break;
            }
        }
        shrapnel::set_exit(i32::from(core == 0));
    })
    .unwrap();
    assert_eq!(codes.len(), 2);
}

/// The same ping-pong with each scheduler spinning before it blocks
/// (`RuntimeConfig::idle_spin`, long enough that most messages arrive during a spin): every
/// number arrives in order, and both loops end once the exchange is over.
#[test]
fn ping_pong_between_two_spinning_schedulers() {
    let to_0: Slot<u32> = Arc::new(Mutex::new(None));
    let to_1: Slot<u32> = Arc::new(Mutex::new(None));
    let last_seen = Arc::new(Mutex::new([0u32; 2]));
    let (a, b, seen) = (to_0.clone(), to_1.clone(), last_seen.clone());
    let config = shrapnel::RuntimeConfig {
        idle_spin: Some(Duration::from_millis(1)),
        ..Default::default()
    };
    let codes = PerCore::new(2)
        .config(config)
        .run(move |core| {
            let (mine, theirs) = if core == 0 { (&a, &b) } else { (&b, &a) };
            let (tx, rx) = channel::channel::<u32>();
            *mine.lock().unwrap() = Some(tx);
            let peer = take_when_ready(theirs);
            let mut expect = if core == 0 { 1 } else { 0 };
            if core == 0 {
                peer.send(0).unwrap();
            }
            // Core 1 gets the even numbers, core 0 the odd ones; core 1 stops the exchange.
            while let Ok(n) = rx.recv() {
                assert_eq!(n, expect, "core {core}: out of order");
                seen.lock().unwrap()[core] = n;
                expect += 2;
                if n >= 10_000 {
                    break; // drops `peer`: the other side's recv ends with Closed
                }
                peer.send(n + 1).unwrap();
            }
        })
        .unwrap();
    assert_eq!(codes, vec![0, 0]);
    assert_eq!(*last_seen.lock().unwrap(), [9_999, 10_000]);
}

#[test]
fn a_handle_starts_closures_on_its_scheduler_from_another() {
    let slot: Arc<Mutex<Option<shrapnel::Handle>>> = Arc::new(Mutex::new(None));
    let ran_on = Arc::new(Mutex::new(Vec::new()));
    let (s, r) = (slot.clone(), ran_on.clone());
    let codes = shrapnel::run_per_core(2, move |core| {
        if core == 0 {
            *s.lock().unwrap() = Some(shrapnel::handle());
            // core 0's first coroutine ends here; the remote-spawn coroutine keeps its
            // loop alive until core 1 drops the handle.
        } else {
            let h = loop {
                if let Some(h) = s.lock().unwrap().take() {
                    break h;
                }
                shrapnel::sleep(Duration::from_millis(1)).unwrap();
            };
            for i in 0..3 {
                let r = r.clone();
                h.spawn(move || {
                    let thread = std::thread::current().name().unwrap_or("").to_string();
                    r.lock().unwrap().push((i, thread));
                })
                .unwrap();
            }
        }
    })
    .unwrap();
    assert_eq!(codes, vec![0, 0]);
    let ran = ran_on.lock().unwrap();
    assert_eq!(ran.len(), 3, "{ran:?}");
    assert!(ran.iter().all(|(_, t)| t == "shrapnel-core-0"), "{ran:?}");
    assert_eq!(
        ran.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
}
