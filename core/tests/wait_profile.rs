//! The blocking profile: a known number of waits at known lines, per kind; sleeps left out;
//! reset and off.

extern crate alloc;

mod support;

use std::rc::Rc;

use shrapnel_core::sched::event_loop;
use shrapnel_core::sync::{Fifo, Mutex};
use shrapnel_core::wait_profile::{contention, reset, set_enabled, Contention};
use shrapnel_core::*;
use support::*;

fn entry<'a>(all: &'a [Contention], kind: &str, line: u32) -> &'a Contention {
    all.iter()
        .find(|e| {
            e.kind == kind
                && e.location.line() == line
                && e.location.file().ends_with("wait_profile.rs")
        })
        .unwrap_or_else(|| panic!("no {kind} at line {line}: {all:#?}"))
}

#[test]
fn waits_are_counted_per_line_and_kind_with_their_times() {
    setup();
    let m = Rc::new(Mutex::new(()));
    let fifo: Rc<Fifo<u32>> = Rc::new(Fifo::new());
    let lock_line = std::rc::Rc::new(std::cell::Cell::new(0));
    // Four coroutines take the mutex in turn, each holding it 3 ms: three of them wait.
    for _ in 0..4 {
        let (m, l) = (m.clone(), lock_line.clone());
        spawn(move || {
            l.set(line!() + 1);
            let _g = m.lock()?;
            sched::sleep(ms(3))
        });
    }
    // A consumer waits on the fifo five times, each item pushed 1 ms apart.
    let f = fifo.clone();
    let pop_line = line!() + 4;
    let consumer = spawn(move || {
        let mut got = 0;
        for _ in 0..5 {
            got += f.pop()?;
        }
        Ok::<_, Interrupted>(got)
    });
    spawn(move || {
        for i in 0..5 {
            sched::sleep(ms(1))?;
            fifo.push(i);
        }
        Ok::<_, Interrupted>(())
    });
    event_loop();
    assert_eq!(consumer.join().unwrap(), Ok(10));
    let all = contention();
    let mutex = entry(&all, "mutex", lock_line.get());
    assert_eq!(mutex.count, 3, "{mutex:?}");
    // The last of them waited for the three others' 3 ms each.
    assert!(mutex.max >= ms(8), "{mutex:?}");
    assert!(
        mutex.total >= mutex.max && mutex.total >= ms(15),
        "{mutex:?}"
    );
    let pops = entry(&all, "fifo", pop_line);
    assert_eq!(pops.count, 5, "{pops:?}");
    assert!(all.iter().all(|e| !e.kind.contains("sleep")), "{all:#?}");
    // Longest total first.
    assert!(all.windows(2).all(|w| w[0].total >= w[1].total));

    reset();
    assert!(contention().is_empty());
    assert!(set_enabled(false));
    let m2 = m.clone();
    spawn(move || {
        let _g = m2.lock()?;
        sched::sleep(ms(2))
    });
    spawn(move || m.lock().map(drop));
    event_loop();
    assert!(contention().is_empty(), "off: nothing recorded");
    assert!(!set_enabled(true));
}
