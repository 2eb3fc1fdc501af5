//! Edge-triggered registration with a readiness cache vs `EPOLLONESHOT` re-arming: syscalls
//! and time per steady-state round trip. The numbers quoted in the crate doc come from here.
//!
//! One thread, one epoll set, one socketpair. Each end behaves like a coroutine over the
//! scheduler: when its data arrives it reads until `EAGAIN`, answers each byte with a byte,
//! and waits again. A round trip is `a → b → a`: both ends wait once.
//!
//! - `et`: both ends registered once with `EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET`, as
//!   [`EpollPoller`](shrapnel_epoll::EpollPoller) does; waiting costs nothing beyond
//!   `epoll_wait`.
//! - `oneshot`: both ends registered with `EPOLLIN|EPOLLONESHOT`; every wait must re-arm
//!   its end with `epoll_ctl(EPOLL_CTL_MOD)`.
//!
//! Every syscall goes through a counting wrapper; `strace -c -f` gives the same counts.
//!
//! ```text
//! cargo run --release -p shrapnel-epoll --example et_vs_oneshot -- [round_trips] [et|oneshot|both]
//! ```

#[cfg(target_os = "linux")]
mod bench {
    use std::time::{Duration, Instant};

    /// Syscall counts of one run.
    #[derive(Default, Debug, Clone, Copy)]
    pub struct Counts {
        pub epoll_wait: u64,
        pub epoll_ctl: u64,
        pub read: u64,
        pub write: u64,
    }

    impl Counts {
        fn total(&self) -> u64 {
            self.epoll_wait + self.epoll_ctl + self.read + self.write
        }
    }

    #[derive(Clone, Copy, PartialEq, Eq)]
    pub enum Mode {
        EdgeTriggered,
        OneShot,
    }

    impl Mode {
        pub fn name(self) -> &'static str {
            match self {
                Mode::EdgeTriggered => "EPOLLET + readiness cache",
                Mode::OneShot => "EPOLLONESHOT re-armed per wait",
            }
        }
    }

    struct Sys {
        epfd: i32,
        counts: Counts,
    }

    impl Sys {
        fn ctl(&mut self, op: i32, fd: i32, flags: i32) {
            self.counts.epoll_ctl += 1;
            let mut ev = libc::epoll_event {
                events: flags as u32,
                u64: fd as u64,
            };
            // SAFETY: `ev` is live for the call.
            let rc = unsafe { libc::epoll_ctl(self.epfd, op, fd, &mut ev) };
            assert_eq!(rc, 0, "epoll_ctl: {}", std::io::Error::last_os_error());
        }

        fn wait(&mut self, out: &mut [libc::epoll_event]) -> usize {
            self.counts.epoll_wait += 1;
            // SAFETY: `out` is a live buffer of `out.len()` entries.
            let n = unsafe { libc::epoll_wait(self.epfd, out.as_mut_ptr(), out.len() as i32, -1) };
            assert!(n >= 0, "epoll_wait: {}", std::io::Error::last_os_error());
            n as usize
        }

        /// Read into `buf`; `None` on EAGAIN.
        fn read(&mut self, fd: i32, buf: &mut [u8]) -> Option<usize> {
            self.counts.read += 1;
            // SAFETY: reads into a live buffer of `buf.len()` bytes.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "read: {e}");
                return None;
            }
            Some(n as usize)
        }

        fn write(&mut self, fd: i32, buf: &[u8]) {
            self.counts.write += 1;
            // SAFETY: writes a live buffer of `buf.len()` bytes.
            let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
            assert_eq!(
                n,
                buf.len() as isize,
                "write: {}",
                std::io::Error::last_os_error()
            );
        }
    }

    pub fn run(mode: Mode, round_trips: u64) -> (Counts, Duration) {
        let mut fds = [0i32; 2];
        // SAFETY: socketpair fills a live two-element array.
        let rc = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        assert_eq!(rc, 0);
        let (a, b) = (fds[0], fds[1]);
        // SAFETY: plain syscall.
        let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        assert!(epfd >= 0);
        let mut sys = Sys {
            epfd,
            counts: Counts::default(),
        };
        let flags = match mode {
            Mode::EdgeTriggered => {
                libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET
            }
            Mode::OneShot => libc::EPOLLIN | libc::EPOLLONESHOT,
        };
        sys.ctl(libc::EPOLL_CTL_ADD, a, flags);
        sys.ctl(libc::EPOLL_CTL_ADD, b, flags);
        let setup = sys.counts;

        let start = Instant::now();
        let mut done = 0u64;
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 8];
        let mut buf = [0u8; 64];
        // `a` starts the first round trip; both ends then answer each byte they receive.
        // The socket always has room for one byte: the writable cache stays set, so writes
        // need no wait in either mode.
        sys.write(a, b"p");
        while done < round_trips {
            let n = sys.wait(&mut events);
            for ev in &events[..n] {
                let fd = ev.u64 as i32;
                if ev.events & libc::EPOLLIN as u32 == 0 {
                    continue; // a writable edge: the cache is already "writable"
                }
                while let Some(got) = sys.read(fd, &mut buf) {
                    assert!(got > 0, "peer closed");
                    for _ in 0..got {
                        if fd == a {
                            done += 1;
                            if done == round_trips {
                                break;
                            }
                        }
                        sys.write(fd, b"p");
                    }
                }
                // Read hit EAGAIN: the end waits again. A oneshot registration is disarmed
                // since it fired and must be re-armed first.
                if mode == Mode::OneShot {
                    sys.ctl(libc::EPOLL_CTL_MOD, fd, flags);
                }
            }
        }
        let elapsed = start.elapsed();
        // SAFETY: all three fds are ours.
        unsafe {
            libc::close(a);
            libc::close(b);
            libc::close(epfd);
        }
        let c = sys.counts;
        let steady = Counts {
            epoll_wait: c.epoll_wait,
            epoll_ctl: c.epoll_ctl - setup.epoll_ctl,
            read: c.read,
            write: c.write,
        };
        (steady, elapsed)
    }

    pub fn report(mode: Mode, round_trips: u64, c: Counts, t: Duration) {
        let per = |x: u64| x as f64 / round_trips as f64;
        println!(
            "{:<32} {:>9} round trips  {:>6.2} epoll_ctl/rt  {:>6.2} syscalls/rt \
             (wait {:.2}, read {:.2}, write {:.2})  {:>8.3} s  {:>7.0} ns/rt",
            mode.name(),
            round_trips,
            per(c.epoll_ctl),
            per(c.total()),
            per(c.epoll_wait),
            per(c.read),
            per(c.write),
            t.as_secs_f64(),
            t.as_nanos() as f64 / round_trips as f64,
        );
    }
}

#[cfg(target_os = "linux")]
fn main() {
    use bench::Mode;
    let mut args = std::env::args().skip(1);
    let round_trips: u64 = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let modes: &[Mode] = match args.next().as_deref() {
        Some("et") => &[Mode::EdgeTriggered],
        Some("oneshot") => &[Mode::OneShot],
        _ => &[Mode::EdgeTriggered, Mode::OneShot],
    };
    for &mode in modes {
        let (counts, elapsed) = bench::run(mode, round_trips);
        bench::report(mode, round_trips, counts, elapsed);
    }
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("et_vs_oneshot measures epoll, which only Linux has");
}
