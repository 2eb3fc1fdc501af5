//! A line-based chat room: every line a client sends goes to every other client, prefixed
//! with the sender's nick. `/nick NAME` changes it, `/quit` leaves; joins and leaves are
//! announced. Each client has a reader coroutine and a writer coroutine that pops the
//! client's own `Fifo` of lines to send, so a slow client never holds up the others.
//!
//! ```text
//! cargo run --example chat -- 7070       (then, in two terminals: nc 127.0.0.1 7070)
//! ```
//!
//! Port 0 picks a free port; the first line on stdout says which (`listening on ADDR`).
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::rc::Rc;

use shrapnel::net::{TcpListener, TcpStream};
use shrapnel::sync::Fifo;

/// Who is in the room: client id → the queue of lines its writer sends.
#[derive(Default)]
struct Room {
    members: RefCell<BTreeMap<u64, Rc<Fifo<Rc<str>>>>>,
}

impl Room {
    /// Queue `line` for every member but `from`.
    fn broadcast(&self, from: u64, line: &str) {
        let line: Rc<str> = Rc::from(line);
        for (id, queue) in self.members.borrow().iter() {
            if *id != from {
                queue.push(line.clone());
            }
        }
    }
}

fn main() {
    let port: u16 = match std::env::args().nth(1).map(|p| p.parse()) {
        None => 7070,
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            eprintln!("usage: chat [PORT]  (bad port: {e})");
            std::process::exit(2);
        }
    };
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap_or_else(|e| {
        eprintln!("chat: {e}");
        std::process::exit(1);
    });
    println!("listening on {}", listener.local_addr().unwrap());
    let _ = std::io::stdout().flush();
    let room = Rc::new(Room::default());
    let next_id = Cell::new(1u64);
    shrapnel::spawn(move || {
        while let Ok((conn, peer)) = listener.accept() {
            let id = next_id.replace(next_id.get() + 1);
            let room = room.clone();
            let _ = shrapnel::Builder::new()
                .name(format!("chat {peer}"))
                .spawn(move || client(id, conn, &room));
        }
    });
    std::process::exit(shrapnel::event_loop());
}

/// One client: a writer coroutine drains its queue; this one reads its lines.
fn client(id: u64, conn: TcpStream, room: &Room) {
    let queue: Rc<Fifo<Rc<str>>> = Rc::new(Fifo::new());
    let writer = match conn.try_clone() {
        Ok(out) => {
            let queue = queue.clone();
            shrapnel::spawn(move || {
                while let Ok(line) = queue.pop() {
                    if (&out).write_all(line.as_bytes()).is_err() {
                        break;
                    }
                }
            })
        }
        Err(e) => {
            eprintln!("chat: {e}");
            return;
        }
    };
    let mut nick = format!("guest{id}");
    queue.push(Rc::from(format!("* welcome, {nick}; /nick NAME, /quit\n")));
    room.members.borrow_mut().insert(id, queue.clone());
    room.broadcast(id, &format!("* {nick} joined\n"));
    let mut lines = BufReader::new(&conn).lines();
    while let Some(Ok(line)) = lines.next() {
        let line = line.trim_end();
        if line == "/quit" {
            break;
        } else if let Some(new) = line.strip_prefix("/nick ") {
            let new = new.trim();
            if new.is_empty() || new.len() > 32 {
                queue.push(Rc::from("* a nick is 1 to 32 characters\n"));
                continue;
            }
            room.broadcast(id, &format!("* {nick} is now {new}\n"));
            nick = new.to_string();
        } else if !line.is_empty() {
            room.broadcast(id, &format!("<{nick}> {line}\n"));
        }
    }
    room.members.borrow_mut().remove(&id);
    room.broadcast(id, &format!("* {nick} left\n"));
    writer.shutdown();
    let _ = conn.shutdown(std::net::Shutdown::Both);
}
