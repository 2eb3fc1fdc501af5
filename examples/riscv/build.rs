//! Hands the linker `virt.ld` (this crate's memory map and sections for QEMU's virt board).
//! Also writes the table of the portable test suites for `src/bin/suites.rs`
//! (`core/tests/portable/table.rs`).

use std::{env, path::PathBuf};

#[path = "../../core/tests/portable/table.rs"]
mod table;

fn main() {
    let dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    println!("cargo:rustc-link-arg=-T{}", dir.join("virt.ld").display());
    println!("cargo:rerun-if-changed=virt.ld");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    table::write(&dir.join("../../core/tests/portable"), &out_dir, None);
}
