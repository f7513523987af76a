//! Kafka framing and the few response decoders the probe needs.
//!
//! Requests are encoded with the `kafka-protocol` crate. Responses are
//! decoded here, by hand, for two reasons: its decoders size vectors from the
//! count on the wire (`Vec::with_capacity(n)`), so a hostile count would make
//! PID 1 abort on allocation; and the probe must be lenient where real
//! brokers are not conformant (KIP-511's v0 error body, the librdkafka
//! mock's null coordinator host). Every read here is bounds-checked, nothing
//! is preallocated from a count, and a frame is at most [`MAX_FRAME`] bytes,
//! so memory stays bounded by what actually arrived.

use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::net::{Attempt, Cause, Failed, Stream};
pub use crate::reader::{Decoded, Reader};

/// The largest response kwait accepts. Its answers (versions, brokers, a
/// few named topics) are kilobytes; a larger length prefix means the peer
/// is not Kafka, or is hostile.
pub const MAX_FRAME: usize = 8 << 20;

/// The most brokers a Metadata answer may list. Real clusters have tens or
/// hundreds; kwait checks each one's advertised address, so a longer list
/// is refused rather than turned into that many connections.
pub const MAX_BROKERS: usize = 1000;

const CLIENT_ID: &str = "kwait";

/// What an answer from another service says, after its name: the probe
/// treats it as fatal, since waiting will not turn that service into Kafka.
pub const NOT_KAFKA: &str = ", not a Kafka listener";

/// A connection that speaks Kafka's request/response framing.
pub struct Conn {
    stream: Stream,
    correlation: i32,
    /// The TCP peer, when known: which broker answered (`check=broker`).
    pub peer: Option<std::net::SocketAddr>,
}

impl Conn {
    pub fn new(stream: Stream) -> Conn {
        Conn {
            stream,
            // The first request carries correlation id 10, '\n' in ASCII:
            // a line-based server on the wrong port (HTTP, SMTP) then reads
            // a complete line and answers at once, with bytes `sniff` can
            // name, instead of waiting for a line until the deadline.
            correlation: 9,
            peer: None,
        }
    }

    /// Writes `frame` and reads its answer. Not generic, so the I/O is
    /// compiled once rather than once per request type.
    async fn exchange(
        &mut self,
        attempt: &Attempt,
        key: ApiKey,
        version: i16,
        frame: &[u8],
    ) -> Result<Vec<u8>, Failed> {
        let name = api_name(key);
        attempt
            .exchange(&format!("sending {name}"), self.stream.write_all(frame))
            .await?;

        let mut prefix = [0u8; 4];
        attempt
            .exchange(
                &format!("waiting for the {name} answer"),
                self.stream.read_exact(&mut prefix),
            )
            .await?;
        let len = i32::from_be_bytes(prefix);
        let len = match usize::try_from(len) {
            Ok(n) if (4..=MAX_FRAME).contains(&n) => n,
            // A Kafka broker never sends first, and answers with a length
            // prefix: a known opening here is another service.
            _ => match crate::probe::sniff::protocol(&prefix) {
                Some(what) if crate::probe::sniff::is_tls(what) => {
                    return Err(Failed {
                        cause: Cause::Foreign { tls: true },
                        text: format!(
                            "answered {name} with a TLS alert: this listener expects TLS (add tls=true, or security.protocol=SSL in config=)"
                        ),
                    })
                }
                Some(what) => {
                    return Err(Failed {
                        cause: Cause::Foreign { tls: false },
                        text: format!(
                            "answered {name} with '{}': this is {what}{NOT_KAFKA} (point the target at the broker's port)",
                            crate::log::shown(&String::from_utf8_lossy(&prefix), 16)
                        ),
                    })
                }
                None => return Err(Failed::other(format!(
                    "answered {name} with a frame length of {len} bytes, which is not Kafka \
                     (is this a Kafka listener, and plaintext?)"
                )))
            },
        };
        let mut body = vec![0u8; len];
        attempt
            .exchange(
                &format!("reading the {name} answer"),
                self.stream.read_exact(&mut body),
            )
            .await?;

        let mut r = Reader::new(&body);
        let correlation = r
            .i32()
            .map_err(|e| Failed::other(format!("{name} answer: {e}")))?;
        if correlation != self.correlation {
            return Err(Failed::other(format!(
                "{name} answer carries correlation id {correlation}, expected {}",
                self.correlation
            )));
        }
        // ApiVersions always answers with header v0 (KIP-511); others use v1,
        // which adds tagged fields, for flexible versions.
        if key.response_header_version(version) >= 1 {
            r.tags()
                .map_err(|e| Failed::other(format!("{name} answer header: {e}")))?;
        }
        let at = body.len() - r.remaining();
        body.drain(..at);
        Ok(body)
    }
}

