//! Integration tests: one binary, so the peers harness is compiled once.
//!
//! Where a new test goes, by what it tests:
//!
//! - `cli.rs`: parsing, usage errors, help and version;
//! - `wait.rs`: the wait loop: ready, timeouts and their messages, argv
//!   against the environment, signals while waiting, pacing;
//! - `command.rs`: COMMAND after the wait: its exit code, 126/127,
//!   `--exec`, the signal state it starts with;
//! - `probe.rs`: one attempt against tcp://, http:// and hostile kafka://
//!   peers, as `kwait probe` reports it;
//! - `kafka.rs`, `zk.rs`, `security.rs`, `bootstrap.rs`, `dns.rs`: one
//!   target kind or concern against real (or small fake) peers;
//! - `supervise.rs`: kwait as PID 1 and subreaper; `docker.rs`: kwait in
//!   real containers.
//!
//! Tests run kwait through `peers/mod.rs`: `run_kwait`, or `run` for a
//! `Command` set up further, `Running` and `Waiting` for one in the
//! background. A harness for a peer kwait talks to goes in `peers/`, one
//! file per peer (`peers/tansu.rs`, `peers/zookeeper.rs`, ...),
//! re-exported from `peers/mod.rs`; a test file keeps only the helpers of
//! its own tests.

mod amqp;
mod bootstrap;
mod broker_health;
mod cli;
mod command;
mod dns;
mod docker;
mod drain_log;
mod exec_errors;
mod http_redirect;
mod kafka;
mod missing_topics;
mod mysql;
mod peers;
mod postgres;
mod probe;
mod redis;
mod security;
mod self_signed;
mod supervise;
mod topics;
mod wait;
mod wrong_service;
mod zk;

use std::time::Duration;

use peers::{accepts, free_port, metadata, Mock, Tansu};

#[test]
fn peers_start_and_stop() {
    let mut tansu = Tansu::start(free_port());
    let took = tansu.wait_accepting(Duration::from_secs(10));
    eprintln!("tansu pid {} accepting after {took:?}", tansu.pid());
    tansu.create_topic("orders", 3);
    let md = metadata(&tansu.addr());
    let ids: Vec<i32> = md.brokers.iter().map(|b| b.node_id.0).collect();
    eprintln!(
        "tansu metadata: brokers {ids:?}, controller {}",
        md.controller_id.0
    );
    let orders = md
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "orders"))
        .expect("topic orders exists");
    assert_eq!(orders.partitions.len(), 3);
    assert!(orders.partitions.iter().all(|p| p.leader_id.0 >= 0));
    assert!(tansu.stop().success(), "tansu log:\n{}", tansu.log());
    assert!(!accepts(&tansu.addr(), Duration::from_secs(1)));

    let mock = Mock::new(3);
    let bootstrap = mock.bootstrap();
    assert_eq!(bootstrap.split(',').count(), 3, "{bootstrap}");
    for addr in bootstrap.split(',') {
        assert!(accepts(addr, Duration::from_secs(5)), "mock broker {addr}");
    }
    mock.broker_down(2);
    assert!(!accepts(&mock.addr(2), Duration::from_secs(1)));
    mock.broker_up(2);
    assert!(accepts(&mock.addr(2), Duration::from_secs(5)));
}
