//! Names to addresses without stalling the scheduler: the [`ToSocketAddrs`] every
//! `connect` and `bind` of [`net`](super) takes, and [`lookup_host`].
//!
//! std's `ToSocketAddrs` runs `getaddrinfo` on the calling thread; for a name that takes a
//! second to resolve, every coroutine of the scheduler would wait that second. Here an
//! address that is already numeric (`"127.0.0.1:80"`, `("::1", 80)`, a `SocketAddr`) is
//! parsed on the spot, and a name is resolved on the [blocking pool](crate::blocking),
//! blocking only the calling coroutine (and interruptible, like any wait: a timeout
//! around `connect` covers the lookup too). [`set_resolver`] replaces the resolver, for
//! tests or a program with its own (a cache, a DNS client).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::RwLock;

/// Something that names one or more socket addresses: what `connect`, `bind` and
/// [`lookup_host`] take. Implemented for the same types as std's `ToSocketAddrs`.
pub trait ToSocketAddrs {
    /// The addresses, resolving a name on the blocking pool if there is one to resolve.
    fn resolve(&self) -> io::Result<Vec<SocketAddr>>;
}

/// A function that resolves `host` (a name, not a numeric address) and `port`.
pub type Resolver = fn(host: &str, port: u16) -> io::Result<Vec<SocketAddr>>;

static RESOLVER: RwLock<Resolver> = RwLock::new(system_resolver);

/// The default resolver: the system's (`getaddrinfo`, through std).
pub fn system_resolver(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    std::net::ToSocketAddrs::to_socket_addrs(&(host, port)).map(Iterator::collect)
}

/// Resolve names with `resolver` from now on, in every thread (it runs on the blocking
/// pool); returns the one it replaces.
pub fn set_resolver(resolver: Resolver) -> Resolver {
    let mut slot = RESOLVER.write().unwrap_or_else(|p| p.into_inner());
    std::mem::replace(&mut *slot, resolver)
}

/// The addresses `addr` names, resolving a name on the blocking pool.
///
/// ```no_run
/// shrapnel::spawn(|| {
///     for a in shrapnel::net::lookup_host(("localhost", 80))? {
///         println!("{a}");
///     }
///     Ok::<(), std::io::Error>(())
/// });
/// shrapnel::event_loop();
/// ```
#[track_caller]
pub fn lookup_host(addr: impl ToSocketAddrs) -> io::Result<Vec<SocketAddr>> {
    addr.resolve()
}

/// Resolve `host:port`, numeric first.
#[track_caller]
fn host_port(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    // "[::1]" as std accepts it in (host, port) form.
    if let Some(ip) = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse::<Ipv6Addr>().ok())
    {
        return Ok(vec![SocketAddr::new(IpAddr::V6(ip), port)]);
    }
    let resolver = *RESOLVER.read().unwrap_or_else(|p| p.into_inner());
    let owned = host.to_string();
    let found = crate::blocking::blocking(move || resolver(&owned, port))??;
    if found.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{host}:{port}: the resolver found no address"),
        ));
    }
    Ok(found)
}

/// Resolve `"host:port"`.
#[track_caller]
fn host_and_port(s: &str) -> io::Result<Vec<SocketAddr>> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(vec![a]);
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{s:?} is not host:port (the port is missing)"),
        ));
    };
    let port: u16 = port.parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{s:?}: {port:?} is not a port number"),
        )
    })?;
    host_port(host, port)
}

impl ToSocketAddrs for SocketAddr {
    fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![*self])
    }
}

impl ToSocketAddrs for SocketAddrV4 {
    fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::V4(*self)])
    }
}

impl ToSocketAddrs for SocketAddrV6 {
    fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::V6(*self)])
    }
}

impl ToSocketAddrs for (IpAddr, u16) {
    fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::new(self.0, self.1)])
    }
}

impl ToSocketAddrs for (Ipv4Addr, u16) {
    fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::new(IpAddr::V4(self.0), self.1)])
    }
}

impl ToSocketAddrs for (Ipv6Addr, u16) {
    fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::new(IpAddr::V6(self.0), self.1)])
    }
}

impl ToSocketAddrs for (&str, u16) {
    #[track_caller]
    fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        host_port(self.0, self.1)
    }
}

impl ToSocketAddrs for (String, u16) {
    #[track_caller]
    fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        host_port(&self.0, self.1)
    }
}

impl ToSocketAddrs for str {
    #[track_caller]
    fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        host_and_port(self)
    }
}

impl ToSocketAddrs for String {
    #[track_caller]
    fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        host_and_port(self)
    }
}

impl ToSocketAddrs for [SocketAddr] {
    fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(self.to_vec())
    }
}

impl ToSocketAddrs for Vec<SocketAddr> {
    fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(self.clone())
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {
    #[track_caller]
    fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        (**self).resolve()
    }
}
