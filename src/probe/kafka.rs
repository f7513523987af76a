//! `kafka://`: ready when the cluster really serves clients.
//!
//! One attempt talks to one bootstrap address (the next one each attempt;
//! a probe tries them all in turn):
//! ApiVersions with KIP-511's fallback, then Metadata asking for no topics
//! (so nothing is auto-created): at least `min-brokers` brokers and a
//! controller. Then every listed broker must answer ApiVersions at its
//! *advertised* address from here, the check that catches a wrong
//! `advertised.listeners`. Then, if asked, each topic must exist with a
//! leader for every partition, and the group's coordinator must be found.
//! See research/kafka-zookeeper-semantics.md §1 for why each rung matters.
//!
//! It never creates anything and never retries: a failed rung is the
//! attempt's reason, and the wait loop decides what happens next.

pub mod wire;

use kafka_protocol::messages::ApiKey;

use kafka_protocol::messages::SaslAuthenticateRequest;

use self::wire::{Conn, Metadata, Versions};
use super::Outcome;
use crate::net::HostPort;
use crate::net::{Attempt, Stream};
use crate::sasl::{Exchange, Step};
use crate::security::{Sasl, Security};
use crate::target::{Check, Kafka};

/// The versions kwait speaks. Metadata starts at v1, the first where an
/// empty topic list means "no topics" (v0 reads it as "all").
const API_VERSIONS: (i16, i16) = (0, 3);
const METADATA: (i16, i16) = (1, 12);
const FIND_COORDINATOR: (i16, i16) = (1, 4);
/// v0 of SaslHandshake means raw SASL frames after it; kwait speaks only the
/// SaslAuthenticate form (KIP-152, Kafka 1.0).
const SASL_HANDSHAKE: (i16, i16) = (1, 1);
const SASL_AUTHENTICATE: (i16, i16) = (0, 2);
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
/// What Kafka answers a SaslHandshake with on a listener without SASL
/// (`KafkaApis.handleSaslHandshakeRequest`).
const ILLEGAL_SASL_STATE: i16 = 34;
const SASL_AUTHENTICATION_FAILED: i16 = 58;
/// The mechanism kwait asks for when it only wants a listener's list: no
/// broker offers it, so a SASL listener answers with the ones it does.
const NO_MECHANISM: &str = "kwait-asks-which";

/// Kafka's UNSUPPORTED_VERSION.
const UNSUPPORTED_VERSION: i16 = 35;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;

pub async fn check(spec: &Kafka, attempt: &Attempt) -> Outcome {
    match ready(spec, attempt).await {
        Ok(seen) => Outcome::Ready(seen),
        Err(unready) => unready,
    }
}

/// A broker that shares no version of a request with kwait will not learn
/// one by waiting: that is fatal.
fn pick(
    versions: &Versions,
    key: ApiKey,
    ours: (i16, i16),
    addr: &HostPort,
) -> Result<i16, Outcome> {
    versions.pick(key, ours).map_err(|e| {
        Outcome::Fatal(format!(
            "{addr}: {e}; this broker is too old or too new for kwait"
        ))
    })
}

async fn ready(spec: &Kafka, attempt: &Attempt) -> Result<String, Outcome> {
    let hosts = attempt.rotation(&spec.bootstrap);
    let outcome = super::race::first_ready(hosts, |addr| async move {
        match rungs(spec, addr, attempt).await {
            Ok(seen) => Outcome::Ready(seen),
            Err(outcome) => outcome,
        }
    })
    .await;
    match outcome {
        Outcome::Ready(seen) => Ok(seen),
        unready => Err(unready),
    }
}

