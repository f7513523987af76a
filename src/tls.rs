//! TLS for kafka:// and https:// targets: rustls with the ring provider,
//! Mozilla's trust roots built in (a `FROM scratch` image has no system
//! store) plus a private CA from `ca=`, client certificates for mTLS, SNI
//! from the host name.
//!
//! Failures are sorted by whether waiting can fix them: a certificate that
//! is not trusted or does not match the name, or a listener that answers in
//! something other than TLS, is [`Failure::Fatal`] and reported at once; a
//! silent listener, or one that closes the connection without a word (a
//! published port with nothing behind it yet, a restarting broker), is not.
//! Telling a plaintext Kafka listener from those is the caller's job (it
//! asks the same address in plaintext).
//!
//! A server certificate that is byte for byte one the user gave in `ca=`
//! or `SSL_CERT_FILE` is trusted as itself, as curl and OpenSSL trust it: a
//! self-signed certificate from `openssl req -x509` (CA:TRUE by default)
//! works. Its issuer, CA flag and key usage are then not checked (the user
//! vouched for these very bytes); its validity dates and host name still
//! are (the name unless name checks are off), the CN standing in for a
//! missing subjectAltName as OpenSSL lets it.
//!
//! Every rustls and webpki error is put into words here: their Debug text
//! (`Other(OtherError(CaUsedAsEndEntity))`) never reaches a user.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_name, WebPkiServerVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore,
    SignatureScheme,
};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::net::Attempt;
use crate::secret::Secret;

/// PEM text and how the user named it, for the messages about it:
/// `ca=/etc/ca.pem`, `config=/etc/client.properties:
/// ssl.truststore.location=/etc/ca.pem`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pem<T> {
    pub from: String,
    pub text: T,
}

/// PEM material and checks for a TLS connection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsFiles {
    /// Extra trust roots (a private CA).
    pub ca: Option<Pem<Vec<u8>>>,
    /// Client certificate chain and key (mTLS).
    pub cert: Option<Pem<Vec<u8>>>,
    pub key: Option<Pem<Secret>>,
    /// Verify the certificate chain (`tls-verify=false` turns this off).
    pub verify: bool,
    /// Verify the host name (`ssl.endpoint.identification.algorithm=`).
    pub verify_name: bool,
}

/// A built client configuration, shared by every connection of a target.
#[derive(Clone)]
pub struct Config(Arc<ClientConfig>, Hints);

/// How the user fixes what goes wrong: kafka:// takes `ca=`, `tls=`,
/// `cert=` and `key=`; https:// takes `SSL_CERT_FILE` and no client
/// certificate.
#[derive(Clone, Copy)]
struct Hints {
    ca: &'static str,
    /// To trust a self-signed server certificate as itself.
    pin: &'static str,
    plaintext: &'static str,
    /// After a handshake that got no answer (kafka:// checks for itself).
    silent: &'static str,
    /// After an alert that may be about client certificates.
    client: &'static str,
}

const KAFKA_HINTS: Hints = Hints {
    ca: "give its CA with ca=PATH",
    pin: "give it with ca=PATH",
    plaintext: "is this a plaintext listener? then drop tls",
    silent: "",
    client: "does it require a client certificate? give one with cert= and key=",
};

/// kafka:// with a client certificate (`cert=`, `key=`).
const KAFKA_CERT_HINTS: Hints = Hints {
    client: "does it trust the client certificate of cert= (is its CA in the broker's truststore)?",
    ..KAFKA_HINTS
};

const HTTPS_HINTS: Hints = Hints {
    ca: "give a private CA with SSL_CERT_FILE=PATH",
    pin: "give it with SSL_CERT_FILE=PATH",
    plaintext: "a plain HTTP server? then use http://",
    silent: " (a plain HTTP server? then use http://)",
    client: "does it require a client certificate? https:// targets cannot send one",
};

/// postgres:// and rediss://, which take `ca=` and no client certificate.
const TARGET_HINTS: Hints = Hints {
    ca: "give its CA with ca=PATH",
    pin: "give it with ca=PATH",
    plaintext: "is TLS off on the server? then drop it from the target",
    silent: "",
    client: "does it require a client certificate? kwait cannot send one to this target",
};

