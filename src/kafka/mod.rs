//! Kafka's client, as kwait needs it, for the probe and the cleaner alike:
//! a connection with the target's security (TCP, TLS, ApiVersions with
//! KIP-511's fallback, SASL), with the diagnosis of a listener that does
//! not speak what was asked (TLS at a plaintext port and the reverse, SASL
//! where there is none), and "is a Kafka broker at this address" for the
//! cleaner. What a target asks of the cluster is the probe's
//! (`probe::kafka`).

pub mod wire;

use kafka_protocol::messages::ApiKey;

use self::wire::{Conn, Versions};
use crate::net::{Attempt, Cause, Failed, HostPort, Stream};
use crate::probe::Outcome;
use crate::sasl::{Exchange, Step};
use crate::security::{Sasl, Security};

/// The versions kwait speaks. Metadata starts at v1, the first where an
/// empty topic list means "no topics" (v0 reads it as "all").
pub const API_VERSIONS: (i16, i16) = (0, 3);
/// v0 of SaslHandshake means raw SASL frames after it; kwait speaks only the
/// SaslAuthenticate form (KIP-152, Kafka 1.0).
pub const SASL_HANDSHAKE: (i16, i16) = (1, 1);
pub const SASL_AUTHENTICATE: (i16, i16) = (0, 2);
pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
/// What Kafka answers a SaslHandshake with on a listener without SASL
/// (`KafkaApis.handleSaslHandshakeRequest`).
pub const ILLEGAL_SASL_STATE: i16 = 34;
pub const SASL_AUTHENTICATION_FAILED: i16 = 58;
/// The mechanism kwait asks for when it only wants a listener's list: no
/// broker offers it, so a SASL listener answers with the ones it does.
pub const NO_MECHANISM: &str = "kwait-asks-which";

