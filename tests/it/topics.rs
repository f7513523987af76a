//! `--create-topics` against real brokers: tansu creates (its CreateTopics
//! validates little, see TESTING.md), the librdkafka mock shows what tansu
//! cannot (several brokers, a replication factor above one, a partition
//! without a leader) but has no CreateTopics at all.
//! Each test checks the cluster's state with its own Metadata request.

use std::time::Duration;

use kafka_protocol::messages::MetadataResponse;

use crate::peers::{free_port, kwait_with, metadata, run_kwait, Mock, Running, Tansu, Waiting};

const LONG: Duration = Duration::from_secs(30);

fn tansu() -> Tansu {
    let broker = Tansu::start(free_port());
    broker.wait_accepting(LONG);
    broker
}

/// Each topic the cluster lists: name, partitions, whether all are led.
fn topics(md: &MetadataResponse) -> Vec<(String, usize, bool)> {
    let mut all: Vec<(String, usize, bool)> = md
        .topics
        .iter()
        .filter_map(|t| {
            let name = t.name.as_ref()?.0.to_string();
            let led = t
                .partitions
                .iter()
                .all(|p| p.leader_id.0 >= 0 && p.error_code == 0);
            Some((name, t.partitions.len(), led))
        })
        .collect();
    all.sort();
    all
}

fn kafka(addr: &str) -> String {
    format!("kafka://{addr}")
}

#[test]
fn creates_missing_topics_then_starts_the_app() {
    let broker = tansu();
    let addr = broker.addr();
    // topics= names one it creates: the wait before must not wait for it.
    let target = format!("kafka://{addr}?topics=orders");
    let mut waiting = Waiting::spawn(
        "topics-create",
        "kwait",
        kwait_with(
            &[
                &target,
                "-t",
                "30s",
                "--create-topics",
                "orders:3:1,payments:6:1:compact",
                "--create-topics",
                "audit:1:1:retention.ms=3600000;cleanup.policy=compact,delete",
            ],
            &[],
        ),
    );
    let done = waiting.kw.finish(LONG);
    done.expect(
        0,
        &[
            "topic orders created: 3 partition(s), replication 1",
            "topic payments created: 6 partition(s), replication 1, cleanup.policy=compact",
            "topic audit created: 1 partition(s), replication 1, retention.ms=3600000, cleanup.policy=compact,delete",
            "topics ready after",
            "3 created, 0 already there, every partition led",
        ],
    );
    assert!(waiting.ran(), "COMMAND did not run");
    // COMMAND started after the topics were led, as the log says ...
    let ready = done.stderr.find("topics ready after").unwrap();
    let started = done.stderr.find("COMMAND started").unwrap();
    assert!(ready < started, "{}", done.stderr);
    // ... and as the cluster says.
    assert_eq!(
        topics(&metadata(&addr)),
        [
            ("audit".into(), 1, true),
            ("orders".into(), 3, true),
            ("payments".into(), 6, true)
        ]
    );
}

#[test]
fn a_second_run_creates_nothing() {
    let broker = tansu();
    let target = kafka(&broker.addr());
    let args = [
        &target[..],
        "-t",
        "30s",
        "--create-topics",
        "orders:3:1,payments:2:1",
    ];
    run_kwait(&args, &[], LONG).expect(0, &["2 created, 0 already there"]);
    let done = run_kwait(&args, &[], LONG);
    done.expect(
        0,
        &[
            "topic orders already there, as asked: 3 partition(s), replication 1",
            "topic payments already there, as asked: 2 partition(s), replication 1",
            "0 created, 2 already there, every partition led",
        ],
    );
    assert!(!done.stderr.contains(" created:"), "{}", done.stderr);
    // From the environment, the same.
    run_kwait(
        &[&target[..], "-t", "30s"],
        &[("KWAIT_CREATE_TOPICS", "orders:3:1")],
        LONG,
    )
    .expect(0, &["topic orders already there, as asked"]);
}

