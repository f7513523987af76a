//! `zk://`: ready when a real ZooKeeper session is established and a read of
//! the chroot (or `/`) succeeds. For the target `--clean-stale-broker`
//! cleans, a chroot that does not exist yet is ready too: Kafka creates it
//! on its first start, so waiting for it would keep that start from ever
//! coming.
//!
//! Never `ruok`: it answers `imok` on a member without quorum, and it is off
//! by default since ZooKeeper 3.5.3 (research/kafka-zookeeper-semantics.md
//! §3). Creating a session is a quorum transaction, so a session proves the
//! ensemble serves. Hosts are tried as [`Attempt::rotation`] says.

use super::Outcome;
use crate::net::Attempt;
use crate::net::HostPort;
use crate::target::Zk;
use crate::zk::Session;

pub async fn check(spec: &Zk, attempt: &Attempt) -> Outcome {
    let hosts = attempt.rotation(&spec.hosts);
    super::race::first_ready(hosts, |addr| session(spec, addr, attempt)).await
}

async fn session(spec: &Zk, addr: &HostPort, attempt: &Attempt) -> Outcome {
    let mut session = match Session::connect(addr, &spec.chroot, attempt).await {
        Ok(session) => session,
        Err(reason) => return Outcome::NotReady(reason),
    };
    let root = if spec.chroot.is_empty() {
        "/"
    } else {
        spec.chroot.as_str()
    };
    let outcome = match session.exists("/", attempt).await {
        Ok(Some(stat)) => Outcome::Ready(format!(
            "session 0x{:x} with {addr} (timeout {}ms), {root} has {} children",
            session.id, session.timeout_ms, stat.num_children
        )),
        Ok(None) if spec.missing_chroot_ok => Outcome::Ready(format!(
            "session 0x{:x} with {addr} (timeout {}ms); the chroot {root} does not exist yet, \
             as before Kafka's first start",
            session.id, session.timeout_ms
        )),
        Ok(None) => Outcome::NotReady(format!(
            "{addr}: the chroot {root} does not exist yet: Kafka creates it on its first start"
        )),
        Err(e) => Outcome::NotReady(format!("{addr}: reading {root}: {e}")),
    };
    session.close(attempt).await;
    outcome
}
