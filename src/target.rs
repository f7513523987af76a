//! Target URLs, parsed once into typed values (`FromStr`).
//!
//! Parsing is the only place a target's syntax is judged: a bad target is a
//! usage error (exit 2) before anything connects. Names are not resolved
//! here: in compose networks a service name resolves only once its container
//! exists, so DNS belongs to each attempt.

use std::fmt;

pub use crate::net::HostPort;

use crate::security::{self, Security};

/// Which question a `kafka://` target asks (`check=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Is the cluster usable from here: every listed broker answers at its
    /// advertised address (an app's wait; the default).
    Cluster,
    /// Does this broker serve, and does its own advertised address answer
    /// (a broker's HEALTHCHECK, a broker pod's readiness): other brokers
    /// are not contacted.
    Broker,
}

/// What `kafka://` asks of a cluster beyond answering, and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kafka {
    pub bootstrap: Vec<HostPort>,
    pub check: Check,
    pub min_brokers: usize,
    pub topics: Vec<String>,
    pub group: Option<String>,
    pub security: Security,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Http {
    pub addr: HostPort,
    /// Path and query, always starting with '/'.
    pub path: String,
    /// For https://: the built-in trust roots.
    pub tls: Option<crate::tls::Config>,
}

/// A ZooKeeper ensemble, as in Kafka's `zookeeper.connect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zk {
    pub hosts: Vec<HostPort>,
    /// The chroot path ("/kafka"), or empty for none.
    pub chroot: String,
    /// Set on the target `--clean-stale-broker` cleans (by the command
    /// line, never by the URL): there a chroot that does not exist is a
    /// cluster Kafka has never started on, since Kafka creates its chroot on
    /// its first start. It is ready then, with nothing to clean; a plain
    /// wait still waits for the chroot.
    pub missing_chroot_ok: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Kafka(Kafka),
    Zk(Zk),
    Tcp(HostPort),
    Http(Http),
}

/// One thing to wait for: its parsed form and the text the user wrote,
/// which is how logs name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: Kind,
    text: String,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

const SCHEMES: &str = "kafka://, zk://, tcp://, http:// or https://";

impl Target {
    /// Parses one target as the user wrote it. What it leaves unsafe or
    /// unread (`tls-verify=false`, keys of a config= file kwait ignores)
    /// goes into `warnings`, for the caller to print once.
    pub fn parse(raw: &str, warnings: &mut Vec<String>) -> Result<Target, String> {
        // Errors and logs echo the target; a password must not ride along.
        let shown = security::redact(raw);
        let s = shown.as_str();
        let Some((scheme, rest)) = raw.split_once("://") else {
            return Err(format!(
                "target '{s}' has no scheme: write kafka://{s} or tcp://{s} ({SCHEMES})"
            ));
        };
        // How every error names this target (a pasted 100 KB one, once and
        // shortened).
        let what = &format!("target '{}'", crate::log::shown(s, 200));
        let lower = scheme.to_ascii_lowercase();
        if let Some(tail) = listener_hint(&lower) {
            let shown_rest = crate::log::shown(&shown[scheme.len() + 3..], 200);
            return Err(format!(
                "{what}: {scheme}:// is a Kafka listener's security protocol, not a target scheme: \
                 write kafka://{shown_rest}{tail}"
            ));
        }
        if rest.contains('#') && matches!(lower.as_str(), "http" | "https") {
            return Err(format!(
                "{what}: a #fragment is never sent to the server; remove it from the URL"
            ));
        }
        let kind = match lower.as_str() {
            "kafka" => Kind::Kafka(parse_kafka(what, rest, warnings)?),
            "tcp" => {
                no_userinfo(what, rest)?;
                let addr = rest.trim_end_matches('/');
                if addr.contains(['/', '?']) {
                    return Err(format!("{what}: tcp:// takes only host:port"));
                }
                Kind::Tcp(HostPort::parse(addr, what)?)
            }
            "http" => Kind::Http(parse_http(what, rest, 80)?),
            "https" => {
                let tls =
                    crate::tls::Config::default_roots().map_err(|e| format!("{what}: {e}"))?;
                Kind::Http(Http {
                    tls: Some(tls),
                    ..parse_http(what, rest, 443)?
                })
            }
            "zk" | "zookeeper" => Kind::Zk(parse_zk(what, rest)?),
            other => return Err(format!("{what}: unknown scheme '{other}' (use {SCHEMES})")),
        };
        Ok(Target {
            kind,
            text: s.to_string(),
        })
    }
}

