//! The connection layer under every probe and the cleaner: an attempt's
//! deadline and what ran out ([`Attempt`], [`Limit`]), host names resolved
//! afresh each time ([`dns`]), TCP connections, the plain-or-TLS stream
//! type, and io errors in words. It knows nothing of targets or protocols.

pub mod dns;

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

/// A connection, plain or TLS.
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}
pub type Stream = Box<dyn Io>;

/// How parsing reads the environment (`SSL_CERT_FILE`, the password's
/// variable): only through what `cli` was given, never `std::env`.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<std::ffi::OsString>;

/// What ended a failed exchange, for the callers that decide by it; the
/// words are [`Failed::text`], as every message shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The peer closed or reset the connection (or a write found it gone).
    Closed,
    /// The peer sent a TLS alert.
    TlsAlert,
    /// The answer is another protocol's (`probe::sniff`): TLS, or another
    /// service (SSH, HTTP, ...).
    Foreign { tls: bool },
    /// Anything else: a deadline, a malformed answer, an error code.
    Other,
}

/// A failed exchange: why, as a [`Cause`], and in words.
#[derive(Debug, Clone)]
pub struct Failed {
    pub cause: Cause,
    pub text: String,
}

impl Failed {
    pub fn other(text: String) -> Failed {
        Failed {
            cause: Cause::Other,
            text,
        }
    }
}

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl From<Failed> for String {
    fn from(failed: Failed) -> String {
        failed.text
    }
}

/// The limit that set an attempt's deadline, named (as its flag) when it
/// runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `--timeout`: the whole wait's.
    Timeout,
    /// `--attempt-timeout`: one attempt's.
    AttemptTimeout,
    /// `kwait probe`'s one attempt (its own `-t`).
    Probe,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::Timeout => "--timeout",
            Limit::AttemptTimeout => "--attempt-timeout",
            Limit::Probe => "the probe's --timeout",
        })
    }
}

/// A `host:port` pair as written by the user; the host may be a name, an
/// IPv4 address or a bracketed IPv6 address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl HostPort {
    /// Parses `host:port` or `[v6]:port`. `what` names the input in errors.
    pub fn parse(s: &str, what: &str) -> Result<HostPort, String> {
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("{what}: missing ']' in '{s}'"))?;
            let port = after
                .strip_prefix(':')
                .ok_or_else(|| format!("{what}: missing port in '{s}' (write [{host}]:PORT)"))?;
            (host, port)
        } else {
            match s.rsplit_once(':') {
                Some((host, _)) if host.contains(':') => {
                    return Err(format!(
                        "{what}: IPv6 address '{s}' needs brackets, e.g. [::1]:9092"
                    ))
                }
                Some(pair) => pair,
                None => return Err(format!("{what}: missing port in '{s}' (write {s}:PORT)")),
            }
        };
        if host.is_empty() {
            return Err(format!("{what}: missing host"));
        }
        if host.len() > 253 {
            // DNS's limit (RFC 1035): such a name can never resolve, and
            // each attempt's line would carry it.
            return Err(format!(
                "{what}: the host name is {} characters long; a DNS name has at most 253",
                host.len()
            ));
        }
        if !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '%'))
        {
            return Err(format!("{what}: invalid host '{host}'"));
        }
        let port = match port.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => return Err(format!("{what}: invalid port '{port}' in '{s}' (1-65535)")),
        };
        Ok(HostPort {
            host: host.to_string(),
            port,
        })
    }
}

