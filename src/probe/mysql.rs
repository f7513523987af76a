//! `mysql://[USER@]HOST[:3306][/DB]` (MySQL and MariaDB): ready when the
//! server's greeting (HandshakeV10) arrives over TCP and the login that
//! follows it is answered. The official images run their temporary init
//! server with `--skip-networking`, so a greeting over TCP is the real
//! server's. An error packet instead of the greeting (1040 Too many
//! connections, 1129 host blocked) is not ready, with its code and text.
//!
//! Without USER, kwait logs in with an empty user name and takes "access
//! denied" as up, as `mysqladmin ping` does: a client that leaves after the
//! greeting is a handshake error, and `max_connect_errors` of those block
//! its host. With USER, the login must succeed (and select /DB); access
//! denied (1045, 1044, 1698) and an unknown database (1049) are fatal.
//!
//! Logins: mysql_native_password, and caching_sha2_password's fast path
//! (the server has the password cached) and, over TLS, its full path. Not
//! its RSA key exchange (ring, kwait's crypto, has no RSA encryption), nor
//! MariaDB's ed25519 or GSSAPI; the hashes come from ring, so a build
//! without the `tls` feature logs in only with an empty password.
//! Every packet is read bounded ([`MAX_PACKET`]).

use std::future::Future;
use std::pin::Pin;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Outcome;
use crate::net::{user_url, Attempt, HostPort, Io};
use crate::secret::Secret;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub hosts: Vec<HostPort>,
    pub user: Option<String>,
    pub db: Option<String>,
    pub password: Option<Secret>,
    pub tls: Option<crate::tls::Config>,
}

/// The largest packet read: greetings, OK and error packets are well
/// under 1 KiB.
const MAX_PACKET: usize = 16 << 10;

// Capability flags (MySQL's include/mysql_com.h).
const CONNECT_WITH_DB: u32 = 0x8;
const PROTOCOL_41: u32 = 0x200;
const SSL: u32 = 0x800;
const SECURE_CONNECTION: u32 = 0x8000;
const PLUGIN_AUTH: u32 = 0x8_0000;

/// A connection, plain or TLS; before TLS, the TCP stream borrowed.
type Conn<'a> = Box<dyn Io + 'a>;

const PASSWORDS: &str = "set KWAIT_MYSQL_PASSWORD or MYSQL_PWD, or give password-file=PATH";

/// Parses what follows `mysql://`; `what` names the target in errors, what
/// `tls-verify=false` leaves unchecked goes into `warnings`.
pub fn parse(
    what: &str,
    rest: &str,
    env: crate::net::Env,
    warnings: &mut Vec<String>,
) -> Result<Spec, String> {
    let url = user_url(what, rest, 3306, PASSWORDS)?;
    let (tls, file) = url.tls_and_file(what, false, warnings)?;
    let vars = ["KWAIT_MYSQL_PASSWORD", "MYSQL_PWD"];
    let password = crate::secret::password(what, file, &vars, env)?;
    let db = Some(url.path.trim_end_matches('/').to_string()).filter(|p| !p.is_empty());
    if url.user.is_none() && (db.is_some() || password.is_some()) {
        return Err(format!(
            "{what}: a database or a password needs a user: write mysql://USER@HOST/DB"
        ));
    }
    Ok(Spec {
        hosts: url.hosts,
        user: url.user,
        db,
        password,
        tls,
    })
}

pub async fn check(spec: &Spec, attempt: &Attempt) -> Outcome {
    let hosts = attempt.rotation(&spec.hosts);
    super::race::first_session(hosts, &|addr| Box::pin(login(spec, addr, attempt))).await
}

