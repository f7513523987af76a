//! A librdkafka mock cluster as a stand-alone process, for the benchmark script.
//!
//! ```text
//! cargo run --release --example mock_cluster -- BROKERS [TOPIC]
//! ```
//!
//! Starts BROKERS mock brokers on 127.0.0.1 (ids 1..=BROKERS), optionally
//! creates TOPIC with 3 partitions, prints the bootstrap servers as the first
//! and only line of stdout, then runs until stdin is closed or SIGTERM arrives.
//!
//! Keep stdin open from a script: a plain `cmd &` in a non-interactive shell
//! gets /dev/null as stdin and would exit at once. Use a coprocess
//! (`coproc MOCK { mock_cluster 3 t; }`) or `mock_cluster 3 t < <(sleep infinity)`
//! and stop it by pid.

use std::io::{Read, Write};
use std::process::ExitCode;

use rdkafka::mocking::MockCluster;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let brokers = match args.first().map(|s| s.parse::<i32>()) {
        Some(Ok(n)) if n > 0 && args.len() <= 2 => n,
        _ => {
            eprintln!("usage: mock_cluster BROKERS [TOPIC]");
            return ExitCode::from(2);
        }
    };
    let cluster = match MockCluster::new(brokers) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mock_cluster: cannot start the mock cluster: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(topic) = args.get(1) {
        if let Err(e) = cluster.create_topic(topic, 3, brokers.min(3)) {
            eprintln!("mock_cluster: cannot create topic {topic}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{}", cluster.bootstrap_servers())
        .and_then(|()| out.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    drop(out);
    // SIGTERM keeps its default action (the process ends, the kernel closes
    // the sockets); otherwise serve until stdin reaches EOF.
    let mut sink = [0u8; 256];
    let mut stdin = std::io::stdin().lock();
    while let Ok(n) = stdin.read(&mut sink) {
        if n == 0 {
            break;
        }
    }
    drop(cluster);
    ExitCode::SUCCESS
}
