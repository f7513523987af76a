//! How kwait authenticates to Kafka: TLS settings and SASL credentials, from
//! the target's parameters and a Java `client.properties` file (`config=`).
//!
//! Everything is read and checked when the target is parsed, so a missing
//! or oversized file, or a JKS store for a TLS connection, is a usage error
//! (exit 2) before anything connects. Secrets come from the environment
//! (`KWAIT_KAFKA_PASSWORD`) or files (`password-file=`, `config=`), never
//! from argv; a password written into the URL is refused. [`Secret`] never
//! prints its value.

use crate::secret::{Secret, PASSWORD_ENV};
#[cfg(feature = "tls")]
use crate::tls::{Pem, TlsFiles};

use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    fn parse(s: &str, what: &str) -> Result<Mechanism, String> {
        match s.trim().to_ascii_uppercase().as_str() {
            "PLAIN" => Ok(Mechanism::Plain),
            "SCRAM-SHA-256" => Ok(Mechanism::ScramSha256),
            "SCRAM-SHA-512" => Ok(Mechanism::ScramSha512),
            other => Err(format!(
                "{what}: SASL mechanism '{other}' is not supported (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)"
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sasl {
    pub mechanism: Mechanism,
    pub user: String,
    pub password: Secret,
}

/// A kafka target's security, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Security {
    pub tls: Option<crate::tls::Config>,
    pub sasl: Option<Sasl>,
}

/// The security parameters a kafka:// URL may carry.
pub const PARAMS: [&str; 9] = [
    "tls",
    "ca",
    "cert",
    "key",
    "tls-verify",
    "sasl",
    "user",
    "password-file",
    "config",
];

/// Builds a target's security from its URL parameters (which win) and the
/// `config=` properties file.
///
/// Like the Java client, kwait reads the `ssl.*` keys only when TLS is on and
/// the `sasl.*` keys only when SASL is; otherwise they are listed as ignored.
/// What the settings leave unsafe or unread goes into `warnings`, for the
/// caller to print once.
pub fn resolve(
    params: &[(String, String)],
    what: &str,
    env: crate::net::Env,
    warnings: &mut Vec<String>,
) -> Result<Security, String> {
    let get = |key: &str| {
        params
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let mut props = Properties::default();
    if let Some(path) = get("config") {
        props = Properties::load(path, what)?;
    }

    let protocol = props.get("security.protocol").map(str::to_ascii_uppercase);
    let (protocol_tls, protocol_sasl) = match protocol.as_deref() {
        None | Some("PLAINTEXT") => (false, false),
        Some("SSL") => (true, false),
        Some("SASL_PLAINTEXT") => (false, true),
        Some("SASL_SSL") => (true, true),
        Some(other) => {
            return Err(format!(
                "{what}: security.protocol={other} in config= is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
            ))
        }
    };

    // TLS: an explicit tls= wins over the file; ca=, cert=, key= and
    // tls-verify= mean TLS, so tls=false beside one of them is a mistake.
    let implied = ["ca", "cert", "key", "tls-verify"]
        .into_iter()
        .find(|k| get(k).is_some());
    let tls = match get("tls") {
        Some(v) => Some(crate::net::flag(v, "tls", what)?),
        None => None,
    };
    let tls_on = crate::net::tls_on(what, tls, implied, protocol_tls)?;
    let tls = if tls_on {
        Some(tls_config(&get, &props, what, warnings)?)
    } else {
        None
    };

    let sasl_on = protocol_sasl || get("sasl").is_some() || get("user").is_some();
    let sasl = if sasl_on {
        Some(sasl(&get, &props, protocol.as_deref(), what, env)?)
    } else {
        None
    };
    props.warn_ignored(what, tls_on, sasl_on, warnings);
    Ok(Security { tls, sasl })
}

/// TLS settings, in a build without TLS: none can be used, so none is
/// read.
#[cfg(not(feature = "tls"))]
fn tls_config<'a>(
    _: &impl Fn(&str) -> Option<&'a str>,
    _: &Properties,
    what: &str,
    _: &mut Vec<String>,
) -> Result<crate::tls::Config, String> {
    Err(format!("{what}: {}", crate::tls::MISSING))
}

/// TLS settings: URL paths, else the properties' PEM stores.
#[cfg(feature = "tls")]
fn tls_config<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
    props: &Properties,
    what: &str,
    warnings: &mut Vec<String>,
) -> Result<crate::tls::Config, String> {
    let mut files = TlsFiles {
        verify: true,
        verify_name: true,
        ..TlsFiles::default()
    };
    files.ca = match get("ca") {
        Some(path) => Some(Pem {
            from: format!("ca={path}"),
            text: read(path, "ca", what)?,
        }),
        None => props.pem_store("truststore", what)?,
    };
    let (cert, key) = match (get("cert"), get("key")) {
        (Some(c), Some(k)) => (
            Some(Pem {
                from: format!("cert={c}"),
                text: read(c, "cert", what)?,
            }),
            Some(Pem {
                from: format!("key={k}"),
                text: Secret(String::from_utf8_lossy(&read(k, "key", what)?).into_owned()),
            }),
        ),
        (None, None) => props.pem_keystore(what)?,
        _ => {
            return Err(format!(
                "{what}: cert= and key= go together (mTLS needs both)"
            ))
        }
    };
    files.cert = cert;
    files.key = key;
    if let Some(v) = get("tls-verify") {
        files.verify = crate::net::tls_verify(what, v, "broker", warnings)?;
    }
    if let Some(v) = props.get("ssl.endpoint.identification.algorithm") {
        files.verify_name = !v.trim().is_empty();
    }
    if files.verify && !files.verify_name {
        warnings.push(format!(
            "{what}: config={}: ssl.endpoint.identification.algorithm is empty: the broker's host name is not checked, \
             any certificate from a trusted CA is accepted; set it to https",
            props.path
        ));
    }
    crate::tls::Config::build(&files).map_err(|e| format!("{what}: {e}"))
}

/// SASL settings: mechanism, user and password.
fn sasl<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
    props: &Properties,
    protocol: Option<&str>,
    what: &str,
    env: crate::net::Env,
) -> Result<Sasl, String> {
    let config = &props.path;
    let jaas = props
        .get("sasl.jaas.config")
        .map(Jaas::parse)
        .transpose()
        .map_err(|e| format!("{what}: config={config}: sasl.jaas.config: {e}"))?;
    let mechanism = match get("sasl").or(props.get("sasl.mechanism")) {
        Some(m) => Mechanism::parse(m, what)?,
        // Kafka's default sasl.mechanism is GSSAPI; a JAAS line names the
        // mechanism family through its login module.
        None => match jaas.as_ref().map(|j| j.module) {
            Some(Module::Plain) => Mechanism::Plain,
            Some(Module::Scram) => {
                return Err(format!(
                    "{what}: config={config}: sasl.jaas.config uses ScramLoginModule, which does not say which SCRAM: \
                     set sasl.mechanism=SCRAM-SHA-256 or sasl.mechanism=SCRAM-SHA-512"
                ))
            }
            // kwait's own shorthand: user= alone means PLAIN.
            None if get("user").is_some() => Mechanism::Plain,
            None => {
                return Err(format!(
                    "{what}: config={config}: security.protocol={} without sasl.mechanism means GSSAPI (Kerberos), \
                     which kwait does not support: set sasl.mechanism=PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
                    protocol.unwrap_or("SASL_PLAINTEXT")
                ))
            }
        },
    };
    if let Some(j) = &jaas {
        if (j.module == Module::Plain) != (mechanism == Mechanism::Plain) {
            return Err(format!(
                "{what}: config={config}: sasl.jaas.config's {} does not match SASL mechanism {} (sasl= or sasl.mechanism)",
                j.module.name(),
                mechanism.name()
            ));
        }
    }
    let user = get("user")
        .map(str::to_string)
        .or_else(|| jaas.as_ref().and_then(|j| j.username.clone()))
        .ok_or_else(|| {
            format!("{what}: SASL needs a user: add user=NAME, or a sasl.jaas.config with username")
        })?;
    let from_jaas = jaas.and_then(|j| j.password);
    // The target's own password-file= wins. Otherwise the password comes
    // from exactly one place: the environment, which every target shares,
    // or this target's config=; both set is ambiguous, so it is refused.
    let from_file = match get("password-file") {
        Some(path) => crate::secret::password(what, Some(path), &[], env)?,
        None => None,
    };
    let password = if let Some(password) = from_file {
        password
    } else {
        let from_env = crate::secret::password(what, None, &[PASSWORD_ENV], env)?;
        match (from_env, from_jaas) {
            (Some(_), Some(_)) => {
                return Err(format!(
                    "{what}: a password is set both in {PASSWORD_ENV} and in config={config}'s sasl.jaas.config: \
                     unset {PASSWORD_ENV}, or remove the password from the JAAS line"
                ))
            }
            (Some(p), None) | (None, Some(p)) => p,
            (None, None) => {
                return Err(format!(
                    "{what}: SASL user '{user}' needs a password: set {PASSWORD_ENV}, or password-file=PATH"
                ))
            }
        }
    };
    Ok(Sasl {
        mechanism,
        user,
        password,
    })
}

fn read(path: &str, key: &str, what: &str) -> Result<Vec<u8>, String> {
    crate::file::read(
        Path::new(path),
        &format!("{what}: {key}={path}"),
        &format!("too large for what {key}= names (check the path)"),
    )
}

/// A Java properties file, as the Kafka tools and cub read it
/// ([`crate::properties::parse`]).
#[derive(Debug, Default)]
struct Properties {
    entries: Vec<(String, String)>,
    used: std::cell::RefCell<Vec<String>>,
    path: String,
}

/// Keys kwait reads; anything else in the file is reported once as ignored.
const KNOWN: [&str; 13] = [
    "security.protocol",
    "sasl.mechanism",
    "sasl.jaas.config",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.certificates",
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.key",
    "ssl.keystore.certificate.chain",
    "ssl.key.password",
    "ssl.endpoint.identification.algorithm",
    "ssl.truststore.password",
];

impl Properties {
    fn load(path: &str, what: &str) -> Result<Properties, String> {
        let text = String::from_utf8(read(path, "config", what)?)
            .map_err(|_| format!("{what}: config={path}: not UTF-8 text"))?;
        Ok(Properties {
            // Trimmed, as Kafka's ConfigDef trims values.
            entries: crate::properties::parse(&text)
                .into_iter()
                .map(|(key, value)| (key, value.trim().to_string()))
                .collect(),
            used: Default::default(),
            path: path.to_string(),
        })
    }

    fn get(&self, key: &str) -> Option<&str> {
        let found = self
            .entries
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str());
        if found.is_some() {
            self.used.borrow_mut().push(key.to_string());
        }
        found
    }

    /// A PEM truststore: `ssl.truststore.certificates` inline, or
    /// `ssl.truststore.location` with `ssl.truststore.type=PEM`.
    #[cfg(feature = "tls")]
    fn pem_store(&self, which: &str, what: &str) -> Result<Option<Pem<Vec<u8>>>, String> {
        let key = format!("ssl.{which}.certificates");
        if let Some(inline) = self.get(&key) {
            return Ok(Some(Pem {
                from: self.named(&key),
                text: inline.as_bytes().to_vec(),
            }));
        }
        let key = format!("ssl.{which}.location");
        let Some(location) = self.get(&key) else {
            return Ok(None);
        };
        self.require_pem(which, location, what)?;
        Ok(Some(Pem {
            from: self.named(&format!("{key}={location}")),
            text: read(location, &key, what)?,
        }))
    }

    /// How the user named `setting` of this file: `config=PATH: setting`.
    #[cfg(feature = "tls")]
    fn named(&self, setting: &str) -> String {
        format!("config={}: {setting}", self.path)
    }

    /// A PEM keystore: inline `ssl.keystore.key` and
    /// `ssl.keystore.certificate.chain`, or a PEM file holding both.
    #[cfg(feature = "tls")]
    #[allow(clippy::type_complexity)]
    fn pem_keystore(
        &self,
        what: &str,
    ) -> Result<(Option<Pem<Vec<u8>>>, Option<Pem<Secret>>), String> {
        if let (Some(key), Some(chain)) = (
            self.get("ssl.keystore.key"),
            self.get("ssl.keystore.certificate.chain"),
        ) {
            return Ok((
                Some(Pem {
                    from: self.named("ssl.keystore.certificate.chain"),
                    text: chain.as_bytes().to_vec(),
                }),
                Some(Pem {
                    from: self.named("ssl.keystore.key"),
                    text: Secret(key.to_string()),
                }),
            ));
        }
        let Some(location) = self.get("ssl.keystore.location") else {
            return Ok((None, None));
        };
        self.require_pem("keystore", location, what)?;
        if self.get("ssl.key.password").is_some() {
            return Err(format!(
                "{what}: config={}: encrypted keys (ssl.key.password) are not supported; give kwait an unencrypted PEM key",
                self.path
            ));
        }
        let pem = read(location, "ssl.keystore.location", what)?;
        let from = self.named(&format!("ssl.keystore.location={location}"));
        Ok((
            Some(Pem {
                from: from.clone(),
                text: pem.clone(),
            }),
            Some(Pem {
                from,
                text: Secret(String::from_utf8_lossy(&pem).into_owned()),
            }),
        ))
    }

    #[cfg(feature = "tls")]
    fn require_pem(&self, which: &str, location: &str, what: &str) -> Result<(), String> {
        let kind = self
            .get(&format!("ssl.{which}.type"))
            .unwrap_or("JKS")
            .to_ascii_uppercase();
        if kind != "PEM" {
            return Err(format!(
                "{what}: config={}: ssl.{which}.location={location} is a {kind} store, which kwait cannot read; \
                 convert it to PEM and set ssl.{which}.type=PEM (keytool -exportcert -rfc, openssl pkcs12 -nodes)",
                self.path
            ));
        }
        Ok(())
    }

    /// Lists, in one warning, the keys kwait does not read: those it does
    /// not know, and the `ssl.*` (`sasl.*`) keys when TLS (SASL) is off, as
    /// the Java client ignores them then.
    fn warn_ignored(&self, what: &str, tls: bool, sasl: bool, warnings: &mut Vec<String>) {
        let used = self.used.borrow();
        let unused = self
            .entries
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !used.iter().any(|u| u == k));
        let mut unknown = Vec::new();
        let mut off = Vec::new();
        for key in unused {
            let list = if !tls && key.starts_with("ssl.") || !sasl && key.starts_with("sasl.") {
                &mut off
            } else if !KNOWN.contains(&key) {
                &mut unknown
            } else {
                continue;
            };
            if !list.contains(&key) {
                list.push(key);
            }
        }
        let off = match (off.is_empty(), tls, sasl) {
            (true, _, _) => String::new(),
            (false, false, false) => format!("TLS and SASL are off, so also {}", off.join(", ")),
            (false, false, true) => format!("TLS is off, so also {}", off.join(", ")),
            (false, _, _) => format!("SASL is off, so also {}", off.join(", ")),
        };
        let listed = match (unknown.is_empty(), off.is_empty()) {
            (true, true) => return,
            (false, true) => unknown.join(", "),
            (true, false) => off,
            (false, false) => format!("{}; {off}", unknown.join(", ")),
        };
        warnings.push(format!(
            "{what}: config={} keys kwait ignores: {listed}",
            self.path
        ));
    }
}