async fn login(spec: &Spec, addr: &HostPort, attempt: &Attempt) -> Result<String, Outcome> {
    let mut tcp = attempt.connect(addr).await?;
    let mut seq = 0;
    let mut plain: Conn = Box::new(&mut tcp);
    let packet = read(&mut plain, attempt, &mut seq).await?;
    if packet.first() == Some(&0xff) {
        return Err(format!("refused the connection: {}", error(&packet).1).into());
    }
    let greeting = Greeting::parse(&packet).ok_or_else(|| match packet.first() {
        Some(&v) if v != 10 => format!("greeted with protocol version {v}, not MySQL's 10"),
        _ => "sent a greeting that is not MySQL's HandshakeV10".to_string(),
    })?;
    let version = greeting.version;
    let mut caps = PROTOCOL_41 | SECURE_CONNECTION | PLUGIN_AUTH | 1;
    if spec.db.is_some() {
        caps |= CONNECT_WITH_DB;
    }
    let mut stream: Conn = match &spec.tls {
        None => plain,
        Some(config) => {
            if greeting.caps & SSL == 0 {
                return Err(Outcome::Fatal(format!(
                    "{version} does not offer TLS: configure its ssl_cert and ssl_key, or drop tls= and ca="
                )));
            }
            caps |= SSL;
            write(&mut plain, attempt, &mut seq, &head(caps)).await?;
            drop(plain);
            Box::new(crate::tls::connect(config, &addr.host, tcp, attempt).await?)
        }
    };
    let user = spec.user.as_deref().unwrap_or("");
    let password = spec.password.as_ref().map_or("", Secret::expose);
    let mut plugin = greeting.plugin;
    let mut body = head(caps);
    body.extend(user.as_bytes());
    body.push(0);
    let auth = scramble(&plugin, &greeting.nonce, password)?;
    body.push(auth.len() as u8);
    body.extend(auth);
    if let Some(db) = &spec.db {
        body.extend(db.as_bytes());
        body.push(0);
    }
    body.extend(plugin.as_bytes());
    body.push(0);
    write(&mut stream, attempt, &mut seq, &body).await?;
    // A server switches the method or asks for more at most a few times.
    for _ in 0..4 {
        let packet = read(&mut stream, attempt, &mut seq).await?;
        // No user: any answer but an error other than "access denied"
        // is a server that serves (`mysqladmin ping`'s rule).
        if spec.user.is_none() {
            let (code, text) = error(&packet);
            return match packet.first() {
                Some(0xff) if !matches!(code, 1045 | 1698) => {
                    Err(format!("refused the login: {text}").into())
                }
                _ => Ok(format!("{version} answered a login")),
            };
        }
        match packet.first() {
            Some(0) => {
                // COM_QUIT, so that the server logs no aborted connection.
                let _ = write(&mut stream, attempt, &mut 0, &[1]).await;
                let db = spec.db.as_deref().map_or(String::new(), |d| format!(", {d}"));
                return Ok(format!("{version}, logged in as {user}{db}"));
            }
            Some(0xff) => return Err(refused(spec, &packet)),
            // AuthSwitchRequest: another method, with its own nonce.
            Some(0xfe) => {
                let rest = packet.get(1..).unwrap_or_default();
                let (name, nonce) = rest.split_at(rest.iter().position(|&b| b == 0).unwrap_or(0));
                plugin = String::from_utf8_lossy(name).into_owned();
                let nonce = nonce.get(1..).unwrap_or_default();
                let nonce = nonce.strip_suffix(&[0]).unwrap_or(nonce);
                let auth = scramble(&plugin, nonce, password)?;
                write(&mut stream, attempt, &mut seq, &auth).await?;
            }
            // caching_sha2_password: 3 is "fast path done" (OK follows), 4
            // "full authentication": the password itself, only under TLS.
            Some(1) if packet.get(1) == Some(&3) => {}
            Some(1) if packet.get(1) == Some(&4) && spec.tls.is_some() => {
                let mut clear = password.as_bytes().to_vec();
                clear.push(0);
                write(&mut stream, attempt, &mut seq, &clear).await?;
            }
            Some(1) if packet.get(1) == Some(&4) => {
                return Err(Outcome::Fatal(
                    "caching_sha2_password wants the full authentication (the server has not cached \
                     this password yet), which kwait does only over TLS: add tls=true or ca=PATH, or log in \
                     once with a MySQL client"
                        .into(),
                ))
            }
            _ => break,
        }
    }
    Err("answered the login with a packet kwait does not know"
        .to_string()
        .into())
}

/// A login's error packet: fatal when waiting cannot fix it.
fn refused(spec: &Spec, packet: &[u8]) -> Outcome {
    let (code, text) = error(packet);
    let user = spec.user.as_deref().unwrap_or("");
    match code {
        1045 | 1698 => Outcome::Fatal(format!(
            "access denied for user '{user}' ({text}): check the password \
             (KWAIT_MYSQL_PASSWORD, MYSQL_PWD or password-file=)"
        )),
        1044 | 1049 => Outcome::Fatal(format!(
            "database '{}' is not there for user '{user}' ({text}): check /DB",
            spec.db.as_deref().unwrap_or("")
        )),
        1251 | 1524 => Outcome::Fatal(format!(
            "{text}: kwait logs in with mysql_native_password or caching_sha2_password"
        )),
        _ => Outcome::NotReady(format!("refused the login: {text}")),
    }
}

