//! One console for every scheduler: a backdoor served by one of two `run_per_core`
//! schedulers lists, shows and interrupts the coroutines of the other (issue 12, item 3).
#![cfg(feature = "backdoor")]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shrapnel::backdoor::{Backdoor, Options};
use shrapnel::Interrupted;

const PROMPT: &str = "shrapnel> ";

static DONE: AtomicBool = AtomicBool::new(false);
/// The id of the sleeper on core 1, once it runs.
static SLEEPER: AtomicU64 = AtomicU64::new(0);
/// What the sleeper's `sleep` returned: 0 not yet, -1 Ok, else the interrupt code.
static SLEEPER_GOT: AtomicI64 = AtomicI64::new(0);

struct Client(UnixStream, Vec<u8>);

impl Client {
    fn until(&mut self, pat: &str) -> String {
        loop {
            if let Some(i) = self.1.windows(pat.len()).position(|w| w == pat.as_bytes()) {
                let text = String::from_utf8_lossy(&self.1[..i]).into_owned();
                self.1.drain(..i + pat.len());
                return text;
            }
            let mut chunk = [0u8; 8192];
            match self.0.read(&mut chunk) {
                Ok(0) | Err(_) => panic!("no {pat:?}; got {:?}", String::from_utf8_lossy(&self.1)),
                Ok(n) => self.1.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn cmd(&mut self, line: &str) -> String {
        self.0.write_all(format!("{line}\n").as_bytes()).unwrap();
        self.until(PROMPT)
    }
}

/// The SCHED cell of the `ps` row whose NAME starts with `name`.
fn sched_of(ps: &str, name: &str) -> String {
    let line = ps
        .lines()
        .find(|l| {
            l.split_whitespace().nth(2) == Some(name.split_whitespace().next().unwrap())
                && l.contains(name)
        })
        .unwrap_or_else(|| panic!("no row for {name:?} in\n{ps}"));
    line.split_whitespace().nth(1).unwrap().to_string()
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "waited 20 s for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn the_backdoor_on_one_scheduler_sees_and_interrupts_coroutines_of_the_other() {
    let path = std::env::temp_dir().join(format!("shrapnel-cores-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let sock = path.clone();
    let client = std::thread::spawn(move || {
        wait_for("the backdoor's socket and the sleeper", || {
            sock.exists() && SLEEPER.load(Ordering::Acquire) != 0
        });
        let id = SLEEPER.load(Ordering::Acquire);
        let mut c = Client(UnixStream::connect(&sock).unwrap(), Vec::new());
        c.0.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.until(PROMPT);

        let ps = c.cmd("ps");
        assert!(ps.lines().next().unwrap().contains("  SCHED  NAME"), "{ps}");
        let theirs = sched_of(&ps, "sleeper on core 1");
        let ours = sched_of(&ps, "backdoor session 1");
        assert_ne!(theirs, ours, "{ps}");
        assert!(ps.contains("core 0"), "{ps}");
        assert!(ps.contains("core 1"), "{ps}");
        assert!(!ps.contains("note:"), "every scheduler answers:\n{ps}");

        let w = c.cmd(&format!("where {id}"));
        assert!(
            w.starts_with(&format!(
                "scheduler {theirs} (thread shrapnel-core-1):\n#{id} 'sleeper on core 1' \
                 blocked: sleeping"
            )),
            "{w}"
        );

        let all = c.cmd("where_all");
        assert!(
            all.contains(&format!("scheduler {theirs} (thread shrapnel-core-1):\n")),
            "{all}"
        );
        assert!(
            all.contains(&format!("scheduler {ours} (thread shrapnel-core-0):\n")),
            "{all}"
        );
        assert!(
            all.contains("'sleeper on core 1' blocked: sleeping"),
            "{all}"
        );

        let live = c.cmd("live");
        assert!(
            live.contains(&format!("  sleeper on core 1 (scheduler {theirs})\n")),
            "{live}"
        );
        let stats = c.cmd("stats");
        if std::env::var_os("SHOW").is_some() {
            eprintln!("{ps}\n{w}\n{all}\n{live}\n{stats}\n{}", c.cmd("sockets"));
        }
        assert!(stats.contains(&format!("sched {theirs}")), "{stats}");
        assert!(stats.contains(&format!("sched {ours}")), "{stats}");
        assert!(stats.contains("live coroutines"), "{stats}");
        let sockets = c.cmd("sockets");
        assert!(sockets.contains("unix listener"), "{sockets}");

        let levers = c.cmd("selfishness 5");
        assert_eq!(
            levers
                .lines()
                .filter(|l| l.ends_with("selfishness 5 (was 4)"))
                .count(),
            2,
            "set on both schedulers:\n{levers}"
        );

        let hit = c.cmd(&format!("interrupt {id} 7"));
        assert_eq!(
            hit,
            format!(
                "interrupt #{id} 'sleeper on core 1' (scheduler {theirs}): its blocking call \
                 returns Interrupted::Interrupt(7)\n"
            )
        );
        wait_for("the sleeper to see its interruption", || {
            SLEEPER_GOT.load(Ordering::Acquire) != 0
        });
        assert_eq!(SLEEPER_GOT.load(Ordering::Acquire), 7);
        let ps = c.cmd("ps");
        assert!(!ps.contains("sleeper on core 1"), "{ps}");
        assert_eq!(
            c.cmd(&format!("shutdown {id}")),
            format!("shutdown: no live coroutine #{id} (see `ps`)\n")
        );
        c.0.write_all(b"quit\n").unwrap();
        DONE.store(true, Ordering::Release);
    });

    let codes = shrapnel::run_per_core(2, move |core| {
        if core == 0 {
            let bd = Backdoor::bind(Options::unix(&path)).unwrap();
            let server = bd.clone();
            shrapnel::spawn(move || server.serve());
            while !DONE.load(Ordering::Acquire) {
                shrapnel::sleep(Duration::from_millis(2)).unwrap();
            }
            bd.close();
        } else {
            let sleeper = shrapnel::Builder::new()
                .name("sleeper on core 1")
                .spawn(|| {
                    SLEEPER.store(shrapnel::current().unwrap().id(), Ordering::Release);
                    let got = match shrapnel::sleep(Duration::from_secs(60)) {
                        Ok(()) => -1,
                        Err(Interrupted::Interrupt(code)) => code as i64,
                        Err(other) => panic!("{other:?}"),
                    };
                    SLEEPER_GOT.store(got, Ordering::Release);
                })
                .unwrap();
            sleeper.join().unwrap();
            while !DONE.load(Ordering::Acquire) {
                shrapnel::sleep(Duration::from_millis(2)).unwrap();
            }
        }
    })
    .unwrap();
    assert_eq!(codes, vec![0, 0]);
    client.join().unwrap();
}
