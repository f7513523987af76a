//! `tcp://`: ready when a connection is accepted. Nothing is sent; this
//! proves the port is open, not that the service behind it works.

use super::Outcome;
use crate::net::Attempt;
use crate::net::HostPort;

pub async fn check(addr: &HostPort, attempt: &Attempt) -> Outcome {
    match attempt.connect(addr).await {
        Ok(stream) => match stream.peer_addr() {
            Ok(peer) => Outcome::Ready(format!("accepted a connection at {peer}")),
            Err(_) => Outcome::Ready("accepted a connection".into()),
        },
        Err(reason) => Outcome::NotReady(reason),
    }
}
