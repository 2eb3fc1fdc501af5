//! Names the targets that have kqueue once, as `cfg(kqueue_os)`, so the code says
//! `#[cfg(kqueue_os)]` instead of repeating the list of operating systems.
//!
//! With the `libkqueue` feature on Linux it also sets `cfg(libkqueue)` and links libkqueue
//! (the BSD kqueue API in userspace), so CI can run this backend: statically from the build
//! directory named by `SHRAPNEL_LIBKQUEUE_DIR` (where `libkqueue.a` is; `ci/kqueue.sh`
//! builds it), or without that variable the system's `-lkqueue` (Debian's libkqueue-dev).
//! On the kqueue systems the feature changes nothing: the kernel's kqueue is used.

/// The operating systems whose kernel has kqueue (and EVFILT_USER).
const KQUEUE_OS: &[&str] = &["freebsd", "macos", "netbsd", "openbsd", "dragonfly"];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(kqueue_os)");
    println!("cargo::rustc-check-cfg=cfg(libkqueue)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=SHRAPNEL_LIBKQUEUE_DIR");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if KQUEUE_OS.contains(&os.as_str()) {
        println!("cargo::rustc-cfg=kqueue_os");
    } else if os == "linux" && std::env::var_os("CARGO_FEATURE_LIBKQUEUE").is_some() {
        println!("cargo::rustc-cfg=libkqueue");
        match std::env::var("SHRAPNEL_LIBKQUEUE_DIR") {
            Ok(dir) if !dir.is_empty() => {
                println!("cargo::rerun-if-changed={dir}/libkqueue.a");
                println!("cargo::rustc-link-search=native={dir}");
                println!("cargo::rustc-link-lib=static=kqueue");
            }
            _ => println!("cargo::rustc-link-lib=kqueue"),
        }
    }
}
