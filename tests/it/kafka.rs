//! The kafka:// target against real brokers: tansu (a separate process) and
//! the librdkafka mock cluster (in this process, on real sockets); and
//! against small fake brokers for what neither shows on demand (the client
//! name kwait announces, KIP-511's retry, no active controller).

use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiKey, ApiVersionsRequest};

use crate::peers::{
    free_port, kafka_request, kwait_with, metadata, run_kwait, FakeBroker, Kip511Broker, Mock,
    RDKafkaApiKey, Tansu, Waiting,
};

const LONG: Duration = Duration::from_secs(30);

/// `kwait probe ARGS...`, which must exit `code` with every one of `needles`
/// on stderr.
fn assert_probe(args: &[&str], code: i32, needles: &[&str]) {
    let mut all = vec!["probe"];
    all.extend(args);
    run_kwait(&all, &[], LONG).expect(code, needles);
}

/// `kwait ARGS -- <marker>` in the background.
fn waiting(args: &[&str]) -> Waiting {
    Waiting::spawn("kafka-wait", "kwait", kwait_with(args, &[]))
}

/// Waits for the exit; asserts it is 0 and returns stderr.
fn finish_ok(waiting: &mut Waiting) -> String {
    let done = waiting.kw.finish(LONG);
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    done.stderr
}

#[test]
fn tansu_started_after_kwait() {
    let port = free_port();
    let target = format!("kafka://127.0.0.1:{port}");
    let mut waiting = waiting(&[&target, "-t", "30s", "-v"]);
    waiting.kw.wait_for_stderr("connection refused", LONG);
    assert!(waiting.kw.running(), "{}", waiting.kw.stderr());
    assert!(!waiting.ran(), "COMMAND ran before the broker existed");

    let broker = Tansu::start(port);
    broker.wait_accepting(LONG);
    let log = finish_ok(&mut waiting);
    assert!(waiting.ran(), "COMMAND did not run: {log}");
    assert!(
        log.contains(&format!("{target} ready after"))
            && log.contains("1 broker (111), controller 111"),
        "{log}"
    );
}

#[test]
fn tansu_stopped_is_not_ready() {
    let mut broker = Tansu::start(free_port());
    broker.wait_accepting(LONG);
    let target = format!("kafka://{}", broker.addr());
    assert_probe(&[&target], 0, &["ready: 1 broker (111), controller 111"]);
    broker.stop();
    assert_probe(&[&target], 1, &["not ready", "connection refused"]);
}

#[test]
fn tansu_advertising_an_unreachable_listener() {
    let dead = free_port();
    let broker = Tansu::start_advertising(free_port(), &format!("127.0.0.1:{dead}"));
    broker.wait_accepting(LONG);
    let target = format!("kafka://{}", broker.addr());
    let expected = format!(
        "broker 111 at 127.0.0.1:{dead} is listed but not answering (down, or advertised.listeners wrong)"
    );
    assert_probe(
        &[&target],
        1,
        &[&expected, "connection refused", "advertised.listeners"],
    );

    run_kwait(&[&target, "-t", "1s"], &[], LONG).expect(124, &[&expected]);

    // An advertised name that does not resolve from here.
    let broker = Tansu::start_advertising(free_port(), "kafka-1.invalid:9092");
    broker.wait_accepting(LONG);
    assert_probe(
        &[&format!("kafka://{}", broker.addr())],
        1,
        &[
            "broker 111 at kafka-1.invalid:9092 is listed but not answering",
            "cannot resolve",
            "advertised.listeners",
        ],
    );
}

