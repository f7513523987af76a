//! `--create-topics`: create the topics an app needs, where missing, once
//! the kafka:// target is ready, and start COMMAND only when every
//! partition of every one has a leader: what a `kafka-init` container did
//! with `kafka-topics --create --if-not-exists`, without its races.
//!
//! The only step that creates. It never deletes or alters: a topic that
//! exists with another partition count or replication factor is reported
//! (a warning; fatal with `--strict-topics`), never changed. Topic configs
//! of an existing topic are not compared (that needs DescribeConfigs).
//! TOPIC_ALREADY_EXISTS is success: several replicas starting at once all
//! ask, one wins, and all go on. One CreateTopics request carries every
//! missing topic, sent to the controller Metadata names, as Kafka's own
//! AdminClient does (a ZooKeeper-mode broker that is not the controller
//! answers NOT_CONTROLLER; KRaft brokers forward, KIP-590).
//!
//! Rounds are paced and bounded like the wait loop's attempts (`wait.rs`):
//! each has `--attempt-timeout`, all of them `--timeout`.

use std::fmt::Write as _;

use kafka_protocol::messages::ApiKey;
use tokio::time::{sleep_until, Instant};

use crate::kafka::wire::{self, Conn, CreateTopics, Metadata, NewTopic};
use crate::kafka::{error_name, open};
use crate::log::{debug, error, info, since, warning};
use crate::net::{Attempt, HostPort, Limit};
use crate::probe::kafka::Spec as Kafka;
use crate::probe::Outcome;
use crate::wait::{Limits, Unready, PACE};

/// What to create, as parsed from `--create-topics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub topics: Vec<NewTopic>,
    /// `--strict-topics`: an existing topic unlike its spec is fatal.
    pub strict: bool,
    /// `--dry-run`: say what would be created, create nothing.
    pub dry_run: bool,
}

/// The spec syntax, for usage errors.
pub const SYNTAX: &str = "NAME:PARTITIONS:REPLICATION[:POLICY|:KEY=VALUE;...]";
/// Most topics one kwait creates: one request, one Metadata answer.
const MAX_TOPICS: usize = 1000;
/// Most partitions per topic: more is a typo, or a cluster kwait's
/// bounded Metadata answer (8 MiB) cannot describe.
const MAX_PARTITIONS: i32 = 10_000;
/// Most configs per topic, and characters per config key or value.
const MAX_CONFIGS: usize = 64;
const MAX_TEXT: usize = 1024;
/// Kafka's rule for topic names (`Topic.validate`).
const NAME_RULE: &str = "1 to 249 of a-z, A-Z, 0-9, '.', '_' and '-', not '.' or '..'";
/// Kafka's longest topic name (`Topic.MAX_NAME_LENGTH`).
const MAX_NAME: usize = 249;
/// The most brokers kwait reads from Metadata ([`wire::MAX_BROKERS`]).
const MAX_REPLICATION: i32 = 1000;

/// The errors CreateTopics answers that a user acts on (Errors.java).
const REQUEST_TIMED_OUT: i16 = 7;
const BROKER_NOT_AVAILABLE: i16 = 8;
const INVALID_TOPIC_EXCEPTION: i16 = 17;
const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
const TOPIC_ALREADY_EXISTS: i16 = 36;
const INVALID_REPLICATION_FACTOR: i16 = 38;
const NOT_CONTROLLER: i16 = 41;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
/// CreateTopics v2 (Kafka 1.0) to v7 (Kafka 4.0); Metadata from v4 (Kafka
/// 0.11), the first that can leave auto-creation off.
const CREATE_TOPICS: (i16, i16) = (2, 7);
const METADATA: (i16, i16) = (4, 12);

