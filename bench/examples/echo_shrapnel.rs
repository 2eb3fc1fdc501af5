//! The shrapnel echo server of `bench/echo.sh`: one coroutine per connection, the read
//! buffer on the coroutine's stack. `echo_shrapnel [--shared] [--cores N] [PORT]` binds
//! 127.0.0.1 and prints `port N` when ready.
//!
//! Without `--shared` every connection coroutine has its own default stack (guarded,
//! pooled mmap). With `--shared` every connection coroutine runs on the scheduler's shared
//! run stack (`Builder::shared_stack(true)`): a suspended one keeps a heap copy of the
//! stack it used (the read buffer included), copied off and back when another
//! shared-stack coroutine ran in between. The acceptor has its own stack in both modes.
//!
//! With `SHRAPNEL_BENCH_PROFILE=1` (single scheduler) a CPU profile runs the whole time
//! (`shrapnel::profile::cpu`, one minute after another): `bench/echo.sh --profiling`
//! measures what that costs.
//!
//! Without `--cores` one scheduler runs on the main thread. With `--cores N` (the
//! `--cores` mode of `bench/echo.sh`) `run_per_core` runs N schedulers, scheduler i pinned
//! to CPU i (`PerCore::pin`), each accepting on its own SO_REUSEPORT listener of the same
//! port: scheduler 0 binds first (the port may be 0: any free one), the others bind the
//! port it got, and `port N` is printed once all N listen, so the kernel spreads every
//! connection of the load among them. `SHRAPNEL_BENCH_PIN=0` leaves them unpinned.
//!
//! With `SHRAPNEL_BENCH_IDLE_SPIN_US=N` every scheduler spins up to N µs before it blocks
//! (`RuntimeConfig::idle_spin`): `bench/echo.sh --cores` runs this as `shrapnel-spin`.

use std::io::{Read, Write};
use std::sync::{Arc, Condvar, Mutex};

use shrapnel::net::TcpListener;
use shrapnel::per_core::PerCore;
use shrapnel_bench::echo::{announce, fail, ServerArgs, READ_SIZE};

const NAME: &str = "echo_shrapnel";

fn main() {
    let ServerArgs {
        shared,
        threads: cores,
        port,
    } = ServerArgs::parse(NAME, "--cores", true);
    let config = runtime_config();
    match cores {
        None => {
            shrapnel::configure(config).unwrap_or_else(|e| fail(NAME, "configure", e));
            let listener =
                TcpListener::bind(("127.0.0.1", port)).unwrap_or_else(|e| fail(NAME, "bind", e));
            announce(local_port(&listener));
            serve(listener, shared);
            if std::env::var_os("SHRAPNEL_BENCH_PROFILE").is_some() {
                shrapnel::Builder::new()
                    .name("profiler")
                    .spawn(|| loop {
                        match shrapnel::profile::cpu(std::time::Duration::from_secs(60)) {
                            Ok(p) => eprintln!("{NAME}: profiled: {} samples", p.samples.len()),
                            Err(e) => {
                                eprintln!("{NAME}: {e}");
                                return;
                            }
                        }
                    })
                    .unwrap_or_else(|e| fail(NAME, "spawn the profiler", e));
            }
            std::process::exit(shrapnel::event_loop());
        }
        Some(n) => {
            let bound = Arc::new(Bound::default());
            // SHRAPNEL_BENCH_PIN=0 leaves the schedulers unpinned (the kernel places them).
            let pin = std::env::var("SHRAPNEL_BENCH_PIN").map_or(true, |v| v != "0");
            let result = PerCore::new(n).pin(pin).config(config).run(move |core| {
                let listener = if core == 0 {
                    let listener = bind_reuseport(port);
                    bound.first_port(local_port(&listener));
                    listener
                } else {
                    // Blocks this scheduler's thread, which has nothing else to run yet.
                    bind_reuseport(bound.wait_for_port())
                };
                if let Some(port) = bound.listening(n) {
                    announce(port);
                }
                serve(listener, shared);
            });
            match result {
                Ok(codes) => std::process::exit(codes.into_iter().max().unwrap_or(0)),
                Err(e) => fail(NAME, "run_per_core", e),
            }
        }
    }
}

/// The schedulers' configuration: the defaults, and the spin window if
/// `SHRAPNEL_BENCH_IDLE_SPIN_US` gives one.
fn runtime_config() -> shrapnel::RuntimeConfig {
    let idle_spin = std::env::var("SHRAPNEL_BENCH_IDLE_SPIN_US").ok().map(|us| {
        us.parse()
            .map(std::time::Duration::from_micros)
            .unwrap_or_else(|e| fail(NAME, "SHRAPNEL_BENCH_IDLE_SPIN_US", e))
    });
    shrapnel::RuntimeConfig {
        idle_spin,
        ..Default::default()
    }
}

fn bind_reuseport(port: u16) -> TcpListener {
    TcpListener::bind_reuseport(("127.0.0.1", port))
        .unwrap_or_else(|e| fail(NAME, "bind (SO_REUSEPORT)", e))
}

fn local_port(listener: &TcpListener) -> u16 {
    listener
        .local_addr()
        .unwrap_or_else(|e| fail(NAME, "local_addr", e))
        .port()
}

/// The schedulers' listeners: the port scheduler 0 bound, and how many listen so far.
#[derive(Default)]
struct Bound {
    state: Mutex<(Option<u16>, usize)>,
    port_known: Condvar,
}

impl Bound {
    /// Scheduler 0 bound `port`: the others may bind it too.
    fn first_port(&self, port: u16) {
        self.lock().0 = Some(port);
        self.port_known.notify_all();
    }

    fn wait_for_port(&self) -> u16 {
        let mut state = self.lock();
        loop {
            if let Some(port) = state.0 {
                return port;
            }
            state = self
                .port_known
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// One more listener of `cores` listens: the port once it is the last.
    fn listening(&self, cores: usize) -> Option<u16> {
        let mut state = self.lock();
        state.1 += 1;
        (state.1 == cores).then_some(state.0).flatten()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Option<u16>, usize)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Accept on `listener` in a coroutine of this scheduler, one coroutine per connection.
fn serve(listener: TcpListener, shared: bool) {
    shrapnel::Builder::new()
        .name("acceptor")
        .shared_stack(false)
        .spawn(move || loop {
            match listener.accept() {
                Ok((conn, _)) => {
                    let spawned = shrapnel::Builder::new()
                        .shared_stack(shared)
                        .spawn(move || {
                            let mut buf = [0u8; READ_SIZE];
                            loop {
                                match (&conn).read(&mut buf) {
                                    Ok(0) | Err(_) => break,
                                    Ok(n) => {
                                        if (&conn).write_all(&buf[..n]).is_err() {
                                            break;
                                        }
                                    }
                                }
                            }
                        });
                    if let Err(e) = spawned {
                        eprintln!("{NAME}: dropping a connection: {e}");
                    }
                }
                // Shut down (Ctrl-C, SIGTERM): stop accepting.
                Err(e) if shrapnel::Interrupted::from_io_error(&e).is_some() => return,
                Err(e) => {
                    eprintln!("{NAME}: accept: {e}");
                    let _ = shrapnel::sleep(std::time::Duration::from_millis(10));
                }
            }
        })
        .unwrap_or_else(|e| fail(NAME, "spawn the acceptor", e));
}
