//! The bare-metal runner of the portable suites: a board's `src/bin/suites.rs` includes
//! this file (`#[path]`) and provides `crate::support` (`setup`, a fresh scheduler over the
//! board's parts; `MANY`). Here are the suites as modules, the table the board's
//! `build.rs` wrote with `table.rs`, and [`run`], which runs every test in order, a fresh
//! scheduler each (the test's `setup()`), and prints a line per test. A failing assertion
//! panics, and the board's panic handler prints it and ends the run with a failure status,
//! so the last `test …` line names the failing test. The table holds every suite, or those
//! named by `SHRAPNEL_PORTABLE_SUITES` when the runner was built.

use core::fmt;

pub mod common;

// A suite left out of the table (`SHRAPNEL_PORTABLE_SUITES`, see `table.rs`) is dead code,
// dropped at link time.
#[allow(dead_code)]
mod channel;
#[allow(dead_code)]
mod coro_local;
#[allow(dead_code)]
mod interrupt;
#[allow(dead_code)]
mod parallel;
#[allow(dead_code)]
mod semantics;
#[allow(dead_code)]
mod sync;

include!(concat!(env!("OUT_DIR"), "/portable_suites.rs"));

/// One suite: its name and its tests.
pub struct Suite {
    pub name: &'static str,
    pub tests: &'static [(&'static str, fn())],
}

/// Run every test of every suite, printing through `line`; returns how many ran.
pub fn run(line: fn(fmt::Arguments)) -> usize {
    let mut ran = 0;
    for suite in SUITES {
        for (name, test) in suite.tests {
            line(format_args!("test {}::{} ...", suite.name, name));
            test();
            ran += 1;
        }
        line(format_args!(
            "suite {}: {} passed",
            suite.name,
            suite.tests.len()
        ));
    }
    line(format_args!("portable suites: {ran} tests passed"));
    ran
}
