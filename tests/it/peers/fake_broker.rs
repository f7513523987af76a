//! Small fake Kafka brokers for what no real test broker shows on demand
//! (ApiVersions and Metadata only, request header v0-v2, response header
//! v0): [`FakeBroker`] records the client software name and version kwait
//! announces (KIP-511) and can show no active controller; [`Kip511Broker`]
//! answers ApiVersions v3 the way Kafka 2.1-2.3 brokers do.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, MetadataResponse, RequestHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

pub struct FakeBroker {
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
    pub fn start(controller: i32, after: usize) -> FakeBroker {
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
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (clients, ctl, count) = (clients.clone(), ctl.clone(), count.clone());
                thread::spawn(move || {
                    serve(stream, port, &clients, &ctl, &count, after);
                });
            }
        });
        fake
    }

    /// "127.0.0.1:PORT".
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// (client software name, version) of every ApiVersions v3+ request so far.
    pub fn clients(&self) -> Vec<(String, String)> {
        self.clients.lock().unwrap().clone()
    }

    /// Metadata answers given so far.
    pub fn metadata_answers(&self) -> usize {
        self.metadata.load(Ordering::SeqCst)
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

/// A broker that knows ApiVersions v0-v2 only: it answers v3 with error 35
/// (UNSUPPORTED_VERSION) and a v0 body listing that range, as Kafka 2.1-2.3
/// do; Metadata v0-v8 shows itself, broker 1, as the controller.
pub struct Kip511Broker {
    addr: String,
    seen: Arc<Mutex<Vec<i16>>>,
}

impl Kip511Broker {
    pub fn start() -> Kip511Broker {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local_addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = log.clone();
                thread::spawn(move || kip511_serve(stream, addr.port(), &log));
            }
        });
        Kip511Broker {
            addr: addr.to_string(),
            seen,
        }
    }

    /// "127.0.0.1:PORT".
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The ApiVersions versions asked so far, in order.
    pub fn api_versions_seen(&self) -> Vec<i16> {
        self.seen.lock().unwrap().clone()
    }
}

fn kip511_serve(mut s: TcpStream, port: u16, seen: &Mutex<Vec<i16>>) {
    let range = |key: ApiKey, min: i16, max: i16| {
        ApiVersion::default()
            .with_api_key(key as i16)
            .with_min_version(min)
            .with_max_version(max)
    };
    while let Some(request) = read_request(&mut s) {
        let key = i16::from_be_bytes([request[0], request[1]]);
        let version = i16::from_be_bytes([request[2], request[3]]);
        let correlation = &request[4..8];
        let mut body = BytesMut::new();
        if key == ApiKey::ApiVersions as i16 {
            seen.lock().unwrap().push(version);
            if version > 2 {
                // Error 35 with the v0 body: the range of ApiVersions known.
                body.extend_from_slice(&35i16.to_be_bytes());
                body.extend_from_slice(&1i32.to_be_bytes());
                for v in [ApiKey::ApiVersions as i16, 0, 2] {
                    body.extend_from_slice(&v.to_be_bytes());
                }
            } else {
                ApiVersionsResponse::default()
                    .with_api_keys(vec![
                        range(ApiKey::ApiVersions, 0, 2),
                        range(ApiKey::Metadata, 0, 8),
                    ])
                    .encode(&mut body, version)
                    .expect("encode ApiVersions");
            }
        } else if key == ApiKey::Metadata as i16 && version <= 8 {
            MetadataResponse::default()
                .with_brokers(vec![MetadataResponseBroker::default()
                    .with_node_id(BrokerId(1))
                    .with_host(StrBytes::from_static_str("127.0.0.1"))
                    .with_port(i32::from(port))])
                .with_controller_id(BrokerId(1))
                .encode(&mut body, version)
                .expect("encode Metadata");
        } else {
            return;
        }
        if !write_response(&mut s, correlation, &body) {
            return;
        }
    }
}
