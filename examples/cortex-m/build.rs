//! Puts `memory.x` (the lm3s6965's flash and RAM) where cortex-m-rt's `link.x` finds it, and
//! with feature `defmt` adds defmt's linker script (`defmt.x`, which keeps the interned format
//! strings in the ELF for the host decoder). The plain semihosting build links as before.

use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(out.join("memory.x"), include_bytes!("memory.x")).expect("write memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    if env::var_os("CARGO_FEATURE_DEFMT").is_some() {
        println!("cargo:rustc-link-arg=-Tdefmt.x");
    }
}
