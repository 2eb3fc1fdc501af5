//! What the backdoor tests share: a socket path per test, `drive` (the scheduler on the
//! test thread, a client on a std thread), the `Client` that speaks the console's protocol,
//! a known set of coroutines to look at, the external tools (`socat`, `nc`), re-running a
//! test in a child process, and TCP logins. Each of `backdoor_protocol.rs`,
//! `backdoor_security.rs` and `backdoor_commands.rs` uses part of it.
#![allow(dead_code, unused_imports)]

pub use std::cell::Cell;
pub use std::io::{Read, Write};
pub use std::os::unix::fs::PermissionsExt;
pub use std::os::unix::net::UnixStream;
pub use std::path::{Path, PathBuf};
pub use std::process::{Command, Stdio};
pub use std::rc::Rc;
pub use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
pub use std::sync::Arc;
pub use std::time::{Duration, Instant};

pub use shrapnel::backdoor::{Backdoor, ListenAddr, Options};
pub use shrapnel::Interrupted;

pub const PROMPT: &str = "shrapnel> ";

/// A socket path of its own for each test.
pub fn sock_path(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let p = std::env::temp_dir().join(format!("shrapnel-bd-{}-{n}-{tag}.sock", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// Serve `backdoor` on this thread's scheduler while `client` runs on a std thread; the
/// event loop ends when the client is done. Returns what the client returned.
///
/// One test's loop at a time: the console shows every scheduler of the process in its
/// loop, and the tests of one binary run on threads of one process, so each test's
/// session would otherwise list (and wait for) the others' schedulers too.
pub fn drive<R: Send + 'static>(
    backdoor: Backdoor,
    client: impl FnOnce() -> R + Send + 'static,
) -> R {
    static ONE_LOOP_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _serial = ONE_LOOP_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    let client = std::thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(client));
        flag.store(true, Ordering::Release);
        r
    });
    shrapnel::Builder::new()
        .name("backdoor")
        .spawn(move || backdoor.serve())
        .unwrap();
    shrapnel::Builder::new()
        .name("watcher")
        .spawn(move || {
            while !done.load(Ordering::Acquire) {
                if shrapnel::sleep(Duration::from_millis(2)).is_err() {
                    break;
                }
            }
            shrapnel::set_exit(0);
        })
        .unwrap();
    shrapnel::event_loop();
    shrapnel::reset();
    match client.join().expect("client thread") {
        Ok(r) => r,
        Err(p) => std::panic::resume_unwind(p),
    }
}

/// A client's end of a connection: a std unix or TCP stream.
pub trait Stream: Read + Write + Send {}
impl Stream for UnixStream {}
impl Stream for std::net::TcpStream {}

/// A line client over a std unix or TCP socket, with timeouts so a broken server fails the
/// test instead of hanging it.
pub struct Client {
    pub s: Box<dyn Stream>,
    pub buf: Vec<u8>,
    /// What the server said before the first prompt.
    pub welcome: String,
}

impl Client {
    pub fn raw(path: &Path) -> Client {
        let s = UnixStream::connect(path).expect("connect to the backdoor");
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
        Client::over(Box::new(s))
    }

    pub fn tcp(addr: std::net::SocketAddr) -> Client {
        let s = std::net::TcpStream::connect(addr).expect("connect to the backdoor");
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
        Client::over(Box::new(s))
    }

    pub fn over(s: Box<dyn Stream>) -> Client {
        Client {
            s,
            buf: Vec::new(),
            welcome: String::new(),
        }
    }

    pub fn connect(path: &Path) -> Client {
        let mut c = Client::raw(path);
        c.welcome = c.read_until(PROMPT);
        c
    }

    /// Everything up to `pat` (which is consumed).
    pub fn read_until(&mut self, pat: &str) -> String {
        String::from_utf8_lossy(&self.read_until_bytes(pat.as_bytes())).into_owned()
    }

    /// The bytes up to `pat` (which is consumed), telnet commands and all.
    pub fn read_until_bytes(&mut self, pat: &[u8]) -> Vec<u8> {
        loop {
            if let Some(i) = find(&self.buf, pat) {
                let bytes = self.buf[..i].to_vec();
                self.buf.drain(..i + pat.len());
                return bytes;
            }
            let mut chunk = [0u8; 8192];
            match self.s.read(&mut chunk) {
                Ok(0) => panic!(
                    "connection closed before {:?}; got {:?}",
                    String::from_utf8_lossy(pat),
                    String::from_utf8_lossy(&self.buf)
                ),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => panic!(
                    "reading until {:?}: {e}; got {:?}",
                    String::from_utf8_lossy(pat),
                    String::from_utf8_lossy(&self.buf)
                ),
            }
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).expect("write to the backdoor");
    }

    /// Send a line; its output, up to the next prompt.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\n").as_bytes());
        self.read_until(PROMPT)
    }

    /// Everything up to `pat` as `Ok`, or everything until the server closed as `Err`.
    pub fn until_or_close(&mut self, pat: &str) -> Result<String, String> {
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(i) = find(&self.buf, pat.as_bytes()) {
                let text = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + pat.len());
                return Ok(text);
            }
            match self.s.read(&mut chunk) {
                Ok(0) => return Err(self.rest()),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return Err(self.rest())
                }
                Err(e) => panic!(
                    "reading until {pat:?}: {e}; got {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
            }
        }
    }

    /// Everything until the server closes (a reset after the data counts as the end).
    pub fn rest(&mut self) -> String {
        let mut chunk = [0u8; 8192];
        loop {
            match self.s.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!(
                    "waiting for the server to close: {e}; got {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
            }
        }
        String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned()
    }
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The row of a table whose second column is `name`.
pub fn row<'a>(table: &'a str, name: &str) -> &'a str {
    table
        .lines()
        .find(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .nth(1)
                == Some(name)
        })
        .unwrap_or_else(|| panic!("no row for {name:?} in\n{table}"))
}