/// `host:port[,host:port...]`, with an empty entry (`a:1,,b:2`, a comma at
/// the end) named as what it is.
pub fn host_list(what: &str, hosts: &str) -> Result<Vec<HostPort>, String> {
    if hosts.trim().is_empty() {
        return Err(format!("{what}: missing host"));
    }
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

/// Refuses `user:secret@` in an authority before anything else reads it, so
/// that no error can echo the secret (kafka:// says where credentials go).
pub fn no_userinfo(what: &str, rest: &str) -> Result<(), String> {
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    if !rest[..end].contains('@') {
        return Ok(());
    }
    Err(format!(
        "{what}: credentials in the URL are not supported (they would show in ps and logs)"
    ))
}

/// The context of one attempt: its deadline, which try it is (a kafka
/// target with several bootstrap addresses takes them in turn), and a count
/// of the connections it opened, which paces the wait loop.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub deadline: Instant,
    /// The flag that set the deadline, named when it runs out.
    pub limit: Limit,
    pub seq: u64,
    connections: Arc<AtomicU32>,
    /// Set when a name lookup got no definite answer.
    lookup_unsure: Arc<AtomicBool>,
    /// Set when the deadline cut an exchange or a connect short.
    ran_out: Arc<AtomicBool>,
}

impl Attempt {
    pub fn new(deadline: Instant, limit: Limit, seq: u64) -> Attempt {
        Attempt {
            deadline,
            limit,
            seq,
            connections: Arc::new(AtomicU32::new(0)),
            lookup_unsure: Arc::new(AtomicBool::new(false)),
            ran_out: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The addresses this attempt tries (`probe::race::first_ready`), starting
    /// one further along each attempt, so that no member is always first.
    pub fn rotation<'a>(&self, hosts: &'a [HostPort]) -> Vec<&'a HostPort> {
        let n = hosts.len();
        if n == 0 {
            return Vec::new();
        }
        let first = (self.seq % n as u64) as usize;
        (0..n).map(|i| &hosts[(first + i) % n]).collect()
    }

    /// How many TCP connections this attempt has tried to open.
    pub fn connections(&self) -> u32 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Whether a name lookup of this attempt (or of a clone of it) failed
    /// without a definite answer: whoever it was looking for may be alive.
    /// A failed [`Attempt::connect`] says so in its reason; this tells the
    /// one step that must not guess (`clean`) apart from "nothing there".
    pub fn lookup_unsure(&self) -> bool {
        self.lookup_unsure.load(Ordering::Relaxed)
    }

    /// Whether this attempt (or a clone of it) ran into its deadline: then
    /// its [`Attempt::limit`] is the one to raise.
    pub fn ran_out(&self) -> bool {
        self.ran_out.load(Ordering::Relaxed)
    }

    /// The deadline was reached: records it, and returns the limit to name
    /// ("no answer within {limit}").
    pub fn expired(&self) -> Limit {
        self.ran_out.store(true, Ordering::Relaxed);
        self.limit
    }

    /// Runs `io` against the attempt's deadline.
    pub async fn within<T>(
        &self,
        what: &str,
        io: impl Future<Output = io::Result<T>>,
    ) -> Result<T, String> {
        self.exchange(what, io).await.map_err(String::from)
    }

    /// [`Attempt::within`], with the failure's [`Cause`] kept for the
    /// caller to decide by.
    pub async fn exchange<T>(
        &self,
        what: &str,
        io: impl Future<Output = io::Result<T>>,
    ) -> Result<T, Failed> {
        match timeout_at(self.deadline, io).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(Failed {
                cause: cause(&err),
                text: self.failed(what, Some(&err)),
            }),
            Err(_) => Err(Failed::other(self.failed(what, None))),
        }
    }

    /// Why `within` failed: an error, or no answer in time. Not generic, so
    /// it is compiled once, not once per kind of I/O.
    pub fn failed(&self, what: &str, err: Option<&io::Error>) -> String {
        match err {
            Some(err) => format!("{what}: {}", describe(err)),
            None => format!("{what}: no answer within {}", self.expired()),
        }
    }

    /// Resolves `addr` afresh (a compose service name resolves only once its
    /// container exists) and connects to the first address that accepts.
    pub async fn connect(&self, addr: &HostPort) -> Result<TcpStream, String> {
        let resolved = match dns::resolve(&addr.host, addr.port, self.deadline).await {
            Ok(found) => found,
            Err(failure) => {
                if failure.unsure() {
                    self.lookup_unsure.store(true, Ordering::Relaxed);
                }
                return Err(format!(
                    "cannot resolve '{}' yet: {failure}",
                    crate::log::shown(&addr.host, 255)
                ));
            }
        };
        let mut last = format!("'{}' resolves to no address", addr.host);
        // "localhost" is 127.0.0.1 and ::1; with IPv6 off, ::1 fails with
        // "address not available", which says less than 127.0.0.1's
        // "connection refused". Keep the most telling reason.
        let mut telling = false;
        for ip in resolved {
            self.connections.fetch_add(1, Ordering::Relaxed);
            match timeout_at(self.deadline, TcpStream::connect(ip)).await {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Ok(Err(err)) => {
                    let vague = matches!(
                        err.kind(),
                        io::ErrorKind::AddrNotAvailable
                            | io::ErrorKind::NetworkUnreachable
                            | io::ErrorKind::HostUnreachable
                    );
                    if !(telling && vague) {
                        last = format!("{} at {addr}", describe(&err));
                        telling = !vague;
                    }
                }
                Err(_) => {
                    return Err(format!(
                        "connecting to {addr}: no answer within {}",
                        self.expired()
                    ))
                }
            }
        }
        Err(last)
    }
}

