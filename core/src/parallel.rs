//! [`in_parallel`]: run calls in coroutines of their own and collect their results in order
//! (Shrapnel's `coro.in_parallel`).
//!
//! Built on [`spawn`] and [`Coro::join`]; nothing here reaches into the scheduler.

use alloc::vec::Vec;
use core::fmt;

use crate::coro::{spawn, Coro, JoinError};
use crate::interruption::Interrupted;

/// Run each of `calls` in a coroutine of its own, wait for all of them, and return their
/// results in the order given (Shrapnel's `coro.in_parallel`). Must be called from a
/// coroutine.
///
/// A call fails when its coroutine does not produce a value ([`JoinError`]): it panicked
/// (caught with feature `std`), was cancelled, or no stack could be had for it. Every call
/// still runs to its end, and if any failed the error carries every outcome, in order,
/// and names the failed ones (Shrapnel's `InParallelException` and its result list).
///
/// If the caller is interrupted while it waits (a timeout, `interrupt`, `shutdown`), the
/// calls not finished yet are shut down — each one's next blocking call returns
/// [`Interrupted::Shutdown`], one not started yet never runs — and `in_parallel` returns
/// at once without waiting for them: the error's [`interrupted`](InParallelError::interrupted)
/// says why, the calls that had finished keep their results, and the others are
/// `Err(JoinError::Interrupted(..))`. The shut-down coroutines end on their own (their
/// results are dropped then); none is left behind as long as it honours the shutdown.
///
/// A closure returning a `Result` is not failed by returning `Err`: its `Err` is its value,
/// in the `Ok` vector.
///
/// ```
/// # shrapnel_core::doc_scheduler!();
/// # use shrapnel_core as shrapnel;
/// use std::time::Duration;
///
/// let caller = shrapnel::spawn(|| {
///     let calls: Vec<Box<dyn FnOnce() -> u64>> = vec![
///         Box::new(|| {
///             shrapnel::sleep(Duration::from_millis(10)).unwrap(); // finishes last
///             1
///         }),
///         Box::new(|| 2),
///         Box::new(|| 3),
///     ];
///     shrapnel::in_parallel(calls)
/// });
/// shrapnel::event_loop();
/// assert_eq!(caller.join().unwrap().unwrap(), [1, 2, 3]); // in the order given
/// ```
#[track_caller]
pub fn in_parallel<I, F, T>(calls: I) -> Result<Vec<T>, InParallelError<T>>
where
    I: IntoIterator<Item = F>,
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    // Loops, not closures, so the caller's line is where `where_all` shows it waiting.
    let mut coros: Vec<Coro<T>> = Vec::new();
    for call in calls {
        coros.push(spawn(call));
    }
    let mut results = Vec::with_capacity(coros.len());
    let mut interrupted = None;
    for co in &coros {
        if interrupted.is_none() {
            if let Err(JoinError::Interrupted(i)) = co.wait_dead() {
                interrupted = Some(i);
            }
        }
        results.push(match interrupted {
            Some(i) if !co.dead() => {
                co.shutdown();
                Err(JoinError::Interrupted(i))
            }
            // Finished (perhaps just as the caller was interrupted): the value is there
            // to take without waiting.
            _ => co.join(),
        });
    }
    if interrupted.is_none() && results.iter().all(Result::is_ok) {
        return Ok(results.into_iter().flatten().collect());
    }
    Err(InParallelError {
        results,
        interrupted,
    })
}

/// [`in_parallel`] did not get a value from every call: the outcome of each, in order.
pub struct InParallelError<T> {
    /// Each call's result, in the order the calls were given.
    pub results: Vec<Result<T, JoinError>>,
    /// The caller was interrupted while it waited, and shut down the calls not finished.
    pub interrupted: Option<Interrupted>,
}

impl<T> InParallelError<T> {
    /// The calls that failed: their index in the list given, and why.
    pub fn failures(&self) -> impl Iterator<Item = (usize, &JoinError)> {
        self.results
            .iter()
            .enumerate()
            .filter_map(|(n, r)| r.as_ref().err().map(|e| (n, e)))
    }

    /// The indices of the calls that failed.
    pub fn failed(&self) -> Vec<usize> {
        self.failures().map(|(n, _)| n).collect()
    }
}

impl<T> fmt::Display for InParallelError<T> {
    /// `in_parallel: 2 of 5 calls failed: #1: coroutine #7 'coro-7' panicked: …; #3: …`,
    /// or, the caller interrupted, `in_parallel interrupted (code 3) while waiting: 2 of 5
    /// calls shut down unfinished` and the calls that failed before.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let calls = self.results.len();
        let unfinished =
            |e: &JoinError| self.interrupted.is_some() && matches!(e, JoinError::Interrupted(_));
        match self.interrupted {
            Some(i) => {
                let n = self.failures().filter(|(_, e)| unfinished(e)).count();
                write!(
                    f,
                    "in_parallel {i} while waiting: {n} of {calls} calls shut down unfinished"
                )?;
            }
            None => write!(
                f,
                "in_parallel: {} of {calls} calls failed",
                self.failures().count()
            )?,
        }
        let mut sep = if self.interrupted.is_some() {
            "; failed: "
        } else {
            ": "
        };
        for (index, e) in self.failures().filter(|(_, e)| !unfinished(e)) {
            write!(f, "{sep}#{index}: {e}")?;
            sep = "; ";
        }
        Ok(())
    }
}

impl<T> fmt::Debug for InParallelError<T> {
    /// The failures and the interruption (the values need not be `Debug`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InParallelError")
            .field("calls", &self.results.len())
            .field("failures", &self.failures().collect::<Vec<_>>())
            .field("interrupted", &self.interrupted)
            .finish()
    }
}

impl<T> core::error::Error for InParallelError<T> {}
