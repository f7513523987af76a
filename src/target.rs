//! Target URLs: the scheme picks the kind, and the kind parses the rest
//! (`probe::<kind>::parse`, next to its `check`). A new kind is one file in
//! `probe/`, one variant here, one line in each of the two matches below.
//!
//! Parsing is the only place a target's syntax is judged: a bad target is a
//! usage error (exit 2) before anything connects. Names are not resolved
//! here: in compose networks a service name resolves only once its container
//! exists, so DNS belongs to each attempt.

use std::fmt;

use crate::net::{Attempt, Env};
use crate::probe::{self, Outcome};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Kafka(probe::kafka::Spec),
    Zk(probe::zk::Spec),
    Tcp(probe::tcp::Spec),
    Http(probe::http::Spec),
    Postgres(probe::postgres::Spec),
    Redis(probe::redis::Spec),
    Mysql(probe::mysql::Spec),
    Amqp(probe::amqp::Spec),
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

const SCHEMES: &str = "kafka://, zk://, tcp://, http://, https://, postgres://, redis://, rediss://, mysql://, amqp:// or amqps://";

impl Target {
    /// Parses one target as the user wrote it. What it leaves unsafe or
    /// unread (`tls-verify=false`, keys of a config= file kwait ignores)
    /// goes into `warnings`, for the caller to print once.
    pub fn parse(raw: &str, env: Env, warnings: &mut Vec<String>) -> Result<Target, String> {
        // Errors and logs echo the target; a password must not ride along.
        let shown = crate::secret::redact(raw);
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
            "kafka" => Kind::Kafka(probe::kafka::parse(what, rest, env, warnings)?),
            "zk" | "zookeeper" => Kind::Zk(probe::zk::parse(what, rest)?),
            "tcp" => Kind::Tcp(probe::tcp::parse(what, rest)?),
            "http" => Kind::Http(probe::http::parse(what, rest, false, env)?),
            "https" => Kind::Http(probe::http::parse(what, rest, true, env)?),
            "postgres" | "postgresql" => {
                Kind::Postgres(probe::postgres::parse(what, rest, env, warnings)?)
            }
            "redis" => Kind::Redis(probe::redis::parse(what, rest, false, env, warnings)?),
            "rediss" => Kind::Redis(probe::redis::parse(what, rest, true, env, warnings)?),
            "mysql" => Kind::Mysql(probe::mysql::parse(what, rest, env, warnings)?),
            "amqp" => Kind::Amqp(probe::amqp::parse(what, rest, false, env, warnings)?),
            "amqps" => Kind::Amqp(probe::amqp::parse(what, rest, true, env, warnings)?),
            other => return Err(format!("{what}: unknown scheme '{other}' (use {SCHEMES})")),
        };
        Ok(Target {
            kind,
            text: s.to_string(),
        })
    }

    /// One attempt at this target, by its kind.
    pub async fn check(&self, attempt: &Attempt) -> Outcome {
        match &self.kind {
            Kind::Kafka(spec) => probe::kafka::check(spec, attempt).await,
            Kind::Zk(spec) => probe::zk::check(spec, attempt).await,
            Kind::Tcp(spec) => probe::tcp::check(spec, attempt).await,
            Kind::Http(spec) => probe::http::check(spec, attempt).await,
            Kind::Postgres(spec) => probe::postgres::check(spec, attempt).await,
            Kind::Redis(spec) => probe::redis::check(spec, attempt).await,
            Kind::Mysql(spec) => probe::mysql::check(spec, attempt).await,
            Kind::Amqp(spec) => probe::amqp::check(spec, attempt).await,
        }
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

/// For tests: a parse whose warnings nobody reads.
#[cfg(test)]
impl std::str::FromStr for Target {
    type Err = String;

    fn from_str(raw: &str) -> Result<Target, String> {
        Target::parse(raw, &|_| None, &mut Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::HostPort;
    use crate::probe::http::Spec as Http;
    use crate::probe::kafka::{Check, Spec as Kafka};

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
