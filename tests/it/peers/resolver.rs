//! A DNS server of the test's own ([`Dns`]), and kwait with a resolver
//! that asks only it ([`kwait_with_resolver`]): for names that resolve
//! late, fail temporarily, or get no answer at all, as in a Kubernetes pod
//! before CoreDNS is up.

use std::net::{Ipv4Addr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::{kwait_argv, need, without_kwait_env, TempDir};

/// A DNS server on a loopback address of its own, port 53 (resolv.conf
/// names no port), answering by the labels of the name asked for:
///
/// - `gone`: NXDOMAIN, a definite "no such name";
/// - `flaky`: SERVFAIL, which resolvers report as a temporary failure
///   (EAI_AGAIN);
/// - any other name: no answer at all until [`Dns::answer`]; from then on
///   A 127.0.0.1 for a name with a label `late` (and an empty NOERROR for
///   its AAAA), NXDOMAIN for the rest.
pub struct Dns {
    ip: Ipv4Addr,
    answer: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Dns {
    pub fn start() -> Dns {
        let seed = std::process::id() ^ Instant::now().elapsed().subsec_nanos();
        let (socket, ip) = (0..50u32)
            .find_map(|i| {
                let n = seed.wrapping_add(i.wrapping_mul(7919));
                let ip = Ipv4Addr::new(127, 53, (n >> 8) as u8, (n as u8).max(1));
                UdpSocket::bind((ip, 53)).ok().map(|s| (s, ip))
            })
            .expect("bind a DNS server on 127.53.x.y:53 (root?)");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let answer = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (answering, stopped) = (answer.clone(), stop.clone());
        thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !stopped.load(Ordering::SeqCst) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                if n < 17 {
                    continue;
                }
                let query = &buf[..n];
                // The question: labels up to the root, then type and class.
                let mut end = 12;
                while end < n && query[end] != 0 {
                    end += 1 + query[end] as usize;
                }
                if end + 5 > n {
                    continue;
                }
                let question = &query[12..end + 5];
                let qtype = u16::from_be_bytes([query[end + 1], query[end + 2]]);
                let has = |label: &[u8]| question.windows(label.len()).any(|w| w == label);
                let late = has(b"\x04late");
                let rcode = if has(b"\x04gone") {
                    3
                } else if has(b"\x05flaky") {
                    2
                } else if !answering.load(Ordering::SeqCst) {
                    continue;
                } else if late {
                    0
                } else {
                    3
                };
                let answers = u8::from(rcode == 0 && qtype == 1);
                let mut reply = query[..2].to_vec();
                reply.push(0x80 | (query[2] & 0x01)); // QR, RD as asked
                reply.push(0x80 | rcode); // RA, the answer
                reply.extend_from_slice(&[0, 1, 0, answers, 0, 0, 0, 0]);
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

    /// Its address, for resolv.conf.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// From now on, answers every name (see [`Dns`]).
    pub fn answer(&self) {
        self.answer.store(true, Ordering::SeqCst);
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// kwait (with its runner, if any) in a mount namespace of its own whose
/// /etc/resolv.conf names only `nameserver` (with `options`), and whose
/// /etc/hosts is `hosts` when given; files written into `dir`. No `KWAIT_*`
/// or broker-id variable inherited.
pub fn kwait_with_resolver(
    nameserver: Ipv4Addr,
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
    cmd.args(kwait_argv());
    cmd
}
