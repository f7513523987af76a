//! One attempt at one target: ready (with what was seen), not ready (with
//! why), or fatal (retrying cannot help).
//!
//! Every kind has the same surface: its `Spec`, parsed from the target's
//! URL by `parse`, and `check(&spec, &Attempt) -> Outcome`.
//! Probes never retry, back off or sleep: that is the wait loop's job. They
//! do keep to the attempt's deadline on every connect, write and read, so a
//! peer that accepts and never answers ends the attempt, not kwait; the
//! connection layer below them (`net`) knows how.

pub mod amqp;
pub mod http;
pub mod kafka;
pub mod mysql;
pub mod postgres;
pub mod race;
pub mod redis;
pub mod sniff;
pub mod tcp;
pub mod zk;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ready(String),
    NotReady(String),
    Fatal(String),
}

/// A failure's reason, as most probes report one: retry.
impl From<String> for Outcome {
    fn from(reason: String) -> Outcome {
        Outcome::NotReady(reason)
    }
}

/// A TLS handshake that failed: a refused certificate is fatal, anything
/// else is retried.
impl From<crate::tls::Failure> for Outcome {
    fn from(failure: crate::tls::Failure) -> Outcome {
        match failure {
            crate::tls::Failure::Fatal(r) => Outcome::Fatal(r),
            crate::tls::Failure::Retry(r) => Outcome::NotReady(r),
        }
    }
}
