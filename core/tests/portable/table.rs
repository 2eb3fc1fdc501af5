//! Build-time half of the bare-metal suite runners: a firmware crate's `build.rs` includes
//! this file (`#[path]`) and calls [`write`], which reads the portable suites beside it and
//! writes the table that `bare_metal.rs` runs (`SUITES`: each suite's tests, as name and
//! function), so a test added to a suite runs on the boards without being listed anywhere.
//! A test is a `pub fn name()` under `#[cfg_attr(test, test)]`, the attribute the host
//! harness sees.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

/// The portable suites, in the order they run: each is `<name>.rs` in this folder.
pub const SUITES: &[&str] = &[
    "semantics",
    "sync",
    "interrupt",
    "channel",
    "parallel",
    "coro_local",
];

/// Names some of [`SUITES`] (comma-separated) to build a runner of only those: a board
/// whose flash cannot hold every suite at once runs them in parts (the Cortex-M3's 256 KiB).
/// Unset: the board's default (`write`'s `default`).
pub const SELECT_ENV: &str = "SHRAPNEL_PORTABLE_SUITES";

/// The attribute that marks a test in a portable suite.
const MARK: &str = "#[cfg_attr(test, test)]";

/// Write `portable_suites.rs` into `out_dir`: `pub const SUITES: &[Suite]`, naming each
/// suite's module (declared in `bare_metal.rs`, which includes the table). The suites are
/// those named by [`SELECT_ENV`], else `default` (`None`: all of them).
pub fn write(portable_dir: &Path, out_dir: &Path, default: Option<&[&str]>) {
    println!("cargo:rerun-if-env-changed={SELECT_ENV}");
    let selected: Vec<String> = match std::env::var(SELECT_ENV) {
        Ok(list) if !list.trim().is_empty() => {
            list.split(',').map(|s| s.trim().to_owned()).collect()
        }
        _ => default
            .unwrap_or(SUITES)
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    for name in &selected {
        assert!(
            SUITES.contains(&name.as_str()),
            "{SELECT_ENV} names {name:?}, which is not a portable suite; they are {SUITES:?}"
        );
    }
    let mut table = String::from("/// The portable suites and their tests (from `table.rs`).\n");
    table.push_str("pub const SUITES: &[Suite] = &[\n");
    for suite in SUITES.iter().filter(|s| selected.iter().any(|n| n == *s)) {
        let path = portable_dir.join(format!("{suite}.rs"));
        println!("cargo:rerun-if-changed={}", path.display());
        let text = fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read the portable suite {}: {e}", path.display()));
        let _ = writeln!(table, "    Suite {{ name: {suite:?}, tests: &[");
        for name in tests_in(&text, &path) {
            let _ = writeln!(table, "        ({name:?}, {suite}::{name}),");
        }
        table.push_str("    ] },\n");
    }
    table.push_str("];\n");
    let out = out_dir.join("portable_suites.rs");
    fs::write(&out, table).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}

/// The names of the tests in one suite's source, in file order.
fn tests_in(text: &str, path: &Path) -> Vec<String> {
    let mut names = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((_, line)) = lines.next() {
        if line.trim() != MARK {
            continue;
        }
        // Other attributes and doc lines may sit between the mark and the function.
        let (n, decl) = lines
            .by_ref()
            .find(|(_, l)| !l.trim_start().starts_with("#[") && !l.trim_start().starts_with("//"))
            .unwrap_or_else(|| panic!("{}: {MARK} at the end of the file", path.display()));
        let name = decl
            .strip_prefix("pub fn ")
            .and_then(|rest| rest.strip_suffix("() {"))
            .unwrap_or_else(|| {
                panic!(
                    "{}:{}: a portable test must be `pub fn name() {{` under {MARK}, found {decl:?}",
                    path.display(),
                    n + 1
                )
            });
        names.push(name.to_owned());
    }
    assert!(!names.is_empty(), "{}: no tests found", path.display());
    names
}
