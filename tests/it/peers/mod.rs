//! Peers for the integration tests: the kwait binary (plain or as PID 1 of
//! a PID namespace) and the one way every test file runs it
//! ([`run_kwait`], [`run`], [`Running`], [`Waiting`], [`Done`]), and the
//! processes and servers kwait talks to.
//!
//! Everything started here is stopped by pid when its handle is dropped, also
//! when the test panics. Waiting is always polling with a deadline.
//!
//! One file per peer: [`tansu`], [`mock`] (librdkafka's mock cluster),
//! [`fake`] (fake TCP servers), [`fake_broker`] (small fake Kafka
//! brokers), [`zookeeper`], [`certs`], [`stunnel`], [`sasl_front`],
//! [`resolver`] (a fake DNS server and kwait asking only it);
//! [`kafka_client`] talks to a Kafka peer without kwait, [`process`] reads
//! /proc and sets up a clean start. This file holds what they share:
//! running kwait, [`ChildGuard`], [`Peer`], [`RefusedPort`], [`TempDir`],
//! ports and polling. Everything a test needs is re-exported here, so
//! tests `use crate::peers::...`.

#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Lets a peer type use [`Peer`]'s methods.
macro_rules! peer_deref {
    ($t:ty, $($field:tt)+) => {
        impl std::ops::Deref for $t {
            type Target = super::Peer;
            fn deref(&self) -> &super::Peer {
                &self.$($field)+
            }
        }
        impl std::ops::DerefMut for $t {
            fn deref_mut(&mut self) -> &mut super::Peer {
                &mut self.$($field)+
            }
        }
    };
}

mod certs;
mod fake;
mod fake_broker;
mod kafka_client;
mod mock;
mod process;
mod resolver;
mod sasl_front;
mod stunnel;
mod tansu;
mod zookeeper;

pub use certs::Certs;
pub use fake::Fake;
pub use fake_broker::{FakeBroker, Kip511Broker};
pub use kafka_client::{kafka_request, metadata};
pub use mock::{Mock, RDKafkaApiKey};
pub use process::{children, clean_start, clean_start_blocking, comm, signal_mask, status_field};
pub use resolver::{kwait_with_resolver, Dns};
pub use sasl_front::SaslFront;
pub use stunnel::{Stunnel, StunnelConfig};
pub use tansu::{tansu_path, Tansu};
pub use zookeeper::{
    four_letter, zk_broker, zk_broker_registered, zk_create, zk_delete, zk_exists,
    zk_make_read_only, zk_stat, ZkEnsemble, ZooKeeper,
};

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
/// `KWAIT_*` or broker-id variable (`KAFKA_BROKER_ID`, `KAFKA_CFG_BROKER_ID`)
/// inherited from the developer's shell (tests set the ones they mean).
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
/// No `KWAIT_*` or broker-id variable inherited. [`pid1_kwait`] finds its
/// pid.
pub fn kwait_as_pid1() -> Command {
    need("unshare");
    let mut cmd = without_kwait_env(Command::new("unshare"));
    cmd.args(["--pid", "--fork", "--mount-proc", "--"])
        .args(kwait_argv());
    cmd
}

/// [`kwait_as_pid1`] without `--mount-proc`: the namespace's /proc is still
/// the outer one's, where every pid names some other process.
pub fn kwait_as_pid1_with_the_outer_proc() -> Command {
    need("unshare");
    let mut cmd = without_kwait_env(Command::new("unshare"));
    cmd.args(["--pid", "--fork", "--"]).args(kwait_argv());
    cmd
}

/// `cmd` without the variables kwait reads: every `KWAIT_*` and the broker
/// ids `--clean-stale-broker auto` takes.
fn without_kwait_env(mut cmd: Command) -> Command {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("KWAIT_") {
            cmd.env_remove(k);
        }
    }
    cmd.env_remove("KAFKA_BROKER_ID")
        .env_remove("KAFKA_CFG_BROKER_ID");
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

/// `kwait ARGS` with the given `KWAIT_*` variables ([`kwait_with`]), run
/// to completion; panics after `limit`. The one way the test files run
/// kwait plainly; [`run`] is for a `Command` set up further.
pub fn run_kwait(args: &[&str], env: &[(&str, &str)], limit: Duration) -> Done {
    run(&mut kwait_with(args, env), limit)
}

/// `target` in wait mode with `-t 30s`, fatal: exit 1 at once (within
/// 10 s, not 124 at the timeout), saying "cannot become ready" and each of
/// `needles`, and COMMAND never runs.
pub fn fatal_when_waiting(target: &str, env: &[(&str, &str)], needles: &[&str]) -> Done {
    let cmd = kwait_with(&[target, "-t", "30s"], env);
    let mut waiting = Waiting::spawn("fatal", "kwait", cmd);
    let done = waiting.kw.finish(Duration::from_secs(40));
    done.expect(1, needles).expect(1, &["cannot become ready"]);
    assert!(!waiting.ran());
    assert!(done.elapsed < Duration::from_secs(10), "{:?}", done.elapsed);
    done
}

