//! The load generator of `bench/echo.sh`: T threads (1 unless `--threads T`), each a
//! level-triggered epoll loop over its share of the connections (connection i on thread
//! i mod T), and the main thread keeping time.
//!
//! `echo_load load PORT CONNS [options]`: CONNS connections to 127.0.0.1:PORT, each in a
//! closed loop (send a SIZE-byte request, wait for all SIZE bytes of the echo, send the
//! next); after WARMUP seconds it measures for DURATION seconds and prints one line
//! `result conns=.. requests=.. seconds=.. rps=.. p50_us=.. p99_us=..`, with
//! `server_cpu_s=.. cpu_us_per_req=..` when given the server's pid (utime + stime of the
//! whole process from `/proc/PID/stat`, read at the window's start and end), and always
//! `load_cpu_s=.. load_cpu_pct=..`: this generator's own CPU time over the window (user +
//! system, `getrusage`) and that time as a percentage of one CPU (on a machine where the
//! generator and the server share CPUs, what it took from the server).
//! Options: `--size B` (100), `--warmup S` (0.5), `--duration S` (3), `--server-pid PID`,
//! `--window-cmd CMD`: instead of DURATION, the window is the life of `sh -c CMD`, started
//! after the warm-up (how the script counts the server's system calls over a window whose
//! requests are counted here); `--threads T` (1): the number of driving threads, printed
//! as `load_threads=T` (the `--cores` mode of the script gives it more on a machine with
//! CPUs to spare, so the generator is not what limits N server cores).
//!
//! `echo_load idle PORT CONNS`: open CONNS connections, one request/response on each (so
//! the server has accepted and served every one), print `held CONNS`, and keep them open
//! until killed.
//!
//! Sockets close with an RST (`SO_LINGER` 0), so thousands of runs leave no `TIME_WAIT`.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::process::Command;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Options {
    size: usize,
    warmup: f64,
    duration: f64,
    server_pid: Option<u32>,
    window_cmd: Option<String>,
    threads: usize,
}

fn usage() -> ! {
    eprintln!(
        "usage: echo_load load PORT CONNS [--size B] [--warmup S] [--duration S] \
         [--server-pid PID] [--window-cmd CMD] [--threads T]\n       echo_load idle PORT CONNS"
    );
    std::process::exit(2);
}

fn parse<T: std::str::FromStr>(s: Option<String>) -> T {
    s.and_then(|s| s.parse().ok()).unwrap_or_else(|| usage())
}

/// Connect to 127.0.0.1:`port` with `TCP_NODELAY` and `SO_LINGER` 0.
fn connect(port: u16) -> io::Result<TcpStream> {
    let s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_nodelay(true)?;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `s` is an open socket; `linger` outlives the call and its size is passed.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(s)
}

/// utime + stime of process `pid` (all its threads), in seconds.
fn cpu_seconds(pid: u32) -> io::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces), from field 3 (state) on:
    // utime and stime are fields 14 and 15.
    let rest = stat
        .rsplit_once(')')
        .ok_or_else(|| io::Error::other("bad /proc stat"))?
        .1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> io::Result<f64> {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| io::Error::other("bad /proc stat field"))
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok((ticks(11)? + ticks(12)?) / hz)
}

/// User + system CPU time of this process (all its threads), in seconds.
fn own_cpu_seconds() -> io::Result<f64> {
    // SAFETY: an all-zero rusage is a valid value for getrusage to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage for the duration of the call.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(secs(usage.ru_utime) + secs(usage.ru_stime))
}

/// One connection of the closed loop.
struct Conn {
    stream: TcpStream,
    /// Bytes of the current request still to send.
    unsent: usize,
    /// Bytes of the current echo received so far.
    received: usize,
    /// When the current request was sent.
    sent_at: Instant,
    /// Registered for writability too (a request did not fit in the socket).
    want_out: bool,
}

