//! Name lookups that a silent DNS server cannot stall: kwait's own stub
//! resolver, reading `/etc/hosts` and `/etc/resolv.conf` as musl and glibc
//! do, and asking the name servers over UDP (TCP when an answer is
//! truncated).
//!
//! Why not getaddrinfo: it blocks a thread for as long as the libc's
//! resolver waits (musl: 5 s per lookup with a server that never answers,
//! as in a Kubernetes pod before CoreDNS is up), cannot be cancelled, and
//! says "temporary failure" and "no such name" only as a message in the
//! libc's language. Here a lookup asks again every [`RESEND`] and looks at
//! `/etc/hosts` again each time, so a name that appears there, or a server
//! that starts answering, is seen within one step; the answer is a type:
//! [`Failure::NoSuchName`] only for a definite NXDOMAIN or a name without
//! addresses, which is the one answer the cleaner may take for "gone".
//!
//! What it deliberately does not do: nsswitch (a static musl binary has
//! none either), mDNS, DNSSEC, caching (every attempt asks afresh: compose
//! names appear when their container starts), `options rotate`/`use-vc`.

use std::fmt;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{timeout_at, Instant};

use crate::reader::Reader;

/// How often an unanswered lookup asks again: a server that starts
/// answering is seen within this, 20 ms on average, inside the wait loop's
/// 50 ms median (at 100 ms, `scripts/bench --only-dns` measured a 59 ms
/// median). Two questions (A, AAAA) per server each time: 50 small packets
/// a second to a server that is not answering yet.
pub const RESEND: Duration = Duration::from_millis(40);
/// How often a lookup re-reads `/etc/hosts` while it waits for DNS.
const HOSTS_EVERY: Duration = Duration::from_millis(25);
/// How long one lookup may take at most, inside the attempt's own deadline:
/// a silent server costs one such step, then the next attempt starts.
pub const LOOKUP_LIMIT: Duration = Duration::from_secs(1);
/// Once one address family has answered with addresses, how long the other
/// may still take: a v4-only network's server may be slow to say "no AAAA".
const OTHER_FAMILY: Duration = Duration::from_millis(50);
/// Largest `/etc/hosts` or `/etc/resolv.conf` read.
const MAX_FILE: u64 = 1 << 20;
/// musl's and glibc's limit on name servers.
const MAX_SERVERS: usize = 3;

/// Why a name has no address (yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A definite answer: no such name (NXDOMAIN), or a name without any
    /// address, for every name tried. Nothing can be reached there.
    NoSuchName,
    /// A server answered, but not with an answer: SERVFAIL, REFUSED, a
    /// malformed reply. The name may well exist.
    ServerFailed(String),
    /// No server answered before the lookup's deadline.
    NoAnswer { servers: String, waited: Duration },
    /// kwait could not ask at all (no socket).
    Local(String),
}

impl Failure {
    /// Whether the name may still belong to something alive: anything but
    /// a definite "no such name".
    pub fn unsure(&self) -> bool {
        *self != Failure::NoSuchName
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::NoSuchName => f.write_str("no such name"),
            Failure::ServerFailed(why) => write!(f, "the DNS server failed: {why}"),
            Failure::NoAnswer { servers, waited } => write!(
                f,
                "no DNS answer from {servers} in {} (asked every {}; is the DNS server up?)",
                crate::log::since(*waited),
                crate::log::since(RESEND)
            ),
            Failure::Local(why) => write!(f, "cannot ask the DNS server: {why}"),
        }
    }
}

/// The addresses of `host` (a literal IP is its own), port `port`, IPv4
/// first. Gives up at `deadline` or after [`LOOKUP_LIMIT`], whichever is
/// first.
pub async fn resolve(host: &str, port: u16, deadline: Instant) -> Result<Vec<SocketAddr>, Failure> {
    match known(host, port) {
        Some(found) => Ok(found),
        // Boxed: a lookup's state is large, and every connection's future
        // would carry it, even for an IP address (the common case).
        None => Box::pin(look_up(host, port, deadline)).await,
    }
}

/// An IP address, or localhost: no lookup.
fn known(host: &str, port: u16) -> Option<Vec<SocketAddr>> {
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return Some(vec![SocketAddr::new(ip, port)]);
    }
    let lower = host.trim_end_matches('.').to_ascii_lowercase();
    if lower == "localhost" || lower.ends_with(".localhost") {
        // RFC 6761 §6.3: loopback, whatever DNS says; /etc/hosts first,
        // for an image whose hosts file says otherwise.
        let mut ips = from_hosts(&read_small("/etc/hosts"), host);
        if ips.is_empty() {
            ips = vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()];
        }
        return Some(
            ips.into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect(),
        );
    }
    None
}

