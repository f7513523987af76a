//! Which other service answered, from its first bytes: a target pointed at
//! the wrong port gets "this is an SSH server", not a frame length or a
//! status line it cannot parse.
//!
//! Only openings that the named protocols send unprompted or to any
//! malformed request are recognised, from the first four bytes (what a
//! Kafka length prefix holds). It never guesses beyond them: no match is
//! `None`, and the caller keeps its own reason. ZooKeeper cannot be told
//! this way: it closes a connection whose first request it cannot parse,
//! without a byte.

/// The service whose opening `first` is, as "an SSH server".
pub fn protocol(first: &[u8]) -> Option<&'static str> {
    let head = first.get(..4)?;
    let found = match head {
        // RFC 4253 §4.2: the server sends its identification string first.
        b"SSH-" => "an SSH server",
        // A status line, or (Python's http.server to an HTTP/0.9-like
        // request) an HTML error page without one.
        b"HTTP" | b"<!DO" | b"<!do" | b"<htm" | b"<HTM" => "an HTTP server",
        // AMQP 0-9-1 §4.2.2: a server that does not take the protocol
        // header it got answers with its own, "AMQP" 0 0 9 1, and closes.
        b"AMQP" => "an AMQP broker (RabbitMQ?)",
        // RFC 8446 §5.1: a record of type alert (21) or handshake (22),
        // legacy version 3.x.
        [0x15 | 0x16, 0x03, 0..=0x04, _] => "a TLS listener",
        // RESP: an error ("-ERR", "-DENIED", "-NOAUTH") or a simple string.
        [b'-' | b'+', rest @ ..] if rest.iter().all(u8::is_ascii_uppercase) => "a Redis server",
        _ => return None,
    };
    Some(found)
}

/// Whether `what` (from [`protocol`]) is TLS, which needs its own hint.
pub fn is_tls(what: &str) -> bool {
    what == "a TLS listener"
}

#[cfg(test)]
mod tests {
    use super::protocol;

    #[test]
    fn openings() {
        assert_eq!(protocol(b"SSH-2.0-OpenSSH_9.2p1"), Some("an SSH server"));
        assert_eq!(
            protocol(b"HTTP/1.1 400 Bad Request"),
            Some("an HTTP server")
        );
        assert_eq!(protocol(b"<!DOCTYPE HTML>"), Some("an HTTP server"));
        assert_eq!(
            protocol(b"AMQP\x00\x00\x09\x01"),
            Some("an AMQP broker (RabbitMQ?)")
        );
        assert_eq!(
            protocol(&[0x15, 0x03, 0x03, 0x00, 0x02]),
            Some("a TLS listener")
        );
        assert_eq!(protocol(b"-ERR unknown command"), Some("a Redis server"));
        assert_eq!(protocol(b"-DENIED Redis"), Some("a Redis server"));
        // A Kafka length prefix, short input, and near misses are no one.
        assert_eq!(protocol(&[0, 0, 0, 42]), None);
        assert_eq!(protocol(&[0x7f, 0xff, 0xff, 0xff]), None);
        assert_eq!(protocol(b"SSH"), None);
        assert_eq!(protocol(b"-1\r\n"), None);
        assert_eq!(protocol(&[0x15, 0x07, 0, 0]), None);
    }
}