#[test]
fn tansu_topics_and_group() {
    let broker = Tansu::start(free_port());
    broker.wait_accepting(LONG);
    broker.create_topic("orders", 3);
    let addr = broker.addr();

    assert_probe(
        &[&format!("kafka://{addr}?topics=orders&group=billing")],
        0,
        &[
            "topic orders (3 partitions led)",
            "group billing coordinator 111",
        ],
    );
    assert_probe(
        &[&format!("kafka://{addr}?topics=orders,payments")],
        1,
        &["topic 'payments' does not exist"],
    );
    // tansu auto-creates topics a Metadata request names unless told not to:
    // kwait must not have created it.
    let md = metadata(&addr);
    let names: Vec<String> = md
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
        .collect();
    assert_eq!(names, ["orders"], "kwait created a topic");

    // Waiting for a topic that appears later.
    let target = format!("kafka://{addr}?topics=payments");
    let mut waiting = waiting(&[&target, "-t", "30s", "-v"]);
    waiting
        .kw
        .wait_for_stderr("topic 'payments' does not exist", LONG);
    broker.create_topic("payments", 2);
    let log = finish_ok(&mut waiting);
    assert!(
        waiting.ran() && log.contains("topic payments (2 partitions led)"),
        "{log}"
    );
}

#[test]
fn mock_min_brokers_while_one_is_down() {
    let mock = Mock::new(3);
    mock.broker_down(3);
    let target = format!("kafka://{}?min-brokers=3", mock.bootstrap());
    let mut waiting = waiting(&[&target, "-t", "30s", "-v"]);
    waiting
        .kw
        .wait_for_stderr("2 of min-brokers=3 brokers registered (ids: 1, 2)", LONG);
    assert!(!waiting.ran());
    mock.broker_up(3);
    let log = finish_ok(&mut waiting);
    assert!(log.contains("3 brokers (1, 2, 3), controller 0"), "{log}");
    assert!(waiting.ran());
}

#[test]
fn mock_kip511_fallback() {
    let mock = Mock::new(1);
    let addr = mock.addr(1);
    // The mock really does not speak ApiVersions v3: that is the fallback path.
    let versions = kafka_request(&addr, 0, &ApiVersionsRequest::default()).expect("ApiVersions v0");
    let own = versions
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::ApiVersions as i16)
        .expect("ApiVersions in its own list");
    assert!(
        own.max_version < 3,
        "mock now speaks ApiVersions v{}",
        own.max_version
    );
    assert_probe(
        &[&format!("kafka://{addr}")],
        0,
        &["ready: 1 broker (1), controller 0"],
    );

    // Narrower still: ApiVersions v0-v1 and Metadata v1-v3 (before Metadata
    // can turn auto-creation off, so topics are listed, never named).
    mock.apiversion(RDKafkaApiKey::ApiVersion, Some(0), Some(1));
    mock.apiversion(RDKafkaApiKey::Metadata, Some(0), Some(3));
    mock.create_topic("orders", 2, 1);
    assert_probe(
        &[&format!("kafka://{addr}?topics=orders")],
        0,
        &["topic orders (2 partitions led)"],
    );
    assert_probe(
        &[&format!("kafka://{addr}?topics=nope")],
        1,
        &["topic 'nope' does not exist"],
    );
}

/// KIP-511's main path, which neither test broker takes (tansu speaks v3,
/// the mock's UNSUPPORTED_VERSION body does not decode): a broker that knows
/// ApiVersions v0-v2 answers v3 with error 35 and a v0 body listing that
/// range, and the client retries at v2, not v0. No broker of ours does this
/// on demand, so a small fake does, the way Kafka 2.1-2.3 brokers answer.
#[test]
fn kip511_retries_at_the_brokers_highest_apiversions() {
    let broker = Kip511Broker::start();
    assert_probe(
        &[&format!("kafka://{}", broker.addr())],
        0,
        &["ready: 1 broker (1), controller 1"],
    );
    let seen = broker.api_versions_seen();
    // The bootstrap connection asks at v3 first, then at the broker's
    // highest, v2; it went to the very address the broker advertises
    // (127.0.0.1:PORT), so no second connection checks that listener.
    assert_eq!(seen, vec![3, 2], "ApiVersions versions asked");

    // Bootstrapped by another name (localhost), the advertised listener is
    // checked on its own connection, at the version the cluster took: the
    // fallback is not asked again.
    let broker = Kip511Broker::start();
    let port = broker.addr().rsplit(':').next().unwrap().to_string();
    assert_probe(
        &[&format!("kafka://localhost:{port}")],
        0,
        &["ready: 1 broker (1), controller 1"],
    );
    assert_eq!(
        broker.api_versions_seen(),
        vec![3, 2, 2],
        "ApiVersions versions asked"
    );
}

