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

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::net::Attempt;
use crate::security::{Pem, TlsFiles};

/// A built client configuration, shared by every connection of a target.
#[derive(Clone)]
pub struct Config(Arc<ClientConfig>, Hints);

/// How the user fixes what goes wrong: kafka:// takes `ca=` and `tls=`,
/// https:// takes `SSL_CERT_FILE`.
#[derive(Clone, Copy)]
struct Hints {
    ca: &'static str,
    plaintext: &'static str,
    /// After a handshake that got no answer (kafka:// checks for itself).
    silent: &'static str,
}

const KAFKA_HINTS: Hints = Hints {
    ca: "give its CA with ca=PATH",
    plaintext: "is this a plaintext listener? then drop tls",
    silent: "",
};

const HTTPS_HINTS: Hints = Hints {
    ca: "give a private CA with SSL_CERT_FILE=PATH",
    plaintext: "a plain HTTP server? then use http://",
    silent: " (a plain HTTP server? then use http://)",
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
    pub fn default_roots() -> Result<Config, String> {
        let ca = match std::env::var_os(CA_ENV) {
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

    pub fn build(files: &TlsFiles) -> Result<Config, String> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(Pem { from, text }) = &files.ca {
            let mut added = 0;
            for cert in CertificateDer::pem_slice_iter(text) {
                let cert = cert.map_err(|e| format!("{from}: not a PEM certificate ({e})"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("{from}: unusable certificate ({e})"))?;
                added += 1;
            }
            if added == 0 {
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
            }));
        let config = match (&files.cert, &files.key) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_slice_iter(&cert.text)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("{}: not a PEM certificate chain ({e})", cert.from))?;
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
                        other => format!("{}: {other}", key.from),
                    })?
            }
            _ => builder.with_no_client_auth(),
        };
        Ok(Config(Arc::new(config), KAFKA_HINTS))
    }
}

/// Where https:// targets take a private CA from.
const CA_ENV: &str = "SSL_CERT_FILE";

/// A private CA bundle, read bounded like every file the user names.
fn read_ca(path: &std::path::Path) -> Result<Vec<u8>, String> {
    crate::security::read_file(
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
    match inner {
        rustls::Error::InvalidCertificate(CertificateError::NotValidForName)
        | rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. }) => Failure::Fatal(
            "the server's certificate does not match its host name (connect by the name in the certificate, or fix the certificate's SAN)".into(),
        ),
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => Failure::Fatal(format!(
            "the server's certificate is not signed by a trusted CA ({})",
            hints.ca
        )),
        rustls::Error::InvalidCertificate(other) => {
            Failure::Fatal(format!("the server's certificate was rejected: {other:?}"))
        }
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            Failure::Fatal(format!("the listener does not speak TLS ({})", hints.plaintext))
        }
        rustls::Error::AlertReceived(alert) => Failure::Fatal(format!(
            "the server refused the TLS handshake ({alert:?}): does it require a client certificate (cert=, key=)?"
        )),
        other => Failure::Fatal(format!("TLS handshake failed: {other}")),
    }
}

/// The web PKI verifier, with the two opt-outs users have: no verification
/// at all (`tls-verify=false`) or no host-name check
/// (`ssl.endpoint.identification.algorithm=`).
#[derive(Debug)]
struct Verifier {
    inner: Arc<WebPkiServerVerifier>,
    verify: bool,
    verify_name: bool,
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