async fn look_up(host: &str, port: u16, deadline: Instant) -> Result<Vec<SocketAddr>, Failure> {
    let started = Instant::now();
    let deadline = deadline.min(started + LOOKUP_LIMIT);
    // /etc/hosts before any socket: a name there needs no DNS server, and
    // no socket kwait could not open may hide it.
    let hosts = from_hosts(&read_small("/etc/hosts"), host);
    if !hosts.is_empty() {
        return Ok(hosts
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect());
    }
    let conf = Conf::parse(&read_small("/etc/resolv.conf"));
    let mut lookup = Lookup::new(&conf, started, deadline).await?;
    let ips = lookup.run(host).await?;
    Ok(ips
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect())
}

/// A small system file as text; missing or unreadable is empty, as for
/// the libcs. Only a regular file is read: a FIFO would block the runtime.
fn read_small(path: &str) -> String {
    let mut text = String::new();
    if let Ok(file) = std::fs::File::open(path) {
        if file.metadata().is_ok_and(|m| m.is_file()) {
            let _ = file.take(MAX_FILE).read_to_string(&mut text);
        }
    }
    text
}

/// `/etc/hosts`: the addresses of the lines that name `host` (any case,
/// a trailing dot ignored), in file order.
fn from_hosts(text: &str, host: &str) -> Vec<IpAddr> {
    let host = host.trim_end_matches('.');
    let mut found = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let Some(Ok(ip)) = fields.next().map(str::parse::<IpAddr>) else {
            continue;
        };
        if fields.any(|name| name.trim_end_matches('.').eq_ignore_ascii_case(host))
            && !found.contains(&ip)
        {
            found.push(ip);
        }
    }
    found
}

/// What `/etc/resolv.conf` says.
#[derive(Debug, PartialEq, Eq)]
struct Conf {
    servers: Vec<SocketAddr>,
    search: Vec<String>,
    ndots: usize,
}

impl Conf {
    /// resolv.conf(5): `nameserver` (at most three; none means the local
    /// host, as both libcs default), `search` / `domain` (the last one
    /// wins), `options ndots:N`. Other options are ignored: kwait paces
    /// its own retries.
    fn parse(text: &str) -> Conf {
        let mut conf = Conf {
            servers: Vec::new(),
            search: Vec::new(),
            ndots: 1,
        };
        for line in text.lines() {
            let mut fields = line.split_whitespace();
            match fields.next() {
                Some("nameserver") => {
                    // An IPv6 server may carry a zone ("fe80::1%eth0"),
                    // which a SocketAddr cannot: such a server is skipped.
                    if let Some(Ok(ip)) = fields.next().map(str::parse::<IpAddr>) {
                        if conf.servers.len() < MAX_SERVERS {
                            conf.servers.push(SocketAddr::new(ip, 53));
                        }
                    }
                }
                Some("search") | Some("domain") => {
                    conf.search = fields
                        .map(|d| d.trim_matches('.').to_string())
                        .filter(|d| !d.is_empty())
                        .take(6)
                        .collect();
                }
                Some("options") => {
                    for opt in fields {
                        if let Some(Ok(n)) = opt.strip_prefix("ndots:").map(str::parse::<usize>) {
                            conf.ndots = n.min(15);
                        }
                    }
                }
                _ => {}
            }
        }
        if conf.servers.is_empty() {
            conf.servers
                .push(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53));
        }
        conf
    }

    /// The names to ask for, in order: with fewer than `ndots` dots the
    /// search domains first, then the name itself; otherwise the reverse;
    /// a name ending in a dot is only itself (resolv.conf(5)).
    fn candidates(&self, host: &str) -> Vec<String> {
        if let Some(absolute) = host.strip_suffix('.') {
            return vec![absolute.to_string()];
        }
        let searched = self.search.iter().map(|d| format!("{host}.{d}"));
        if host.matches('.').count() < self.ndots {
            searched.chain([host.to_string()]).collect()
        } else {
            [host.to_string()].into_iter().chain(searched).collect()
        }
    }

    fn servers_shown(&self) -> String {
        let all: Vec<String> = self.servers.iter().map(|s| s.to_string()).collect();
        all.join(", ")
    }
}