/// Parses every `--create-topics` value: comma-separated specs. A piece
/// without ':' continues the one before it, so that a config value may
/// hold a comma (`cleanup.policy=compact,delete`).
pub fn parse(values: &[String]) -> Result<Vec<NewTopic>, String> {
    let mut texts: Vec<String> = Vec::new();
    for value in values {
        for piece in value.split(',') {
            let piece = piece.trim();
            match texts.last_mut() {
                Some(last) if !piece.contains(':') && !piece.is_empty() => {
                    last.push(',');
                    last.push_str(piece);
                }
                _ => texts.push(piece.to_string()),
            }
        }
    }
    if texts.len() > MAX_TOPICS {
        return Err(format!("--create-topics: more than {MAX_TOPICS} topics"));
    }
    let mut topics: Vec<NewTopic> = Vec::new();
    for text in &texts {
        let topic = spec(text)
            .map_err(|e| format!("--create-topics '{}': {e}", crate::log::shown(text, 100)))?;
        if topics.iter().any(|t| t.name == topic.name) {
            return Err(format!(
                "--create-topics: topic '{}' is given twice",
                topic.name
            ));
        }
        topics.push(topic);
    }
    Ok(topics)
}

/// One spec: `name:partitions:replication[:cleanup.policy]` or
/// `name:partitions:replication:key=value;key=value` (the
/// `KAFKA_CREATE_TOPICS` syntax of the wurstmeister and Bitnami images).
fn spec(text: &str) -> Result<NewTopic, String> {
    let mut parts = text.splitn(4, ':');
    let (Some(name), Some(partitions), Some(replication)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("not {SYNTAX}"));
    };
    name_rule(name)?;
    // One parser for both numbers (each `parse::<T>` is code of its own).
    let number =
        |text: &str, most: i32| text.parse::<i32>().ok().filter(|n| (1..=most).contains(n));
    let (Some(partitions), Some(replication)) = (
        number(partitions, MAX_PARTITIONS),
        number(replication, MAX_REPLICATION),
    ) else {
        return Err(format!(
            "partitions '{partitions}' and replication '{replication}' must be 1 to {MAX_PARTITIONS} and 1 to {MAX_REPLICATION}"
        ));
    };
    let replication = replication as i16;
    let mut configs: Vec<(String, String)> = Vec::new();
    match parts.next() {
        None => {}
        Some(policy) if !policy.contains('=') => {
            if !matches!(
                policy,
                "compact" | "delete" | "compact,delete" | "delete,compact"
            ) {
                return Err(format!(
                    "'{policy}' is not compact, delete or compact,delete (other configs: KEY=VALUE;...)"
                ));
            }
            configs.push(("cleanup.policy".into(), policy.into()));
        }
        Some(list) => {
            for pair in list.split(';').filter(|p| !p.trim().is_empty()) {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                let (key, value) = (key.trim(), value.trim());
                if key.is_empty()
                    || value.is_empty()
                    || key.len() > MAX_TEXT
                    || value.len() > MAX_TEXT
                {
                    return Err(format!(
                        "config '{pair}' is not KEY=VALUE (at most {MAX_TEXT} characters each)"
                    ));
                }
                configs.push((key.into(), value.into()));
            }
            if configs.len() > MAX_CONFIGS {
                return Err(format!("more than {MAX_CONFIGS} configs"));
            }
        }
    }
    Ok(NewTopic {
        name: name.into(),
        partitions,
        replication,
        configs,
    })
}

/// Kafka's rule for topic names (`Topic.validate`): 1 to 249 of ASCII
/// letters, digits, '.', '_' and '-', and not "." or "..". Checked here
/// too, because some brokers (tansu) accept any name.
fn name_rule(name: &str) -> Result<(), String> {
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty()
        || name.len() > MAX_NAME
        || name == "."
        || name == ".."
        || !name.chars().all(legal)
    {
        return Err(format!(
            "'{}' is not a topic name Kafka accepts ({NAME_RULE})",
            crate::log::shown(name, 100)
        ));
    }
    Ok(())
}

/// "3 partitions, replication 1, cleanup.policy=compact".
fn shape(topic: &NewTopic) -> String {
    let mut out = format!(
        "{} partition(s), replication {}",
        topic.partitions, topic.replication
    );
    for (key, value) in &topic.configs {
        let _ = write!(out, ", {key}={value}");
    }
    out
}

