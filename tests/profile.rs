//! The CPU profile: two coroutines burning the CPU in two known functions are told apart —
//! each coroutine's samples land in its own function — and the folded stacks carry them.
#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

/// Burns CPU in its own code for `d` (the clock read once per million iterations).
#[inline(never)]
fn alpha_hot_loop(d: Duration) -> u64 {
    let t = Instant::now();
    let mut n = 1u64;
    while t.elapsed() < d {
        for _ in 0..200_000 {
            n = std::hint::black_box(n.wrapping_mul(6364136223846793005).wrapping_add(3));
        }
    }
    n
}

#[inline(never)]
fn beta_hot_loop(d: Duration) -> u64 {
    let t = Instant::now();
    let mut n = 7u64;
    while t.elapsed() < d {
        for _ in 0..200_000 {
            n = std::hint::black_box(n.wrapping_mul(2862933555777941757).wrapping_add(5));
        }
    }
    n
}

#[test]
fn the_profile_attributes_samples_to_the_right_coroutine_and_function() {
    shrapnel::reset();
    let stop = std::rc::Rc::new(std::cell::Cell::new(false));
    let (s1, s2) = (stop.clone(), stop.clone());
    let alpha = shrapnel::Builder::new()
        .name("alpha")
        .spawn(move || {
            while !s1.get() {
                alpha_hot_loop(Duration::from_millis(20));
                shrapnel::yield_slice();
            }
        })
        .unwrap();
    let beta = shrapnel::Builder::new()
        .name("beta")
        .spawn(move || {
            while !s2.get() {
                beta_hot_loop(Duration::from_millis(20));
                shrapnel::yield_slice();
            }
        })
        .unwrap();
    let (alpha_id, beta_id) = (alpha.id(), beta.id());
    let profiler = shrapnel::spawn(move || {
        let p = shrapnel::profile::cpu(Duration::from_millis(1500));
        stop.set(true);
        p
    });
    assert_eq!(shrapnel::event_loop(), 0);
    let p = profiler.join().unwrap().unwrap();
    let report = p.report(5);
    assert!(p.samples.len() >= 40, "{report}");
    for (id, name, hot) in [
        (alpha_id, "alpha", "alpha_hot_loop"),
        (beta_id, "beta", "beta_hot_loop"),
    ] {
        let mine: Vec<_> = p
            .samples
            .iter()
            .filter(|s| s.coroutine.as_ref().is_some_and(|(i, _)| *i == id))
            .collect();
        assert!(mine.len() >= 15, "{name}: {} samples\n{report}", mine.len());
        assert!(mine.iter().all(|s| s.coroutine.as_ref().unwrap().1 == name));
        // The hot function is on the stack of the sample: innermost, or (in a debug build)
        // under the integer and range helpers it calls.
        let in_hot = mine
            .iter()
            .filter(|s| s.stack.iter().any(|f| f.contains(hot)))
            .count();
        assert!(
            in_hot * 100 >= mine.len() * 80,
            "{name}: {in_hot} of {} samples in {hot}\n{report}",
            mine.len()
        );
    }
    // Between them the two burners took almost every sample.
    let top = p.top_coroutines();
    let burners: u64 = top
        .iter()
        .filter(|((i, _), _)| *i == alpha_id || *i == beta_id)
        .map(|(_, n)| n)
        .sum();
    assert!(burners * 100 >= p.samples.len() as u64 * 80, "{report}");
    assert!(report.contains(&format!("#{alpha_id} 'alpha'")), "{report}");
    let totals = p.top_functions_total();
    let hot = totals
        .iter()
        .find(|(f, _)| f.contains("alpha_hot_loop"))
        .unwrap_or_else(|| panic!("{report}"));
    assert!(hot.1 * 100 >= p.samples.len() as u64 * 30, "{report}");
    let folded = p.folded();
    let line = folded
        .lines()
        .find(|l| l.starts_with(&format!("#{alpha_id} alpha;")) && l.contains("alpha_hot_loop"))
        .unwrap_or_else(|| panic!("{folded}"));
    let count: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 1);
    // Outside a coroutine, and twice at once, it says why not.
    assert!(matches!(
        shrapnel::profile::cpu(Duration::from_millis(10)),
        Err(shrapnel::profile::ProfileError::NotInCoroutine)
    ));
}
