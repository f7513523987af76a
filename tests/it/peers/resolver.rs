//! kwait with a resolver of the test's choosing: [`kwait_with_resolver`].

use std::path::Path;
use std::process::Command;

use super::{kwait_argv, need, without_kwait_env, TempDir};

/// kwait (with its runner, if any) in a mount namespace of its own whose
/// /etc/resolv.conf names only `nameserver` (with `options`), and whose
/// /etc/hosts is `hosts` when given; files written into `dir`. No `KWAIT_*`
/// or broker-id variable inherited.
pub fn kwait_with_resolver(
    nameserver: std::net::Ipv4Addr,
    options: &str,
    hosts: Option<&Path>,
    dir: &TempDir,
) -> Command {
    need("unshare");
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(
        &resolv,
        format!("nameserver {nameserver}\noptions {options}\n"),
    )
    .expect("write resolv.conf");
    let mut script = String::from(r#"mount --bind "$1" /etc/resolv.conf && "#);
    if hosts.is_some() {
        script.push_str(r#"mount --bind "$2" /etc/hosts && shift && "#);
    }
    script.push_str(r#"shift && exec "$@""#);
    let mut cmd = without_kwait_env(Command::new("unshare"));
    cmd.args(["--mount", "--", "sh", "-c", &script, "sh"])
        .arg(&resolv);
    if let Some(hosts) = hosts {
        cmd.arg(hosts);
    }
    cmd.args(kwait_argv())
        .env_remove("KAFKA_BROKER_ID")
        .env_remove("KAFKA_CFG_BROKER_ID");
    cmd
}
