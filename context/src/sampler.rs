//! `FanoutSampler`: the consistent, parent-based sampling decision made once per publish.
//!
//! Rate: `p(n) = min(1, k / n)` for a publish that fans out to `n` recipients (default `k = 10`:
//! 100% up to 10 recipients, 10% at 100, 0.1% at 10,000; fanout 0 samples nothing), so one
//! broadcast cannot start an avalanche of spans.
//!
//! Decision: consistent probability sampling as the OpenTelemetry sampling specification defines
//! it. `R` is the rightmost 7 bytes of the trace-id read as a big-endian 56-bit number, the
//! threshold is `T = (1 - p) * 2^56`, and a trace is kept iff `R >= T`. Because `T` only falls
//! as `p` rises, a trace kept at 0.1% is kept at 10% too: every hop of one trace agrees without
//! talking to the others.
//!
//! Parent-based: an unsampled parent gives unsampled; a sampled parent is kept iff its `R`
//! passes the threshold for this fanout; no parent starts a new trace (random id, same test) only
//! where the [`RootPolicy`] says `Start`.
//!
//! `k` and the root policy live in atomics behind an `Arc`: clones of a sampler are handles to
//! the same settings, and [`FanoutSampler::set_k`] takes effect for every thread's next decision,
//! with no lock and no restart. The settings are independent values, so `Relaxed` is enough: no
//! other memory is published through them. A decision is O(1) and allocates nothing.

use core::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;

use crate::context::{FLAG_RANDOM, FLAG_SAMPLED};
use crate::random::random_trace_id;
use crate::TraceContext;

/// `2^56`: the size of the space `R` is drawn from.
const TWO_POW_56: u64 = 1 << 56;
/// The default `k`: 100% up to 10 recipients.
pub const DEFAULT_K: f64 = 10.0;

/// What a publish without a parent context may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum RootPolicy {
    /// Start a new trace with probability `p(n)` (the default for publishes from outside a
    /// handler).
    #[default]
    Start = 0,
    /// Never start a trace; only continue sampled parents.
    ContinueOnly = 1,
}

/// The outcome of [`FanoutSampler::decide`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Not sampled: the message carries no context and no OpenTelemetry call is made.
    Drop,
    /// Sampled, continuing the parent's trace.
    Continue {
        /// The sampling rate `p(n)` that was applied.
        rate: f64,
    },
    /// Sampled, starting a new trace with this random trace-id.
    Start {
        /// The new trace's id (random, with the random-trace-id flag's guarantee).
        trace_id: [u8; 16],
        /// The sampling rate `p(n)` that was applied.
        rate: f64,
    },
}

impl Decision {
    /// Whether the publish is sampled.
    #[inline]
    pub fn is_sampled(&self) -> bool {
        !matches!(self, Decision::Drop)
    }

    /// The rate applied, or `None` when dropped.
    #[inline]
    pub fn rate(&self) -> Option<f64> {
        match *self {
            Decision::Drop => None,
            Decision::Continue { rate } | Decision::Start { rate, .. } => Some(rate),
        }
    }

    /// Trace flags for a new root context (`sampled | random`).
    pub const ROOT_FLAGS: u8 = FLAG_SAMPLED | FLAG_RANDOM;
}

/// An invalid sampler setting.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SamplerError {
    /// `k` must be a finite number `>= 0`.
    #[error("sampler k must be finite and >= 0, got {0}")]
    InvalidK(f64),
}

#[derive(Debug)]
struct Settings {
    /// `f64::to_bits` of `k`; invariant: a finite value `>= 0`.
    k_bits: AtomicU64,
    /// A `RootPolicy` discriminant.
    root: AtomicU8,
}

/// The consistent fanout sampler; clones share their settings (see the module docs).
#[derive(Debug, Clone)]
pub struct FanoutSampler {
    settings: Arc<Settings>,
}

impl Default for FanoutSampler {
    /// `k = 10`, [`RootPolicy::Start`].
    fn default() -> Self {
        FanoutSampler::new(DEFAULT_K)
    }
}

/// `R`: the rightmost 7 bytes of `trace_id` as a big-endian 56-bit number.
#[inline]
pub fn randomness(trace_id: &[u8; 16]) -> u64 {
    let mut low = [0u8; 8];
    low[1..].copy_from_slice(&trace_id[9..]);
    u64::from_be_bytes(low)
}

