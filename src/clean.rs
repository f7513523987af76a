//! `--clean-stale-broker`: remove this broker's registration left in
//! ZooKeeper by a session that died with it, before Kafka starts and dies of
//! `NodeExistsException at /brokers/ids/<id>`. The only step that deletes.
//!
//! The rules (DESIGN.md; research/kafka-zookeeper-semantics.md §2.4):
//! absent node, nothing to do; a persistent node, JSON it cannot read, or a
//! registered endpoint where anything answers, refuse; otherwise re-read,
//! require the same czxid and owner session, and delete with the stat's
//! version, plus `/controller` when the same dead session owns it. Never
//! `/controller_epoch`. ZooKeeper's conditional delete checks only the data
//! version, so a registration created in the one round trip between the
//! re-read and the delete could still be removed; the liveness check and
//! "only our own id, before our broker starts" make that a duplicate-id
//! broker that did not answer a moment earlier.

use std::time::{Duration, UNIX_EPOCH};

use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::json::{self, Value};
use crate::log::info;
use crate::probe::kafka::{presence, Presence};
use crate::probe::Attempt;
use crate::target::{HostPort, Zk};
use crate::wait::since;
use crate::zk::{self, Session, Stat};

/// What to clean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: i32,
    pub dry_run: bool,
}

/// How often a node that changes under kwait is looked at again.
const ROUNDS: usize = 3;

/// One registered endpoint: `PLAINTEXT://kafka:9092`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    text: String,
    addr: HostPort,
    /// Registered as an SSL or SASL_SSL listener.
    tls: bool,
}

/// What a `/brokers/ids/<id>` node says, as much as kwait uses.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Registration {
    endpoints: Vec<Endpoint>,
    timestamp_ms: Option<i64>,
}

impl Registration {
    /// Kafka's `BrokerIdZNode` JSON: `endpoints` (listener://host:port),
    /// falling back to `host`/`port` for versions before listeners.
    fn parse(data: &[u8]) -> Result<Registration, String> {
        let text = std::str::from_utf8(data).map_err(|_| "not UTF-8".to_string())?;
        let value = json::parse(text)?;
        if !matches!(value, Value::Object(_)) {
            return Err("not a JSON object".into());
        }
        let mut endpoints = Vec::new();
        let protocols = value.get("listener_security_protocol_map");
        if let Some(Value::Array(items)) = value.get("endpoints") {
            for item in items {
                let text = item.as_str().ok_or("an endpoint is not a string")?;
                let (listener, hostport) = text
                    .split_once("://")
                    .ok_or_else(|| format!("endpoint '{text}' is not LISTENER://host:port"))?;
                let addr = HostPort::parse(hostport, "endpoint")?;
                let protocol = protocols
                    .and_then(|m| m.get(listener))
                    .and_then(Value::as_str)
                    .unwrap_or(listener);
                endpoints.push(Endpoint {
                    text: text.to_string(),
                    addr,
                    tls: matches!(protocol, "SSL" | "SASL_SSL"),
                });
            }
        }
        if endpoints.is_empty() {
            let host = value.get("host").and_then(Value::as_str);
            let port = value.get("port").and_then(Value::as_i64);
            if let (Some(host), Some(port)) = (host, port) {
                let addr = HostPort::parse(&format!("{host}:{port}"), "endpoint")?;
                endpoints.push(Endpoint {
                    text: addr.to_string(),
                    addr,
                    tls: false,
                });
            }
        }
        if endpoints.is_empty() {
            return Err("no endpoints and no host/port".into());
        }
        Ok(Registration {
            endpoints,
            timestamp_ms: value.get("timestamp").and_then(Value::as_i64),
        })
    }

    fn describe(&self, owner: i64) -> String {
        let eps = self
            .endpoints
            .iter()
            .map(|e| e.text.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let at = match self.timestamp_ms.and_then(|ms| u64::try_from(ms).ok()) {
            Some(ms) => humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms))
                .to_string(),
            None => "unknown".into(),
        };
        format!("owner session 0x{owner:x}, endpoints {eps}, registered {at}")
    }
}