fn epoll_ctl(epfd: RawFd, op: i32, fd: RawFd, token: u64, events: u32) -> io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: token };
    // SAFETY: `epfd` is our epoll instance, `fd` an open socket, `ev` a valid event the
    // kernel only reads during the call.
    if unsafe { libc::epoll_ctl(epfd, op, fd, &mut ev) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Send what is left of the current request. Err: the connection is dead.
fn send(epfd: RawFd, i: usize, c: &mut Conn, req: &[u8]) -> io::Result<()> {
    while c.unsent > 0 {
        match c.stream.write(&req[req.len() - c.unsent..]) {
            Ok(n) => c.unsent -= n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let want_out = c.unsent > 0;
    if want_out != c.want_out {
        let mut events = libc::EPOLLIN as u32;
        if want_out {
            events |= libc::EPOLLOUT as u32;
        }
        epoll_ctl(
            epfd,
            libc::EPOLL_CTL_MOD,
            c.stream.as_raw_fd(),
            i as u64,
            events,
        )?;
        c.want_out = want_out;
    }
    Ok(())
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1e3
}

/// The phases of a run, shared by the coordinator and the threads that drive connections.
const WARMING: u8 = 0;
const MEASURING: u8 = 1;
const STOPPED: u8 = 2;

/// What one driving thread saw in the window.
struct Tally {
    requests: u64,
    /// Round-trip times of the window's requests, in ns.
    lat: Vec<u32>,
    /// Echoes longer than the request.
    errors: u64,
}

/// Drive `cs` in closed loops on one epoll instance until the phase is STOPPED; count
/// (and time) the requests completed while it is MEASURING. A connection's error stops
/// every thread.
fn drive(mut cs: Vec<Conn>, size: usize, phase: &AtomicU8) -> io::Result<Tally> {
    // SAFETY: plain system call; the result is checked.
    let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if epfd < 0 {
        return Err(io::Error::last_os_error());
    }
    let req = vec![b'x'; size];
    let mut buf = vec![0u8; size.max(4096)];
    for (i, c) in cs.iter().enumerate() {
        epoll_ctl(
            epfd,
            libc::EPOLL_CTL_ADD,
            c.stream.as_raw_fd(),
            i as u64,
            libc::EPOLLIN as u32,
        )?;
    }
    let start = Instant::now();
    for (i, c) in cs.iter_mut().enumerate() {
        c.unsent = size;
        c.sent_at = start;
        send(epfd, i, c, &req)?;
    }
    let mut tally = Tally {
        requests: 0,
        lat: Vec::with_capacity(1 << 20),
        errors: 0,
    };
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    loop {
        let measuring = match phase.load(Ordering::Acquire) {
            WARMING => false,
            MEASURING => true,
            _ => break,
        };
        // SAFETY: `events` has room for `events.len()` entries, which the kernel fills.
        let n = unsafe { libc::epoll_wait(epfd, events.as_mut_ptr(), events.len() as i32, 10) };
        if n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return Err(io::Error::last_os_error());
        }
        let now = Instant::now();
        for ev in &events[..n.max(0) as usize] {
            let i = ev.u64 as usize;
            let c = &mut cs[i];
            let failed = |e| io::Error::other(format!("connection {i}: {e}"));
            if c.unsent > 0 {
                send(epfd, i, c, &req).map_err(failed)?;
            }
            if ev.events & (libc::EPOLLIN | libc::EPOLLERR | libc::EPOLLHUP) as u32 == 0 {
                continue;
            }
            match c.stream.read(&mut buf) {
                Ok(0) => return Err(failed(io::Error::other("closed"))),
                Ok(got) => {
                    c.received += got;
                    if c.received > size {
                        tally.errors += 1;
                    }
                    if c.received >= size {
                        if measuring {
                            tally.requests += 1;
                            let ns = (now - c.sent_at).as_nanos().min(u32::MAX as u128);
                            tally.lat.push(ns as u32);
                        }
                        c.received = 0;
                        c.unsent = size;
                        c.sent_at = now;
                        send(epfd, i, c, &req).map_err(failed)?;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(failed(e)),
            }
        }
    }
    Ok(tally)
}

/// Sleep until `deadline`, or until a driving thread stopped early (it failed).
fn sleep_until(deadline: Instant, phase: &AtomicU8) {
    loop {
        let now = Instant::now();
        if now >= deadline || phase.load(Ordering::Acquire) == STOPPED {
            return;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(10)));
    }
}

fn load(port: u16, conns: usize, o: Options) -> io::Result<()> {
    let threads = o.threads.clamp(1, conns.max(1));
    let mut shares: Vec<Vec<Conn>> = (0..threads).map(|_| Vec::new()).collect();
    for i in 0..conns {
        let stream = connect(port)?;
        stream.set_nonblocking(true)?;
        shares[i % threads].push(Conn {
            stream,
            unsent: 0,
            received: 0,
            sent_at: Instant::now(),
            want_out: false,
        });
    }
    let phase = Arc::new(AtomicU8::new(WARMING));
    let size = o.size;
    let drivers: Vec<_> = shares
        .into_iter()
        .map(|cs| {
            let phase = phase.clone();
            std::thread::spawn(move || {
                let r = drive(cs, size, &phase);
                if r.is_err() {
                    phase.store(STOPPED, Ordering::Release);
                }
                r
            })
        })
        .collect();

    sleep_until(Instant::now() + Duration::from_secs_f64(o.warmup), &phase);
    let cpu0 = match o.server_pid {
        Some(pid) => cpu_seconds(pid)?,
        None => 0.0,
    };
    let own0 = own_cpu_seconds()?;
    let wstart = Instant::now();
    // Unless a driver already failed (then its error is reported below).
    let _ = phase.compare_exchange(WARMING, MEASURING, Ordering::AcqRel, Ordering::Acquire);
    match &o.window_cmd {
        Some(cmd) => {
            Command::new("sh").arg("-c").arg(cmd).status()?;
        }
        None => sleep_until(wstart + Duration::from_secs_f64(o.duration), &phase),
    }
    phase.store(STOPPED, Ordering::Release);
    let finished = Instant::now();
    let own = own_cpu_seconds()? - own0;
    let cpu = match o.server_pid {
        Some(pid) => Some(cpu_seconds(pid)? - cpu0),
        None => None,
    };
    let (mut requests, mut errors, mut lat) = (0, 0, Vec::new());
    for d in drivers {
        let tally = d
            .join()
            .map_err(|_| io::Error::other("a driving thread panicked"))??;
        requests += tally.requests;
        errors += tally.errors;
        lat.extend(tally.lat);
    }
    let secs = (finished - wstart).as_secs_f64();
    lat.sort_unstable();
    let mut line = format!(
        "result conns={conns} requests={requests} seconds={secs:.3} rps={:.0} p50_us={:.1} \
         p99_us={:.1} errors={errors} load_threads={threads} load_cpu_s={own:.2} \
         load_cpu_pct={:.0}",
        requests as f64 / secs,
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        own * 100.0 / secs,
    );
    if let Some(cpu) = cpu {
        line += &format!(
            " server_cpu_s={cpu:.2} cpu_us_per_req={:.3}",
            cpu * 1e6 / requests.max(1) as f64
        );
    }
    println!("{line}");
    Ok(())
}

fn idle(port: u16, conns: usize) -> io::Result<()> {
    let mut held = Vec::with_capacity(conns);
    let req = [b'x'; 100];
    let mut buf = [0u8; 100];
    for _ in 0..conns {
        let mut s = connect(port)?;
        s.write_all(&req)?;
        s.read_exact(&mut buf)?;
        held.push(s);
    }
    println!("held {conns}");
    io::stdout().flush()?;
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| usage());
    let port: u16 = parse(args.next());
    let conns: usize = parse(args.next());
    let mut o = Options {
        size: 100,
        warmup: 0.5,
        duration: 3.0,
        server_pid: None,
        window_cmd: None,
        threads: 1,
    };
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--size" => o.size = parse(args.next()),
            "--warmup" => o.warmup = parse(args.next()),
            "--duration" => o.duration = parse(args.next()),
            "--server-pid" => o.server_pid = Some(parse(args.next())),
            "--window-cmd" => o.window_cmd = Some(args.next().unwrap_or_else(|| usage())),
            "--threads" => o.threads = parse(args.next()),
            _ => usage(),
        }
    }
    let r = match mode.as_str() {
        "load" => load(port, conns, o),
        "idle" => idle(port, conns),
        _ => usage(),
    };
    if let Err(e) = r {
        eprintln!("echo_load: {e}");
        std::process::exit(1);
    }
}