/// DNS record types kwait asks for.
const A: u16 = 1;
const AAAA: u16 = 28;

/// One question's state.
#[derive(Debug, Default)]
struct Question {
    id: u16,
    /// Settled: a definite answer (possibly no address).
    done: bool,
    ips: Vec<IpAddr>,
    nxdomain: bool,
    /// The last failure a server gave, and how many servers gave one.
    failed: Option<String>,
    failures: usize,
}

struct Lookup<'a> {
    conf: &'a Conf,
    v4: Option<UdpSocket>,
    v6: Option<UdpSocket>,
    deadline: Instant,
    started: Instant,
}

impl<'a> Lookup<'a> {
    async fn new(
        conf: &'a Conf,
        started: Instant,
        deadline: Instant,
    ) -> Result<Lookup<'a>, Failure> {
        let bind = |ip: IpAddr| async move { UdpSocket::bind(SocketAddr::new(ip, 0)).await };
        let v4 = match conf.servers.iter().any(SocketAddr::is_ipv4) {
            true => Some(bind(IpAddr::V4(Ipv4Addr::UNSPECIFIED)).await),
            false => None,
        };
        let v6 = match conf.servers.iter().any(SocketAddr::is_ipv6) {
            true => Some(bind(IpAddr::V6(Ipv6Addr::UNSPECIFIED)).await),
            false => None,
        };
        // One family's socket is enough (IPv6 may be off in the kernel
        // while resolv.conf names a v6 server beside a v4 one): that
        // family's servers are then not asked.
        let (v4, v6) = match (v4.transpose(), v6.transpose()) {
            (Err(err), Err(_) | Ok(None)) | (Ok(None), Err(err)) => {
                return Err(Failure::Local(crate::net::describe(&err)))
            }
            (Ok(None), Ok(None)) => return Err(Failure::Local("no socket".into())),
            (v4, v6) => (v4.ok().flatten(), v6.ok().flatten()),
        };
        Ok(Lookup {
            conf,
            v4,
            v6,
            deadline,
            started,
        })
    }

    async fn run(&mut self, host: &str) -> Result<Vec<IpAddr>, Failure> {
        let mut unsure: Option<Failure> = None;
        for name in self.conf.candidates(host) {
            match self.ask(host, &name).await {
                Ok(ips) if !ips.is_empty() => return Ok(ips),
                Ok(_) => {}
                Err(failure @ Failure::NoAnswer { .. }) => return Err(failure),
                Err(failure) => {
                    unsure.get_or_insert(failure);
                }
            }
        }
        Err(unsure.unwrap_or(Failure::NoSuchName))
    }

    /// Asks for `name`'s A and AAAA records, again every [`RESEND`] until
    /// both are settled; `/etc/hosts` is read again for `host` each time.
    /// `Ok(empty)`: no such name, or no address.
    async fn ask(&mut self, host: &str, name: &str) -> Result<Vec<IpAddr>, Failure> {
        let mut questions = [
            (
                A,
                Question {
                    id: random_id(),
                    ..Question::default()
                },
            ),
            (
                AAAA,
                Question {
                    id: random_id(),
                    ..Question::default()
                },
            ),
        ];
        let queries: Vec<Vec<u8>> = questions
            .iter()
            .map(|(qtype, q)| query(q.id, name, *qtype))
            .collect();
        let mut next_send = Instant::now();
        // look_up read /etc/hosts just before: the next look is a step on.
        let mut next_hosts = next_send + HOSTS_EVERY;
        let mut settle_by: Option<Instant> = None;
        let mut buf = [0u8; 1232];
        loop {
            let now = Instant::now();
            if now >= self.deadline {
                return Err(Failure::NoAnswer {
                    servers: self.conf.servers_shown(),
                    waited: self.deadline - self.started,
                });
            }
            if now >= next_hosts {
                let hosts = from_hosts(&read_small("/etc/hosts"), host);
                if !hosts.is_empty() {
                    return Ok(hosts);
                }
                next_hosts = now + HOSTS_EVERY;
            }
            if now >= next_send {
                for ((_, q), packet) in questions.iter().zip(&queries) {
                    if !q.done {
                        for server in &self.conf.servers {
                            let socket = if server.is_ipv4() { &self.v4 } else { &self.v6 };
                            if let Some(socket) = socket {
                                let _ = socket.send_to(packet, *server).await;
                            }
                        }
                    }
                }
                next_send = now + RESEND;
            }
            let wake = settle_by
                .map_or(next_send, |s| s.min(next_send))
                .min(next_hosts)
                .min(self.deadline);
            let received = timeout_at(wake, recv_any(&self.v4, &self.v6, &mut buf)).await;
            if let Ok(Ok((n, from))) = received {
                if self.conf.servers.contains(&from) {
                    if let Some(reply) = buf.get(..n) {
                        self.take(reply, from, name, &mut questions).await;
                    }
                }
            }
            let [(_, a), (_, aaaa)] = &questions;
            let servers = self.conf.servers.len();
            let failed = |q: &Question| !q.done && q.failures >= servers;
            if (a.done || failed(a)) && (aaaa.done || failed(aaaa)) {
                let mut ips = a.ips.clone();
                ips.extend(&aaaa.ips);
                if !ips.is_empty() || (a.done && aaaa.done) {
                    return Ok(ips);
                }
                let why = a.failed.clone().or(aaaa.failed.clone()).unwrap_or_default();
                return Err(Failure::ServerFailed(why));
            }
            let some = !a.ips.is_empty() || !aaaa.ips.is_empty();
            if some {
                let by = *settle_by.get_or_insert(Instant::now() + OTHER_FAMILY);
                if Instant::now() >= by {
                    let mut ips = a.ips.clone();
                    ips.extend(&aaaa.ips);
                    return Ok(ips);
                }
            }
            // A definite NXDOMAIN for either family is the name's answer.
            if a.nxdomain || aaaa.nxdomain {
                return Ok(Vec::new());
            }
        }
    }

    /// Takes one reply into the question it answers; a truncated one is
    /// asked again over TCP, to the server that sent it.
    async fn take(
        &self,
        reply: &[u8],
        from: SocketAddr,
        name: &str,
        questions: &mut [(u16, Question); 2],
    ) {
        for (qtype, q) in questions.iter_mut() {
            match parse(reply, q.id, name, *qtype) {
                Parsed::NotOurs => continue,
                Parsed::Truncated => {
                    match timeout_at(self.deadline, over_tcp(from, &query(q.id, name, *qtype)))
                        .await
                    {
                        Ok(Some(full)) => settle(q, parse(&full, q.id, name, *qtype)),
                        _ => settle(
                            q,
                            Parsed::Failed("truncated answer, and none over TCP".into()),
                        ),
                    }
                }
                parsed => settle(q, parsed),
            }
            return;
        }
    }
}

