//! The fanout sampler over a million random trace-ids: sampled fractions within binomial
//! tolerance, monotonic for every id, and safe to reconfigure while other threads decide.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use tracebus_context::{random_trace_id, Decision, FanoutSampler, RootPolicy, TraceContext};

const IDS: usize = 1_000_000;
const FANOUTS: [usize; 10] = [1, 2, 5, 10, 11, 50, 100, 1_000, 10_000, 100_000];

/// `|observed - n p| <= 6 sigma` (two-sided probability of a false failure ~2e-9).
fn assert_binomial(hits: usize, n: usize, p: f64, what: &str) {
    let mean = n as f64 * p;
    let sigma = (n as f64 * p * (1.0 - p)).sqrt();
    let dev = (hits as f64 - mean).abs();
    assert!(
        dev <= 6.0 * sigma + 1e-9,
        "{what}: {hits} of {n} sampled, expected {mean:.1} ± {:.1}",
        6.0 * sigma
    );
}

#[test]
fn fractions_and_monotonicity_over_a_million_ids() {
    let sampler = FanoutSampler::default();
    let mut hits = [0usize; FANOUTS.len()];
    for _ in 0..IDS {
        let id = random_trace_id();
        let mut kept_at_higher_fanout = false;
        // Walk from the largest fanout (smallest rate) down: once kept, kept at every lower one.
        for (i, &n) in FANOUTS.iter().enumerate().rev() {
            let kept = sampler.sample_trace(&id, n);
            assert!(
                kept || !kept_at_higher_fanout,
                "id {id:02x?} kept at a rate below p({n}) but not at p({n})"
            );
            kept_at_higher_fanout |= kept;
            hits[i] += usize::from(kept);
        }
    }
    for (i, &n) in FANOUTS.iter().enumerate() {
        assert_binomial(hits[i], IDS, sampler.rate(n), &format!("fanout {n}"));
    }
    assert_eq!(hits[0], IDS, "fanout 1 keeps every trace");
}

#[test]
fn root_decisions_follow_the_rate() {
    let sampler = FanoutSampler::default();
    for (n, p) in [(1usize, 1.0), (100, 0.1), (10_000, 0.001)] {
        let trials = 200_000;
        let started = (0..trials)
            .filter(|_| match sampler.decide(None, n) {
                Decision::Start { trace_id, rate } => {
                    assert_eq!(rate, sampler.rate(n));
                    // The started trace passes its own threshold: downstream hops agree.
                    assert!(sampler.sample_trace(&trace_id, n));
                    true
                }
                Decision::Drop => false,
                Decision::Continue { .. } => panic!("no parent to continue"),
            })
            .count();
        assert_binomial(started, trials, p, &format!("root at fanout {n}"));
    }
}

#[test]
fn parent_decisions_are_consistent_with_sample_trace() {
    let sampler = FanoutSampler::default();
    for _ in 0..100_000 {
        let parent = TraceContext::new(random_trace_id(), [1; 8], 0x03).unwrap();
        for n in [1, 100, 10_000] {
            let d = sampler.decide(Some(&parent), n);
            assert_eq!(d.is_sampled(), sampler.sample_trace(&parent.trace_id(), n));
        }
    }
}

#[test]
fn reconfiguring_while_other_threads_decide() {
    const KS: [f64; 3] = [10.0, 1_000.0, 0.0];
    const FANOUT: usize = 100;
    let sampler = FanoutSampler::default();
    let stop = Arc::new(AtomicBool::new(false));
    let deciders: Vec<_> = (0..3)
        .map(|_| {
            let s = sampler.clone();
            let stop = stop.clone();
            thread::spawn(move || {
                let valid: Vec<f64> = KS.iter().map(|k| (k / FANOUT as f64).min(1.0)).collect();
                let mut decisions = 0u64;
                while !stop.load(Ordering::Relaxed) || decisions < 10_000 {
                    if let Some(rate) = s.decide(None, FANOUT).rate() {
                        assert!(valid.contains(&rate), "rate {rate} from no k that was set");
                        assert!(rate > 0.0, "k = 0 never samples");
                    }
                    decisions += 1;
                }
                decisions
            })
        })
        .collect();
    for i in 0..30_000 {
        sampler.set_k(KS[i % KS.len()]).unwrap();
        sampler.set_root_policy(if i % 7 == 0 {
            RootPolicy::ContinueOnly
        } else {
            RootPolicy::Start
        });
    }
    sampler.set_root_policy(RootPolicy::Start);
    sampler.set_k(1_000.0).unwrap();
    stop.store(true, Ordering::Relaxed);
    for d in deciders {
        assert!(d.join().unwrap() >= 10_000);
    }
    // Every handle sees the final settings.
    let handle = sampler.clone();
    assert_eq!(handle.rate(FANOUT), 1.0);
    assert!(handle.decide(None, FANOUT).is_sampled());
}
