//! `postgres://` (and `postgresql://`): PostgreSQL's own startup exchange,
//! protocol 3.0.
//!
//! Without a password this is `pg_isready`'s rule, as libpq's
//! `internal_ping` applies it: any authentication request, or a finished
//! connection, means the server is up; an ErrorResponse with SQLSTATE 57P03
//! (`cannot_connect_now`: starting up, shutting down, in recovery, not yet
//! accepting connections) is not ready, with the server's words; any other
//! SQLSTATE is up too (the server judged the login, so it serves); no
//! answer is not ready. With a password (`KWAIT_POSTGRES_PASSWORD`,
//! `PGPASSWORD`, `password-file=`) kwait logs in (trust, cleartext, MD5,
//! SCRAM-SHA-256) and waits for ReadyForQuery in the named database; a
//! wrong password, an unknown role or database is fatal, naming which.
//!
//! Not done: `.pgpass` and `PGPASSFILE`, GSSAPI/SSPI/Kerberos, channel
//! binding (SCRAM-SHA-256-PLUS), libpq's default `sslmode=prefer` (kwait's
//! default is `disable`; TLS is asked for with `sslmode=require` or
//! `verify-full`, sent as an SSLRequest and then the TLS handshake on the
//! same connection).

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Outcome;
use crate::net::{user_url, Attempt, Cause, HostPort, Stream};
use crate::secret::Secret;

/// Where passwords go, for the error about one in the URL.
const PASSWORDS: &str = "set KWAIT_POSTGRES_PASSWORD or PGPASSWORD, or give password-file=PATH";

/// The largest message kwait takes from the server: startup answers are a
/// few hundred bytes; a larger length prefix is refused, not allocated.
const MAX_MESSAGE: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub hosts: Vec<HostPort>,
    pub user: String,
    pub database: String,
    pub password: Option<Secret>,
    /// sslmode=require, verify-ca or verify-full.
    pub tls: Option<crate::tls::Config>,
}

/// Parses what follows `postgres://`; `what` names the target in errors.
pub fn parse(what: &str, rest: &str, env: crate::net::Env) -> Result<Spec, String> {
    let url = user_url(what, rest, 5432, PASSWORDS)?;
    let (mut sslmode, mut ca, mut file) = ("disable", None, None);
    for (key, value) in url.params {
        match key {
            "sslmode" => sslmode = value,
            "ca" | "sslrootcert" => ca = Some(value),
            "password-file" => file = Some(value),
            other => {
                return Err(format!(
                    "{what}: unknown parameter '{other}' (postgres:// takes sslmode=, ca=, password-file=)"
                ))
            }
        }
    }
    let tls = match sslmode {
        "disable" if ca.is_some() => {
            return Err(format!(
                "{what}: ca= needs TLS: add sslmode=verify-full"
            ))
        }
        "disable" => None,
        "require" => Some(crate::tls::Config::for_target(what, ca, false, false)?),
        "verify-ca" => Some(crate::tls::Config::for_target(what, ca, true, false)?),
        "verify-full" => Some(crate::tls::Config::for_target(what, ca, true, true)?),
        other => {
            return Err(format!(
                "{what}: sslmode={other} is not one kwait knows (disable, require, verify-ca, verify-full)"
            ))
        }
    };
    let user = url.user.as_deref().unwrap_or("postgres");
    let database = match url.path.trim_end_matches('/') {
        "" => user,
        db => db,
    };
    if database.contains('/') {
        return Err(format!("{what}: write one database after the hosts: /DB"));
    }
    let vars = ["KWAIT_POSTGRES_PASSWORD", "PGPASSWORD"];
    Ok(Spec {
        hosts: url.hosts,
        user: user.to_string(),
        database: database.to_string(),
        password: crate::secret::password(what, file, &vars, env)?,
        tls,
    })
}

pub async fn check(spec: &Spec, attempt: &Attempt) -> Outcome {
    let hosts = attempt.rotation(&spec.hosts);
    super::race::first_session(hosts, &|addr| Box::pin(session(spec, addr, attempt))).await
}