fn api_name(key: ApiKey) -> &'static str {
    match key {
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::Metadata => "Metadata",
        ApiKey::FindCoordinator => "FindCoordinator",
        ApiKey::SaslHandshake => "SaslHandshake",
        ApiKey::SaslAuthenticate => "SaslAuthenticate",
        ApiKey::CreateTopics => "CreateTopics",
        _ => "request",
    }
}

/// The version ranges a broker advertised in ApiVersions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Versions {
    ranges: Vec<(i16, i16, i16)>,
}

impl Versions {
    /// The broker's range for `key`.
    pub fn range(&self, key: ApiKey) -> Option<(i16, i16)> {
        self.ranges
            .iter()
            .find(|(k, _, _)| *k == key as i16)
            .map(|&(_, min, max)| (min, max))
    }

    /// The highest version both sides speak.
    pub fn pick(&self, key: ApiKey, ours: (i16, i16)) -> Result<i16, String> {
        let Some((min, max)) = self.range(key) else {
            return Err(format!("the broker does not offer {}", api_name(key)));
        };
        let best = max.min(ours.1);
        if best < min.max(ours.0) {
            return Err(format!(
                "the broker speaks {} v{min}-v{max}, kwait v{}-v{}",
                api_name(key),
                ours.0,
                ours.1
            ));
        }
        Ok(best)
    }
}

/// An ApiVersions response body: its error code and, when decodable, the
/// ranges. v0 is `error, [key min max]`; v1-v2 add a throttle time; v3+ are
/// flexible (compact array, tags).
pub fn api_versions(body: &[u8], version: i16) -> Decoded<(i16, Versions)> {
    let mut r = Reader::new(body);
    let flexible = version >= 3;
    let error = r.i16()?;
    let n = r.array_len(flexible, 6)?;
    let mut ranges = Vec::new();
    for _ in 0..n {
        let key = r.i16()?;
        let min = r.i16()?;
        let max = r.i16()?;
        if flexible {
            r.tags()?;
        }
        ranges.push((key, min, max));
    }
    Ok((error, Versions { ranges }))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    pub id: i32,
    pub host: String,
    pub port: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub index: i32,
    pub error: i16,
    pub leader: i32,
    /// How many replicas it has: the topic's replication factor.
    pub replicas: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    pub name: Option<String>,
    pub error: i16,
    pub partitions: Vec<Partition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub brokers: Vec<Broker>,
    pub controller: i32,
    pub topics: Vec<Topic>,
}