/// Every rung, through one bootstrap address.
async fn rungs(spec: &Kafka, addr: &HostPort, attempt: &Attempt) -> Result<String, Outcome> {
    let (mut conn, versions) = open(addr, &spec.security, attempt).await?;

    let version = pick(&versions, ApiKey::Metadata, METADATA, addr)?;
    let request = wire::metadata_request(Some(&[]), version);
    let body = match conn
        .call_encoded(attempt, ApiKey::Metadata, version, version >= 9, &request)
        .await
    {
        Ok(body) => body,
        Err(e) if spec.security.sasl.is_none() && closed(&e) => {
            return Err(closed_on_metadata(addr, &spec.security, &e, attempt).await)
        }
        Err(e) => return Err(Outcome::NotReady(format!("{addr}: {e}"))),
    };
    let cluster = wire::metadata(&body, version)
        .map_err(|e| format!("{addr}: malformed Metadata answer: {e}"))?;

    let ids = cluster
        .brokers
        .iter()
        .map(|b| b.id.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if spec.check == Check::Broker {
        // The same connection asks for no more: topics and groups depend on
        // other brokers, and check=broker refuses them.
        return this_broker(&cluster, addr, conn.peer, &spec.security, attempt).await;
    }
    if cluster.brokers.len() < spec.min_brokers {
        return Err(Outcome::NotReady(format!(
            "{} of min-brokers={} brokers registered (ids: {})",
            cluster.brokers.len(),
            spec.min_brokers,
            if ids.is_empty() { "none" } else { &ids }
        )));
    }
    if cluster.controller < 0 {
        return Err(Outcome::NotReady(format!(
            "no active controller yet (Metadata from {addr} shows controller id {})",
            cluster.controller
        )));
    }
    advertised(&cluster, &spec.security, attempt).await?;

    let mut seen = format!(
        "{} broker{} ({ids}), controller {}",
        cluster.brokers.len(),
        if cluster.brokers.len() == 1 { "" } else { "s" },
        cluster.controller
    );
    if !spec.topics.is_empty() {
        seen.push_str(&topics(&mut conn, attempt, version, &spec.topics).await?);
    }
    if let Some(group) = &spec.group {
        let version = pick(&versions, ApiKey::FindCoordinator, FIND_COORDINATOR, addr)?;
        let node = coordinator(&mut conn, attempt, version, group).await?;
        seen.push_str(&format!(", group {group} coordinator {node}"));
    }
    Ok(seen)
}

/// Whether an I/O failure is the peer closing or resetting the connection.
fn closed(e: &str) -> bool {
    ["connection closed", "connection reset", "broken pipe"]
        .iter()
        .any(|end| e.ends_with(end))
}

/// The connection was closed on Metadata after ApiVersions was answered, and
/// no SASL is configured. A SASL listener does this to a client that skips
/// authentication (before it, Kafka takes only ApiVersions and
/// SaslHandshake), and so does a broker shutting down. A SaslHandshake on a
/// fresh connection tells them apart: only a SASL listener answers it with
/// the mechanisms it offers.
async fn closed_on_metadata(
    addr: &HostPort,
    security: &Security,
    e: &str,
    attempt: &Attempt,
) -> Outcome {
    let what = "the listener closed the connection on Metadata after answering ApiVersions";
    match mechanisms(addr, security.tls.as_ref(), attempt).await {
        Some(offered) if !offered.is_empty() => Outcome::Fatal(format!(
            "{addr}: {e}: {what}, and a SaslHandshake there is answered with mechanisms {}: \
             this is a SASL listener (add sasl= and user=, or config= with security.protocol=SASL_PLAINTEXT or SASL_SSL)",
            offered.join(", ")
        )),
        // Answered, with no mechanism: not for want of SASL.
        Some(_) => Outcome::NotReady(format!(
            "{addr}: {e}: {what}, and it does not take SASL (a broker shutting down?)"
        )),
        None => Outcome::NotReady(format!(
            "{addr}: {e}: {what}: a SASL listener does this (add sasl= and user=, or config=)"
        )),
    }
}

/// The SASL mechanisms the listener at `addr` offers, asked on a fresh
/// connection with `tls` and no SASL for a mechanism no broker has: empty
/// when it answers without any (Kafka's ILLEGAL_SASL_STATE on a listener
/// without SASL, or tansu's echo of the name asked for); `None` when it
/// does not answer.
async fn mechanisms(
    addr: &HostPort,
    tls: Option<&crate::tls::Config>,
    attempt: &Attempt,
) -> Option<Vec<String>> {
    let bare = Security {
        tls: tls.cloned(),
        sasl: None,
    };
    // Boxed: `open` calls this through `authenticate`, and a recursive
    // future must have a known size.
    let (mut conn, versions) = Box::pin(open(addr, &bare, attempt)).await.ok()?;
    let v = versions.pick(ApiKey::SaslHandshake, SASL_HANDSHAKE).ok()?;
    let request = wire::sasl_handshake_request(NO_MECHANISM);
    let body = conn
        .call_encoded(attempt, ApiKey::SaslHandshake, v, false, &request)
        .await
        .ok()?;
    let (_, mut offered) = wire::sasl_handshake(&body).ok()?;
    offered.retain(|m| m != NO_MECHANISM);
    Some(offered)
}

/// ApiVersions, newest version first, with KIP-511's fallback: a broker that
/// does not know our version answers UNSUPPORTED_VERSION with a v0 body
/// listing the ApiVersions range it does know; retry at its highest. When
/// that body does not decode (the librdkafka mock writes a non-conformant
/// one) or lists nothing (brokers before 2.4), retry at v0.
async fn api_versions(conn: &mut Conn, attempt: &Attempt) -> Result<Versions, String> {
    let mut version = API_VERSIONS.1;
    loop {
        let request = wire::api_versions_request(version);
        let body = conn
            .call_encoded(
                attempt,
                ApiKey::ApiVersions,
                version,
                version >= 3,
                &request,
            )
            .await?;
        let error = body
            .get(..2)
            .map(|b| i16::from_be_bytes([b[0], b[1]]))
            .ok_or("empty ApiVersions answer")?;
        if error == UNSUPPORTED_VERSION && version > 0 {
            let next = match wire::api_versions(&body, 0) {
                Ok((_, offered)) => match offered.range(ApiKey::ApiVersions) {
                    Some((_, max)) => max.clamp(0, version - 1),
                    None => 0,
                },
                Err(_) => 0,
            };
            version = next;
            continue;
        }
        if error != 0 {
            return Err(format!("ApiVersions answered {}", error_name(error)));
        }
        let (_, versions) = wire::api_versions(&body, version)
            .map_err(|e| format!("malformed ApiVersions v{version} answer: {e}"))?;
        return Ok(versions);
    }
}

/// What answers at a broker's registered address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// A Kafka broker answered ApiVersions.
    Kafka,
    /// Something accepted the connection but did not answer Kafka.
    Unknown(String),
    /// Nothing: refused, unresolvable, or no connection before the deadline.
    Nothing(String),
}