/// One startup exchange: what shows the server up, or why not.
async fn session(spec: &Spec, addr: &HostPort, attempt: &Attempt) -> Result<String, Outcome> {
    let mut tcp = attempt.connect(addr).await?;
    if spec.tls.is_some() {
        // SSLRequest: length 8, code 80877103; one byte answers it.
        let ssl_request = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
        attempt
            .within("sending the SSLRequest", tcp.write_all(&ssl_request))
            .await?;
        let answer = attempt
            .within("reading the SSLRequest's answer", tcp.read_u8())
            .await?;
        match answer {
            b'S' => {}
            b'N' => {
                return Err(Outcome::Fatal(
                    "the server refuses TLS (ssl = off): turn ssl on, or use sslmode=disable"
                        .into(),
                ))
            }
            _ => return Err(Outcome::NotReady(not_postgres(&[answer]))),
        }
    }
    let mut stream: Stream = match &spec.tls {
        None => Box::new(tcp),
        Some(config) => Box::new(crate::tls::connect(config, &addr.host, tcp, attempt).await?),
    };
    // Protocol 3.0, then the parameters, each name and value NUL-ended.
    let mut startup = vec![0, 3, 0, 0];
    for (key, value) in [
        ("user", spec.user.as_str()),
        ("database", &spec.database),
        ("application_name", "kwait"),
    ] {
        for part in [key, value] {
            startup.extend_from_slice(part.as_bytes());
            startup.push(0);
        }
    }
    startup.push(0);
    send(&mut stream, None, startup, attempt).await?;

    let mut sasl: Option<crate::sasl::Exchange> = None;
    let mut first = true;
    loop {
        let (kind, body) = read_message(&mut stream, first, attempt).await?;
        first = false;
        match kind {
            b'R' => {
                let (code, data) = match body.split_first_chunk::<4>() {
                    Some((code, data)) => (u32::from_be_bytes(*code), data),
                    None => return Err(Outcome::NotReady(not_postgres(&body))),
                };
                let Some(password) = &spec.password else {
                    // internal_ping: an authentication request means up.
                    return Ok(match code {
                        0 => "accepted the connection (pg_isready's rule)".into(),
                        _ => "asked for authentication, so it is up (pg_isready's rule; \
                              set KWAIT_POSTGRES_PASSWORD to check the login too)"
                            .into(),
                    });
                };
                let reply = authenticate(spec, password, code, data, &mut sasl)?;
                if let Some(reply) = reply {
                    send(&mut stream, Some(b'p'), reply, attempt).await?;
                }
            }
            b'E' => return Err(refused(spec, &body)),
            b'Z' => {
                let _ = send(&mut stream, Some(b'X'), Vec::new(), attempt).await;
                return Ok(format!(
                    "logged in as {} to database {} (ReadyForQuery)",
                    spec.user, spec.database
                ));
            }
            // ParameterStatus, BackendKeyData, NoticeResponse,
            // NegotiateProtocolVersion: on to the next.
            b'S' | b'K' | b'N' | b'v' => {}
            _ => return Err(Outcome::NotReady(not_postgres(&[kind]))),
        }
    }
}