/// For errors met after the handshake, where the caller adds its own hint.
const NO_HINTS: Hints = Hints {
    ca: "",
    pin: "",
    plaintext: "",
    silent: "",
    client: "",
};

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tls::Config")
    }
}

impl PartialEq for Config {
    fn eq(&self, other: &Config) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Config {}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Config {
    /// No verification at all: only for asking whether a Kafka broker
    /// answers at a registered TLS listener, sending nothing secret.
    pub fn unverified() -> Result<Config, String> {
        Config::build(&TlsFiles::default())
    }

    /// The built-in roots, for https:// targets, plus a private CA from
    /// `SSL_CERT_FILE`, the variable OpenSSL-based tools read.
    pub fn default_roots(env: crate::net::Env) -> Result<Config, String> {
        // Empty counts as unset, as for every variable kwait reads.
        let ca = match env(CA_ENV).filter(|v| !v.is_empty()) {
            None => None,
            Some(path) => {
                let path = std::path::Path::new(&path);
                Some(Pem {
                    from: format!("{CA_ENV}={}", path.display()),
                    text: read_ca(path)?,
                })
            }
        };
        let built = Config::build(&TlsFiles {
            ca,
            verify: true,
            verify_name: true,
            ..TlsFiles::default()
        })?;
        Ok(Config(built.0, HTTPS_HINTS))
    }

    /// For the database, cache and queue targets (postgres://, rediss://,
    /// mysql://, amqps://): the built-in roots plus the target's `ca=`
    /// file; `verify` checks the chain (not with `tls-verify=false`, nor
    /// libpq's sslmode=require without a CA), `verify_name` the host name.
    pub fn for_target(
        what: &str,
        ca: Option<&str>,
        verify: bool,
        verify_name: bool,
    ) -> Result<Config, String> {
        let ca = match ca {
            None => None,
            Some(path) => Some(Pem {
                from: format!("{what}: ca={path}"),
                text: crate::file::read(
                    std::path::Path::new(path),
                    &format!("{what}: ca={path}"),
                    "not a CA bundle",
                )?,
            }),
        };
        let built = Config::build(&TlsFiles {
            verify,
            ca,
            verify_name,
            ..TlsFiles::default()
        })?;
        Ok(Config(built.0, TARGET_HINTS))
    }

    pub fn build(files: &TlsFiles) -> Result<Config, String> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let mut pinned = Vec::new();
        if let Some(Pem { from, text }) = &files.ca {
            for cert in CertificateDer::pem_slice_iter(text) {
                let cert = cert.map_err(|e| format!("{from}: {}", pem_words(&e)))?;
                pinned.push(cert.clone());
                roots.add(cert).map_err(|e| {
                    format!(
                        "{from}: an unusable certificate: {}",
                        words(&e, NO_HINTS).trim_start_matches("the server's certificate ")
                    )
                })?;
            }
            if pinned.is_empty() {
                return Err(format!("{from}: no PEM certificate in it"));
            }
        }
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?;
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| format!("TLS setup: {e}"))?;
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Verifier {
                inner: verifier,
                verify: files.verify,
                verify_name: files.verify_name,
                pinned,
            }));
        let config = match (&files.cert, &files.key) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_slice_iter(&cert.text)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("{}: {}", cert.from, pem_words(&e)))?;
                if chain.is_empty() {
                    return Err(format!("{}: no PEM certificate in it", cert.from));
                }
                let der = PrivateKeyDer::from_pem_slice(key.text.expose().as_bytes())
                    .map_err(|_| format!("{}: no unencrypted PEM private key in it", key.from))?;
                builder
                    .with_client_auth_cert(chain, der)
                    .map_err(|e| match e {
                        // rustls compares the key's public half with the
                        // certificate's.
                        rustls::Error::InconsistentKeys(_) if cert.from == key.from => format!(
                            "{}: its key is not its certificate's (the two do not belong together)",
                            key.from
                        ),
                        rustls::Error::InconsistentKeys(_) => format!(
                            "{} and {} do not belong together (the key is not the certificate's)",
                            cert.from, key.from
                        ),
                        other => format!("{}: {}", key.from, words(&other, NO_HINTS)),
                    })?
            }
            _ => builder.with_no_client_auth(),
        };
        let hints = if files.cert.is_some() {
            KAFKA_CERT_HINTS
        } else {
            KAFKA_HINTS
        };
        Ok(Config(Arc::new(config), hints))
    }
}