/// For a Kafka listener protocol written as a scheme (`PLAINTEXT://kafka:9092`,
/// copied from `advertised.listeners`): what to add to kafka:// instead.
fn listener_hint(scheme: &str) -> Option<&'static str> {
    match scheme {
        "plaintext" => Some(""),
        "ssl" => Some("?tls=true"),
        "sasl_plaintext" => Some("?sasl=MECHANISM&user=NAME"),
        "sasl_ssl" => Some("?tls=true&sasl=MECHANISM&user=NAME"),
        _ => None,
    }
}

/// `host:port[,host:port...]`, with an empty entry (`a:1,,b:2`, a comma at
/// the end) named as what it is.
fn host_list(what: &str, hosts: &str) -> Result<Vec<HostPort>, String> {
    hosts
        .split(',')
        .map(|hp| {
            if hp.trim().is_empty() {
                Err(format!(
                    "{what}: an empty address in the list '{}' (two commas, or one at an end?)",
                    crate::log::shown(hosts, 200)
                ))
            } else {
                HostPort::parse(hp, what)
            }
        })
        .collect()
}

fn parse_kafka(what: &str, rest: &str, warnings: &mut Vec<String>) -> Result<Kafka, String> {
    let (hosts, query) = match rest.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (rest, None),
    };
    let hosts = hosts.trim_end_matches('/');
    if hosts.contains('@') {
        return Err(format!(
            "{what}: credentials do not go in the URL (they would show in ps and logs): \
             use user=NAME and the password in {} or password-file=PATH",
            security::PASSWORD_ENV
        ));
    }
    if hosts.contains('/') {
        return Err(format!(
            "{what}: kafka:// takes host:port[,host:port...] with no path"
        ));
    }
    let bootstrap = host_list(what, hosts)?;
    let mut kafka = Kafka {
        bootstrap,
        check: Check::Cluster,
        min_brokers: 1,
        topics: Vec::new(),
        group: None,
        security: Security::default(),
    };
    let mut secure = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        // Two values for one key: which one was meant? Neither wins.
        if seen.contains(&key) {
            return Err(format!("{what}: {key}= is given twice; keep one"));
        }
        seen.push(key);
        match key {
            "check" => {
                kafka.check = match value {
                    "cluster" => Check::Cluster,
                    "broker" => Check::Broker,
                    _ => {
                        return Err(format!(
                            "{what}: check= is 'cluster' (every listed broker answers from here; the default) \
                             or 'broker' (this broker and its own advertised address), not '{value}'"
                        ))
                    }
                };
            }
            "min-brokers" => {
                let n = value.parse::<usize>().ok();
                kafka.min_brokers = n.filter(|n| (1..=100_000).contains(n)).ok_or_else(|| {
                    format!(
                        "{what}: min-brokers must be a whole number \
                         from 1 to 100000, not '{value}'"
                    )
                })?;
            }
            "topics" => {
                for topic in value.split(',') {
                    if !valid_topic(topic) {
                        return Err(format!(
                            "{what}: invalid topic name '{topic}' in topics= (letters, digits, '.', '_', '-'; at most 249)"
                        ));
                    }
                    kafka.topics.push(topic.to_string());
                }
            }
            "group" => {
                if value.is_empty() || value.len() > 32_767 {
                    return Err(format!("{what}: group= needs a consumer group name"));
                }
                kafka.group = Some(value.to_string());
            }
            // `?Password=` too: tell where a password goes (it is never
            // echoed: `s` is redacted).
            key if key.eq_ignore_ascii_case("password") => {
                return Err(format!(
                    "{what}: a password does not go in the URL (it would show in ps and logs): \
                     set {} or use password-file=PATH",
                    security::PASSWORD_ENV
                ))
            }
            key if security::PARAMS.contains(&key) => {
                secure.push((key.to_string(), value.to_string()))
            }
            other => {
                return Err(format!(
                    "{what}: unknown parameter '{other}' (known: check, min-brokers, topics, group, {})",
                    security::PARAMS.join(", ")
                ))
            }
        }
    }
    if kafka.check == Check::Broker {
        // A broker's own health must not depend on other brokers: that is
        // what check=broker is for.
        if kafka.bootstrap.len() > 1 {
            return Err(format!(
                "{what}: check=broker checks one broker: give its one address (localhost:9092 in its own container)"
            ));
        }
        if let Some(option) = [
            (seen.contains(&"min-brokers"), "min-brokers="),
            (!kafka.topics.is_empty(), "topics="),
            (kafka.group.is_some(), "group="),
        ]
        .iter()
        .find_map(|(given, name)| given.then_some(*name))
        {
            return Err(format!(
                "{what}: {option} depends on other brokers, which check=broker leaves out: \
                 drop it, or use check=cluster (the default)"
            ));
        }
    }
    kafka.security = security::resolve(&secure, what, warnings)?;
    Ok(kafka)
}

