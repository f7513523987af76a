//! The kafka:// target against real brokers: tansu (a separate process) and
//! the librdkafka mock cluster (in this process, on real sockets).

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiKey, ApiVersionsRequest};

use crate::peers::{
    free_port, kafka_request, kwait, metadata, poll_until, ChildGuard, Mock, RDKafkaApiKey, Tansu,
    TempDir,
};

const LONG: Duration = Duration::from_secs(30);

/// `kwait probe ARGS...`, finished.
fn probe(args: &[&str]) -> Output {
    kwait()
        .arg("probe")
        .args(args)
        .output()
        .expect("run kwait probe")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_probe(args: &[&str], code: i32, needles: &[&str]) -> String {
    let out = probe(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(code), "probe {args:?}: {err}");
    for needle in needles {
        assert!(
            err.contains(needle),
            "probe {args:?}: missing '{needle}' in: {err}"
        );
    }
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// A kwait running in the background, its stderr in a file, with a COMMAND
/// that leaves a marker file behind when it runs.
struct Waiting {
    child: ChildGuard,
    log: PathBuf,
    marker: PathBuf,
    _dir: TempDir,
}

impl Waiting {
    fn start(args: &[&str]) -> Waiting {
        let dir = TempDir::new("kafka-wait");
        let log = dir.path().join("stderr");
        let marker = dir.path().join("ran");
        let mut cmd = kwait();
        cmd.args(args)
            .arg("--")
            .arg("sh")
            .arg("-c")
            .arg(format!("touch '{}'", marker.display()))
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create log"));
        Waiting {
            child: ChildGuard::spawn("kwait", &mut cmd),
            log,
            marker,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls kwait's stderr until it contains `needle`.
    fn expect_log(&self, needle: &str) {
        assert!(
            poll_until(LONG, || self.log().contains(needle)),
            "kwait never logged '{needle}':\n{}",
            self.log()
        );
    }

    fn ran(&self) -> bool {
        Path::new(&self.marker).exists()
    }

    fn finish(&mut self) -> (i32, String) {
        let status = self.child.wait_exit(LONG);
        (status.code().unwrap_or(-1), self.log())
    }
}

#[test]
fn tansu_started_after_kwait() {
    let port = free_port();
    let target = format!("kafka://127.0.0.1:{port}");
    let mut waiting = Waiting::start(&[&target, "-t", "30s", "-v"]);
    waiting.expect_log("connection refused");
    assert!(waiting.child.try_wait().is_none(), "{}", waiting.log());
    assert!(!waiting.ran(), "COMMAND ran before the broker existed");

    let broker = Tansu::start(port);
    broker.wait_accepting(LONG);
    let (code, log) = waiting.finish();
    assert_eq!(code, 0, "{log}");
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
    let expected =
        format!("broker 111 advertises 127.0.0.1:{dead}, which does not answer from here");
    assert_probe(
        &[&target],
        1,
        &[&expected, "connection refused", "advertised.listeners"],
    );

    let out = kwait()
        .args([&target, "-t", "1s"])
        .output()
        .expect("run kwait");
    assert_eq!(out.status.code(), Some(124), "{}", stderr(&out));
    assert!(stderr(&out).contains(&expected), "{}", stderr(&out));

    // An advertised name that does not resolve from here.
    let broker = Tansu::start_advertising(free_port(), "kafka-1.invalid:9092");
    broker.wait_accepting(LONG);
    assert_probe(
        &[&format!("kafka://{}", broker.addr())],
        1,
        &[
            "broker 111 advertises kafka-1.invalid:9092",
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
    let mut waiting = Waiting::start(&[&target, "-t", "30s", "-v"]);
    waiting.expect_log("topic 'payments' does not exist");
    broker.create_topic("payments", 2);
    let (code, log) = waiting.finish();
    assert_eq!(code, 0, "{log}");
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
    let mut waiting = Waiting::start(&[&target, "-t", "30s", "-v"]);
    waiting.expect_log("2 of min-brokers=3 brokers registered (ids: 1, 2)");
    assert!(!waiting.ran());
    mock.broker_up(3);
    let (code, log) = waiting.finish();
    assert_eq!(code, 0, "{log}");
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
    let out = kwait()
        .args([&target, "--attempt-timeout", "400ms", "-t", "2s"])
        .output()
        .expect("run kwait");
    assert_eq!(out.status.code(), Some(124), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--attempt-timeout"),
        "{}",
        stderr(&out)
    );
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
    let mut waiting = Waiting::start(&[&target, "-t", "30s", "-v"]);
    let (code, log) = waiting.finish();
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains("__consumer_offsets") && log.contains("group billing coordinator 1"),
        "{log}"
    );
}
