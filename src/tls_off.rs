//! Stand-in for the TLS module in builds without the `tls` feature: every
//! TLS request is a clear configuration error instead of a silent plaintext
//! connection.
//!
//! [`Config`] has no values, so an `Option<Config>` is always `None` and the
//! compiler drops every TLS branch of the callers: this build carries no
//! code for what it cannot do (it is held to a 1 MiB budget).

use tokio::net::TcpStream;

use crate::net::Attempt;

pub const MISSING: &str = "TLS needs kwait's tls feature, which this build lacks";

/// A TLS configuration, which this build cannot make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Config {}

impl Config {
    pub fn default_roots(_: crate::net::Env) -> Result<Config, String> {
        Err(MISSING.into())
    }

    pub fn unverified() -> Result<Config, String> {
        Err(MISSING.into())
    }

    pub fn for_target(what: &str, _: Option<&str>, _: bool, _: bool) -> Result<Config, String> {
        Err(format!("{what}: {MISSING}"))
    }
}

// Never made: `connect` cannot be called without a `Config`.
#[allow(dead_code)]
pub enum Failure {
    Fatal(String),
    Retry(String),
}

/// No TLS stack, so no TLS error inside an I/O error.
pub fn is_alert(_: &std::io::Error) -> bool {
    false
}

pub fn io_words(_: &std::io::Error) -> Option<String> {
    None
}

pub async fn connect(
    config: &Config,
    _: &str,
    _: TcpStream,
    _: &Attempt,
) -> Result<TcpStream, Failure> {
    match *config {}
}
