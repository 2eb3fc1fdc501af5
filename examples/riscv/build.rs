//! Hands the linker `virt.ld` (this crate's memory map and sections for QEMU's virt board).

use std::{env, path::PathBuf};

fn main() {
    let dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    println!("cargo:rustc-link-arg=-T{}", dir.join("virt.ld").display());
    println!("cargo:rerun-if-changed=virt.ld");
}