/// Kafka's own rule (`Topic.validate`): 1 to 249 of `[a-zA-Z0-9._-]`.
fn valid_topic(name: &str) -> bool {
    (1..=249).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn parse_zk(what: &str, rest: &str) -> Result<Zk, String> {
    if rest.contains('?') {
        return Err(format!("{what}: zk:// takes no parameters"));
    }
    let (hosts, chroot) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    no_userinfo(what, hosts)?;
    let hosts = host_list(what, hosts)?;
    let chroot = chroot.trim_end_matches('/');
    if chroot
        .split('/')
        .skip(1)
        .any(|seg| seg.is_empty() || seg == "." || seg == ".." || seg.chars().any(char::is_control))
    {
        return Err(format!(
            "{what}: invalid chroot '{chroot}' (write /path/to/chroot, no empty, '.' or '..' parts)"
        ));
    }
    Ok(Zk {
        hosts,
        chroot: chroot.to_string(),
        missing_chroot_ok: false,
    })
}

/// Refuses `user:secret@` in an authority before anything else reads it, so
/// that no error can echo the secret (kafka:// says where credentials go).
fn no_userinfo(what: &str, rest: &str) -> Result<(), String> {
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    if !rest[..end].contains('@') {
        return Ok(());
    }
    Err(format!(
        "{what}: credentials in the URL are not supported (they would show in ps and logs)"
    ))
}

fn parse_http(what: &str, rest: &str, default_port: u16) -> Result<Http, String> {
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    no_userinfo(what, authority)?;
    let addr = if authority.ends_with(']') || !authority.contains(':') {
        HostPort::parse(&format!("{authority}:{default_port}"), what)?
    } else {
        HostPort::parse(authority, what)?
    };
    if path.chars().any(|c| c.is_ascii_control() || c == ' ') {
        return Err(format!("{what}: the path has spaces or control characters"));
    }
    let path = match path {
        "" => "/".to_string(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.split('#').next().unwrap_or("/").to_string(),
    };
    Ok(Http {
        addr,
        path,
        tls: None,
    })
}

/// For tests: a parse whose warnings nobody reads.
#[cfg(test)]
impl std::str::FromStr for Target {
    type Err = String;

    fn from_str(raw: &str) -> Result<Target, String> {
        Target::parse(raw, &mut Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kafka(s: &str) -> Kafka {
        match s.parse::<Target>().unwrap().kind {
            Kind::Kafka(k) => k,
            other => panic!("not kafka: {other:?}"),
        }
    }

    #[test]
    fn kafka_targets() {
        let k = kafka("kafka://a:9092,b:9093?min-brokers=3&topics=orders,payments&group=g1");
        assert_eq!(k.bootstrap.len(), 2);
        assert_eq!(k.bootstrap[1].to_string(), "b:9093");
        assert_eq!(k.min_brokers, 3);
        assert_eq!(k.topics, ["orders", "payments"]);
        assert_eq!(k.group.as_deref(), Some("g1"));
        assert_eq!(k.check, Check::Cluster);
        let k = kafka("kafka://[::1]:9092");
        assert_eq!(k.bootstrap[0].host, "::1");
        assert_eq!(k.min_brokers, 1);
        assert_eq!(
            kafka("kafka://localhost:9092?check=broker").check,
            Check::Broker
        );
        assert_eq!(kafka("kafka://a:1,b:2?check=cluster").check, Check::Cluster);
    }

    #[test]
    fn zk_targets() {
        let t: Target = "zk://z1:2181,z2:2182/kafka/prod".parse().unwrap();
        let Kind::Zk(zk) = t.kind else { panic!() };
        assert_eq!(zk.hosts.len(), 2);
        assert_eq!(zk.chroot, "/kafka/prod");
        let t: Target = "zk://z1:2181/".parse().unwrap();
        let Kind::Zk(zk) = t.kind else { panic!() };
        assert_eq!(zk.chroot, "");
        for bad in [
            "zk://z1",
            "zk://z1:2181/a//b",
            "zk://z1:2181/a/../b",
            "zk://z:1?x=1",
        ] {
            assert!(bad.parse::<Target>().is_err(), "{bad}");
        }
    }

    #[test]
    fn http_targets() {
        let t: Target = "http://localhost:8000/health?x=1".parse().unwrap();
        assert_eq!(
            t.kind,
            Kind::Http(Http {
                addr: HostPort::parse("localhost:8000", "t").unwrap(),
                path: "/health?x=1".into(),
                tls: None,
            })
        );
        let t: Target = "http://app".parse().unwrap();
        match t.kind {
            Kind::Http(h) => {
                assert_eq!(h.addr.port, 80);
                assert_eq!(h.path, "/");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_password_parameter_in_any_case_says_where_passwords_go() {
        for key in ["password", "Password", "PASSWORD", "passWord"] {
            let input = format!("kafka://b:1?user=u&{key}=hunter2");
            let err = input.parse::<Target>().unwrap_err();
            assert!(
                err.contains("a password does not go in the URL")
                    && err.contains("KWAIT_KAFKA_PASSWORD")
                    && err.contains("password-file=PATH"),
                "{input}: {err}"
            );
            assert!(!err.contains("hunter2"), "{input}: {err}");
        }
    }

    #[test]
    fn errors_name_the_bad_value() {
        for (input, needle) in [
            ("kafka://broker", "missing port"),
            ("kafka://broker:0", "invalid port '0'"),
            ("kafka://broker:99999", "invalid port '99999'"),
            ("kafka://b:1?min-brokers=x", "'x'"),
            ("kafka://b:1?min-brokers=0", "'0'"),
            ("kafka://b:1?topic=a", "unknown parameter 'topic'"),
            ("kafka://b:1?check=self", "not 'self'"),
            ("kafka://a:1,b:2?check=broker", "checks one broker"),
            (
                "kafka://b:1?check=broker&min-brokers=3",
                "min-brokers= depends on other brokers",
            ),
            (
                "kafka://b:1?topics=t&check=broker",
                "topics= depends on other brokers",
            ),
            (
                "kafka://b:1?check=broker&group=g",
                "group= depends on other brokers",
            ),
            ("kafka://b:1?topics=a,,b", "invalid topic name ''"),
            ("kafka://b:1?topics=a b", "invalid topic name 'a b'"),
            ("kafka://::1:9092", "needs brackets"),
            ("nosuch://x:1", "unknown scheme 'nosuch'"),
            ("broker:9092", "no scheme"),
            ("kafka://u:p@b:1", "credentials do not go in the URL"),
            ("kafka://b:1?password=x", "KWAIT_KAFKA_PASSWORD"),
            ("kafka://b:1?password=hunter2&bogus=1", "password=***"),
            ("kafka://b:1?sasl=GSSAPI&user=u", "not supported"),
            #[cfg(feature = "tls")]
            ("kafka://b:1?ca=/nonexistent", "cannot read"),
            // A build without TLS says so rather than read what it cannot use.
            #[cfg(not(feature = "tls"))]
            ("kafka://b:1?ca=/nonexistent", "needs kwait's tls feature"),
            ("tcp://x", "missing port"),
            ("tcp://:80", "missing host"),
            ("http://u:p@x/", "credentials"),
            ("tcp://u:hunter2@x:1", "credentials in the URL"),
            ("tcp://u:hunter2@[::1]:1/", "credentials in the URL"),
            ("zk://u:hunter2@x:1/kafka", "credentials in the URL"),
            ("zk://a:1,u:hunter2@x:1", "credentials in the URL"),
        ] {
            let err = input.parse::<Target>().unwrap_err();
            assert!(err.contains(needle), "{input}: {err}");
            assert!(!err.contains('\n'), "{input}: {err}");
            assert!(!err.contains("hunter2"), "{input}: {err}");
        }
    }
}