/// `T = (1 - p) * 2^56` for a rate `p` in `[0, 1]` (clamped); keep a trace iff `R >= T`.
#[inline]
pub fn threshold(rate: f64) -> u64 {
    let p = rate.clamp(0.0, 1.0);
    // (1 - p) is exact or rounds monotonically; the product with a power of two is exact.
    ((1.0 - p) * TWO_POW_56 as f64) as u64
}

fn check_k(k: f64) -> Result<f64, SamplerError> {
    if k.is_finite() && k >= 0.0 {
        Ok(k)
    } else {
        Err(SamplerError::InvalidK(k))
    }
}

impl FanoutSampler {
    /// A sampler with rate `min(1, k / n)` and [`RootPolicy::Start`].
    ///
    /// # Panics
    /// If `k` is NaN, infinite or negative; [`FanoutSampler::try_new`] returns an error instead.
    pub fn new(k: f64) -> FanoutSampler {
        match FanoutSampler::try_new(k) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    /// A sampler with rate `min(1, k / n)`, or an error if `k` is not finite and `>= 0`.
    pub fn try_new(k: f64) -> Result<FanoutSampler, SamplerError> {
        let k = check_k(k)?;
        Ok(FanoutSampler {
            settings: Arc::new(Settings {
                k_bits: AtomicU64::new(k.to_bits()),
                root: AtomicU8::new(RootPolicy::Start as u8),
            }),
        })
    }

    /// The same sampler with another root policy (builder style; shared with existing clones).
    pub fn with_root_policy(self, policy: RootPolicy) -> FanoutSampler {
        self.set_root_policy(policy);
        self
    }

    /// The current `k`.
    #[inline]
    pub fn k(&self) -> f64 {
        f64::from_bits(self.settings.k_bits.load(Relaxed))
    }

    /// Changes `k` for every clone of this sampler; later decisions on any thread use it.
    pub fn set_k(&self, k: f64) -> Result<(), SamplerError> {
        let k = check_k(k)?;
        self.settings.k_bits.store(k.to_bits(), Relaxed);
        Ok(())
    }

    /// The current root policy.
    #[inline]
    pub fn root_policy(&self) -> RootPolicy {
        match self.settings.root.load(Relaxed) {
            0 => RootPolicy::Start,
            _ => RootPolicy::ContinueOnly,
        }
    }

    /// Changes the root policy for every clone of this sampler.
    pub fn set_root_policy(&self, policy: RootPolicy) {
        self.settings.root.store(policy as u8, Relaxed);
    }

    /// `p(n) = min(1, k / n)`; 0 for fanout 0.
    #[inline]
    pub fn rate(&self, fanout: usize) -> f64 {
        rate_for(self.k(), fanout)
    }

    /// Whether a trace with this id is kept at fanout `n`: `R >= T(p(n))`.
    #[inline]
    pub fn sample_trace(&self, trace_id: &[u8; 16], fanout: usize) -> bool {
        fanout > 0 && randomness(trace_id) >= threshold(self.rate(fanout))
    }

    /// The one decision of a publish with `fanout` recipients and an optional parent.
    ///
    /// ```
    /// use tracebus_context::{Decision, FanoutSampler, RootPolicy, TraceContext};
    /// let sampler = FanoutSampler::default();
    /// // A root publish to one recipient always starts a trace.
    /// assert!(matches!(sampler.decide(None, 1), Decision::Start { rate, .. } if rate == 1.0));
    /// // An unsampled parent is never continued.
    /// let parent = TraceContext::new([1; 16], [1; 8], 0).unwrap();
    /// assert_eq!(sampler.decide(Some(&parent), 1), Decision::Drop);
    /// // ContinueOnly never starts a trace.
    /// let inside = FanoutSampler::default().with_root_policy(RootPolicy::ContinueOnly);
    /// assert_eq!(inside.decide(None, 1), Decision::Drop);
    /// ```
    #[inline]
    pub fn decide(&self, parent: Option<&TraceContext>, fanout: usize) -> Decision {
        if fanout == 0 {
            return Decision::Drop;
        }
        let rate = self.rate(fanout);
        match parent {
            Some(p) if p.is_sampled() && randomness(&p.trace_id()) >= threshold(rate) => {
                Decision::Continue { rate }
            }
            Some(_) => Decision::Drop,
            None if self.root_policy() == RootPolicy::ContinueOnly || rate <= 0.0 => Decision::Drop,
            None => {
                let trace_id = random_trace_id();
                if randomness(&trace_id) >= threshold(rate) {
                    Decision::Start { trace_id, rate }
                } else {
                    Decision::Drop
                }
            }
        }
    }
}

#[inline]
fn rate_for(k: f64, fanout: usize) -> f64 {
    if fanout == 0 {
        return 0.0;
    }
    (k / fanout as f64).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_with_r(r: u64) -> [u8; 16] {
        let mut id = [0xaa; 16];
        id[9..].copy_from_slice(&r.to_be_bytes()[1..]);
        id
    }

    #[test]
    fn rates() {
        let s = FanoutSampler::default();
        assert_eq!(s.rate(0), 0.0);
        assert_eq!(s.rate(1), 1.0);
        assert_eq!(s.rate(10), 1.0);
        assert!((s.rate(100) - 0.1).abs() < 1e-12);
        assert!((s.rate(10_000) - 0.001).abs() < 1e-12);
    }

    #[test]
    fn threshold_bounds() {
        assert_eq!(threshold(1.0), 0);
        assert_eq!(threshold(0.0), TWO_POW_56);
        assert_eq!(threshold(0.5), TWO_POW_56 / 2);
        assert_eq!(threshold(2.0), 0, "clamped");
        // R = 2^56 - 1 is kept at every positive rate, R = 0 only at rate 1.
        let s = FanoutSampler::default();
        assert!(s.sample_trace(&id_with_r(TWO_POW_56 - 1), 1_000_000));
        assert!(!s.sample_trace(&id_with_r(0), 11));
        assert!(s.sample_trace(&id_with_r(0), 10));
        assert!(
            !s.sample_trace(&id_with_r(TWO_POW_56 - 1), 0),
            "fanout 0 samples nothing"
        );
    }

    #[test]
    fn randomness_reads_the_right_bytes() {
        let mut id = [0u8; 16];
        id[8] = 0xff; // byte 8 is not part of R
        assert_eq!(randomness(&id), 0);
        id[15] = 1;
        assert_eq!(randomness(&id), 1);
        id[9] = 0x80;
        assert_eq!(randomness(&id), (0x80 << 48) | 1);
    }

    #[test]
    fn parent_based() {
        let s = FanoutSampler::default();
        let keep = TraceContext::new(id_with_r(TWO_POW_56 - 1), [1; 8], 1).unwrap();
        let low = TraceContext::new(id_with_r(1), [1; 8], 1).unwrap();
        assert_eq!(
            s.decide(Some(&keep), 10_000),
            Decision::Continue { rate: 0.001 }
        );
        assert_eq!(s.decide(Some(&low), 10_000), Decision::Drop);
        assert_eq!(s.decide(Some(&low), 1), Decision::Continue { rate: 1.0 });
        assert_eq!(s.decide(Some(&keep.with_flags(0)), 1), Decision::Drop);
        assert_eq!(s.decide(Some(&keep), 0), Decision::Drop);
        s.set_root_policy(RootPolicy::ContinueOnly);
        assert_eq!(s.decide(None, 1), Decision::Drop);
        assert_eq!(s.decide(Some(&keep), 1), Decision::Continue { rate: 1.0 });
    }

    #[test]
    fn settings_are_shared_and_validated() {
        let a = FanoutSampler::default();
        let b = a.clone();
        b.set_k(100.0).unwrap();
        assert_eq!(a.k(), 100.0);
        assert_eq!(a.rate(100), 1.0);
        assert_eq!(a.set_k(-1.0), Err(SamplerError::InvalidK(-1.0)));
        assert!(a.set_k(f64::NAN).is_err());
        assert!(a.set_k(f64::INFINITY).is_err());
        assert_eq!(a.k(), 100.0, "a rejected value changes nothing");
        assert!(FanoutSampler::try_new(-0.5).is_err());
        a.set_k(0.0).unwrap();
        assert_eq!(a.decide(None, 1), Decision::Drop);
        assert_eq!(b.root_policy(), RootPolicy::Start);
        a.set_root_policy(RootPolicy::ContinueOnly);
        assert_eq!(b.root_policy(), RootPolicy::ContinueOnly);
    }

    #[test]
    #[should_panic(expected = "sampler k must be finite")]
    fn new_panics_on_invalid_k() {
        let _ = FanoutSampler::new(f64::NAN);
    }
}
