//! A Kafka client independent of kwait's, to check a peer's state:
//! one request, one response, over a plain TcpStream.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{
    encode_request_header_into_buffer, Decodable, HeaderVersion, Request, StrBytes,
};

use super::resolve;

/// One request/response round trip with kafka-protocol over a plain
/// TcpStream, for checking a peer's state independently of kwait's code.
/// Not for ApiVersions against the mock above v2 (see the research notes).
pub fn kafka_request<R: Request>(addr: &str, version: i16, req: &R) -> Result<R::Response, String> {
    let sa = resolve(addr).ok_or_else(|| format!("cannot resolve {addr}"))?;
    let timeout = Duration::from_secs(5);
    let mut s =
        TcpStream::connect_timeout(&sa, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("kwait-tests")));
    let mut buf = BytesMut::new();
    encode_request_header_into_buffer(&mut buf, &header).map_err(|e| e.to_string())?;
    req.encode(&mut buf, version).map_err(|e| e.to_string())?;
    let mut frame = (buf.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&buf);
    s.write_all(&frame)
        .map_err(|e| format!("write to {addr}: {e}"))?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len)
        .map_err(|e| format!("read from {addr}: {e}"))?;
    let len = i32::from_be_bytes(len);
    if !(0..=64 << 20).contains(&len) {
        return Err(format!("{addr} sent frame length {len}"));
    }
    let mut body = vec![0u8; len as usize];
    s.read_exact(&mut body)
        .map_err(|e| format!("read from {addr}: {e}"))?;
    let mut body = Bytes::from(body);
    let rh = ResponseHeader::decode(&mut body, R::Response::header_version(version))
        .map_err(|e| format!("response header: {e}"))?;
    if rh.correlation_id != 7 {
        return Err(format!("correlation id {} != 7", rh.correlation_id));
    }
    R::Response::decode(&mut body, version).map_err(|e| format!("response body: {e}"))
}

/// Metadata v9 for all topics (no auto-creation).
pub fn metadata(addr: &str) -> MetadataResponse {
    let req = MetadataRequest::default().with_topics(None);
    kafka_request(addr, 9, &req).unwrap_or_else(|e| panic!("metadata from {addr}: {e}"))
}
