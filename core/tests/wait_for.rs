//! The wait-for graph: `where_all` says who holds what a coroutine waits for (a mutex's
//! owner, a rwlock's writer or readers, the coroutine joined), `wait_for::deadlocks` finds
//! the cycles, and the event loop names them when it ends with coroutines blocked forever.

extern crate alloc;

mod support;

use std::rc::Rc;

use shrapnel_core::sched::event_loop;
use shrapnel_core::sync::{Mutex, RwLock};
use shrapnel_core::wait_for::deadlocks;
use shrapnel_core::*;
use support::*;

fn info_of(id: u64) -> CoroInfo {
    where_all().into_iter().find(|i| i.id == id).unwrap()
}

#[test]
fn where_all_names_the_holder_of_a_mutex_a_rwlock_and_a_joined_coroutine() {
    setup();
    let m = Rc::new(Mutex::new(()));
    let l = Rc::new(RwLock::new(()));
    let (m1, l1) = (m.clone(), l.clone());
    let holder = Builder::new()
        .name("holder")
        .spawn(move || {
            let _m = m1.lock()?;
            let _w = l1.write()?;
            sched::sleep(ms(30))
        })
        .unwrap();
    let holder_id = holder.id();
    let (m2, l2) = (m.clone(), l.clone());
    let on_mutex = Builder::new()
        .name("on mutex")
        .spawn(move || m2.lock().map(drop))
        .unwrap();
    let on_rwlock = Builder::new()
        .name("on rwlock")
        .spawn(move || l2.read().map(drop))
        .unwrap();
    let joiner = Builder::new()
        .name("joiner")
        .spawn(move || holder.join().map(drop).map_err(drop))
        .unwrap();
    let (mutex_id, rwlock_id, joiner_id) = (on_mutex.id(), on_rwlock.id(), joiner.id());
    spawn(move || {
        sched::sleep(ms(5)).unwrap();
        let held = Some(HeldBy::Coro {
            id: holder_id,
            name: "holder".into(),
        });
        for id in [mutex_id, rwlock_id, joiner_id] {
            assert_eq!(info_of(id).held_by, held, "{}", info_of(id));
        }
        let text = info_of(mutex_id).to_string();
        assert!(
            text.contains(&format!(
                "blocked: mutex held by #{holder_id} 'holder' for "
            )),
            "{text}"
        );
        let text = info_of(rwlock_id).to_string();
        assert!(
            text.contains(&format!("rwlock (read) held by #{holder_id} 'holder'")),
            "{text}"
        );
        let text = info_of(joiner_id).to_string();
        assert!(
            text.contains(&format!("blocked: join #{holder_id} 'holder' for ")),
            "{text}"
        );
        // `where_is` names the holder too.
        let one = where_is(&coro_by_id(mutex_id).unwrap());
        assert_eq!(one.held_by, info_of(mutex_id).held_by);
        assert!(deadlocks().is_empty());
        assert_eq!(
            info_of(holder_id).held_by,
            None,
            "a sleeper waits for nobody"
        );
    });
    event_loop();
    on_mutex.join().unwrap().unwrap();
    on_rwlock.join().unwrap().unwrap();
}

#[test]
fn readers_holding_a_rwlock_are_counted() {
    setup();
    let l = Rc::new(RwLock::new(()));
    for _ in 0..3 {
        let l = l.clone();
        spawn(move || {
            let _r = l.read()?;
            sched::sleep(ms(20))
        });
    }
    let l2 = l.clone();
    let writer = Builder::new()
        .name("writer")
        .spawn(move || l2.write().map(drop))
        .unwrap();
    let id = writer.id();
    spawn(move || {
        sched::sleep(ms(5)).unwrap();
        assert_eq!(info_of(id).held_by, Some(HeldBy::Readers(3)));
        assert!(info_of(id)
            .to_string()
            .contains("rwlock (write) held by 3 readers"));
    });
    event_loop();
    writer.join().unwrap().unwrap();
}

/// Two coroutines each holding one mutex and waiting for the other's; a third pair in a
/// mutex/join cycle.
fn make_deadlocks() -> (u64, u64, u64, u64) {
    let (a, b) = (Rc::new(Mutex::new(())), Rc::new(Mutex::new(())));
    let mut ids = Vec::new();
    for (name, first, second) in [("left", a.clone(), b.clone()), ("right", b, a)] {
        let c = Builder::new()
            .name(name)
            .spawn(move || {
                let _one = first.lock()?;
                sched::sleep(ms(2))?;
                let _two = second.lock()?;
                Ok::<_, Interrupted>(())
            })
            .unwrap();
        ids.push(c.id());
    }
    // `owner` holds m and joins `waiter`, which waits for m.
    let m = Rc::new(Mutex::new(()));
    let m2 = m.clone();
    let slot: Rc<std::cell::Cell<Option<Coro<()>>>> = Rc::default();
    let s2 = slot.clone();
    let owner = Builder::new()
        .name("owner")
        .spawn(move || {
            let _held = m.lock()?;
            sched::sleep(ms(2))?;
            let waiter = s2.take().unwrap();
            let _ = waiter.join();
            Ok::<_, Interrupted>(())
        })
        .unwrap();
    let waiter = Builder::new()
        .name("waiter")
        .spawn(move || drop(m2.lock()))
        .unwrap();
    let waiter_id = waiter.id();
    slot.set(Some(waiter));
    (ids[0], ids[1], owner.id(), waiter_id)
}

#[test]
fn deadlocks_finds_a_mutex_cycle_and_a_mutex_join_cycle_with_each_member() {
    setup();
    let (left, right, owner, waiter) = make_deadlocks();
    spawn(move || {
        sched::sleep(ms(10)).unwrap();
        let found = deadlocks();
        let ids: Vec<Vec<u64>> = found
            .iter()
            .map(|c| c.iter().map(|i| i.id).collect())
            .collect();
        assert_eq!(
            ids,
            vec![vec![left, right], vec![owner, waiter]],
            "{found:?}"
        );
        let names: Vec<&str> = found[1].iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["owner", "waiter"]);
        assert_eq!(found[1][0].reason, WaitReason::Join(waiter));
        assert_eq!(found[1][1].reason, WaitReason::Mutex);
        // Break them, so the loop ends.
        for id in [left, right, owner, waiter] {
            coro_by_id(id).unwrap().shutdown();
        }
    });
    event_loop();
}

#[test]
fn the_event_loop_names_the_cycles_it_leaves_blocked_forever() {
    let rec = setup();
    let (left, right, owner, waiter) = make_deadlocks();
    event_loop();
    let text = rec.text();
    assert!(
        text.contains(
            "4 coroutines are blocked forever, with no timer, fd or interrupt event \
             that could wake them (2 deadlocks):"
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "deadlock 1: #{left} → #{right} → #{left} (each waits for the next)"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("deadlock 2: #{owner} → #{waiter} → #{owner}")),
        "{text}"
    );
    assert!(
        text.contains(&format!("'left' blocked: mutex held by #{right} 'right'")),
        "{text}"
    );
    assert!(
        text.contains(&format!("'owner' blocked: join #{waiter} 'waiter'")),
        "{text}"
    );
    sched::uninstall();
}
