//! Datagram sockets and vectored I/O, as Shrapnel's tests have them: a UDP echo server
//! with many clients, connected and unconnected sends, peeking, a receive timeout, Unix
//! datagrams, and readv/writev patterns over a stream.

use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::time::Duration;

use shrapnel::net::{socketpair, UdpSocket, UnixDatagram};

#[test]
fn udp_echo_with_many_clients() {
    shrapnel::reset();
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let kinds: Vec<_> = shrapnel::net::live_sockets()
        .into_iter()
        .filter(|s| s.fd == std::os::fd::AsRawFd::as_raw_fd(&server))
        .map(|s| (s.kind, s.local))
        .collect();
    assert_eq!(
        kinds,
        vec![(shrapnel::net::SocketKind::Udp, addr.to_string())]
    );
    let srv = shrapnel::spawn(move || -> std::io::Result<usize> {
        let mut buf = [0; 1500];
        let mut served = 0;
        while served < 50 * 10 {
            let (n, from) = server.recv_from(&mut buf)?;
            server.send_to(&buf[..n], from)?;
            served += 1;
        }
        Ok(served)
    });
    let clients: Vec<_> = (0..50u32)
        .map(|i| {
            shrapnel::spawn(move || -> std::io::Result<u32> {
                let s = UdpSocket::bind("127.0.0.1:0")?;
                let mut ok = 0;
                for j in 0..10u32 {
                    let msg = format!("client {i} message {j}");
                    if j % 2 == 0 {
                        s.send_to(msg.as_bytes(), addr)?;
                    } else {
                        s.connect(addr)?;
                        s.send(msg.as_bytes())?;
                    }
                    let mut buf = [0; 1500];
                    let n = s.peek(&mut buf)?;
                    assert_eq!(&buf[..n], msg.as_bytes());
                    let (n, from) = s.recv_from(&mut buf)?;
                    assert_eq!(from, addr);
                    assert_eq!(&buf[..n], msg.as_bytes());
                    ok += 1;
                }
                Ok(ok)
            })
        })
        .collect();
    shrapnel::event_loop();
    assert_eq!(srv.join().unwrap().unwrap(), 500);
    for c in clients {
        assert_eq!(c.join().unwrap().unwrap(), 10);
    }
}

#[test]
fn a_udp_receive_times_out_and_other_coroutines_run_meanwhile() {
    shrapnel::reset();
    let s = UdpSocket::bind(("127.0.0.1", 0)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
    let waiter = shrapnel::spawn(move || s.recv(&mut [0; 16]).map_err(|e| e.kind()));
    let other = shrapnel::spawn(|| 7);
    shrapnel::event_loop();
    assert_eq!(waiter.join().unwrap(), Err(std::io::ErrorKind::TimedOut));
    assert_eq!(other.join().unwrap(), 7);
}

#[test]
fn unix_datagrams_between_a_bound_socket_and_an_unbound_one() {
    shrapnel::reset();
    let path = std::env::temp_dir().join(format!("shrapnel-dgram-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let server = UnixDatagram::bind(&path).unwrap();
    let p = path.clone();
    let srv = shrapnel::spawn(move || -> std::io::Result<Vec<u8>> {
        let mut buf = [0; 64];
        let (n, _from) = server.recv_from(&mut buf)?;
        Ok(buf[..n].to_vec())
    });
    let cli = shrapnel::spawn(move || -> std::io::Result<()> {
        let c = UnixDatagram::unbound()?;
        c.send_to(b"over unix", &p)?;
        let (a, b) = UnixDatagram::pair()?;
        a.send(b"pair")?;
        let mut buf = [0; 8];
        let n = b.recv(&mut buf)?;
        assert_eq!(&buf[..n], b"pair");
        Ok(())
    });
    shrapnel::event_loop();
    cli.join().unwrap().unwrap();
    assert_eq!(srv.join().unwrap().unwrap(), b"over unix");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn writev_and_readv_move_several_buffers_in_one_call() {
    shrapnel::reset();
    let (a, b) = socketpair().unwrap();
    let c = shrapnel::spawn(move || -> std::io::Result<(usize, usize, Vec<u8>)> {
        // A header and a body in one writev, as a server sends a response.
        let header = b"HTTP/1.1 200 OK\r\n\r\n";
        let body = b"hello";
        let wrote = (&a).write_vectored(&[IoSlice::new(header), IoSlice::new(body)])?;
        drop(a);
        // Read them into a fixed-size head and a tail in one readv.
        let mut head = [0u8; 8];
        let mut tail = [0u8; 64];
        let got = {
            let mut bufs = [IoSliceMut::new(&mut head), IoSliceMut::new(&mut tail)];
            (&b).read_vectored(&mut bufs)?
        };
        let mut all = head.to_vec();
        all.extend_from_slice(&tail[..got - 8]);
        let mut rest = Vec::new();
        (&b).read_to_end(&mut rest)?;
        all.extend_from_slice(&rest);
        Ok((wrote, got, all))
    });
    shrapnel::event_loop();
    let (wrote, got, all) = c.join().unwrap().unwrap();
    assert_eq!(wrote, 24, "both buffers in one writev");
    assert_eq!(got, 24, "both buffers filled by one readv");
    assert_eq!(all, b"HTTP/1.1 200 OK\r\n\r\nhello");
}
