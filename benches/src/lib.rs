//! Shared code of tracebus's benchmarks: the criterion benches in `benches/` and the `busbench`
//! binary, which compares tracebus with its peers in one run and prints ratios.

pub mod bridge;
pub mod bus_vs_peers;
pub mod fanout;
pub mod filter_cases;
pub mod latency_at_rate;
pub mod machine;
pub mod measure;
pub mod peers;
pub mod plot;
pub mod span_cost;
pub mod spsc;
pub mod trace_tree;
