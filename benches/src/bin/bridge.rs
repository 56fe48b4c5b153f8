//! `bridge`: the throughput part of busbench's `bridge` section alone, repeated, for quick
//! measurements while working on the NATS bridge (`cargo run --release -p tracebus-benches
//! --bin bridge -- [--quick|--full] [--runs N]`). Starts one `nats-server` for all runs and
//! prints each run's table (the bridge loops against the plain `async-nats` loop). With
//! `--only plain|plain-tp|off|traced` it runs that loop alone (`--n` messages, default 300,000) and
//! prints its rate and client CPU per message per run (for a profiler).

use std::process::ExitCode;

use tracebus_test_support::NatsServer;

fn main() -> ExitCode {
    let mut quick = false;
    let mut runs = 1;
    let mut only = None;
    let mut n = 300_000;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--full" => quick = false,
            "--runs" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) => runs = n,
                None => {
                    eprintln!("--runs needs a number");
                    return ExitCode::from(2);
                }
            },
            "--only" => only = args.next(),
            "--n" => match args.next().and_then(|n| n.parse().ok()) {
                Some(v) => n = v,
                None => {
                    eprintln!("--n needs a number");
                    return ExitCode::from(2);
                }
            },
            _ => {
                eprintln!(
                    "usage: bridge [--quick|--full] [--runs N] [--only plain|plain-tp|off|traced [--n N]]"
                );
                return ExitCode::from(2);
            }
        }
    }
    let server = match NatsServer::start() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bridge: no nats-server ({e}); scripts/nats-server.sh install");
            return ExitCode::FAILURE;
        }
    };
    for _ in 0..runs {
        match &only {
            None => {
                tracebus_benches::bridge::throughput(&server.url(), quick);
            }
            Some(which) => match tracebus_benches::bridge::one_loop(&server.url(), which, n) {
                Some((rate, cpu)) => match cpu {
                    Some(cpu) => println!("{which}: {rate:.0} msgs/s, {cpu:.2} us CPU/msg"),
                    None => println!("{which}: {rate:.0} msgs/s"),
                },
                None => {
                    eprintln!("--only takes plain, plain-tp, off or traced");
                    return ExitCode::from(2);
                }
            },
        }
    }
    ExitCode::SUCCESS
}
