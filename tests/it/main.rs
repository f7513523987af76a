//! Integration tests: one binary, so the peers harness is compiled once.

mod bootstrap;
mod cli;
mod dns;
mod docker;
mod drain_log;
mod exec_errors;
mod fake_broker;
mod kafka;
mod peers;
mod security;
mod self_signed;
mod supervise;
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