#[test]
fn two_kwaits_at_the_same_moment_both_succeed() {
    let broker = tansu();
    let addr = broker.addr();
    let target = kafka(&addr);
    let specs = "t1:3:1,t2:3:1,t3:3:1,t4:3:1,t5:3:1";
    let args = [&target[..], "-t", "30s", "-v", "--create-topics", specs];
    let mut a = Running::spawn("kwait-a", &mut kwait_with(&args, &[]));
    let mut b = Running::spawn("kwait-b", &mut kwait_with(&args, &[]));
    let (a, b) = (a.finish(LONG), b.finish(LONG));
    a.expect(0, &["every partition led"]);
    b.expect(0, &["every partition led"]);
    // Each topic once, as asked; created by one of them, found by the other.
    let listed = topics(&metadata(&addr));
    assert_eq!(listed.len(), 5, "{listed:?}");
    assert!(
        listed.iter().all(|(_, n, led)| *n == 3 && *led),
        "{listed:?}"
    );
    for t in ["t1", "t2", "t3", "t4", "t5"] {
        let created = format!("topic {t} created:");
        let times = a.stderr.matches(&created).count() + b.stderr.matches(&created).count();
        assert!(
            times >= 1,
            "{t} created by neither:\n{}\n{}",
            a.stderr,
            b.stderr
        );
    }
}

#[test]
fn a_different_partition_count_is_reported_never_changed() {
    let broker = tansu();
    let addr = broker.addr();
    broker.create_topic("orders", 2);
    let target = kafka(&addr);
    let args = [
        &target[..],
        "-t",
        "30s",
        "--create-topics",
        "orders:3:1,payments:1:1",
    ];
    run_kwait(&args, &[], LONG).expect(
        0,
        &[
            "warning: topic orders already there with 2 partition(s), replication 1, not 3 and 1 as its spec asks: kwait never changes a topic",
            "--strict-topics makes this fatal",
            "topic payments created",
        ],
    );
    let strict = [
        &target[..],
        "-t",
        "30s",
        "--strict-topics",
        "--create-topics",
        "orders:3:1,refunds:1:1",
    ];
    let done = run_kwait(&strict, &[], LONG);
    done.expect(
        1,
        &[
            "topic orders already there with 2 partition(s)",
            "1 existing topic(s) differ from their spec, and --strict-topics is set",
        ],
    );
    assert!(!done.stderr.contains("warning:"), "{}", done.stderr);
    // The same from the environment twin; and nothing was created or changed.
    run_kwait(
        &[
            &target[..],
            "-t",
            "30s",
            "--create-topics",
            "orders:3:1,refunds:1:1",
        ],
        &[("KWAIT_STRICT_TOPICS", "1")],
        LONG,
    )
    .expect(1, &["--strict-topics is set"]);
    assert_eq!(
        topics(&metadata(&addr)),
        [("orders".into(), 2, true), ("payments".into(), 1, true)]
    );
}

#[test]
fn replication_above_the_broker_count_is_fatal_and_says_why() {
    let broker = tansu();
    let addr = broker.addr();
    let done = run_kwait(
        &[
            &kafka(&addr),
            "-t",
            "30s",
            "--create-topics",
            "orders:3:1,payments:3:3",
        ],
        &[],
        LONG,
    );
    done.expect(
        1,
        &[
            "--create-topics: topic 'payments': replication factor 3 needs 3 brokers, the cluster has 1",
            "add min-brokers=3 to the kafka:// target",
        ],
    );
    // Checked before the request: nothing was created, orders neither.
    assert_eq!(topics(&metadata(&addr)), []);
}

#[test]
fn dry_run_creates_nothing() {
    let broker = tansu();
    let addr = broker.addr();
    broker.create_topic("orders", 3);
    run_kwait(
        &[&kafka(&addr), "--dry-run", "--create-topics", "orders:3:1,payments:6:1:compact"],
        &[],
        LONG,
    )
    .expect(
        0,
        &[
            "topic orders already there, as asked",
            "--dry-run: would create topic payments: 6 partition(s), replication 1, cleanup.policy=compact",
            "1 topic(s) would be created, none was",
        ],
    );
    assert_eq!(topics(&metadata(&addr)), [("orders".into(), 3, true)]);
}

