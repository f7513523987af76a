//! What no real test broker shows on demand, from a small fake Kafka broker
//! (ApiVersions v0-v3, Metadata v0-v8): the client software name and version
//! kwait announces (KIP-511), and a cluster without an active controller.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, MetadataResponse, RequestHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::peers::{self, kwait_with};

const LIMIT: Duration = Duration::from_secs(30);

struct FakeBroker {
    addr: String,
    /// (client software name, version) of every ApiVersions v3+ request.
    clients: Arc<Mutex<Vec<(String, String)>>>,
    /// The controller id the next Metadata answers shows.
    controller: Arc<AtomicI32>,
    /// Metadata answers given so far.
    metadata: Arc<AtomicUsize>,
}

impl FakeBroker {
    /// Answers with `controller` as the controller id until `after` Metadata
    /// answers were given, then with its own id, 1.
    fn start(controller: i32, after: usize) -> FakeBroker {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("local_addr").port();
        let fake = FakeBroker {
            addr: format!("127.0.0.1:{port}"),
            clients: Arc::default(),
            controller: Arc::new(AtomicI32::new(controller)),
            metadata: Arc::default(),
        };
        let (clients, ctl, count) = (
            fake.clients.clone(),
            fake.controller.clone(),
            fake.metadata.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (clients, ctl, count) = (clients.clone(), ctl.clone(), count.clone());
                std::thread::spawn(move || {
                    serve(stream, port, &clients, &ctl, &count, after);
                });
            }
        });
        fake
    }
}

fn serve(
    mut s: TcpStream,
    port: u16,
    clients: &Mutex<Vec<(String, String)>>,
    controller: &AtomicI32,
    count: &AtomicUsize,
    after: usize,
) {
    let range = |key: ApiKey, max: i16| {
        ApiVersion::default()
            .with_api_key(key as i16)
            .with_min_version(0)
            .with_max_version(max)
    };
    while let Some(request) = read_request(&mut s) {
        let key = i16::from_be_bytes([request[0], request[1]]);
        let version = i16::from_be_bytes([request[2], request[3]]);
        let correlation = request[4..8].to_vec();
        let mut body = BytesMut::new();
        if key == ApiKey::ApiVersions as i16 && version <= 3 {
            if version == 3 {
                // Request header v2 (flexible), then the v3 body.
                let mut buf = Bytes::from(request);
                RequestHeader::decode(&mut buf, 2).expect("ApiVersions v3 header");
                let req = ApiVersionsRequest::decode(&mut buf, 3).expect("ApiVersions v3 body");
                clients.lock().unwrap().push((
                    req.client_software_name.to_string(),
                    req.client_software_version.to_string(),
                ));
            }
            ApiVersionsResponse::default()
                .with_api_keys(vec![
                    range(ApiKey::ApiVersions, 3),
                    range(ApiKey::Metadata, 8),
                ])
                .encode(&mut body, version)
                .expect("encode ApiVersions");
        } else if key == ApiKey::Metadata as i16 && version <= 8 {
            let n = count.fetch_add(1, Ordering::SeqCst);
            let id = if n < after {
                controller.load(Ordering::SeqCst)
            } else {
                1
            };
            MetadataResponse::default()
                .with_brokers(vec![MetadataResponseBroker::default()
                    .with_node_id(BrokerId(1))
                    .with_host(StrBytes::from_static_str("127.0.0.1"))
                    .with_port(i32::from(port))])
                .with_controller_id(BrokerId(id))
                .encode(&mut body, version)
                .expect("encode Metadata");
        } else {
            return;
        }
        // Response header v0 (ApiVersions always; Metadata up to v8).
        if !write_response(&mut s, &correlation, &body) {
            return;
        }
    }
}

/// The next request frame a client sent (size prefix stripped), or `None`
/// when the connection ended or the size is not a request's.
pub fn read_request(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let len = u32::from_be_bytes(len) as usize;
    if !(8..=1 << 20).contains(&len) {
        return None;
    }
    let mut request = vec![0u8; len];
    s.read_exact(&mut request).ok()?;
    Some(request)
}

/// Writes a response with header v0 (the correlation id only); false when
/// the client is gone.
pub fn write_response(s: &mut TcpStream, correlation: &[u8], body: &[u8]) -> bool {
    let mut frame = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(correlation);
    frame.extend_from_slice(body);
    s.write_all(&frame).is_ok()
}

/// KIP-511: kwait names itself and its version in ApiVersions v3, so a
/// broker's metrics and logs show who is asking.
#[test]
fn apiversions_names_kwait_and_its_version() {
    let broker = FakeBroker::start(1, 0);
    let target = format!("kafka://{}", broker.addr);
    peers::run(&mut kwait_with(&["probe", &target], &[]), LIMIT)
        .expect(0, &["ready: 1 broker (1), controller 1"]);
    let clients = broker.clients.lock().unwrap().clone();
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
    let target = format!("kafka://{}", broker.addr);
    peers::run(&mut kwait_with(&["probe", &target], &[]), LIMIT).expect(
        1,
        &[
            "no active controller yet (Metadata from ",
            "controller id -1",
        ],
    );

    let broker = FakeBroker::start(-1, 3);
    let target = format!("kafka://{}", broker.addr);
    let waited = peers::run(&mut kwait_with(&[&target, "-t", "10s"], &[]), LIMIT);
    waited.expect(0, &["ready after", "controller 1"]);
    assert!(
        broker.metadata.load(Ordering::SeqCst) > 3,
        "ready before a controller was shown"
    );
}
