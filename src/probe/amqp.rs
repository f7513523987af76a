//! `amqp://[USER@]HOST[:5672][/VHOST]` and `amqps://` (port 5671, TLS):
//! ready when the AMQP 0-9-1 handshake completes through Connection.OpenOk
//! for the vhost: protocol header, Start → Start-Ok (PLAIN), Tune →
//! Tune-Ok, Open → OpenOk; then kwait closes the connection properly
//! (Close → Close-Ok). RabbitMQ opens its AMQP listener only at the end of
//! its boot, and only a real login and vhost prove it serves (a TCP check,
//! like `rabbitmq-diagnostics check_port_connectivity`, does not).
//!
//! No USER means RabbitMQ's default user `guest` (password `guest` unless
//! one is set), which RabbitMQ lets in only from localhost
//! (`loopback_users`). The vhost is `/` when none is written (`%2f` also
//! spells it). A refused login (403 ACCESS_REFUSED: kwait asks for it with
//! the `authentication_failure_close` capability) and a vhost that is not
//! there or not open to the user (530 NOT_ALLOWED, but for a connection
//! limit) are fatal; any other
//! Connection.Close is not ready, with its reply text. Frames are read
//! bounded ([`MAX_FRAME`]).

use std::future::Future;
use std::pin::Pin;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Outcome;
use crate::net::{user_url, Attempt, HostPort, Stream};
use crate::reader::Reader;
use crate::secret::Secret;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub hosts: Vec<HostPort>,
    pub user: String,
    pub vhost: String,
    pub password: Secret,
    pub tls: Option<crate::tls::Config>,
}

/// The largest frame read before Tune: a Connection.Start (RabbitMQ's is
/// under 1 KiB); AMQP's smallest frame-max is 4 KiB.
const MAX_FRAME: usize = 64 << 10;

const PASSWORD_VAR: &str = "KWAIT_AMQP_PASSWORD";
const PASSWORDS: &str = "set KWAIT_AMQP_PASSWORD, or give password-file=PATH";

/// Parses what follows `amqp://` (`tls` false) or `amqps://`; what
/// `tls-verify=false` leaves unchecked goes into `warnings`.
pub fn parse(
    what: &str,
    rest: &str,
    tls: bool,
    env: crate::net::Env,
    warnings: &mut Vec<String>,
) -> Result<Spec, String> {
    let port = if tls { 5671 } else { 5672 };
    let url = user_url(what, rest, port, PASSWORDS)?;
    let (tls, file) = url.tls_and_file(what, tls, warnings)?;
    let password = match (
        &url.user,
        crate::secret::password(what, file, &[PASSWORD_VAR], env)?,
    ) {
        (_, Some(password)) => password,
        (None, None) => Secret("guest".into()),
        (Some(user), None) => {
            return Err(format!(
                "{what}: user '{user}' needs a password: set {PASSWORD_VAR}, or password-file=PATH"
            ))
        }
    };
    let vhost = match url.path.trim_end_matches('/') {
        "" => "/".to_string(),
        p if p.len() > 255 => return Err(format!("{what}: a vhost name has at most 255 bytes")),
        p => p.to_string(),
    };
    Ok(Spec {
        hosts: url.hosts,
        user: url.user.unwrap_or_else(|| "guest".into()),
        vhost,
        password,
        tls,
    })
}

pub async fn check(spec: &Spec, attempt: &Attempt) -> Outcome {
    let hosts = attempt.rotation(&spec.hosts);
    super::race::first_session(hosts, &|addr| Box::pin(handshake(spec, addr, attempt))).await
}