#[test]
fn bad_specs_and_targets_are_usage_errors() {
    let target = "kafka://127.0.0.1:1";
    for (args, needle) in [
        (
            &[target, "--create-topics", "orders"][..],
            "--create-topics 'orders': not NAME:PARTITIONS:REPLICATION",
        ),
        (
            &[target, "--create-topics", "orders:x:1"],
            "--create-topics 'orders:x:1': partitions 'x'",
        ),
        (
            &[target, "--create-topics", "orders:3:1:compacted"],
            "'compacted' is not compact, delete or compact,delete",
        ),
        (
            &[target, "--create-topics", "bad/name:1:1"],
            "not a topic name Kafka accepts",
        ),
        (
            &[target, "--create-topics", "a:1:1,a:1:1"],
            "topic 'a' is given twice",
        ),
        (
            &["tcp://127.0.0.1:1", "--create-topics", "a:1:1"],
            "--create-topics needs exactly one kafka:// target, the cluster to create the topics in; there are 0",
        ),
        (
            &[target, "kafka://127.0.0.1:2", "--create-topics", "a:1:1"],
            "--create-topics needs exactly one kafka:// target",
        ),
        (
            &[target, "--strict-topics"],
            "--strict-topics has no effect",
        ),
        (
            &[target, "--dry-run"],
            "--dry-run only applies to --clean-stale-broker and --create-topics",
        ),
    ] {
        let done = run_kwait(args, &[], LONG);
        done.expect(2, &[needle]);
        assert_eq!(done.stderr.lines().count(), 1, "{}", done.stderr);
    }
    run_kwait(&[target], &[("KWAIT_CREATE_TOPICS", "orders:0:1")], LONG).expect(
        2,
        &[
            "partitions '0'",
            "(the value came from KWAIT_CREATE_TOPICS)",
        ],
    );
}

#[test]
fn the_app_starts_only_once_every_partition_has_a_leader() {
    // The mock: a topic that exists, one partition without a leader.
    let mock = Mock::new(3);
    mock.create_topic("orders", 3, 3);
    mock.partition_leader("orders", 1, None);
    let target = kafka(&mock.bootstrap());
    let mut waiting = Waiting::spawn(
        "topics-leaders",
        "kwait",
        kwait_with(
            &[
                &target[..],
                "-t",
                "30s",
                "-v",
                "--create-topics",
                "orders:3:3",
            ],
            &[],
        ),
    );
    waiting
        .kw
        .wait_for_stderr("topic 'orders' partition 1 has no leader yet", LONG);
    assert!(
        !waiting.ran(),
        "COMMAND ran before partition 1 had a leader"
    );
    mock.partition_leader("orders", 1, Some(2));
    let done = waiting.kw.finish(LONG);
    done.expect(
        0,
        &["topic orders already there, as asked: 3 partition(s), replication 3"],
    );
    assert!(waiting.ran(), "COMMAND did not run");
}

#[test]
fn a_different_replication_factor_on_the_mock() {
    let mock = Mock::new(3);
    mock.create_topic("orders", 3, 3);
    let target = kafka(&mock.bootstrap());
    run_kwait(&[&target[..], "-t", "30s", "--create-topics", "orders:3:2"], &[], LONG).expect(
        0,
        &["warning: topic orders already there with 3 partition(s), replication 3, not 3 and 2 as its spec asks"],
    );
    run_kwait(
        &[
            &target[..],
            "-t",
            "30s",
            "--strict-topics",
            "--create-topics",
            "orders:3:2",
        ],
        &[],
        LONG,
    )
    .expect(1, &["--strict-topics is set"]);
}

#[test]
fn a_cluster_without_create_topics_is_fatal() {
    // The mock offers no CreateTopics: kwait must say so, not hang or retry.
    let mock = Mock::new(1);
    let target = kafka(&mock.bootstrap());
    let done = run_kwait(
        &[&target[..], "-t", "30s", "--create-topics", "orders:1:1"],
        &[],
        LONG,
    );
    done.expect(
        1,
        &[
            "the broker does not offer CreateTopics",
            "CreateTopics v2-v7",
        ],
    );
    assert!(done.elapsed < Duration::from_secs(10), "{:?}", done.elapsed);
}