/// Where each topic stands, as this step knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not looked at yet.
    Unknown,
    /// Existed before kwait asked: reported.
    There,
    /// Created by kwait's request.
    Created,
    /// Asked for, and answered "already exists" (another client won the
    /// race) or "timed out" (the controller may still create it): reported
    /// once Metadata shows it; asked for again if it does not.
    Asked,
}

/// Runs the step under the wait's limits: `Err` once it failed for good
/// or ran out of time, the reason already logged.
pub async fn create(kafka: &Kafka, request: &Request, limits: Limits) -> Result<(), Unready> {
    let started = Instant::now();
    let mut states = vec![State::Unknown; request.topics.len()];
    let mut controller = None;
    let mut last_reason = String::new();
    for seq in 0.. {
        let begun = Instant::now();
        let mut deadline = begun + limits.attempt_timeout;
        let mut limit = Limit::AttemptTimeout;
        if let Some(overall) = limits.deadline.filter(|d| *d < deadline) {
            deadline = overall;
            limit = Limit::Timeout;
        }
        if seq > 0 && limits.deadline.is_some_and(|d| begun >= d) {
            error!(
                "--create-topics: timed out after {} waiting for the topics: {last_reason} (raise --timeout)",
                since(begun - started)
            );
            return Err(Unready::TimedOut);
        }
        let attempt = Attempt::new(deadline, limit, seq);
        // Every connect, write and read of a round keeps to the attempt's
        // deadline (`Attempt::within`), so a round needs no timer of its own.
        match round(kafka, request, &mut states, &mut controller, &attempt).await {
            Ok(seen) | Err(Outcome::Ready(seen)) => {
                info!("topics ready after {}: {seen}", since(started.elapsed()));
                return Ok(());
            }
            Err(Outcome::Fatal(reason)) => {
                error!("--create-topics: {reason}");
                return Err(Unready::Failed);
            }
            Err(Outcome::NotReady(reason)) => {
                if reason != last_reason {
                    debug!("--create-topics: {reason}");
                }
                last_reason = reason;
            }
        }
        let mut next = begun + PACE * attempt.connections().max(1);
        if let Some(overall) = limits.deadline {
            next = next.min(overall);
        }
        sleep_until(next).await;
    }
    Err(Unready::TimedOut)
}

/// One round, on one connection: Metadata for the topics; report the ones
/// that exist; create the missing ones in one request; Metadata again,
/// until every partition has a leader. `Ready` with a summary when done.
/// A round that finds the controller elsewhere names it in `controller`,
/// for the next round to ask.
async fn round(
    kafka: &Kafka,
    request: &Request,
    states: &mut [State],
    controller: &mut Option<HostPort>,
    attempt: &Attempt,
) -> Result<String, Outcome> {
    let rotation = attempt.rotation(&kafka.bootstrap);
    let addr = match controller.take() {
        Some(c) => c,
        None => match rotation.first() {
            Some(a) => (*a).clone(),
            None => return Err(Outcome::Fatal("the kafka:// target has no address".into())),
        },
    };
    let (mut conn, versions) = open(&addr, &kafka.security, attempt).await?;
    // One closure for every failure of this connection (one copy of the code).
    let at = |e: String, fatal: bool| {
        let reason = format!("{addr}: {e}");
        if fatal {
            Outcome::Fatal(reason)
        } else {
            Outcome::NotReady(reason)
        }
    };
    let version = versions
        .pick(ApiKey::Metadata, METADATA)
        .map_err(|e| at(e, true))?;
    loop {
        let found = metadata(&mut conn, attempt, version, &request.topics)
            .await
            .map_err(|e| at(e, false))?;
        let missing = classify(kafka, request, states, &found)?;
        if missing.is_empty() {
            return led(request, states, &found);
        }
        // The controller creates (ZooKeeper mode answers NOT_CONTROLLER
        // elsewhere); when it is not listed (the librdkafka mock names
        // controller 0) whoever answered is asked.
        let elsewhere = found
            .brokers
            .iter()
            .find(|b| b.id == found.controller)
            .and_then(|b| HostPort::parse(&format!("{}:{}", b.host, b.port), "").ok())
            .filter(|c| *c != addr);
        if let Some(c) = elsewhere {
            let reason = format!(
                "the controller, broker {}, is at {c}: asking it",
                found.controller
            );
            *controller = Some(c);
            return Err(Outcome::NotReady(reason));
        }
        let create = versions
            .pick(ApiKey::CreateTopics, CREATE_TOPICS)
            .map_err(|e| at(e + "; kwait needs CreateTopics v2-v7 (Kafka 1.0+)", true))?;
        let left = attempt.deadline.saturating_duration_since(Instant::now());
        let body = CreateTopics {
            topics: missing.iter().map(|&i| &request.topics[i]).collect(),
            timeout_ms: i32::try_from(left.as_millis()).unwrap_or(i32::MAX),
        }
        .bytes(create);
        let answer = conn
            .call_encoded(attempt, ApiKey::CreateTopics, create, create >= 5, &body)
            .await
            .map_err(|e| at(e.text, false))?;
        let results = wire::create_topics(&answer, create)
            .map_err(|e| at("malformed CreateTopics answer: ".to_string() + &e, false))?;
        created(
            kafka,
            request,
            states,
            &missing,
            found.brokers.len(),
            &results,
        )?;
    }
}

