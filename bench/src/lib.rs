//! Shared setup for the comparison benchmarks in `benches/` (BENCHMARKS.md).
//!
//! Every workload is one criterion group holding our implementation and its peer, so both
//! run in one process, one after the other; `ci/bench.sh` reads the estimates and prints
//! the ratios against the targets in BENCHMARKS.md.

use std::time::Duration;

/// Warm-up per benchmark: enough for caches and the stack pool to settle.
pub const WARM_UP: Duration = Duration::from_millis(500);
/// Measurement per benchmark: short, so the whole suite runs in a few minutes on 2 cores.
pub const MEASUREMENT: Duration = Duration::from_secs(2);
/// Samples per benchmark (criterion's minimum is 10).
pub const SAMPLES: usize = 20;

/// Apply [`WARM_UP`], [`MEASUREMENT`] and [`SAMPLES`] to a criterion benchmark group.
#[macro_export]
macro_rules! short_measurement {
    ($group:expr) => {{
        $group
            .warm_up_time($crate::WARM_UP)
            .measurement_time($crate::MEASUREMENT)
            .sample_size($crate::SAMPLES);
    }};
}

pub mod echo;
pub mod pin;
pub mod spawn;
