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
use crate::net::HostPort;
use crate::net::{host_list, no_userinfo, Attempt};
use crate::zk::Session;

pub async fn check(spec: &Spec, attempt: &Attempt) -> Outcome {
    let hosts = attempt.rotation(&spec.hosts);
    super::race::first_ready(hosts, &|addr| Box::pin(session(spec, addr, attempt))).await
}

async fn session(spec: &Spec, addr: &HostPort, attempt: &Attempt) -> Outcome {
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

/// A ZooKeeper ensemble, as in Kafka's `zookeeper.connect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub hosts: Vec<HostPort>,
    /// The chroot path ("/kafka"), or empty for none.
    pub chroot: String,
    /// Set on the target `--clean-stale-broker` cleans (by the command
    /// line, never by the URL): there a chroot that does not exist is a
    /// cluster Kafka has never started on, since Kafka creates its chroot on
    /// its first start. It is ready then, with nothing to clean; a plain
    /// wait still waits for the chroot.
    pub missing_chroot_ok: bool,
}

/// Parses what follows `zk://`; `what` names the target in errors.
pub fn parse(what: &str, rest: &str) -> Result<Spec, String> {
    if rest.contains('?') {
        return Err(format!("{what}: zk:// takes no parameters"));
    }
    let (hosts, chroot) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    no_userinfo(what, hosts)?;
    let hosts = host_list(what, hosts)?;
    let chroot = chroot.trim_end_matches('/');
    if chroot
        .split('/')
        .skip(1)
        .any(|seg| seg.is_empty() || seg == "." || seg == ".." || seg.chars().any(char::is_control))
    {
        return Err(format!(
            "{what}: invalid chroot '{chroot}' (write /path/to/chroot, no empty, '.' or '..' parts)"
        ));
    }
    Ok(Spec {
        hosts,
        chroot: chroot.to_string(),
        missing_chroot_ok: false,
    })
}
