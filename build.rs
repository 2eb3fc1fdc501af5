//! Names the targets that have kqueue once, as `cfg(kqueue_os)`, so the code says
//! `#[cfg(kqueue_os)]` instead of repeating the list of operating systems.

/// The operating systems whose kernel has kqueue (and EVFILT_USER).
const KQUEUE_OS: &[&str] = &["freebsd", "macos", "netbsd", "openbsd", "dragonfly"];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(kqueue_os)");
    println!("cargo::rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if KQUEUE_OS.contains(&os.as_str()) {
        println!("cargo::rustc-cfg=kqueue_os");
    }
}
