//! Name lookups against a DNS server that never answers, as in a
//! Kubernetes pod before CoreDNS is up: kwait must notice a name as soon
//! as it resolves, through /etc/hosts or through a server that starts
//! answering, not after the libc's 5 s wait. Each test runs kwait in a
//! mount namespace of its own with its own /etc/hosts and /etc/resolv.conf.

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::peers::{self, Running, TempDir};

/// A DNS server on a loopback address of its own, port 53 (resolv.conf
/// names no port). Silent until `answer` is set; then A 127.0.0.1 for any
/// name with a label `late`, an empty NOERROR for its AAAA, NXDOMAIN for
/// the rest.
struct Dns {
    ip: Ipv4Addr,
    answer: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Dns {
    fn start() -> Dns {
        let seed = std::process::id() ^ Instant::now().elapsed().subsec_nanos();
        let (socket, ip) = (0..50u32)
            .find_map(|i| {
                let n = seed.wrapping_add(i.wrapping_mul(7919));
                let ip = Ipv4Addr::new(127, 54, (n >> 8) as u8, (n as u8).max(1));
                UdpSocket::bind((ip, 53)).ok().map(|s| (s, ip))
            })
            .expect("bind a DNS server on 127.54.x.y:53 (root?)");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let answer = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (answering, stopped) = (answer.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !stopped.load(Ordering::SeqCst) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                if !answering.load(Ordering::SeqCst) || n < 17 {
                    continue;
                }
                let query = &buf[..n];
                let mut end = 12;
                while end < n && query[end] != 0 {
                    end += 1 + query[end] as usize;
                }
                if end + 5 > n {
                    continue;
                }
                let question = &query[12..end + 5];
                let qtype = u16::from_be_bytes([query[end + 1], query[end + 2]]);
                let late = question.windows(5).any(|w| w == b"\x04late");
                let mut reply = query[..2].to_vec();
                reply.extend_from_slice(&[0x81, if late { 0x80 } else { 0x83 }, 0, 1]);
                let answers = u8::from(late && qtype == 1);
                reply.extend_from_slice(&[0, answers, 0, 0, 0, 0]);
                reply.extend_from_slice(question);
                if answers == 1 {
                    reply
                        .extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 127, 0, 0, 1]);
                }
                let _ = socket.send_to(&reply, from);
            }
        });
        Dns { ip, answer, stop }
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// `kwait ARGS` with `hosts` as /etc/hosts and a resolv.conf naming only
/// `dns` (with musl's and glibc's usual 5 s timeout, which kwait must not
/// wait out).
fn kwait_with(dns: &Dns, dir: &TempDir, hosts: &std::path::Path, args: &[String]) -> Command {
    let mut cmd = peers::kwait_with_resolver(dns.ip, "timeout:5 attempts:2", Some(hosts), dir);
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
            dns.ip
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
        dns.answer.store(true, Ordering::SeqCst);
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
    let args: Vec<String> = ["-t", "2s", "tcp://kafka.silent.test:9092"]
        .map(String::from)
        .into();
    let done = peers::run(
        &mut kwait_with(&dns, &dir, &hosts, &args),
        Duration::from_secs(10),
    );
    done.expect(
        124,
        &[&format!(
            "waiting for tcp://kafka.silent.test:9092: cannot resolve 'kafka.silent.test' yet: \
             no DNS answer from {}:53 in 1s",
            dns.ip
        )],
    );
    assert!(
        !done.stderr.contains("--attempt-timeout"),
        "{}",
        done.stderr
    );
}
