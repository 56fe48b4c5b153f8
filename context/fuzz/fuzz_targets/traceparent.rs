//! Fuzz target: see `tracebus_context_fuzz::check_traceparent` for the invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tracebus_context_fuzz::check_traceparent(data));