async fn handshake(spec: &Spec, addr: &HostPort, attempt: &Attempt) -> Result<String, Outcome> {
    let tcp = attempt.connect(addr).await?;
    let mut s: Stream = match &spec.tls {
        None => Box::new(tcp),
        Some(config) => Box::new(crate::tls::connect(config, &addr.host, tcp, attempt).await?),
    };
    attempt
        .within(
            "sending the protocol header",
            s.write_all(b"AMQP\0\0\x09\x01"),
        )
        .await?;
    let start = method(spec, &mut s, attempt, 10).await?;
    let (product, mechanisms) =
        started(&start).ok_or_else(|| "sent a Connection.Start kwait cannot read".to_string())?;
    if !mechanisms.split(' ').any(|m| m == "PLAIN") {
        return Err(Outcome::Fatal(format!(
            "offers the login mechanisms '{mechanisms}', not PLAIN, the one kwait uses"
        )));
    }

    // Start-Ok: client properties, with the capability that turns a
    // refused login into a Connection.Close with 403 (else the broker just
    // drops the connection); PLAIN's "\0user\0password"; the locale.
    let mut args = Vec::with_capacity(128);
    let mut props = Vec::new();
    short(&mut props, "product");
    props.push(b'S');
    long(&mut props, b"kwait");
    short(&mut props, "capabilities");
    props.push(b'F');
    let mut caps = Vec::new();
    short(&mut caps, "authentication_failure_close");
    caps.extend(b"t\x01");
    long(&mut props, &caps);
    long(&mut args, &props);
    short(&mut args, "PLAIN");
    let plain = format!("\0{}\0{}", spec.user, spec.password.expose());
    long(&mut args, plain.as_bytes());
    short(&mut args, "en_US");
    send(&mut s, attempt, 11, &args).await?;

    // Tune-Ok: the server's channel-max and frame-max, no heartbeats (the
    // connection lives for milliseconds).
    let tune = method(spec, &mut s, attempt, 30).await?;
    let mut args = tune
        .get(..6)
        .ok_or_else(|| "sent a short Connection.Tune".to_string())?
        .to_vec();
    args.extend([0, 0]);
    send(&mut s, attempt, 31, &args).await?;

    let mut args = Vec::new();
    short(&mut args, &spec.vhost);
    args.extend([0, 0]);
    send(&mut s, attempt, 40, &args).await?;
    method(spec, &mut s, attempt, 41).await?;

    // Close (200, no text, no failing method), then Close-Ok.
    if send(&mut s, attempt, 50, &[0, 200, 0, 0, 0, 0, 0])
        .await
        .is_ok()
    {
        let _ = method(spec, &mut s, attempt, 51).await;
    }
    Ok(format!(
        "{product}, vhost '{}' open for user '{}'",
        spec.vhost, spec.user
    ))
}

/// Connection.Start's product and version (from its server properties)
/// and its mechanisms.
fn started(args: &[u8]) -> Option<(String, String)> {
    let mut r = Reader::new(args);
    r.skip(2).ok()?;
    let len = r.i32().ok()? as u32 as usize;
    let table = r.bytes(len).ok()?;
    let len = r.i32().ok()? as u32 as usize;
    let mechanisms = String::from_utf8_lossy(r.bytes(len).ok()?).into_owned();
    // The two long strings are found by their keys rather than by walking
    // the table's fifteen field types.
    let field = |key: &[u8]| {
        let at = table.windows(key.len()).position(|w| w == key)? + key.len();
        let mut r = Reader::new(table.get(at..)?);
        let len = r.i32().ok()? as u32 as usize;
        Some(String::from_utf8_lossy(r.bytes(len).ok()?).into_owned())
    };
    let product = match (field(b"\x07productS"), field(b"\x07versionS")) {
        (Some(p), Some(v)) => format!("{p} {v}"),
        (p, _) => p.unwrap_or_else(|| "an AMQP 0-9-1 broker".into()),
    };
    Some((crate::log::shown(&product, 100), mechanisms))
}

/// The next Connection method frame (class 10, channel 0); heartbeats are
/// skipped. A Connection.Close instead is the server's reason.
fn method<'a>(
    spec: &'a Spec,
    s: &'a mut Stream,
    attempt: &'a Attempt,
    id: u16,
) -> Step<'a, Vec<u8>> {
    Box::pin(async move {
        for _ in 0..8 {
            let mut head = [0u8; 7];
            attempt
                .within("reading from the server", s.read_exact(&mut head))
                .await?;
            if head.starts_with(b"AMQP") {
                let [.., a, b, c] = head;
                return Err(Outcome::Fatal(format!(
                    "answered with its own protocol header (AMQP {a}-{b}-{c}): it does not speak AMQP 0-9-1"
                )));
            }
            let [kind, _, _, a, b, c, d] = head;
            let len = u32::from_be_bytes([a, b, c, d]) as usize;
            if len > MAX_FRAME {
                return Err(match super::sniff::protocol(&head) {
                    Some(other) => format!("answered as {other}, not as AMQP"),
                    None => {
                        format!("announced a {len}-byte frame: this is not an AMQP 0-9-1 broker")
                    }
                }
                .into());
            }
            let mut frame = vec![0; len + 1];
            attempt
                .within("reading from the server", s.read_exact(&mut frame))
                .await?;
            match (kind, frame.pop(), frame.get(..4)) {
                (8, Some(0xce), _) => continue,
                (1, Some(0xce), Some(&[0, 10, 0, m])) if u16::from(m) == id => {
                    return Ok(frame.split_off(4))
                }
                (1, Some(0xce), Some(&[0, 10, 0, 50])) => return Err(closed(spec, &frame)),
                _ => break,
            }
        }
        Err(
            "sent a frame that is not the next step of the AMQP handshake"
                .to_string()
                .into(),
        )
    })
}

