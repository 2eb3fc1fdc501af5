//! run_per_core: two schedulers serving one port (SO_REUSEPORT), each getting connections;
//! a panic in one scheduler's loop ends the other cleanly and is named in the error.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shrapnel::net::{TcpListener, UdpSocket};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn two_schedulers_share_a_port_and_each_gets_connections() {
    let port = free_port();
    let served: Arc<[AtomicUsize; 2]> = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let bound = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let (s, b, d) = (served.clone(), bound.clone(), done.clone());
    let server = std::thread::spawn(move || {
        shrapnel::run_per_core(2, move |core| {
            let listener = TcpListener::bind_reuseport(("127.0.0.1", port)).unwrap();
            b.fetch_add(1, Ordering::AcqRel);
            while !d.load(Ordering::Acquire) {
                let accepted =
                    shrapnel::with_timeout(Duration::from_millis(20), || listener.accept());
                if let Ok(Ok((mut conn, _))) = accepted {
                    s[core].fetch_add(1, Ordering::AcqRel);
                    let _ = conn.write_all(&[core as u8]);
                }
            }
        })
    });
    let start = Instant::now();
    while bound.load(Ordering::Acquire) < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the listeners never bound"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut answers = [0usize; 2];
    for _ in 0..200 {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut core = [0u8];
        c.read_exact(&mut core).unwrap();
        answers[core[0] as usize] += 1;
    }
    done.store(true, Ordering::Release);
    let codes = server.join().unwrap().unwrap();
    assert_eq!(codes, vec![0, 0]);
    assert_eq!(answers[0] + answers[1], 200);
    assert!(
        answers[0] > 0 && answers[1] > 0,
        "one scheduler got every connection: {answers:?}"
    );
    assert_eq!(served[0].load(Ordering::Acquire), answers[0]);
}

#[test]
fn udp_sockets_bound_with_reuseport_share_a_port() {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    shrapnel::reset();
    let a = UdpSocket::bind_reuseport(("127.0.0.1", port)).unwrap();
    let b = UdpSocket::bind_reuseport(("127.0.0.1", port)).unwrap();
    assert_eq!(a.local_addr().unwrap(), b.local_addr().unwrap());
    assert!(UdpSocket::bind(("127.0.0.1", port)).is_err());
}

#[test]
fn a_panic_in_one_loop_stops_the_others_and_names_the_core() {
    let started = Instant::now();
    let r = shrapnel::run_per_core(2, |core| {
        if core == 1 {
            // A loop hook that panics: the panic escapes event_loop, not a coroutine.
            shrapnel_core::sched::set_loop_hook(Some(|| panic!("hook of core 1 broke")));
            shrapnel::sleep(Duration::from_millis(50)).unwrap();
        } else {
            // Would sleep an hour: the group's stop shuts it down.
            let _ = shrapnel::sleep(Duration::from_secs(3600));
        }
    });
    let e = r.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(e.outcomes.len(), 2);
    assert_eq!(
        e.outcomes[0].as_ref().ok(),
        Some(&shrapnel::per_core::STOPPED_BY_PEER)
    );
    let why = e.outcomes[1].as_ref().unwrap_err();
    assert!(why.contains("hook of core 1 broke"), "{why}");
    assert!(e.to_string().contains("core 1"), "{e}");
}