/// Where https:// targets take a private CA from.
const CA_ENV: &str = "SSL_CERT_FILE";

/// A private CA bundle, read bounded like every file the user names.
fn read_ca(path: &std::path::Path) -> Result<Vec<u8>, String> {
    crate::file::read(
        path,
        &format!("{CA_ENV}={}", path.display()),
        "not a CA bundle",
    )
}

/// Why a TLS handshake failed.
#[derive(Debug)]
pub enum Failure {
    /// Waiting cannot fix it.
    Fatal(String),
    /// It may work on a later attempt.
    Retry(String),
}

/// Runs the TLS handshake over `tcp`, within the attempt's deadline.
pub async fn connect(
    config: &Config,
    host: &str,
    tcp: TcpStream,
    attempt: &Attempt,
) -> Result<TlsStream<TcpStream>, Failure> {
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| Failure::Fatal(format!("'{host}' is not a valid TLS server name")))?;
    let connector = TlsConnector::from(config.0.clone());
    let hints = config.1;
    match tokio::time::timeout_at(attempt.deadline, connector.connect(name, tcp)).await {
        Err(_) => Err(Failure::Retry(format!(
            "no TLS handshake answer within {}{}",
            attempt.expired(),
            hints.silent
        ))),
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(err)) => Err(classify(&err, hints)),
    }
}

/// Whether a TLS server answers at the other end of `tcp`: the handshake
/// completes, or the server's own TLS messages refuse it. Nothing secret is
/// sent and no certificate is checked; this only names the mistake of a
/// plaintext client at a TLS listener.
pub async fn speaks_tls(host: &str, tcp: TcpStream, attempt: &Attempt) -> bool {
    let Ok(config) = Config::unverified() else {
        return false;
    };
    // An IP address or a name: either serves for SNI here, and neither is
    // checked.
    let Ok(name) = ServerName::try_from(host.to_string()) else {
        return false;
    };
    let connector = TlsConnector::from(config.0);
    match tokio::time::timeout_at(attempt.deadline, connector.connect(name, tcp)).await {
        Ok(Ok(_)) => true,
        Ok(Err(err)) => matches!(
            err.get_ref()
                .and_then(|e| e.downcast_ref::<rustls::Error>()),
            Some(rustls::Error::AlertReceived(_) | rustls::Error::InvalidCertificate(_))
        ),
        Err(_) => false,
    }
}

fn classify(err: &std::io::Error, hints: Hints) -> Failure {
    let Some(inner) = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    else {
        return Failure::Retry(match err.kind() {
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset => format!(
                "the listener closed the connection during the TLS handshake ({})",
                crate::net::describe(err)
            ),
            _ => format!("TLS handshake: {}", crate::net::describe(err)),
        });
    };
    Failure::Fatal(words(inner, hints))
}

/// A TLS error inside an I/O error met after the handshake (an alert on
/// the first read, under TLS 1.3), in words; `None` when there is none.
/// The caller adds what the user should check.
/// Whether an io error is a TLS alert the peer sent.
pub fn is_alert(err: &std::io::Error) -> bool {
    matches!(
        err.get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>()),
        Some(rustls::Error::AlertReceived(_))
    )
}

pub fn io_words(err: &std::io::Error) -> Option<String> {
    let inner = err.get_ref()?.downcast_ref::<rustls::Error>()?;
    Some(words(inner, NO_HINTS))
}