/// A TLS server whose certificate no built-in root signs: `untrusted` (its
/// target without `ca=`) is fatal ([`fatal_when_waiting`]), naming the
/// certificate; `unchecked` (with `tls-verify=false`) is ready, saying
/// `ready` and warning that nothing is checked.
pub fn untrusted_then_unchecked(
    untrusted: &str,
    unchecked: &str,
    env: &[(&str, &str)],
    ready: &str,
    limit: Duration,
) {
    fatal_when_waiting(
        untrusted,
        env,
        &["certificate", "not signed by a trusted CA"],
    );
    run_kwait(&["probe", unchecked], env, limit).expect(
        0,
        &[
            ready,
            "warning:",
            "tls-verify=false: the server's certificate is not checked",
        ],
    );
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

    /// The stderr line that ended waiting with a timeout ("kwait: timed
    /// out after ..."); panics if there is none.
    #[track_caller]
    pub fn timed_out_line(&self) -> String {
        self.stderr
            .lines()
            .find(|l| l.starts_with("kwait: timed out after "))
            .unwrap_or_else(|| panic!("no 'timed out' line on stderr:\n{}", self.stderr))
            .to_owned()
    }

    /// The single line `probe` printed for its single target.
    #[track_caller]
    pub fn probe_line(&self) -> String {
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "probe printed {lines:?}");
        assert!(lines[0].starts_with("kwait: "), "{lines:?}");
        lines[0].to_owned()
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

/// A loopback port that refuses connections for as long as this lives: a
/// socket bound to it but not listening (the kernel answers SYNs with RST),
/// so no other test can take the port meanwhile.
pub struct RefusedPort {
    fd: OwnedFd,
    port: u16,
}

impl RefusedPort {
    pub fn new() -> RefusedPort {
        // SAFETY: plain socket calls on a fresh fd, which OwnedFd then owns;
        // the sockaddr is a zeroed, correctly sized sockaddr_in.
        unsafe {
            let raw = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(raw >= 0, "socket: {}", std::io::Error::last_os_error());
            let fd = OwnedFd::from_raw_fd(raw);
            let mut addr: libc::sockaddr_in = zeroed();
            addr.sin_family = libc::AF_INET as libc::sa_family_t;
            addr.sin_addr.s_addr = u32::from(Ipv4Addr::LOCALHOST).to_be();
            let mut len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            let sa = &mut addr as *mut libc::sockaddr_in as *mut libc::sockaddr;
            assert_eq!(
                libc::bind(raw, sa, len),
                0,
                "bind: {}",
                std::io::Error::last_os_error()
            );
            assert_eq!(
                libc::getsockname(raw, sa, &mut len),
                0,
                "getsockname: {}",
                std::io::Error::last_os_error()
            );
            RefusedPort {
                fd,
                port: u16::from_be(addr.sin_port),
            }
        }
    }

    /// `scheme://127.0.0.1:PORT`.
    pub fn target(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Starts listening on the same socket: from now on the port accepts,
    /// with no moment in which another socket could take it.
    pub fn listen(self) -> TcpListener {
        let fd = self.fd;
        // SAFETY: listen(2) on a bound TCP socket we own.
        let rc = unsafe { libc::listen(fd.as_raw_fd(), 16) };
        assert_eq!(rc, 0, "listen: {}", std::io::Error::last_os_error());
        TcpListener::from(fd)
    }
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

/// A kwait in the background, in wait mode, with a [`Marker`] as COMMAND:
/// a test checks that COMMAND ran only once the targets were ready, or
/// never. Stopped by pid when dropped.
pub struct Waiting {
    pub kw: Running,
    /// kwait's pid as seen here: the child's, unless a test started kwait
    /// through a wrapper and set it (e.g. from [`pid1_kwait`]).
    pub pid: u32,
    pub marker: Marker,
    _dir: TempDir,
}

impl Waiting {
    /// Spawns `cmd` (kwait with its targets and options) as `name`, with
    /// `-- <marker command>` appended; the marker goes in a fresh
    /// directory named after `tag`.
    pub fn spawn(tag: &str, name: &str, mut cmd: Command) -> Waiting {
        let dir = TempDir::new(tag);
        let marker = Marker::new(&dir, "ran");
        cmd.arg("--").args(marker.command());
        let kw = Running::spawn(name, &mut cmd);
        let pid = kw.child.pid();
        Waiting {
            kw,
            pid,
            marker,
            _dir: dir,
        }
    }

    /// Whether COMMAND ran.
    pub fn ran(&self) -> bool {
        self.marker.ran()
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

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

mod mysql;
mod postgres;
mod rabbitmq;
mod redis;
pub use mysql::{MariaDb, MYSQL_PASSWORD};
pub use postgres::{pg_bin, PgOptions, Postgres};
pub use rabbitmq::{RabbitMq, AMQP_PASSWORD};
pub use redis::Redis;

/// A server that, on every connection, reads `first` bytes (0: none),
/// writes `reply` and keeps the connection open a while: the hostile peers
/// no real server is on demand (a huge length prefix, a cut packet).
pub fn hostile(first: usize, reply: Vec<u8>) -> String {
    let (listener, target) = listener();
    let addr = target.trim_start_matches("tcp://").to_owned();
    thread::spawn(move || {
        for conn in listener.incoming().take(16) {
            let Ok(mut conn) = conn else { return };
            let mut buf = vec![0; first];
            let _ = conn.read_exact(&mut buf);
            let _ = conn.write_all(&reply);
            thread::sleep(Duration::from_millis(300));
        }
    });
    addr
}
