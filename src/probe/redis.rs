//! `redis://` and `rediss://` (TLS): ready when, after `AUTH` (a password,
//! or an ACL user and its password) and `SELECT` when the target names
//! them, `PING` answers `PONG` and `INFO persistence` says `loading:0`; with
//! `?role=master`, `ROLE` must say master too.
//!
//! PONG alone is not enough: a replica in a full resync, or a server
//! loading its RDB at start, answers `-LOADING` to most commands but
//! `INFO` to all, and some setups answer PING while the dataset loads.
//! `-LOADING` and `-MASTERDOWN` wait, and so does a server at its
//! `maxclients` (its `-ERR max number of clients reached` comes before any
//! reply, so it is read as the first command's, whichever that is);
//! `-NOAUTH`, `-WRONGPASS` and a refused `SELECT` are fatal. The commands go in one write (RESP2 arrays) and the
//! replies are read in order, each bounded.
//!
//! Not done: RESP3 (`HELLO`), Sentinel and Cluster discovery.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Outcome;
use crate::net::{user_url, Attempt, HostPort, Stream};
use crate::secret::Secret;

const PASSWORDS: &str = "set KWAIT_REDIS_PASSWORD or REDISCLI_AUTH, or give password-file=PATH";

/// What Redis writes to a connection it accepted beyond its `maxclients`,
/// before it closes it (networking.c, `acceptCommonHandler`).
const FULL: &str = "ERR max number of clients reached";

/// The longest reply kwait reads: `INFO persistence` is about 1 KiB.
const MAX_REPLY: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub hosts: Vec<HostPort>,
    /// An ACL user (Redis 6+); `AUTH PASSWORD` alone is the default user.
    pub user: Option<String>,
    pub password: Option<Secret>,
    /// `/DBNUM`: `SELECT` it.
    pub db: Option<u32>,
    /// `?role=master`: a replica is not ready.
    pub master: bool,
    /// rediss://: verified against the built-in roots and `ca=`, unless
    /// `tls-verify=false`.
    pub tls: Option<crate::tls::Config>,
}

/// Parses what follows `redis://` (`tls` false) or `rediss://`; what
/// `tls-verify=false` leaves unchecked goes into `warnings`.
pub fn parse(
    what: &str,
    rest: &str,
    tls: bool,
    env: crate::net::Env,
    warnings: &mut Vec<String>,
) -> Result<Spec, String> {
    let url = user_url(what, rest, 6379, PASSWORDS)?;
    let (mut ca, mut file, mut master, mut verify) = (None, None, false, true);
    for (key, value) in url.params {
        match (key, value) {
            ("ca", _) if tls => ca = Some(value),
            ("tls-verify", _) if tls => {
                verify = crate::net::tls_verify(what, value, "server", warnings)?
            }
            ("ca" | "tls-verify", _) => {
                return Err(format!("{what}: {key}= needs TLS: write rediss://"))
            }
            ("password-file", _) => file = Some(value),
            ("role", "master") => master = true,
            ("role", other) => {
                return Err(format!("{what}: role= takes only master, not '{other}'"))
            }
            (other, _) => {
                return Err(format!(
                    "{what}: unknown parameter '{other}' (redis:// takes role=master, password-file=; rediss:// also ca=, tls-verify=)"
                ))
            }
        }
    }
    let db =
        match url.path.trim_end_matches('/') {
            "" => None,
            n => Some(n.parse::<u32>().map_err(|_| {
                format!("{what}: '/{n}' is not a database number (write /0, /1, ...)")
            })?),
        };
    let password =
        crate::secret::password(what, file, &["KWAIT_REDIS_PASSWORD", "REDISCLI_AUTH"], env)?;
    if let (Some(user), None) = (&url.user, &password) {
        return Err(format!(
            "{what}: the user {user} needs a password: {PASSWORDS}"
        ));
    }
    let tls = match tls {
        true => Some(crate::tls::Config::for_target(what, ca, verify, true)?),
        false => None,
    };
    Ok(Spec {
        hosts: url.hosts,
        user: url.user,
        password,
        db,
        master,
        tls,
    })
}

pub async fn check(spec: &Spec, attempt: &Attempt) -> Outcome {
    let hosts = attempt.rotation(&spec.hosts);
    super::race::first_session(hosts, &|addr| Box::pin(session(spec, addr, attempt))).await
}

/// A reply, as far as kwait reads one.
enum Reply {
    /// `+...` or a bulk string.
    Text(String),
    /// `-...`.
    Error(String),
    /// `*N`: the elements follow as replies of their own.
    Array,
    /// `:N`, or a null.
    Other,
}