/// What a rustls error means, in words, with the fix `hints` gives. Never
/// rustls' or webpki's Debug text.
fn words(err: &rustls::Error, hints: Hints) -> String {
    use rustls::Error as E;
    match err {
        E::InvalidCertificate(cert) => format!("the server's certificate {}", cert_words(cert, hints)),
        E::InvalidMessage(_)
        | E::InappropriateMessage { .. }
        | E::InappropriateHandshakeMessage { .. }
        | E::PeerSentOversizedRecord => {
            let hint = if hints.plaintext.is_empty() {
                String::new()
            } else {
                format!(" ({})", hints.plaintext)
            };
            format!("the listener does not speak TLS{hint}")
        }
        E::AlertReceived(alert) => alert_words(*alert, hints),
        E::PeerIncompatible(_) => "the server's TLS has nothing in common with kwait's (kwait speaks TLS 1.2 and 1.3 with current cipher suites)".into(),
        E::PeerMisbehaved(_) => "the server broke the TLS protocol during the handshake".into(),
        E::NoCertificatesPresented => "the server sent no certificate".into(),
        E::DecryptError => "the server's TLS data does not decrypt (a broken server, or something in between)".into(),
        E::UnsupportedNameType => "this host name cannot be used for TLS".into(),
        E::General(text) => format!("TLS failed: {text}"),
        _ => "the TLS handshake failed".into(),
    }
}

/// An alert the server sent, by its RFC 8446 name and number, with what it
/// most likely means.
fn alert_words(alert: AlertDescription, hints: Hints) -> String {
    use AlertDescription as A;
    let name = match alert {
        A::CloseNotify => "close_notify",
        A::UnexpectedMessage => "unexpected_message",
        A::BadRecordMac => "bad_record_mac",
        A::HandshakeFailure => "handshake_failure",
        A::BadCertificate => "bad_certificate",
        A::UnsupportedCertificate => "unsupported_certificate",
        A::CertificateRevoked => "certificate_revoked",
        A::CertificateExpired => "certificate_expired",
        A::CertificateUnknown => "certificate_unknown",
        A::IllegalParameter => "illegal_parameter",
        A::UnknownCA => "unknown_ca",
        A::AccessDenied => "access_denied",
        A::DecodeError => "decode_error",
        A::DecryptError => "decrypt_error",
        A::ProtocolVersion => "protocol_version",
        A::InsufficientSecurity => "insufficient_security",
        A::InternalError => "internal_error",
        A::UnrecognisedName => "unrecognized_name",
        A::CertificateRequired => "certificate_required",
        A::NoApplicationProtocol => "no_application_protocol",
        _ => "",
    };
    let code = u8::from(alert);
    let named = if name.is_empty() {
        format!("TLS alert {code}")
    } else {
        format!("TLS alert {name} ({code})")
    };
    let meaning = match alert {
        A::HandshakeFailure if !hints.client.is_empty() => format!(
            ": {} (or it shares no TLS version or cipher suite with kwait)",
            hints.client
        ),
        A::CertificateRequired
        | A::BadCertificate
        | A::UnsupportedCertificate
        | A::CertificateRevoked
        | A::CertificateExpired
        | A::CertificateUnknown
        | A::UnknownCA
        | A::AccessDenied
            if !hints.client.is_empty() =>
        {
            format!(": {}", hints.client)
        }
        A::ProtocolVersion | A::InsufficientSecurity => {
            ": no TLS version or cipher suite in common (kwait speaks TLS 1.2 and 1.3)".into()
        }
        A::UnrecognisedName => ": it does not serve this host name (SNI)".into(),
        _ => String::new(),
    };
    format!("the server refused the TLS handshake with {named}{meaning}")
}

