//! Secrets: the SASL password's variable, a [`Secret`] that never prints
//! its value, and [`redact`] for echoing what the user typed. A password
//! comes from the environment or a file, never from argv; the variable is
//! removed from COMMAND's environment (`exec`).

use std::fmt;

/// The environment variable holding the SASL password.
pub const PASSWORD_ENV: &str = "KWAIT_KAFKA_PASSWORD";

/// `text` with anything that looks like a password replaced by `***`: a
/// `password=` parameter's value (in any case: `Password=`, `PASSWORD=`),
/// and the password of `user:password@`. For echoing what the user typed in
/// an error message.
pub fn redact(text: &str) -> String {
    // ASCII lowercasing keeps every byte offset, so `lower`'s indices are
    // `text`'s.
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    while let Some(i) = lower[done..].find("password=") {
        let value = done + i + "password=".len();
        out.push_str(&text[done..value]);
        out.push_str("***");
        done = text[value..]
            .find(['&', '\'', '"', ' '])
            .map_or(text.len(), |e| value + e);
    }
    out.push_str(&text[done..]);
    // user:secret@host
    if let Some(scheme) = out.find("://") {
        let auth_start = scheme + 3;
        let auth_end = out[auth_start..]
            .find(['/', '?', '\'', ' '])
            .map_or(out.len(), |e| auth_start + e);
        if let Some(at) = out[auth_start..auth_end].rfind('@') {
            if let Some(colon) = out[auth_start..auth_start + at].find(':') {
                out.replace_range(auth_start + colon + 1..auth_start + at, "***");
            }
        }
    }
    out
}

/// A password: its value never reaches Debug, Display or a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub(crate) String);

impl Secret {
    // For the SCRAM tests, which need the tls feature.
    #[cfg(all(test, feature = "tls"))]
    pub fn new(value: &str) -> Secret {
        Secret(value.to_string())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction() {
        assert_eq!(
            redact("kafka://k:1?user=a&password=hunter2&tls=1"),
            "kafka://k:1?user=a&password=***&tls=1"
        );
        assert_eq!(
            redact("'kafka://u:hunter2@k:1' for x"),
            "'kafka://u:***@k:1' for x"
        );
        assert_eq!(redact("kafka://k:1?topics=a"), "kafka://k:1?topics=a");
        assert_eq!(
            redact("kafka://b:1?Password=hunter2&x=1 and ?PASSWORD=hunter2"),
            "kafka://b:1?Password=***&x=1 and ?PASSWORD=***"
        );
        assert_eq!(redact("ssl.key.PassWord=hunter2"), "ssl.key.PassWord=***");
        // Lowercasing must not move offsets past non-ASCII text.
        assert_eq!(redact("é?pAssword=hunter2ü"), "é?pAssword=***");
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret("hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