async fn session(spec: &Spec, addr: &HostPort, attempt: &Attempt) -> Result<String, Outcome> {
    let tcp = attempt.connect(addr).await?;
    let stream: Stream = match &spec.tls {
        None => Box::new(tcp),
        Some(config) => Box::new(crate::tls::connect(config, &addr.host, tcp, attempt).await?),
    };
    let mut conn = Conn {
        stream,
        buf: Vec::new(),
    };
    let mut out = Vec::new();
    let db = spec.db.map(|n| n.to_string());
    if let Some(password) = &spec.password {
        match &spec.user {
            Some(user) => command(&mut out, &["AUTH", user, password.expose()]),
            None => command(&mut out, &["AUTH", password.expose()]),
        }
    }
    if let Some(db) = &db {
        command(&mut out, &["SELECT", db]);
    }
    command(&mut out, &["PING"]);
    command(&mut out, &["INFO", "persistence"]);
    if spec.master {
        command(&mut out, &["ROLE"]);
    }
    attempt
        .within("sending the commands", conn.stream.write_all(&out))
        .await?;

    if spec.password.is_some() {
        if let Reply::Error(e) = conn.reply(attempt).await? {
            return Err(refused("AUTH", &e));
        }
    }
    if let Some(db) = &db {
        if let Reply::Error(e) = conn.reply(attempt).await? {
            return Err(match e.starts_with("ERR") && !e.starts_with(FULL) {
                true => Outcome::Fatal(format!(
                    "SELECT {db} answered {}: name a database the server has (/0 to /15 by default)",
                    crate::log::shown(&e, 200)
                )),
                false => refused("SELECT", &e),
            });
        }
    }
    match conn.reply(attempt).await? {
        Reply::Text(pong) if pong == "PONG" => {}
        Reply::Error(e) => return Err(refused("PING", &e)),
        _ => return Err(Outcome::NotReady("PING did not answer PONG".into())),
    }
    match conn.reply(attempt).await? {
        Reply::Text(info) if info.lines().any(|l| l.trim_end() == "loading:0") => {}
        Reply::Text(_) => {
            return Err(Outcome::NotReady(
                "still loading its dataset (INFO persistence: loading:1)".into(),
            ))
        }
        Reply::Error(e) => return Err(refused("INFO", &e)),
        _ => return Err(Outcome::NotReady("INFO answered no text".into())),
    }
    if spec.master {
        let role = match conn.reply(attempt).await? {
            Reply::Array => conn.reply(attempt).await?,
            other => other,
        };
        match role {
            Reply::Text(role) if role == "master" => {}
            Reply::Text(role) => {
                return Err(Outcome::NotReady(format!(
                    "ROLE is {}, and the target asks for role=master",
                    crate::log::shown(&role, 40)
                )))
            }
            Reply::Error(e) => return Err(refused("ROLE", &e)),
            _ => return Err(Outcome::NotReady("ROLE answered no role".into())),
        }
    }
    // A TLS close_notify is a write like any other: bounded too.
    let _ = attempt
        .within("closing the connection", conn.stream.shutdown())
        .await;
    Ok(match spec.master {
        true => "PONG, loading:0, role master".into(),
        false => "PONG, loading:0".into(),
    })
}

/// An error reply, judged: `-LOADING`, `-MASTERDOWN` and a full server
/// wait, what no wait can fix is fatal.
fn refused(to: &str, error: &str) -> Outcome {
    let said = crate::log::shown(error, 200);
    if error.starts_with(FULL) {
        return Outcome::NotReady(format!(
            "refused the connection: -{said}: as many clients as its maxclients setting allows are connected"
        ));
    }
    let code = said.split(' ').next().unwrap_or_default();
    match code {
        "NOAUTH" => Outcome::Fatal(format!(
            "{to} answered {said}: the server needs a password: {PASSWORDS}"
        )),
        "WRONGPASS" => Outcome::Fatal(format!(
            "{to} answered {said}: check the user and KWAIT_REDIS_PASSWORD, REDISCLI_AUTH or password-file="
        )),
        "NOPERM" => Outcome::Fatal(format!(
            "{to} answered {said}: allow the user {to} in its ACL"
        )),
        _ if to == "AUTH" => Outcome::Fatal(format!("AUTH answered {said}")),
        _ => Outcome::NotReady(format!("{to} answered {said}")),
    }
}