/// Metadata v1 to v13 (MetadataResponse.json); flexible from v9.
pub fn metadata(body: &[u8], version: i16) -> Decoded<Metadata> {
    let mut r = Reader::new(body);
    let flexible = version >= 9;
    if version >= 3 {
        r.i32()?; // throttle_time_ms
    }
    let listed = r.array_len(flexible, 10)?;
    if listed > MAX_BROKERS {
        return Err(format!(
            "it lists {listed} brokers, more than kwait checks ({MAX_BROKERS})"
        ));
    }
    let mut brokers = Vec::new();
    for _ in 0..listed {
        let id = r.i32()?;
        let host = r.string(flexible)?.unwrap_or_default();
        let port = r.i32()?;
        r.string(flexible)?; // rack
        if flexible {
            r.tags()?;
        }
        brokers.push(Broker { id, host, port });
    }
    if version >= 2 {
        r.string(flexible)?; // cluster_id
    }
    let controller = r.i32()?;
    let mut topics = Vec::new();
    for _ in 0..r.array_len(flexible, 8)? {
        let error = r.i16()?;
        let name = r.string(flexible)?;
        if version >= 10 {
            r.skip(16)?; // topic_id
        }
        r.i8()?; // is_internal
        let mut partitions = Vec::new();
        for _ in 0..r.array_len(flexible, 14)? {
            let error = r.i16()?;
            let index = r.i32()?;
            let leader = r.i32()?;
            if version >= 7 {
                r.i32()?; // leader_epoch
            }
            let replicas = r.array_len(flexible, 4)?;
            r.skip(replicas * 4)?; // replica_nodes
            r.skip_i32_array(flexible)?; // isr_nodes
            if version >= 5 {
                r.skip_i32_array(flexible)?; // offline_replicas
            }
            if flexible {
                r.tags()?;
            }
            partitions.push(Partition {
                index,
                error,
                leader,
                replicas,
            });
        }
        if version >= 8 {
            r.i32()?; // topic_authorized_operations
        }
        if flexible {
            r.tags()?;
        }
        topics.push(Topic {
            name,
            error,
            partitions,
        });
    }
    Ok(Metadata {
        brokers,
        controller,
        topics,
    })
}

/// SaslHandshake v0-v1: the error and the mechanisms the broker offers.
pub fn sasl_handshake(body: &[u8]) -> Decoded<(i16, Vec<String>)> {
    let mut r = Reader::new(body);
    let error = r.i16()?;
    let mut offered = Vec::new();
    for _ in 0..r.array_len(false, 2)? {
        offered.push(r.string(false)?.unwrap_or_default());
    }
    Ok((error, offered))
}

/// SaslAuthenticate v0-v2: error, error message, and the server's SASL bytes.
pub fn sasl_authenticate(body: &[u8], version: i16) -> Decoded<(i16, Option<String>, Vec<u8>)> {
    let mut r = Reader::new(body);
    let flexible = version >= 2;
    let error = r.i16()?;
    let message = r.string(flexible)?;
    let len = if flexible {
        (r.uvarint()? as usize).saturating_sub(1)
    } else {
        usize::try_from(r.i32()?).unwrap_or(0)
    };
    let bytes = r.bytes(len)?.to_vec();
    Ok((error, message, bytes))
}

/// FindCoordinator's answer: the error code, and the coordinator's id when
/// there is no error. The error is read first and decoding stops there,
/// because error answers may carry a null host (the librdkafka mock does).
pub fn find_coordinator(body: &[u8], version: i16) -> Decoded<(i16, i32)> {
    let mut r = Reader::new(body);
    let flexible = version >= 3;
    if version >= 1 {
        r.i32()?; // throttle_time_ms
    }
    if version >= 4 {
        // Batched form (KIP-699): one entry per key; kwait sends one key.
        if r.array_len(true, 12)? == 0 {
            return Err("no coordinator entry in the answer".into());
        }
        r.string(true)?; // key
        let node = r.i32()?;
        r.string(true)?; // host
        r.i32()?; // port
        let error = r.i16()?;
        return Ok((error, node));
    }
    let error = r.i16()?;
    if error != 0 {
        return Ok((error, -1));
    }
    if version >= 1 {
        r.string(flexible)?; // error_message
    }
    Ok((error, r.i32()?))
}

/// One topic a CreateTopics request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    pub name: String,
    pub partitions: i32,
    pub replication: i16,
    /// Topic configs (`cleanup.policy`, `retention.ms`, ...), as given.
    pub configs: Vec<(String, String)>,
}

/// CreateTopics v2-v7 (CreateTopicsRequest.json), flexible from v5; v2 is
/// Kafka 1.0's, v7 Kafka 4.0's newest. Encoded here rather than with
/// kafka-protocol's generated code: that is several KB of binary for a
/// request of four fields; framed by [`Conn::call_encoded`]. No replica
/// assignment, `validate_only` false.
pub struct CreateTopics<'a> {
    pub topics: Vec<&'a NewTopic>,
    /// How long the controller may take (the attempt's time left).
    pub timeout_ms: i32,
}