/// Kafka's UNSUPPORTED_VERSION.
pub const UNSUPPORTED_VERSION: i16 = 35;
/// A broker that shares no version of a request with kwait will not learn
/// one by waiting: that is fatal.
pub fn pick(
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

/// The connection was closed on Metadata after ApiVersions was answered, and
/// no SASL is configured. A SASL listener does this to a client that skips
/// authentication (before it, Kafka takes only ApiVersions and
/// SaslHandshake), and so does a broker shutting down. A SaslHandshake on a
/// fresh connection tells them apart: only a SASL listener answers it with
/// the mechanisms it offers.
pub async fn closed_on_metadata(
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
pub async fn mechanisms(
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
pub async fn api_versions(conn: &mut Conn, attempt: &Attempt) -> Result<Versions, String> {
    api_versions_from(conn, attempt, API_VERSIONS.1)
        .await
        .map(|(versions, _)| versions)
        .map_err(String::from)
}

/// [`api_versions`] starting at version `first` (one this cluster already
/// answered, so a fallback is not asked again on every connection);
/// returns the version that was answered too.
async fn api_versions_from(
    conn: &mut Conn,
    attempt: &Attempt,
    first: i16,
) -> Result<(Versions, i16), Failed> {
    let mut version = first.clamp(0, API_VERSIONS.1);
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
            .ok_or_else(|| Failed::other("empty ApiVersions answer".into()))?;
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
            return Err(Failed::other(format!(
                "ApiVersions answered {}",
                error_name(error)
            )));
        }
        let (_, versions) = wire::api_versions(&body, version)
            .map_err(|e| Failed::other(format!("malformed ApiVersions v{version} answer: {e}")))?;
        return Ok((versions, version));
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

/// A Kafka connection to `addr` with the target's security: TCP, TLS when
/// configured, ApiVersions (allowed before authentication), then SASL when
/// configured. Wrong settings are fatal: waiting does not fix a password.
pub async fn open(
    addr: &HostPort,
    security: &Security,
    attempt: &Attempt,
) -> Result<(Conn, Versions), Outcome> {
    open_from(addr, security, attempt, API_VERSIONS.1)
        .await
        .map(|(conn, versions, _)| (conn, versions))
}

/// [`open`] with ApiVersions asked first at version `first`; returns the
/// version answered too, for the next connection to the same cluster.
pub async fn open_from(
    addr: &HostPort,
    security: &Security,
    attempt: &Attempt,
    first: i16,
) -> Result<(Conn, Versions, i16), Outcome> {
    let tcp = attempt.connect(addr).await?;
    let peer = tcp.peer_addr().ok();
    let stream: Stream = match &security.tls {
        None => Box::new(tcp),
        // Boxed, here and below: a plaintext connection's future need not
        // carry TLS and SASL state (7 KB, copied on every spawn).
        Some(config) => Box::pin(handshake(config, addr, tcp, attempt)).await?,
    };
    let mut conn = Conn::new(stream);
    conn.peer = peer;
    let (versions, answered) = match api_versions_from(&mut conn, attempt, first).await {
        Ok(found) => found,
        // Another service (SSH, HTTP, ...) on this port: waiting will not
        // make it Kafka.
        Err(e) if e.cause == (Cause::Foreign { tls: false }) => {
            return Err(Outcome::Fatal(format!("{addr}: {e}")))
        }
        Err(e) if security.tls.is_some() && e.cause == Cause::TlsAlert => {
            // Under TLS 1.3 a server refuses a client certificate (or its
            // absence) after the handshake, on the first read.
            return Err(Outcome::Fatal(format!(
                "{addr}: {e}: the broker refused this TLS client; does it require a client certificate (cert=, key=)?"
            )));
        }
        Err(e) if security.tls.is_some() && e.cause == Cause::Closed => {
            // The same refusal when the alert is lost to the reset of a
            // connection closed with kwait's request unread; a broker
            // shutting down looks alike, so it stays a reason to wait.
            return Err(Outcome::NotReady(format!(
                "{addr}: {e} right after the TLS handshake; does the broker require a client certificate (cert=, key=)?"
            )));
        }
        Err(e) if security.tls.is_none() && e.cause == (Cause::Foreign { tls: true }) => {
            // The listener answered in TLS: waiting will not change that.
            return Err(Outcome::Fatal(format!("{addr}: {e}")));
        }
        Err(e) if security.tls.is_none() && e.cause == Cause::Closed => {
            // A TLS terminator drops a plaintext request this way; so does a
            // broker shutting down. A TLS handshake at the same address
            // tells them apart (a build without TLS cannot try one).
            #[cfg(feature = "tls")]
            {
                let tcp = attempt.connect(addr).await?;
                if Box::pin(crate::tls::speaks_tls(&addr.host, tcp, attempt)).await {
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
        Box::pin(authenticate(
            &mut conn,
            &versions,
            sasl,
            addr,
            security.tls.as_ref(),
            attempt,
        ))
        .await?;
    }
    Ok((conn, versions, answered))
}

/// How long a TLS handshake may go unanswered before kwait asks the same
/// address, on a second connection, whether a plaintext Kafka listener is
/// there. The handshake itself keeps the whole attempt deadline.
#[cfg(feature = "tls")]
pub const PLAINTEXT_SUSPICION: std::time::Duration = std::time::Duration::from_millis(500);

/// The TLS handshake of `open`. A plaintext Kafka listener reads a
/// ClientHello as the start of a huge request and then waits for the rest
/// (or closes, past `socket.request.max.bytes`), which looks like a slow or
/// restarting TLS listener; a plaintext ApiVersions that gets its answer
/// tells them apart, and that mistake is fatal: waiting will not add TLS.
#[cfg(feature = "tls")]
pub async fn handshake(
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
pub async fn handshake(
    config: &crate::tls::Config,
    _: &HostPort,
    _: tokio::net::TcpStream,
    _: &Attempt,
) -> Result<Stream, Outcome> {
    match *config {}
}

/// SaslHandshake, then SaslAuthenticate rounds until the mechanism is done.
pub async fn authenticate(
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
        let request = wire::sasl_authenticate_request(&message, v);
        let body = conn
            .call_encoded(attempt, ApiKey::SaslAuthenticate, v, v >= 2, &request)
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
                    crate::secret::PASSWORD_ENV
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

/// "COORDINATOR_NOT_AVAILABLE (15)": the names of the errors a readiness
/// check meets, as Kafka's protocol guide spells them (`Errors.java`).
pub fn error_name(code: i16) -> String {
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
