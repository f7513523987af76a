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
//! broker that did not answer a moment earlier. An endpoint whose host name
//! does not resolve counts as dead only when DNS says so for certain (no
//! such name): a temporary failure or a lookup that runs out of time cannot
//! tell a live broker from a dead one, so kwait refuses.
//!
//! Everything read from a znode is untrusted: the endpoints it lists are
//! bounded ([`MAX_ENDPOINTS`]), and its text reaches the log only through
//! [`shown`], on one line of bounded length.

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::json::{self, Value};
use crate::kafka::{presence, Presence};
use crate::log::since;
use crate::log::{info, warning};
use crate::net::Attempt;
use crate::net::HostPort;
use crate::probe::zk::Spec as Zk;
use crate::zk::{self, Session, Stat};

/// What to clean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: i32,
    pub dry_run: bool,
    /// When kwait started (parsed its command line): the removal is timed
    /// from there, the time a restarting broker's container waits.
    pub kwait_started: std::time::Instant,
}

/// How often a node that changes under kwait is looked at again.
const ROUNDS: usize = 3;

/// Most endpoints a registration may list. Each one is a liveness
/// connection; a broker has one per listener, a handful. A node listing more
/// is not one kwait understands, and it refuses (rather than open thousands
/// of connections because a znode says so).
const MAX_ENDPOINTS: usize = 16;

/// Most characters of znode text in one log line, per value.
const SHOWN: usize = 200;

/// One registered endpoint: `PLAINTEXT://kafka:9092`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    /// As registered, [`shown`] for the log.
    text: String,
    addr: HostPort,
    /// Registered as an SSL or SASL_SSL listener.
    tls: bool,
}

/// What a `/brokers/ids/<id>` node says, as much as kwait uses.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Registration {
    endpoints: Vec<Endpoint>,
    /// `"timestamp"` as written: Kafka's milliseconds since the epoch.
    timestamp: Option<String>,
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
            if items.len() > MAX_ENDPOINTS {
                return Err(format!(
                    "{} endpoints, more than the {MAX_ENDPOINTS} a broker's listeners need",
                    items.len()
                ));
            }
            for item in items {
                let text = item.as_str().ok_or("an endpoint is not a string")?;
                let (listener, hostport) = text.split_once("://").ok_or_else(|| {
                    format!("endpoint '{}' is not LISTENER://host:port", shown(text))
                })?;
                let addr = HostPort::parse(hostport, "endpoint")
                    .map_err(|e| crate::log::shown(&e, 2 * SHOWN))?;
                let protocol = protocols
                    .and_then(|m| m.get(listener))
                    .and_then(Value::as_str)
                    .unwrap_or(listener);
                endpoints.push(Endpoint {
                    text: shown(text),
                    addr,
                    tls: matches!(protocol, "SSL" | "SASL_SSL"),
                });
            }
        }
        if endpoints.is_empty() {
            let host = value.get("host").and_then(Value::as_str);
            let port = value.get("port").and_then(Value::as_i64);
            if let (Some(host), Some(port)) = (host, port) {
                let addr = HostPort::parse(&format!("{host}:{port}"), "endpoint")
                    .map_err(|e| crate::log::shown(&e, 2 * SHOWN))?;
                endpoints.push(Endpoint {
                    text: shown(&addr.to_string()),
                    addr,
                    tls: false,
                });
            }
        }
        if endpoints.is_empty() {
            return Err("no endpoints and no host/port".into());
        }
        let timestamp = match value.get("timestamp") {
            Some(Value::Number(t) | Value::String(t)) => Some(t.clone()),
            _ => None,
        };
        Ok(Registration {
            endpoints,
            timestamp,
        })
    }

    fn describe(&self, owner: i64) -> String {
        let eps = self
            .endpoints
            .iter()
            .map(|e| e.text.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let at = match &self.timestamp {
            Some(raw) => registered_at(raw),
            None => "unknown".into(),
        };
        format!("owner session 0x{owner:x}, endpoints {eps}, registered {at}")
    }
}