/// An error packet's code and "ERROR 1040: Too many connections".
fn error(packet: &[u8]) -> (u16, String) {
    let code = match packet {
        [_, lo, hi, ..] => u16::from_le_bytes([*lo, *hi]),
        _ => 0,
    };
    let mut text = packet.get(3..).unwrap_or_default();
    // `#` and a five-character SQLSTATE, after the greeting.
    if text.first() == Some(&b'#') {
        text = text.get(6..).unwrap_or_default();
    }
    let text = crate::log::shown(&String::from_utf8_lossy(text), 200);
    (code, format!("ERROR {code}: {text}"))
}

struct Greeting {
    version: String,
    caps: u32,
    nonce: Vec<u8>,
    plugin: String,
}

impl Greeting {
    /// HandshakeV10 (MySQL's "Connection Phase" documentation).
    fn parse(p: &[u8]) -> Option<Greeting> {
        let (&10, p) = p.split_first()? else {
            return None;
        };
        let nul = p.iter().position(|&b| b == 0)?;
        let name = String::from_utf8_lossy(p.get(..nul)?);
        // MariaDB 10 and 11 add a "5.5.5-" prefix for old clients.
        let name = name.strip_prefix("5.5.5-").unwrap_or(&name);
        let version = if name.contains("MariaDB") {
            name.to_string()
        } else {
            format!("MySQL {name}")
        };
        let p = p.get(nul + 1..)?;
        // Connection id (4), nonce part 1 (8), filler, capabilities low,
        // charset, status, capabilities high, nonce length, 10 reserved.
        let mut nonce = p.get(4..12)?.to_vec();
        let caps = u32::from_le_bytes([*p.get(13)?, *p.get(14)?, *p.get(18)?, *p.get(19)?]);
        let rest = p.get(31..).unwrap_or_default();
        let part2 = usize::from(*p.get(20)?).saturating_sub(8).max(13);
        let (part2, rest) = rest.split_at(part2.min(rest.len()));
        nonce.extend(part2.strip_suffix(&[0]).unwrap_or(part2));
        let plugin = match caps & PLUGIN_AUTH {
            0 => "mysql_native_password".into(),
            _ => String::from_utf8_lossy(rest.split(|&b| b == 0).next().unwrap_or_default())
                .into_owned(),
        };
        Some(Greeting {
            version,
            caps,
            nonce,
            plugin,
        })
    }
}

/// A HandshakeResponse41's (and SSLRequest's) start: capabilities, max
/// packet size (16 MiB), utf8mb4, 23 zeros.
fn head(caps: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend(caps.to_le_bytes());
    out.extend(0x0100_0000u32.to_le_bytes());
    out.push(45);
    out.extend([0; 23]);
    out
}

/// The answer to `plugin`'s challenge `nonce`. An empty password is an
/// empty answer in both methods.
fn scramble(plugin: &str, nonce: &[u8], password: &str) -> Result<Vec<u8>, Outcome> {
    let sha2 = match plugin {
        _ if password.is_empty() => return Ok(Vec::new()),
        "mysql_native_password" => false,
        "caching_sha2_password" => true,
        other => {
            return Err(Outcome::Fatal(format!(
                "the server asks for {other}: kwait logs in with mysql_native_password or caching_sha2_password \
                 (ALTER USER ... IDENTIFIED WITH one of them)"
            )))
        }
    };
    hash(sha2, nonce, password.as_bytes())
        .ok_or_else(|| Outcome::Fatal(format!("{plugin} needs SHA hashing, which a build without the tls feature lacks: use kwait's full build")))
}

/// mysql_native_password: SHA1(pw) XOR SHA1(nonce, SHA1(SHA1(pw)));
/// caching_sha2_password: SHA256(pw) XOR SHA256(SHA256(SHA256(pw)), nonce).
#[cfg(feature = "tls")]
fn hash(sha2: bool, nonce: &[u8], password: &[u8]) -> Option<Vec<u8>> {
    use ring::digest::{digest, Context, SHA1_FOR_LEGACY_USE_ONLY, SHA256};
    let alg = if sha2 {
        &SHA256
    } else {
        &SHA1_FOR_LEGACY_USE_ONLY
    };
    let once = digest(alg, password);
    let twice = digest(alg, once.as_ref());
    let mut mix = Context::new(alg);
    if sha2 {
        mix.update(twice.as_ref());
        mix.update(nonce);
    } else {
        mix.update(nonce);
        mix.update(twice.as_ref());
    }
    let mix = mix.finish();
    Some(
        once.as_ref()
            .iter()
            .zip(mix.as_ref())
            .map(|(a, b)| a ^ b)
            .collect(),
    )
}