/// Reports the topics Metadata shows for the first time, and returns the
/// ones to create: none under `--dry-run`, which says what it would create.
fn classify(
    kafka: &Kafka,
    request: &Request,
    states: &mut [State],
    found: &Metadata,
) -> Result<Vec<usize>, Outcome> {
    let mut missing: Vec<usize> = Vec::new();
    let mut differ = 0;
    for (i, topic) in request.topics.iter().enumerate() {
        if !matches!(states[i], State::Unknown | State::Asked) {
            continue;
        }
        match listed(found, &topic.name) {
            Some(seen) => {
                differ += usize::from(!compare(topic, seen, states[i], request.strict));
                states[i] = State::There;
            }
            None => {
                if usize::try_from(topic.replication).unwrap_or(0) > found.brokers.len() {
                    return Err(too_few_brokers(kafka, topic, found.brokers.len(), ""));
                }
                missing.push(i);
            }
        }
    }
    if differ > 0 && request.strict {
        return Err(Outcome::Fatal(format!(
            "{differ} existing topic(s) differ from their spec, and --strict-topics is set"
        )));
    }
    if request.dry_run {
        for &i in &missing {
            let topic = &request.topics[i];
            info!(
                "--dry-run: would create topic {}: {}",
                topic.name,
                shape(topic)
            );
        }
        return Err(Outcome::Ready(format!(
            "--dry-run: {} topic(s) would be created, none was",
            missing.len()
        )));
    }
    Ok(missing)
}

/// A replication factor above the brokers there are. Brokers register one
/// by one at start: while `min-brokers` is below the factor, kwait cannot
/// know more are coming, so it says to set it; when it is not, a broker
/// left since the wait, and the next round may see it back.
fn too_few_brokers(kafka: &Kafka, topic: &NewTopic, brokers: usize, said: &str) -> Outcome {
    let factor = topic.replication;
    let why = format!(
        "topic '{}': replication factor {factor} needs {factor} brokers, the cluster has {brokers}{said}",
        topic.name
    );
    if kafka.min_brokers >= usize::try_from(factor).unwrap_or(0) {
        Outcome::NotReady(why)
    } else {
        Outcome::Fatal(format!(
            "{why}: lower it, or add min-brokers={factor} to the kafka:// target to wait for them"
        ))
    }
}

/// The Metadata entry of `name`, if it exists.
fn listed<'a>(found: &'a Metadata, name: &str) -> Option<&'a wire::Topic> {
    found
        .topics
        .iter()
        .find(|t| t.name.as_deref() == Some(name) && t.error != UNKNOWN_TOPIC_OR_PARTITION)
}

