//! Several addresses in one target: any one ready is enough, and one that
//! accepts and never answers must not hold the others back.

use std::time::{Duration, Instant};

use crate::peers::{free_port, run_kwait, Fake, Tansu, ZooKeeper};

const LIMIT: Duration = Duration::from_secs(30);

/// A silent first bootstrap address and a real broker: `probe` is ready
/// (its one attempt tries the broker beside the silent one), and waiting is
/// ready well before --attempt-timeout (5 s) would have let it move on.
#[test]
fn a_silent_bootstrap_address_does_not_hold_back_a_serving_one() {
    let silent = Fake::silent();
    let broker = Tansu::start(free_port());
    broker.wait_accepting(LIMIT);
    let target = format!("kafka://{},{}", silent.addr(), broker.addr());

    let t0 = Instant::now();
    let probed = run_kwait(&["probe", "-t", "3s", &target], &[], LIMIT);
    probed.expect(0, &["ready: 1 broker"]);
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "probe took {:?}",
        t0.elapsed()
    );

    let t0 = Instant::now();
    let waited = run_kwait(&[&target, "-t", "4s"], &[], LIMIT);
    waited.expect(0, &["ready after"]);
    let took = t0.elapsed();
    eprintln!("measured: ready {took:?} after start, with a silent first address");
    assert!(took < Duration::from_secs(2), "waiting took {took:?}");
}

/// Not ready at all: the reason names every address, not only the last.
#[test]
fn an_unready_target_names_every_address() {
    let silent = Fake::silent();
    let refused = format!("127.0.0.1:{}", free_port());
    let target = format!("kafka://{},{refused}", silent.addr());
    let probed = run_kwait(&["probe", "-t", "1s", &target], &[], LIMIT);
    probed.expect(
        1,
        &[&silent.addr(), &format!("connection refused at {refused}")],
    );
}

/// The same for ZooKeeper: a silent member first, a real server second.
#[test]
fn a_silent_zookeeper_member_does_not_hold_back_a_serving_one() {
    let silent = Fake::silent();
    let zk = ZooKeeper::start_ready();
    let target = format!("zk://{},{}", silent.addr(), zk.addr());
    let probed = run_kwait(&["probe", "-t", "3s", &target], &[], LIMIT);
    probed.expect(0, &["ready: session 0x"]);
}