/// Removes broker `req.id`'s stale registration, or explains why not.
/// `Err` is a refusal or a failure: exit 1, COMMAND not started.
pub async fn stale_broker(zk: &Zk, req: &Request, attempt_timeout: Duration) -> Result<(), String> {
    let started = Instant::now();
    let path = format!("/brokers/ids/{}", req.id);
    for _ in 0..ROUNDS {
        // Look.
        let mut session = connect(zk, attempt_timeout).await?;
        let attempt = fresh(attempt_timeout);
        let found = session
            .get_data(&path, &attempt)
            .await
            .map_err(|e| format!("reading {path}: {e}"))?;
        let Some((data, stat)) = found else {
            session.close(&attempt).await;
            info!("no registration at {path}: nothing to clean");
            return Ok(());
        };
        let controller = session
            .get_data("/controller", &attempt)
            .await
            .unwrap_or(None);
        session.close(&attempt).await;
        if stat.ephemeral_owner == 0 {
            return Err(format!(
                "{path} is a persistent znode, not a broker's session registration: \
                 refusing to delete it (who created it by hand?)"
            ));
        }
        let registration = Registration::parse(&data).map_err(|e| {
            format!(
                "{path} holds data kwait cannot read as a broker registration ({e}): \
                 refusing to delete what it does not understand; inspect it with zkCli.sh get {path}"
            )
        })?;
        let desc = registration.describe(stat.ephemeral_owner);

        // Is anything alive there?
        check_dead(&registration, req.id, &path, attempt_timeout).await?;
        let stale_controller =
            controller.filter(|(_, c)| c.ephemeral_owner == stat.ephemeral_owner);
        if req.dry_run {
            info!("--dry-run: would remove stale {path} ({desc})");
            if let Some((data, _)) = &stale_controller {
                info!(
                    "--dry-run: would remove /controller ({}), owned by the same dead session",
                    String::from_utf8_lossy(data).trim()
                );
            }
            return Ok(());
        }

        // Compare and delete.
        let mut session = connect(zk, attempt_timeout).await?;
        let attempt = fresh(attempt_timeout);
        match remove(&mut session, &path, &stat, &attempt).await? {
            Removed::Gone => {
                session.close(&attempt).await;
                info!("{path} disappeared while kwait checked it (its session expired): nothing to clean");
                return Ok(());
            }
            Removed::Changed => {
                session.close(&attempt).await;
                info!("{path} changed while kwait checked it; looking again");
                continue;
            }
            Removed::Deleted => info!(
                "removed stale {path} ({desc}) {} after kwait started cleaning",
                since(started.elapsed())
            ),
        }
        if let Some((data, cstat)) = stale_controller {
            match remove(&mut session, "/controller", &cstat, &attempt).await {
                Ok(Removed::Deleted) => info!(
                    "removed stale /controller ({}), owned by the same dead session 0x{:x}",
                    String::from_utf8_lossy(&data).trim(),
                    cstat.ephemeral_owner
                ),
                Ok(_) => info!("/controller changed meanwhile: left alone"),
                Err(e) => {
                    session.close(&attempt).await;
                    return Err(e);
                }
            }
        }
        session.close(&attempt).await;
        return Ok(());
    }
    Err(format!(
        "{path} kept changing while kwait checked it ({ROUNDS} rounds): refusing to delete it"
    ))
}

enum Removed {
    Deleted,
    Gone,
    Changed,
}

/// Deletes `path` only if it is still the node `seen` described: same
/// creation (czxid) and owner, deleted at its current data version.
async fn remove(
    session: &mut Session,
    path: &str,
    seen: &Stat,
    attempt: &Attempt,
) -> Result<Removed, String> {
    let now = match session.get_data(path, attempt).await {
        Ok(Some((_, now))) => now,
        Ok(None) => return Ok(Removed::Gone),
        Err(e) => return Err(format!("re-reading {path}: {e}")),
    };
    if now.czxid != seen.czxid || now.ephemeral_owner != seen.ephemeral_owner {
        return Ok(Removed::Changed);
    }
    match session.delete(path, now.version, attempt).await {
        Ok(()) => Ok(Removed::Deleted),
        Err(zk::Error::Server(zk::NO_NODE)) => Ok(Removed::Gone),
        Err(zk::Error::Server(zk::BAD_VERSION)) => Ok(Removed::Changed),
        Err(zk::Error::Server(zk::NO_AUTH)) => Err(format!(
            "ZooKeeper refused to delete {path} (NoAuth): its znodes are ACL-protected \
             (zookeeper.set.acl=true) and kwait does not authenticate to ZooKeeper; \
             remove it as Kafka's principal, or wait for the session to expire"
        )),
        Err(e) => Err(format!("deleting {path}: {e}")),
    }
}