/// A JAAS login module kwait knows. ScramLoginModule serves both SCRAM
/// mechanisms: `sasl.mechanism` says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Module {
    Plain,
    Scram,
}

impl Module {
    fn name(self) -> &'static str {
        match self {
            Module::Plain => "PlainLoginModule",
            Module::Scram => "ScramLoginModule",
        }
    }
}

/// The parts of a JAAS `sasl.jaas.config` line kwait uses:
/// `org.apache.kafka.common.security.plain.PlainLoginModule required
/// username="u" password="p";`
#[derive(Debug, PartialEq, Eq)]
struct Jaas {
    module: Module,
    username: Option<String>,
    password: Option<Secret>,
}

impl Jaas {
    fn parse(text: &str) -> Result<Jaas, String> {
        let text = text.trim().trim_end_matches(';').trim();
        let (module, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        let module = if module.ends_with("PlainLoginModule") {
            Module::Plain
        } else if module.ends_with("ScramLoginModule") {
            Module::Scram
        } else {
            return Err(format!(
                "login module {module} is not supported (PlainLoginModule, ScramLoginModule)"
            ));
        };
        let mut username = None;
        let mut password = None;
        let mut rest = rest.trim_start();
        for flag in ["required", "requisite", "sufficient", "optional"] {
            if let Some(r) = rest.strip_prefix(flag) {
                rest = r.trim_start();
            }
        }
        while !rest.is_empty() {
            let (key, after) = rest.split_once('=').ok_or("expected key=\"value\"")?;
            let after = after.trim_start();
            // Kafka's JaasConfig accepts '...' as well as "..."; Confluent
            // Cloud prints single quotes.
            let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'');
            let (value, tail) = if let Some(quoted) = quote.map(|q| &after[q.len_utf8()..]) {
                let q = quote.unwrap_or('"');
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let mut end = None;
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, n)) = chars.next() {
                                value.push(n);
                            }
                        }
                        c if c == q => {
                            end = Some(i + 1);
                            break;
                        }
                        c => value.push(c),
                    }
                }
                let end = end.ok_or("unterminated quoted value")?;
                (value, &quoted[end..])
            } else {
                let end = after.find(char::is_whitespace).unwrap_or(after.len());
                (after[..end].to_string(), &after[end..])
            };
            match key.trim() {
                "username" => username = Some(value),
                "password" => password = Some(Secret(value)),
                _ => {}
            }
            rest = tail.trim_start();
        }
        Ok(Jaas {
            module,
            username,
            password,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaas_lines() {
        let j = Jaas::parse(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="API_KEY" password="se\"cret";"#,
        )
        .unwrap();
        assert_eq!(j.username.as_deref(), Some("API_KEY"));
        assert_eq!(j.password.as_ref().map(Secret::expose), Some("se\"cret"));
        assert_eq!(j.module, Module::Plain);
        let j = Jaas::parse("org.apache.kafka.common.security.scram.ScramLoginModule required username=alice password=x;").unwrap();
        assert_eq!(j.username.as_deref(), Some("alice"));
        let j = Jaas::parse("org.apache.kafka.common.security.plain.PlainLoginModule   required username='KEY'   password='SE\"CRET';").unwrap();
        assert_eq!(j.username.as_deref(), Some("KEY"));
        assert_eq!(j.password.as_ref().map(Secret::expose), Some("SE\"CRET"));
        assert!(Jaas::parse("com.sun.security.auth.module.Krb5LoginModule required;").is_err());
        assert!(Jaas::parse(r#"x.PlainLoginModule required username="open"#).is_err());
    }

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn tls_false_beside_a_tls_setting_is_refused() {
        for key in ["ca", "cert", "key", "tls-verify"] {
            let err = resolve(
                &params(&[("tls", "false"), (key, "x")]),
                "t",
                &|_| None,
                &mut Vec::new(),
            )
            .unwrap_err();
            assert!(
                err.contains("tls=false") && err.contains(&format!("{key}=")),
                "{err}"
            );
            // In either order.
            let err = resolve(
                &params(&[(key, "x"), ("tls", "0")]),
                "t",
                &|_| None,
                &mut Vec::new(),
            )
            .unwrap_err();
            assert!(err.contains("contradicts"), "{err}");
        }
        // tls=false alone is plaintext.
        let plain = resolve(
            &params(&[("tls", "false")]),
            "t",
            &|_| None,
            &mut Vec::new(),
        )
        .unwrap();
        assert!(plain.tls.is_none());
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret("hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
        let sasl = Sasl {
            mechanism: Mechanism::Plain,
            user: "u".into(),
            password: s,
        };
        assert!(!format!("{sasl:?}").contains("hunter2"));
    }
}