/// The answer to an authentication request `code` with its `data`: the
/// password message to send, or none (AuthenticationOk, SCRAM's last step).
fn authenticate(
    spec: &Spec,
    password: &Secret,
    code: u32,
    data: &[u8],
    sasl: &mut Option<crate::sasl::Exchange>,
) -> Result<Option<Vec<u8>>, Outcome> {
    let scram_failed = |e: String| Outcome::Fatal(e.replace("the broker", "the server"));
    let text = |s: &str| {
        let mut out = s.as_bytes().to_vec();
        out.push(0);
        Ok(Some(out))
    };
    match code {
        0 => Ok(None),
        // AuthenticationCleartextPassword.
        3 => text(password.expose()),
        // AuthenticationMD5Password: "md5" + md5(md5(password + user) + salt).
        5 => {
            let salt = data
                .get(..4)
                .ok_or_else(|| Outcome::NotReady(not_postgres(data)))?;
            let inner = hex(&md5(
                &[password.expose().as_bytes(), spec.user.as_bytes()].concat()
            ));
            let outer = hex(&md5(&[inner.as_bytes(), salt].concat()));
            text(&format!("md5{outer}"))
        }
        // AuthenticationSASL: the mechanisms, each NUL-terminated.
        10 => {
            if !data.split(|&b| b == 0).any(|m| m == b"SCRAM-SHA-256") {
                return Err(Outcome::Fatal(
                    "the server offers no SASL mechanism kwait has (SCRAM-SHA-256)".into(),
                ));
            }
            let (exchange, first) = crate::sasl::Exchange::start(&crate::security::Sasl {
                mechanism: crate::security::Mechanism::ScramSha256,
                user: spec.user.clone(),
                password: password.clone(),
            })
            .map_err(Outcome::Fatal)?;
            *sasl = Some(exchange);
            let mut out = b"SCRAM-SHA-256\0".to_vec();
            out.extend_from_slice(&(first.len() as u32).to_be_bytes());
            out.extend_from_slice(&first);
            Ok(Some(out))
        }
        // AuthenticationSASLContinue, AuthenticationSASLFinal.
        11 | 12 => match sasl.as_mut().map(|s| s.step(data)) {
            Some(Ok(crate::sasl::Step::Send(out))) if code == 11 => Ok(Some(out)),
            Some(Ok(crate::sasl::Step::Done)) if code == 12 => Ok(None),
            Some(Err(e)) => Err(scram_failed(e)),
            _ => Err(Outcome::Fatal(
                "the server's SCRAM exchange is out of order".into(),
            )),
        },
        other => Err(Outcome::Fatal(format!(
            "the server asks for authentication method {other} (Kerberos, GSSAPI or SSPI), \
             which kwait does not speak: allow scram-sha-256, md5 or password in pg_hba.conf"
        ))),
    }
}

/// An ErrorResponse, judged: which SQLSTATEs are fatal, which wait.
fn refused(spec: &Spec, body: &[u8]) -> Outcome {
    let code = field(body, b'C').unwrap_or_default();
    let said = crate::log::shown(&field(body, b'M').unwrap_or_default(), 200);
    let said = format!("{said} (SQLSTATE {code})");
    if code == "57P03" {
        return Outcome::NotReady(said);
    }
    if spec.password.is_none() {
        // internal_ping: any other SQLSTATE means the server judged the
        // login, so it is up (a role or database not there yet included).
        // A bare 53300 (too many connections) is up for pg_isready too.
        return if code.len() == 5 {
            Outcome::Ready(format!("answered {said}: up by pg_isready's rule"))
        } else {
            Outcome::NotReady(format!("answered with an error without a SQLSTATE: {said}"))
        };
    }
    match code.as_str() {
        "28P01" => Outcome::Fatal(format!(
            "{said}: wrong password for user {}: check KWAIT_POSTGRES_PASSWORD, PGPASSWORD or password-file=",
            spec.user
        )),
        "3D000" => Outcome::Fatal(format!(
            "{said}: no database {}: create it, or name another after the host (/DB)",
            spec.database
        )),
        "28000" => Outcome::Fatal(format!(
            "{said}: the role {} cannot log in here: create it, or fix pg_hba.conf or the user in the target",
            spec.user
        )),
        _ => Outcome::NotReady(said),
    }
}

/// Field `key` of an ErrorResponse ('C' the SQLSTATE, 'M' the message).
fn field(body: &[u8], key: u8) -> Option<String> {
    body.split(|&b| b == 0).find_map(|f| match f.split_first() {
        Some((&k, value)) if k == key => Some(String::from_utf8_lossy(value).into_owned()),
        _ => None,
    })
}

fn not_postgres(first: &[u8]) -> String {
    match super::sniff::protocol(first) {
        Some(other) => format!("this is {other}, not PostgreSQL"),
        None => "answered something that is not PostgreSQL".into(),
    }
}

