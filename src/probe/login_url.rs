//! The URL shape mysql:// and amqp:// share:
//! `[USER@]HOST[:PORT][,HOST[:PORT]...][/PATH][?tls=BOOL&ca=PATH&password-file=PATH]`.
//! USER and PATH may be percent-encoded (`%2f` is the vhost `/`).
//!
//! A password never comes from the URL (it would show in ps and logs):
//! `user:secret@` and `password=` are usage errors that say where it goes.
//! It comes from `password-file=` or the kind's variables
//! (`secret::password`); TLS from `tls=true` or `ca=` (the kind may turn it
//! on by its scheme, as amqps:// does).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::Outcome;
use crate::net::{Attempt, Env, HostPort};
use crate::secret::Secret;

/// One login at one address: what it saw, or why not.
pub type Login<'a> = Pin<Box<dyn Future<Output = Result<String, Outcome>> + Send + 'a>>;

/// A kind's `check`, boxed: the wait loop's future does not hold it.
pub type Check<'a> = Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

/// Races `login` over `hosts` (`probe::race`), naming the address in
/// every outcome. Not generic: one copy serves every kind that uses it.
pub fn race<'a>(
    hosts: &'a [HostPort],
    attempt: &'a Attempt,
    login: Arc<dyn Fn(&'a HostPort) -> Login<'a> + Send + Sync + 'a>,
) -> Check<'a> {
    let hosts = attempt.rotation(hosts);
    Box::pin(super::race::first_ready(hosts, move |addr| {
        let one = login(addr);
        async move {
            match one.await {
                Ok(seen) => Outcome::Ready(format!("{addr}: {seen}")),
                Err(Outcome::NotReady(r)) => Outcome::NotReady(format!("{addr}: {r}")),
                Err(other) => other,
            }
        }
    }))
}

pub struct LoginUrl {
    pub user: Option<String>,
    pub hosts: Vec<HostPort>,
    /// What follows the first '/', percent-decoded; empty when none.
    pub path: String,
    pub password: Option<Secret>,
    pub tls: Option<crate::tls::Config>,
}

impl LoginUrl {
    /// `vars` are the password's variables, kwait's own first; `tls` is the
    /// scheme's default.
    pub fn parse(
        what: &str,
        rest: &str,
        port: u16,
        vars: &[&str],
        tls: bool,
        env: Env,
    ) -> Result<LoginUrl, String> {
        let no_password = || {
            format!(
                "{what}: a password does not go in the URL (it would show in ps and logs): \
                 set {}, or password-file=PATH",
                vars.first().unwrap_or(&"")
            )
        };
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (user, hosts) = match authority.rsplit_once('@') {
            Some((user, _)) if user.contains(':') => return Err(no_password()),
            Some((user, hosts)) => (Some(decode(what, user)?), hosts),
            None => (None, authority),
        };
        let (mut file, mut ca, mut tls_on) = (None, None, tls);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "password-file" => file = Some(value),
                "ca" => (ca, tls_on) = (Some(value), true),
                "tls" => {
                    tls_on = match value {
                        "true" => true,
                        "false" => false,
                        _ => return Err(format!("{what}: tls= is true or false, not '{value}'")),
                    }
                }
                k if k.eq_ignore_ascii_case("password") => return Err(no_password()),
                _ => {
                    return Err(format!(
                        "{what}: unknown parameter '{key}' (tls=, ca=, password-file=)"
                    ))
                }
            }
        }
        let hosts = hosts
            .split(',')
            .map(|hp| {
                // A bare host (or [v6]) takes the scheme's port.
                if hp.ends_with(']') || !hp.contains(':') {
                    HostPort::parse(&format!("{hp}:{port}"), what)
                } else {
                    HostPort::parse(hp, what)
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(LoginUrl {
            user,
            hosts,
            path: decode(what, path.trim_end_matches('/'))?,
            password: crate::secret::password(what, file, vars, env)?,
            tls: if tls_on {
                Some(tls_config(what, ca)?)
            } else {
                None
            },
        })
    }
}

/// `%XX` escapes decoded; the result must be UTF-8 text.
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
        out.extend(byte.filter(|b| !b.is_ascii_control()));
        if byte.is_none_or(|b| b.is_ascii_control()) {
            return Err(format!("{what}: '{s}' is not valid percent-encoded text"));
        }
    }
    String::from_utf8(out).map_err(|_| format!("{what}: '{s}' is not valid percent-encoded text"))
}

/// The server verified against the built-in roots, plus `ca=`'s CA.
#[cfg(feature = "tls")]
fn tls_config(what: &str, ca: Option<&str>) -> Result<crate::tls::Config, String> {
    use crate::tls::{Config, Pem, TlsFiles};
    let ca = match ca {
        Some(path) => Some(Pem {
            from: format!("ca={path}"),
            text: crate::file::read(
                std::path::Path::new(path),
                &format!("{what}: ca={path}"),
                "not a CA bundle",
            )?,
        }),
        None => None,
    };
    Config::build(&TlsFiles {
        ca,
        verify: true,
        verify_name: true,
        ..TlsFiles::default()
    })
    .map_err(|e| format!("{what}: {e}"))
}

#[cfg(not(feature = "tls"))]
fn tls_config(what: &str, _: Option<&str>) -> Result<crate::tls::Config, String> {
    Err(format!("{what}: {}", crate::tls::MISSING))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(rest: &str) -> Result<LoginUrl, String> {
        LoginUrl::parse("t", rest, 9, &["KWAIT_X_PASSWORD"], false, &|_| None)
    }

    #[test]
    fn shapes() {
        let u = url("app@db,[::1]:7/%2fv%20h/").unwrap();
        assert_eq!(u.user.as_deref(), Some("app"));
        assert_eq!(u.hosts[0].to_string(), "db:9");
        assert_eq!(u.hosts[1].to_string(), "[::1]:7");
        assert_eq!(u.path, "/v h");
        let u = url("db:3").unwrap();
        assert!(u.user.is_none() && u.path.is_empty() && u.tls.is_none());
        for (bad, needle) in [
            ("u:hunter2@db", "KWAIT_X_PASSWORD"),
            ("db?Password=hunter2", "password-file=PATH"),
            ("db?x=1", "unknown parameter 'x'"),
            ("db?tls=yes", "not 'yes'"),
            ("db/%zz", "percent-encoded"),
            ("db/%0a", "percent-encoded"),
            ("db/%f", "percent-encoded"),
            ("::1", "brackets"),
            ("db,", "missing host"),
        ] {
            let err = url(bad).err().unwrap_or_default();
            assert!(
                err.contains(needle) && !err.contains("hunter2"),
                "{bad}: {err}"
            );
        }
    }
}
