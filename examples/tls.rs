//! A TLS line-echo server: rustls over a shrapnel `TcpStream` with `StreamOwned`, blocking
//! style, with a self-signed certificate for `localhost` generated at start-up (rcgen).
//!
//! ```text
//! cargo run --example tls -- 8443        (then: openssl s_client -connect 127.0.0.1:8443 -quiet)
//! ```
//!
//! Port 0 picks a free port; the first line on stdout says which (`listening on ADDR`).
#[cfg(target_os = "linux")]
fn main() {
    linux::main()
}

/// The TLS crates are dev-dependencies for Linux targets only (see Cargo.toml).
#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("tls: this example is built with its TLS libraries on Linux only");
    std::process::exit(1);
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io::{BufRead, BufReader, Write};
    use std::sync::Arc;

    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use rustls::{ServerConfig, ServerConnection, StreamOwned};
    use shrapnel::net::{TcpListener, TcpStream};

    pub fn main() {
        let port: u16 = match std::env::args().nth(1).map(|p| p.parse()) {
            None => 8443,
            Some(Ok(p)) => p,
            Some(Err(e)) => {
                eprintln!("usage: tls [PORT]  (bad port: {e})");
                std::process::exit(2);
            }
        };
        let config = server_config().unwrap_or_else(|e| {
            eprintln!("tls: {e}");
            std::process::exit(1);
        });
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap_or_else(|e| {
            eprintln!("tls: {e}");
            std::process::exit(1);
        });
        println!("listening on {}", listener.local_addr().unwrap());
        let _ = std::io::stdout().flush();
        shrapnel::spawn(move || {
            while let Ok((conn, peer)) = listener.accept() {
                let config = config.clone();
                let _ = shrapnel::Builder::new()
                    .name(format!("tls {peer}"))
                    .spawn(move || {
                        if let Err(e) = echo_lines(conn, config) {
                            eprintln!("tls: {peer}: {e}");
                        }
                    });
            }
        });
        std::process::exit(shrapnel::event_loop());
    }

    /// A certificate for `localhost` made now, and the server configuration around it.
    fn server_config() -> Result<Arc<ServerConfig>, Box<dyn std::error::Error>> {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])?;
        let cert: CertificateDer<'static> = made.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.key_pair.serialize_der()));
        // ring, not aws-lc-rs: it builds without cmake and quickly. rustls marks ring's provider
        // deprecated because it has no post-quantum key exchange, which a local example does
        // without.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)?;
        Ok(Arc::new(config))
    }

    /// Echo each line back, prefixed, until the client closes.
    fn echo_lines(conn: TcpStream, config: Arc<ServerConfig>) -> std::io::Result<()> {
        let tls = ServerConnection::new(config).map_err(std::io::Error::other)?;
        let mut stream = BufReader::new(StreamOwned::new(tls, conn));
        let mut line = String::new();
        loop {
            line.clear();
            if stream.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let out = stream.get_mut();
            out.write_all(b"echo: ")?;
            out.write_all(line.as_bytes())?;
            out.flush()?;
        }
    }
}