/// Sends a message: `kind` (none for the startup message), then its
/// length, then `body`.
async fn send(
    stream: &mut Stream,
    kind: Option<u8>,
    body: Vec<u8>,
    attempt: &Attempt,
) -> Result<(), String> {
    let mut out = Vec::with_capacity(body.len() + 5);
    out.extend(kind);
    out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    out.extend_from_slice(&body);
    attempt
        .within("sending to the server", stream.write_all(&out))
        .await
}

/// One message: its type and body, at most [`MAX_MESSAGE`] bytes.
async fn read_message(
    stream: &mut Stream,
    first: bool,
    attempt: &Attempt,
) -> Result<(u8, Vec<u8>), Outcome> {
    let mut head = [0u8; 5];
    match attempt
        .exchange("reading the server's answer", stream.read_exact(&mut head))
        .await
    {
        Ok(_) => {}
        Err(e) if first && e.cause == Cause::Closed => {
            return Err(Outcome::NotReady(
                "closed the connection without answering the startup message".into(),
            ))
        }
        Err(e) => return Err(Outcome::NotReady(e.text)),
    }
    let [kind, len @ ..] = head;
    let len = u32::from_be_bytes(len) as usize;
    if !(4..=MAX_MESSAGE).contains(&len) || (first && !b"REv".contains(&kind)) {
        return Err(Outcome::NotReady(match super::sniff::protocol(&head) {
            None if b"REv".contains(&kind) => {
                format!("answered a message of {len} bytes: not PostgreSQL, or broken")
            }
            _ => not_postgres(&head),
        }));
    }
    let mut body = vec![0; len - 4];
    attempt
        .within("reading the server's answer", stream.read_exact(&mut body))
        .await?;
    Ok((kind, body))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// MD5 (RFC 1321), for PostgreSQL's `md5` password method only.
fn md5(data: &[u8]) -> [u8; 16] {
    const S: [u32; 16] = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
    // K[i] = floor(|sin(i + 1)| * 2^32), RFC 1321 §3.4.
    const K: [u32; 64] = [
        0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613,
        0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193,
        0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d,
        0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
        0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122,
        0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
        0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244,
        0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
        0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
        0xeb86d391,
    ];
    let mut h: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&(data.len() as u64).wrapping_mul(8).to_le_bytes());
    for block in msg.chunks_exact(64) {
        let mut m = [0u32; 16];
        for (w, c) in m.iter_mut().zip(block.chunks_exact(4)) {
            *w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        let [mut a, mut b, mut c, mut d] = h;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(K[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[(i / 16) * 4 + i % 4]));
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 16];
    for (o, w) in out.chunks_exact_mut(4).zip(h) {
        o.copy_from_slice(&w.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_vectors() {
        assert_eq!(hex(&md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            hex(&md5(b"The quick brown fox jumps over the lazy dog")),
            "9e107d9d372bb6826bd81d3542a419d6"
        );
        assert_eq!(hex(&md5(&[b'a'; 100])), "36a92cc94a9e0fa21f625f8bfb007adf");
    }

    #[test]
    fn targets() {
        let env = |_: &str| None;
        let s = parse("t", "app@db/orders?sslmode=disable", &env).unwrap();
        assert_eq!((s.user.as_str(), s.database.as_str()), ("app", "orders"));
        assert_eq!(s.hosts[0].to_string(), "db:5432");
        let s = parse("t", "a:1,[::1]", &env).unwrap();
        assert_eq!(
            (s.user.as_str(), s.database.as_str()),
            ("postgres", "postgres")
        );
        assert_eq!(s.hosts[1].port, 5432);
        for (bad, needle) in [
            ("u:hunter2@db", "KWAIT_POSTGRES_PASSWORD"),
            ("db?password=hunter2", "password-file=PATH"),
            ("db?sslmode=prefer", "sslmode=prefer"),
            ("db?x=1", "unknown parameter 'x'"),
            ("db?ca=/x", "needs TLS"),
            ("db/a/b", "one database"),
        ] {
            let err = parse("t", bad, &env).unwrap_err();
            assert!(
                err.contains(needle) && !err.contains("hunter2"),
                "{bad}: {err}"
            );
        }
    }
}
