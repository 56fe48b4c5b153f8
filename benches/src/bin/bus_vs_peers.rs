//! `bus_vs_peers`: busbench's bus-against-peers section alone, for a quick look while working
//! on the bus's hot path (`busbench` runs it with every other section).
//!
//! `bus_vs_peers [--quick] [--json PATH]`: prints the section's table and ratios; with `--json`
//! writes `{"bus_vs_peers": [...], "bus_vs_peers_ratios": [...]}` to `PATH`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut quick = false;
    let mut json_path = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--full" => quick = false,
            "--json" => json_path = args.next(),
            _ => {
                eprintln!("usage: bus_vs_peers [--quick|--full] [--json PATH]");
                return ExitCode::from(2);
            }
        }
    }
    let (rows, ratios) = tracebus_benches::bus_vs_peers::section(quick, &mut |line| {
        eprintln!("[bus_vs_peers] {line}")
    });
    if let Some(path) = json_path {
        let doc = serde_json::json!({"bus_vs_peers": rows, "bus_vs_peers_ratios": ratios});
        let text = serde_json::to_string_pretty(&doc).expect("JSON values serialise");
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("bus_vs_peers: cannot write {path}: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
