//! The command line of the server examples (`demo`, `echo`): `[PORT] [--cores N]`. Not an
//! example itself (no `main.rs`); each includes it with `#[path]`.

/// What the command line asked for.
pub struct ServerArgs {
    /// The TCP port on 127.0.0.1 (default 7000).
    pub port: u16,
    /// `--cores N`: a scheduler per core, N of them (0: one per CPU); `None` if not given.
    pub cores: Option<usize>,
}

/// Parse this process's arguments; on a bad one, print `usage: PROGRAM [PORT] [--cores N]`
/// with what was wrong and exit with status 2.
pub fn parse(program: &str) -> ServerArgs {
    let mut parsed = ServerArgs {
        port: 7000,
        cores: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let step = if arg == "--cores" {
            args.next()
                .ok_or_else(|| "--cores needs a number".to_string())
                .and_then(|n| {
                    n.parse::<usize>()
                        .map_err(|e| format!("bad --cores {n:?}: {e}"))
                })
                .map(|n| parsed.cores = Some(n))
        } else {
            arg.parse::<u16>()
                .map(|p| parsed.port = p)
                .map_err(|e| format!("bad port {arg:?}: {e}"))
        };
        if let Err(why) = step {
            eprintln!("usage: {program} [PORT] [--cores N]  ({why})");
            std::process::exit(2);
        }
    }
    parsed
}
