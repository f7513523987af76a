//! ZooKeeper (Debian's 3.8) and a crashed broker's registration:
//! [`ZooKeeper`], [`ZkEnsemble`], tests/helpers/zk_broker.py ([`zk_broker`])
//! and kazoo to read and change znodes independently of kwait.
//!
//! Measured here with Debian's zookeeper 3.8.0 on Java 17:
//!
//! - `ZooKeeperServerMain zoo.cfg` (no `server.N` lines) is a standalone
//!   server; JVM start to serving takes ~1-2.5 s. A client port already in use
//!   makes it log "Address already in use" and exit 1, so [`ZooKeeper::start_ready`]
//!   retries on another port.
//! - Four-letter words are off except `srvr` unless whitelisted; the configs
//!   written here allow `ruok,srvr`. `srvr` answers "Mode: standalone" (or
//!   leader/follower) once serving, and "This ZooKeeper instance is not
//!   currently serving requests" on a member without quorum, while `ruok`
//!   answers `imok` on that member all the same.
//! - tickTime=2000 here, so sessions are clamped to 4..40 s; the crashed
//!   broker helper asks for 30 s and gets it.
//! - SIGTERM: the JVM exits 143.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{free_port, resolve, succeed, tail, unique_path, ChildGuard, Peer, TempDir, POLL};

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

/// Starts `main_class` with a `zoo.cfg` of `config` (`dataDir` and the
/// common lines added) in a fresh directory, as the peer `name` on
/// 127.0.0.1:`port`. `myid`: the server id file, for an ensemble member.
fn zk_start(
    name: &'static str,
    main_class: &str,
    port: u16,
    myid: Option<&str>,
    config: &str,
) -> Peer {
    let dir = TempDir::new(&format!("zk-{port}"));
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("create zookeeper data dir");
    if let Some(id) = myid {
        std::fs::write(data.join("myid"), format!("{id}\n")).expect("write myid");
    }
    let path = dir.path().join("zoo.cfg");
    std::fs::write(
        &path,
        format!(
            "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
             4lw.commands.whitelist=ruok,srvr\nadmin.enableServer=false\n{config}",
            data.display()
        ),
    )
    .expect("write zoo.cfg");
    let log = dir.path().join("zookeeper.log");
    let child = zk_java(main_class, &path, &log);
    let mut peer = Peer::new(name, port, child, log).in_dir(dir);
    peer.tail = Some(60);
    peer
}

/// Polls until `peer` bound its port and the four-letter `word` gets an
/// answer `good` accepts; returns how long that took. Errs with the log's
/// tail if it exits or the deadline passes.
fn zk_wait(
    peer: &mut Peer,
    word: &str,
    good: impl Fn(&str) -> bool,
    timeout: Duration,
) -> Result<Duration, String> {
    let start = Instant::now();
    let deadline = start + timeout;
    let addr = peer.addr();
    let mut last = String::from("not tried");
    loop {
        if let Some(status) = peer.child.try_wait() {
            return Err(format!(
                "{} on {addr} exited ({status}) before it answered {word}:\n{}",
                peer.name,
                tail(&peer.log(), 40)
            ));
        }
        if peer.log().contains(ZK_BOUND) {
            match four_letter(&addr, word, Duration::from_secs(2)) {
                Ok(answer) if good(&answer) => return Ok(start.elapsed()),
                Ok(answer) => last = answer,
                Err(e) => last = e,
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{} on {addr}: no good answer to {word} after {timeout:?} (last: {last}):\n{}",
                peer.name,
                tail(&peer.log(), 40)
            ));
        }
        thread::sleep(POLL);
    }
}

/// Starts a server with `start` (on a free port) and waits with `wait`,
/// on another port if the free one was taken meanwhile.
fn zk_start_ready<T: std::ops::DerefMut<Target = Peer>>(
    start: impl Fn() -> T,
    wait: impl Fn(&mut T) -> Result<Duration, String>,
) -> T {
    let mut last = String::new();
    for _ in 0..5 {
        let mut zk = start();
        match wait(&mut zk) {
            Ok(took) => {
                eprintln!(
                    "{} pid {} on {} ready after {took:?}",
                    zk.name,
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

/// A standalone ZooKeeper server on 127.0.0.1 with its own data directory.
pub struct ZooKeeper(Peer);

peer_deref!(ZooKeeper, 0);

impl ZooKeeper {
    /// Starts on 127.0.0.1:`port`. Does not wait for it.
    pub fn start(port: u16) -> ZooKeeper {
        ZooKeeper(zk_start(
            "zookeeper",
            "org.apache.zookeeper.server.ZooKeeperServerMain",
            port,
            None,
            "",
        ))
    }

    /// Starts on a free port and waits until it serves (another port if
    /// the free one was taken meanwhile).
    pub fn start_ready() -> ZooKeeper {
        zk_start_ready(
            || ZooKeeper::start(free_port()),
            |zk| zk.try_wait_serving(Duration::from_secs(30)),
        )
    }

    /// Polls until this server bound its port and `srvr` answers with a
    /// `Mode:` (it serves sessions); returns how long that took. Panics with
    /// the log's tail if it exits or the deadline passes.
    pub fn wait_serving(&mut self, timeout: Duration) -> Duration {
        self.try_wait_serving(timeout)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_wait_serving(&mut self, timeout: Duration) -> Result<Duration, String> {
        zk_wait(self, "srvr", |a| a.contains("Mode:"), timeout)
    }
}

/// Member 1 of a three-server ensemble whose other two members are never
/// started: its client port accepts and `ruok` answers `imok`, but it has
/// no quorum, so it serves no session.
pub struct ZkEnsemble(Peer);

peer_deref!(ZkEnsemble, 0);

impl ZkEnsemble {
    /// Starts member 1 (QuorumPeerMain) on free ports and waits until its
    /// client port answers `ruok` with `imok`.
    pub fn start_one_of_three() -> ZkEnsemble {
        zk_start_ready(ZkEnsemble::start_member, |member| {
            zk_wait(member, "ruok", |a| a == "imok", Duration::from_secs(30))
        })
    }

    fn start_member() -> ZkEnsemble {
        let port = free_port();
        let mut servers = "initLimit=5\nsyncLimit=2\n".to_owned();
        for id in 1..=3 {
            servers.push_str(&format!(
                "server.{id}=127.0.0.1:{}:{}\n",
                free_port(),
                free_port()
            ));
        }
        ZkEnsemble(zk_start(
            "zookeeper member",
            "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            port,
            Some("1"),
            &servers,
        ))
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
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(KAZOO_OP).arg(hosts).args(args);
    let what = format!("kazoo {args:?} against {hosts}");
    let out = succeed(&mut cmd, &what, "; is kazoo installed (scripts/setup)?");
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