fn settle(q: &mut Question, parsed: Parsed) {
    match parsed {
        Parsed::Addresses(ips) => {
            q.ips = ips;
            q.done = true;
        }
        Parsed::NoSuchName => {
            q.nxdomain = true;
            q.done = true;
        }
        Parsed::Failed(why) => {
            q.failed = Some(why);
            q.failures += 1;
        }
        Parsed::NotOurs | Parsed::Truncated => {}
    }
}

async fn recv_any(
    v4: &Option<UdpSocket>,
    v6: &Option<UdpSocket>,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match (v4, v6) {
        (Some(v4), Some(v6)) => {
            let mut other = [0u8; 1232];
            tokio::select! {
                r = v4.recv_from(buf) => r,
                r = v6.recv_from(&mut other) => {
                    let (n, from) = r?;
                    let n = n.min(buf.len());
                    buf[..n].copy_from_slice(&other[..n]);
                    Ok((n, from))
                }
            }
        }
        (Some(one), None) | (None, Some(one)) => one.recv_from(buf).await,
        (None, None) => std::future::pending().await,
    }
}

/// A query over TCP (RFC 7766: a two-byte length before each message).
async fn over_tcp(server: SocketAddr, packet: &[u8]) -> Option<Vec<u8>> {
    let mut stream = TcpStream::connect(server).await.ok()?;
    let len = u16::try_from(packet.len()).ok()?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(packet);
    stream.write_all(&framed).await.ok()?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.ok()?;
    // At most 64 KiB: the length is two bytes.
    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut reply).await.ok()?;
    Some(reply)
}

/// A query id the kernel picked at random: an off-path spoofer must guess
/// it (and the source port).
fn random_id() -> u16 {
    let mut id = [0u8; 2];
    // SAFETY: getrandom(2) writes at most two bytes into `id`.
    let n = unsafe { nix::libc::getrandom(id.as_mut_ptr().cast(), 2, 0) };
    if n != 2 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        return (nanos ^ std::process::id()) as u16;
    }
    u16::from_ne_bytes(id)
}

