//! Puts `memory.x` (the lm3s6965's flash and RAM) where cortex-m-rt's `link.x` finds it, and
//! with feature `defmt` adds defmt's linker script (`defmt.x`, which keeps the interned format
//! strings in the ELF for the host decoder). The plain semihosting build links as before.
//! Also writes the table of the portable test suites for `src/bin/suites.rs`
//! (`core/tests/portable/table.rs`): by default semantics, sync and interrupt, the part
//! that fits the flash; `SHRAPNEL_PORTABLE_SUITES=channel,parallel,coro_local` the rest.

use std::{env, fs, path::PathBuf};

#[path = "../../core/tests/portable/table.rs"]
mod table;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(out.join("memory.x"), include_bytes!("memory.x")).expect("write memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    if env::var_os("CARGO_FEATURE_DEFMT").is_some() {
        println!("cargo:rustc-link-arg=-Tdefmt.x");
    }
    let dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    // The whole set does not fit the lm3s6965's 256 KiB of flash: by default the runner
    // holds the scheduler's own suites; SHRAPNEL_PORTABLE_SUITES picks the others.
    table::write(
        &dir.join("../../core/tests/portable"),
        &out,
        Some(&["semantics", "sync", "interrupt"]),
    );
}
