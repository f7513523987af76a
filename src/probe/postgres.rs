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
//! `PGPASSWORD`, `password-file=`, or a line of libpq's password file:
//! `PGPASSFILE`, else `~/.pgpass`, see [`pgpass`]) kwait logs in (trust, cleartext, MD5,
//! SCRAM-SHA-256) and waits for ReadyForQuery in the named database; a
//! wrong password, an unknown role or database is fatal, naming which.
//!
//! Not done: GSSAPI/SSPI/Kerberos, channel
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
    /// Without `password`: each host's password from the password file.
    pub pgpass: Vec<(HostPort, Secret)>,
    /// sslmode=require, verify-ca or verify-full.
    pub tls: Option<crate::tls::Config>,
}

/// Parses what follows `postgres://`; `what` names the target in errors.
pub fn parse(
    what: &str,
    rest: &str,
    env: crate::net::Env,
    warnings: &mut Vec<String>,
) -> Result<Spec, String> {
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
        // libpq's require: encrypted; the chain checked only with a CA.
        "require" => {
            if ca.is_none() {
                warnings.push(format!(
                    "{}; give ca=PATH to check it",
                    crate::net::unchecked(what, "sslmode=require without ca=", "server")
                ));
            }
            Some(crate::tls::Config::for_target(what, ca, ca.is_some(), false)?)
        }
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
    let password = crate::secret::password(what, file, &vars, env)?;
    let pgpass = match password {
        Some(_) => Vec::new(),
        None => pgpass(&url.hosts, database, user, env, warnings),
    };
    Ok(Spec {
        hosts: url.hosts,
        user: user.to_string(),
        database: database.to_string(),
        password,
        pgpass,
        tls,
    })
}

/// libpq's password file (`PGPASSFILE`, else `$HOME/.pgpass`), read as its
/// `passwordFromFile` reads it: lines `host:port:database:user:password`,
/// the first that matches wins, `*` matches any value in the first four
/// fields, `\` escapes `:` and `\`, lines starting with `#` are comments.
/// A file that is missing is no password; one that is not a regular file,
/// or is open to group or others (not 0600 or stricter), is ignored with a
/// warning, as libpq ignores it. Each host gets its own line, as in libpq.
fn pgpass(
    hosts: &[HostPort],
    database: &str,
    user: &str,
    env: crate::net::Env,
    warnings: &mut Vec<String>,
) -> Vec<(HostPort, Secret)> {
    use std::os::unix::fs::PermissionsExt;
    let nonempty = |k| env(k).filter(|v| !v.is_empty());
    let path = match (nonempty("PGPASSFILE"), nonempty("HOME")) {
        (Some(file), _) => std::path::PathBuf::from(file),
        (None, Some(home)) => std::path::Path::new(&home).join(".pgpass"),
        (None, None) => return Vec::new(),
    };
    let shown = path.display();
    let Ok(meta) = std::fs::metadata(&path) else {
        return Vec::new();
    };
    let text = match meta.permissions().mode() & 0o077 {
        _ if !meta.is_file() => Err(format!("{shown} is not a plain file")),
        0 => crate::file::read(&path, &shown.to_string(), "too large for a password file")
            .and_then(|b| String::from_utf8(b).map_err(|_| format!("{shown} is not UTF-8 text"))),
        _ => Err(format!(
            "{shown} has group or world access (chmod 0600 {shown}, as libpq asks)"
        )),
    };
    let text = match text {
        Ok(text) => text,
        Err(why) => {
            warnings.push(format!("password file {why}: ignored, as libpq ignores it"));
            return Vec::new();
        }
    };
    hosts
        .iter()
        .filter_map(|h| {
            let port = h.port.to_string();
            let found = pgpass_line(&text, [&h.host, &port, database, user])?;
            Some((h.clone(), Secret(found)))
        })
        .collect()
}

/// The password of the first line of a password file's `text` whose first
/// four fields match `want` (libpq's `pwdfMatchesString`, then the
/// password de-escaped up to the next unescaped `:`). An empty password is
/// none.
fn pgpass_line(text: &str, want: [&str; 4]) -> Option<String> {
    'lines: for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let mut rest = line;
        for token in want {
            match pgpass_field(rest, token) {
                Some(after) => rest = after,
                None => continue 'lines,
            }
        }
        let mut password = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match (c, chars.clone().next()) {
                (':', _) => break,
                ('\\', Some(next)) => {
                    password.push(next);
                    chars.next();
                }
                (c, _) => password.push(c),
            }
        }
        return Some(password).filter(|p| !p.is_empty());
    }
    None
}