/// A standard query (RFC 1035 §4.1) for `name`, recursion desired.
fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut packet = Vec::with_capacity(18 + name.len());
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        // Longer labels are not names; the server will say so.
        let label = &label.as_bytes()[..label.len().min(63)];
        packet.push(label.len() as u8);
        packet.extend_from_slice(label);
    }
    packet.push(0);
    packet.extend_from_slice(&qtype.to_be_bytes());
    packet.extend_from_slice(&1u16.to_be_bytes());
    packet
}

/// What one reply says about one question.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    /// Not an answer to this question (another id, type or name): ignored.
    NotOurs,
    Truncated,
    /// NOERROR, with the addresses found (none: the name has no address of
    /// this family).
    Addresses(Vec<IpAddr>),
    NoSuchName,
    Failed(String),
}

/// Reads a reply to the question `(id, name, qtype)`. Bounded by the
/// reply's own bytes; never panics.
fn parse(reply: &[u8], id: u16, name: &str, qtype: u16) -> Parsed {
    let mut r = Reader::new(reply);
    let header = (|| {
        let got = r.i16()? as u16;
        let flags = r.i16()? as u16;
        let counts = [r.i16()? as u16, r.i16()? as u16];
        r.skip(4)?;
        Ok::<_, String>((got, flags, counts))
    })();
    let Ok((got, flags, [qdcount, ancount])) = header else {
        return Parsed::NotOurs;
    };
    if got != id || flags & 0x8000 == 0 {
        return Parsed::NotOurs;
    }
    // The question must be ours, or a spoofed or stale reply could settle it.
    let asked = match (qdcount, read_name(&mut r, reply), r.i16(), r.i16()) {
        (1, Ok(asked), Ok(t), Ok(_)) => {
            asked.eq_ignore_ascii_case(name.trim_end_matches('.')) && t as u16 == qtype
        }
        _ => false,
    };
    if !asked {
        return Parsed::NotOurs;
    }
    if flags & 0x0200 != 0 {
        return Parsed::Truncated;
    }
    match flags & 0x000f {
        0 => {}
        3 => return Parsed::NoSuchName,
        2 => return Parsed::Failed("SERVFAIL".into()),
        5 => return Parsed::Failed("REFUSED".into()),
        rcode => return Parsed::Failed(format!("rcode {rcode}")),
    }
    let mut ips = Vec::new();
    for _ in 0..ancount {
        let record = (|| {
            read_name(&mut r, reply)?;
            let rtype = r.i16()? as u16;
            let class = r.i16()? as u16;
            r.skip(4)?;
            let len = r.i16()? as u16 as usize;
            Ok::<_, String>((rtype, class, r.bytes(len)?))
        })();
        let Ok((rtype, class, data)) = record else {
            return Parsed::Failed("malformed answer".into());
        };
        let ip = match (rtype, class, data.len()) {
            (A, 1, 4) => <[u8; 4]>::try_from(data).ok().map(IpAddr::from),
            (AAAA, 1, 16) => <[u8; 16]>::try_from(data).ok().map(IpAddr::from),
            _ => None,
        };
        if let Some(ip) = ip.filter(|ip| !ips.contains(ip)) {
            ips.push(ip);
        }
    }
    Parsed::Addresses(ips)
}

