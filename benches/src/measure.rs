//! Small measuring helpers for `busbench`: repeat a timed loop, keep the median.

use std::time::Instant;

/// Median nanoseconds per call of `f`, over `reps` repetitions of `iters` calls each.
///
/// `f` gets the iteration index and returns a value that is fed to `black_box`, so the work
/// cannot be optimised away.
pub fn median_ns_per_op<R>(reps: usize, iters: u64, mut f: impl FnMut(u64) -> R) -> f64 {
    let mut samples: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let start = Instant::now();
            for i in 0..iters {
                std::hint::black_box(f(std::hint::black_box(i)));
            }
            start.elapsed().as_nanos() as f64 / iters as f64
        })
        .collect();
    median(&mut samples)
}

/// The median of `samples` (sorts them in place); 0 for none.
pub fn median(samples: &mut [f64]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_by(f64::total_cmp);
    let mid = samples.len() / 2;
    if samples.len() % 2 == 1 {
        samples[mid]
    } else {
        (samples[mid - 1] + samples[mid]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }

    #[test]
    fn ns_per_op_is_positive() {
        let ns = median_ns_per_op(3, 1000, |i| i.wrapping_mul(3));
        assert!(ns >= 0.0 && ns.is_finite());
    }
}
