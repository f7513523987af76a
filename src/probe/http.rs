//! `http://`: ready when a GET answers 2xx.
//!
//! A minimal HTTP/1.1 client: one request with `Connection: close`, and only
//! the status line is read (at most 4 KiB of it). Redirects are not
//! followed: a health endpoint that redirects is reported, not chased.
//! https:// verifies the server against the built-in trust roots.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Attempt, Outcome, Stream};
use crate::target::Http;

const MAX_STATUS_LINE: usize = 4096;

pub async fn check(spec: &Http, attempt: &Attempt) -> Outcome {
    match get(spec, attempt).await {
        Ok((code, line)) if (200..300).contains(&code) => {
            Outcome::Ready(format!("answered {line}"))
        }
        Ok((code, line)) if (300..400).contains(&code) => Outcome::NotReady(format!(
            "answered {line}; kwait does not follow redirects, point the target at the final URL"
        )),
        Ok((_, line)) => Outcome::NotReady(format!("answered {line}")),
        Err(unready) => unready,
    }
}

/// Sends the GET and returns the status code and the status line after the
/// protocol version (e.g. "503 Service Unavailable").
async fn get(spec: &Http, attempt: &Attempt) -> Result<(u16, String), Outcome> {
    let tcp = attempt.connect(&spec.addr).await?;
    let mut stream: Stream = match &spec.tls {
        None => Box::new(tcp),
        Some(config) => match crate::tls::connect(config, &spec.addr.host, tcp, attempt).await {
            Ok(tls) => Box::new(tls),
            Err(crate::tls::Failure::Fatal(r)) => return Err(Outcome::Fatal(r)),
            Err(crate::tls::Failure::Retry(r)) => return Err(Outcome::NotReady(r)),
        },
    };
    let default_port = if spec.tls.is_some() { 443 } else { 80 };
    let host = if spec.addr.port == default_port {
        spec.addr.host.clone()
    } else {
        spec.addr.to_string()
    };
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
            .within("reading the answer", stream.read(&mut chunk))
            .await
        {
            Ok(n) => n,
            // Under TLS 1.3 a server refuses a client without a certificate
            // after the handshake, on the first read: waiting will not
            // give https:// one.
            Err(e) if spec.tls.is_some() && e.contains("with TLS alert") => {
                return Err(Outcome::Fatal(format!(
                    "{e}: does the server require a client certificate? https:// targets cannot send one"
                )))
            }
            Err(e) => return Err(e.into()),
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
    parse_status(&line).ok_or_else(|| {
        Outcome::NotReady(format!(
            "answered something that is not HTTP: '{}'",
            crate::log::shown(&line, 60)
        ))
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
    use super::parse_status;

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