/// A domain name at the reader's position, following compression pointers
/// (RFC 1035 §4.1.4) at most [`MAX_HOPS`] times, so a loop of pointers
/// ends; the reader moves past the name as it stands in the message.
fn read_name(r: &mut Reader<'_>, whole: &[u8]) -> Result<String, String> {
    const MAX_HOPS: usize = 16;
    let here = whole.len() - r.remaining();
    let mut cur = Reader::new(&whole[here..]);
    let mut consumed = None;
    let mut hops = 0;
    let mut name = String::new();
    loop {
        let len = cur.bytes(1)?[0];
        if len == 0 {
            break;
        }
        if len & 0xc0 == 0xc0 {
            let low = cur.bytes(1)?[0];
            if consumed.is_none() {
                consumed = Some(whole.len() - here - cur.remaining());
            }
            hops += 1;
            let at = (usize::from(len & 0x3f) << 8) | usize::from(low);
            if hops > MAX_HOPS || at >= whole.len() {
                return Err("bad name pointer".into());
            }
            cur = Reader::new(&whole[at..]);
            continue;
        }
        if len >= 64 || name.len() > 255 {
            return Err("bad label".into());
        }
        if !name.is_empty() {
            name.push('.');
        }
        name.push_str(&String::from_utf8_lossy(cur.bytes(usize::from(len))?));
    }
    let consumed = consumed.unwrap_or_else(|| whole.len() - here - cur.remaining());
    r.skip(consumed)?;
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf() {
        let conf = Conf::parse(
            "# k8s\nnameserver 10.96.0.10\nnameserver fe80::1%eth0\nsearch ns.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5 timeout:1\n",
        );
        assert_eq!(conf.servers, vec!["10.96.0.10:53".parse().unwrap()]);
        assert_eq!(conf.ndots, 5);
        assert_eq!(
            conf.candidates("kafka-0.kafka"),
            [
                "kafka-0.kafka.ns.svc.cluster.local",
                "kafka-0.kafka.svc.cluster.local",
                "kafka-0.kafka.cluster.local",
                "kafka-0.kafka"
            ]
        );
        assert_eq!(conf.candidates("kafka."), ["kafka"]);
        let docker = Conf::parse("nameserver 127.0.0.11\noptions ndots:0\n");
        assert_eq!(docker.candidates("broker"), ["broker"]);
        let empty = Conf::parse("");
        assert_eq!(empty.servers, vec!["127.0.0.1:53".parse().unwrap()]);
        assert_eq!(empty.candidates("a.b"), ["a.b"]);
    }

    #[test]
    fn hosts_file() {
        let text = "127.0.0.1 localhost\n::1 localhost ip6-localhost\n# 10.0.0.9 kafka\n10.0.0.5\tKafka kafka.local # broker\nbad line\n";
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(from_hosts(text, "localhost"), [ip("127.0.0.1"), ip("::1")]);
        assert_eq!(from_hosts(text, "kafka"), [ip("10.0.0.5")]);
        assert_eq!(from_hosts(text, "kafka.local."), [ip("10.0.0.5")]);
        assert!(from_hosts(text, "zookeeper").is_empty());
    }

    fn reply(id: u16, rcode: u8, name: &str, qtype: u16, answers: &[(u16, &[u8])]) -> Vec<u8> {
        let mut r = query(id, name, qtype);
        r[2] = 0x81;
        r[3] = 0x80 | rcode;
        r[7] = answers.len() as u8;
        for (rtype, data) in answers {
            r.extend_from_slice(&[0xc0, 12]); // the question's name
            r.extend_from_slice(&rtype.to_be_bytes());
            r.extend_from_slice(&[0, 1, 0, 0, 0, 60, 0, data.len() as u8]);
            r.extend_from_slice(data);
        }
        r
    }

    #[test]
    fn replies() {
        let r = reply(7, 0, "kafka", A, &[(5, &[1, b'x', 0]), (A, &[10, 0, 0, 5])]);
        assert_eq!(
            parse(&r, 7, "kafka", A),
            Parsed::Addresses(vec!["10.0.0.5".parse().unwrap()])
        );
        assert_eq!(parse(&r, 8, "kafka", A), Parsed::NotOurs);
        assert_eq!(parse(&r, 7, "kafka", AAAA), Parsed::NotOurs);
        assert_eq!(parse(&r, 7, "other", A), Parsed::NotOurs);
        assert_eq!(
            parse(&reply(7, 3, "x", A, &[]), 7, "x", A),
            Parsed::NoSuchName
        );
        assert_eq!(
            parse(&reply(7, 2, "x", A, &[]), 7, "x", A),
            Parsed::Failed("SERVFAIL".into())
        );
        assert_eq!(
            parse(&reply(7, 0, "x", A, &[]), 7, "x", A),
            Parsed::Addresses(vec![])
        );
        let mut truncated = reply(7, 0, "x", A, &[]);
        truncated[2] |= 0x02;
        assert_eq!(parse(&truncated, 7, "x", A), Parsed::Truncated);
        // A pointer to itself ends, refused.
        let mut looped = reply(7, 0, "x", A, &[(A, &[1, 2, 3, 4])]);
        let at = looped.len() - 16;
        looped[at + 1] = at as u8;
        assert_eq!(
            parse(&looped, 7, "x", A),
            Parsed::Failed("malformed answer".into())
        );
        // Every prefix of a reply parses without a panic.
        for n in 0..r.len() {
            let _ = parse(&r[..n], 7, "kafka", A);
        }
    }
}
