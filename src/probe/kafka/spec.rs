//! `kafka://HOST:PORT[,HOST:PORT...][?...]`: what a kafka target asks
//! (`check=`, `min-brokers=`, `topics=`, `group=`) and how to reach it
//! (the security parameters, resolved by `security`).

use crate::net::{host_list, HostPort};
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
pub struct Spec {
    pub bootstrap: Vec<HostPort>,
    pub check: Check,
    pub min_brokers: usize,
    pub topics: Vec<String>,
    pub group: Option<String>,
    pub security: Security,
}

/// Parses what follows `kafka://`; `what` names the target in errors.
pub fn parse(
    what: &str,
    rest: &str,
    env: crate::net::Env,
    warnings: &mut Vec<String>,
) -> Result<Spec, String> {
    let (hosts, query) = match rest.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (rest, None),
    };
    let hosts = hosts.trim_end_matches('/');
    if hosts.contains('@') {
        return Err(format!(
            "{what}: credentials do not go in the URL (they would show in ps and logs): \
             use user=NAME and the password in {} or password-file=PATH",
            crate::secret::PASSWORD_ENV
        ));
    }
    if hosts.contains('/') {
        return Err(format!(
            "{what}: kafka:// takes host:port[,host:port...] with no path"
        ));
    }
    let bootstrap = host_list(what, hosts)?;
    let mut kafka = Spec {
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
                    crate::secret::PASSWORD_ENV
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
    kafka.security = security::resolve(&secure, what, env, warnings)?;
    Ok(kafka)
}

/// Kafka's own rule (`Topic.validate`): 1 to 249 of `[a-zA-Z0-9._-]`.
fn valid_topic(name: &str) -> bool {
    (1..=249).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}