/// What follows field `buf`'s `:` when the field is `*` or, unescaped,
/// `token`; `None` when it does not match.
fn pgpass_field<'a>(buf: &'a str, token: &str) -> Option<&'a str> {
    if let Some(rest) = buf.strip_prefix("*:") {
        return Some(rest);
    }
    let (b, t) = (buf.as_bytes(), token.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < b.len() {
        let escaped = b[i] == b'\\';
        i += usize::from(escaped);
        let c = *b.get(i)?;
        if c == b':' && !escaped && j == t.len() {
            return buf.get(i + 1..);
        }
        if t.get(j) != Some(&c) {
            return None;
        }
        (i, j) = (i + 1, j + 1);
    }
    None
}

impl Spec {
    /// The password for `addr`: the target's own, else its password-file line.
    fn password_for(&self, addr: &HostPort) -> Option<&Secret> {
        self.password
            .as_ref()
            .or_else(|| self.pgpass.iter().find(|(h, _)| h == addr).map(|(_, p)| p))
    }
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

    let password = spec.password_for(addr);
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
                let Some(password) = password else {
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
            b'E' => return Err(refused(spec, password.is_some(), &body)),
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
fn refused(spec: &Spec, login: bool, body: &[u8]) -> Outcome {
    let code = field(body, b'C').unwrap_or_default();
    let said = crate::log::shown(&field(body, b'M').unwrap_or_default(), 200);
    let said = format!("{said} (SQLSTATE {code})");
    if code == "57P03" {
        return Outcome::NotReady(said);
    }
    if !login {
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
            "{said}: wrong password for user {}: check KWAIT_POSTGRES_PASSWORD, PGPASSWORD, password-file= or the password file (PGPASSFILE, ~/.pgpass)",
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
        let s = parse("t", "app@db/orders?sslmode=disable", &env, &mut Vec::new()).unwrap();
        assert_eq!((s.user.as_str(), s.database.as_str()), ("app", "orders"));
        assert_eq!(s.hosts[0].to_string(), "db:5432");
        let s = parse("t", "a:1,[::1]", &env, &mut Vec::new()).unwrap();
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
            let err = parse("t", bad, &env, &mut Vec::new()).unwrap_err();
            assert!(
                err.contains(needle) && !err.contains("hunter2"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn password_file_lines_as_libpq_reads_them() {
        let want = ["db", "5432", "app", "u:x"];
        let line = |text: &str| pgpass_line(text, want);
        assert_eq!(line("db:5432:app:u\\:x:pw").as_deref(), Some("pw"));
        assert_eq!(line("*:*:*:*:p\\:w\\\\d:tail").as_deref(), Some("p:w\\d"));
        assert_eq!(
            line("#db:5432:app:u\\:x:no\n*:5432:*:u\\:x:yes").as_deref(),
            Some("yes")
        );
        assert_eq!(
            line("db:5433:app:u\\:x:no\r\ndb:*:app:*:yes\r\n").as_deref(),
            Some("yes")
        );
        assert_eq!(
            line("d*:5432:app:u\\:x:no"),
            None,
            "* is a wildcard only alone"
        );
        assert_eq!(
            line("db:5432:app:u\\:x:"),
            None,
            "an empty password is none"
        );
        assert_eq!(line("db:5432:app:u\\:x:a\\"), Some("a\\".into()));
        for n in 0.."db:5432:app:u\\:x:pw".len() {
            let _ = line(&"db:5432:app:u\\:x:pw"[..n]);
        }
    }

    #[test]
    fn password_file_is_found_checked_and_per_host() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("kwait-pgpass-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(".pgpass");
        std::fs::write(&file, "a:5432:app:app:one\nb:7:*:app:two\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let home = dir.clone().into_os_string();
        let env = |k: &str| (k == "HOME").then(|| home.clone());
        let mut warnings = Vec::new();
        let s = parse("t", "app@a,b:7,c/app", &env, &mut warnings).unwrap();
        assert!(warnings.is_empty() && s.password.is_none());
        let got: Vec<_> = s
            .hosts
            .iter()
            .map(|h| s.password_for(h).map(Secret::expose))
            .collect();
        assert_eq!(got, [Some("one"), Some("two"), None]);
        // PGPASSWORD wins over the file.
        let both = |k: &str| match k {
            "PGPASSWORD" => Some("env".into()),
            _ => env(k),
        };
        let s = parse("t", "app@a/app", &both, &mut warnings).unwrap();
        assert_eq!(s.password_for(&s.hosts[0]).map(Secret::expose), Some("env"));
        // Group-readable: ignored, with a warning that says how to fix it.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        let named = file.clone().into_os_string();
        let pgpassfile = |k: &str| (k == "PGPASSFILE").then(|| named.clone());
        let s = parse("t", "app@a/app", &pgpassfile, &mut warnings).unwrap();
        assert!(s.pgpass.is_empty());
        assert!(
            warnings.len() == 1 && warnings[0].contains("chmod 0600"),
            "{warnings:?}"
        );
        // Missing: no password, no warning.
        std::fs::remove_dir_all(&dir).unwrap();
        let s = parse("t", "app@a/app", &pgpassfile, &mut warnings).unwrap();
        assert!(s.pgpass.is_empty() && warnings.len() == 1);
    }
}