impl CreateTopics<'_> {
    /// The request body at `version`.
    pub fn bytes(&self, version: i16) -> Vec<u8> {
        let flexible = version >= 5;
        let mut out = Vec::with_capacity(64);
        put_len(&mut out, flexible, self.topics.len());
        for topic in &self.topics {
            put_str(&mut out, flexible, &topic.name);
            out.extend_from_slice(&topic.partitions.to_be_bytes());
            out.extend_from_slice(&topic.replication.to_be_bytes());
            put_len(&mut out, flexible, 0); // assignments
            put_len(&mut out, flexible, topic.configs.len());
            for (key, value) in &topic.configs {
                put_str(&mut out, flexible, key);
                put_str(&mut out, flexible, value);
                if flexible {
                    out.push(0); // tags
                }
            }
            if flexible {
                out.push(0);
            }
        }
        out.extend_from_slice(&self.timeout_ms.to_be_bytes());
        out.push(0); // validate_only
        if flexible {
            out.push(0);
        }
        out
    }
}

impl Conn {
    /// Sends one request whose body kwait encoded itself ([`CreateTopics`],
    /// [`metadata_request`]), `flexible` when `version` is one of the
    /// request's flexible versions, and returns its response body, after
    /// the header.
    pub async fn call_encoded(
        &mut self,
        attempt: &Attempt,
        key: ApiKey,
        version: i16,
        flexible: bool,
        body: &[u8],
    ) -> Result<Vec<u8>, Failed> {
        self.correlation = self.correlation.wrapping_add(1);
        // Request header v1, or v2 (tags) for flexible versions: key,
        // version, correlation id, client id.
        let mut frame = Vec::with_capacity(32 + body.len());
        frame.extend_from_slice(&[0; 4]);
        frame.extend_from_slice(&(key as i16).to_be_bytes());
        frame.extend_from_slice(&version.to_be_bytes());
        frame.extend_from_slice(&self.correlation.to_be_bytes());
        put_str(&mut frame, false, CLIENT_ID);
        if flexible {
            frame.push(0);
        }
        frame.extend_from_slice(body);
        let len = i32::try_from(frame.len() - 4)
            .map_err(|_| Failed::other(format!("{} request too large", api_name(key))))?;
        frame[..4].copy_from_slice(&len.to_be_bytes());
        self.exchange(attempt, key, version, &frame).await
    }
}