/// What an io error means for the exchange it ended.
fn cause(err: &io::Error) -> Cause {
    if crate::tls::is_alert(err) {
        return Cause::TlsAlert;
    }
    match err.kind() {
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => Cause::Closed,
        _ => Cause::Other,
    }
}

/// An io error as a short lowercase phrase ("connection refused"), without
/// Rust's "(os error 111)" suffix.
pub fn describe(err: &io::Error) -> String {
    if let Some(words) = crate::tls::io_words(err) {
        return words;
    }
    match err.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::ConnectionReset => "connection reset".into(),
        io::ErrorKind::UnexpectedEof => "connection closed".into(),
        io::ErrorKind::TimedOut => "timed out".into(),
        _ => {
            let text = err.to_string();
            let text = match text.find(" (os error") {
                Some(i) => &text[..i],
                None => &text,
            };
            let mut chars = text.chars();
            match chars.next() {
                Some(c) => {
                    let mut out = String::with_capacity(text.len());
                    out.push(c.to_ascii_lowercase());
                    out.push_str(chars.as_str());
                    out
                }
                None => "i/o error".into(),
            }
        }
    }
}

/// A yes/no parameter's value (`tls=`, `tls-verify=`): empty, `1`, `true`,
/// `yes`, `on`, or `0`, `false`, `no`, `off`, in any case.
pub fn flag(value: &str, key: &str, what: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "" | "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(format!("{what}: {key}={other} is not true or false")),
    }
}

/// Whether a target uses TLS: `tls=` as given (`tls`), else when its
/// scheme or protocol says so (`default`) or a TLS setting is given
/// (`implied`: the first such key); `tls=false` beside a TLS setting is a
/// mistake, not a quiet plaintext connection.
pub fn tls_on(
    what: &str,
    tls: Option<bool>,
    implied: Option<&str>,
    default: bool,
) -> Result<bool, String> {
    match (tls, implied) {
        (Some(false), Some(key)) => Err(format!(
            "{what}: tls=false contradicts {key}=, which is a TLS setting: drop tls=false to use TLS, or {key}= to connect without it"
        )),
        (Some(on), _) => Ok(on),
        (None, implied) => Ok(default || implied.is_some()),
    }
}

/// `tls-verify=`, as every TLS target takes it (kafka://, rediss://,
/// mysql://, amqps://): false checks no certificate at all, and kwait warns
/// each time it runs.
pub fn tls_verify(
    what: &str,
    value: &str,
    peer: &str,
    warnings: &mut Vec<String>,
) -> Result<bool, String> {
    let verify = flag(value, "tls-verify", what)?;
    if !verify {
        warnings.push(unchecked(what, "tls-verify=false", peer));
    }
    Ok(verify)
}

/// The warning for a TLS connection whose `peer`'s certificate `setting`
/// leaves unchecked.
pub fn unchecked(what: &str, setting: &str, peer: &str) -> String {
    format!(
        "{what}: {setting}: the {peer}'s certificate is not checked, anyone in the middle can read the traffic"
    )
}

