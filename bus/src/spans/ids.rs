//! Trace-ids and span-ids for the bus's spans, made by the bus itself.
//!
//! Both come from `tracebus_context`'s generator: wyrand with one state per thread, seeded once
//! from the OS, a multiply per 64 bits, no allocation and no shared state (about 1 ns a call;
//! busbench's `span_cost` section measures it inside `hot_ns_per_span`). Trace-ids are random
//! in all their bits, so the W3C "random trace-id" flag is true of them and consistent
//! sampling can read its randomness from them. Neither is ever all zero.

#[cfg(test)]
/// A new, random, non-zero 16-byte trace-id, for a publish that starts a trace (the sampler's
/// `Decision::Start` already carries one: use that one, since the decision was made on it).
#[inline]
pub(crate) fn new_trace_id() -> [u8; 16] {
    tracebus_context::random_trace_id()
}

/// A new, random, non-zero 8-byte span-id, for every span the bus records.
#[inline]
pub(crate) fn new_span_id() -> [u8; 8] {
    tracebus_context::random_span_id()
}

#[cfg(all(test, not(tracebus_loom)))]
mod tests {
    use super::*;

    #[test]
    fn ids_are_non_zero_and_fresh() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let s = new_span_id();
            assert_ne!(s, [0; 8]);
            assert!(seen.insert(s), "span-id repeated");
        }
        assert_ne!(new_trace_id(), [0; 16]);
        assert_ne!(new_trace_id(), new_trace_id());
    }
}
