//! The backdoor driven by real clients: `socat` and `nc -U` for whole sessions, and a Rust
//! client (unix or TCP) on a plain std thread (while the scheduler runs on the test thread)
//! for everything else — every built-in command against a known set of coroutines, bad
//! input, limits, the security rules (logins over TCP included), and `eval`'s limits.
//! Timings are only asserted as lower bounds (a delay the server must impose).
#![cfg(feature = "backdoor")]

use std::cell::Cell;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shrapnel::backdoor::{Backdoor, ListenAddr, Options};
use shrapnel::Interrupted;

const PROMPT: &str = "shrapnel> ";

/// A socket path of its own for each test.
fn sock_path(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let p = std::env::temp_dir().join(format!("shrapnel-bd-{}-{n}-{tag}.sock", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// Serve `backdoor` on this thread's scheduler while `client` runs on a std thread; the
/// event loop ends when the client is done. Returns what the client returned.
fn drive<R: Send + 'static>(backdoor: Backdoor, client: impl FnOnce() -> R + Send + 'static) -> R {
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
trait Stream: Read + Write + Send {}
impl Stream for UnixStream {}
impl Stream for std::net::TcpStream {}

/// A line client over a std unix or TCP socket, with timeouts so a broken server fails the
/// test instead of hanging it.
struct Client {
    s: Box<dyn Stream>,
    buf: Vec<u8>,
    /// What the server said before the first prompt.
    welcome: String,
}

impl Client {
    fn raw(path: &Path) -> Client {
        let s = UnixStream::connect(path).expect("connect to the backdoor");
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
        Client::over(Box::new(s))
    }

    fn tcp(addr: std::net::SocketAddr) -> Client {
        let s = std::net::TcpStream::connect(addr).expect("connect to the backdoor");
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
        Client::over(Box::new(s))
    }

    fn over(s: Box<dyn Stream>) -> Client {
        Client {
            s,
            buf: Vec::new(),
            welcome: String::new(),
        }
    }

    fn connect(path: &Path) -> Client {
        let mut c = Client::raw(path);
        c.welcome = c.read_until(PROMPT);
        c
    }

    /// Everything up to `pat` (which is consumed).
    fn read_until(&mut self, pat: &str) -> String {
        String::from_utf8_lossy(&self.read_until_bytes(pat.as_bytes())).into_owned()
    }

    /// The bytes up to `pat` (which is consumed), telnet commands and all.
    fn read_until_bytes(&mut self, pat: &[u8]) -> Vec<u8> {
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

    fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).expect("write to the backdoor");
    }

    /// Send a line; its output, up to the next prompt.
    fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\n").as_bytes());
        self.read_until(PROMPT)
    }

    /// Everything up to `pat` as `Ok`, or everything until the server closed as `Err`.
    fn until_or_close(&mut self, pat: &str) -> Result<String, String> {
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
    fn rest(&mut self) -> String {
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

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The row of a table whose second column is `name`.
fn row<'a>(table: &'a str, name: &str) -> &'a str {
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
fn id_of(c: &mut Client, name: &str) -> u64 {
    c.cmd("live")
        .lines()
        .skip(1)
        .find_map(|l| {
            let (id, n) = l.trim_start().split_once("  ")?;
            (n.trim_start() == name).then(|| id.parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no live coroutine named {name:?}"))
}

fn unix(tag: &str) -> (Options, PathBuf) {
    let p = sock_path(tag);
    (Options::unix(&p), p)
}

/// Ids of a known set of coroutines: what each waits for is fixed.
struct Known {
    sleeper: u64,
    reader: u64,
    holder: u64,
    locker: u64,
    joiner: u64,
    busy: u64,
    not_started: u64,
}

/// Spawn the known coroutines; `sleeper_saw` gets how its sleep ended.
fn spawn_known(sleeper_saw: Rc<Cell<Option<Result<(), Interrupted>>>>) -> Known {
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

#[test]
fn every_builtin_command_against_known_coroutines() {
    shrapnel::reset();
    let (opts, path) = unix("builtins");
    let bd = Backdoor::bind(opts.command("greet", "say hello", |args, out| {
        writeln!(out, "hello, {}", args.join(" and "))
    }))
    .unwrap();
    let saw = Rc::new(Cell::new(None));
    let k = spawn_known(saw.clone());
    let path2 = path.clone();
    let ids = [k.sleeper, k.reader, k.holder, k.locker, k.joiner, k.busy];
    let (nid, busy_id) = (k.not_started, k.busy);
    let out = drive(bd, move || {
        // The known coroutines reach their waits in the loop's first pass, before the
        // backdoor's accept returns.
        let mut c = Client::connect(&path2);
        assert!(c.welcome.contains("shrapnel backdoor: "), "{}", c.welcome);
        assert!(c.welcome.contains(&format!("pid {}", std::process::id())));

        let help = c.cmd("help");
        for word in [
            "help",
            "ps",
            "where N",
            "where_all",
            "live",
            "latency [FACTOR]",
            "top [N]",
            "stats",
            "sockets",
            "interrupt N",
            "shutdown N",
            "selfishness N",
            "quit",
        ] {
            assert!(help.contains(&format!("  {word} ")), "{word} in\n{help}");
        }
        assert!(help.contains("application commands:\n  greet"), "{help}");
        assert_eq!(
            help.contains("eval SCRIPT"),
            cfg!(feature = "backdoor-script")
        );

        let ps = c.cmd("ps");
        assert!(ps.starts_with(
            "  ID  NAME                      STATE      WAIT                     WAITED  SLICES   MAX SLICE\n"
        ), "{ps}");
        let cells = |name: &str| -> Vec<String> {
            row(&ps, name)
                .split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect()
        };
        assert_eq!(cells("sleeper")[2..4], ["blocked", "sleeping"]);
        assert_eq!(cells("reader")[2], "blocked");
        assert!(cells("reader")[3].starts_with("readable fd "), "{ps}");
        assert_eq!(cells("holder")[2..4], ["blocked", "sleeping"]);
        assert_eq!(cells("locker")[2..4], ["blocked", "mutex"]);
        assert_eq!(cells("joiner")[3], format!("join #{}", ids[0]));
        assert_eq!(cells("unstarted")[2..4], ["new", "not started"]);
        assert_eq!(cells("backdoor")[2], "blocked");
        assert_eq!(cells("backdoor session 1")[2..4], ["running", "running"]);
        assert_eq!(cells("sleeper")[0], ids[0].to_string());
        if cfg!(feature = "latency") {
            let busy = cells("busy");
            assert!(busy[5].parse::<u64>().unwrap() >= 1, "{ps}");
            let max: f64 = busy[6].trim_end_matches('s').parse().unwrap();
            assert!(max >= 0.060, "{ps}");
        } else {
            assert_eq!(cells("busy")[5..7], ["-", "-"]);
        }

        // Before `where`: with `stacks`, its first symbolization is a long slice itself.
        if cfg!(feature = "latency") {
            assert_eq!(
                c.cmd("latency"),
                "latency warning factor 1 (slices over 0.200s are reported)\n"
            );
            assert_eq!(
                c.cmd("latency 2.5"),
                "latency warning factor 2.5 (slices over 0.500s are reported); was 1\n"
            );
            assert_eq!(
                c.cmd("latency 0"),
                "latency warning off (factor 0); was 2.5\n"
            );
            assert!(c
                .cmd("latency 999")
                .starts_with("latency: latency factor 999 is out of range"));
            let top = c.cmd("top 1");
            let lines: Vec<&str> = top.lines().collect();
            assert_eq!(lines.len(), 2, "{top}");
            assert!(lines[0].contains("MAX SLICE"));
            assert!(
                lines[1].starts_with(&format!("{busy_id:>4}  busy ")),
                "{top}"
            );
            assert_eq!(c.cmd("top").lines().count(), 11, "header + 10");
        } else {
            assert!(c
                .cmd("latency")
                .contains("feature `latency` of shrapnel is off"));
            assert!(c
                .cmd("top")
                .contains("feature `latency` of shrapnel is off"));
        }

        let w = c.cmd(&format!("where {}", ids[0]));
        assert!(
            w.starts_with(&format!("#{} 'sleeper' blocked: sleeping (", ids[0])),
            "{w}"
        );
        assert!(w.contains("tests/backdoor.rs:"), "{w}");
        assert!(c
            .cmd("where 99999")
            .contains("where: no live coroutine #99999 (see `ps`)"));

        let all = c.cmd("where_all");
        for (i, name) in ["sleeper", "reader", "holder", "locker", "joiner", "busy"]
            .iter()
            .enumerate()
        {
            assert!(
                all.contains(&format!("#{} '{name}' blocked: ", ids[i])),
                "{all}"
            );
        }
        assert!(
            all.contains(&format!("#{nid} 'unstarted' new: not started")),
            "{all}"
        );

        let live = c.cmd("live");
        assert!(live.starts_with("10 live coroutines\n"), "{live}");
        assert!(live.contains(&format!("{:>4}  reader\n", ids[1])), "{live}");

        let stats = c.cmd("stats");
        let value = |k: &str| -> String {
            stats
                .lines()
                .find(|l| l.starts_with(&format!("{k} ")))
                .unwrap_or_else(|| panic!("{k} in\n{stats}"))[k.len()..]
                .trim()
                .to_string()
        };
        assert_eq!(value("live coroutines"), "10");
        assert_eq!(value("backdoor sessions"), "1");
        // Timers: sleeper, holder, busy and the watcher (this session's idle timeout is not
        // armed while it runs a command). Only the watcher can be ready instead: its 2 ms
        // sleep may have ended in the loop pass that made this session readable.
        let queued: u64 = value("run queue").parse().unwrap();
        let timers: u64 = value("timers pending").parse().unwrap();
        assert!(queued <= 1 && timers + queued == 4, "{stats}");
        assert_eq!(value("live sockets"), "4"); // listener, session, the socketpair
        assert!(value("switches").parse::<u64>().unwrap() >= 8);
        assert!(value("polls").parse::<u64>().unwrap() >= 1);
        assert!(value("uptime").ends_with('s'));

        let socks = c.cmd("sockets");
        assert!(socks.starts_with("  FD  KIND "), "{socks}");
        let shown = path2.display().to_string();
        assert!(
            socks
                .lines()
                .any(|l| l.contains("unix listener") && l.trim_end().ends_with(&shown)),
            "{socks}"
        );
        // The session's stream and the two ends of the reader's socketpair.
        let streams = socks
            .lines()
            .filter(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w[1] == "unix" && w[2] != "listener"
            })
            .count();
        assert_eq!(streams, 3, "{socks}");

        assert_eq!(c.cmd("selfishness 8"), "selfishness 8 (was 4)\n");
        assert!(c
            .cmd("selfishness 0")
            .starts_with("selfishness: selfishness must be at least 1"));
        assert_eq!(c.cmd("greet bob alice"), "hello, bob and alice\n");

        assert_eq!(
            c.cmd(&format!("interrupt {} 7", ids[0])),
            format!(
                "interrupt #{} 'sleeper': its blocking call returns Interrupted::Interrupt(7)\n",
                ids[0]
            )
        );
        assert_eq!(
            c.cmd(&format!("shutdown {}", ids[2])),
            format!(
                "shutdown #{} 'holder': its blocking call returns Interrupted::Shutdown\n",
                ids[2]
            )
        );
        // The sleeper ends (its joiner too), the holder lets the locker in and the locker
        // finishes, once the scheduler gets to them.
        let gone = [ids[0], ids[2], ids[3], ids[4]];
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let live = c.cmd("live");
            let left: Vec<u64> = gone
                .into_iter()
                .filter(|id| live.contains(&format!("{id:>4}  ")))
                .collect();
            if left.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "{left:?} still in {live}");
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(c
            .cmd(&format!("interrupt {}", ids[0]))
            .contains("no live coroutine"));
        c.send(b"quit\n");
        c.rest()
    });
    assert_eq!(out, "bye\n");
    assert_eq!(saw.take(), Some(Err(Interrupted::Interrupt(7))));
    assert!(
        !path.exists(),
        "the socket file is removed when the backdoor closes"
    );
}

#[test]
fn bad_lines_get_one_line_saying_what_was_wrong_and_the_session_stays_open() {
    shrapnel::reset();
    let (opts, path) = unix("bad");
    let bd = Backdoor::bind(
        opts.command("fails", "returns an error", |_a, out| {
            write!(out, "partial")?;
            Err(std::io::Error::other("disk on fire"))
        })
        .command("panics", "panics", |_a, _out| panic!("boom in a command")),
    )
    .unwrap();
    drive(bd, move || {
        let mut c = Client::connect(&path);
        assert_eq!(
            c.cmd("frobnicate 1 2"),
            "unknown command 'frobnicate'; try `help`\n"
        );
        assert_eq!(
            c.cmd("where"),
            "where: expects one coroutine id, e.g. `where 3` (see `ps`); try `help`\n"
        );
        assert_eq!(
            c.cmd("where abc"),
            "where: 'abc' is not a coroutine id; try `help`\n"
        );
        assert_eq!(c.cmd("ps -ef"), "ps: takes no arguments; try `help`\n");
        assert_eq!(
            c.cmd("top many"),
            "top: 'many' is not a count; try `help`\n"
        );
        assert_eq!(
            c.cmd("interrupt 424242"),
            "interrupt: no live coroutine #424242 (see `ps`)\n"
        );
        assert_eq!(
            c.cmd("shutdown 424242"),
            "shutdown: no live coroutine #424242 (see `ps`)\n"
        );
        let me = c
            .cmd("live")
            .lines()
            .find(|l| l.ends_with("backdoor session 1"))
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string();
        assert_eq!(
            c.cmd(&format!("interrupt {me}")),
            format!("interrupt: #{me} is this backdoor session; use `quit` to leave\n")
        );
        assert_eq!(c.cmd("fails"), "partial\nfails: error: disk on fire\n");
        assert_eq!(c.cmd("panics"), "panics: panicked: boom in a command\n");
        assert_eq!(c.cmd(""), "");
        if !cfg!(feature = "backdoor-script") {
            assert!(c.cmd("eval 1+1").contains("feature `backdoor-script`"));
        }
        assert!(c.cmd("stats").contains("backdoor sessions  1"));
        c.send(b"exit\r\n");
        assert_eq!(c.rest(), "bye\n");
    });
}

#[test]
fn ctrl_d_closes_the_session() {
    shrapnel::reset();
    let (opts, path) = unix("ctrld");
    let bd = Backdoor::bind(opts).unwrap();
    drive(bd, move || {
        let mut c = Client::connect(&path);
        c.send(b"\x04");
        assert_eq!(c.rest(), "");
    });
}

fn need(tool: &str) {
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
fn run_tool(program: &str, args: &[&str], input: &'static [u8]) -> String {
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

#[test]
fn a_socat_session() {
    need("socat");
    shrapnel::reset();
    let (opts, path) = unix("socat");
    let bd = Backdoor::bind(opts.welcome("demo backdoor")).unwrap();
    let out = drive(bd, move || {
        let target = format!("UNIX-CONNECT:{}", path.display());
        run_tool(
            "socat",
            // -t5: after stdin's end, wait up to 5 s (not 0.5 s) for the replies.
            &["-t5", "-", &target],
            b"help\nps\nstats\nwhere 1\nquit\n",
        )
    });
    assert!(
        out.starts_with("demo backdoor\nshrapnel> commands:\n"),
        "{out}"
    );
    assert!(out.contains("\nshrapnel>   ID  NAME "), "{out}");
    assert!(out.contains("backdoor session 1        running"), "{out}");
    assert!(out.contains("\nbackdoor sessions  1\n"), "{out}");
    assert!(out.contains("#1 'backdoor' blocked: readable fd "), "{out}");
    assert!(out.ends_with("shrapnel> bye\n"), "{out}");
}

#[test]
fn an_nc_session() {
    need("nc");
    shrapnel::reset();
    let (opts, path) = unix("nc");
    let bd = Backdoor::bind(opts).unwrap();
    let out = drive(bd, move || {
        let p = path.display().to_string();
        run_tool(
            "nc",
            &["-U", &p],
            b"live\r\nwhere_all\r\nsockets\r\nquit\r\n",
        )
    });
    assert!(
        out.contains("shrapnel> 3 live coroutines\n   1  backdoor\n"),
        "{out}"
    );
    assert!(out.contains("#2 'watcher' blocked: sleeping"), "{out}");
    assert!(out.contains("unix listener"), "{out}");
    assert!(out.ends_with("shrapnel> bye\n"), "{out}");
}

#[test]
fn a_1_mib_line_without_newline_closes_the_session_with_a_message() {
    shrapnel::reset();
    let (opts, path) = unix("long");
    let bd = Backdoor::bind(opts).unwrap();
    drive(bd, move || {
        let mut c = Client::connect(&path);
        // The server stops reading after 4 KiB, so this write fails part way: fine.
        let _ = c.s.write_all(&vec![b'x'; 1 << 20]);
        let rest = c.rest();
        assert_eq!(
            rest,
            "\nbackdoor: line longer than 4096 bytes; closing the session\n"
        );
    });
}

#[test]
fn binary_garbage_and_telnet_negotiation_do_not_break_the_session() {
    shrapnel::reset();
    let (opts, path) = unix("garbage");
    let bd = Backdoor::bind(opts).unwrap();
    drive(bd, move || {
        let mut c = Client::connect(&path);
        // What telnet sends first: WILL/DO negotiation and a terminal-type subnegotiation.
        c.send(b"\xff\xfb\x1f\xff\xfb\x20\xff\xfd\x03\xff\xfa\x18\x00xterm\xff\xf0");
        assert_eq!(c.cmd("selfishness 5"), "selfishness 5 (was 4)\n");
        // 8 KiB of pseudo-random bytes in 64-byte lines (no Ctrl-D, no IAC).
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut garbage = Vec::new();
        for i in 0..8192 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = match (x >> 32) as u8 {
                0x04 | 0xff | b'\n' | b'\r' => b'.',
                b => b,
            };
            garbage.push(if i % 64 == 63 { b'\n' } else { b });
        }
        c.send(&garbage);
        for _ in 0..128 {
            let reply = c.read_until(PROMPT);
            assert!(
                reply.is_empty() || reply.ends_with("try `help`\n") || reply.starts_with("eval"),
                "{reply:?}"
            );
        }
        c.send(b"selfishness\xff\xff 4\n");
        assert_eq!(
            c.read_until(PROMPT),
            "unknown command 'selfishness\u{fffd}'; try `help`\n"
        );
        assert!(c.cmd("stats").contains("backdoor sessions  1"));
        c.send(b"\xff\xfd\x01selfishness 4\r\0");
        assert_eq!(c.read_until(PROMPT), "selfishness 4 (was 5)\n");
    });
}

#[test]
fn a_hundred_clients_against_a_limit_of_16() {
    shrapnel::reset();
    let (opts, path) = unix("limit");
    let bd = Backdoor::bind(opts.welcome("welcome")).unwrap();
    assert_eq!(bd.sessions(), 0);
    drive(bd, move || {
        let mut clients: Vec<Client> = (0..100).map(|_| Client::raw(&path)).collect();
        let mut welcomed = 0;
        let mut refused = 0;
        for c in &mut clients {
            let first = c.read_until("\n");
            match first.as_str() {
                "welcome" => welcomed += 1,
                "backdoor: too many sessions (16 open, the limit); try again later" => {
                    assert_eq!(c.rest(), "");
                    refused += 1;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!((welcomed, refused), (16, 84));
        // A session that ends frees its place.
        clients.truncate(16);
        let mut leaving = clients.pop().unwrap();
        leaving.send(b"quit\n");
        // The session's count is dropped in the same slice that closes the connection.
        assert_eq!(leaving.rest(), "shrapnel> bye\n");
        let mut again = Client::connect(&path);
        assert_eq!(again.welcome, "welcome\n");
        assert!(again.cmd("stats").contains("backdoor sessions  16"));
    });
}

#[test]
fn an_idle_session_is_timed_out() {
    shrapnel::reset();
    let (opts, path) = unix("idle");
    let bd = Backdoor::bind(opts.idle_timeout(Duration::from_millis(150))).unwrap();
    drive(bd, move || {
        let mut c = Client::connect(&path);
        assert_eq!(c.cmd("selfishness 4"), "selfishness 4 (was 4)\n");
        let t = Instant::now();
        assert_eq!(
            c.rest(),
            "\nbackdoor: idle for 150ms; closing the session\n"
        );
        assert!(
            t.elapsed() >= Duration::from_millis(140),
            "{:?}",
            t.elapsed()
        );
    });
}

#[test]
fn a_client_that_disconnects_mid_command_ends_only_its_session() {
    shrapnel::reset();
    let (opts, path) = unix("disconnect");
    let bd = Backdoor::bind(
        opts.command("slow", "sleeps, then writes a lot", |_a, out| {
            shrapnel::sleep(Duration::from_millis(50))
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::Interrupted, e))?;
            out.write_all(&vec![b'y'; 1 << 20])
        }),
    )
    .unwrap();
    drive(bd, move || {
        let mut c = Client::connect(&path);
        c.send(b"slow\n");
        drop(c);
        let mut half = Client::connect(&path);
        half.send(b"whe");
        drop(half);
        let mut d = Client::connect(&path);
        // Session 1 ends when its command's output cannot be written (after a 50 ms sleep),
        // session 2 at the end of its input.
        let deadline = Instant::now() + Duration::from_secs(5);
        let ps = loop {
            let ps = d.cmd("ps");
            if !ps.contains("backdoor session 1") || Instant::now() > deadline {
                break ps;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        assert!(!ps.contains("backdoor session 1"), "{ps}");
        assert!(!ps.contains("backdoor session 2"), "{ps}");
        assert!(ps.contains("backdoor session 3"), "{ps}");
        assert!(d.cmd("stats").contains("backdoor sessions  1"));
    });
}

/// Runs the test `name` of this binary again in a child process with
/// `SHRAPNEL_BACKDOOR_CHILD` set; returns its stderr.
fn child_stderr(name: &str) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env("SHRAPNEL_BACKDOOR_CHILD", "1")
        .output()
        .expect("re-running the test binary");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "child failed: {err}");
    err
}

#[test]
fn output_goes_to_its_own_session_and_print_stderr_to_the_real_stderr() {
    const NAME: &str = "output_goes_to_its_own_session_and_print_stderr_to_the_real_stderr";
    if std::env::var_os("SHRAPNEL_BACKDOOR_CHILD").is_none() {
        let err = child_stderr(NAME);
        assert!(err.contains("noise from a coroutine"), "{err}");
        return;
    }
    shrapnel::reset();
    let (opts, path) = unix("own");
    let bd = Backdoor::bind(opts.command("say", "say the words", |args, out| {
        // Yield half-way, so the other session's command runs in between.
        write!(out, "{}", args[0])?;
        shrapnel::yield_slice();
        writeln!(out, " {}", args[1])
    }))
    .unwrap();
    shrapnel::spawn(|| {
        while shrapnel::sleep(Duration::from_millis(1)).is_ok() {
            shrapnel::print_stderr!("noise from a coroutine");
        }
    });
    drive(bd, move || {
        let mut a = Client::connect(&path);
        let mut b = Client::connect(&path);
        for i in 0..20 {
            a.send(format!("say a{i} A{i}\n").as_bytes());
            b.send(format!("say b{i} B{i}\n").as_bytes());
            assert_eq!(a.read_until(PROMPT), format!("a{i} A{i}\n"));
            assert_eq!(b.read_until(PROMPT), format!("b{i} B{i}\n"));
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

#[test]
fn the_unix_socket_is_0600_even_with_umask_000() {
    shrapnel::reset();
    let (opts, path) = unix("mode");
    // SAFETY: umask only swaps the process's file mode mask; restored right after.
    let old = unsafe { libc::umask(0) };
    let bd = Backdoor::bind(opts);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let bd = bd.unwrap();
    let mode = std::fs::symlink_metadata(&path)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    assert_eq!(bd.addr(), &ListenAddr::Unix(path.clone()));
    // The listening fd is close-on-exec: a child process does not inherit the backdoor.
    let listener = shrapnel::net::live_sockets()
        .into_iter()
        .find(|s| s.local == path.display().to_string())
        .expect("the listener among the live sockets");
    assert_eq!(listener.kind, shrapnel::net::SocketKind::UnixListener);
    // SAFETY: F_GETFD only reads the fd's flags.
    let flags = unsafe { libc::fcntl(listener.fd, libc::F_GETFD) };
    assert!(flags >= 0 && flags & libc::FD_CLOEXEC != 0, "{flags}");
    drop(bd);
    assert!(!path.exists());
}

#[test]
fn a_regular_file_at_the_path_is_an_error_and_is_not_deleted() {
    shrapnel::reset();
    let (opts, path) = unix("file");
    std::fs::write(&path, b"precious").unwrap();
    let e = Backdoor::bind(opts).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
    let msg = e.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("is a regular file; it is left alone"), "{msg}");
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_stale_socket_is_replaced_and_a_live_one_is_not() {
    shrapnel::reset();
    let path = sock_path("stale");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap()); // leaves the file
    assert!(path.exists());
    let bd = Backdoor::bind(Options::unix(&path)).unwrap();
    let e = Backdoor::bind(Options::unix(&path)).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
    assert!(
        e.to_string().contains("another process is listening"),
        "{e}"
    );
    drop(bd);
    assert!(!path.exists());
}

#[test]
fn non_loopback_tcp_without_auth_is_refused() {
    shrapnel::reset();
    let e = Backdoor::bind(Options::tcp(([0, 0, 0, 0], 0))).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    let msg = e.to_string();
    assert!(
        msg.contains("refusing to listen on 0.0.0.0 without an authentication hook"),
        "{msg}"
    );
    assert!(msg.contains("Options::auth"), "{msg}");
    let e = Backdoor::bind(Options::tcp_scan_on([192, 0, 2, 1].into())).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn loopback_tcp_and_shrapnels_port_scan() {
    shrapnel::reset();
    let bd = Backdoor::bind(Options::tcp(([127, 0, 0, 1], 0))).unwrap();
    let ListenAddr::Tcp(addr) = bd.addr().clone() else {
        panic!("{:?}", bd.addr())
    };
    assert!(addr.ip().is_loopback() && addr.port() != 0);
    let scan = Backdoor::bind(Options::tcp_scan()).unwrap();
    let ListenAddr::Tcp(scanned) = scan.addr().clone() else {
        panic!()
    };
    assert_eq!(scanned.ip(), std::net::Ipv4Addr::LOCALHOST);
    assert!((8023..=8033).contains(&scanned.port()), "{scanned}");
    drop(scan);
    let out = drive(bd, move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s.write_all(b"live\r\nquit\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    });
    assert!(out.contains("   2  watcher\n"), "{out}");
    assert!(out.contains("backdoor session 1 (127.0.0.1:"), "{out}");
    assert!(out.ends_with("shrapnel> bye\n"), "{out}");
}

#[test]
fn login_one_try_and_a_failure_closes_the_session() {
    shrapnel::reset();
    let (opts, path) = unix("login");
    let bd = Backdoor::bind(
        opts.welcome("hi admin")
            .auth(|user, password| user == "admin" && password == "s3cret"),
    )
    .unwrap();
    drive(bd, move || {
        let mut bad = Client::raw(&path);
        assert_eq!(bad.read_until("user: "), "");
        bad.send(b"admin\n");
        assert_eq!(bad.read_until("password: "), "");
        bad.send(b"guess\nps\n");
        assert_eq!(bad.rest(), "login failed\n");

        let mut good = Client::raw(&path);
        good.read_until("user: ");
        good.send(b"admin\r\n");
        good.read_until("password: ");
        good.send(b"s3cret\r\n");
        assert_eq!(good.read_until(PROMPT), "hi admin\n");
        assert!(good.cmd("live").contains("live coroutines"));
    });
}

#[test]
fn a_non_loopback_bind_with_auth_is_allowed() {
    shrapnel::reset();
    let bd = Backdoor::bind(Options::tcp(([0, 0, 0, 0], 0)).auth(|_, _| false)).unwrap();
    assert!(matches!(bd.addr(), ListenAddr::Tcp(a) if a.port() != 0));
}

#[test]
fn close_stops_serving_and_serve_runs_once() {
    shrapnel::reset();
    let (opts, path) = unix("close");
    let bd = Backdoor::bind(opts).unwrap();
    let (a, b, c) = (bd.clone(), bd.clone(), bd.clone());
    let first = shrapnel::spawn(move || a.serve());
    let second = shrapnel::spawn(move || b.serve());
    shrapnel::spawn(move || {
        shrapnel::sleep(Duration::from_millis(5)).unwrap();
        c.close();
    });
    assert_eq!(shrapnel::event_loop(), 0);
    first.join().unwrap().unwrap();
    let e = second.join().unwrap().unwrap_err();
    assert!(e.to_string().contains("already served"), "{e}");
    assert!(!path.exists());
    assert!(UnixStream::connect(&path).is_err());
}

#[test]
fn registering_builtin_or_bad_names_is_refused() {
    shrapnel::reset();
    let (opts, _path) = unix("register");
    let bd = Backdoor::bind(opts).unwrap();
    let e = bd.register("ps", "mine", |_, _| Ok(())).unwrap_err();
    assert_eq!(
        e.to_string(),
        "backdoor: cannot register command 'ps': that is a built-in command"
    );
    assert!(bd.register("two words", "", |_, _| Ok(())).is_err());
    assert!(bd.register("", "", |_, _| Ok(())).is_err());
    bd.register("mine", "ok", |_, _| Ok(())).unwrap();
    let (opts, path) = unix("register2");
    let e = Backdoor::bind(opts.command("quit", "", |_, _| Ok(()))).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(!path.exists(), "nothing is bound when the options are bad");
}

#[test]
fn the_console_refuses_to_stop_the_listener_or_its_own_session() {
    shrapnel::reset();
    let (opts, path) = unix("levers");
    let bd = Backdoor::bind(opts).unwrap();
    drive(bd, move || {
        let mut c = Client::connect(&path);
        let listener = id_of(&mut c, "backdoor");
        let me = id_of(&mut c, "backdoor session 1");
        for verb in ["interrupt", "shutdown"] {
            assert_eq!(
                c.cmd(&format!("{verb} {listener}")),
                format!(
                    "{verb}: #{listener} is the backdoor's listener; stopping it would close \
                     the backdoor (the application can call Backdoor::close)\n"
                )
            );
            assert_eq!(
                c.cmd(&format!("{verb} {me}")),
                format!("{verb}: #{me} is this backdoor session; use `quit` to leave\n")
            );
        }
        // Still listening, and this session still works.
        let mut d = Client::connect(&path);
        assert!(d.cmd("live").contains("backdoor session 2"));
        assert!(c.cmd("live").contains("backdoor session 1"));
    });
}

#[test]
fn an_interrupted_listener_says_why_on_stderr_and_keeps_accepting() {
    const NAME: &str = "an_interrupted_listener_says_why_on_stderr_and_keeps_accepting";
    if std::env::var_os("SHRAPNEL_BACKDOOR_CHILD").is_none() {
        let err = child_stderr(NAME);
        assert!(
            err.contains("'backdoor' was interrupted (code 5); still accepting"),
            "{err}"
        );
        assert!(
            err.contains("closed: its coroutine #1 'backdoor' was shut down"),
            "{err}"
        );
        return;
    }
    shrapnel::reset();
    let (opts, path) = unix("relisten");
    let coro = |args: &[&str]| -> std::io::Result<shrapnel::CoroRef> {
        let id: u64 = args[0].parse().map_err(std::io::Error::other)?;
        shrapnel::coro_by_id(id).ok_or_else(|| std::io::Error::other("no such coroutine"))
    };
    let bd = Backdoor::bind(
        opts.command(
            "poke",
            "interrupt from application code",
            move |args, out| writeln!(out, "{}", coro(args)?.interrupt(5)),
        )
        .command(
            "stop",
            "shut down from application code",
            move |args, out| writeln!(out, "{}", coro(args)?.shutdown()),
        ),
    )
    .unwrap();
    drive(bd, move || {
        let mut c = Client::connect(&path);
        let listener = id_of(&mut c, "backdoor");
        assert_eq!(listener, 1);
        assert_eq!(c.cmd(&format!("poke {listener}")), "true\n");
        // The listener sees the interrupt in its accept, says so, and accepts again.
        let mut d = Client::connect(&path);
        assert!(d.cmd("live").contains("backdoor session 2"));
        assert!(path.exists());
        // A shutdown is a request to finish: the backdoor closes, saying so.
        assert_eq!(d.cmd(&format!("stop {listener}")), "true\n");
        let deadline = Instant::now() + Duration::from_secs(5);
        while path.exists() {
            assert!(Instant::now() < deadline, "the listener did not close");
            std::thread::sleep(Duration::from_millis(2));
        }
        // Open sessions go on.
        assert!(c.cmd("live").contains("backdoor session 1"));
    });
}

/// A loopback TCP backdoor that lets `admin` in with the password `s3cret`.
fn tcp_with_login(opts: impl FnOnce(Options) -> Options) -> (Backdoor, std::net::SocketAddr) {
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
fn login(addr: std::net::SocketAddr, password: &str) -> Result<Client, String> {
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

#[test]
fn failed_logins_from_one_peer_wait_longer_each_time() {
    shrapnel::reset();
    let (bd, addr) =
        tcp_with_login(|o| o.login_backoff(Duration::from_millis(50), Duration::from_secs(1)));
    drive(bd, move || {
        let t = Instant::now();
        for _ in 0..5 {
            let e = login(addr, "guess")
                .err()
                .expect("a wrong password is refused");
            assert!(e.contains("login failed"), "{e:?}");
        }
        // The 2nd attempt is checked 50 ms after the 1st failure at the earliest, the 3rd
        // 100 ms after the 2nd, then 200 and 400 ms.
        assert!(
            t.elapsed() >= Duration::from_millis(750),
            "5 failures in {:?}",
            t.elapsed()
        );
        // The right password waits its turn too (800 ms after the 5th failure), then works.
        let mut c = login(addr, "s3cret").expect("the right password");
        assert!(
            t.elapsed() >= Duration::from_millis(1550),
            "5 failures and a success in {:?}",
            t.elapsed()
        );
        assert!(c.cmd("stats").contains("backdoor sessions  1"));
    });
}

#[test]
fn parallel_failed_logins_are_checked_one_at_a_time() {
    shrapnel::reset();
    let (bd, addr) =
        tcp_with_login(|o| o.login_backoff(Duration::from_millis(100), Duration::from_secs(1)));
    drive(bd, move || {
        let t = Instant::now();
        let tries: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(move || login(addr, "guess").err()))
            .collect();
        for t in tries {
            let e = t.join().unwrap().expect("a wrong password is refused");
            assert!(e.contains("login failed"), "{e:?}");
        }
        // Checked one after the other: 100 + 200 + 400 ms between the four checks.
        assert!(
            t.elapsed() >= Duration::from_millis(700),
            "4 parallel failures in {:?}",
            t.elapsed()
        );
    });
}

#[test]
fn connections_that_have_not_logged_in_cannot_take_the_sessions_places() {
    shrapnel::reset();
    let (bd, addr) = tcp_with_login(|o| o);
    drive(bd, move || {
        let mut admin = login(addr, "s3cret").expect("the right password");
        let mut idle: Vec<Client> = (0..20).map(|_| Client::tcp(addr)).collect();
        let (mut asked, mut refused) = (0, 0);
        for c in &mut idle {
            let first = c.read_until(" ");
            match first.as_str() {
                "user:" => asked += 1,
                "backdoor:" => {
                    assert_eq!(
                        c.rest(),
                        "too many connections waiting to log in (4, the limit); try again \
                         later\n"
                    );
                    refused += 1;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!((asked, refused), (4, 16));
        // The logged-in session is not held up by them.
        assert!(admin.cmd("stats").contains("backdoor sessions  1"));
        // When they leave, logging in works again.
        drop(idle);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut again = loop {
            let mut c = Client::tcp(addr);
            if c.read_until(" ") == "user:" {
                break c;
            }
            assert!(
                Instant::now() < deadline,
                "the waiting places were not freed"
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        again.send(b"admin\r\n");
        again.read_until("password: ");
        again.send(b"s3cret\r\n");
        again.read_until(PROMPT);
        assert!(again.cmd("stats").contains("backdoor sessions  2"));
    });
}

#[test]
fn the_login_deadline_closes_a_connection_that_does_not_log_in() {
    shrapnel::reset();
    let (bd, addr) = tcp_with_login(|o| o.login_timeout(Duration::from_millis(300)));
    drive(bd, move || {
        let t = Instant::now();
        let mut silent = Client::tcp(addr);
        assert_eq!(silent.read_until("user: "), "");
        assert_eq!(
            silent.rest(),
            "\nbackdoor: no login within 300ms; closing the connection\n"
        );
        assert!(
            t.elapsed() >= Duration::from_millis(300),
            "{:?}",
            t.elapsed()
        );
        // The deadline covers the whole login, not each line.
        let t = Instant::now();
        let mut slow = Client::tcp(addr);
        slow.read_until("user: ");
        slow.send(b"admin\r\n");
        let rest = slow.rest();
        assert!(
            rest.ends_with(
                "\u{fffd}\u{fffd}\u{1}password: \u{fffd}\u{fffd}\u{1}\nbackdoor: no login within \
                 300ms; closing the connection\n"
            ),
            "{rest:?}"
        );
        assert!(
            t.elapsed() >= Duration::from_millis(300),
            "{:?}",
            t.elapsed()
        );
    });
}

#[test]
fn echo_is_off_while_the_password_is_typed() {
    shrapnel::reset();
    let (bd, addr) = tcp_with_login(|o| o.welcome("hi admin"));
    drive(bd, move || {
        let mut c = Client::tcp(addr);
        assert_eq!(c.read_until_bytes(b"user: "), b"");
        c.send(b"admin\r\n");
        // IAC WILL ECHO: the server says it echoes, so the client stops echoing.
        assert_eq!(c.read_until_bytes(b"password: "), b"\xff\xfb\x01");
        // A telnet client answers IAC DO ECHO; the password line is read whole around it.
        c.send(b"\xff\xfd\x01s3cret\r\n");
        // IAC WONT ECHO, and the newline the client did not echo.
        assert_eq!(
            c.read_until_bytes(PROMPT.as_bytes()),
            b"\xff\xfc\x01\nhi admin\n"
        );
        // Its IAC DONT ECHO reply is ignored too.
        c.send(b"\xff\xfe\x01");
        assert!(c.cmd("live").contains("backdoor session 1"));
    });
}

#[test]
fn constant_time_eq_compares_whole_slices() {
    use shrapnel::backdoor::constant_time_eq;
    assert!(constant_time_eq(b"s3cret", b"s3cret"));
    assert!(constant_time_eq(b"", b""));
    assert!(!constant_time_eq(b"s3cret", b"s3creT"));
    assert!(!constant_time_eq(b"s3cret", b"s3cre"));
    assert!(!constant_time_eq(b"s3cre", b"s3cret"));
    assert!(!constant_time_eq(b"", b"x"));
    assert!(!constant_time_eq(b"\0", b""));
}

#[cfg(feature = "backdoor-script")]
mod script {
    use super::*;

    fn with_app(tag: &str) -> (Backdoor, PathBuf) {
        let (opts, path) = unix(tag);
        let opts = opts.max_operations(50_000).script_engine(|engine| {
            engine.register_fn("cache_size", || 1234_i64);
            engine.register_fn("boom", || -> i64 { panic!("boom in a script function") });
        });
        (Backdoor::bind(opts).unwrap(), path)
    }

    #[test]
    fn eval_sees_the_builtins_and_the_applications_objects() {
        shrapnel::reset();
        let (bd, path) = with_app("eval");
        let saw = Rc::new(Cell::new(None));
        let k = spawn_known(saw.clone());
        let sleeper = k.sleeper;
        drive(bd, move || {
            let mut c = Client::connect(&path);
            assert_eq!(c.cmd("eval cache_size() * 2"), "2468\n");
            assert_eq!(c.cmd("eval 40 + 2"), "42\n");
            assert_eq!(c.cmd("eval let x = 5;"), "");
            assert_eq!(
                c.cmd("eval x * 3"),
                "15\n",
                "variables persist in a session"
            );
            assert_eq!(c.cmd("eval ps().len()"), "10\n");
            assert_eq!(c.cmd("eval live().len()"), "10\n");
            assert_eq!(
                c.cmd("eval ps().filter(|c| c.name == \"locker\")[0].reason"),
                "mutex\n"
            );
            assert_eq!(c.cmd("eval stats().live"), "10\n");
            assert_eq!(c.cmd("eval sockets().len()"), "4\n");
            assert!(c
                .cmd(&format!("eval where_is({sleeper})"))
                .starts_with(&format!("#{sleeper} 'sleeper' blocked: sleeping")));
            assert!(c
                .cmd("eval where_all()")
                .contains("'reader' blocked: readable fd"));
            assert_eq!(
                c.cmd("eval print(\"to the session\"); 1"),
                "to the session\n1\n"
            );
            assert_eq!(c.cmd("eval selfishness(6)"), "4\n");
            assert!(c
                .cmd("eval where_is(99999)")
                .contains("no live coroutine #99999"));
            if cfg!(feature = "latency") {
                assert_eq!(c.cmd("eval top(1)[0].name"), "busy\n");
            }
            assert_eq!(c.cmd(&format!("eval interrupt({sleeper}, 3)")), "true\n");
            assert_eq!(c.cmd("eval interrupt(99999)"), "false\n");
            let deadline = Instant::now() + Duration::from_secs(5);
            while c.cmd(&format!("eval live().contains({sleeper})")) == "true\n" {
                assert!(Instant::now() < deadline, "the sleeper did not end");
                std::thread::sleep(Duration::from_millis(2));
            }
            assert!(c.cmd("eval 1 +").starts_with("eval: "));
        });
        assert_eq!(saw.take(), Some(Err(Interrupted::Interrupt(3))));
    }

    #[test]
    fn an_endless_script_is_stopped_by_the_operation_limit() {
        shrapnel::reset();
        let (bd, path) = with_app("loop");
        drive(bd, move || {
            let mut c = Client::connect(&path);
            let t = Instant::now();
            let out = c.cmd("eval loop { }");
            assert!(out.starts_with("eval: stopped at "), "{out}");
            assert!(out.contains("after 50000 operations, the limit"), "{out}");
            assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
            let out = c.cmd("eval fn f(n) { f(n + 1) } f(0)");
            assert!(out.starts_with("eval: "), "{out}");
            let out = c.cmd("eval let s = \"x\"; loop { s += s }");
            assert!(out.starts_with("eval: "), "{out}");
            assert_eq!(c.cmd("eval 1"), "1\n");
        });
    }

    /// A coroutine that counts its turns (it yields after each): when the count moves while
    /// a script runs, the script let the other coroutines run.
    fn spawn_ticker() -> Rc<Cell<i64>> {
        let n = Rc::new(Cell::new(0));
        let m = n.clone();
        shrapnel::Builder::new()
            .name("ticker")
            .spawn(move || loop {
                m.set(m.get() + 1);
                shrapnel::yield_slice();
            })
            .unwrap();
        n
    }

    /// A backdoor whose scripts can read the ticker's count with `ticks()`.
    fn with_ticker(tag: &str, opts: impl FnOnce(Options) -> Options) -> (Backdoor, PathBuf) {
        let ticks = spawn_ticker();
        let (o, path) = unix(tag);
        let o = opts(o).script_engine(move |engine| {
            let t = ticks.clone();
            engine.register_fn("ticks", move || t.get());
        });
        (Backdoor::bind(o).unwrap(), path)
    }

    #[test]
    fn eval_sleep_is_a_coroutine_sleep_that_lets_others_run() {
        shrapnel::reset();
        let (bd, path) = with_ticker("sleep", |o| o);
        drive(bd, move || {
            let mut c = Client::connect(&path);
            let ran: i64 = c
                .cmd("eval let a = ticks(); sleep(0.05); ticks() - a")
                .trim()
                .parse()
                .unwrap();
            assert!(ran > 0, "the ticker did not run while the script slept");
            assert_eq!(
                c.cmd("eval let a = ticks(); sleep(0); ticks() > a"),
                "true\n"
            );
            let out = c.cmd("eval sleep(-1)");
            assert!(out.starts_with("eval: sleep: -1"), "{out}");
            assert!(out.contains("not a number of seconds"), "{out}");
        });
    }

    #[test]
    fn an_endless_sleep_is_cut_by_the_time_limit() {
        shrapnel::reset();
        let (bd, path) = with_ticker("sleep-forever", |o| {
            o.eval_time_limit(Duration::from_millis(300))
        });
        drive(bd, move || {
            let mut c = Client::connect(&path);
            let t = Instant::now();
            let out = c.cmd("eval sleep(1e19)");
            assert!(
                t.elapsed() >= Duration::from_millis(300),
                "{:?}",
                t.elapsed()
            );
            assert!(
                out.starts_with("eval: stopped after 300ms, the time limit"),
                "{out}"
            );
            assert!(out.contains("Options::eval_time_limit"), "{out}");
            assert_eq!(c.cmd("eval 1"), "1\n");
        });
    }

    #[test]
    fn a_long_script_lets_the_other_coroutines_run() {
        shrapnel::reset();
        let (bd, path) = with_ticker("share", |o| o.max_operations(50_000));
        drive(bd, move || {
            let mut c = Client::connect(&path);
            // Each round is one operation that takes a while (a 64 KiB string); the loop
            // ends as soon as the ticker has had a turn.
            let out = c.cmd(
                "eval let a = ticks(); while ticks() == a { let s = \"x\"; s.pad(65000, \"x\"); } \
                 \"others ran\"",
            );
            assert_eq!(out, "others ran\n");
        });
    }

    #[test]
    fn a_slow_script_is_stopped_by_the_time_limit() {
        shrapnel::reset();
        let (bd, path) = with_ticker("slow", |o| {
            o.max_operations(u64::MAX)
                .eval_time_limit(Duration::from_millis(300))
        });
        drive(bd, move || {
            let mut c = Client::connect(&path);
            let t = Instant::now();
            let out =
                c.cmd("eval let a = ticks(); loop { print(ticks() - a); let s = \"x\"; s.pad(65000, \"x\"); }");
            assert!(
                t.elapsed() >= Duration::from_millis(300),
                "{:?}",
                t.elapsed()
            );
            let last = out.lines().last().unwrap();
            assert!(
                last.starts_with("eval: stopped after 300ms, the time limit"),
                "{last}"
            );
            assert!(last.contains("Options::eval_time_limit"), "{last}");
            // What it printed: the ticker's turns since the start, growing.
            let seen: Vec<i64> = out.lines().filter_map(|l| l.parse().ok()).collect();
            assert!(seen.last().is_some_and(|&n| n > 0), "{out}");
            assert_eq!(c.cmd("eval 2"), "2\n");
        });
    }

    #[test]
    fn eval_levers_refuse_the_session_and_the_listener() {
        shrapnel::reset();
        let (bd, path) = with_app("eval-levers");
        drive(bd, move || {
            let mut c = Client::connect(&path);
            let me = id_of(&mut c, "backdoor session 1");
            let listener = id_of(&mut c, "backdoor");
            for call in [
                "interrupt(ID)",
                "interrupt(ID, 7)",
                "shutdown(ID)",
                "wake_up(ID)",
            ] {
                let verb = &call[..call.find('(').unwrap()];
                let out = c.cmd(&format!("eval {}", call.replace("ID", &me.to_string())));
                assert!(
                    out.starts_with(&format!(
                        "eval: {verb}: #{me} is this backdoor session; use `quit` to leave"
                    )),
                    "{out}"
                );
                let out = c.cmd(&format!(
                    "eval {}",
                    call.replace("ID", &listener.to_string())
                ));
                assert!(
                    out.starts_with(&format!(
                        "eval: {verb}: #{listener} is the backdoor's listener"
                    )),
                    "{out}"
                );
            }
            // Twice, as in the report: the session is still there.
            let out = c.cmd(&format!("eval interrupt({me})"));
            assert!(out.contains("is this backdoor session"), "{out}");
            assert_eq!(c.cmd("eval 1"), "1\n");
            assert!(Client::connect(&path)
                .cmd("live")
                .contains("backdoor session 2"));
        });
    }

    #[test]
    fn a_panicking_script_function_does_not_end_the_session() {
        shrapnel::reset();
        let (bd, path) = with_app("panic");
        drive(bd, move || {
            let mut c = Client::connect(&path);
            assert_eq!(c.cmd("eval let y = 2;"), "");
            assert_eq!(
                c.cmd("eval boom()"),
                "eval: the script panicked: boom in a script function; its variables were reset\n"
            );
            assert!(c.cmd("eval y").starts_with("eval: "), "a fresh scope");
            assert_eq!(c.cmd("eval cache_size()"), "1234\n");
            assert!(c.cmd("stats").contains("backdoor sessions  1"));
        });
    }
}