/// What is wrong with the server's certificate, after "the server's
/// certificate".
fn cert_words(err: &CertificateError, hints: Hints) -> String {
    use CertificateError as C;
    match err {
        C::NotValidForName => "does not match its host name (connect by the name in the certificate, or fix the certificate's SAN)".into(),
        C::NotValidForNameContext { presented, .. } => {
            // webpki lists them as `DnsName("kafka")`, `IpAddress(10.0.0.1)`.
            let names: Vec<&str> = presented
                .iter()
                .filter_map(|p| {
                    p.strip_prefix("DnsName(\"")
                        .and_then(|n| n.strip_suffix("\")"))
                        .or_else(|| p.strip_prefix("IpAddress(").and_then(|n| n.strip_suffix(')')))
                })
                .collect();
            if names.is_empty() {
                "does not match its host name: it names no host in a subjectAltName (only a certificate trusted as itself, given in ca= or SSL_CERT_FILE, is matched by its CN; add one, e.g. openssl's -addext subjectAltName=DNS:NAME)".into()
            } else {
                format!(
                    "does not match its host name: it is for {} (connect by the name in the certificate, or fix the certificate's SAN)",
                    crate::log::shown(&names.join(", "), 300)
                )
            }
        }
        C::UnknownIssuer => format!("is not signed by a trusted CA ({})", hints.ca),
        C::Expired => "has expired".into(),
        C::ExpiredContext { time, not_after } => format!(
            "expired {} ago",
            ago(time.as_secs().saturating_sub(not_after.as_secs()))
        ),
        C::NotValidYet => "is not valid yet (check this machine's clock)".into(),
        C::NotValidYetContext { time, not_before } => format!(
            "is not valid for another {} (check this machine's clock)",
            ago(not_before.as_secs().saturating_sub(time.as_secs()))
        ),
        C::Revoked => "has been revoked".into(),
        C::BadSignature => "has a signature that does not verify (corrupt, or not signed by the CA it names)".into(),
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
            "is not meant for a TLS server (its extendedKeyUsage lacks serverAuth)".into()
        }
        C::BadEncoding => "is not a well-formed X.509 certificate".into(),
        C::UnhandledCriticalExtension => "has a critical extension kwait does not know".into(),
        C::UnsupportedSignatureAlgorithmContext { .. }
        | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "is signed with an algorithm kwait does not accept (it takes RSA, ECDSA P-256/P-384 and Ed25519 signatures)".into()
        }
        C::Other(other) => {
            use std::error::Error as _;
            match other.source().and_then(|e| e.downcast_ref::<webpki::Error>()) {
                Some(e) => webpki_words(e, hints),
                None => "was rejected".into(),
            }
        }
        _ => "was rejected".into(),
    }
}

/// The webpki errors rustls passes on as "other".
fn webpki_words(err: &webpki::Error, hints: Hints) -> String {
    use webpki::Error as W;
    match err {
        W::CaUsedAsEndEntity => format!(
            "is a CA certificate (CA:TRUE, what openssl req -x509 makes by default), not one issued to a server by a CA kwait trusts; to trust this very certificate, {}",
            hints.pin
        ),
        W::EndEntityUsedAsCa => "comes with a chain in which a certificate that is not a CA (CA:FALSE) signs another".into(),
        W::PathLenConstraintViolated => "comes with a chain longer than one of its CAs allows (pathlen)".into(),
        W::NameConstraintViolation => "names a host its CA may not issue for (name constraints)".into(),
        W::UnsupportedCertVersion => "is not an X.509 v3 certificate (openssl writes v1 without an extension file)".into(),
        W::CertDistrusted => "is distrusted".into(),
        W::MaximumPathDepthExceeded
        | W::MaximumSignatureChecksExceeded
        | W::MaximumPathBuildCallsExceeded
        | W::MaximumNameConstraintComparisonsExceeded => "comes with a chain too long or complex to verify".into(),
        _ => "is malformed or breaks a rule of certificate chains (RFC 5280)".into(),
    }
}

/// A PEM file's defect, in words (pki-types writes byte arrays).
fn pem_words(err: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error as P;
    match err {
        P::MissingSectionEnd { .. } => "a PEM section without its END line".into(),
        P::IllegalSectionStart { .. } => "a malformed PEM BEGIN line".into(),
        P::Base64Decode(_) => "bad base64 inside a PEM section".into(),
        P::SectionTooLarge => "a PEM section over 10 MB".into(),
        _ => "not a PEM certificate".into(),
    }
}

/// `secs` as "3 days" past a day, else as kwait writes durations.
fn ago(secs: u64) -> String {
    match secs / 86_400 {
        0 => crate::log::since(std::time::Duration::from_secs(secs)),
        1 => "1 day".into(),
        days => format!("{days} days"),
    }
}