#[test]
fn mock_round_trip_time_within_and_beyond_the_attempt_deadline() {
    let mock = Mock::new(1);
    mock.round_trip_time(-1, Duration::from_millis(300));
    let target = format!("kafka://{}", mock.bootstrap());
    // Slow but within the deadline: ready.
    assert_probe(&[&target, "-t", "10s"], 0, &["ready: 1 broker (1)"]);
    // Beyond it: not ready, and the probe does not outlive its timeout.
    let begun = Instant::now();
    assert_probe(&[&target, "-t", "400ms"], 1, &["not ready", "--timeout"]);
    assert!(
        begun.elapsed() < Duration::from_secs(3),
        "{:?}",
        begun.elapsed()
    );
    // Waiting: each attempt is cut at --attempt-timeout, and the overall
    // deadline still holds.
    run_kwait(
        &[&target, "--attempt-timeout", "400ms", "-t", "2s"],
        &[],
        LONG,
    )
    .expect(124, &["--attempt-timeout"]);
}

#[test]
fn mock_topic_leaders() {
    let mock = Mock::new(3);
    mock.create_topic("orders", 3, 3);
    let target = format!("kafka://{}?topics=orders", mock.bootstrap());
    assert_probe(&[&target], 0, &["topic orders (3 partitions led)"]);
    mock.partition_leader("orders", 1, None);
    assert_probe(&[&target], 1, &["topic 'orders' partition 1 has no leader"]);
    mock.partition_leader("orders", 1, Some(2));
    assert_probe(&[&target], 0, &["topic orders (3 partitions led)"]);
}

#[test]
fn mock_group_coordinator_not_available() {
    let mock = Mock::new(1);
    let target = format!("kafka://{}?group=billing", mock.bootstrap());
    mock.coordinator_not_available(1);
    assert_probe(
        &[&target],
        1,
        &[
            "COORDINATOR_NOT_AVAILABLE (15)",
            "__consumer_offsets",
            "offsets.topic.replication.factor",
        ],
    );
    // Waiting rides out a few such answers.
    mock.coordinator_not_available(3);
    let mut waiting = waiting(&[&target, "-t", "30s", "-v"]);
    let log = finish_ok(&mut waiting);
    assert!(
        log.contains("__consumer_offsets") && log.contains("group billing coordinator 1"),
        "{log}"
    );
}

/// KIP-511: kwait names itself and its version in ApiVersions v3, so a
/// broker's metrics and logs show who is asking.
#[test]
fn apiversions_names_kwait_and_its_version() {
    let broker = FakeBroker::start(1, 0);
    let target = format!("kafka://{}", broker.addr());
    run_kwait(&["probe", &target], &[], LONG).expect(0, &["ready: 1 broker (1), controller 1"]);
    let clients = broker.clients();
    assert!(!clients.is_empty(), "no ApiVersions v3 request seen");
    for (name, version) in clients {
        assert_eq!(name, "kwait");
        assert_eq!(version, env!("CARGO_PKG_VERSION"));
    }
}

/// Metadata with controller id -1 (an election in progress): not ready,
/// and the reason says so; once a controller shows, waiting ends.
#[test]
fn no_active_controller_is_not_ready() {
    let broker = FakeBroker::start(-1, usize::MAX);
    let target = format!("kafka://{}", broker.addr());
    run_kwait(&["probe", &target], &[], LONG).expect(
        1,
        &[
            "no active controller yet (Metadata from ",
            "controller id -1",
        ],
    );

    let broker = FakeBroker::start(-1, 3);
    let target = format!("kafka://{}", broker.addr());
    let waited = run_kwait(&[&target, "-t", "10s"], &[], LONG);
    waited.expect(0, &["ready after", "controller 1"]);
    assert!(
        broker.metadata_answers() > 3,
        "ready before a controller was shown"
    );
}
