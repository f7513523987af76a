//! Secrets: where a target's password comes from ([`password`]), a
//! [`Secret`] that never prints its value, and [`redact`] for echoing what
//! the user typed. A password comes from a file or the environment, never
//! from argv; kwait's own password variables (`KWAIT_*_PASSWORD`) are
//! removed from COMMAND's environment ([`for_kwait_only`]).

use std::fmt;
use std::path::Path;

use crate::net::Env;

/// The environment variable holding the SASL password.
pub const PASSWORD_ENV: &str = "KWAIT_KAFKA_PASSWORD";

/// Whether `name` is one of kwait's password variables
/// (`KWAIT_<KIND>_PASSWORD`), which COMMAND must not inherit.
pub fn for_kwait_only(name: &[u8]) -> bool {
    name.starts_with(b"KWAIT_") && name.ends_with(b"_PASSWORD")
}

/// A target's password, from the first of these that is set: the
/// target's own `password-file=` (`file`), then each variable of `vars` in
/// turn (kwait's `KWAIT_<KIND>_PASSWORD` first, then the ecosystem's own,
/// such as `PGPASSWORD` or `REDISCLI_AUTH`). An empty variable counts as
/// unset; a value that is not UTF-8 text is refused (converting it would
/// send a password that is not the one set). `None`: no password anywhere.
pub fn password(
    what: &str,
    file: Option<&str>,
    vars: &[&str],
    env: Env,
) -> Result<Option<Secret>, String> {
    if let Some(path) = file {
        let bytes = crate::file::read(
            Path::new(path),
            &format!("{what}: password-file={path}"),
            "too large for a password (check the path)",
        )?;
        let text = String::from_utf8(bytes).map_err(|_| {
            format!(
                "{what}: password-file={path} is not UTF-8 text (a password kwait sends must be)"
            )
        })?;
        return Ok(Some(Secret(
            text.trim_end_matches(['\n', '\r']).to_string(),
        )));
    }
    for var in vars {
        match env(var).filter(|v| !v.is_empty()).map(|v| v.into_string()) {
            None => {}
            Some(Ok(p)) => return Ok(Some(Secret(p))),
            Some(Err(_)) => {
                return Err(format!(
                    "{what}: {var} is not UTF-8 text: use password-file=PATH"
                ))
            }
        }
    }
    Ok(None)
}

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
    fn password_sources_in_order() {
        use std::ffi::OsString;
        let env = |k: &str| match k {
            "KWAIT_X_PASSWORD" => Some(OsString::from("")),
            "X_AUTH" => Some(OsString::from("eco")),
            _ => None,
        };
        let got = password("t", None, &["KWAIT_X_PASSWORD", "X_AUTH"], &env).unwrap();
        assert_eq!(got.as_ref().map(Secret::expose), Some("eco"));
        assert!(password("t", None, &["NOPE"], &env).unwrap().is_none());
        assert!(for_kwait_only(b"KWAIT_POSTGRES_PASSWORD") && !for_kwait_only(b"PGPASSWORD"));
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret("hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
