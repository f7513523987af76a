//! `http://`: ready when a GET answers 2xx.
//!
//! A minimal HTTP/1.1 client: one request with `Connection: close`, and only
//! the status line is read (at most 4 KiB of it), and for a redirect its
//! headers, for the Location (at most 8 KiB). Redirects are not followed:
//! a health endpoint that redirects is reported, not chased. An answer
//! that is not HTTP is named when its opening is another protocol's
//! (`sniff`).
//! https:// verifies the server against the built-in trust roots.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Outcome;
use crate::net::{no_userinfo, Attempt, Cause, HostPort, Stream};

const MAX_STATUS_LINE: usize = 4096;
/// How much of a redirect's headers is read for its Location.
const MAX_HEAD: usize = 8192;
/// How much of a Location is shown.
const MAX_LOCATION_SHOWN: usize = 200;

pub async fn check(spec: &Spec, attempt: &Attempt) -> Outcome {
    match get(spec, attempt).await {
        Ok((code, line, _)) if (200..300).contains(&code) => {
            Outcome::Ready(format!("answered {line}"))
        }
        Ok((code, line, mut answer)) if (300..400).contains(&code) => {
            let location = match location(&mut answer, attempt).await {
                Some(to) => format!(
                    " (Location: {})",
                    crate::log::shown(&to, MAX_LOCATION_SHOWN)
                ),
                None => String::new(),
            };
            Outcome::NotReady(format!(
                "answered {line}{location}; kwait does not follow redirects, point the target at the final URL"
            ))
        }
        Ok((_, line, _)) => Outcome::NotReady(format!("answered {line}")),
        Err(unready) => unready,
    }
}

/// The answer read so far, and the connection to read more of it from.
struct Answer {
    stream: Stream,
    buf: Vec<u8>,
}

/// Sends the GET and returns the status code and the status line after the
/// protocol version (e.g. "503 Service Unavailable").
async fn get(spec: &Spec, attempt: &Attempt) -> Result<(u16, String, Answer), Outcome> {
    let tcp = attempt.connect(&spec.addr).await?;
    let mut stream: Stream = match &spec.tls {
        None => Box::new(tcp),
        Some(config) => Box::new(crate::tls::connect(config, &spec.addr.host, tcp, attempt).await?),
    };
    let host = host_header(&spec.addr, spec.tls.is_some());
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: kwait/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        spec.path,
        env!("CARGO_PKG_VERSION")
    );
    attempt
        .within("sending the request", stream.write_all(request.as_bytes()))
        .await?;

    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    while !buf.contains(&b'\n') {
        if buf.len() >= MAX_STATUS_LINE {
            return Err(Outcome::NotReady(
                "answered with no HTTP status line in its first 4 KiB".into(),
            ));
        }
        let n = match attempt
            .exchange("reading the answer", stream.read(&mut chunk))
            .await
        {
            Ok(n) => n,
            // Under TLS 1.3 a server refuses a client without a certificate
            // after the handshake, on the first read: waiting will not
            // give https:// one.
            Err(e) if spec.tls.is_some() && e.cause == Cause::TlsAlert => {
                return Err(Outcome::Fatal(format!(
                    "{e}: does the server require a client certificate? https:// targets cannot send one"
                )))
            }
            Err(e) => return Err(Outcome::NotReady(e.text)),
        };
        if n == 0 {
            return Err(Outcome::NotReady(if buf.is_empty() {
                "closed the connection without answering".into()
            } else {
                "closed the connection in the middle of the status line".into()
            }));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = buf.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line).trim_end().to_string();
    let Some((code, status)) = parse_status(&line) else {
        let shown = crate::log::shown(&line, 60);
        return Err(Outcome::NotReady(match super::sniff::protocol(&buf) {
            Some(what) if super::sniff::is_tls(what) => {
                format!("answered with a TLS record: this is {what}, not plain HTTP (use https://)")
            }
            Some(what) => format!("answered '{shown}': this is {what}, not HTTP"),
            None => format!("answered something that is not HTTP: '{shown}'"),
        }));
    };
    Ok((code, status, Answer { stream, buf }))
}