#[cfg(not(feature = "tls"))]
fn hash(_: bool, _: &[u8], _: &[u8]) -> Option<Vec<u8>> {
    None
}

/// A boxed exchange: each step is compiled once, not into every await
/// (kwait's no-TLS build is held to 1 MiB).
type Step<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// One packet: a 3-byte little-endian length, the sequence number, the
/// payload. `seq` becomes the number the next packet sent carries.
fn read<'a>(s: &'a mut Conn<'_>, attempt: &'a Attempt, seq: &'a mut u8) -> Step<'a, Vec<u8>> {
    Box::pin(async move {
        let mut head = [0u8; 4];
        attempt
            .within("reading from the server", s.read_exact(&mut head))
            .await?;
        let [a, b, c, n] = head;
        let len = u32::from_le_bytes([a, b, c, 0]) as usize;
        if len > MAX_PACKET {
            return Err(match super::sniff::protocol(&head) {
                Some(other) => format!("answered as {other}, not as MySQL"),
                None => format!("announced a {len}-byte packet: this is not a MySQL server"),
            });
        }
        *seq = n.wrapping_add(1);
        let mut packet = vec![0; len];
        attempt
            .within("reading from the server", s.read_exact(&mut packet))
            .await?;
        Ok(packet)
    })
}

fn write<'a>(
    s: &'a mut Conn<'_>,
    attempt: &'a Attempt,
    seq: &'a mut u8,
    body: &'a [u8],
) -> Step<'a, ()> {
    Box::pin(async move {
        let mut packet = (body.len() as u32).to_le_bytes().to_vec();
        packet[3] = *seq;
        *seq = seq.wrapping_add(1);
        packet.extend(body);
        attempt
            .within("sending the login", s.write_all(&packet))
            .await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greetings() {
        let mut p = vec![10];
        p.extend(b"5.5.5-10.11.6-MariaDB-0+deb12u1\0");
        p.extend([1, 0, 0, 0]);
        p.extend(b"abcdefgh\0");
        p.extend([0xff, 0xff, 45, 2, 0, 0xff, 0x81, 21]);
        p.extend([0; 10]);
        p.extend(b"ijklmnopqrst\0mysql_native_password\0");
        let g = Greeting::parse(&p).unwrap();
        assert_eq!(g.version, "10.11.6-MariaDB-0+deb12u1");
        assert_eq!(g.nonce, b"abcdefghijklmnopqrst");
        assert_eq!(g.plugin, "mysql_native_password");
        assert!(g.caps & SSL != 0 && g.caps & PLUGIN_AUTH != 0);
        // Every cut of it is refused or parsed, never a panic.
        for n in 0..p.len() {
            let _ = Greeting::parse(&p[..n]);
            let _ = error(&p[..n]);
        }
        assert!(Greeting::parse(&[9, 0]).is_none());
        assert_eq!(
            error(b"\xff\x10\x04#08004Too many connections").1,
            "ERROR 1040: Too many connections"
        );
        assert_eq!(error(b"\xff\x69\x04Host blocked").0, 1129);
    }

    #[cfg(feature = "tls")]
    #[test]
    fn native_password_scramble() {
        // Python's hashlib, by the formulas of `hash`, for this nonce and "secret".
        let nonce = b"abcdefghijklmnopqrst";
        let got = scramble("mysql_native_password", nonce, "secret").unwrap();
        let hex: String = got.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, NATIVE);
        let got = scramble("caching_sha2_password", nonce, "secret").unwrap();
        let hex: String = got.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, SHA2);
        assert!(scramble("caching_sha2_password", nonce, "")
            .unwrap()
            .is_empty());
        assert!(matches!(
            scramble("client_ed25519", nonce, "x"),
            Err(Outcome::Fatal(_))
        ));
    }

    #[cfg(feature = "tls")]
    const NATIVE: &str = "8817c50fa779daef010ee7577825b0847df9842e";
    #[cfg(feature = "tls")]
    const SHA2: &str = "c76e2898612a4cf042c77fa8c4702c4c64c0c2c557c53c4d75595aaa6abae809";
}
