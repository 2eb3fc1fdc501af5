//! Datagram sockets for coroutines: [`UdpSocket`] and [`UnixDatagram`], with std's methods;
//! a call that would block waits for readiness through the scheduler.
//!
//! Unlike the stream sockets, a short read here says nothing about what is queued (a
//! datagram smaller than the buffer is the common case), so every receive tries the
//! socket first and waits only on `EAGAIN`.

use std::io;
use std::mem::ManuallyDrop;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};
use std::os::unix::net::SocketAddr as UnixSocketAddr;
use std::path::Path;

use shrapnel_core::io::Direction;
use socket2::{Domain, Socket, Type};

use super::{adopt, SocketKind, ToSocketAddrs};
use crate::fd::OwnedFd;

/// What the datagram types share: the fd, its timeouts, closing, the raw-fd traits.
macro_rules! datagram_common {
    ($t:ident, $std:ty, $kind:expr) => {
        impl $t {
            /// The socket as std's type, borrowed for one call (the fd stays ours).
            fn std(&self) -> io::Result<ManuallyDrop<$std>> {
                // SAFETY: borrowed while self keeps the fd open; ManuallyDrop never
                // closes it.
                Ok(ManuallyDrop::new(unsafe {
                    <$std>::from_raw_fd(self.fd.get()?)
                }))
            }

            /// Run `op` on the borrowed std socket, waiting for `dir` while it would block.
            #[track_caller]
            fn call<T>(
                &self,
                dir: Direction,
                mut op: impl FnMut(&$std) -> io::Result<T>,
            ) -> io::Result<T> {
                self.fd.io(dir, |fd| {
                    // SAFETY: as in `std`: borrowed, never closed here.
                    let s = ManuallyDrop::new(unsafe { <$std>::from_raw_fd(fd) });
                    op(&s)
                })
            }

            /// Send on a connected socket.
            #[track_caller]
            pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
                self.call(Direction::Write, |s| s.send(buf))
            }

            /// Receive one datagram on a connected socket (the rest of a longer one is
            /// dropped, as always with datagrams).
            #[track_caller]
            pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
                self.call(Direction::Read, |s| s.recv(buf))
            }
        }

        timeouts_and_close!($t);

        std_conversion!($t, $std, $kind);

        fd_interop!($t);
    };
}

/// A UDP socket.
///
/// ```
/// use shrapnel::net::UdpSocket;
///
/// let server = UdpSocket::bind("127.0.0.1:0")?;
/// let addr = server.local_addr()?;
/// shrapnel::spawn(move || -> std::io::Result<()> {
///     let mut buf = [0; 64];
///     let (n, from) = server.recv_from(&mut buf)?; // blocks only this coroutine
///     server.send_to(&buf[..n], from)?;
///     Ok(())
/// });
/// let client = shrapnel::spawn(move || -> std::io::Result<Vec<u8>> {
///     let s = UdpSocket::bind("127.0.0.1:0")?;
///     s.connect(addr)?;
///     s.send(b"ping")?;
///     let mut buf = [0; 64];
///     let n = s.recv(&mut buf)?;
///     Ok(buf[..n].to_vec())
/// });
/// shrapnel::event_loop();
/// assert_eq!(client.join().unwrap()?, b"ping");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct UdpSocket {
    fd: OwnedFd,
}

datagram_common!(UdpSocket, std::net::UdpSocket, SocketKind::Udp);