/// The notBefore and notAfter of a DER certificate, in Unix seconds (RFC
/// 5280 4.1: Certificate, TBSCertificate, then version, serialNumber,
/// signature, issuer, validity). `None` for anything else.
fn validity(cert: &[u8]) -> Option<(u64, u64)> {
    let fields = tbs_fields(cert)?;
    let (_, validity) = *fields.get(3)?;
    let (tag_before, before, rest) = der(validity)?;
    let (tag_after, after, _) = der(rest)?;
    Some((der_time(tag_before, before)?, der_time(tag_after, after)?))
}

/// The TBSCertificate's fields from serialNumber on, as (tag, contents).
fn tbs_fields(cert: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let (0x30, cert, _) = der(cert)? else {
        return None;
    };
    let (0x30, mut tbs, _) = der(cert)? else {
        return None;
    };
    let mut fields = Vec::new();
    while !tbs.is_empty() && fields.len() < 6 {
        let (tag, body, rest) = der(tbs)?;
        tbs = rest;
        // [0] EXPLICIT version, absent in v1.
        if tag != 0xa0 || !fields.is_empty() {
            fields.push((tag, body));
        }
    }
    Some(fields)
}

/// One DER element: (tag, contents, what follows).
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (bytes, rest) = rest.split_at_checked(n)?;
        let len = bytes.iter().fold(0usize, |a, &b| a << 8 | usize::from(b));
        (len, rest)
    };
    let (body, rest) = rest.split_at_checked(len)?;
    Some((tag, body, rest))
}

/// UTCTime (YYMMDDHHMMSSZ, 1950-2049) or GeneralizedTime
/// (YYYYMMDDHHMMSSZ) as Unix seconds.
fn der_time(tag: u8, text: &[u8]) -> Option<u64> {
    let (year, rest) = match tag {
        0x17 => {
            let yy = digits(text.get(..2)?)?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, text.get(2..)?)
        }
        0x18 => (digits(text.get(..4)?)?, text.get(4..)?),
        _ => return None,
    };
    if rest.len() != 11 || rest[10] != b'Z' {
        return None;
    }
    let field = |i: usize| digits(&rest[i..i + 2]);
    let (month, day) = (field(0)?, field(2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // Days from 1970-01-01 to the date (H. Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400 + field(4)? * 3600 + field(6)? * 60 + field(8)?)
}

fn digits(text: &[u8]) -> Option<u64> {
    text.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}

/// Whether the subject CN of a DER certificate is `host` (ASCII case
/// ignored, no wildcards): OpenSSL's rule for a certificate without any
/// subjectAltName.
fn common_name_is(cert: &[u8], host: &str) -> bool {
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    let Some(fields) = tbs_fields(cert) else {
        return false;
    };
    let Some(&(0x30, mut subject)) = fields.get(4) else {
        return false;
    };
    while let Some((_, set, rest)) = der(subject) {
        subject = rest;
        let mut set = set;
        while let Some((_, pair, rest)) = der(set) {
            set = rest;
            if let Some((0x06, oid, value)) = der(pair) {
                if let (true, Some((0x0c | 0x13 | 0x16, name, _))) = (oid == CN, der(value)) {
                    if name.eq_ignore_ascii_case(host.as_bytes()) {
                        return true;
                    }
                }
            }
        }
    }
    false
}

/// The web PKI verifier, with the two opt-outs users have: no verification
/// at all (`tls-verify=false`) or no host-name check
/// (`ssl.endpoint.identification.algorithm=`).
#[derive(Debug)]
struct Verifier {
    inner: Arc<WebPkiServerVerifier>,
    verify: bool,
    verify_name: bool,
    /// The certificates of `ca=` / `SSL_CERT_FILE`: one the server shows
    /// byte for byte is trusted as itself.
    pinned: Vec<CertificateDer<'static>>,
}

impl Verifier {
    /// A server certificate the user gave: its dates and name are checked,
    /// not its chain, CA flag or key usage.
    fn verify_pinned(
        &self,
        cert: &CertificateDer<'_>,
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let (not_before, not_after) = validity(cert).ok_or(CertificateError::BadEncoding)?;
        let at = |secs| UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs));
        if now.as_secs() < not_before {
            return Err(CertificateError::NotValidYetContext {
                time: now,
                not_before: at(not_before),
            }
            .into());
        }
        if now.as_secs() > not_after {
            return Err(CertificateError::ExpiredContext {
                time: now,
                not_after: at(not_after),
            }
            .into());
        }
        if !self.verify_name {
            return Ok(ServerCertVerified::assertion());
        }
        match verify_server_name(&ParsedCertificate::try_from(cert)?, server_name) {
            Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                presented,
                ..
            })) if presented.is_empty()
                && matches!(server_name, ServerName::DnsName(host) if common_name_is(cert, host.as_ref())) =>
            {
                Ok(ServerCertVerified::assertion())
            }
            Err(err) => Err(err),
            Ok(()) => Ok(ServerCertVerified::assertion()),
        }
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if !self.verify {
            return Ok(ServerCertVerified::assertion());
        }
        if self
            .pinned
            .iter()
            .any(|c| c.as_ref() == end_entity.as_ref())
        {
            return self.verify_pinned(end_entity, server_name, now);
        }
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.verify_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::{common_name_is, der, der_time, validity};
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    /// `openssl req -x509 -days 2 -subj "/O=kwait/CN=Kafka.Example"`: no
    /// subjectAltName, CA:TRUE.
    const SELF_SIGNED: &str = "-----BEGIN CERTIFICATE-----
