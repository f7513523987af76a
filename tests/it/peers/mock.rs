//! librdkafka's mock cluster in this test process: [`Mock`].

use std::time::Duration;

use rdkafka::mocking::{MockCluster, MockCoordinator};
use rdkafka::producer::DefaultProducerContext;
pub use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

/// librdkafka's mock cluster, in this test process, on real loopback
/// sockets: a separate kwait process can talk to it. Broker ids are 1..=n;
/// Metadata reports controller id 0; see research/kafka-zookeeper-semantics.md §5.
/// Methods panic on error.
pub struct Mock {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl Mock {
    pub fn new(brokers: i32) -> Mock {
        let cluster = MockCluster::new(brokers).expect("start librdkafka mock cluster");
        Mock { cluster }
    }

    /// "127.0.0.1:p1,127.0.0.1:p2,..." in broker-id order.
    pub fn bootstrap(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    /// "127.0.0.1:p" of broker `id` (1-based).
    pub fn addr(&self, id: i32) -> String {
        let all = self.bootstrap();
        let idx = usize::try_from(id - 1).expect("broker ids start at 1");
        all.split(',')
            .nth(idx)
            .unwrap_or_else(|| panic!("no broker {id} in {all}"))
            .to_owned()
    }

    /// Closes its connections and refuses new ones (port stays bound); -1 = all.
    pub fn broker_down(&self, id: i32) {
        self.cluster.broker_down(id).expect("broker_down");
    }

    /// Listens again on the same port; -1 = all.
    pub fn broker_up(&self, id: i32) {
        self.cluster.broker_up(id).expect("broker_up");
    }

    /// Delays every response from broker `id` (-1 = all).
    pub fn round_trip_time(&self, id: i32, delay: Duration) {
        self.cluster
            .broker_round_trip_time(id, delay)
            .expect("broker_round_trip_time");
    }

    pub fn create_topic(&self, name: &str, partitions: i32, replication_factor: i32) {
        self.cluster
            .create_topic(name, partitions, replication_factor)
            .expect("create_topic");
    }

    /// `None` makes the partition leaderless (leader -1, error code still 0).
    pub fn partition_leader(&self, topic: &str, partition: i32, leader: Option<i32>) {
        self.cluster
            .partition_leader(topic, partition, leader)
            .expect("partition_leader");
    }

    /// A topic-level error in Metadata responses.
    pub fn topic_error(&self, topic: &str, err: RDKafkaRespErr) {
        self.cluster.topic_error(topic, err).expect("topic_error");
    }

    /// Queues errors for the next requests of `api` (cluster-wide FIFO, one
    /// per request; Metadata ignores them). E.g.
    /// `request_errors(RDKafkaApiKey::FindCoordinator, &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE; 2])`.
    pub fn request_errors(&self, api: RDKafkaApiKey, errs: &[RDKafkaRespErr]) {
        self.cluster.request_errors(api, errs);
    }

    /// `k` COORDINATOR_NOT_AVAILABLE answers to FindCoordinator, then success.
    pub fn coordinator_not_available(&self, k: usize) {
        let errs = vec![RDKafkaRespErr::RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE; k];
        self.request_errors(RDKafkaApiKey::FindCoordinator, &errs);
    }

    pub fn clear_request_errors(&self, api: RDKafkaApiKey) {
        self.cluster.clear_request_errors(api);
    }

    /// Narrows the advertised version range of `api`; `None, None` disables it.
    pub fn apiversion(&self, api: RDKafkaApiKey, min: Option<i16>, max: Option<i16>) {
        self.cluster.apiversion(api, min, max).expect("apiversion");
    }

    /// Pins the coordinator of `group` to broker `id` (must exist: the mock asserts).
    pub fn group_coordinator(&self, group: &str, id: i32) {
        self.cluster
            .coordinator(MockCoordinator::Group(group.to_owned()), id)
            .expect("coordinator");
    }
}
