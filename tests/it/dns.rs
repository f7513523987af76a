//! Name lookups against a DNS server that never answers, as in a
//! Kubernetes pod before CoreDNS is up: kwait must notice a name as soon
//! as it resolves, through /etc/hosts or through a server that starts
//! answering, not after the libc's 5 s wait. Each test runs kwait in a
//! mount namespace of its own with its own /etc/hosts and /etc/resolv.conf.

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use crate::peers::{self, Dns, Running, TempDir};

/// `kwait ARGS` with `hosts` as /etc/hosts and a resolv.conf naming only
/// `dns` (with musl's and glibc's usual 5 s timeout, which kwait must not
/// wait out).
fn kwait_with(dns: &Dns, dir: &TempDir, hosts: &std::path::Path, args: &[String]) -> Command {
    let mut cmd = peers::kwait_with_resolver(dns.ip(), "timeout:5 attempts:2", Some(hosts), dir);
    cmd.args(args);
    cmd
}

/// Waits until kwait's log says its lookup got no DNS answer, then makes
/// the name resolve with `resolve`, and checks that COMMAND starts.
fn name_resolves_mid_wait(name: &str, resolve: impl FnOnce(&std::path::Path, &Dns)) {
    let dns = Dns::start();
    let dir = TempDir::new("dns");
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let args: Vec<String> = [
        "-v".to_string(),
        "-t".into(),
        "30s".into(),
        format!("tcp://{name}:{port}"),
        "--".into(),
        "echo".into(),
        "APP STARTED".into(),
    ]
    .into();
    let mut kwait = Running::spawn("kwait", &mut kwait_with(&dns, &dir, &hosts, &args));
    kwait.wait_for_stderr(
        &format!(
            "cannot resolve '{name}' yet: no DNS answer from {}:53 in 1s",
            dns.ip()
        ),
        Duration::from_secs(10),
    );
    assert!(!kwait.stdout().contains("APP STARTED"));
    resolve(&hosts, &dns);
    let done = kwait.finish(Duration::from_secs(10));
    done.expect(0, &[&format!("tcp://{name}:{port} ready after")]);
    assert!(done.stdout.contains("APP STARTED"), "{}", done.stderr);
}

#[test]
fn a_name_added_to_etc_hosts_is_seen_while_dns_is_silent() {
    name_resolves_mid_wait("broker.hosts.test", |hosts, _| {
        // Written in place: /etc/hosts is a bind mount of this very file.
        std::fs::write(hosts, "127.0.0.1 localhost\n127.0.0.1 broker.hosts.test\n").unwrap();
    });
}

#[test]
fn a_dns_server_that_starts_answering_is_seen_at_once() {
    name_resolves_mid_wait("broker.late.test", |_, dns| {
        dns.answer();
    });
}

/// While the server is silent, the "still waiting" line says so: the
/// lookup, the server, no generic timeout.
#[test]
fn a_silent_dns_server_is_named_in_the_timeout() {
    let dns = Dns::start();
    let dir = TempDir::new("dns");
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
    // Past 5 s, for the first "still waiting" line.
    let args: Vec<String> = ["-t", "5500ms", "tcp://kafka.silent.test:9092"]
        .map(String::from)
        .into();
    let done = peers::run(
        &mut kwait_with(&dns, &dir, &hosts, &args),
        Duration::from_secs(15),
    );
    let reason = format!(
        "cannot resolve 'kafka.silent.test' yet: no DNS answer from {}:53 in 1s",
        dns.ip()
    );
    done.expect(
        124,
        &[
            "kwait: still waiting for tcp://kafka.silent.test:9092 after 5",
            &format!("waiting for tcp://kafka.silent.test:9092: {reason}"),
        ],
    );
    let still = done
        .stderr
        .lines()
        .find(|l| l.contains("still waiting"))
        .unwrap_or_default();
    assert!(still.contains(&format!(": {reason}")), "{}", done.stderr);
    assert!(
        !done.stderr.contains("--attempt-timeout"),
        "{}",
        done.stderr
    );
}