fn put_uvarint(out: &mut Vec<u8>, mut n: u32) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// An array's count: compact (n+1, a varint) or classic (int32). The
/// counts kwait sends are bounded by its own parser, far below i32::MAX.
fn put_len(out: &mut Vec<u8>, compact: bool, n: usize) {
    let n = u32::try_from(n).unwrap_or(u32::MAX >> 1);
    if compact {
        put_uvarint(out, n + 1);
    } else {
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// A string: compact or classic (int16 length). kwait's own parser keeps
/// names and config values short (topics.rs), so the length fits.
fn put_str(out: &mut Vec<u8>, compact: bool, s: &str) {
    let bytes = s.as_bytes();
    if compact {
        put_len(out, true, bytes.len());
    } else {
        let n = u16::try_from(bytes.len())
            .unwrap_or(u16::MAX)
            .min(i16::MAX as u16);
        out.extend_from_slice(&n.to_be_bytes());
    }
    out.extend_from_slice(bytes);
}

/// A Metadata v1-v12 request (MetadataRequest.json) for the named topics,
/// or all of them (`None`, a null array), auto-creation off from v4 (before
/// it, a named topic may be created): flexible from v9, topic ids from
/// v10, the cluster-operations flag v8-v10 only. Encoded here, not with
/// kafka-protocol: smaller, and the one Metadata encoder kwait has.
pub fn metadata_request(names: Option<&[&str]>, version: i16) -> Vec<u8> {
    let flexible = version >= 9;
    let names = match names {
        Some(names) => names,
        None => {
            // A null array: -1, or 0 in the compact form.
            let mut out = if flexible { vec![0] } else { vec![0xff; 4] };
            metadata_request_tail(&mut out, version);
            return out;
        }
    };
    let mut out = Vec::with_capacity(16 + 16 * names.len());
    put_len(&mut out, flexible, names.len());
    for name in names {
        if version >= 10 {
            out.extend_from_slice(&[0; 16]); // topic_id: none, by name
        }
        put_str(&mut out, flexible, name);
        if flexible {
            out.push(0);
        }
    }
    metadata_request_tail(&mut out, version);
    out
}

fn metadata_request_tail(out: &mut Vec<u8>, version: i16) {
    if version >= 4 {
        out.push(0); // allow_auto_topic_creation
    }
    if (8..=10).contains(&version) {
        out.push(0); // include_cluster_authorized_operations
    }
    if version >= 8 {
        out.push(0); // include_topic_authorized_operations
    }
    if version >= 9 {
        out.push(0);
    }
}

/// An ApiVersions v0-v3 request: empty before v3; v3 (flexible) names the
/// client software, which brokers log and expose as metrics (KIP-511).
pub fn api_versions_request(version: i16) -> Vec<u8> {
    let mut out = Vec::new();
    if version >= 3 {
        put_str(&mut out, true, CLIENT_ID);
        put_str(&mut out, true, env!("CARGO_PKG_VERSION"));
        out.push(0);
    }
    out
}

/// A SaslAuthenticate v0-v2 request: the mechanism's bytes (compact
/// bytes and tagged fields from v2, the first flexible version).
pub fn sasl_authenticate_request(auth: &[u8], version: i16) -> Vec<u8> {
    let flexible = version >= 2;
    let mut out = Vec::with_capacity(auth.len() + 8);
    put_len(&mut out, flexible, auth.len());
    out.extend_from_slice(auth);
    if flexible {
        out.push(0);
    }
    out
}

/// A SaslHandshake v0-v1 request: the mechanism's name.
pub fn sasl_handshake_request(mechanism: &str) -> Vec<u8> {
    let mut out = Vec::new();
    put_str(&mut out, false, mechanism);
    out
}

/// A FindCoordinator v1-v4 request for consumer group `group`
/// (FindCoordinatorRequest.json): key then key type 0 (group), flexible
/// from v3; v4 (KIP-699) sends the key type, then the key as a batch of one.
pub fn find_coordinator_request(group: &str, version: i16) -> Vec<u8> {
    let flexible = version >= 3;
    let mut out = Vec::new();
    if version >= 4 {
        out.push(0);
        put_len(&mut out, true, 1);
    }
    put_str(&mut out, flexible, group);
    if version < 4 {
        out.push(0); // key_type: group
    }
    if flexible {
        out.push(0);
    }
    out
}

/// One topic's result in a CreateTopics answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub name: String,
    pub error: i16,
    /// The broker's own words (v1+), untrusted text.
    pub message: Option<String>,
}

/// A CreateTopics v2-v7 answer: each topic's name, error and message. The
/// rest (v5+'s partitions, replication and configs as created) is skipped:
/// kwait reads what exists from Metadata, like every other client.
pub fn create_topics(body: &[u8], version: i16) -> Decoded<Vec<Created>> {
    let mut r = Reader::new(body);
    let flexible = version >= 5;
    r.i32()?; // throttle_time_ms
    let mut created = Vec::new();
    for _ in 0..r.array_len(flexible, 5)? {
        let name = r.string(flexible)?.unwrap_or_default();
        if version >= 7 {
            r.skip(16)?; // topic_id
        }
        let error = r.i16()?;
        let message = r.string(flexible)?;
        if flexible {
            r.i32()?; // num_partitions
            r.i16()?; // replication_factor
            for _ in 0..r.array_len(true, 5)? {
                r.string(true)?; // name
                r.string(true)?; // value
                r.skip(3)?; // read_only, config_source, is_sensitive
                r.tags()?;
            }
            r.tags()?;
        }
        created.push(Created {
            name,
            error,
            message,
        });
    }
    if flexible {
        r.tags()?;
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use kafka_protocol::messages::{
        api_versions_response::ApiVersion, ApiVersionsResponse, BrokerId, FindCoordinatorResponse,
        MetadataResponse, TopicName,
    };
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn encode<T: Encodable>(msg: &T, version: i16) -> Vec<u8> {
        let mut buf = BytesMut::new();
        msg.encode(&mut buf, version).unwrap();
        buf.to_vec()
    }

    /// Our decoders against kafka-protocol's encoders, every version we use.
    #[test]
    fn metadata_every_version() {
        let msg = MetadataResponse::default()
            .with_controller_id(BrokerId(2))
            .with_brokers(vec![
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(1))
                    .with_host(StrBytes::from_static_str("k1"))
                    .with_port(9092),
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(2))
                    .with_host(StrBytes::from_static_str("k2"))
                    .with_port(9093)
                    .with_rack(Some(StrBytes::from_static_str("r1"))),
            ])
            .with_topics(vec![MetadataResponseTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str("orders"))))
                .with_partitions(vec![
                    MetadataResponsePartition::default()
                        .with_partition_index(0)
                        .with_leader_id(BrokerId(1))
                        .with_replica_nodes(vec![BrokerId(1), BrokerId(2)])
                        .with_isr_nodes(vec![BrokerId(1)]),
                    MetadataResponsePartition::default()
                        .with_partition_index(1)
                        .with_leader_id(BrokerId(-1))
                        .with_error_code(5),
                ])]);
        for version in 1..=13 {
            let decoded = metadata(&encode(&msg, version), version).unwrap();
            assert_eq!(decoded.controller, 2, "v{version}");
            assert_eq!(decoded.brokers[1].host, "k2", "v{version}");
            assert_eq!(decoded.brokers[1].port, 9093, "v{version}");
            let topic = &decoded.topics[0];
            assert_eq!(topic.name.as_deref(), Some("orders"));
            assert_eq!(topic.partitions[1].leader, -1);
            assert_eq!(topic.partitions[1].error, 5);
        }
    }

    #[test]
    fn api_versions_every_version() {
        let msg = ApiVersionsResponse::default().with_api_keys(vec![
            ApiVersion::default()
                .with_api_key(18)
                .with_min_version(0)
                .with_max_version(4),
            ApiVersion::default()
                .with_api_key(3)
                .with_min_version(0)
                .with_max_version(12),
        ]);
        for version in 0..=4 {
            let (error, versions) = api_versions(&encode(&msg, version), version).unwrap();
            assert_eq!(error, 0);
            assert_eq!(versions.range(ApiKey::Metadata), Some((0, 12)));
            assert_eq!(versions.pick(ApiKey::Metadata, (1, 12)), Ok(12));
            assert_eq!(versions.pick(ApiKey::ApiVersions, (0, 3)), Ok(3));
            assert!(versions.pick(ApiKey::FindCoordinator, (1, 3)).is_err());
        }
    }

    #[test]
    fn find_coordinator_versions() {
        let msg = FindCoordinatorResponse::default()
            .with_node_id(BrokerId(3))
            .with_host(StrBytes::from_static_str("k3"))
            .with_port(9092);
        for version in 0..=3 {
            assert_eq!(
                find_coordinator(&encode(&msg, version), version),
                Ok((0, 3))
            );
        }
        // The librdkafka mock's error answer: throttle, error 15, then a null host.
        let mock = [0, 0, 0, 0, 0, 15, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(find_coordinator(&mock, 2), Ok((15, -1)));
    }

    #[test]
    fn hostile_counts_are_errors_not_allocations() {
        // Metadata v1: brokers array claiming 2^31-1 elements.
        let body = [0x7f, 0xff, 0xff, 0xff, 0, 0];
        assert!(metadata(&body, 1).unwrap_err().contains("does not fit"));
        // Compact array with a 5-byte varint count.
        let body = [0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(metadata(&body, 9).is_err());
        let body = [0, 0, 0x7f, 0xff, 0xff, 0xff];
        assert!(api_versions(&body, 0).is_err());
        assert!(api_versions(&[], 0).is_err());
        assert!(find_coordinator(&[0], 1).is_err());
    }

    #[test]
    fn a_broker_list_longer_than_kwait_checks_is_refused() {
        let brokers = |n: i32| {
            MetadataResponse::default().with_brokers(
                (0..n)
                    .map(|id| {
                        MetadataResponseBroker::default()
                            .with_node_id(BrokerId(id))
                            .with_host(StrBytes::from_static_str("k"))
                            .with_port(9092)
                    })
                    .collect(),
            )
        };
        let most = MAX_BROKERS as i32;
        for version in [1, 9, 12] {
            let decoded = metadata(&encode(&brokers(most), version), version);
            assert_eq!(decoded.map(|m| m.brokers.len()), Ok(MAX_BROKERS));
            let refused = metadata(&encode(&brokers(most + 1), version), version);
            assert!(
                refused.unwrap_err().contains("lists 1001 brokers"),
                "v{version}"
            );
        }
    }

    #[test]
    fn truncated_input_never_panics() {
        let msg = MetadataResponse::default().with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(1))
            .with_host(StrBytes::from_static_str("k1"))
            .with_port(9092)]);
        for version in 1..=13 {
            let full = encode(&msg, version);
            for cut in 0..full.len() {
                let _ = metadata(&full[..cut], version);
                let _ = api_versions(&full[..cut], version.min(4));
                let _ = find_coordinator(&full[..cut], version.min(4));
            }
        }
    }

    /// Our CreateTopics encoder against kafka-protocol's decoder (a
    /// broker's view), and its response encoder against our decoder.
    #[test]
    fn create_topics_every_version() {
        use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
        use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
        use kafka_protocol::protocol::Decodable;
        let orders = NewTopic {
            name: "orders".into(),
            partitions: 3,
            replication: 2,
            configs: vec![
                ("cleanup.policy".into(), "compact".into()),
                ("retention.ms".into(), "1000".into()),
            ],
        };
        let bare = NewTopic {
            name: "p".into(),
            partitions: 1,
            replication: 1,
            configs: Vec::new(),
        };
        let request = CreateTopics {
            topics: vec![&orders, &bare],
            timeout_ms: 4500,
        };
        let answer = CreateTopicsResponse::default().with_topics(vec![
            CreatableTopicResult::default()
                .with_name(TopicName(StrBytes::from_static_str("orders")))
                .with_num_partitions(3)
                .with_replication_factor(2),
            CreatableTopicResult::default()
                .with_name(TopicName(StrBytes::from_static_str("p")))
                .with_error_code(36)
                .with_error_message(Some(StrBytes::from_static_str("exists"))),
        ]);
        for version in 2..=7 {
            let mut bytes = bytes::Bytes::from(request.bytes(version));
            let decoded = CreateTopicsRequest::decode(&mut bytes, version).unwrap();
            assert!(bytes.is_empty(), "v{version}: trailing bytes");
            assert_eq!(decoded.timeout_ms, 4500);
            assert!(!decoded.validate_only);
            let t = &decoded.topics[0];
            assert_eq!(t.name.0.as_str(), "orders");
            assert_eq!((t.num_partitions, t.replication_factor), (3, 2));
            assert_eq!(t.configs[1].name.as_str(), "retention.ms");
            assert_eq!(t.configs[1].value.as_deref(), Some("1000"));
            assert!(decoded.topics[1].configs.is_empty());

            let results = create_topics(&encode(&answer, version), version).unwrap();
            assert_eq!(results.len(), 2, "v{version}");
            assert_eq!((results[0].name.as_str(), results[0].error), ("orders", 0));
            assert_eq!(results[1].error, 36);
            assert_eq!(results[1].message.as_deref(), Some("exists"));
        }
    }

    #[test]
    fn create_topics_hostile_or_truncated_answers_are_errors() {
        // A topics array claiming 2^31-1 entries, classic and compact.
        assert!(create_topics(&[0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff], 4)
            .unwrap_err()
            .contains("does not fit"));
        assert!(create_topics(&[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x07], 5).is_err());
        let answer = kafka_protocol::messages::CreateTopicsResponse::default().with_topics(vec![
            kafka_protocol::messages::create_topics_response::CreatableTopicResult::default()
                .with_name(TopicName(StrBytes::from_static_str("orders")))
                .with_error_message(Some(StrBytes::from_static_str("why"))),
        ]);
        for version in 2..=7 {
            let full = encode(&answer, version);
            for cut in 0..full.len() {
                assert!(
                    create_topics(&full[..cut], version).is_err(),
                    "v{version} cut {cut}"
                );
            }
        }
    }

    #[test]
    fn metadata_request_every_version() {
        use kafka_protocol::messages::MetadataRequest;
        use kafka_protocol::protocol::Decodable;
        for version in 1..=12 {
            let mut all = bytes::Bytes::from(metadata_request(None, version));
            let decoded = MetadataRequest::decode(&mut all, version).unwrap();
            assert!(all.is_empty() && decoded.topics.is_none(), "v{version}");
            let mut none = bytes::Bytes::from(metadata_request(Some(&[]), version));
            let decoded = MetadataRequest::decode(&mut none, version).unwrap();
            assert!(none.is_empty(), "v{version}: trailing bytes");
            assert_eq!(decoded.topics.map(|t| t.len()), Some(0), "v{version}");
            let mut bytes = bytes::Bytes::from(metadata_request(Some(&["orders", "p"]), version));
            let decoded = MetadataRequest::decode(&mut bytes, version).unwrap();
            assert!(bytes.is_empty(), "v{version}: trailing bytes");
            assert_eq!(decoded.allow_auto_topic_creation, version < 4, "v{version}");
            let names: Vec<_> = decoded
                .topics
                .unwrap()
                .iter()
                .map(|t| t.name.as_ref().unwrap().0.to_string())
                .collect();
            assert_eq!(names, ["orders", "p"], "v{version}");
        }
    }

    #[test]
    fn api_versions_request_every_version() {
        use kafka_protocol::messages::ApiVersionsRequest;
        use kafka_protocol::protocol::Decodable;
        for version in 0..=3 {
            let mut bytes = bytes::Bytes::from(api_versions_request(version));
            let decoded = ApiVersionsRequest::decode(&mut bytes, version).unwrap();
            assert!(bytes.is_empty(), "v{version}");
            if version == 3 {
                assert_eq!(decoded.client_software_name.as_str(), "kwait");
                assert_eq!(
                    decoded.client_software_version.as_str(),
                    env!("CARGO_PKG_VERSION")
                );
            }
        }
    }

    #[test]
    fn small_requests_every_version() {
        use kafka_protocol::messages::{FindCoordinatorRequest, SaslHandshakeRequest};
        use kafka_protocol::protocol::Decodable;
        for version in 1..=4 {
            let mut bytes = bytes::Bytes::from(find_coordinator_request("billing", version));
            let decoded = FindCoordinatorRequest::decode(&mut bytes, version).unwrap();
            assert!(bytes.is_empty(), "v{version}");
            assert_eq!(decoded.key_type, 0);
            if version >= 4 {
                assert_eq!(decoded.coordinator_keys[0].as_str(), "billing");
            } else {
                assert_eq!(decoded.key.as_str(), "billing");
            }
        }
        let mut bytes = bytes::Bytes::from(sasl_handshake_request("PLAIN"));
        let decoded = SaslHandshakeRequest::decode(&mut bytes, 1).unwrap();
        assert!(bytes.is_empty());
        assert_eq!(decoded.mechanism.as_str(), "PLAIN");
    }

    #[test]
    fn metadata_counts_replicas() {
        let msg = MetadataResponse::default().with_topics(vec![MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str("t"))))
            .with_partitions(vec![MetadataResponsePartition::default()
                .with_replica_nodes(vec![BrokerId(1), BrokerId(2), BrokerId(3)])])]);
        for version in 1..=13 {
            let decoded = metadata(&encode(&msg, version), version).unwrap();
            assert_eq!(decoded.topics[0].partitions[0].replicas, 3, "v{version}");
        }
    }
}
