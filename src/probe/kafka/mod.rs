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

mod spec;

pub use self::spec::{parse, Check, Spec};

use kafka_protocol::messages::ApiKey;

use super::Outcome;
use crate::kafka::wire::{self, Conn, Metadata};
use crate::kafka::{closed_on_metadata, error_name, open, open_from, pick, API_VERSIONS};
use crate::net::{Attempt, Cause, HostPort};
use crate::security::Security;

const METADATA: (i16, i16) = (1, 12);
const FIND_COORDINATOR: (i16, i16) = (1, 4);
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;

pub async fn check(spec: &Spec, attempt: &Attempt) -> Outcome {
    match ready(spec, attempt).await {
        Ok(seen) => Outcome::Ready(seen),
        Err(unready) => unready,
    }
}

async fn ready(spec: &Spec, attempt: &Attempt) -> Result<String, Outcome> {
    let hosts = attempt.rotation(&spec.bootstrap);
    let outcome = super::race::first_ready(hosts, &|addr| {
        Box::pin(async move {
            match rungs(spec, addr, attempt).await {
                Ok(seen) => Outcome::Ready(seen),
                Err(outcome) => outcome,
            }
        })
    })
    .await;
    match outcome {
        Outcome::Ready(seen) => Ok(seen),
        unready => Err(unready),
    }
}

/// Every rung, through one bootstrap address.
async fn rungs(spec: &Spec, addr: &HostPort, attempt: &Attempt) -> Result<String, Outcome> {
    let (mut conn, versions, answered) =
        open_from(addr, &spec.security, attempt, API_VERSIONS.1).await?;

    let version = pick(&versions, ApiKey::Metadata, METADATA, addr)?;
    let request = wire::metadata_request(Some(&[]), version);
    let body = match conn
        .call_encoded(attempt, ApiKey::Metadata, version, version >= 9, &request)
        .await
    {
        Ok(body) => body,
        Err(e) if spec.security.sasl.is_none() && e.cause == Cause::Closed => {
            return Err(closed_on_metadata(addr, &spec.security, &e.text, attempt).await)
        }
        Err(e) => return Err(Outcome::NotReady(format!("{addr}: {e}"))),
    };
    let cluster = wire::metadata(&body, version)
        .map_err(|e| format!("{addr}: malformed Metadata answer: {e}"))?;

    let ids = broker_ids(&cluster);
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
    advertised(&cluster, addr, answered, &spec.security, attempt).await?;

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

/// The listed brokers' ids, "1, 2, 3", for messages.
fn broker_ids(cluster: &Metadata) -> String {
    cluster
        .brokers
        .iter()
        .map(|b| b.id.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// How many advertised-listener checks run at once.
const ADVERTISED_AT_ONCE: usize = 16;

/// Every broker the cluster lists must answer at its advertised address.
/// Clients connect there after bootstrapping, so a broker that answers only
/// at its bootstrap address is no use to them.
///
/// The bootstrap connection already proves the broker advertised at the
/// very address it went to (`bootstrap`, as written): that one is not asked
/// again. The others are asked ApiVersions at `answered`, the version the
/// bootstrap broker took, so an old cluster's KIP-511 fallback is not
/// repeated on every connection.
async fn advertised(
    cluster: &Metadata,
    bootstrap: &HostPort,
    answered: i16,
    security: &Security,
    attempt: &Attempt,
) -> Result<(), Outcome> {
    let mut checks = tokio::task::JoinSet::new();
    let mut pending = cluster.brokers.iter().filter(|b| {
        !(b.host.eq_ignore_ascii_case(&bootstrap.host) && b.port == i32::from(bootstrap.port))
    });
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
                    Some(addr) => open_from(&addr, &security, &attempt, answered)
                        .await
                        .map(|_| ()),
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
    let ids = broker_ids(cluster);
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
