//! On RISC-V, finds which floating-point calling convention the target uses, for the context
//! switch (`src/arch/riscv.rs`): the hard-float ABIs (ILP32F/LP64F, ILP32D/LP64D) make
//! `fs0`-`fs11` callee-saved, the soft-float ones do not. Stable Rust shows neither the ABI
//! nor the F and D extensions to `cfg`, so this asks the compiler itself: it compiles an
//! empty `no_std` object for the target, with the build's rustflags, and reads the float ABI
//! from the ELF header's `e_flags`. Sets `cfg(shrapnel_riscv_float_abi)` and
//! `cfg(shrapnel_riscv_float_abi = "single")` or `"double"`; nothing for soft float or on
//! other ISAs. `SHRAPNEL_RISCV_FLOAT_ABI`
//! (`soft`, `single`, `double`) overrides the probe where it cannot run.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!(
        "cargo::rustc-check-cfg=cfg(shrapnel_riscv_float_abi, values(none(), \"single\", \"double\"))"
    );
    println!("cargo::rerun-if-env-changed=SHRAPNEL_RISCV_FLOAT_ABI");
    if !env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|arch| arch.starts_with("riscv")) {
        return;
    }
    let abi = match env::var("SHRAPNEL_RISCV_FLOAT_ABI") {
        Ok(abi) => abi,
        Err(_) => probe_float_abi().unwrap_or_else(|why| {
            panic!(
                "shrapnel-core: cannot tell the target's RISC-V float ABI ({why}); set \
                 SHRAPNEL_RISCV_FLOAT_ABI to soft, single or double"
            )
        }),
    };
    match abi.as_str() {
        "soft" => {}
        "single" | "double" => {
            // Bare for "saves fs0-fs11", with the value for their width.
            println!("cargo::rustc-cfg=shrapnel_riscv_float_abi");
            println!("cargo::rustc-cfg=shrapnel_riscv_float_abi=\"{abi}\"");
        }
        other => panic!("SHRAPNEL_RISCV_FLOAT_ABI={other}: expected soft, single or double"),
    }
}

/// Compile an empty `no_std` library to an object for the target and read its float ABI.
fn probe_float_abi() -> Result<String, String> {
    let out = PathBuf::from(env::var_os("OUT_DIR").ok_or("no OUT_DIR")?);
    let source = out.join("float_abi_probe.rs");
    let object = out.join("float_abi_probe.o");
    std::fs::write(&source, "#![no_std]\n").map_err(|e| format!("writing the probe: {e}"))?;
    let rustc = env::var_os("RUSTC").ok_or("no RUSTC")?;
    let target = env::var("TARGET").map_err(|_| "no TARGET")?;
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let status = Command::new(rustc)
        .args([
            "--crate-type",
            "lib",
            "--emit",
            "obj",
            "--target",
            &target,
            "-o",
        ])
        .arg(&object)
        .args(flags.split('\x1f').filter(|flag| !flag.is_empty()))
        .arg(&source)
        .status()
        .map_err(|e| format!("running rustc: {e}"))?;
    if !status.success() {
        return Err(format!("rustc could not compile the probe: {status}"));
    }
    let elf = std::fs::read(&object).map_err(|e| format!("reading the probe: {e}"))?;
    // e_flags: a little-endian u32 at 0x24 in ELF32, 0x30 in ELF64 (EI_CLASS at byte 4).
    let at = match elf.get(4) {
        Some(1) => 0x24,
        Some(2) => 0x30,
        _ => return Err("the probe is not an ELF object".into()),
    };
    let e_flags = elf
        .get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or("the probe's ELF header is short")?;
    // EF_RISCV_FLOAT_ABI (bits 1-2): soft, single, double, quad.
    match e_flags & 0x6 {
        0x0 => Ok("soft".into()),
        0x2 => Ok("single".into()),
        0x4 => Ok("double".into()),
        _ => Err("quad-float ABI: no Rust target uses it".into()),
    }
}