/// Whether a Kafka broker answers at `addr`, for telling a live broker's
/// registration from a dead one's.
/// `tls` is for listeners registered as SSL or SASL_SSL: the handshake then
/// checks no certificate, since nothing secret is sent and only "is a Kafka
/// broker there" matters.
pub async fn presence(
    addr: &HostPort,
    tls: Option<&crate::tls::Config>,
    attempt: &Attempt,
) -> Presence {
    let tcp = match attempt.connect(addr).await {
        Err(reason) => return Presence::Nothing(reason),
        Ok(tcp) => tcp,
    };
    let stream: Stream = match tls {
        None => Box::new(tcp),
        Some(config) => match crate::tls::connect(config, &addr.host, tcp, attempt).await {
            Ok(tls) => Box::new(tls),
            Err(crate::tls::Failure::Fatal(r) | crate::tls::Failure::Retry(r)) => {
                return Presence::Unknown(r)
            }
        },
    };
    match api_versions(&mut Conn::new(stream), attempt).await {
        Ok(_) => Presence::Kafka,
        Err(reason) => Presence::Unknown(reason),
    }
}

/// How many advertised-listener checks run at once.
const ADVERTISED_AT_ONCE: usize = 16;

/// Every broker the cluster lists must answer at its advertised address.
/// Clients connect there after bootstrapping, so a broker that answers only
/// at its bootstrap address is no use to them.
async fn advertised(
    cluster: &Metadata,
    security: &Security,
    attempt: &Attempt,
) -> Result<(), Outcome> {
    let mut checks = tokio::task::JoinSet::new();
    let mut pending = cluster.brokers.iter();
    let mut failures = Vec::new();
    loop {
        // A few connections at a time: a large cluster must not exhaust
        // file descriptors or burst at a booting broker.
        while checks.len() < ADVERTISED_AT_ONCE {
            let Some(broker) = pending.next() else { break };
            let id = broker.id;
            let shown = format!("{}:{}", crate::log::shown(&broker.host, 100), broker.port);
            let addr = u16::try_from(broker.port)
                .ok()
                .filter(|p| *p != 0)
                .and_then(|port| HostPort::parse(&format!("{}:{port}", broker.host), "").ok());
            let attempt = attempt.clone();
            let security = security.clone();
            checks.spawn(async move {
                let result = match addr {
                    None => Err(Outcome::NotReady("not a usable host:port".to_string())),
                    Some(addr) => open(&addr, &security, &attempt).await.map(|_| ()),
                };
                (id, shown, result)
            });
        }
        let Some(joined) = checks.join_next().await else {
            break;
        };
        match joined {
            Ok((_, _, Ok(()))) => {}
            // Wrong credentials or certificates are as wrong at every broker.
            Ok((_, _, Err(fatal @ Outcome::Fatal(_)))) => return Err(fatal),
            Ok((id, shown, Err(Outcome::NotReady(reason) | Outcome::Ready(reason)))) => {
                failures.push((id, shown, reason))
            }
            Err(_) => failures.push((-1, "?".into(), "the check did not finish".into())),
        }
    }
    // The lowest id is named (min, not a sort: a sort is 3 KB of code).
    match failures.iter().min_by_key(|f| f.0) {
        None => Ok(()),
        Some((id, shown, reason)) => Err(Outcome::NotReady(format!(
            "{}{}; a broker's own health check asks only about itself: add check=broker",
            not_answering(*id, shown, reason),
            if failures.len() == 1 {
                String::new()
            } else {
                format!(", and {} more broker(s) likewise", failures.len() - 1)
            }
        ))),
    }
}

