//! Command line, exit codes, signals while waiting, --exec, tcp/http targets and hostile peers.
//!
//! Every test runs the real `kwait` binary as a subprocess and checks both
//! its exit code and what it said on stderr. Peers are real sockets opened
//! here (or `Fake` servers from the harness); kwait processes are stopped by
//! pid when a test ends, also when it fails. Waiting is polling with a
//! deadline, on kwait's own log lines where a test must know what kwait is
//! doing.

use std::ffi::OsStr;
use std::io::Read;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::peers::{kwait, poll_until, ChildGuard, Fake, TempDir};

/// The longest any single kwait run here may take before the test fails.
const LIMIT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------
// Running kwait
// ---------------------------------------------------------------------------

/// A running kwait (or a wrapper around it) whose stdout and stderr are
/// collected by reader threads, so a test can poll for a log line.
struct Running {
    child: ChildGuard,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    started: Instant,
}

/// How a run ended.
#[derive(Debug)]
struct Done {
    /// The exit code; `None` when killed by a signal.
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

impl Running {
    fn spawn(name: &str, cmd: &mut Command) -> Running {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = ChildGuard::spawn(name, cmd);
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let out = child.child_mut().stdout.take().expect("stdout pipe");
        let err = child.child_mut().stderr.take().expect("stderr pipe");
        let readers = vec![collect(out, stdout.clone()), collect(err, stderr.clone())];
        Running {
            child,
            stdout,
            stderr,
            readers,
            started,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Polls until stderr contains `needle`; panics with stderr after `timeout`.
    fn wait_for_stderr(&self, needle: &str, timeout: Duration) {
        let found = poll_until(timeout, || self.stderr.lock().unwrap().contains(needle));
        assert!(
            found,
            "no {needle:?} on stderr within {timeout:?}; stderr so far:\n{}",
            self.stderr()
        );
    }

    /// Waits for the exit (panics after `limit`), then for the pipes' EOF.
    fn finish(mut self, limit: Duration) -> Done {
        let status = self.child.wait_exit(limit);
        let elapsed = self.started.elapsed();
        // The pipes close when the last holder exits; a stray grandchild
        // could keep them open, so do not wait for ever.
        poll_until(Duration::from_secs(5), || {
            self.readers.iter().all(|r| r.is_finished())
        });
        let done = Done {
            code: status.code(),
            stdout: self.stdout.lock().unwrap().clone(),
            stderr: self.stderr(),
            elapsed,
        };
        eprintln!(
            "exit {:?} after {:?}; stderr:\n{}",
            done.code, done.elapsed, done.stderr
        );
        done
    }
}

/// kwait with `args` and the given `KWAIT_*` variables (none inherited).
fn kwait_with<S: AsRef<OsStr>>(args: &[S], env: &[(&str, &str)]) -> Command {
    let mut cmd = kwait();
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs kwait to completion (at most [`LIMIT`]).
fn run<S: AsRef<OsStr>>(args: &[S], env: &[(&str, &str)]) -> Done {
    Running::spawn("kwait", &mut kwait_with(args, env)).finish(LIMIT)
}

/// Asserts that nothing on stderr looks like a Rust panic.
fn assert_no_panic(done: &Done) {
    assert!(
        !done.stderr.contains("panicked") && !done.stderr.contains("RUST_BACKTRACE"),
        "kwait panicked:\n{}",
        done.stderr
    );
}

/// The stderr lines that end waiting with a timeout.
fn timed_out_line(done: &Done) -> String {
    done.stderr
        .lines()
        .find(|l| l.starts_with("kwait: timed out after "))
        .unwrap_or_else(|| panic!("no 'timed out' line on stderr:\n{}", done.stderr))
        .to_owned()
}

/// The single line `probe` printed for its single target.
fn probe_line(done: &Done) -> String {
    let lines: Vec<&str> = done.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "probe printed {lines:?}");
    assert!(lines[0].starts_with("kwait: "), "{lines:?}");
    lines[0].to_owned()
}

/// Runs kwait expecting a usage error: exit 2, nothing on stdout, exactly one
/// stderr line starting `kwait: ` containing every one of `needles`.
/// Returns that line.
fn usage_error(args: &[&str], env: &[(&str, &str)], needles: &[&str]) -> String {
    // `probe` never exits 2 (Docker reserves a health check's 2): its usage
    // errors are "not ready", 1.
    let want = if args.first() == Some(&"probe") { 1 } else { 2 };
    let done = run(args, env);
    assert_no_panic(&done);
    assert_eq!(done.code, Some(want), "{args:?} {env:?}: {done:?}");
    assert_eq!(
        done.stdout, "",
        "{args:?}: usage errors print nothing on stdout"
    );
    let lines: Vec<&str> = done.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "{args:?} {env:?}: want one line, got {lines:?}"
    );
    let line = lines[0];
    assert!(line.starts_with("kwait: "), "{args:?}: {line}");
    for needle in needles {
        assert!(
            line.contains(needle),
            "{args:?} {env:?}: {needle:?} not in {line:?}"
        );
    }
    line.to_owned()
}

// ---------------------------------------------------------------------------
// Peers
// ---------------------------------------------------------------------------

/// A loopback port that refuses connections for as long as this lives: a
/// socket bound to it but not listening (the kernel answers SYNs with RST),
/// so no other test can take the port meanwhile.
struct RefusedPort {
    fd: OwnedFd,
    port: u16,
}

impl RefusedPort {
    fn new() -> RefusedPort {
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

    fn target(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Starts listening on the same socket: from now on the port accepts,
    /// with no moment in which another socket could take it.
    fn listen(self) -> TcpListener {
        let fd = self.fd;
        // SAFETY: listen(2) on a bound TCP socket we own.
        let rc = unsafe { libc::listen(fd.as_raw_fd(), 16) };
        assert_eq!(rc, 0, "listen: {}", std::io::Error::last_os_error());
        TcpListener::from(fd)
    }
}

/// A listening socket on a loopback port (the kernel completes handshakes
/// from its backlog, so nobody needs to accept).
fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind listener");
    let target = format!("tcp://{}", l.local_addr().expect("local_addr"));
    (l, target)
}

/// A path in `dir` that COMMAND creates when it runs.
fn marker(dir: &TempDir) -> PathBuf {
    dir.path().join("command-ran")
}

fn assert_not_ran(marker: &Path, done: &Done) {
    assert!(
        !marker.exists(),
        "COMMAND ran although kwait should not have started it; stderr:\n{}",
        done.stderr
    );
}

// ---------------------------------------------------------------------------
// 1. Usage errors: exit 2, one line naming the bad value, never a panic
// ---------------------------------------------------------------------------

#[test]
fn usage_unknown_scheme() {
    usage_error(
        &["redis://x:1"],
        &[],
        &["redis://x:1", "unknown scheme 'redis'"],
    );
}

#[test]
fn usage_missing_port() {
    usage_error(
        &["kafka://broker"],
        &[],
        &["kafka://broker", "missing port"],
    );
}

#[test]
fn usage_bad_duration_on_argv() {
    let line = usage_error(&["-t", "soon", "tcp://a:1"], &[], &["'soon'", "--timeout"]);
    assert!(!line.contains("KWAIT_TIMEOUT"), "{line}");
}

#[test]
fn usage_bad_duration_from_env_names_the_variable() {
    usage_error(
        &["tcp://a:1"],
        &[("KWAIT_TIMEOUT", "soon")],
        &["'soon'", "KWAIT_TIMEOUT"],
    );
}

#[test]
fn usage_bad_attempt_timeout() {
    usage_error(
        &["--attempt-timeout", "0", "tcp://a:1"],
        &[],
        &["--attempt-timeout", "more than 0"],
    );
}

#[test]
fn usage_min_brokers_not_a_number() {
    usage_error(&["kafka://b:1?min-brokers=x"], &[], &["min-brokers", "'x'"]);
}

#[test]
fn usage_min_brokers_zero() {
    usage_error(&["kafka://b:1?min-brokers=0"], &[], &["min-brokers", "'0'"]);
}

#[test]
fn usage_min_brokers_negative() {
    usage_error(
        &["kafka://b:1?min-brokers=-1"],
        &[],
        &["min-brokers", "'-1'"],
    );
}

#[test]
fn usage_unknown_kafka_parameter() {
    usage_error(
        &["kafka://b:1?topic=orders"],
        &[],
        &["unknown parameter 'topic'", "min-brokers, topics, group"],
    );
}

#[test]
fn usage_probe_without_targets() {
    usage_error(&["probe"], &[], &["TARGET"]);
}

#[test]
fn usage_probe_with_a_bad_target() {
    usage_error(&["probe", "redis://x:1"], &[], &["unknown scheme 'redis'"]);
}

#[test]
fn https_to_a_plaintext_server_names_the_likely_cause() {
    // A plain HTTP server reads the TLS ClientHello as a request line and
    // waits for its end: the handshake gets no answer, and kwait says why.
    let fake = Fake::http("HTTP/1.1 200 OK");
    let target = format!("https://{}/health", fake.addr());
    let done = run(&[&target, "-t", "1s", "--attempt-timeout", "300ms"], &[]);
    assert_no_panic(&done);
    assert_eq!(done.code, Some(124), "{done:?}");
    assert!(done.stderr.contains("no TLS handshake answer"), "{done:?}");
    assert!(done.stderr.contains("use http://"), "{done:?}");
}

/// zk:// is being added: whether it is "not supported yet" or parsed, a
/// bad zk:// target is a usage error naming it.
#[test]
fn usage_bad_zk_target() {
    usage_error(
        &["zk://zookeeper:2181?session=1"],
        &[],
        &["zk://zookeeper:2181?session=1"],
    );
}

#[test]
fn usage_nothing_to_do() {
    usage_error(&[], &[], &["nothing to do"]);
}

#[test]
fn usage_exec_without_command() {
    usage_error(&["--exec", "tcp://a:1"], &[], &["--exec", "COMMAND"]);
}

#[test]
fn usage_bad_entry_in_kwait_targets() {
    let line = usage_error(
        &[],
        &[("KWAIT_TARGETS", "tcp://a:1 broker:9092")],
        &["broker:9092", "no scheme"],
    );
    assert!(line.starts_with("kwait: KWAIT_TARGETS:"), "{line}");
}

#[test]
fn usage_unknown_option() {
    usage_error(&["--bogus", "tcp://a:1"], &[], &["--bogus"]);
}

/// A `KWAIT_TIMEOUT` meant for start-up must not break the health check:
/// `probe` has its own `KWAIT_PROBE_TIMEOUT` (README), and a probe's exit 2
/// is reserved by Docker.
#[test]
fn probe_ignores_a_bad_kwait_timeout_meant_for_waiting() {
    let (_l, target) = listener();
    let done = run(&["probe", target.as_str()], &[("KWAIT_TIMEOUT", "soon")]);
    assert_no_panic(&done);
    assert_eq!(done.code, Some(0), "{done:?}");
    assert!(probe_line(&done).contains(" ready: "), "{}", done.stderr);
}

/// `ENV KWAIT_QUIET=1` is how images switch flags on; the twin of a flag
/// should take it (today only "true"/"false" parse, and the error names
/// `--quiet`, not the variable that held the value).
#[test]
fn flag_env_twin_accepts_1() {
    let (_l, target) = listener();
    let done = run(&[target.as_str()], &[("KWAIT_QUIET", "1")]);
    assert_no_panic(&done);
    assert_eq!(done.code, Some(0), "{done:?}");
    assert_eq!(done.stderr, "", "-q via KWAIT_QUIET=1 prints errors only");
}

// ---------------------------------------------------------------------------
// 2. Help and version
// ---------------------------------------------------------------------------

#[test]
fn help_exits_0_and_shows_examples() {
    let done = run(&["--help"], &[]);
    assert_eq!(done.code, Some(0), "{done:?}");
    for needle in [
        "Usage: kwait [OPTIONS] [TARGET]... [-- COMMAND [ARG]...]",
        "kwait probe",
        "Examples:",
        "kwait kafka://kafka:9092 -- python -m worker",
        "KWAIT_TIMEOUT",
        "124 timed out",
    ] {
        assert!(
            done.stdout.contains(needle),
            "{needle:?} not in --help:\n{}",
            done.stdout
        );
    }
}

#[test]
fn version_exits_0() {
    let done = run(&["--version"], &[]);
    assert_eq!(done.code, Some(0), "{done:?}");
    assert_eq!(
        done.stdout.trim(),
        format!("kwait {}", env!("CARGO_PKG_VERSION"))
    );
}

// ---------------------------------------------------------------------------
// 3. No COMMAND: exit 0 once ready; KWAIT_TARGETS; argv wins over env
// ---------------------------------------------------------------------------

#[test]
fn ready_without_command_exits_0() {
    let (_l, target) = listener();
    let done = run(&[target.as_str(), "-t", "10s"], &[]);
    assert_eq!(done.code, Some(0), "{done:?}");
    assert!(
        done.stderr
            .contains(&format!("kwait: waiting for {target} (timeout 10s)")),
        "{}",
        done.stderr
    );
    assert!(
        done.stderr
            .contains(&format!("kwait: {target} ready after ")),
        "{}",
        done.stderr
    );
    assert!(
        done.stderr.contains("accepted a connection"),
        "{}",
        done.stderr
    );
}

#[test]
fn several_targets_ready_exits_0() {
    let (_a, first) = listener();
    let (_b, second) = listener();
    let done = run(&[first.as_str(), second.as_str()], &[]);
    assert_eq!(done.code, Some(0), "{done:?}");
    assert!(
        done.stderr.contains("all 2 targets ready after "),
        "{}",
        done.stderr
    );
}

#[test]
fn kwait_targets_used_when_argv_has_none() {
    let (_a, first) = listener();
    let (_b, second) = listener();
    let list = format!("  {first}\n\t{second} ");
    let done = run::<&str>(&[], &[("KWAIT_TARGETS", &list)]);
    assert_eq!(done.code, Some(0), "{done:?}");
    for t in [&first, &second] {
        assert!(
            done.stderr.contains(&format!("kwait: {t} ready after ")),
            "{t} not waited for:\n{}",
            done.stderr
        );
    }
}

#[test]
fn argv_targets_win_over_kwait_targets() {
    let (_l, target) = listener();
    // Never parsed: the command line has a target.
    let done = run(&[target.as_str()], &[("KWAIT_TARGETS", "not-a-target")]);
    assert_eq!(done.code, Some(0), "{done:?}");
    assert!(!done.stderr.contains("not-a-target"), "{}", done.stderr);
}

#[test]
fn argv_timeout_wins_over_env() {
    let (_l, target) = listener();
    let done = run(&["-t", "10s", target.as_str()], &[("KWAIT_TIMEOUT", "1ms")]);
    assert_eq!(done.code, Some(0), "{done:?}");
    assert!(
        done.stderr
            .contains(&format!("kwait: waiting for {target} (timeout 10s)")),
        "the command line's -t 10s should win over KWAIT_TIMEOUT=1ms:\n{}",
        done.stderr
    );
}

#[test]
fn env_timeout_applies_without_argv() {
    let refused = RefusedPort::new();
    let target = refused.target("tcp");
    let done = run(&[target.as_str()], &[("KWAIT_TIMEOUT", "300ms")]);
    assert_eq!(done.code, Some(124), "{done:?}");
    assert!(
        done.stderr
            .contains(&format!("kwait: waiting for {target} (timeout 300ms)")),
        "{}",
        done.stderr
    );
}

// ---------------------------------------------------------------------------
// 4. Timeout: 124, the reason, the flag to change; COMMAND never ran
// ---------------------------------------------------------------------------

#[test]
fn timeout_exits_124_with_reason_and_command_never_runs() {
    let dir = TempDir::new("timeout");
    let marker = marker(&dir);
    let refused = RefusedPort::new();
    let target = refused.target("tcp");
    let mut args: Vec<&OsStr> = vec!["-t".as_ref(), "1s".as_ref(), target.as_ref()];
    args.extend(["--".as_ref(), "touch".as_ref(), marker.as_os_str()]);
    let done = run(&args, &[]);
    assert_no_panic(&done);
    assert_eq!(done.code, Some(124), "{done:?}");
    let line = timed_out_line(&done);
    assert!(
        line.starts_with(&format!(
            "kwait: timed out after 1s waiting for {target}: connection refused"
        )),
        "{line}"
    );
    assert!(line.contains("--timeout"), "{line}");
    assert!(done.elapsed >= Duration::from_secs(1), "{:?}", done.elapsed);
    assert_not_ran(&marker, &done);
}

// ---------------------------------------------------------------------------
// 5. Waiting, then running COMMAND with its own exit code
// ---------------------------------------------------------------------------

#[test]
fn waits_for_a_late_listener_then_runs_command_with_its_exit_code() {
    let dir = TempDir::new("late");
    let marker = marker(&dir);
    // A port that refuses until the test makes the same socket listen.
    let refused = RefusedPort::new();
    let target = refused.target("tcp");
    let mut cmd = kwait_with(&["-v", "-t", "20s", target.as_str()], &[]);
    cmd.args(["--", "sh", "-c", "touch \"$0\"; exit 7"])
        .arg(&marker);
    let kw = Running::spawn("kwait", &mut cmd);
    // -v logs the first failed attempt's reason: kwait is waiting, not ready.
    kw.wait_for_stderr("connection refused", Duration::from_secs(10));
    assert!(!marker.exists(), "COMMAND ran before the target was ready");
    let opened = Instant::now();
    let _listener = refused.listen();
    let done = kw.finish(LIMIT);
    eprintln!(
        "COMMAND done {:?} after the listener opened",
        opened.elapsed()
    );
    assert_eq!(done.code, Some(7), "COMMAND's exit code: {done:?}");
    assert!(marker.exists(), "COMMAND did not run:\n{}", done.stderr);
    assert!(
        done.stderr
            .contains(&format!("kwait: {target} ready after ")),
        "{}",
        done.stderr
    );
}

// ---------------------------------------------------------------------------
// 6. Signals while waiting: 128+N, at once, COMMAND never ran
// ---------------------------------------------------------------------------

fn signal_while_waiting(sig: i32, name: &str, code: i32) {
    let dir = TempDir::new("signal");
    let marker = marker(&dir);
    let refused = RefusedPort::new();
    let target = refused.target("kafka");
    let mut cmd = kwait_with(&["-t", "30s", target.as_str()], &[]);
    cmd.arg("--").arg("touch").arg(&marker);
    let mut kw = Running::spawn("kwait", &mut cmd);
    // The line comes after the signals are blocked (first thing in main).
    kw.wait_for_stderr("kwait: waiting for", Duration::from_secs(10));
    let sent = Instant::now();
    kw.child.signal(sig);
    let status = kw.child.wait_exit(Duration::from_secs(5));
    let took = sent.elapsed();
    eprintln!("{name}: kwait ended {took:?} after the signal");
    let done = kw.finish(LIMIT);
    assert_eq!(status.code(), Some(code), "{name}: {done:?}");
    assert!(
        done.stderr.contains(&format!(
            "kwait: stopped by {name} while waiting; COMMAND not started"
        )),
        "{}",
        done.stderr
    );
    assert!(took < Duration::from_secs(1), "{name}: took {took:?}");
    assert_not_ran(&marker, &done);
}

#[test]
fn sigterm_while_waiting_exits_143() {
    signal_while_waiting(libc::SIGTERM, "SIGTERM", 143);
}

#[test]
fn sigint_while_waiting_exits_130() {
    signal_while_waiting(libc::SIGINT, "SIGINT", 130);
}

#[test]
fn sighup_while_waiting_exits_129() {
    signal_while_waiting(libc::SIGHUP, "SIGHUP", 129);
}

#[test]
fn sigquit_while_waiting_exits_131() {
    signal_while_waiting(libc::SIGQUIT, "SIGQUIT", 131);
}

/// `unshare` with kwait as PID 1 of a new PID namespace, waiting for a
/// refused port; returns the runner and kwait's pid in this namespace.
fn kwait_as_pid1(marker: &Path, refused: &RefusedPort) -> (Running, u32) {
    for tool in ["unshare", "nsenter"] {
        let ok = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "{tool} (util-linux) is missing: run scripts/setup");
    }
    let mut cmd = Command::new("unshare");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("KWAIT_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(["--pid", "--fork", "--mount-proc", "--"])
        .arg(env!("CARGO_BIN_EXE_kwait"))
        .args(["-t", "30s"])
        .arg(refused.target("tcp"))
        .arg("--")
        .arg("touch")
        .arg(marker);
    let kw = Running::spawn("unshare", &mut cmd);
    kw.wait_for_stderr("kwait: waiting for", Duration::from_secs(10));
    let unshare = kw.child.pid();
    let mut pid = None;
    poll_until(Duration::from_secs(5), || {
        pid = children(unshare).into_iter().next();
        pid.is_some()
    });
    let pid = pid.unwrap_or_else(|| panic!("unshare ({unshare}) has no child"));
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    assert_eq!(comm.trim(), "kwait", "unshare's child {pid} is not kwait");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let nspid = status
        .lines()
        .find(|l| l.starts_with("NSpid:"))
        .unwrap_or_default()
        .to_owned();
    assert!(
        nspid.split_whitespace().last() == Some("1"),
        "kwait is not PID 1 of its namespace: {nspid:?}"
    );
    (kw, pid)
}

/// The pids `/proc/<pid>/task/*/children` lists.
fn children(pid: u32) -> Vec<u32> {
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

#[test]
fn sigterm_to_kwait_as_pid1_of_a_pid_namespace_exits_143() {
    let dir = TempDir::new("pid1");
    let marker = marker(&dir);
    let refused = RefusedPort::new();
    let (kw, pid) = kwait_as_pid1(&marker, &refused);
    let sent = Instant::now();
    // SAFETY: kill(2) with a pid read from /proc a moment ago; it is our
    // grandchild, held by unshare, which is still waiting for it.
    let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0, "kill({pid}): {}", std::io::Error::last_os_error());
    let done = kw.finish(LIMIT);
    eprintln!("PID 1 kwait ended {:?} after SIGTERM", sent.elapsed());
    assert_eq!(
        done.code,
        Some(143),
        "unshare passes kwait's status on: {done:?}"
    );
    assert!(
        done.stderr
            .contains("kwait: stopped by SIGTERM while waiting; COMMAND not started"),
        "{}",
        done.stderr
    );
    assert_not_ran(&marker, &done);
}

/// From inside the namespace, where the kernel drops signals PID 1 has no
/// handler for: kwait's blocked signals + signalfd must still see it.
#[test]
fn sigint_from_inside_the_namespace_to_pid1_exits_130() {
    let dir = TempDir::new("pid1-inside");
    let marker = marker(&dir);
    let refused = RefusedPort::new();
    let (kw, pid) = kwait_as_pid1(&marker, &refused);
    let out = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-p", "--", "kill", "-INT", "1"])
        .output()
        .expect("run nsenter");
    // When PID 1 of a namespace exits, the kernel SIGKILLs every process
    // left in it: `kill` may die that way if kwait ends before it does.
    assert!(
        out.status.success() || out.status.signal() == Some(libc::SIGKILL),
        "nsenter kill -INT 1: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let done = kw.finish(LIMIT);
    assert_eq!(done.code, Some(130), "{done:?}");
    assert!(
        done.stderr
            .contains("kwait: stopped by SIGINT while waiting; COMMAND not started"),
        "{}",
        done.stderr
    );
    assert_not_ran(&marker, &done);
}

// ---------------------------------------------------------------------------
// 7. --exec: 127, 126, COMMAND's code, clean signal state
// ---------------------------------------------------------------------------

#[test]
fn exec_command_not_found_exits_127() {
    let done = run(&["--exec", "--", "kwait-no-such-command-xyz", "arg"], &[]);
    assert_no_panic(&done);
    assert_eq!(done.code, Some(127), "{done:?}");
    let line = done.stderr.lines().last().unwrap_or_default();
    assert!(
        line.starts_with("kwait: cannot run 'kwait-no-such-command-xyz': not found"),
        "{}",
        done.stderr
    );
}

#[test]
fn command_not_found_without_exec_exits_127() {
    let (_l, target) = listener();
    let done = run(&[target.as_str(), "--", "kwait-no-such-command-xyz"], &[]);
    assert_eq!(done.code, Some(127), "{done:?}");
    assert!(
        done.stderr
            .contains("cannot run 'kwait-no-such-command-xyz'"),
        "{}",
        done.stderr
    );
}

#[test]
fn exec_command_not_executable_exits_126() {
    let dir = TempDir::new("noexec");
    let script = dir.path().join("script.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").expect("write script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let args: Vec<&OsStr> = vec!["--exec".as_ref(), "--".as_ref(), script.as_os_str()];
    let done = run(&args, &[]);
    assert_no_panic(&done);
    assert_eq!(done.code, Some(126), "{done:?}");
    assert!(
        done.stderr
            .contains(&format!("kwait: cannot run '{}'", script.display())),
        "{}",
        done.stderr
    );
    assert!(done.stderr.contains("permission denied"), "{}", done.stderr);
}

#[test]
fn exec_passes_command_exit_code() {
    let (_l, target) = listener();
    let done = run(
        &[
            "--exec",
            target.as_str(),
            "--",
            "sh",
            "-c",
            "echo out; exit 42",
        ],
        &[],
    );
    assert_eq!(done.code, Some(42), "{done:?}");
    assert_eq!(done.stdout, "out\n", "COMMAND owns stdout");
    assert!(done.stderr.contains("kwait: exec sh"), "{}", done.stderr);
}

/// The kernel's `struct sigaction` for a raw rt_sigaction(2).
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// Makes kwait start with every signal at its default disposition and
/// exactly `blocked` (signal numbers) blocked.
///
/// Needed because the test process is not a clean parent: glibc's
/// posix_spawn (used by cargo, nextest and Rust's `Command`) leaves its
/// internal signals 32 and 33 set to SIG_IGN in the child, and an ignored
/// signal stays ignored across exec — kwait would (correctly) pass that on.
/// Raw rt_sigaction, because glibc's sigaction refuses 32 and 33.
fn start_with_signals(cmd: &mut Command, blocked: &[i32]) {
    let blocked = blocked.to_vec();
    let reset = move || {
        let dfl = KernelSigaction {
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
                        &dfl as *const KernelSigaction,
                        std::ptr::null_mut::<KernelSigaction>(),
                        8usize,
                    )
                };
            }
        }
        // SAFETY: sigset operations on a local set, then sigprocmask; all
        // async-signal-safe.
        unsafe {
            let mut set: libc::sigset_t = zeroed();
            libc::sigemptyset(&mut set);
            for &sig in &blocked {
                libc::sigaddset(&mut set, sig);
            }
            if libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    };
    // SAFETY: the closure only makes async-signal-safe calls and allocates
    // nothing (the Vec was built before fork).
    unsafe { cmd.pre_exec(reset) };
}

/// The SigBlk and SigIgn masks COMMAND sees, as numbers, when kwait starts
/// with clean dispositions and `blocked` blocked.
fn command_signal_state(extra: &[&str], blocked: &[i32]) -> (u64, u64) {
    let (_l, target) = listener();
    let mut args = extra.to_vec();
    args.extend([
        target.as_str(),
        "--",
        "sh",
        "-c",
        "exec grep -E '^Sig(Blk|Ign):' /proc/self/status",
    ]);
    let mut cmd = kwait_with(&args, &[]);
    start_with_signals(&mut cmd, blocked);
    let done = Running::spawn("kwait", &mut cmd).finish(LIMIT);
    assert_eq!(done.code, Some(0), "{done:?}");
    let field = |name: &str| {
        let hex = done
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {:?}", done.stdout))
            .trim();
        u64::from_str_radix(hex, 16).unwrap_or_else(|e| panic!("{name} {hex}: {e}"))
    };
    (field("SigBlk:"), field("SigIgn:"))
}

/// The /proc status bit of signal `sig`.
fn bit(sig: i32) -> u64 {
    1 << (sig - 1)
}

#[test]
fn exec_command_gets_empty_signal_mask_and_default_sigpipe() {
    let (blocked, ignored) = command_signal_state(&["--exec"], &[]);
    // kwait blocks TERM, INT, HUP and QUIT and Rust ignores PIPE: none of
    // that may reach COMMAND.
    assert_eq!(blocked, 0, "SigBlk {blocked:016x}");
    assert_eq!(
        ignored,
        0,
        "SigIgn {ignored:016x} (SIGPIPE is {:x})",
        bit(13)
    );
}

#[test]
fn command_gets_empty_signal_mask_and_default_sigpipe() {
    let (blocked, ignored) = command_signal_state(&[], &[]);
    assert_eq!(blocked, 0, "SigBlk {blocked:016x}");
    assert_eq!(
        ignored,
        0,
        "SigIgn {ignored:016x} (SIGPIPE is {:x})",
        bit(13)
    );
}

/// With --exec, kwait steps aside: COMMAND gets the mask kwait's parent set
/// (the other init's choice), minus what kwait itself blocked.
#[test]
fn exec_command_gets_the_signal_mask_kwait_inherited() {
    let (blocked, ignored) = command_signal_state(&["--exec"], &[libc::SIGUSR1]);
    assert_eq!(
        blocked,
        bit(libc::SIGUSR1),
        "SigBlk {blocked:016x}: want only SIGUSR1, as kwait inherited it"
    );
    assert_eq!(ignored, 0, "SigIgn {ignored:016x}");
}

/// Supervised, the app starts clean (README): an empty mask even when kwait
/// itself started with something blocked.
#[test]
fn supervised_command_gets_an_empty_mask_even_if_kwait_inherited_one() {
    let (blocked, ignored) = command_signal_state(&[], &[libc::SIGUSR1]);
    assert_eq!(blocked, 0, "SigBlk {blocked:016x}");
    assert_eq!(ignored, 0, "SigIgn {ignored:016x}");
}

// ---------------------------------------------------------------------------
// 8. Hostile peers on a kafka:// target: wait mode and probe
// ---------------------------------------------------------------------------

fn probe(target: &str, timeout: &str) -> Done {
    let done = run(&["probe", "-t", timeout, target], &[]);
    assert_no_panic(&done);
    done
}

fn wait_for(target: &str, extra: &[&str]) -> Done {
    let mut args = extra.to_vec();
    args.push(target);
    let done = run(&args, &[]);
    assert_no_panic(&done);
    done
}

#[test]
fn silent_peer_times_out_each_attempt_then_124() {
    let fake = Fake::silent();
    let target = format!("kafka://{}", fake.addr());
    let done = wait_for(&target, &["--attempt-timeout", "300ms", "-t", "2s"]);
    assert_eq!(done.code, Some(124), "{done:?}");
    let line = timed_out_line(&done);
    assert!(line.contains(&target), "{line}");
    assert!(
        line.contains("no answer") && (line.contains("deadline") || line.contains("within")),
        "{line}"
    );
    // Each attempt ended at its own deadline: several connections, not one.
    assert!(
        fake.connections() >= 3,
        "only {} attempts in 2 s with --attempt-timeout 300ms",
        fake.connections()
    );
    assert!(done.elapsed < Duration::from_secs(4), "{:?}", done.elapsed);
}

#[test]
fn silent_peer_probe_exits_1_at_its_timeout() {
    let fake = Fake::silent();
    let target = format!("kafka://{}", fake.addr());
    let done = probe(&target, "1s");
    assert_eq!(done.code, Some(1), "{done:?}");
    let line = probe_line(&done);
    assert!(
        line.starts_with(&format!("kwait: {target} not ready: ")),
        "{line}"
    );
    assert!(line.contains("no answer"), "{line}");
    assert!(done.elapsed < Duration::from_secs(3), "{:?}", done.elapsed);
}

#[test]
fn garbage_peer_probe_exits_1() {
    let fake = Fake::garbage();
    let target = format!("kafka://{}", fake.addr());
    let done = probe(&target, "2s");
    assert_eq!(done.code, Some(1), "{done:?}");
    let line = probe_line(&done);
    assert!(
        line.starts_with(&format!("kwait: {target} not ready: {}: ", fake.addr())),
        "{line}"
    );
    assert!(line.contains("ApiVersions"), "{line}");
}

#[test]
fn garbage_peer_wait_exits_124() {
    let fake = Fake::garbage();
    let target = format!("kafka://{}", fake.addr());
    let done = wait_for(&target, &["-t", "1s"]);
    assert_eq!(done.code, Some(124), "{done:?}");
    assert!(
        timed_out_line(&done).contains("ApiVersions"),
        "{}",
        done.stderr
    );
}

#[test]
fn huge_length_peer_probe_exits_1_not_kafka() {
    let fake = Fake::huge_length();
    let target = format!("kafka://{}", fake.addr());
    let done = probe(&target, "2s");
    assert_eq!(done.code, Some(1), "{done:?}");
    let line = probe_line(&done);
    assert!(line.contains("frame length of 2147483647"), "{line}");
    assert!(line.contains("not Kafka"), "{line}");
    assert!(done.elapsed < Duration::from_secs(2), "{:?}", done.elapsed);
}

#[test]
fn huge_length_peer_wait_exits_124_not_kafka() {
    let fake = Fake::huge_length();
    let target = format!("kafka://{}", fake.addr());
    let done = wait_for(&target, &["-t", "1s"]);
    assert_eq!(done.code, Some(124), "{done:?}");
    assert!(
        timed_out_line(&done).contains("not Kafka"),
        "{}",
        done.stderr
    );
}

#[test]
fn reset_mid_frame_peer_probe_exits_1() {
    let fake = Fake::reset_mid_frame();
    let target = format!("kafka://{}", fake.addr());
    let done = probe(&target, "2s");
    assert_eq!(done.code, Some(1), "{done:?}");
    let line = probe_line(&done);
    assert!(
        line.contains("reading the ApiVersions answer")
            && (line.contains("reset") || line.contains("closed")),
        "{line}"
    );
}

#[test]
fn reset_mid_frame_peer_wait_exits_124() {
    let fake = Fake::reset_mid_frame();
    let target = format!("kafka://{}", fake.addr());
    let done = wait_for(&target, &["-t", "1s"]);
    assert_eq!(done.code, Some(124), "{done:?}");
    let line = timed_out_line(&done);
    assert!(line.contains("reset") || line.contains("closed"), "{line}");
}

#[test]
fn unresolvable_host_probe_exits_1() {
    let done = probe("kafka://does-not-exist.invalid:9092", "3s");
    assert_eq!(done.code, Some(1), "{done:?}");
    let line = probe_line(&done);
    assert!(
        line.contains("cannot resolve 'does-not-exist.invalid'"),
        "{line}"
    );
}

#[test]
fn unresolvable_host_is_not_ready_yet_in_wait_mode() {
    let done = wait_for("kafka://does-not-exist.invalid:9092", &["-t", "1s"]);
    // DNS failure is "not ready yet": a timeout, not a failure or usage error.
    assert_eq!(done.code, Some(124), "{done:?}");
    assert!(
        timed_out_line(&done).contains("cannot resolve 'does-not-exist.invalid'"),
        "{}",
        done.stderr
    );
}

// ---------------------------------------------------------------------------
// 9. tcp:// and http://
// ---------------------------------------------------------------------------

#[test]
fn probe_tcp_listener_exits_0() {
    let (_l, target) = listener();
    let done = probe(&target, "2s");
    assert_eq!(done.code, Some(0), "{done:?}");
    let line = probe_line(&done);
    assert!(
        line.starts_with(&format!("kwait: {target} ready: accepted a connection")),
        "{line}"
    );
}

#[test]
fn probe_tcp_refused_exits_1() {
    let refused = RefusedPort::new();
    let target = refused.target("tcp");
    let done = probe(&target, "2s");
    assert_eq!(done.code, Some(1), "{done:?}");
    let line = probe_line(&done);
    assert!(
        line.starts_with(&format!("kwait: {target} not ready: connection refused")),
        "{line}"
    );
}

#[test]
fn probe_several_targets_one_line_each_and_1_if_any_not_ready() {
    let (_l, ready) = listener();
    let refused = RefusedPort::new();
    let unready = refused.target("tcp");
    let done = run(&["probe", ready.as_str(), unready.as_str()], &[]);
    assert_eq!(done.code, Some(1), "{done:?}");
    let lines: Vec<&str> = done.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!("kwait: {ready} ready")),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with(&format!("kwait: {unready} not ready")),
        "{lines:?}"
    );
}

#[test]
fn probe_http_200_exits_0() {
    let fake = Fake::http("HTTP/1.1 200 OK");
    let target = format!("http://{}/health", fake.addr());
    let done = probe(&target, "2s");
    assert_eq!(done.code, Some(0), "{done:?}");
    let line = probe_line(&done);
    assert_eq!(line, format!("kwait: {target} ready: answered 200 OK"));
}

#[test]
fn probe_http_503_exits_1() {
    let fake = Fake::http("503 Service Unavailable");
    let target = format!("http://{}/health", fake.addr());
    let done = probe(&target, "2s");
    assert_eq!(done.code, Some(1), "{done:?}");
    let line = probe_line(&done);
    assert_eq!(
        line,
        format!("kwait: {target} not ready: answered 503 Service Unavailable")
    );
}

#[test]
fn probe_http_301_exits_1_and_says_redirects_are_not_followed() {
    let fake = Fake::http("301 Moved Permanently");
    let target = format!("http://{}/", fake.addr());
    let done = probe(&target, "2s");
    assert_eq!(done.code, Some(1), "{done:?}");
    let line = probe_line(&done);
    assert!(line.contains("answered 301 Moved Permanently"), "{line}");
    assert!(line.contains("redirects"), "{line}");
}

#[test]
fn probe_http_silent_peer_exits_1() {
    let fake = Fake::silent();
    let target = format!("http://{}/health", fake.addr());
    let done = probe(&target, "1s");
    assert_eq!(done.code, Some(1), "{done:?}");
    let line = probe_line(&done);
    assert!(line.contains("not ready: "), "{line}");
    assert!(line.contains("no answer"), "{line}");
    assert!(done.elapsed < Duration::from_secs(3), "{:?}", done.elapsed);
}

#[test]
fn http_503_in_wait_mode_times_out_with_the_status() {
    let fake = Fake::http("503 Service Unavailable");
    let target = format!("http://{}/health", fake.addr());
    let done = wait_for(&target, &["-t", "1s"]);
    assert_eq!(done.code, Some(124), "{done:?}");
    assert!(
        timed_out_line(&done).contains("answered 503 Service Unavailable"),
        "{}",
        done.stderr
    );
}

// ---------------------------------------------------------------------------
// 10. Pacing: at most 20 connection attempts a second per target
// ---------------------------------------------------------------------------

#[test]
fn failing_attempts_are_paced_to_at_most_20_per_second() {
    // Every attempt fails fast (a 14-byte answer, then RST), so only the
    // pacing limits how often kwait connects. No --timeout: the window is
    // measured here, and kwait is stopped with SIGTERM at its end.
    let fake = Fake::reset_mid_frame();
    let target = format!("kafka://{}", fake.addr());
    let mut kw = Running::spawn("kwait", &mut kwait_with(&["-t", "0", target.as_str()], &[]));
    assert!(
        poll_until(Duration::from_secs(10), || fake.connections() > 0),
        "kwait never connected; stderr:\n{}",
        kw.stderr()
    );
    let (start, before) = (Instant::now(), fake.connections());
    // A measurement window, not synchronisation: kwait must keep running.
    let window = Duration::from_secs(2);
    assert!(
        !poll_until(window, || kw.child.try_wait().is_some()),
        "kwait exited during the window; stderr:\n{}",
        kw.stderr()
    );
    let (took, n) = (start.elapsed(), fake.connections() - before);
    kw.child.signal(libc::SIGTERM);
    let done = kw.finish(LIMIT);
    eprintln!(
        "{n} connections in {took:?} ({:.1}/s)",
        n as f64 / took.as_secs_f64()
    );
    assert_eq!(done.code, Some(143), "{done:?}");
    assert!(n <= 45, "{n} connections in {took:?}: more than 20/s");
    assert!(
        n >= 10,
        "only {n} connections in {took:?}: kwait does not retry quickly"
    );
}