/// The Location header of a redirect, read from the headers that follow
/// the status line, within [`MAX_HEAD`] bytes and the attempt's deadline;
/// `None` when it is not there (or not in time: the redirect is the news).
async fn location(answer: &mut Answer, attempt: &Attempt) -> Option<String> {
    let mut chunk = [0u8; 512];
    let end = |buf: &[u8]| {
        buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n")
    };
    while !end(&answer.buf) && answer.buf.len() < MAX_HEAD {
        match attempt.within("", answer.stream.read(&mut chunk)).await {
            Ok(n) if n > 0 => answer.buf.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    let head = answer.buf.get(..answer.buf.len().min(MAX_HEAD))?;
    head.split(|&b| b == b'\n').skip(1).find_map(|line| {
        let line = String::from_utf8_lossy(line);
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("location")
            .then(|| value.trim().to_string())
    })
}

fn parse_status(line: &str) -> Option<(u16, String)> {
    let rest = line.strip_prefix("HTTP/1.")?;
    let (_, status) = rest.split_once(' ')?;
    let code = status.get(..3)?.parse::<u16>().ok()?;
    if !(100..600).contains(&code) {
        return None;
    }
    Some((code, status.to_string()))
}

#[cfg(test)]
mod tests {
    use super::{host_header, parse_status};
    use crate::net::HostPort;

    #[test]
    fn host_header_brackets_ipv6() {
        let hp = |host: &str, port| HostPort {
            host: host.into(),
            port,
        };
        assert_eq!(host_header(&hp("::1", 80), false), "[::1]");
        assert_eq!(host_header(&hp("::1", 8080), false), "[::1]:8080");
        assert_eq!(host_header(&hp("::1", 443), true), "[::1]");
        assert_eq!(host_header(&hp("web", 80), false), "web");
        assert_eq!(host_header(&hp("web", 443), false), "web:443");
    }

    #[test]
    fn status_lines() {
        assert_eq!(
            parse_status("HTTP/1.1 200 OK"),
            Some((200, "200 OK".into()))
        );
        assert_eq!(
            parse_status("HTTP/1.0 503 Service Unavailable").map(|s| s.0),
            Some(503)
        );
        assert_eq!(parse_status("HTTP/1.1 204"), Some((204, "204".into())));
        assert_eq!(parse_status("SSH-2.0-OpenSSH"), None);
        assert_eq!(parse_status("HTTP/1.1 abc"), None);
        assert_eq!(parse_status("HTTP/1.1 999 x"), None);
        assert_eq!(parse_status("HTTP/1.1 2é"), None);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub addr: HostPort,
    /// Path and query, always starting with '/'.
    pub path: String,
    /// For https://: the built-in trust roots.
    pub tls: Option<crate::tls::Config>,
}

/// The Host header (RFC 9110 §7.2): the port only when it is not the
/// scheme's, an IPv6 address in brackets either way.
fn host_header(addr: &HostPort, tls: bool) -> String {
    let default_port = if tls { 443 } else { 80 };
    match (addr.port == default_port, addr.host.contains(':')) {
        (true, true) => format!("[{}]", addr.host),
        (true, false) => addr.host.clone(),
        (false, _) => addr.to_string(),
    }
}

/// Parses what follows `http://` (`tls` false) or `https://`; `what`
/// names the target in errors.
pub fn parse(what: &str, rest: &str, tls: bool, env: crate::net::Env) -> Result<Spec, String> {
    let default_port = if tls { 443 } else { 80 };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    no_userinfo(what, authority)?;
    let addr = if authority.ends_with(']') || !authority.contains(':') {
        HostPort::parse(&format!("{authority}:{default_port}"), what)?
    } else {
        HostPort::parse(authority, what)?
    };
    if path.chars().any(|c| c.is_ascii_control() || c == ' ') {
        return Err(format!("{what}: the path has spaces or control characters"));
    }
    let path = match path {
        "" => "/".to_string(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.split('#').next().unwrap_or("/").to_string(),
    };
    let tls = if tls {
        Some(crate::tls::Config::default_roots(env).map_err(|e| format!("{what}: {e}"))?)
    } else {
        None
    };
    Ok(Spec { addr, path, tls })
}
