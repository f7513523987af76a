//! `check=broker` against `check=cluster` (the default): a broker's own
//! health check asks only about itself and its own advertised address, so
//! one listed broker that does not answer does not turn every broker
//! unhealthy; the cluster check names that broker, with its id and address.

use std::ffi::CString;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::ClientConfig;

use crate::peers::{
    self, free_port, kafka_request, kwait_with, kwait_with_resolver, poll_until, tansu_path,
    ChildGuard, Tansu, TempDir,
};

const LONG: Duration = Duration::from_secs(30);

/// `kwait probe TARGET`, which must exit `code` with every one of `needles`.
fn probe(target: &str, code: i32, needles: &[&str]) {
    peers::run(&mut kwait_with(&["probe", target], &[]), LONG).expect(code, needles);
}

/// A librdkafka mock cluster of three brokers whose broker 2 is listed
/// with an address nothing answers at: what a crashed broker looks like
/// while ZooKeeper still lists it (its session outlives it by up to 18 s;
/// the mock itself drops a broker it takes down from Metadata at once, so
/// `broker_down` cannot show this). The mock's raw handle is reached
/// through a client that owns the cluster (`test.mock.num.brokers`), for
/// `rd_kafka_mock_broker_set_host_port`, which `Mock` does not wrap.
struct MockWithDeadBroker {
    client: BaseProducer,
    dead: String,
}

impl MockWithDeadBroker {
    fn start() -> MockWithDeadBroker {
        let client: BaseProducer = ClientConfig::new()
            .set("test.mock.num.brokers", "3")
            .create()
            .expect("a client with a mock cluster");
        let dead = format!("127.0.0.1:{}", free_port());
        let port = dead.rsplit_once(':').unwrap().1.parse::<i32>().unwrap();
        let host = CString::new("127.0.0.1").unwrap();
        unsafe {
            let cluster = rd::rd_kafka_handle_mock_cluster(client.client().native_ptr());
            assert!(!cluster.is_null(), "no mock cluster in the client");
            rd::rd_kafka_mock_broker_set_host_port(cluster, 2, host.as_ptr(), port);
        }
        MockWithDeadBroker { client, dead }
    }

    /// "127.0.0.1:p" where broker `id` really listens.
    fn addr(&self, id: usize) -> String {
        let bootstrap = unsafe {
            let cluster = rd::rd_kafka_handle_mock_cluster(self.client.client().native_ptr());
            std::ffi::CStr::from_ptr(rd::rd_kafka_mock_cluster_bootstraps(cluster))
                .to_string_lossy()
                .into_owned()
        };
        bootstrap
            .split(',')
            .nth(id - 1)
            .expect("broker id")
            .to_owned()
    }
}

#[test]
fn a_listed_broker_that_does_not_answer_fails_the_cluster_check_not_the_broker_check() {
    let mock = MockWithDeadBroker::start();
    let (one, two) = (mock.addr(1), mock.addr(2));

    // The cluster question: broker 2 is named, with its id and address.
    let listed = format!(
        "broker 2 at {} is listed but not answering (down, or advertised.listeners wrong): connection refused",
        mock.dead
    );
    probe(&format!("kafka://{one}"), 1, &[&listed, "add check=broker"]);

    // Broker 1's own health: it serves, and its own advertised address answers.
    probe(
        &format!("kafka://{one}?check=broker"),
        0,
        &[&format!(
            "broker 1 answers at its advertised {one}, controller"
        )],
    );
    // Broker 3 likewise, whichever broker the health check runs beside.
    let three = mock.addr(3);
    probe(
        &format!("kafka://{three}?check=broker"),
        0,
        &[&format!("broker 3 answers at its advertised {three}")],
    );
    // Broker 2 serves at its listener, but no listed broker has its
    // address: its own health check fails, and says where to look.
    probe(
        &format!("kafka://{two}?check=broker"),
        1,
        &[
            "this broker is not among the 3 broker(s) its Metadata lists (ids: 1, 2, 3)",
            "advertised.listeners",
        ],
    );
}

/// A tansu listening on every address of this host at `port`, advertising
/// `advertised`: a broker container's `PLAINTEXT://0.0.0.0:9092` listener.
/// Returns once it answers Metadata.
fn tansu_on_all_addresses(port: u16, advertised: &str, dir: &TempDir) -> ChildGuard {
    let log = std::fs::File::create(dir.path().join("tansu.log")).expect("tansu log");
    let mut cmd = Command::new(tansu_path());
    cmd.arg("broker")
        .arg("--listener-url")
        .arg(format!("tcp://0.0.0.0:{port}"))
        .arg("--advertised-listener-url")
        .arg(format!("tcp://{advertised}"))
        .args(["--storage-engine", "memory://tansu/"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log fd"))
        .stderr(log);
    let tansu = ChildGuard::spawn("tansu", &mut cmd);
    let request = kafka_protocol::messages::MetadataRequest::default().with_topics(Some(vec![]));
    assert!(
        poll_until(LONG, || kafka_request(
            &format!("127.0.0.1:{port}"),
            9,
            &request
        )
        .is_ok()),
        "tansu on port {port} does not answer Metadata"
    );
    tansu
}

/// The rule the README states, in a broker's container: the health check
/// asks `localhost:9092`, the broker advertises its own name `kafka1:9092`,
/// which resolves to an address of this host (here 127.0.0.2 through a
/// private /etc/hosts; in a container, its own IP). That listed broker is
/// "this broker", and must answer at its advertised address.
#[test]
fn the_broker_check_finds_itself_under_its_advertised_name() {
    let dir = TempDir::new("broker-health");
    let port = free_port();
    let _tansu = tansu_on_all_addresses(port, &format!("kafka1:{port}"), &dir);
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\n127.0.0.2 kafka1\n").expect("hosts");
    let mut cmd = kwait_with_resolver(
        "127.0.0.1".parse().unwrap(),
        "timeout:1 attempts:1",
        Some(Path::new(&hosts)),
        &dir,
    );
    cmd.args(["probe", &format!("kafka://localhost:{port}?check=broker")]);
    peers::run(&mut cmd, LONG).expect(
        0,
        &[&format!(
            "broker 111 answers at its advertised kafka1:{port}"
        )],
    );
}

/// A broker whose advertised address is not this host's, or does not
/// answer: its own health check fails and names advertised.listeners.
#[test]
fn the_broker_check_fails_when_its_own_advertised_address_is_wrong() {
    let dead = free_port();
    let broker = Tansu::start_advertising(free_port(), &format!("127.0.0.1:{dead}"));
    broker.wait_accepting(LONG);
    probe(
        &format!("kafka://{}?check=broker", broker.addr()),
        1,
        &[
            "this broker is not among the 1 broker(s) its Metadata lists (ids: 111)",
            "advertised.listeners",
        ],
    );
    // Right port, but the advertised name resolves to no address here.
    let port = free_port();
    let broker = Tansu::start_advertising(port, &format!("kafka-1.invalid:{port}"));
    broker.wait_accepting(LONG);
    probe(
        &format!("kafka://{}?check=broker", broker.addr()),
        1,
        &["this broker is not among", "advertised.listeners"],
    );
}
