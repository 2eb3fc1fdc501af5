//! tracing spans that follow their coroutine (feature `tracing`).
//!
//! A subscriber such as tracing-subscriber's `Registry` keeps the entered spans on a stack
//! per OS thread. Coroutines share their thread, so without help a span a coroutine entered
//! (`span.enter()`, `span.entered()`, `#[instrument]`) stays current while it is blocked and
//! every other coroutine's events are recorded inside it (`request{who="A"}:request{who="B"}`
//! in a third). With the feature, each scheduler installs a switch observer
//! (`shrapnel_core::switch_observer`) that moves the thread's span stack aside when a
//! coroutine starts running and puts it back when it stops, and keeps the coroutine's own
//! spans with it while it is suspended: a span is current only in the coroutine that
//! entered it, and spans entered outside coroutines (around `event_loop`) are current only
//! there. Nothing changes in how spans are written.
//!
//! The cost, only with the feature: a `current_span` query of the dispatcher at each switch
//! in and out, plus an exit and an enter per entered span. A subscriber that does not track
//! the current span (its `current_span` is unknown) is left alone.

use std::cell::RefCell;
use std::collections::HashMap;

use shrapnel_core::switch_observer::{set_switch_observer, SwitchObserver};
use tracing::span::Id;
use tracing::Dispatch;

/// More entered spans than this on one thread is taken as a subscriber that does not pop
/// what it exits; the move stops there rather than loop.
const MAX_DEPTH: usize = 256;

thread_local! {
    /// What this thread's scheduler has moved aside: the spans entered outside coroutines
    /// (while one runs) and each suspended coroutine's spans, outermost first.
    static MOVED: RefCell<Moved> = RefCell::new(Moved::default());
}

#[derive(Default)]
struct Moved {
    outside: Vec<Id>,
    suspended: HashMap<u64, Vec<Id>>,
}

/// Install the observer on this thread's scheduler.
pub(crate) fn install() {
    set_switch_observer(Some(SwitchObserver { entered, left }));
}

fn dispatch() -> Dispatch {
    // Cloned out of `get_default`: a subscriber's `exit` may itself need the default
    // dispatcher (the Registry's does, to close a span), which a nested call would not see.
    tracing::dispatcher::get_default(|d| d.clone())
}

/// Exit every entered span of this thread, innermost first, keeping a reference to each;
/// returns them outermost first.
fn take_stack(d: &Dispatch) -> Vec<Id> {
    let mut taken = Vec::new();
    while taken.len() < MAX_DEPTH {
        let Some(id) = d.current_span().id().cloned() else {
            break;
        };
        // Held while moved aside, so the span stays open even if its last handle goes.
        let held = d.clone_span(&id);
        d.exit(&id);
        if d.current_span().id() == Some(&id) {
            // The subscriber did not pop it: leave its stack alone.
            d.enter(&id);
            d.try_close(held);
            break;
        }
        taken.push(held);
    }
    taken.reverse();
    taken
}

/// Enter `spans` (outermost first) again and drop the references [`take_stack`] held.
fn put_back(d: &Dispatch, spans: Vec<Id>) {
    for id in spans {
        d.enter(&id);
        d.try_close(id);
    }
}

fn entered(coro_id: u64) {
    let d = dispatch();
    let outside = take_stack(&d);
    let own = MOVED.with(|m| {
        let mut m = m.borrow_mut();
        m.outside = outside;
        m.suspended.remove(&coro_id).unwrap_or_default()
    });
    put_back(&d, own);
}

fn left(coro_id: u64, finished: bool) {
    let d = dispatch();
    let own = take_stack(&d);
    let outside = MOVED.with(|m| {
        let mut m = m.borrow_mut();
        if finished {
            // Its guards are gone; anything still entered (a forgotten guard) is let go.
            drop_refs(&d, own);
        } else if !own.is_empty() {
            m.suspended.insert(coro_id, own);
        }
        std::mem::take(&mut m.outside)
    });
    put_back(&d, outside);
}

fn drop_refs(d: &Dispatch, spans: Vec<Id>) {
    for id in spans {
        d.try_close(id);
    }
}