/// Refuses unless nothing answers at any registered endpoint.
async fn check_dead(
    reg: &Registration,
    id: i32,
    path: &str,
    attempt_timeout: Duration,
) -> Result<(), String> {
    let mut probes = JoinSet::new();
    let unverified = if reg.endpoints.iter().any(|e| e.tls) {
        Some(crate::tls::Config::unverified())
    } else {
        None
    };
    for endpoint in &reg.endpoints {
        let endpoint = endpoint.clone();
        let attempt = fresh(attempt_timeout);
        let tls = match (&unverified, endpoint.tls) {
            (Some(Ok(config)), true) => Some(config.clone()),
            // A TLS listener kwait cannot speak to: it cannot prove it dead.
            (Some(Err(e)), true) => {
                return Err(format!(
                    "{} is a TLS listener ({e}): kwait cannot prove broker {id} is dead, so it does not delete {path}",
                    endpoint.text
                ))
            }
            _ => None,
        };
        probes.spawn(async move {
            let found = presence(&endpoint.addr, tls.as_ref(), &attempt).await;
            (endpoint, found)
        });
    }
    let mut results = Vec::new();
    while let Some(joined) = probes.join_next().await {
        if let Ok(result) = joined {
            results.push(result);
        }
    }
    if results.len() != reg.endpoints.len() {
        return Err(format!(
            "could not check every endpoint of {path}: refusing to delete it"
        ));
    }
    for (endpoint, found) in &results {
        match found {
            Presence::Kafka => {
                return Err(format!(
                    "a live broker holds id {id}: it answers Kafka at {} (registered in {path}); \
                     two brokers with broker.id={id}? not deleting",
                    endpoint.text
                ))
            }
            Presence::Unknown(reason) => {
                return Err(format!(
                    "something accepts connections at {}, registered in {path}, but does not answer \
                     Kafka ({reason}); kwait cannot prove broker {id} is dead, so it does not delete",
                    endpoint.text
                ))
            }
            Presence::Nothing(_) => {}
        }
    }
    for (endpoint, found) in results {
        if let Presence::Nothing(reason) = found {
            info!(
                "broker {id}'s registered endpoint {} does not answer ({reason})",
                endpoint.text
            );
        }
    }
    Ok(())
}

fn fresh(attempt_timeout: Duration) -> Attempt {
    Attempt::new(Instant::now() + attempt_timeout, "--attempt-timeout", 0)
}

/// A session with the first host that gives one.
async fn connect(zk: &Zk, attempt_timeout: Duration) -> Result<Session, String> {
    let mut last = String::from("no ZooKeeper host");
    for host in &zk.hosts {
        match Session::connect(host, &zk.chroot, &fresh(attempt_timeout)).await {
            Ok(session) => return Ok(session),
            Err(e) => last = e,
        }
    }
    Err(format!(
        "cannot open a ZooKeeper session for cleaning: {last}"
    ))
}

/// `broker.id` from a server.properties file (Java properties: `key=value`
/// or `key: value`, `#`/`!` comments).
pub fn broker_id_from_properties(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with('!'))
        .find_map(|l| {
            let (key, value) = l.split_once(['=', ':'])?;
            (key.trim() == "broker.id").then(|| value.trim().to_string())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrations() {
        let reg = Registration::parse(
            br#"{"features":{},"listener_security_protocol_map":{"PLAINTEXT":"PLAINTEXT"},"endpoints":["PLAINTEXT://kafka:29092","EXTERNAL://[::1]:9092"],"jmx_port":-1,"host":"kafka","port":29092,"timestamp":"1700000000000","version":5}"#,
        )
        .unwrap();
        assert_eq!(reg.endpoints.len(), 2);
        assert_eq!(reg.endpoints[1].addr.host, "::1");
        assert_eq!(reg.timestamp_ms, Some(1_700_000_000_000));
        assert!(
            reg.describe(0x1234).contains("0x1234")
                && reg.describe(1).contains("2023-11-14T22:13:20Z")
        );
        let old = Registration::parse(
            br#"{"jmx_port":-1,"timestamp":"1","host":"k","version":1,"port":9092}"#,
        )
        .unwrap();
        assert_eq!(old.endpoints[0].text, "k:9092");
        for bad in [
            &b"garbage"[..],
            b"{}",
            b"[]",
            b"{\"endpoints\":[1]}",
            b"{\"endpoints\":[\"k:1\"]}",
            b"\xff",
        ] {
            assert!(
                Registration::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn properties() {
        let text = "# broker.id=9\nlog.dirs=/x\n  broker.id = 3\nbroker.id=4\n";
        assert_eq!(broker_id_from_properties(text).as_deref(), Some("3"));
        assert_eq!(
            broker_id_from_properties("broker.id:5").as_deref(),
            Some("5")
        );
        assert_eq!(broker_id_from_properties("x=1"), None);
    }
}