/// A database or cache target's URL after its scheme:
/// `[USER@]HOST[:PORT][,HOST[:PORT]...][/PATH][?KEY=VALUE&...]`.
/// USER and PATH are percent-decoded (`%2f` is the vhost `/`, `%40` an `@`
/// in a user name), as libpq, redis-cli and the AMQP URI spec do.
#[derive(Debug)]
pub struct UserUrl<'a> {
    pub user: Option<String>,
    pub hosts: Vec<HostPort>,
    /// After the first '/', without it ("" for none).
    pub path: String,
    pub params: Vec<(&'a str, &'a str)>,
}

/// Splits what follows `postgres://`, `redis://`, `mysql://` or `amqp://`.
/// A user may be named; a password never (`user:secret@`, `password=`):
/// `passwords` says where they go instead. Hosts without a port get
/// `default_port`.
pub fn user_url<'a>(
    what: &str,
    rest: &'a str,
    default_port: u16,
    passwords: &str,
) -> Result<UserUrl<'a>, String> {
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (user, hosts) = match authority.rsplit_once('@') {
        Some((user, _)) if user.contains(':') => {
            return Err(format!(
            "{what}: a password does not go in the URL (it would show in ps and logs): {passwords}"
        ))
        }
        Some((user, hosts)) => (Some(decode(what, user)?), hosts),
        None => (None, authority),
    };
    if user.as_ref().is_some_and(|u| u.is_empty()) {
        return Err(format!(
            "{what}: an empty user or one with control characters"
        ));
    }
    let with_port = |hp: &str| {
        if hp.ends_with(']') || (!hp.contains(':') && !hp.trim().is_empty()) {
            format!("{hp}:{default_port}")
        } else {
            hp.to_string()
        }
    };
    let hosts = hosts
        .split(',')
        .map(with_port)
        .collect::<Vec<_>>()
        .join(",");
    let hosts = host_list(what, &hosts)?;
    let mut params = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key.eq_ignore_ascii_case("password") {
            return Err(format!(
                "{what}: a password does not go in the URL (it would show in ps and logs): {passwords}"
            ));
        }
        params.push((key, value));
    }
    Ok(UserUrl {
        user,
        hosts,
        path: decode(what, path)?,
        params,
    })
}

/// `%XX` escapes decoded; the result must be UTF-8 text without control
/// characters (a user or a database name is sent as text).
fn decode(what: &str, s: &str) -> Result<String, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        rest = tail;
        let byte = match b {
            b'%' => {
                let hex = rest.get(..2).and_then(|h| std::str::from_utf8(h).ok());
                rest = rest.get(2..).unwrap_or_default();
                hex.and_then(|h| u8::from_str_radix(h, 16).ok())
            }
            b => Some(b),
        };
        match byte {
            Some(b) if !b.is_ascii_control() => out.push(b),
            _ => return Err(bad_text(what, s)),
        }
    }
    String::from_utf8(out).map_err(|_| bad_text(what, s))
}

fn bad_text(what: &str, s: &str) -> String {
    format!(
        "{what}: '{}' has control characters or is not valid percent-encoded text",
        crate::log::shown(s, 100)
    )
}