/// Reports an existing topic against its spec, one line; false when its
/// partition count or replication factor differ.
fn compare(topic: &NewTopic, seen: &wire::Topic, state: State, strict: bool) -> bool {
    let partitions = seen.partitions.len();
    let replication = seen
        .partitions
        .iter()
        .map(|p| p.replicas)
        .max()
        .unwrap_or(0);
    // An Asked topic was created meanwhile: by another client, or by
    // kwait's own request that timed out; either way it is there now.
    let how = if state == State::Asked {
        "created meanwhile"
    } else {
        "already there"
    };
    let same = usize::try_from(topic.partitions).ok() == Some(partitions)
        && usize::try_from(topic.replication).ok() == Some(replication);
    if same {
        info!(
            "topic {} {how}, as asked: {partitions} partition(s), replication {replication}",
            topic.name
        );
        return true;
    }
    let line = format!(
        "topic {} {how} with {partitions} partition(s), replication {replication}, not {} and {} as \
         its spec asks: kwait never changes a topic",
        topic.name, topic.partitions, topic.replication
    );
    if strict {
        error!("{line}");
    } else {
        warning!("{line}; --strict-topics makes this fatal");
    }
    false
}

/// Each missing topic's CreateTopics result: created, or already there
/// (another client won the race), or why not.
fn created(
    kafka: &Kafka,
    request: &Request,
    states: &mut [State],
    missing: &[usize],
    brokers: usize,
    results: &[wire::Created],
) -> Result<(), Outcome> {
    for &i in missing {
        let topic = &request.topics[i];
        let Some(result) = results.iter().find(|r| r.name == topic.name) else {
            return Err(Outcome::NotReady(format!(
                "no CreateTopics result for '{}'",
                topic.name
            )));
        };
        let said = result
            .message
            .as_deref()
            .filter(|m| !m.is_empty())
            .map(|m| format!(" ({})", crate::log::shown(m, 300)))
            .unwrap_or_default();
        let code = result.error;
        let hint = match code {
            0 => {
                info!("topic {} created: {}", topic.name, shape(topic));
                states[i] = State::Created;
                continue;
            }
            TOPIC_ALREADY_EXISTS | REQUEST_TIMED_OUT => {
                states[i] = State::Asked;
                continue;
            }
            NOT_CONTROLLER | BROKER_NOT_AVAILABLE => {
                return Err(Outcome::NotReady(format!(
                    "topic '{}': {}{said}",
                    topic.name,
                    error_name(code)
                )))
            }
            INVALID_REPLICATION_FACTOR => {
                return Err(too_few_brokers(kafka, topic, brokers, &said))
            }
            TOPIC_AUTHORIZATION_FAILED | CLUSTER_AUTHORIZATION_FAILED => {
                "kwait's user needs the Create ACL on the topic or the cluster"
            }
            INVALID_TOPIC_EXCEPTION => NAME_RULE,
            _ => "fix the spec",
        };
        return Err(Outcome::Fatal(format!(
            "topic '{}': the broker refuses it with {}{said}: {hint}",
            topic.name,
            create_error_name(code)
        )));
    }
    Ok(())
}

/// Error names [`error_name`] does not know, that only CreateTopics answers.
fn create_error_name(code: i16) -> String {
    let name = match code {
        37 => "INVALID_PARTITIONS",
        39 => "INVALID_REPLICA_ASSIGNMENT",
        40 => "INVALID_CONFIG",
        44 => "POLICY_VIOLATION",
        _ => return error_name(code),
    };
    format!("{name} ({code})")
}

/// Every topic must be listed with a leader for every partition (the
/// `topics=` rule of the kafka check).
fn led(request: &Request, states: &[State], found: &Metadata) -> Result<String, Outcome> {
    for topic in &request.topics {
        let seen = listed(found, &topic.name);
        let leaderless =
            seen.and_then(|t| t.partitions.iter().find(|p| p.leader < 0 || p.error != 0));
        let why = match seen {
            None => "is not in Metadata yet".to_string(),
            Some(t) if t.error != 0 => error_name(t.error),
            Some(t) if t.partitions.is_empty() => "has no partitions yet".to_string(),
            _ => match leaderless {
                Some(p) => format!("partition {} has no leader yet", p.index),
                None => continue,
            },
        };
        return Err(Outcome::NotReady(format!("topic '{}' {why}", topic.name)));
    }
    let created = states.iter().filter(|s| **s == State::Created).count();
    Ok(format!(
        "{created} created, {} already there, every partition led",
        request.topics.len() - created
    ))
}

