//! One attempt at one target: ready (with what was seen), not ready (with
//! why), or fatal (retrying cannot help).
//!
//! Every kind has the same surface, `check(&spec, &Attempt) -> Outcome`.
//! Probes never retry, back off or sleep: that is the wait loop's job. They
//! do keep to the attempt's deadline on every connect, write and read, so a
//! peer that accepts and never answers ends the attempt, not kwait.

pub mod http;
pub mod kafka;
pub mod race;
pub mod tcp;
pub mod zk;

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use crate::target::{HostPort, Kind, Target};

/// A connection, plain or TLS.
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}
pub type Stream = Box<dyn Io>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ready(String),
    NotReady(String),
    Fatal(String),
}

/// The deadline name of `kwait probe`'s single attempt.
pub const PROBE_LIMIT: &str = "the probe's --timeout";

/// The context of one attempt: its deadline, which try it is (a kafka
/// target with several bootstrap addresses takes them in turn), and a count
/// of the connections it opened, which paces the wait loop.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub deadline: Instant,
    /// The flag that set the deadline, named when it runs out.
    pub limit: &'static str,
    pub seq: u64,
    connections: Arc<AtomicU32>,
    /// Set when a name lookup got no definite answer.
    lookup_unsure: Arc<AtomicBool>,
}

impl Attempt {
    pub fn new(deadline: Instant, limit: &'static str, seq: u64) -> Attempt {
        Attempt {
            deadline,
            limit,
            seq,
            connections: Arc::new(AtomicU32::new(0)),
            lookup_unsure: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The addresses this attempt tries ([`race::first_ready`]), starting
    /// one further along each attempt, so that no member is always first.
    pub fn rotation<'a>(&self, hosts: &'a [HostPort]) -> Vec<&'a HostPort> {
        let n = hosts.len();
        if n == 0 {
            return Vec::new();
        }
        let first = (self.seq % n as u64) as usize;
        (0..n).map(|i| &hosts[(first + i) % n]).collect()
    }

    /// How many TCP connections this attempt has tried to open.
    pub fn connections(&self) -> u32 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Whether a name lookup of this attempt (or of a clone of it) failed
    /// without a definite answer: whoever it was looking for may be alive.
    /// A failed [`Attempt::connect`] says so in its reason; this tells the
    /// one step that must not guess (`clean`) apart from "nothing there".
    pub fn lookup_unsure(&self) -> bool {
        self.lookup_unsure.load(Ordering::Relaxed)
    }

    /// Runs `io` against the attempt's deadline.
    pub async fn within<T>(
        &self,
        what: &str,
        io: impl Future<Output = io::Result<T>>,
    ) -> Result<T, String> {
        match timeout_at(self.deadline, io).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(self.failed(what, Some(&err))),
            Err(_) => Err(self.failed(what, None)),
        }
    }

    /// Why `within` failed: an error, or no answer in time. Not generic, so
    /// it is compiled once, not once per kind of I/O.
    pub fn failed(&self, what: &str, err: Option<&io::Error>) -> String {
        match err {
            Some(err) => format!("{what}: {}", describe(err)),
            None => format!("{what}: no answer within {}", self.limit),
        }
    }

    /// Resolves `addr` afresh (a compose service name resolves only once its
    /// container exists) and connects to the first address that accepts.
    pub async fn connect(&self, addr: &HostPort) -> Result<TcpStream, String> {
        let resolved = match crate::dns::resolve(&addr.host, addr.port, self.deadline).await {
            Ok(found) => found,
            Err(failure) => {
                if failure.unsure() {
                    self.lookup_unsure.store(true, Ordering::Relaxed);
                }
                return Err(format!(
                    "cannot resolve '{}' yet: {failure}",
                    crate::log::shown(&addr.host, 255)
                ));
            }
        };
        let mut last = format!("'{}' resolves to no address", addr.host);
        // "localhost" is 127.0.0.1 and ::1; with IPv6 off, ::1 fails with
        // "address not available", which says less than 127.0.0.1's
        // "connection refused". Keep the most telling reason.
        let mut telling = false;
        for ip in resolved {
            self.connections.fetch_add(1, Ordering::Relaxed);
            match timeout_at(self.deadline, TcpStream::connect(ip)).await {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Ok(Err(err)) => {
                    let vague = matches!(
                        err.kind(),
                        io::ErrorKind::AddrNotAvailable
                            | io::ErrorKind::NetworkUnreachable
                            | io::ErrorKind::HostUnreachable
                    );
                    if !(telling && vague) {
                        last = format!("{} at {addr}", describe(&err));
                        telling = !vague;
                    }
                }
                Err(_) => {
                    return Err(format!(
                        "connecting to {addr}: no answer within {}",
                        self.limit
                    ))
                }
            }
        }
        Err(last)
    }
}

/// An io error as a short lowercase phrase ("connection refused"), without
/// Rust's "(os error 111)" suffix.
pub fn describe(err: &io::Error) -> String {
    if let Some(words) = crate::tls::io_words(err) {
        return words;
    }
    match err.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::ConnectionReset => "connection reset".into(),
        io::ErrorKind::UnexpectedEof => "connection closed".into(),
        io::ErrorKind::TimedOut => "timed out".into(),
        _ => {
            let text = err.to_string();
            let text = match text.find(" (os error") {
                Some(i) => &text[..i],
                None => &text,
            };
            let mut chars = text.chars();
            match chars.next() {
                Some(c) => {
                    let mut out = String::with_capacity(text.len());
                    out.push(c.to_ascii_lowercase());
                    out.push_str(chars.as_str());
                    out
                }
                None => "i/o error".into(),
            }
        }
    }
}

/// One attempt at `target`.
pub async fn check(target: &Target, attempt: &Attempt) -> Outcome {
    match &target.kind {
        Kind::Kafka(spec) => kafka::check(spec, attempt).await,
        Kind::Zk(spec) => zk::check(spec, attempt).await,
        Kind::Tcp(addr) => tcp::check(addr, attempt).await,
        Kind::Http(spec) => http::check(spec, attempt).await,
    }
}