MIIBpjCCAUugAwIBAgIUAV5fRRHPKzJihQcHdQm0J7w2q4kwCgYIKoZIzj0EAwIw
KDEOMAwGA1UECgwFa3dhaXQxFjAUBgNVBAMMDUthZmthLkV4YW1wbGUwHhcNMjYx
MjAzMTMxMjM0WhcNMjYxMjA1MTMxMjM0WjAoMQ4wDAYDVQQKDAVrd2FpdDEWMBQG
A1UEAwwNS2Fma2EuRXhhbXBsZTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABGg9
c6IrTLZpPyx6KnlvQpfll5h1QBxIdN+pvIN9eJOybBDhcpCPZ102yVNnE4pZU29p
xBFSxrMh5v4pKZJWf+ujUzBRMB0GA1UdDgQWBBRlx5MdNTkyG6DV0nwYc8K5WZ6M
wTAfBgNVHSMEGDAWgBRlx5MdNTkyG6DV0nwYc8K5WZ6MwTAPBgNVHRMBAf8EBTAD
AQH/MAoGCCqGSM49BAMCA0kAMEYCIQCOiLIEre94uz3KL83epMGJbeJmwn/z8iP6
32xdgkIo6gIhAMDy1Y4TdJ9mQSi/TlAnpQX2eiyljiuxbvXpxvHlY8jL
-----END CERTIFICATE-----\n";

    #[test]
    fn validity_and_common_name_of_a_real_certificate() {
        let cert = CertificateDer::from_pem_slice(SELF_SIGNED.as_bytes()).unwrap();
        assert_eq!(validity(&cert), Some((1796303554, 1796476354)));
        assert!(common_name_is(&cert, "kafka.example"));
        assert!(!common_name_is(&cert, "kwait"));
        assert!(!common_name_is(&cert, "kafka.example.org"));
    }

    #[test]
    fn der_times() {
        assert_eq!(der_time(0x17, b"700101000000Z"), Some(0));
        assert_eq!(der_time(0x17, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(der_time(0x18, b"20380119031408Z"), Some(2_147_483_648));
        assert_eq!(der_time(0x18, b"20240229120000Z"), Some(1_709_208_000));
        assert_eq!(der_time(0x17, b"7001010000Z"), None);
        assert_eq!(der_time(0x17, b"701301000000Z"), None);
        assert_eq!(der_time(0x04, b"700101000000Z"), None);
    }

    #[test]
    fn garbage_is_none_never_a_panic() {
        for bad in [
            &b""[..],
            b"\x30",
            b"\x30\x84\xff\xff\xff\xff",
            b"\x30\x02\x30\x00",
            b"\x30\x80",
        ] {
            assert_eq!(validity(bad), None);
            assert!(!common_name_is(bad, "x"));
        }
        assert_eq!(der(b"\x04\x05abc"), None);
    }
}