/// The id of the live coroutine named `name`, from the `live` command.
pub fn id_of(c: &mut Client, name: &str) -> u64 {
    c.cmd("live")
        .lines()
        .skip(1)
        .find_map(|l| {
            let (id, n) = l.trim_start().split_once("  ")?;
            (n.trim_start() == name).then(|| id.parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no live coroutine named {name:?}"))
}

pub fn unix(tag: &str) -> (Options, PathBuf) {
    let p = sock_path(tag);
    (Options::unix(&p), p)
}

/// Ids of a known set of coroutines: what each waits for is fixed.
pub struct Known {
    pub sleeper: u64,
    pub reader: u64,
    pub holder: u64,
    pub locker: u64,
    pub joiner: u64,
    pub busy: u64,
    pub not_started: u64,
}

/// Spawn the known coroutines; `sleeper_saw` gets how its sleep ended.
pub fn spawn_known(sleeper_saw: Rc<Cell<Option<Result<(), Interrupted>>>>) -> Known {
    let sleeper = shrapnel::Builder::new()
        .name("sleeper")
        .spawn(move || sleeper_saw.set(Some(shrapnel::sleep(Duration::from_secs(3600)))))
        .unwrap();
    let (a, b) = shrapnel::net::socketpair().unwrap();
    let reader = shrapnel::Builder::new()
        .name("reader")
        .spawn(move || {
            let _keep = b;
            let mut buf = [0u8; 16];
            let _ = (&a).read(&mut buf);
        })
        .unwrap();
    let mutex = Rc::new(shrapnel::sync::Mutex::new(()));
    let m = mutex.clone();
    let holder = shrapnel::Builder::new()
        .name("holder")
        .spawn(move || {
            let _g = m.lock().unwrap();
            let _ = shrapnel::sleep(Duration::from_secs(3600));
        })
        .unwrap();
    let locker = shrapnel::Builder::new()
        .name("locker")
        // Spawned after the holder, so it runs (and finds the mutex taken) after it.
        .spawn(move || {
            let _ = mutex.lock();
        })
        .unwrap();
    let sleeper_id = sleeper.id();
    let joiner = shrapnel::Builder::new()
        .name("joiner")
        .spawn(move || {
            let _ = sleeper.join();
        })
        .unwrap();
    let busy = shrapnel::Builder::new()
        .name("busy")
        .spawn(|| {
            let t = Instant::now();
            while t.elapsed() < Duration::from_millis(60) {
                std::hint::spin_loop();
            }
            let _ = shrapnel::sleep(Duration::from_secs(3600));
        })
        .unwrap();
    let not_started = shrapnel::Builder::new()
        .name("unstarted")
        .build(|| ())
        .unwrap();
    let not_started_id = not_started.id();
    std::mem::forget(not_started);
    Known {
        sleeper: sleeper_id,
        reader: reader.id(),
        holder: holder.id(),
        locker: locker.id(),
        joiner: joiner.id(),
        busy: busy.id(),
        not_started: not_started_id,
    }
}

pub fn need(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "this test drives the backdoor with `{tool}`; install it (ci/test.sh does: \
         . ci/apt.sh; apt_install socat netcat-openbsd)"
    );
}

/// Run `program args` with `input` on stdin; its stdout.
pub fn run_tool(program: &str, args: &[&str], input: &'static [u8]) -> String {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(5);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{program} did not finish");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{program}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the test `name` of this binary again in a child process with
/// `SHRAPNEL_BACKDOOR_CHILD` set; returns its stderr.
pub fn child_stderr(name: &str) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env("SHRAPNEL_BACKDOOR_CHILD", "1")
        .output()
        .expect("re-running the test binary");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "child failed: {err}");
    err
}

/// A loopback TCP backdoor that lets `admin` in with the password `s3cret`.
pub fn tcp_with_login(opts: impl FnOnce(Options) -> Options) -> (Backdoor, std::net::SocketAddr) {
    let o = Options::tcp(([127, 0, 0, 1], 0)).auth(|user, password| {
        user == "admin" && shrapnel::backdoor::constant_time_eq(password.as_bytes(), b"s3cret")
    });
    let bd = Backdoor::bind(opts(o)).unwrap();
    let ListenAddr::Tcp(addr) = bd.addr().clone() else {
        panic!("{:?}", bd.addr())
    };
    (bd, addr)
}

/// One login attempt over TCP: the client at the prompt, or what the server said before
/// it closed.
pub fn login(addr: std::net::SocketAddr, password: &str) -> Result<Client, String> {
    let mut c = Client::tcp(addr);
    c.read_until("user: ");
    c.send(b"admin\r\n");
    c.read_until("password: ");
    c.send(format!("{password}\r\n").as_bytes());
    c.until_or_close(PROMPT).map(|welcome| {
        c.welcome = welcome;
        c
    })
}
