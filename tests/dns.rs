//! Names resolve on the blocking pool: a resolver that takes a second does not stall the
//! other coroutines, numeric addresses never reach the resolver, and a timeout around
//! `connect` covers the lookup.

use std::cell::Cell;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use shrapnel::net::{lookup_host, set_resolver, TcpListener, TcpStream};

static PORT: AtomicU16 = AtomicU16::new(0);
static LOOKUPS: AtomicUsize = AtomicUsize::new(0);

/// A resolver that answers `slow.test` with 127.0.0.1 after a second, and nothing else.
fn slow_resolver(host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    LOOKUPS.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(Duration::from_secs(1));
    match host {
        "slow.test" => Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no such host {host}"),
        )),
    }
}

#[test]
fn a_slow_resolver_does_not_stall_the_scheduler() {
    set_resolver(slow_resolver);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    PORT.store(listener.local_addr().unwrap().port(), Ordering::SeqCst);
    shrapnel::spawn(move || {
        let (c, _) = listener.accept().unwrap();
        let mut b = [0; 4];
        (&c).read_exact(&mut b).unwrap();
        (&c).write_all(&b).unwrap();
    });
    let done = Rc::new(Cell::new(false));
    let d = done.clone();
    let ticker = shrapnel::spawn(move || {
        let (mut worst, mut last) = (Duration::ZERO, Instant::now());
        while !d.get() {
            shrapnel::sleep(Duration::from_millis(5)).unwrap();
            worst = worst.max(last.elapsed());
            last = Instant::now();
        }
        worst
    });
    let client = shrapnel::spawn(move || {
        let _stop = StopTicker(done); // whatever happens, even a failed assertion
        client_body()
    });
    assert_eq!(shrapnel::event_loop(), 0);
    assert_eq!(&client.join().unwrap().unwrap(), b"ping");
    assert_eq!(LOOKUPS.load(Ordering::SeqCst), 3);
    let worst = ticker.join().unwrap();
    eprintln!("worst gap while resolving: {worst:?}");
    assert!(worst < Duration::from_millis(500), "worst gap {worst:?}");
}

struct StopTicker(Rc<Cell<bool>>);

impl Drop for StopTicker {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

fn client_body() -> std::io::Result<[u8; 4]> {
    {
        let port = PORT.load(Ordering::SeqCst);
        // Numeric: the resolver is never asked.
        assert_eq!(
            lookup_host(("127.0.0.1", port))?,
            vec![SocketAddr::from(([127, 0, 0, 1], port))]
        );
        assert_eq!(lookup_host(format!("[::1]:{port}"))?[0].port(), port);
        assert_eq!(LOOKUPS.load(Ordering::SeqCst), 0);
        // A name the resolver does not know: its error, after its second.
        let e = TcpStream::connect(("nowhere.test", port)).unwrap_err();
        assert!(e.to_string().contains("no such host nowhere.test"), "{e}");
        // A timeout around connect covers the lookup, and converts with `?`.
        let start = Instant::now();
        let timed_out = (|| -> std::io::Result<TcpStream> {
            shrapnel::with_timeout(Duration::from_millis(100), || {
                TcpStream::connect(("slow.test", port))
            })?
        })()
        .unwrap_err();
        assert_eq!(timed_out.kind(), std::io::ErrorKind::TimedOut);
        assert!(
            start.elapsed() < Duration::from_millis(900),
            "{:?}",
            start.elapsed()
        );
        // The name, resolved in a second, and a round trip over it.
        let s = TcpStream::connect(format!("slow.test:{port}"))?;
        (&s).write_all(b"ping")?;
        let mut back = [0; 4];
        (&s).read_exact(&mut back)?;
        Ok(back)
    }
}
