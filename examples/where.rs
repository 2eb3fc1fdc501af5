//! A dozen coroutines blocked in different ways, and what `where_all` says about them.
//!
//! ```text
//! cargo run --example where                     # wait reasons, durations, source lines
//! cargo run --example where --features stacks   # and each one's call stack
//! ```
//!
//! While it runs (about a second), `kill -USR1 <pid>` on Linux or Ctrl-T on the BSDs and
//! macOS prints the same thing from outside.

use std::io::{Read, Write};
use std::rc::Rc;
use std::time::Duration;

use shrapnel::sync::{Condvar, Fifo, Mutex, RwLock, Semaphore};
use shrapnel::Builder;

/// Spawn `f` under `name`.
fn named(name: &'static str, f: impl FnOnce() + 'static) -> shrapnel::Coro<()> {
    Builder::new()
        .name(name)
        .spawn(f)
        .unwrap_or_else(|e| panic!("spawning {name}: {e}"))
}

#[inline(never)]
fn nap() {
    let _ = shrapnel::sleep(Duration::from_secs(60));
}

#[inline(never)]
fn read_request(conn: &shrapnel::net::UnixStream) {
    let mut buf = [0u8; 512];
    let _ = (&*conn).read(&mut buf);
}

#[inline(never)]
fn send_reply(conn: &shrapnel::net::UnixStream) {
    // Fill the socket buffer until the write has to wait for the peer to read.
    let chunk = [b'x'; 64 * 1024];
    while (&*conn).write(&chunk).is_ok() {}
}

fn main() {
    // Sleeping.
    named("sleeper", nap);

    // Waiting for a readable fd: nobody writes to the other end.
    let (quiet, _quiet_peer) = shrapnel::net::socketpair().expect("socketpair");
    named("reader", move || read_request(&quiet));

    // Waiting for a writable fd: the peer never reads.
    let (full, _full_peer) = shrapnel::net::socketpair().expect("socketpair");
    named("writer", move || send_reply(&full));

    // A mutex held by a sleeper, and a coroutine waiting for it.
    let mutex = Rc::new(Mutex::new(()));
    let m = mutex.clone();
    named("mutex-holder", move || {
        let _guard = m.lock();
        nap();
    });
    let m = mutex.clone();
    named("mutex-waiter", move || {
        let _guard = m.lock();
    });

    // A semaphore with no permits left.
    let sem = Rc::new(Semaphore::new(0));
    let s = sem.clone();
    named("semaphore-waiter", move || {
        let _ = s.acquire(1);
    });

    // A condition variable nobody signals.
    let cv: Rc<Condvar> = Rc::new(Condvar::new());
    let c = cv.clone();
    named("condvar-waiter", move || {
        let _ = c.wait();
    });

    // An empty fifo.
    let fifo: Rc<Fifo<String>> = Rc::new(Fifo::new());
    let f = fifo.clone();
    named("fifo-consumer", move || {
        let _ = f.pop();
    });

    // A rwlock held for reading by a sleeper, and a writer waiting.
    let lock = Rc::new(RwLock::new(()));
    let l = lock.clone();
    named("rwlock-reader", move || {
        let _guard = l.read();
        nap();
    });
    let l = lock.clone();
    named("rwlock-writer", move || {
        let _guard = l.write();
    });

    // Joining the sleeper.
    let target = named("join-target", nap);
    named("joiner", move || {
        let _ = target.join();
    });

    // Created, never started.
    let _unstarted = Builder::new()
        .name("not-started")
        .build(|| ())
        .expect("creating a coroutine");

    // Busy, yielding every pass: scheduled (ready), not blocked.
    named("yielder", || loop {
        shrapnel::yield_slice();
    });

    // Let them all reach their waits, print, and stop.
    named("reporter", || {
        let _ = shrapnel::sleep(Duration::from_millis(1000));
        // A closed stdout (`| head`) must not keep the program from stopping.
        let _ = write!(std::io::stdout(), "{}", shrapnel::where_all());
        shrapnel::set_exit(0);
    });

    let code = shrapnel::event_loop();
    // Unwind what is still suspended, so every destructor runs.
    shrapnel::reset();
    std::process::exit(code);
}