/// Connection.Close: reply code and text, then the failing method.
fn closed(spec: &Spec, frame: &[u8]) -> Outcome {
    let mut r = Reader::new(frame.get(4..).unwrap_or_default());
    let code = r.i16().unwrap_or(0);
    let text = r
        .bytes(1)
        .and_then(|n| r.bytes(usize::from(n[0])))
        .map(|t| crate::log::shown(&String::from_utf8_lossy(t), 200))
        .unwrap_or_default();
    let (user, vhost) = (&spec.user, &spec.vhost);
    match code {
        403 => Outcome::Fatal(format!(
            "access refused for user '{user}'{} (vhost '{vhost}'): {text}: check the user and \
             {PASSWORD_VAR} or password-file=",
            if user == "guest" {
                " (guest may log in only from localhost)"
            } else {
                ""
            }
        )),
        // NOT_ALLOWED: no such vhost or no access to it, unless a
        // connection limit is reached (which passes).
        530 if !text.contains("limit") => Outcome::Fatal(format!(
            "vhost '{vhost}' is not open to user '{user}': {text}: create it, or \
             rabbitmqctl set_permissions -p '{vhost}' '{user}' ..."
        )),
        _ => Outcome::NotReady(format!("closed the connection: {code} {text}")),
    }
}

/// Sends a Connection method frame on channel 0.
fn send<'a>(s: &'a mut Stream, attempt: &'a Attempt, id: u16, args: &'a [u8]) -> Step<'a, ()> {
    Box::pin(async move {
        let mut frame = vec![1, 0, 0];
        frame.extend((args.len() as u32 + 4).to_be_bytes());
        frame.extend([0, 10]);
        frame.extend(id.to_be_bytes());
        frame.extend(args);
        frame.push(0xce);
        attempt
            .within("sending the handshake", s.write_all(&frame))
            .await
            .map_err(Outcome::from)
    })
}

/// A boxed exchange: each step is compiled once, not into every await
/// (kwait's no-TLS build is held to 1 MiB).
type Step<'a, T> = Pin<Box<dyn Future<Output = Result<T, Outcome>> + Send + 'a>>;

/// A short string: one length byte (every caller's text fits).
fn short(out: &mut Vec<u8>, s: &str) {
    out.push(s.len() as u8);
    out.extend(s.as_bytes());
}

fn long(out: &mut Vec<u8>, s: &[u8]) {
    out.extend((s.len() as u32).to_be_bytes());
    out.extend(s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_frames() {
        let mut args = vec![0, 9];
        let mut table = Vec::new();
        short(&mut table, "product");
        table.push(b'S');
        long(&mut table, b"RabbitMQ");
        short(&mut table, "version");
        table.push(b'S');
        long(&mut table, b"3.10.8");
        long(&mut args, &table);
        long(&mut args, b"AMQPLAIN PLAIN");
        long(&mut args, b"en_US");
        let (product, mechanisms) = started(&args).unwrap();
        assert_eq!(product, "RabbitMQ 3.10.8");
        assert_eq!(mechanisms, "AMQPLAIN PLAIN");
        for n in 0..args.len() {
            let _ = started(&args[..n]);
        }
        let mut huge = vec![0, 9];
        huge.extend(u32::MAX.to_be_bytes());
        assert!(started(&huge).is_none());
    }

    #[test]
    fn guest_by_default() {
        let spec = parse("t", "mq", false, &|_| None, &mut Vec::new()).unwrap();
        assert_eq!((spec.user.as_str(), spec.vhost.as_str()), ("guest", "/"));
        assert_eq!(spec.hosts[0].port, 5672);
        assert!(parse("t", "app@mq/%2f", false, &|_| None, &mut Vec::new())
            .unwrap_err()
            .contains("KWAIT_AMQP_PASSWORD"));
    }
}
