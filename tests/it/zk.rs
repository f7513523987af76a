//! zk:// readiness and --clean-stale-broker against a real ZooKeeper.
//!
//! Every test starts its own ZooKeeper (Debian's 3.8, see peers.rs) on a
//! free loopback port and stops it by pid. A crashed broker is
//! tests/helpers/zk_broker.py (kazoo) registering `/brokers/ids/<id>` the way
//! Kafka does and then being SIGKILLed: its session, and the ephemeral
//! nodes, outlive it by the 30 s session timeout. What is in ZooKeeper
//! before and after kwait runs is read with kazoo, never with kwait.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::peers::{
    four_letter, free_port, kwait, poll_until, zk_broker, zk_broker_registered, zk_create,
    zk_delete, zk_exists, zk_make_read_only, zk_stat, ChildGuard, Fake, Tansu, TempDir, ZkEnsemble,
    ZooKeeper,
};

/// The longest any single kwait run here may take before the test fails.
const LIMIT: Duration = Duration::from_secs(40);

// ---------------------------------------------------------------------------
// Running kwait
// ---------------------------------------------------------------------------

/// A kwait process whose stderr is collected by a reader thread.
struct Kwait {
    child: ChildGuard,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    started: Instant,
}

/// How a kwait run ended.
#[derive(Debug)]
struct Run {
    /// `None` when killed by a signal.
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

fn collect(mut pipe: impl Read + Send + 'static, into: Arc<Mutex<String>>) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => into
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
    })
}

/// kwait with `args`, without broker-id variables from the caller's
/// environment (tests set the ones they mean).
fn command(args: &[&str]) -> Command {
    let mut cmd = kwait();
    cmd.args(args)
        .env_remove("KAFKA_BROKER_ID")
        .env_remove("KAFKA_CFG_BROKER_ID");
    cmd
}

