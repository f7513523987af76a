//! Every missing topic is named in the reason, not only the first, up to
//! ten, then how many more: one run says everything there is to create.

use std::time::Duration;

use crate::peers::{self, free_port, kwait_with, Tansu};

#[test]
fn every_missing_topic_is_named_up_to_ten() {
    let broker = Tansu::start(free_port());
    broker.wait_accepting(Duration::from_secs(30));
    broker.create_topic("orders", 1);
    let addr = broker.addr();
    let limit = Duration::from_secs(30);
    let probe = |topics: &str| {
        let target = format!("kafka://{addr}?topics={topics}");
        peers::run(&mut kwait_with(&["probe", &target], &[]), limit)
    };
    probe("payments,orders,refunds").expect(
        1,
        &["2 topics do not exist: 'payments', 'refunds' (kwait never creates them)"],
    );
    let many: Vec<String> = (1..=12).map(|i| format!("t{i}")).collect();
    let done = probe(&format!("orders,{}", many.join(",")));
    done.expect(
        1,
        &["12 topics do not exist: 't1', 't2', 't3', 't4', 't5', 't6', 't7', 't8', 't9', 't10' and 2 more"],
    );
    assert!(!done.stderr.contains("'t11'"), "{}", done.stderr);
    // One missing topic reads as before.
    probe("orders,payments").expect(
        1,
        &["topic 'payments' does not exist (kwait never creates it)"],
    );
}