impl UdpSocket {
    /// Bind to the first of the addresses that works (a name is resolved off the loop).
    /// Bind `127.0.0.1` unless the service must be reachable from elsewhere.
    #[track_caller]
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        Self::bind_with(addr, false)
    }

    /// Bind with SO_REUSEPORT, so each scheduler (`run_per_core`) can have its own socket
    /// on the same port and the kernel spreads the datagrams among them.
    #[track_caller]
    pub fn bind_reuseport(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        Self::bind_with(addr, true)
    }

    #[track_caller]
    fn bind_with(addr: impl ToSocketAddrs, reuseport: bool) -> io::Result<UdpSocket> {
        let mut last = None;
        for a in addr.resolve()? {
            let s = Socket::new(Domain::for_address(a), Type::DGRAM, None)?;
            s.set_nonblocking(true)?;
            if reuseport {
                s.set_reuse_port(true)?;
            }
            match s.bind(&a.into()) {
                Ok(()) => {
                    return Ok(UdpSocket {
                        fd: adopt(s, SocketKind::Udp),
                    })
                }
                Err(e) => last = Some(io::Error::new(e.kind(), format!("cannot bind {a}: {e}"))),
            }
        }
        Err(last
            .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind")))
    }

    /// Set the default peer: `send` goes there and only its datagrams are received.
    #[track_caller]
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let addrs = addr.resolve()?;
        let s = self.std()?;
        let mut last = None;
        for a in addrs {
            match s.connect(a) {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "no address to connect to")
        }))
    }

    /// Send one datagram to `addr` (a name is resolved off the loop, the first address
    /// used).
    #[track_caller]
    pub fn send_to(&self, buf: &[u8], addr: impl ToSocketAddrs) -> io::Result<usize> {
        let to = *addr
            .resolve()?
            .first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to send to"))?;
        self.call(Direction::Write, |s| s.send_to(buf, to))
    }

    /// Receive one datagram and who sent it.
    #[track_caller]
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.call(Direction::Read, |s| s.recv_from(buf))
    }

    /// Look at the next datagram without taking it.
    #[track_caller]
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.call(Direction::Read, |s| s.peek(buf))
    }

    /// Look at the next datagram and its sender without taking it.
    #[track_caller]
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.call(Direction::Read, |s| s.peek_from(buf))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.std()?.local_addr()
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.std()?.peer_addr()
    }

    /// Allow sending to broadcast addresses.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.std()?.set_broadcast(on)
    }

    /// Whether broadcast is allowed.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.std()?.broadcast()
    }

    /// Set the IP time-to-live of outgoing datagrams.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.std()?.set_ttl(ttl)
    }

    /// The IP time-to-live of outgoing datagrams.
    pub fn ttl(&self) -> io::Result<u32> {
        self.std()?.ttl()
    }

    /// Join an IPv4 multicast group on the interface with address `interface`.
    pub fn join_multicast_v4(
        &self,
        group: &std::net::Ipv4Addr,
        interface: &std::net::Ipv4Addr,
    ) -> io::Result<()> {
        self.std()?.join_multicast_v4(group, interface)
    }

    /// Leave an IPv4 multicast group.
    pub fn leave_multicast_v4(
        &self,
        group: &std::net::Ipv4Addr,
        interface: &std::net::Ipv4Addr,
    ) -> io::Result<()> {
        self.std()?.leave_multicast_v4(group, interface)
    }

    /// Join an IPv6 multicast group on interface number `interface` (0: any).
    pub fn join_multicast_v6(&self, group: &std::net::Ipv6Addr, interface: u32) -> io::Result<()> {
        self.std()?.join_multicast_v6(group, interface)
    }

    /// Leave an IPv6 multicast group.
    pub fn leave_multicast_v6(&self, group: &std::net::Ipv6Addr, interface: u32) -> io::Result<()> {
        self.std()?.leave_multicast_v6(group, interface)
    }

    /// Whether this host's own IPv4 multicast datagrams come back to it.
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.std()?.set_multicast_loop_v4(on)
    }

    /// The time-to-live of outgoing IPv4 multicast datagrams.
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        self.std()?.set_multicast_ttl_v4(ttl)
    }
}

/// A Unix-domain datagram socket.
#[derive(Debug)]
pub struct UnixDatagram {
    fd: OwnedFd,
}

datagram_common!(
    UnixDatagram,
    std::os::unix::net::UnixDatagram,
    SocketKind::UnixDatagram
);

impl UnixDatagram {
    /// Bind to `path`.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(std::os::unix::net::UnixDatagram::bind(path)?)
    }

    /// An unbound socket (to `send_to` from, or to `connect`).
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(std::os::unix::net::UnixDatagram::unbound()?)
    }

    /// A connected pair.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = std::os::unix::net::UnixDatagram::pair()?;
        Ok((UnixDatagram::from_std(a)?, UnixDatagram::from_std(b)?))
    }

    /// Set the default peer.
    pub fn connect(&self, path: impl AsRef<Path>) -> io::Result<()> {
        self.std()?.connect(path)
    }

    /// Send one datagram to the socket at `path`.
    #[track_caller]
    pub fn send_to(&self, buf: &[u8], path: impl AsRef<Path>) -> io::Result<usize> {
        let path = path.as_ref();
        self.call(Direction::Write, |s| s.send_to(buf, path))
    }

    /// Receive one datagram and who sent it.
    #[track_caller]
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, UnixSocketAddr)> {
        self.call(Direction::Read, |s| s.recv_from(buf))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<UnixSocketAddr> {
        self.std()?.local_addr()
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<UnixSocketAddr> {
        self.std()?.peer_addr()
    }

    /// Shut down one or both directions.
    pub fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        self.std()?.shutdown(how)
    }
}