fn not_redis(first: &[u8]) -> Outcome {
    Outcome::NotReady(match super::sniff::protocol(first) {
        Some(other) => format!("this is {other}, not Redis"),
        None => "answered something that is not Redis (RESP)".into(),
    })
}

/// Appends a command as a RESP array of bulk strings.
fn command(out: &mut Vec<u8>, args: &[&str]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// The connection and what was read of it beyond the last reply.
struct Conn {
    stream: Stream,
    buf: Vec<u8>,
}

impl Conn {
    /// Reads until `buf` holds `n` bytes, at most [`MAX_REPLY`] of them.
    async fn fill(&mut self, n: usize, attempt: &Attempt) -> Result<(), Outcome> {
        let mut chunk = [0u8; 4096];
        while self.buf.len() < n {
            let got = attempt
                .within("reading the reply", self.stream.read(&mut chunk))
                .await?;
            if got == 0 {
                return Err(Outcome::NotReady(
                    "closed the connection before replying".into(),
                ));
            }
            self.buf
                .extend_from_slice(chunk.get(..got).unwrap_or_default());
        }
        Ok(())
    }

    /// One reply line, without its CRLF.
    async fn line(&mut self, attempt: &Attempt) -> Result<Vec<u8>, Outcome> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.buf.drain(..end + 2).take(end).collect();
                return Ok(line);
            }
            // A reply opens with its type; anything else is another protocol.
            let resp = |b: &u8| b"+-:$*".contains(b);
            if self.buf.len() > MAX_REPLY || self.buf.first().is_some_and(|b| !resp(b)) {
                return Err(not_redis(&self.buf));
            }
            let want = self.buf.len() + 1;
            self.fill(want, attempt).await?;
        }
    }

    async fn reply(&mut self, attempt: &Attempt) -> Result<Reply, Outcome> {
        let line = self.line(attempt).await?;
        let text = || String::from_utf8_lossy(line.get(1..).unwrap_or_default()).into_owned();
        Ok(match line.first() {
            Some(b'+') => Reply::Text(text()),
            Some(b'-') => Reply::Error(text()),
            Some(b':') => Reply::Other,
            Some(b'*') => Reply::Array,
            Some(b'$') => match text().parse::<i64>() {
                Ok(-1) => Reply::Other,
                Ok(len) if (0..=MAX_REPLY as i64).contains(&len) => {
                    let len = len as usize;
                    self.fill(len + 2, attempt).await?;
                    let body: Vec<u8> = self.buf.drain(..len + 2).take(len).collect();
                    Reply::Text(String::from_utf8_lossy(&body).into_owned())
                }
                _ => {
                    return Err(Outcome::NotReady(format!(
                    "answered a bulk string of length '{}': not Redis, or more than kwait reads",
                    crate::log::shown(&text(), 40)
                )))
                }
            },
            _ => {
                return Err(not_redis(&line));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let env = |k: &str| (k == "REDISCLI_AUTH").then(|| "pw".into());
        let s = parse("t", "app@cache/3?role=master", false, &env, &mut Vec::new()).unwrap();
        assert_eq!(
            (s.user.as_deref(), s.db, s.master),
            (Some("app"), Some(3), true)
        );
        assert_eq!(s.hosts[0].port, 6379);
        assert_eq!(s.password.as_ref().map(Secret::expose), Some("pw"));
        let none = |_: &str| None;
        for (bad, needle) in [
            ("u:hunter2@c", "KWAIT_REDIS_PASSWORD"),
            ("c?password=hunter2", "password-file=PATH"),
            ("c/x", "not a database number"),
            ("c?role=replica", "only master"),
            ("c?ca=/x", "rediss://"),
            ("c?tls-verify=false", "tls-verify= needs TLS"),
            ("u@c", "needs a password"),
        ] {
            let err = parse("t", bad, false, &none, &mut Vec::new()).unwrap_err();
            assert!(
                err.contains(needle) && !err.contains("hunter2"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn a_full_server_waits_whichever_command_it_answers() {
        let full = "ERR max number of clients reached";
        for to in ["AUTH", "SELECT", "PING"] {
            assert!(
                matches!(refused(to, full), Outcome::NotReady(r) if r.contains("maxclients")),
                "{to}"
            );
        }
        assert!(matches!(refused("AUTH", "ERR nope"), Outcome::Fatal(_)));
    }

    #[test]
    fn commands_are_resp_arrays() {
        let mut out = Vec::new();
        command(&mut out, &["AUTH", "pw"]);
        assert_eq!(out, b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n");
    }
}