impl Kwait {
    fn spawn(mut cmd: Command) -> Kwait {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = ChildGuard::spawn("kwait", &mut cmd);
        let stderr = Arc::new(Mutex::new(String::new()));
        let err = child.child_mut().stderr.take().expect("stderr pipe");
        let readers = vec![collect(err, stderr.clone())];
        Kwait {
            child,
            stderr,
            readers,
            started,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Polls kwait's stderr for `needle`; panics after `timeout`.
    fn expect_log(&mut self, needle: &str, timeout: Duration) {
        let found = poll_until(timeout, || self.stderr().contains(needle));
        assert!(
            found,
            "kwait never said {needle:?} within {timeout:?} (exited: {:?}); stderr:\n{}",
            self.child.try_wait(),
            self.stderr()
        );
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().is_none()
    }

    /// Waits for kwait to exit (panics after `limit`) and checks it did not panic.
    fn finish(mut self, limit: Duration) -> Run {
        let status = self.child.wait_timeout(limit);
        let elapsed = self.started.elapsed();
        let Some(status) = status else {
            panic!(
                "kwait still running after {limit:?}; stderr so far:\n{}",
                self.stderr()
            );
        };
        let mut stdout = String::new();
        if let Some(mut out) = self.child.child_mut().stdout.take() {
            let _ = out.read_to_string(&mut stdout);
        }
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let run = Run {
            code: status.code(),
            stdout,
            stderr: self.stderr(),
            elapsed,
        };
        assert!(
            !run.stderr.contains("panicked") && !run.stdout.contains("panicked"),
            "kwait panicked:\n{}",
            run.stderr
        );
        run
    }
}

/// Runs kwait to completion.
fn run(cmd: Command) -> Run {
    Kwait::spawn(cmd).finish(LIMIT)
}

#[track_caller]
fn assert_run(run: &Run, code: i32, needles: &[&str]) {
    assert_eq!(
        run.code,
        Some(code),
        "exit code; stderr:\n{}stdout:\n{}",
        run.stderr,
        run.stdout
    );
    for needle in needles {
        assert!(
            run.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            run.stderr
        );
    }
}

/// A COMMAND that leaves a marker file: `sh -c 'touch M; echo ... >&2'`.
struct Marker(PathBuf);

impl Marker {
    fn new(dir: &TempDir, name: &str) -> Marker {
        Marker(dir.path().join(name))
    }

    /// The words after `--`.
    fn command(&self) -> Vec<String> {
        vec![
            "sh".into(),
            "-c".into(),
            format!("touch '{}'; echo COMMAND started >&2", self.0.display()),
        ]
    }

    fn ran(&self) -> bool {
        self.0.exists()
    }
}

/// `kwait ARGS -- <marker command>`.
fn with_command(args: &[&str], marker: &Marker) -> Command {
    let mut cmd = command(args);
    cmd.arg("--").args(marker.command());
    cmd
}

/// `PLAINTEXT://127.0.0.1:P` where nothing listens (P was free a moment ago).
fn dead_endpoint() -> String {
    format!("PLAINTEXT://127.0.0.1:{}", free_port())
}

/// A crashed broker `id`: registered, then SIGKILLed.
fn crashed_broker(hosts: &str, id: i32, endpoint: &str, extra: &[&str]) {
    let mut broker = zk_broker(hosts, id, endpoint, extra);
    broker.kill();
}

fn ids(id: i32) -> String {
    format!("/brokers/ids/{id}")
}

// ---------------------------------------------------------------------------
// Readiness
// ---------------------------------------------------------------------------

#[test]
fn single_server_started_after_kwait() {
    let port = free_port();
    let dir = TempDir::new("zk-late");
    let marker = Marker::new(&dir, "ran");
    let target = format!("zk://127.0.0.1:{port}");
    let mut k = Kwait::spawn(with_command(&[&target, "-t", "60s", "-v"], &marker));
    k.expect_log(&format!("waiting for {target}"), Duration::from_secs(10));
    // It tried, and nothing was there yet.
    k.expect_log("connection refused", Duration::from_secs(10));
    assert!(
        k.running() && !marker.ran(),
        "kwait went on without ZooKeeper"
    );

    let mut zk = ZooKeeper::start(port);
    let took = zk.wait_serving(Duration::from_secs(30));
    eprintln!("zookeeper serving {took:?} after its start");
    let r = k.finish(LIMIT);
    assert_run(
        &r,
        0,
        &[&format!("{target} ready after"), "COMMAND started"],
    );
    assert!(marker.ran(), "COMMAND did not run");
    eprintln!("kwait ran {:?} in all:\n{}", r.elapsed, r.stderr);
}

#[test]
fn one_member_of_three_answers_ruok_but_is_not_ready() {
    let member = ZkEnsemble::start_one_of_three();
    let addr = member.addr();
    let target = format!("zk://{addr}");
    let t = Duration::from_secs(5);
    assert_eq!(four_letter(&addr, "ruok", t).as_deref(), Ok("imok"));
    let srvr = four_letter(&addr, "srvr", t).expect("srvr");
    assert!(srvr.contains("not currently serving requests"), "{srvr}");

    let r = run(command(&["probe", &target]));
    assert_run(&r, 1, &["not ready", "no quorum"]);

    let dir = TempDir::new("zk-noquorum");
    let marker = Marker::new(&dir, "ran");
    let r = run(with_command(&[&target, "-t", "2s"], &marker));
    assert_run(&r, 124, &["timed out after 2s", &target]);
    assert!(!marker.ran(), "COMMAND ran without quorum");
    // Still the same: imok, and no session.
    assert_eq!(four_letter(&addr, "ruok", t).as_deref(), Ok("imok"));
    assert!(
        member.log().contains("ZooKeeperServer not running"),
        "the member never saw kwait's session attempts"
    );
}

#[test]
fn chroot_absent_then_present() {
    let zk = ZooKeeper::start_ready();
    let hosts = zk.addr();
    let target = format!("zk://{hosts}/kafka");

    let r = run(command(&["probe", &target]));
    assert_run(&r, 1, &["/kafka does not exist"]);

    let dir = TempDir::new("zk-chroot");
    let marker = Marker::new(&dir, "ran");
    let mut k = Kwait::spawn(with_command(&[&target, "-t", "60s", "-v"], &marker));
    k.expect_log("/kafka does not exist", Duration::from_secs(10));
    assert!(k.running() && !marker.ran());
    zk_create(&hosts, "/kafka", "");
    let r = k.finish(LIMIT);
    assert_run(&r, 0, &[&format!("{target} ready after")]);
    assert!(marker.ran());

    let r = run(command(&["probe", &target]));
    assert_run(&r, 0, &[]);
    // The root without the chroot was ready all along.
    assert_run(&run(command(&["probe", &format!("zk://{hosts}")])), 0, &[]);

    // Cleaning works relative to the chroot, like Kafka's zookeeper.connect.
    let chrooted = format!("{hosts}/kafka");
    crashed_broker(&chrooted, 1, &dead_endpoint(), &["--controller"]);
    assert!(zk_exists(&hosts, "/kafka/brokers/ids/1"));
    let r = run(command(&[&target, "--clean-stale-broker", "1"]));
    assert_run(
        &r,
        0,
        &["removed stale /brokers/ids/1", "removed stale /controller"],
    );
    assert!(!zk_exists(&hosts, "/kafka/brokers/ids/1"));
    assert!(!zk_exists(&hosts, "/kafka/controller"));
    assert!(zk_exists(&hosts, "/kafka/controller_epoch"));
}

#[test]
fn probe_exit_codes() {
    let mut zk = ZooKeeper::start_ready();
    let target = format!("zk://{}", zk.addr());

    let r = run(command(&["probe", &target]));
    assert_run(&r, 0, &["ready", "session 0x"]);

    let refused = format!("zk://127.0.0.1:{}", free_port());
    let r = run(command(&["probe", &refused]));
    assert_run(&r, 1, &["not ready"]);

    let silent = Fake::silent();
    let r = run(command(&[
        "probe",
        "-t",
        "1s",
        &format!("zk://{}", silent.addr()),
    ]));
    assert_run(&r, 1, &["not ready"]);
    assert!(silent.connections() >= 1);

    let status = zk.stop();
    eprintln!("zookeeper stopped: {status}");
    let r = run(command(&["probe", &target]));
    assert_run(&r, 1, &["not ready"]);
}

/// Known bug (kept failing on purpose): `probe` tries only the first host
/// of a zk:// connect string (attempt 0 of the round robin in
/// src/probe/zk.rs), so a HEALTHCHECK naming a whole ensemble reports "not
/// ready" whenever its first member is down, although the ensemble serves.
#[test]
fn probe_uses_any_member_of_the_ensemble() {
    let zk = ZooKeeper::start_ready();
    // The wait loop gets there (its second attempt uses the second host).
    let dead_first = format!("zk://127.0.0.1:{},{}", free_port(), zk.addr());
    assert_run(
        &run(command(&[&dead_first, "-t", "10s"])),
        0,
        &["ready after"],
    );
    // One probe of the same connect string: the first member is down, the
    // second serves. ZooKeeper clients (and Kafka) use any member that answers.
    let r = run(command(&["probe", &dead_first]));
    assert_run(&r, 0, &["ready", "session 0x"]);
}

// ---------------------------------------------------------------------------
// Stale registrations
// ---------------------------------------------------------------------------

#[test]
fn stale_registration_removed_before_the_session_expires() {
    let zk = ZooKeeper::start_ready();
    let hosts = zk.addr();
    let endpoint = dead_endpoint();
    let (mut broker, registered) = zk_broker_registered(&hosts, 1, &endpoint, &["--controller"]);
    let node = zk_stat(&hosts, &ids(1)).expect("registered");
    let controller = zk_stat(&hosts, "/controller").expect("controller");
    assert!(node.owner != 0 && controller.owner == node.owner);
    assert!(node.data.contains(&endpoint), "{}", node.data);

    broker.kill();
    let killed = Instant::now();
    // The crashed broker's session, and its nodes, live on.
    assert_eq!(zk_stat(&hosts, &ids(1)), Some(node.clone()));

    let dir = TempDir::new("zk-stale");
    let marker = Marker::new(&dir, "ran");
    let r = run(with_command(
        &[&format!("zk://{hosts}"), "--clean-stale-broker", "1"],
        &marker,
    ));
    let since_kill = killed.elapsed();
    assert_run(
        &r,
        0,
        &[
            "removed stale /brokers/ids/1",
            &format!("owner session 0x{:x}", node.owner),
            &endpoint,
            "removed stale /controller",
            "COMMAND started",
        ],
    );
    assert!(marker.ran(), "COMMAND did not run");
    let removed_at = r.stderr.find("removed stale /brokers/ids/1").unwrap();
    let command_at = r.stderr.find("COMMAND started").unwrap();
    assert!(
        removed_at < command_at,
        "COMMAND started before the cleaning"
    );
    assert!(!zk_exists(&hosts, &ids(1)), "/brokers/ids/1 still there");
    assert!(!zk_exists(&hosts, "/controller"), "/controller still there");
    assert!(
        zk_exists(&hosts, "/controller_epoch"),
        "/controller_epoch removed"
    );

    let line = r
        .stderr
        .lines()
        .find(|l| l.contains("removed stale /brokers/ids/1"))
        .unwrap();
    eprintln!(
        "kwait ran {:?} in all (start to COMMAND), {since_kill:?} after the SIGKILL; \
         the helper's session: {registered}\n{line}",
        r.elapsed
    );
    assert!(
        r.elapsed < Duration::from_secs(10),
        "kwait took {:?}",
        r.elapsed
    );
}

#[test]
fn live_registration_is_refused() {
    let zk = ZooKeeper::start_ready();
    let hosts = zk.addr();
    let tansu = Tansu::start_ready();
    let endpoint = format!("PLAINTEXT://{}", tansu.addr());
    // Its session is dead, but a Kafka broker answers where it says it lives:
    // another broker with the same id.
    crashed_broker(&hosts, 1, &endpoint, &["--controller"]);
    let before = zk_stat(&hosts, &ids(1)).expect("registered");

    let dir = TempDir::new("zk-live");
    let marker = Marker::new(&dir, "ran");
    let r = run(with_command(
        &[&format!("zk://{hosts}"), "--clean-stale-broker", "1"],
        &marker,
    ));
    assert_run(&r, 1, &["a live broker holds id 1", &endpoint]);
    assert!(!marker.ran(), "COMMAND ran");
    assert_eq!(zk_stat(&hosts, &ids(1)), Some(before));
    assert!(zk_exists(&hosts, "/controller"));
}

#[test]
fn silent_endpoint_is_refused() {
    let zk = ZooKeeper::start_ready();
    let hosts = zk.addr();
    let silent = Fake::silent();
    let endpoint = format!("PLAINTEXT://{}", silent.addr());
    crashed_broker(&hosts, 1, &endpoint, &[]);
    let before = zk_stat(&hosts, &ids(1)).expect("registered");

    let dir = TempDir::new("zk-silent");
    let marker = Marker::new(&dir, "ran");
    let r = run(with_command(
        &[
            &format!("zk://{hosts}"),
            "--clean-stale-broker",
            "1",
            "--attempt-timeout",
            "1s",
        ],
        &marker,
    ));
    assert_run(
        &r,
        1,
        &[
            &format!("something accepts connections at {endpoint}"),
            "does not delete",
        ],
    );
    assert!(silent.connections() >= 1, "kwait never probed the endpoint");
    assert!(!marker.ran());
    assert_eq!(zk_stat(&hosts, &ids(1)), Some(before));
}

#[test]
fn dry_run_then_one_shot_then_nothing_to_do() {
    let zk = ZooKeeper::start_ready();
    let hosts = zk.addr();
    let target = format!("zk://{hosts}");
    crashed_broker(&hosts, 1, &dead_endpoint(), &["--controller"]);
    let node = zk_stat(&hosts, &ids(1)).expect("registered");
    let controller = zk_stat(&hosts, "/controller").expect("controller");

    let dir = TempDir::new("zk-dry");
    let marker = Marker::new(&dir, "ran");
    let r = run(with_command(
        &[&target, "--clean-stale-broker", "1", "--dry-run"],
        &marker,
    ));
    assert_run(
        &r,
        0,
        &[
            "--dry-run: would remove stale /brokers/ids/1",
            "--dry-run: would remove /controller",
        ],
    );
    assert!(!r.stderr.contains("removed stale"), "{}", r.stderr);
    assert!(marker.ran());
    assert_eq!(zk_stat(&hosts, &ids(1)), Some(node));
    assert_eq!(zk_stat(&hosts, "/controller"), Some(controller));

    // No COMMAND: the one-line zk-cleaner service.
    let r = run(command(&[&target, "--clean-stale-broker", "1"]));
    assert_run(
        &r,
        0,
        &["removed stale /brokers/ids/1", "removed stale /controller"],
    );
    assert!(!zk_exists(&hosts, &ids(1)));
    assert!(!zk_exists(&hosts, "/controller"));
    assert!(zk_exists(&hosts, "/controller_epoch"));

    let r = run(command(&[&target, "--clean-stale-broker", "1"]));
    assert_run(
        &r,
        0,
        &["no registration at /brokers/ids/1: nothing to clean"],
    );
}

#[test]
fn controller_of_another_session_is_left_alone() {
    let zk = ZooKeeper::start_ready();
    let hosts = zk.addr();
    // Broker 2 is alive (its session holds /controller); broker 1 crashed.
    let _alive = zk_broker(&hosts, 2, &dead_endpoint(), &["--controller"]);
    let controller = zk_stat(&hosts, "/controller").expect("controller");
    crashed_broker(&hosts, 1, &dead_endpoint(), &[]);

    let r = run(command(&[
        &format!("zk://{hosts}"),
        "--clean-stale-broker",
        "1",
    ]));
    assert_run(&r, 0, &["removed stale /brokers/ids/1"]);
    assert!(!r.stderr.contains("/controller"), "{}", r.stderr);
    assert!(!zk_exists(&hosts, &ids(1)));
    assert_eq!(zk_stat(&hosts, "/controller"), Some(controller));
    assert!(zk_exists(&hosts, &ids(2)));
}

// ---------------------------------------------------------------------------
// Races and safety
// ---------------------------------------------------------------------------

#[test]
fn what_it_does_not_understand_is_refused() {
    let zk = ZooKeeper::start_ready();
    let hosts = zk.addr();
    let target = format!("zk://{hosts}");
    crashed_broker(&hosts, 2, &dead_endpoint(), &["--persistent"]);
    crashed_broker(&hosts, 3, &dead_endpoint(), &["--data", "not json"]);
    crashed_broker(&hosts, 4, &dead_endpoint(), &["--data", r#"{"version":5}"#]);
    let persistent = zk_stat(&hosts, &ids(2)).expect("id 2");
    assert_eq!(persistent.owner, 0);

    let dir = TempDir::new("zk-refuse");
    let marker = Marker::new(&dir, "ran");
    let r = run(with_command(
        &[&target, "--clean-stale-broker", "2"],
        &marker,
    ));
    assert_run(&r, 1, &["/brokers/ids/2 is a persistent znode", "refusing"]);
    assert_eq!(zk_stat(&hosts, &ids(2)), Some(persistent));

    for id in [3, 4] {
        let before = zk_stat(&hosts, &ids(id)).expect("registered");
        assert!(before.owner != 0);
        let r = run(with_command(
            &[&target, "--clean-stale-broker", &id.to_string()],
            &marker,
        ));
        assert_run(
            &r,
            1,
            &[&format!(
                "/brokers/ids/{id} holds data kwait cannot read as a broker registration"
            )],
        );
        assert_eq!(zk_stat(&hosts, &ids(id)), Some(before));
    }

    // ACL-protected: ZooKeeper answers NoAuth to the delete.
    crashed_broker(&hosts, 5, &dead_endpoint(), &[]);
    let before = zk_stat(&hosts, &ids(5)).expect("registered");
    zk_make_read_only(&hosts, "/brokers/ids");
    let r = run(with_command(
        &[&target, "--clean-stale-broker", "5"],
        &marker,
    ));
    assert_run(
        &r,
        1,
        &["refused to delete /brokers/ids/5 (NoAuth)", "ACL-protected"],
    );
    assert_eq!(zk_stat(&hosts, &ids(5)), Some(before));
    assert!(!marker.ran(), "COMMAND ran after a refusal");
}

#[test]
fn auto_without_an_id_is_a_usage_error() {
    // Judged before anything connects: nothing listens at the target.
    let target = format!("zk://127.0.0.1:{}", free_port());
    let dir = TempDir::new("zk-auto-usage");
    let marker = Marker::new(&dir, "ran");
    let props = dir.path().join("server.properties");
    std::fs::write(&props, "# broker.id=1\nlog.dirs=/var/lib/kafka\n").unwrap();
    let props = props.to_string_lossy().into_owned();
    let missing = dir.path().join("missing.properties");
    let missing = missing.to_string_lossy().into_owned();

    let cases: [(&[&str], Option<&str>, &str); 4] = [
        (&[], None, "found no broker id"),
        (&["--server-properties", &props], None, "no broker.id in"),
        (&["--server-properties", &missing], None, "cannot read it"),
        (&[], Some("-1"), "negative broker.id"),
    ];
    for (extra, env, needle) in cases {
        let mut args = vec![target.as_str(), "--clean-stale-broker", "auto"];
        args.extend_from_slice(extra);
        let mut cmd = with_command(&args, &marker);
        if let Some(id) = env {
            cmd.env("KAFKA_BROKER_ID", id);
        }
        let r = run(cmd);
        assert_run(&r, 2, &[needle]);
        assert!(
            r.elapsed < Duration::from_secs(5),
            "a usage error waited {:?}",
            r.elapsed
        );
    }
    assert!(!marker.ran());
}

#[test]
fn auto_reads_the_environment_and_server_properties() {
    let zk = ZooKeeper::start_ready();
    let hosts = zk.addr();
    let target = format!("zk://{hosts}");
    for id in 1..=3 {
        crashed_broker(&hosts, id, &dead_endpoint(), &[]);
    }
    let dir = TempDir::new("zk-auto");
    let props = dir.path().join("server.properties");
    std::fs::write(&props, "log.dirs=/var/lib/kafka\nbroker.id = 3\n").unwrap();
    let props = props.to_string_lossy().into_owned();

    let mut cmd = command(&[&target, "--clean-stale-broker", "auto"]);
    cmd.env("KAFKA_BROKER_ID", "1");
    assert_run(&run(cmd), 0, &["removed stale /brokers/ids/1"]);
    assert!(!zk_exists(&hosts, &ids(1)));
    assert!(zk_exists(&hosts, &ids(2)) && zk_exists(&hosts, &ids(3)));

    let mut cmd = command(&[&target, "--clean-stale-broker", "auto"]);
    cmd.env("KAFKA_CFG_BROKER_ID", "2");
    assert_run(&run(cmd), 0, &["removed stale /brokers/ids/2"]);
    assert!(!zk_exists(&hosts, &ids(2)));
    assert!(zk_exists(&hosts, &ids(3)));

    let cmd = command(&[
        &target,
        "--clean-stale-broker",
        "auto",
        "--server-properties",
        &props,
    ]);
    assert_run(&run(cmd), 0, &["removed stale /brokers/ids/3"]);
    assert!(!zk_exists(&hosts, &ids(3)));
}

/// A loopback listener whose accept queue is full (backlog 0, one connection
/// queued and never accepted): the kernel drops the SYNs of any further
/// connection, which stays in SYN_SENT — kwait's liveness probe of a
/// registered endpoint is held right there, between its read of the node and
/// its re-read. [`SynGate::open`] closes the listener, so the next SYN
/// retransmission is refused: to kwait, nothing lives at the endpoint.
struct SynGate {
    listener: Option<TcpListener>,
    filler: Option<TcpStream>,
    port: u16,
}

impl SynGate {
    fn new() -> SynGate {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind gate");
        // SAFETY: listen(2) on a socket this function owns.
        let rc = unsafe { libc::listen(listener.as_raw_fd(), 0) };
        assert_eq!(rc, 0, "listen(fd, 0)");
        let addr = listener.local_addr().expect("local_addr");
        let filler = TcpStream::connect(addr).expect("fill the accept queue");
        // The gate holds: another connection gets nowhere.
        let probe = TcpStream::connect_timeout(&addr, Duration::from_millis(300));
        assert!(probe.is_err(), "the full accept queue let a connection in");
        SynGate {
            listener: Some(listener),
            filler: Some(filler),
            port: addr.port(),
        }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Whether some socket is in SYN_SENT towards the gate.
    fn held(&self) -> bool {
        let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
            return false;
        };
        let port = format!(":{:04X}", self.port);
        table.lines().skip(1).any(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            f.len() > 3 && f[2].ends_with(&port) && f[3] == "02"
        })
    }

    fn open(&mut self) {
        self.listener.take();
        self.filler.take();
    }
}

#[test]
fn node_recreated_between_read_and_delete_is_not_deleted() {
    let zk = ZooKeeper::start_ready();
    let hosts = zk.addr();
    let target = format!("zk://{hosts}");
    let tansu = Tansu::start_ready();
    let dir = TempDir::new("zk-race");

    // The crashed broker registered an endpoint that kwait's probe will hang on.
    let mut gate = SynGate::new();
    let gated = format!("PLAINTEXT://{}", gate.addr());
    crashed_broker(&hosts, 1, &gated, &[]);
    let old = zk_stat(&hosts, &ids(1)).expect("registered");

    let marker = Marker::new(&dir, "ran");
    let mut k = Kwait::spawn(with_command(
        &[
            &target,
            "--clean-stale-broker",
            "1",
            "--attempt-timeout",
            "30s",
        ],
        &marker,
    ));
    assert!(
        poll_until(Duration::from_secs(20), || gate.held()),
        "kwait never probed {gated}; stderr:\n{}",
        k.stderr()
    );
    // kwait has read the node and is probing its endpoint. Meanwhile the dead
    // session's node goes and a live broker with the same id registers anew:
    // a new node (czxid, owner), at the same data version.
    assert!(zk_delete(&hosts, &ids(1)));
    let tansu_endpoint = format!("PLAINTEXT://{}", tansu.addr());
    let _live = zk_broker(&hosts, 1, &tansu_endpoint, &[]);
    let new = zk_stat(&hosts, &ids(1)).expect("re-registered");
    assert_ne!(new.czxid, old.czxid);
    assert_ne!(new.owner, old.owner);
    assert_eq!(
        new.version, old.version,
        "only czxid and owner tell them apart"
    );
    assert!(
        gate.held() && k.running(),
        "kwait left its probe before the swap was done; the test proves nothing:\n{}",
        k.stderr()
    );
    gate.open();
    let r = k.finish(LIMIT);
    assert_run(
        &r,
        1,
        &[
            &format!("{gated} does not answer"),
            "/brokers/ids/1 changed while kwait checked it; looking again",
            "a live broker holds id 1",
            &tansu_endpoint,
        ],
    );
    assert!(!marker.ran(), "COMMAND ran");
    assert_eq!(zk_stat(&hosts, &ids(1)), Some(new));
    eprintln!(
        "swapped while held; kwait ran {:?}:\n{}",
        r.elapsed, r.stderr
    );

    // The same hold, but the node just goes away (its session expired).
    let mut gate = SynGate::new();
    let gated = format!("PLAINTEXT://{}", gate.addr());
    crashed_broker(&hosts, 2, &gated, &[]);
    let marker = Marker::new(&dir, "ran2");
    let mut k = Kwait::spawn(with_command(
        &[
            &target,
            "--clean-stale-broker",
            "2",
            "--attempt-timeout",
            "30s",
        ],
        &marker,
    ));
    assert!(
        poll_until(Duration::from_secs(20), || gate.held()),
        "kwait never probed {gated}; stderr:\n{}",
        k.stderr()
    );
    assert!(zk_delete(&hosts, &ids(2)));
    assert!(gate.held() && k.running());
    gate.open();
    let r = k.finish(LIMIT);
    assert_run(
        &r,
        0,
        &[
            "/brokers/ids/2 disappeared while kwait checked it",
            "COMMAND started",
        ],
    );
    assert!(marker.ran());
}
