//! `tcp://`: ready when a connection is accepted. Nothing is sent; this
//! proves the port is open, not that the service behind it works.

use super::Outcome;
use crate::net::{no_userinfo, Attempt, HostPort};

/// A tcp target is its address.
pub type Spec = HostPort;

/// Parses what follows `tcp://`; `what` names the target in errors.
pub fn parse(what: &str, rest: &str) -> Result<Spec, String> {
    no_userinfo(what, rest)?;
    let addr = rest.trim_end_matches('/');
    if addr.contains(['/', '?']) {
        return Err(format!("{what}: tcp:// takes only host:port"));
    }
    HostPort::parse(addr, what)
}

pub async fn check(addr: &Spec, attempt: &Attempt) -> Outcome {
    match attempt.connect(addr).await {
        Ok(stream) => match stream.peer_addr() {
            Ok(peer) => Outcome::Ready(format!("accepted a connection at {peer}")),
            Err(_) => Outcome::Ready("accepted a connection".into()),
        },
        Err(reason) => Outcome::NotReady(reason),
    }
}
