//! `shrapnel-console`: run one backdoor command against a running program's socket and
//! print its output, or refresh it every N seconds (`--watch N`). See the README.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: shrapnel-console [--watch SECS] [--user USER] [--prompt TEXT] \
                     (SOCKET | --tcp HOST:PORT) COMMAND [ARG...]
  runs COMMAND in the backdoor and prints its output, e.g. `ps`, `where_all --json`,
  `metrics`; --watch refreshes it every SECS seconds until Ctrl-C; with --user the
  password comes from $SHRAPNEL_BACKDOOR_PASSWORD";

/// What the command line asked for.
#[derive(Debug)]
struct Args {
    target: Target,
    user: Option<String>,
    prompt: String,
    watch: Option<Duration>,
    command: String,
}

#[derive(Debug)]
enum Target {
    Unix(String),
    Tcp(String),
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut target = None;
    let (mut user, mut watch) = (None, None);
    let mut prompt = "shrapnel> ".to_string();
    let mut command = Vec::new();
    while let Some(a) = args.next() {
        if !command.is_empty() {
            command.push(a);
            continue;
        }
        let mut value = |what: &str| args.next().ok_or(format!("{a} needs {what}"));
        match a.as_str() {
            "--tcp" => target = Some(Target::Tcp(value("HOST:PORT")?)),
            "--user" => user = Some(value("a user name")?),
            "--prompt" => prompt = value("the prompt text")?,
            "--watch" => {
                let secs = value("a number of seconds")?;
                let s: f64 = secs
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s >= 0.1)
                    .ok_or(format!(
                        "--watch: '{secs}' is not a number of seconds ≥ 0.1"
                    ))?;
                watch = Some(Duration::from_secs_f64(s));
            }
            "-h" | "--help" => return Err(String::new()),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            _ if target.is_none() => target = Some(Target::Unix(a)),
            _ => command.push(a),
        }
    }
    let target = target.ok_or("give the backdoor's socket path or --tcp HOST:PORT")?;
    if command.is_empty() {
        return Err("give a command, e.g. `ps` or `help`".into());
    }
    Ok(Args {
        target,
        user,
        prompt,
        watch,
        command: command.join(" "),
    })
}

/// A connection to the backdoor.
trait Conn: Read + Write {}
impl Conn for UnixStream {}
impl Conn for TcpStream {}

struct Session {
    conn: Box<dyn Conn>,
    buf: Vec<u8>,
    prompt: String,
}

impl Session {
    fn open(args: &Args) -> io::Result<Session> {
        let timeout = Some(Duration::from_secs(30));
        let conn: Box<dyn Conn> = match &args.target {
            Target::Unix(path) => {
                let s = UnixStream::connect(path)
                    .map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))?;
                s.set_read_timeout(timeout)?;
                Box::new(s)
            }
            Target::Tcp(addr) => {
                let s = TcpStream::connect(addr)
                    .map_err(|e| io::Error::new(e.kind(), format!("{addr}: {e}")))?;
                s.set_read_timeout(timeout)?;
                Box::new(s)
            }
        };
        let mut s = Session {
            conn,
            buf: Vec::new(),
            prompt: args.prompt.clone(),
        };
        s.greet(args)?;
        Ok(s)
    }

    /// Up to the first prompt, logging in on the way if asked.
    fn greet(&mut self, args: &Args) -> io::Result<()> {
        let prompt = self.prompt.clone();
        let seen = self.read_until_any(&[&prompt, "user: "])?;
        if seen.1 == prompt {
            return Ok(());
        }
        let Some(user) = &args.user else {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the backdoor asks for a login: give --user and set SHRAPNEL_BACKDOOR_PASSWORD",
            ));
        };
        let password = std::env::var("SHRAPNEL_BACKDOOR_PASSWORD").map_err(|_| {
            io::Error::new(
                io::ErrorKind::PermissionDenied,
                "--user given but SHRAPNEL_BACKDOOR_PASSWORD is not set",
            )
        })?;
        self.conn.write_all(format!("{user}\n").as_bytes())?;
        self.read_until_any(&["password: "])?;
        self.conn.write_all(format!("{password}\n").as_bytes())?;
        let (_, seen) = self.read_until_any(&[&prompt, "login failed"])?;
        if seen != prompt {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "login failed (wrong user or password)",
            ));
        }
        Ok(())
    }

    /// Everything up to the first of `pats` to arrive (consumed), and which one it was;
    /// telnet commands (IAC …) are dropped.
    fn read_until_any(&mut self, pats: &[&str]) -> io::Result<(String, String)> {
        loop {
            let hit = pats
                .iter()
                .filter_map(|p| find(&self.buf, p.as_bytes()).map(|i| (i, *p)))
                .min_by_key(|(i, _)| *i);
            if let Some((i, p)) = hit {
                let text = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + p.len());
                return Ok((text, p.to_string()));
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self.conn.read(&mut chunk)?;
            if n == 0 {
                let rest = String::from_utf8_lossy(&self.buf).into_owned();
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the backdoor closed the session: {}", rest.trim()),
                ));
            }
            strip_telnet(&chunk[..n], &mut self.buf);
        }
    }

    fn run(&mut self, command: &str) -> io::Result<String> {
        self.conn.write_all(format!("{command}\n").as_bytes())?;
        let prompt = self.prompt.clone();
        Ok(self.read_until_any(&[&prompt])?.0)
    }

    fn quit(mut self) {
        let _ = self.conn.write_all(b"quit\n");
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Append `bytes` to `out` without telnet's IAC commands (the server sends IAC WILL/WONT
/// ECHO around a TCP password prompt).
fn strip_telnet(bytes: &[u8], out: &mut Vec<u8>) {
    const IAC: u8 = 255;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == IAC {
            i += 3; // IAC, verb, option
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(why) => {
            if !why.is_empty() {
                eprintln!("shrapnel-console: {why}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut session = match Session::open(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("shrapnel-console: {e}");
            return ExitCode::from(1);
        }
    };
    loop {
        let out = match session.run(&args.command) {
            Ok(out) => out,
            Err(e) => {
                eprintln!("shrapnel-console: {e}");
                return ExitCode::from(1);
            }
        };
        let Some(every) = args.watch else {
            print!("{out}");
            session.quit();
            return ExitCode::SUCCESS;
        };
        // Home the cursor and clear the screen, then the fresh output.
        print!("\x1b[H\x1b[2J{out}");
        let _ = io::stdout().flush();
        std::thread::sleep(every);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Result<Args, String> {
        parse_args(words.iter().map(|s| s.to_string()))
    }

    #[test]
    fn the_command_is_everything_after_the_target() {
        let a = args(&["--watch", "1", "app.sock", "top", "5"]).unwrap();
        assert!(matches!(a.target, Target::Unix(ref p) if p == "app.sock"));
        assert_eq!(a.command, "top 5");
        assert_eq!(a.watch, Some(Duration::from_secs(1)));
        let a = args(&["--tcp", "127.0.0.1:8023", "where", "--json", "3"]).unwrap();
        assert!(matches!(a.target, Target::Tcp(_)));
        assert_eq!(a.command, "where --json 3");
        assert!(args(&["app.sock"]).unwrap_err().contains("give a command"));
        assert!(args(&["--watch", "0", "a", "ps"]).is_err());
        assert!(args(&["--frob", "a", "ps"]).unwrap_err().contains("--frob"));
    }

    #[test]
    fn telnet_commands_are_dropped() {
        let mut out = Vec::new();
        strip_telnet(b"pass\xff\xfb\x01word: ", &mut out);
        assert_eq!(out, b"password: ");
    }
}
