//! The wait-for graph (hosted builds, feature `std`): for a blocked coroutine, who holds
//! what it waits for — a mutex's owner, a rwlock's writer or readers, the coroutine it
//! joins — and the cycles of that graph, which are deadlocks.
//!
//! A sync primitive about to block notes what it is (`Holds`, through
//! `hooks::note_waits_on`, nothing on bare metal); the debug snapshots read it while the
//! coroutine stays blocked in that wait. Reading it is sound because the blocked call
//! borrows the primitive for as long as it waits (its `&self`), and it is read only on the
//! scheduler's thread, only while the coroutine is blocked with the matching wait reason.
//! In shared-stack mode the primitive is never on a suspended coroutine's copied-off
//! frames: a coroutine cannot block on a lock only it can reach (it would hold it, and
//! the locks are re-entrant), and lending a stack borrow to another coroutine is what
//! that mode forbids (see `shared_stack`).
//!
//! Edges the graph has: mutex → its owner, rwlock writer-wait or read-wait → the writer,
//! join → the joined coroutine. Readers of a rwlock and semaphore permits are counts,
//! not coroutines (their ids are not kept), so they give no edge: a cycle through them is
//! not found, and `where_all` says "held by 3 readers" instead.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::cell::Cell;

use crate::coro::State;
use crate::debug::{CoroInfo, HeldBy};
use crate::wait::WaitReason;

/// What a blocked coroutine's wait is on, as far as holders go.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) enum Holds {
    /// Nothing a coroutine holds (a sleep, an fd, a fifo, a condvar…).
    #[default]
    Nothing,
    /// A mutex: its owner cell.
    Owner(*const Cell<Option<u64>>),
    /// A rwlock: its writer cell and reader count.
    RwLock(*const Cell<Option<u64>>, *const Cell<usize>),
}

/// The holder `co`'s wait is on, by id, read from what the primitive noted (see the
/// module doc for why the pointers are valid here).
pub(crate) fn holder(reason: WaitReason, state: State, holds: Holds) -> Option<Result<u64, usize>> {
    if state != State::Blocked {
        return None;
    }
    match (reason, holds) {
        (WaitReason::Join(id), _) => Some(Ok(id)),
        (WaitReason::Mutex, Holds::Owner(owner)) => {
            // SAFETY: the coroutine is blocked in `Mutex::lock`, which borrows the mutex
            // (and so this cell) for the whole wait; we are on the scheduler's thread.
            unsafe { (*owner).get() }.map(Ok)
        }
        (WaitReason::RwLockRead | WaitReason::RwLockWrite, Holds::RwLock(writer, readers)) => {
            // SAFETY: as above, for a wait in `RwLock::read` or `write`.
            let (writer, readers) = unsafe { ((*writer).get(), (*readers).get()) };
            match writer {
                Some(id) => Some(Ok(id)),
                None if readers > 0 => Some(Err(readers)),
                None => None,
            }
        }
        _ => None,
    }
}

/// The cycles of the wait-for graph among `infos` (each a list of ids, the smallest first,
/// in wait order: each waits for the next, the last for the first).
pub fn cycles(infos: &[CoroInfo]) -> Vec<Vec<u64>> {
    let next: BTreeMap<u64, u64> = infos
        .iter()
        .filter_map(|i| match &i.held_by {
            Some(HeldBy::Coro { id, .. }) if i.state == State::Blocked => Some((i.id, *id)),
            _ => None,
        })
        .collect();
    let mut done: BTreeMap<u64, ()> = BTreeMap::new();
    let mut found = Vec::new();
    for &start in next.keys() {
        if done.contains_key(&start) {
            continue;
        }
        // Follow the edges from `start` until a dead end, a node done before, or a node
        // of this walk (a cycle: the walk from there on).
        let mut walk: Vec<u64> = Vec::new();
        let mut at = start;
        loop {
            if let Some(pos) = walk.iter().position(|&n| n == at) {
                let mut cycle = walk[pos..].to_vec();
                let min = (0..cycle.len()).min_by_key(|&k| cycle[k]).unwrap_or(0);
                cycle.rotate_left(min);
                found.push(cycle);
                break;
            }
            if done.contains_key(&at) {
                break;
            }
            walk.push(at);
            match next.get(&at) {
                Some(&n) => at = n,
                None => break,
            }
        }
        for n in walk {
            done.insert(n, ());
        }
    }
    found.sort();
    found
}

/// Every deadlock of this thread's scheduler: each cycle of the wait-for graph, as the
/// snapshots of its members in wait order (each waits for the next, the last for the
/// first). Empty when there is none.
///
/// ```
/// # shrapnel_core::doc_scheduler!();
/// # use shrapnel_core as shrapnel;
/// use std::rc::Rc;
/// use shrapnel::sync::Mutex;
///
/// let (a, b) = (Rc::new(Mutex::new(())), Rc::new(Mutex::new(())));
/// for (first, second) in [(a.clone(), b.clone()), (b, a)] {
///     shrapnel::spawn(move || {
///         let _one = first.lock()?;
///         shrapnel::yield_slice(); // the other takes its first lock meanwhile
///         let _two = second.lock()?; // each waits for the other: a deadlock
///         Ok::<_, shrapnel::Interrupted>(())
///     });
/// }
/// shrapnel::spawn(|| {
///     shrapnel::yield_slice();
///     shrapnel::yield_slice();
///     let found = shrapnel::wait_for::deadlocks();
///     assert_eq!(found.len(), 1);
///     assert_eq!(found[0].len(), 2);
///     for c in &found[0] {
///         shrapnel::coro_by_id(c.id).unwrap().shutdown();
///     }
/// });
/// shrapnel::event_loop();
/// ```
pub fn deadlocks() -> Vec<Vec<CoroInfo>> {
    let all = crate::debug::where_all();
    cycles(&all)
        .into_iter()
        .map(|ids| {
            ids.iter()
                .filter_map(|id| all.iter().find(|i| i.id == *id).cloned())
                .collect()
        })
        .collect()
}