/// A registration's `"timestamp"` (milliseconds since the epoch) as a date,
/// or as written when it is none: RFC 3339 ends at year 9999, and a
/// negative or non-numeric timestamp is no date at all.
fn registered_at(raw: &str) -> String {
    let date = raw
        .parse::<u64>()
        .ok()
        .and_then(|ms| UNIX_EPOCH.checked_add(Duration::from_millis(ms)));
    if let Some(secs) = date.and_then(|d| d.duration_since(UNIX_EPOCH).ok()) {
        if let Some(text) = rfc3339(secs.as_secs()) {
            return text;
        }
    }
    format!("at timestamp {}", shown(raw))
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`, up to year 9999
/// (`None` beyond). Howard Hinnant's days-to-civil algorithm.
fn rfc3339(secs: u64) -> Option<String> {
    let days = i64::try_from(secs / 86_400).ok()?;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if year > 9999 {
        return None;
    }
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    ))
}

/// Znode text (a listener name, a host, `/controller`'s data) as it may go
/// into a log line: control and other unprintable characters escaped as
/// Rust's `escape_debug` writes them, so the line stays one line and forges
/// no other, and at most [`SHOWN`] characters, then an ellipsis.
fn shown(raw: &str) -> String {
    crate::log::shown(raw, SHOWN)
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
        let found = session.get_data(&path, &attempt).await;
        let mut controller = None;
        match &found {
            Ok(Some(_)) => match session.get_data("/controller", &attempt).await {
                Ok(c) => controller = c,
                Err(e) => warning!(
                    "could not read /controller ({e}): left as it is; if the dead session \
                     holds it, there is no controller until that session expires"
                ),
            },
            Ok(None) => absent(&mut session, zk, &path, &attempt).await,
            Err(_) => {}
        }
        // One close for every way out: it ends the session at once.
        session.close(&attempt).await;
        let found = found.map_err(|e| format!("reading {path}: {e}"))?;
        let Some((data, stat)) = found else {
            return Ok(());
        };
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
                    shown(String::from_utf8_lossy(data).trim())
                );
            }
            return Ok(());
        }

        // Compare and delete.
        let mut session = connect(zk, attempt_timeout).await?;
        let attempt = fresh(attempt_timeout);
        let removed = remove(&mut session, &path, &stat, &attempt).await;
        let mut controller = Ok(());
        if let Ok(Removed::Deleted) = removed {
            info!(
                "removed stale {path} ({desc}) {} after kwait started ({} cleaning)",
                since(req.kwait_started.elapsed()),
                since(started.elapsed())
            );
            if let Some((data, cstat)) = stale_controller {
                controller = remove(&mut session, "/controller", &cstat, &attempt)
                    .await
                    .map(|removed| match removed {
                        Removed::Deleted => info!(
                            "removed stale /controller ({}), owned by the same dead session 0x{:x}",
                            shown(String::from_utf8_lossy(&data).trim()),
                            cstat.ephemeral_owner
                        ),
                        _ => info!("/controller changed meanwhile: left alone"),
                    });
            }
        }
        session.close(&attempt).await;
        match removed? {
            Removed::Gone => info!(
                "{path} disappeared while kwait checked it (its session expired): nothing to clean"
            ),
            Removed::Changed => {
                info!("{path} changed while kwait checked it; looking again");
                continue;
            }
            Removed::Deleted => controller?,
        }
        return Ok(());
    }
    Err(format!(
        "{path} kept changing while kwait checked it ({ROUNDS} rounds): refusing to delete it"
    ))
}

/// Says why there is nothing at `path`, with the full path looked at (the
/// chroot's too). Two cases are worth more than "nothing": a chroot that
/// does not exist yet (a cluster Kafka has never started on), and a root
/// without `/brokers` that holds other nodes, where Kafka most likely keeps
/// its znodes under a chroot the target lacks. Those extra reads only
/// explain: when they fail, the plain line is all there is.
async fn absent(session: &mut Session, zk: &Zk, path: &str, attempt: &Attempt) {
    let full = format!("{}{path}", zk.chroot);
    // What the chroot (or the root) holds; `None`: the chroot is missing.
    let top = session.children("/", attempt).await;
    let chrooted = !zk.chroot.is_empty();
    let note = match top {
        Ok(None) if chrooted => {
            " (its chroot does not exist yet: Kafka creates it on its first start)"
        }
        _ => "",
    };
    info!("no registration at {full}{note}: nothing to clean");
    let Ok(Some(top)) = top else {
        return;
    };
    if chrooted || top.iter().any(|n| n == "brokers") {
        return;
    }
    // ZooKeeper keeps its own /zookeeper in every root.
    let mut others = top.iter().filter(|n| *n != "zookeeper");
    let Some(first) = others.next().map(|n| shown(n)) else {
        return;
    };
    warning!(
        "ZooKeeper's root has no /brokers, but other nodes (/{first}, {} in all): if Kafka's \
         zookeeper.connect ends in a chroot (host:2181/{first}?), put it in the target too \
         (zk://host:2181/{first})",
        others.count() + 1
    );
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
            // A name that did not resolve is "nothing there" only when DNS
            // said so: a temporary failure or a timeout says nothing.
            let unsure = matches!(found, Presence::Nothing(_)) && attempt.lookup_unsure();
            (endpoint, found, unsure)
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
    for (endpoint, found, unsure) in &results {
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
                     Kafka ({}); kwait cannot prove broker {id} is dead, so it does not delete",
                endpoint.text,
                shown(reason)
            ))
            }
            // A name that did not resolve for want of an answer.
            Presence::Nothing(reason) if *unsure => {
                return Err(format!(
                    "cannot tell whether broker {id} is alive at {} (registered in {path}): the \
                     lookup of {} failed temporarily ({}); not deleting",
                    endpoint.text,
                    shown(&endpoint.addr.host),
                    shown(reason)
                ))
            }
            Presence::Nothing(_) => {}
        }
    }
    for (endpoint, found, _) in results {
        if let Presence::Nothing(reason) = found {
            info!(
                "broker {id}'s registered endpoint {} does not answer ({})",
                endpoint.text,
                shown(&reason)
            );
        }
    }
    Ok(())
}

fn fresh(attempt_timeout: Duration) -> Attempt {
    Attempt::new(
        Instant::now() + attempt_timeout,
        crate::net::Limit::AttemptTimeout,
        0,
    )
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

/// The text of `--server-properties FILE`, read bounded (a server.properties
/// is a few KB; `/dev/zero` is a usage error, not PID 1's memory), decoded
/// as ISO 8859-1, as Java's `Properties.load(InputStream)` (Kafka's loader)
/// reads it, so no byte is an error.
pub fn read_server_properties(path: &Path) -> Result<String, String> {
    let bytes = crate::file::read(
        path,
        &format!("--server-properties {}", path.display()),
        "so not a Kafka server.properties; give the broker's config file",
    )?;
    Ok(bytes.into_iter().map(char::from).collect())
}

/// `broker.id` from a server.properties file, read as Java's
/// `Properties.load` reads it (Kafka loads its config with it): the *last*
/// assignment wins. The value is returned as written (Kafka trims it when
/// it parses the number).
pub fn broker_id_from_properties(text: &str) -> Option<String> {
    crate::properties::parse(text)
        .into_iter()
        .rev()
        .find(|(key, _)| key == "broker.id")
        .map(|(_, value)| value)
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
        assert_eq!(reg.timestamp.as_deref(), Some("1700000000000"));
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
            b"{\"host\":\"k\",\"port\":99999999999999999999}",
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
    fn registration_time_never_panics() {
        let at = |t: &str| {
            let data = format!(r#"{{"endpoints":["PLAINTEXT://k:1"],"timestamp":{t}}}"#);
            Registration::parse(data.as_bytes()).unwrap().describe(1)
        };
        assert!(at(r#""1700000000000""#).ends_with("registered 2023-11-14T22:13:20Z"));
        assert!(at("1700000000000").ends_with("registered 2023-11-14T22:13:20Z"));
        // The last second RFC 3339 can write, and the first it cannot.
        assert!(at(r#""253402300799999""#).ends_with("registered 9999-12-31T23:59:59Z"));
        for raw in [
            "253402300800000",
            "999999999999999999",
            "18446744073709551615",
            "99999999999999999999999",
            "-1",
            "-9223372036854775808",
            "1e400",
            "soon",
        ] {
            let line = at(&format!("\"{raw}\""));
            assert!(
                line.ends_with(&format!("registered at timestamp {raw}")),
                "{line}"
            );
        }
        assert!(at("null").ends_with("registered unknown"));
    }

    #[test]
    fn znode_text_is_shown_on_one_bounded_line() {
        assert_eq!(shown("PLAINTEXT://kafka:9092"), "PLAINTEXT://kafka:9092");
        assert_eq!(
            shown("a\nkwait: forged\r\u{1b}[31m\t\u{2028}\"\\'é"),
            "a\\nkwait: forged\\r\\u{1b}[31m\\t\\u{2028}\"\\'é"
        );
        let long = shown(&"x\n".repeat(1000));
        assert!(long.ends_with('…'), "{long}");
        assert!(long.chars().count() <= SHOWN + 1);
        assert!(!long.contains('\n'));
        // An escape is never cut in half.

        let reg = Registration::parse(
            format!(
                r#"{{"endpoints":["EVIL\nkwait: removed stale /brokers/ids/9 {}://k:1"],"timestamp":"x\u001b"}}"#,
                "y".repeat(5000)
            )
            .as_bytes(),
        )
        .unwrap();
        let line = reg.describe(1);
        assert!(
            !line.chars().any(char::is_control) && line.chars().count() < 3 * SHOWN,
            "{line}"
        );
        assert!(line.contains("EVIL\\nkwait: removed") && line.contains("x\\u{1b}"));
        // An error message quoting the znode is bounded too.
        let bad = format!(r#"{{"endpoints":["{}\n"]}}"#, "z".repeat(5000));
        let e = Registration::parse(bad.as_bytes()).unwrap_err();
        assert!(!e.contains('\n') && e.chars().count() < 3 * SHOWN, "{e}");
        let bad = format!(r#"{{"endpoints":["P://{}\n:1"]}}"#, "h".repeat(5000));
        let e = Registration::parse(bad.as_bytes()).unwrap_err();
        assert!(!e.contains('\n') && e.chars().count() < 3 * SHOWN, "{e}");
    }

    #[test]
    fn endpoints_are_bounded() {
        let listing = |n: usize| {
            let eps: Vec<String> = (1..=n).map(|p| format!("\"PLAINTEXT://k:{p}\"")).collect();
            format!(r#"{{"endpoints":[{}]}}"#, eps.join(","))
        };
        let reg = Registration::parse(listing(MAX_ENDPOINTS).as_bytes()).unwrap();
        assert_eq!(reg.endpoints.len(), MAX_ENDPOINTS);
        let e = Registration::parse(listing(MAX_ENDPOINTS + 1).as_bytes()).unwrap_err();
        assert!(e.contains("17 endpoints, more than the 16"), "{e}");
        let e = Registration::parse(listing(1000).as_bytes()).unwrap_err();
        assert!(e.contains("1000 endpoints"), "{e}");
    }

    #[test]
    fn properties() {
        // Java's Properties: the last assignment wins.
        let text = "# broker.id=9\nlog.dirs=/x\n  broker.id = 3\nbroker.id=4\n";
        assert_eq!(broker_id_from_properties(text).as_deref(), Some("4"));
        for (text, id) in [
            ("broker.id:5", Some("5")),
            ("broker.id 5", Some("5")),
            ("broker.id\t\t5\n", Some("5")),
            ("broker.id : 5", Some("5")),
            ("  broker.id   =   5   ", Some("5   ")),
            ("\x0cbroker.id=5", Some("5")),
            ("broker.id=5\n#broker.id=6\n!broker.id=7\n", Some("5")),
            ("broker.id=1\r\nbroker.id=2\r\n", Some("2")),
            ("broker.id=1\rbroker.id=2", Some("2")),
            // A continued line, its next line's leading blanks dropped.
            ("broker.id=1\\\n   2\n", Some("12")),
            ("broker.id=1\\\n", Some("1")),
            // An even number of backslashes ends the line.
            ("broker.id=1\\\\\nbroker.idx=2", Some("1\\")),
            // A comment's trailing backslash continues nothing.
            ("broker.id=1\n# note \\\nbroker.id=2", Some("2")),
            // Escapes in keys and values.
            ("broker\\.id=6", Some("6")),
            ("broker.\\u0069d=\\u0037", Some("7")),
            ("broker\\ id=8\nbroker.id=9", Some("9")),
            ("broker.id\\=x=1", None),
            ("broker.id", Some("")),
            ("broker.idx=1\nx.broker.id=2", None),
            ("x=1", None),
            ("", None),
        ] {
            assert_eq!(broker_id_from_properties(text).as_deref(), id, "{text:?}");
        }
    }

    #[test]
    fn server_properties_are_read_bounded() {
        let dir = std::env::temp_dir().join(format!("kwait-props-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("server.properties");
        let mut text = b"broker.id=\xe9 \n".to_vec();
        text.resize(1 << 20, b'#');
        std::fs::write(&path, &text).unwrap();
        assert!(read_server_properties(&path)
            .unwrap()
            .starts_with("broker.id=é"));
        text.push(b'\n');
        std::fs::write(&path, &text).unwrap();
        let e = read_server_properties(&path).unwrap_err();
        assert!(
            e.starts_with(&format!(
                "--server-properties {}: larger than 1 MiB",
                path.display()
            )) && !e.contains('\n'),
            "{e}"
        );
        // A device or a FIFO could block the read forever: refused.
        let e = read_server_properties(Path::new("/dev/zero")).unwrap_err();
        assert!(e.contains("is a character device"), "{e}");
        let fifo = dir.join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let e = read_server_properties(&fifo).unwrap_err();
        assert!(e.contains("is a FIFO or pipe"), "{e}");
        let e = read_server_properties(&dir.join("missing")).unwrap_err();
        assert!(e.contains("cannot read it"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