/// Metadata for the spec's topics, auto-creation off.
async fn metadata(
    conn: &mut Conn,
    attempt: &Attempt,
    version: i16,
    topics: &[NewTopic],
) -> Result<Metadata, String> {
    let names: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
    let request = wire::metadata_request(Some(&names), version);
    let body = conn
        .call_encoded(attempt, ApiKey::Metadata, version, version >= 9, &request)
        .await?;
    wire::metadata(&body, version).map_err(|e| format!("malformed Metadata answer: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Result<NewTopic, String> {
        parse(&[text.to_string()]).map(|mut t| t.remove(0))
    }

    #[test]
    fn the_kafka_create_topics_syntax() {
        let t = one("orders:3:1").unwrap();
        assert_eq!(
            (t.name.as_str(), t.partitions, t.replication),
            ("orders", 3, 1)
        );
        assert!(t.configs.is_empty());
        let t = one("payments:6:3:compact").unwrap();
        assert_eq!(t.configs, [("cleanup.policy".into(), "compact".into())]);
        let t = one("audit:1:1:retention.ms=1000;min.insync.replicas=2").unwrap();
        assert_eq!(t.configs.len(), 2);
        assert_eq!(t.configs[1], ("min.insync.replicas".into(), "2".into()));
        // A value with a comma, and a config value with a colon.
        let all = parse(&[
            "a:1:1:cleanup.policy=compact,delete,b:2:1".into(),
            "c:1:1:x.y=h:1".into(),
        ])
        .unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].configs[0].1, "compact,delete");
        assert_eq!(all[1].name, "b");
        assert_eq!(all[2].configs[0].1, "h:1");
        assert_eq!(
            one("a:1:1:compact,delete").unwrap().configs[0].1,
            "compact,delete"
        );
    }

    #[test]
    fn bad_specs_name_the_spec() {
        for (text, needle) in [
            ("orders", "not NAME:PARTITIONS:REPLICATION"),
            ("orders:3", "not NAME"),
            ("orders:x:1", "partitions 'x'"),
            ("orders:0:1", "partitions '0'"),
            ("orders:10001:1", "1 to 10000 and"),
            ("orders:3:0", "replication '0'"),
            ("orders:3:-1", "replication '-1'"),
            ("orders:3:1:compacted", "not compact, delete"),
            ("orders:3:1:retention.ms", "not compact, delete"),
            ("orders:3:1:=1", "not KEY=VALUE"),
            ("orders:3:1:a=", "not KEY=VALUE"),
            ("bad name:1:1", "not a topic name"),
            ("..:1:1", "not a topic name"),
            (":1:1", "not a topic name"),
            ("a:1:1,,b:1:1", "not NAME"),
            ("a:1:1,a:2:1", "given twice"),
        ] {
            let err = parse(&[text.to_string()]).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
            assert!(err.starts_with("--create-topics"), "{text}: {err}");
        }
        let long = format!("{}:1:1", "a".repeat(250));
        assert!(one(&long).unwrap_err().contains("not a topic name"));
        assert!(one(&format!("{}:1:1", "a".repeat(249))).is_ok());
        let many: Vec<String> = (0..=MAX_TOPICS).map(|i| format!("t{i}:1:1")).collect();
        assert!(parse(&[many.join(",")]).unwrap_err().contains("more than"));
    }

    #[test]
    fn shapes() {
        let t = one("p:6:3:cleanup.policy=compact;retention.ms=5").unwrap();
        assert_eq!(
            shape(&t),
            "6 partition(s), replication 3, cleanup.policy=compact, retention.ms=5"
        );
        assert_eq!(create_error_name(44), "POLICY_VIOLATION (44)");
        assert_eq!(create_error_name(5), "LEADER_NOT_AVAILABLE (5)");
    }
}