/// How a listed broker that does not answer at its advertised address is
/// reported: from here, a dead broker and a wrong address look the same.
fn not_answering(id: i32, shown: &str, reason: &str) -> String {
    format!(
        "broker {id} at {shown} is listed but not answering (down, or advertised.listeners wrong): {reason}"
    )
}

/// `check=broker`: the broker that answered Metadata must be listed, and
/// answer at its own advertised address; no other broker is contacted.
///
/// Kafka does not say which listed broker answered, so kwait tells: the
/// listed broker whose advertised address is the bootstrap address as
/// written (host and port), else the one on the bootstrap port whose
/// advertised host resolves to the address the connection went to, else,
/// when that address is this host's (loopback, or an address of this
/// machine), the one on the bootstrap port whose advertised host resolves
/// to an address of this host: `localhost:9092` in a container whose broker
/// advertises `kafka1:9092`, its own name.
async fn this_broker(
    cluster: &Metadata,
    addr: &HostPort,
    peer: Option<std::net::SocketAddr>,
    security: &Security,
    attempt: &Attempt,
) -> Result<String, Outcome> {
    let usable = |b: &&wire::Broker| i32::from(addr.port) == b.port;
    let mut own = cluster
        .brokers
        .iter()
        .filter(usable)
        .find(|b| b.host.eq_ignore_ascii_case(&addr.host));
    if own.is_none() {
        let peer = peer.map(|p| p.ip());
        let local_peer = peer.is_some_and(on_this_host);
        let mut local = None;
        for broker in cluster.brokers.iter().filter(usable) {
            let Ok(ips) = crate::net::dns::resolve(&broker.host, addr.port, attempt.deadline).await
            else {
                continue;
            };
            if ips.iter().any(|ip| Some(ip.ip()) == peer) {
                own = Some(broker);
                break;
            }
            if local_peer && local.is_none() && ips.iter().any(|ip| on_this_host(ip.ip())) {
                local = Some(broker);
            }
        }
        own = own.or(local);
    }
    let ids = cluster
        .brokers
        .iter()
        .map(|b| b.id.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let Some(own) = own else {
        return Err(Outcome::NotReady(format!(
            "{addr}: this broker is not among the {} broker(s) its Metadata lists (ids: {}) \
             at {addr} or another address of this host on port {}: it is not registered yet, \
             or its advertised.listeners names an address that is not this host's",
            cluster.brokers.len(),
            if ids.is_empty() { "none" } else { &ids },
            addr.port
        )));
    };
    let shown = format!("{}:{}", crate::log::shown(&own.host, 100), own.port);
    let advertised = HostPort::parse(&format!("{}:{}", own.host, addr.port), "")
        .map_err(|_| not_answering(own.id, &shown, "not a usable host:port"))?;
    open(&advertised, security, attempt)
        .await
        .map_err(|unready| match unready {
            Outcome::NotReady(reason) => Outcome::NotReady(not_answering(own.id, &shown, &reason)),
            fatal => fatal,
        })?;
    Ok(format!(
        "broker {} answers at its advertised {shown}, controller {} ({} broker(s) listed, not checked)",
        own.id,
        cluster.controller,
        cluster.brokers.len()
    ))
}

/// Whether `ip` is an address of this host: loopback, or one a socket can
/// be bound to (binding sends nothing).
fn on_this_host(ip: std::net::IpAddr) -> bool {
    ip.is_loopback() || std::net::UdpSocket::bind((ip, 0)).is_ok()
}

/// A Kafka connection to `addr` with the target's security: TCP, TLS when
/// configured, ApiVersions (allowed before authentication), then SASL when
/// configured. Wrong settings are fatal: waiting does not fix a password.
pub async fn open(
    addr: &HostPort,
    security: &Security,
    attempt: &Attempt,
) -> Result<(Conn, Versions), Outcome> {
    let tcp = attempt.connect(addr).await?;
    let peer = tcp.peer_addr().ok();
    let stream: Stream = match &security.tls {
        None => Box::new(tcp),
        Some(config) => handshake(config, addr, tcp, attempt).await?,
    };
    let mut conn = Conn::new(stream);
    conn.peer = peer;
    let versions = match api_versions(&mut conn, attempt).await {
        Ok(versions) => versions,
        // Another service (SSH, HTTP, ...) on this port: waiting will not
        // make it Kafka.
        Err(e) if e.contains(wire::NOT_KAFKA) => {
            return Err(Outcome::Fatal(format!("{addr}: {e}")))
        }
        Err(e) if security.tls.is_some() && e.contains("with TLS alert") => {
            // Under TLS 1.3 a server refuses a client certificate (or its
            // absence) after the handshake, on the first read.
            return Err(Outcome::Fatal(format!(
                "{addr}: {e}: the broker refused this TLS client; does it require a client certificate (cert=, key=)?"
            )));
        }
        Err(e)
            if security.tls.is_some()
                && (e.ends_with("connection reset") || e.ends_with("connection closed")) =>
        {
            // The same refusal when the alert is lost to the reset of a
            // connection closed with kwait's request unread; a broker
            // shutting down looks alike, so it stays a reason to wait.
            return Err(Outcome::NotReady(format!(
                "{addr}: {e} right after the TLS handshake; does the broker require a client certificate (cert=, key=)?"
            )));
        }
        Err(e) if security.tls.is_none() && e.contains("TLS alert") => {
            // The listener answered in TLS: waiting will not change that.
            return Err(Outcome::Fatal(format!("{addr}: {e}")));
        }
        Err(e)
            if security.tls.is_none()
                && (e.ends_with("connection reset") || e.ends_with("connection closed")) =>
        {
            // A TLS terminator drops a plaintext request this way; so does a
            // broker shutting down. A TLS handshake at the same address
            // tells them apart (a build without TLS cannot try one).
            #[cfg(feature = "tls")]
            {
                let tcp = attempt.connect(addr).await?;
                if crate::tls::speaks_tls(&addr.host, tcp, attempt).await {
                    return Err(Outcome::Fatal(format!(
                        "{addr}: {e} before answering a plaintext request, and a TLS handshake there succeeds: \
                         this is a TLS listener (add tls=true, or security.protocol=SSL in config=)"
                    )));
                }
            }
            let hint = if cfg!(feature = "tls") {
                ""
            } else {
                " (a TLS listener? then add tls=true)"
            };
            return Err(Outcome::NotReady(format!(
                "{addr}: {e} before answering{hint}"
            )));
        }
        Err(e) => return Err(Outcome::NotReady(format!("{addr}: {e}"))),
    };
    if let Some(sasl) = &security.sasl {
        authenticate(
            &mut conn,
            &versions,
            sasl,
            addr,
            security.tls.as_ref(),
            attempt,
        )
        .await?;
    }
    Ok((conn, versions))
}

/// How long a TLS handshake may go unanswered before kwait asks the same
/// address, on a second connection, whether a plaintext Kafka listener is
/// there. The handshake itself keeps the whole attempt deadline.
#[cfg(feature = "tls")]
const PLAINTEXT_SUSPICION: std::time::Duration = std::time::Duration::from_millis(500);

/// The TLS handshake of `open`. A plaintext Kafka listener reads a
/// ClientHello as the start of a huge request and then waits for the rest
/// (or closes, past `socket.request.max.bytes`), which looks like a slow or
/// restarting TLS listener; a plaintext ApiVersions that gets its answer
/// tells them apart, and that mistake is fatal: waiting will not add TLS.
#[cfg(feature = "tls")]
async fn handshake(
    config: &crate::tls::Config,
    addr: &HostPort,
    tcp: tokio::net::TcpStream,
    attempt: &Attempt,
) -> Result<Stream, Outcome> {
    let plaintext = |why: &str| {
        Outcome::Fatal(format!(
            "{addr}: {why}, but a plaintext Kafka request there is answered: \
             this is a plaintext listener (drop tls=true, or use security.protocol=PLAINTEXT or SASL_PLAINTEXT)"
        ))
    };
    let shake = crate::tls::connect(config, &addr.host, tcp, attempt);
    tokio::pin!(shake);
    let suspicion = async {
        tokio::time::sleep(PLAINTEXT_SUSPICION).await;
        presence(addr, None, attempt).await == Presence::Kafka
    };
    let result = tokio::select! {
        result = &mut shake => result,
        true = suspicion => return Err(plaintext("the TLS handshake gets no answer")),
    };
    match result {
        Ok(tls) => Ok(Box::new(tls)),
        Err(crate::tls::Failure::Fatal(reason)) => Err(Outcome::Fatal(format!("{addr}: {reason}"))),
        Err(crate::tls::Failure::Retry(reason)) => {
            if presence(addr, None, attempt).await == Presence::Kafka {
                Err(plaintext(&reason))
            } else {
                Err(Outcome::NotReady(format!("{addr}: {reason}")))
            }
        }
    }
}

/// No TLS in this build: a [`crate::tls::Config`] cannot exist, so neither
/// can a handshake (nor its code in the binary).
#[cfg(not(feature = "tls"))]
async fn handshake(
    config: &crate::tls::Config,
    _: &HostPort,
    _: tokio::net::TcpStream,
    _: &Attempt,
) -> Result<Stream, Outcome> {
    match *config {}
}

/// SaslHandshake, then SaslAuthenticate rounds until the mechanism is done.
async fn authenticate(
    conn: &mut Conn,
    versions: &Versions,
    sasl: &Sasl,
    addr: &HostPort,
    tls: Option<&crate::tls::Config>,
    attempt: &Attempt,
) -> Result<(), Outcome> {
    let mechanism = sasl.mechanism.name();
    let v = pick(versions, ApiKey::SaslHandshake, SASL_HANDSHAKE, addr)?;
    let request = wire::sasl_handshake_request(mechanism);
    let body = conn
        .call_encoded(attempt, ApiKey::SaslHandshake, v, false, &request)
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    let (error, offered) = wire::sasl_handshake(&body)
        .map_err(|e| format!("{addr}: malformed SaslHandshake answer: {e}"))?;
    let no_sasl = |why: String| {
        Outcome::Fatal(format!(
            "{addr}: {why}: this listener does not take SASL (a PLAINTEXT or SSL listener?): \
             drop user=/sasl= (or the SASL_ of security.protocol in config=), or use the broker's SASL listener"
        ))
    };
    match error {
        0 => {}
        ILLEGAL_SASL_STATE => {
            return Err(no_sasl(format!(
                "the broker answers SaslHandshake with {}",
                error_name(error)
            )))
        }
        UNSUPPORTED_SASL_MECHANISM if !offered.is_empty() && !offered.iter().any(|m| m == mechanism) => {
            return Err(Outcome::Fatal(format!(
                "{addr}: the broker does not offer SASL {mechanism}; it offers {} (set sasl= or sasl.mechanism)",
                offered.join(", ")
            )))
        }
        // A refusal that lists nothing, or the very mechanism it refuses
        // (tansu without SASL echoes the name asked for): what it offers
        // when asked for a mechanism no broker has says what it means.
        UNSUPPORTED_SASL_MECHANISM => {
            let refused = format!(
                "the broker refuses SASL {mechanism} with {}, listing {}",
                error_name(error),
                if offered.is_empty() { "no mechanism".to_string() } else { offered.join(", ") }
            );
            return Err(if mechanisms(addr, tls, attempt).await == Some(Vec::new()) {
                no_sasl(format!("{refused}, and offers none when asked which it has"))
            } else {
                Outcome::Fatal(format!("{addr}: {refused} (set sasl= or sasl.mechanism)"))
            });
        }
        code => return Err(Outcome::Fatal(format!("{addr}: SaslHandshake answered {}", error_name(code)))),
    }
    let v = pick(versions, ApiKey::SaslAuthenticate, SASL_AUTHENTICATE, addr)?;
    let (mut exchange, mut message) =
        Exchange::start(sasl).map_err(|e| Outcome::Fatal(format!("{addr}: {e}")))?;
    for _ in 0..4 {
        let request = SaslAuthenticateRequest::default().with_auth_bytes(message.into());
        let body = conn
            .call(attempt, ApiKey::SaslAuthenticate, v, &request)
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        let (error, text, reply) = wire::sasl_authenticate(&body, v)
            .map_err(|e| format!("{addr}: malformed SaslAuthenticate answer: {e}"))?;
        if error != 0 {
            let why = text.unwrap_or_default();
            return Err(Outcome::Fatal(if error == SASL_AUTHENTICATION_FAILED {
                format!(
                    "{addr}: SASL {mechanism} authentication failed for user '{}': {why} (check the user and {})",
                    sasl.user,
                    crate::security::PASSWORD_ENV
                )
            } else {
                format!(
                    "{addr}: SaslAuthenticate answered {}: {why}",
                    error_name(error)
                )
            }));
        }
        match exchange.step(&reply) {
            Ok(Step::Done) => return Ok(()),
            Ok(Step::Send(next)) => message = next,
            Err(e) => return Err(Outcome::Fatal(format!("{addr}: SASL {mechanism}: {e}"))),
        }
    }
    Err(Outcome::Fatal(format!(
        "{addr}: SASL {mechanism} did not finish"
    )))
}

/// How many missing topics a reason names.
const MISSING_NAMED: usize = 10;

/// Metadata for exactly the named topics, with auto-creation off: each must
/// exist and every partition have a leader. Before Metadata v4 auto-creation
/// cannot be turned off, so then all topics are asked for and filtered here.
async fn topics(
    conn: &mut Conn,
    attempt: &Attempt,
    version: i16,
    names: &[String],
) -> Result<String, String> {
    let listed: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
    let request = wire::metadata_request((version >= 4).then_some(&listed[..]), version);
    let body = conn
        .call_encoded(attempt, ApiKey::Metadata, version, version >= 9, &request)
        .await?;
    let found =
        wire::metadata(&body, version).map_err(|e| format!("malformed Metadata answer: {e}"))?;
    let exists = |name: &String| {
        found
            .topics
            .iter()
            .find(|t| t.name.as_deref() == Some(name) && t.error != UNKNOWN_TOPIC_OR_PARTITION)
    };
    // Every missing topic is named, so that one run says what to create;
    // at most MISSING_NAMED of them, so that the line stays a line.
    let missing: Vec<&String> = names.iter().filter(|n| exists(n).is_none()).collect();
    if let [name] = missing[..] {
        return Err(format!(
            "topic '{name}' does not exist (kwait never creates it)"
        ));
    }
    if !missing.is_empty() {
        let mut listed = missing
            .iter()
            .take(MISSING_NAMED)
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(", ");
        if missing.len() > MISSING_NAMED {
            listed.push_str(&format!(" and {} more", missing.len() - MISSING_NAMED));
        }
        return Err(format!(
            "{} topics do not exist: {listed} (kwait never creates them)",
            missing.len()
        ));
    }
    let mut seen = String::new();
    for name in names {
        let Some(topic) = exists(name) else {
            continue;
        };
        if topic.error != 0 {
            return Err(format!("topic '{name}': {}", error_name(topic.error)));
        }
        if topic.partitions.is_empty() {
            return Err(format!("topic '{name}' has no partitions yet"));
        }
        // The lowest-numbered partition without a leader is named.
        let leaderless = topic
            .partitions
            .iter()
            .filter(|p| p.leader < 0 || p.error != 0)
            .min_by_key(|p| p.index);
        if let Some(p) = leaderless {
            return Err(format!(
                "topic '{name}' partition {} has no leader ({})",
                p.index,
                if p.error != 0 {
                    error_name(p.error)
                } else {
                    format!("leader id {}", p.leader)
                }
            ));
        }
        seen.push_str(&format!(
            ", topic {name} ({} partitions led)",
            topic.partitions.len()
        ));
    }
    Ok(seen)
}

/// FindCoordinator for the consumer group `group`.
async fn coordinator(
    conn: &mut Conn,
    attempt: &Attempt,
    version: i16,
    group: &str,
) -> Result<i32, String> {
    let request = wire::find_coordinator_request(group, version);
    let body = conn
        .call_encoded(
            attempt,
            ApiKey::FindCoordinator,
            version,
            version >= 3,
            &request,
        )
        .await?;
    let (error, node) = wire::find_coordinator(&body, version)
        .map_err(|e| format!("malformed FindCoordinator answer: {e}"))?;
    match error {
        0 if node >= 0 => Ok(node),
        0 => Err(format!(
            "no coordinator for group '{group}' yet (node id {node})"
        )),
        COORDINATOR_NOT_AVAILABLE => Err(format!(
            "no coordinator for group '{group}' yet ({}): __consumer_offsets may not exist \
             yet; it is never created while the cluster has fewer brokers than \
             offsets.topic.replication.factor (default 3)",
            error_name(error)
        )),
        code => Err(format!(
            "no coordinator for group '{group}': {}",
            error_name(code)
        )),
    }
}

/// "COORDINATOR_NOT_AVAILABLE (15)": the names of the errors a readiness
/// check meets, as Kafka's protocol guide spells them (`Errors.java`).
pub(crate) fn error_name(code: i16) -> String {
    let name = match code {
        3 => "UNKNOWN_TOPIC_OR_PARTITION",
        5 => "LEADER_NOT_AVAILABLE",
        6 => "NOT_LEADER_OR_FOLLOWER",
        7 => "REQUEST_TIMED_OUT",
        8 => "BROKER_NOT_AVAILABLE",
        9 => "REPLICA_NOT_AVAILABLE",
        14 => "COORDINATOR_LOAD_IN_PROGRESS",
        15 => "COORDINATOR_NOT_AVAILABLE",
        16 => "NOT_COORDINATOR",
        17 => "INVALID_TOPIC_EXCEPTION",
        29 => "TOPIC_AUTHORIZATION_FAILED",
        30 => "GROUP_AUTHORIZATION_FAILED",
        31 => "CLUSTER_AUTHORIZATION_FAILED",
        33 => "UNSUPPORTED_SASL_MECHANISM",
        34 => "ILLEGAL_SASL_STATE",
        35 => "UNSUPPORTED_VERSION",
        41 => "NOT_CONTROLLER",
        42 => "INVALID_REQUEST",
        58 => "SASL_AUTHENTICATION_FAILED",
        72 => "LISTENER_NOT_FOUND",
        _ => return format!("error code {code}"),
    };
    format!("{name} ({code})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names() {
        assert_eq!(error_name(15), "COORDINATOR_NOT_AVAILABLE (15)");
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION (3)");
        assert_eq!(error_name(-32000), "error code -32000");
    }
}
