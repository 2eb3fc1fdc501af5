//! What the echo servers of `bench/echo.sh` share, so they behave identically: the port
//! from the command line, the read size, and the line that says they are ready.
//!
//! Every server binds 127.0.0.1 only, accepts, and per connection reads up to
//! [`READ_SIZE`] bytes and writes them back until EOF (or an error), one thread doing the
//! work (`taskset -c 0` in the script pins the whole process).

use std::io::Write;

/// Bytes asked for per read, in every server (and the Go one, `bench/go/echo.go`).
pub const READ_SIZE: usize = 4096;

/// The port to listen on: the first argument, `0` (any free port) if none.
pub fn port_from_args(server: &str) -> u16 {
    port_from(server, std::env::args().nth(1).as_deref())
}

/// The port `arg` names, `0` (any free port) if none; exits 2 with a usage line if bad.
pub fn port_from(server: &str, arg: Option<&str>) -> u16 {
    match arg.map(str::parse) {
        None => 0,
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            eprintln!("usage: {server} [PORT]  (bad port: {e})");
            std::process::exit(2);
        }
    }
}

/// Say on stdout, flushed, which port the server listens on: `bench/echo.sh` waits for
/// this line (`port N`) before it starts the load.
pub fn announce(port: u16) {
    let mut out = std::io::stdout().lock();
    // A driver that stopped reading is no reason to stop serving.
    let _ = writeln!(out, "port {port}");
    let _ = out.flush();
}

/// Print `server: what: error` and exit 1: for setup failures (bind, runtime).
pub fn fail(server: &str, what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("{server}: {what}: {e}");
    std::process::exit(1);
}