impl UserUrl<'_> {
    /// The `tls=`, `ca=`, `tls-verify=` and `password-file=` parameters,
    /// the only ones mysql:// and amqp:// take: TLS when the scheme says so
    /// (`scheme_tls`, as amqps://), or `tls=true`, or a TLS setting (`ca=`,
    /// `tls-verify=`; beside `tls=false`, a usage error, as for kafka://);
    /// the server verified against the built-in roots and `ca=`'s CA unless
    /// `tls-verify=false` (warned about in `warnings`); and the password
    /// file, if named.
    pub fn tls_and_file(
        &self,
        what: &str,
        scheme_tls: bool,
        warnings: &mut Vec<String>,
    ) -> Result<(Option<crate::tls::Config>, Option<&str>), String> {
        let (mut ca, mut file, mut tls, mut verify) = (None, None, None, None);
        for &(key, value) in &self.params {
            match (key, value) {
                ("password-file", _) => file = Some(value),
                ("ca", _) => ca = Some(value),
                ("tls-verify", _) => verify = Some(value),
                ("tls", "true") => tls = Some(true),
                ("tls", "false") => tls = Some(false),
                ("tls", _) => return Err(format!("{what}: tls= is true or false, not '{value}'")),
                _ => {
                    return Err(format!(
                        "{what}: unknown parameter '{key}' (tls=, ca=, tls-verify=, password-file=)"
                    ))
                }
            }
        }
        let implied = [("ca", ca), ("tls-verify", verify)]
            .into_iter()
            .find_map(|(key, v)| v.map(|_| key));
        if !tls_on(what, tls, implied, scheme_tls)? {
            return Ok((None, file));
        }
        let verify = match verify {
            Some(value) => tls_verify(what, value, "server", warnings)?,
            None => true,
        };
        let config = crate::tls::Config::for_target(what, ca, verify, true)?;
        Ok((Some(config), file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHERE: &str = "set KWAIT_X_PASSWORD";

    #[test]
    fn user_urls() {
        let u = user_url("t", "app%40corp@db,[::1]:7/%2fv%20h/?a=b", 9, WHERE).unwrap();
        assert_eq!(u.user.as_deref(), Some("app@corp"));
        assert_eq!(u.hosts[0].to_string(), "db:9");
        assert_eq!(u.hosts[1].to_string(), "[::1]:7");
        assert_eq!(u.path, "/v h/");
        assert_eq!(u.params, [("a", "b")]);
        let u = user_url("t", "db:3", 9, WHERE).unwrap();
        assert!(u.user.is_none() && u.path.is_empty());
        assert!(u
            .tls_and_file("t", false, &mut Vec::new())
            .unwrap()
            .0
            .is_none());
        for (bad, needle) in [
            ("u:hunter2@db", "KWAIT_X_PASSWORD"),
            ("db?Password=hunter2", "KWAIT_X_PASSWORD"),
            ("@db", "an empty user"),
            ("db/%zz", "percent-encoded"),
            ("db/%0a", "percent-encoded"),
            ("db/%f", "percent-encoded"),
            ("a%ff@db", "percent-encoded"),
            ("::1", "brackets"),
            ("db,", "an empty address"),
        ] {
            let err = user_url("t", bad, 9, WHERE).err().unwrap_or_default();
            assert!(
                err.contains(needle) && !err.contains("hunter2"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn tls_and_password_file_parameters() {
        let mut warnings = Vec::new();
        let u = user_url("t", "db?password-file=/p&tls=false", 9, WHERE).unwrap();
        let (tls, file) = u.tls_and_file("t", true, &mut warnings).unwrap();
        assert!(tls.is_none() && file == Some("/p") && warnings.is_empty());
        for (bad, needle) in [
            ("db?x=1", "unknown parameter 'x'"),
            ("db?tls=yes", "not 'yes'"),
            (
                "db?tls-verify=maybe",
                "tls-verify=maybe is not true or false",
            ),
            ("db?ca=/c&tls=false", "tls=false contradicts ca="),
            (
                "db?tls=false&tls-verify=false",
                "tls=false contradicts tls-verify=",
            ),
        ] {
            let u = user_url("t", bad, 9, WHERE).unwrap();
            let err = u
                .tls_and_file("t", false, &mut warnings)
                .err()
                .unwrap_or_default();
            assert!(err.contains(needle), "{bad}: {err}");
        }
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[cfg(feature = "tls")]
    #[test]
    fn tls_verify_false_means_tls_and_is_warned_about() {
        let mut warnings = Vec::new();
        let u = user_url("t", "db?tls-verify=false", 9, WHERE).unwrap();
        let (tls, _) = u.tls_and_file("t", false, &mut warnings).unwrap();
        assert!(tls.is_some());
        assert!(
            warnings.len() == 1
                && warnings[0]
                    .contains("tls-verify=false: the server's certificate is not checked"),
            "{warnings:?}"
        );
    }
}
