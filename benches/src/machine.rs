//! What machine a run was on: CPU model and core count, for the report header and JSON.

use serde_json::{json, Value};

/// The CPU model from `/proc/cpuinfo` (Linux), or `"unknown"`.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Logical cores available to this process.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The `"machine"` JSON section.
pub fn describe() -> Value {
    json!({
        "cpu": cpu_model(),
        "cores": cores(),
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
    })
}
