//! Stand-in for the TLS module in builds without the `tls` feature: every
//! TLS request is a clear configuration error instead of a silent plaintext
//! connection.

use tokio::net::TcpStream;

use crate::probe::Attempt;
use crate::security::TlsFiles;

const MISSING: &str = "TLS needs kwait's tls feature, which this build lacks";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config;

impl Config {
    pub fn default_roots() -> Result<Config, String> {
        Err(MISSING.into())
    }

    pub fn unverified() -> Result<Config, String> {
        Err(MISSING.into())
    }

    pub fn build(_: &TlsFiles) -> Result<Config, String> {
        Err(MISSING.into())
    }
}

pub enum Failure {
    Fatal(String),
    #[allow(dead_code)]
    Retry(String),
}

pub async fn connect(_: &Config, _: &str, _: TcpStream, _: &Attempt) -> Result<TcpStream, Failure> {
    Err(Failure::Fatal(MISSING.into()))
}

/// Without TLS kwait cannot tell; the reason keeps its plain hint.
pub async fn speaks_tls(_: &str, _: TcpStream, _: &Attempt) -> bool {
    false
}
