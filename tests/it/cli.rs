//! Command line, exit codes, signals while waiting, --exec, tcp/http targets and hostile peers.
//!
//! Every test runs the real `kwait` binary as a subprocess and checks both
//! its exit code and what it said on stderr. Peers are real sockets opened
//! here (or `Fake` servers from the harness); kwait processes are stopped by
//! pid when a test ends, also when it fails. Waiting is polling with a
//! deadline, on kwait's own log lines where a test must know what kwait is
//! doing.

use std::ffi::OsStr;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::peers::{
    self, assert_contains, clean_start_blocking, kwait, kwait_as_pid1, kwait_with, listener, need,
    not_executable_script, pid1_kwait, poll_until, run_kwait, signal_mask, signal_pid1_from_inside,
    Done, Fake, Running, TempDir,
};

/// The longest any single kwait run here may take before the test fails.
const LIMIT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------
// Running kwait
// ---------------------------------------------------------------------------

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
    let done = run_kwait(args, env, LIMIT);
    done.assert_no_panic();
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
        &["nosuch://x:1"],
        &[],
        &["nosuch://x:1", "unknown scheme 'nosuch'"],
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
    usage_error(
        &["probe", "nosuch://x:1"],
        &[],
        &["unknown scheme 'nosuch'"],
    );
}

#[test]
fn https_to_a_plaintext_server_names_the_likely_cause() {
    // A plain HTTP server reads the TLS ClientHello as a request line and
    // waits for its end: the handshake gets no answer, and kwait says why.
    let fake = Fake::http("HTTP/1.1 200 OK");
    let target = format!("https://{}/health", fake.addr());
    let done = run_kwait(
        &[&target, "-t", "1s", "--attempt-timeout", "300ms"],
        &[],
        LIMIT,
    );
    done.assert_no_panic();
    assert_eq!(done.code, Some(124), "{done:?}");
    assert!(done.stderr.contains("no TLS handshake answer"), "{done:?}");
    assert!(done.stderr.contains("use http://"), "{done:?}");
}

/// Negative durations, an empty host and an out-of-range min-brokers name
/// the flag or key, the value as typed, and what is allowed.
#[test]
fn usage_errors_name_the_value_as_typed() {
    for flag in ["-t", "--attempt-timeout", "--grace", "--drain-delay"] {
        let line = usage_error(&[flag, "-1s", "tcp://a:1", "--", "true"], &[], &["'-1s'"]);
        assert!(line.contains(flag.trim_start_matches('-')), "{line}");
    }
    let line = usage_error(&["http://"], &[], &["target 'http://': missing host"]);
    assert!(!line.contains(":80"), "{line}");
    usage_error(
        &["kafka://k:9092?min-brokers=99999999999"],
        &[],
        &["from 1 to 100000", "'99999999999'"],
    );
}

/// A peer that accepts and never answers: the timeout line's advice names
/// the limit that ran out, --attempt-timeout, not --timeout.
#[test]
fn a_silent_peers_timeout_line_names_attempt_timeout() {
    let fake = Fake::silent();
    let target = format!("kafka://{}", fake.addr());
    let done = run_kwait(
        &[&target, "-t", "1s", "--attempt-timeout", "300ms"],
        &[],
        LIMIT,
    );
    assert_eq!(done.code, Some(124), "{done:?}");
    let line = timed_out_line(&done);
    assert!(
        line.contains("(raise --attempt-timeout, or fix the target)"),
        "{line}"
    );
}

/// Two values where one is meant (the same --rewrite FROM twice, a target
/// key twice) are a usage error, not a silent pick of one.
#[test]
fn usage_conflicting_values() {
    usage_error(
        &[
            "--rewrite",
            "TERM:0",
            "--rewrite",
            "TERM:QUIT",
            "--",
            "true",
        ],
        &[],
        &["--rewrite: SIGTERM is rewritten twice"],
    );
    usage_error(
        &["kafka://k:9092?min-brokers=2&min-brokers=3"],
        &[],
        &["min-brokers= is given twice"],
    );
    usage_error(
        &["kafka://k:9092?group=a&group=b"],
        &[],
        &["group= is given twice"],
    );
}

/// A bad zk:// target is a usage error naming it.
#[test]
fn usage_bad_zk_target() {
    usage_error(
        &["zk://zookeeper:2181?session=1"],
        &[],
        &["zk://zookeeper:2181?session=1"],
    );
}

/// A duration too long for a deadline (`Instant + Duration` would
/// overflow and panic PID 1) is a usage error naming the flag or variable
/// and the value; for probe, exit 1.
#[test]
fn usage_durations_over_100_years() {
    for value in ["18446744073709551615s", "500000000000y"] {
        let quoted = format!("'{value}'");
        for flag in ["-t", "--attempt-timeout", "--grace", "--drain-delay"] {
            let args = [flag, value, "tcp://127.0.0.1:1", "--", "true"];
            let line = usage_error(&args, &[], &[&quoted, "100y"]);
            assert!(line.contains(flag.trim_start_matches('-')), "{line}");
        }
        usage_error(
            &["probe", "-t", value, "tcp://127.0.0.1:1"],
            &[],
            &[&quoted, "--timeout", "100y"],
        );
        for var in [
            "KWAIT_TIMEOUT",
            "KWAIT_ATTEMPT_TIMEOUT",
            "KWAIT_GRACE",
            "KWAIT_DRAIN_DELAY",
        ] {
            usage_error(
                &["tcp://127.0.0.1:1", "--", "true"],
                &[(var, value)],
                &[&quoted, var],
            );
        }
        let line = usage_error(
            &["probe", "tcp://127.0.0.1:1"],
            &[("KWAIT_PROBE_TIMEOUT", value)],
            &[&quoted, "KWAIT_PROBE_TIMEOUT"],
        );
        assert!(line.contains("100y"), "{line}");
    }
}

/// Userinfo in a tcp:// or zk:// target is refused without echoing the
/// password (it used to be quoted in "IPv6 address '...' needs brackets").
#[test]
fn usage_credentials_in_tcp_and_zk_targets_are_not_echoed() {
    for target in ["tcp://u:hunter2@x:1", "zk://u:hunter2@x:1/kafka"] {
        let line = usage_error(&[target], &[], &["credentials", "u:***@x:1"]);
        assert!(!line.contains("hunter2"), "{line}");
    }
}

/// A bad value given with -t, -tVALUE or --timeout=VALUE came from the
/// command line, even when KWAIT_TIMEOUT is set too.
#[test]
fn usage_bad_duration_on_argv_is_not_blamed_on_the_env_twin() {
    for args in [
        &["-t", "soon", "tcp://a:1"][..],
        &["-tsoon", "tcp://a:1"],
        &["-qt", "soon", "tcp://a:1"],
        &["--timeout=soon", "tcp://a:1"],
    ] {
        let line = usage_error(args, &[("KWAIT_TIMEOUT", "30s")], &["'soon'", "--timeout"]);
        assert!(!line.contains("KWAIT_TIMEOUT"), "{args:?}: {line}");
    }
    let line = usage_error(
        &["probe", "-t", "soon", "tcp://a:1"],
        &[("KWAIT_PROBE_TIMEOUT", "3s")],
        &["'soon'"],
    );
    assert!(!line.contains("KWAIT_PROBE_TIMEOUT"), "{line}");
}

#[test]
fn usage_bad_rewrite_signal_numbers() {
    for value in ["RTMIN+-100", "RTMIN+2147483647", "RTMIN+99"] {
        let arg = format!("{value}:TERM");
        usage_error(
            &["--rewrite", &arg, "--", "true"],
            &[],
            &[value, "--rewrite"],
        );
    }
}

/// `kwait -q probe X` is probe mode with -q (probe takes -q, -v and -t too);
/// an option probe does not take before it is a probe usage error, exit 1,
/// never Docker's reserved 2.
#[test]
fn probe_after_options_probe_takes() {
    let (_l, target) = listener();
    let done = run_kwait(&["-q", "probe", target.as_str()], &[], LIMIT);
    done.expect(0, &[]);
    assert_eq!(done.stderr, "", "-q prints errors only");
    let refused = RefusedPort::new();
    let down = refused.target("tcp");
    for first in [&["-v"][..], &["--quiet"], &["-t", "2s"]] {
        let mut args = first.to_vec();
        args.extend(["probe", down.as_str()]);
        let done = run_kwait(&args, &[], LIMIT);
        done.expect(1, &[]);
        let line = probe_line(&done);
        assert!(
            line.contains(&format!("{down} not ready: connection refused")),
            "{line}"
        );
    }
    let done = run_kwait(&["-t", "2s", "probe", target.as_str()], &[], LIMIT);
    assert!(probe_line(done.expect(0, &[])).contains(" ready: "));
    let done = run_kwait(&["--grace", "1s", "probe", target.as_str()], &[], LIMIT);
    done.expect(1, &[]);
    assert!(
        probe_line(&done).contains("'probe' must come first"),
        "{}",
        done.stderr
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
    let done = run_kwait(
        &["probe", target.as_str()],
        &[("KWAIT_TIMEOUT", "soon")],
        LIMIT,
    );
    done.assert_no_panic();
    assert_eq!(done.code, Some(0), "{done:?}");
    assert!(probe_line(&done).contains(" ready: "), "{}", done.stderr);
}

/// `ENV KWAIT_QUIET=1` is how images switch flags on; the twin of a flag
/// should take it (today only "true"/"false" parse, and the error names
/// `--quiet`, not the variable that held the value).
#[test]
fn flag_env_twin_accepts_1() {
    let (_l, target) = listener();
    let done = run_kwait(&[target.as_str()], &[("KWAIT_QUIET", "1")], LIMIT);
    done.assert_no_panic();
    assert_eq!(done.code, Some(0), "{done:?}");
    assert_eq!(done.stderr, "", "-q via KWAIT_QUIET=1 prints errors only");
}

// ---------------------------------------------------------------------------
// 2. Help and version
// ---------------------------------------------------------------------------

#[test]
fn help_exits_0_and_shows_examples() {
    let done = run_kwait(&["--help"], &[], LIMIT);
    assert_eq!(done.code, Some(0), "{done:?}");
    assert_contains(
        &done.stdout,
        &[
            "Usage: kwait [OPTIONS] [TARGET]... [-- COMMAND [ARG]...]",
            "kwait probe",
            "Examples:",
            "kwait kafka://kafka:9092 -- python -m worker",
            "KWAIT_TIMEOUT",
            "124 timed out",
        ],
    );
}

/// `kwait --help | head -1`: stdout closes early. A write error there is
/// not a crash (print! would panic and abort).
#[test]
fn help_into_a_closed_pipe_is_no_crash() {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = kwait()
        .arg("--help")
        .stdin(std::process::Stdio::null())
        .stdout(writer)
        .output()
        .expect("run kwait --help");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn help_names_https_and_kafka_security() {
    let done = run_kwait(&["--help"], &[], LIMIT);
    assert_eq!(done.code, Some(0), "{done:?}");
    assert_contains(
        &done.stdout,
        &[
            "http[s]://",
            "tls, ca, cert, key, tls-verify, sasl, user, password-file",
            "config",
            "KWAIT_KAFKA_PASSWORD",
        ],
    );
    // The unknown-scheme error lists the schemes kwait takes, https:// too.
    usage_error(&["nosuch://x:1"], &[], &["https://"]);
}

#[test]
fn version_exits_0() {
    let done = run_kwait(&["--version"], &[], LIMIT);
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
    let done = run_kwait(&[target.as_str(), "-t", "10s"], &[], LIMIT);
    done.expect(
        0,
        &[
            &format!("kwait: waiting for {target} (timeout 10s)"),
            &format!("kwait: {target} ready after "),
            "accepted a connection",
        ],
    );
}

#[test]
fn several_targets_ready_exits_0() {
    let (_a, first) = listener();
    let (_b, second) = listener();
    let done = run_kwait(&[first.as_str(), second.as_str()], &[], LIMIT);
    done.expect(0, &["all 2 targets ready after "]);
}

#[test]
fn kwait_targets_used_when_argv_has_none() {
    let (_a, first) = listener();
    let (_b, second) = listener();
    let list = format!("  {first}\n\t{second} ");
    let done = run_kwait(&[], &[("KWAIT_TARGETS", &list)], LIMIT);
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
    let done = run_kwait(
        &[target.as_str()],
        &[("KWAIT_TARGETS", "not-a-target")],
        LIMIT,
    );
    assert_eq!(done.code, Some(0), "{done:?}");
    assert!(!done.stderr.contains("not-a-target"), "{}", done.stderr);
}

#[test]
fn argv_timeout_wins_over_env() {
    let (_l, target) = listener();
    let done = run_kwait(
        &["-t", "10s", target.as_str()],
        &[("KWAIT_TIMEOUT", "1ms")],
        LIMIT,
    );
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
    let done = run_kwait(&[target.as_str()], &[("KWAIT_TIMEOUT", "300ms")], LIMIT);
    done.expect(
        124,
        &[&format!("kwait: waiting for {target} (timeout 300ms)")],
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
    let done = peers::run(&mut kwait_with(&args, &[]), LIMIT);
    done.assert_no_panic();
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

/// While waiting, a "still waiting" line with the last reason every 5 s:
/// once in a 6 s wait, about 5 s in.
#[test]
fn still_waiting_line_every_5s_with_the_reason() {
    let refused = RefusedPort::new();
    let target = refused.target("tcp");
    let mut kw = Running::spawn(
        "kwait",
        &mut kwait_with(&["-t", "6s", target.as_str()], &[]),
    );
    let started = Instant::now();
    kw.wait_for_stderr("still waiting", Duration::from_secs(10));
    let seen = started.elapsed();
    assert!(
        (Duration::from_secs(5)..Duration::from_millis(5900)).contains(&seen),
        "{seen:?}"
    );
    let done = kw.finish(LIMIT);
    done.expect(124, &[]);
    let lines: Vec<&str> = done
        .stderr
        .lines()
        .filter(|l| l.contains("still waiting"))
        .collect();
    assert_eq!(lines.len(), 1, "{}", done.stderr);
    let reason = "connection refused";
    assert!(
        lines[0].starts_with(&format!("kwait: still waiting for {target} after 5."))
            && lines[0].contains(&format!("s: {reason}")),
        "{}",
        lines[0]
    );
    let line = timed_out_line(&done);
    assert!(
        line.starts_with(&format!(
            "kwait: timed out after 6s waiting for {target}: {reason}"
        )),
        "{line}"
    );
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
    let mut kw = Running::spawn("kwait", &mut cmd);
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

/// A kwait waiting (`-t 30s`) for a refused port, with `touch MARKER` as
/// COMMAND; it has said it is waiting, so its signals are blocked (the
/// first thing in main).
struct Waiting {
    kw: Running,
    /// kwait's pid as seen here.
    pid: u32,
    marker: PathBuf,
    _dir: TempDir,
    _refused: RefusedPort,
}

impl Waiting {
    /// A plain child of the test, waiting for `scheme://` the refused port.
    fn start(tag: &str, scheme: &str) -> Waiting {
        Waiting::spawn(tag, "kwait", kwait(), scheme)
    }

    /// kwait as PID 1 of a new PID namespace (through `unshare`),
    /// waiting for `tcp://` the refused port.
    fn start_as_pid1(tag: &str) -> Waiting {
        need("nsenter");
        let mut w = Waiting::spawn(tag, "unshare kwait", kwait_as_pid1(), "tcp");
        let unshare = w.kw.child.pid();
        w.pid = pid1_kwait(unshare, Duration::from_secs(5))
            .unwrap_or_else(|| panic!("unshare ({unshare}) has no kwait child"));
        w
    }

    fn spawn(tag: &str, name: &str, mut cmd: Command, scheme: &str) -> Waiting {
        let dir = TempDir::new(tag);
        let marker = marker(&dir);
        let refused = RefusedPort::new();
        cmd.args(["-t", "30s"])
            .arg(refused.target(scheme))
            .arg("--")
            .arg("touch")
            .arg(&marker);
        let mut kw = Running::spawn(name, &mut cmd);
        kw.wait_for_stderr("kwait: waiting for", Duration::from_secs(10));
        let pid = kw.child.pid();
        Waiting {
            kw,
            pid,
            marker,
            _dir: dir,
            _refused: refused,
        }
    }

    /// Asserts that kwait said `name` stopped it and that COMMAND never ran.
    fn assert_stopped_by(&self, name: &str, done: &Done) {
        assert!(
            done.stderr.contains(&format!(
                "kwait: stopped by {name} while waiting; COMMAND not started"
            )),
            "{}",
            done.stderr
        );
        assert_not_ran(&self.marker, done);
    }
}

fn signal_while_waiting(sig: i32, name: &str, code: i32) {
    let mut w = Waiting::start("signal", "kafka");
    let sent = Instant::now();
    w.kw.child.signal(sig);
    let status = w.kw.child.wait_exit(Duration::from_secs(5));
    let took = sent.elapsed();
    eprintln!("{name}: kwait ended {took:?} after the signal");
    let done = w.kw.finish(LIMIT);
    assert_eq!(status.code(), Some(code), "{name}: {done:?}");
    w.assert_stopped_by(name, &done);
    assert!(took < Duration::from_secs(1), "{name}: took {took:?}");
}

/// One test per stop signal: `NAME: SIG => CODE` runs
/// `signal_while_waiting(SIG, "SIG", CODE)`.
macro_rules! signal_tests {
    ($($name:ident: $sig:ident => $code:literal;)*) => {$(
        #[test]
        fn $name() {
            signal_while_waiting(libc::$sig, stringify!($sig), $code);
        }
    )*};
}

signal_tests! {
    sigterm_while_waiting_exits_143: SIGTERM => 143;
    sigint_while_waiting_exits_130: SIGINT => 130;
    sighup_while_waiting_exits_129: SIGHUP => 129;
    sigquit_while_waiting_exits_131: SIGQUIT => 131;
}

#[test]
fn sigterm_to_kwait_as_pid1_of_a_pid_namespace_exits_143() {
    let mut w = Waiting::start_as_pid1("pid1");
    let sent = Instant::now();
    // SAFETY: kill(2) with a pid read from /proc a moment ago; it is our
    // grandchild, held by unshare, which is still waiting for it.
    let rc = unsafe { libc::kill(w.pid as libc::pid_t, libc::SIGTERM) };
    assert_eq!(
        rc,
        0,
        "kill({}): {}",
        w.pid,
        std::io::Error::last_os_error()
    );
    let done = w.kw.finish(LIMIT);
    eprintln!("PID 1 kwait ended {:?} after SIGTERM", sent.elapsed());
    assert_eq!(
        done.code,
        Some(143),
        "unshare passes kwait's status on: {done:?}"
    );
    w.assert_stopped_by("SIGTERM", &done);
}

/// From inside the namespace, where the kernel drops signals PID 1 has no
/// handler for: kwait's blocked signals + signalfd must still see it.
#[test]
fn sigint_from_inside_the_namespace_to_pid1_exits_130() {
    let mut w = Waiting::start_as_pid1("pid1-inside");
    signal_pid1_from_inside(w.pid, libc::SIGINT);
    let done = w.kw.finish(LIMIT);
    assert_eq!(done.code, Some(130), "{done:?}");
    w.assert_stopped_by("SIGINT", &done);
}

// ---------------------------------------------------------------------------
// 7. --exec: 127, 126, COMMAND's code, clean signal state
// ---------------------------------------------------------------------------

#[test]
fn exec_command_not_found_exits_127() {
    let done = run_kwait(
        &["--exec", "--", "kwait-no-such-command-xyz", "arg"],
        &[],
        LIMIT,
    );
    done.assert_no_panic();
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
    let done = run_kwait(
        &[target.as_str(), "--", "kwait-no-such-command-xyz"],
        &[],
        LIMIT,
    );
    done.expect(127, &["cannot run 'kwait-no-such-command-xyz'"]);
}

#[test]
fn exec_command_not_executable_exits_126() {
    let dir = TempDir::new("noexec");
    let script = not_executable_script(&dir);
    let args: Vec<&OsStr> = vec!["--exec".as_ref(), "--".as_ref(), script.as_os_str()];
    let done = peers::run(&mut kwait_with(&args, &[]), LIMIT);
    done.expect(
        126,
        &[
            &format!("kwait: cannot run '{}'", script.display()),
            "permission denied",
        ],
    );
}

#[test]
fn exec_passes_command_exit_code() {
    let (_l, target) = listener();
    let done = run_kwait(
        &[
            "--exec",
            target.as_str(),
            "--",
            "sh",
            "-c",
            "echo out; exit 42",
        ],
        &[],
        LIMIT,
    );
    assert_eq!(done.code, Some(42), "{done:?}");
    assert_eq!(done.stdout, "out\n", "COMMAND owns stdout");
    assert!(done.stderr.contains("kwait: exec sh"), "{}", done.stderr);
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
    clean_start_blocking(&mut cmd, blocked);
    let done = peers::run(&mut cmd, LIMIT);
    assert_eq!(done.code, Some(0), "{done:?}");
    (
        signal_mask(&done.stdout, "SigBlk:"),
        signal_mask(&done.stdout, "SigIgn:"),
    )
}

/// The /proc status bit of signal `sig`.
fn bit(sig: i32) -> u64 {
    1 << (sig - 1)
}

/// Asserts COMMAND sees no signal blocked and none ignored when kwait runs
/// with `extra` and starts with `blocked` blocked. kwait blocks TERM, INT,
/// HUP and QUIT and Rust ignores PIPE: none of that may reach COMMAND.
fn assert_command_signal_state_is_clean(extra: &[&str], blocked: &[i32]) {
    let (blocked, ignored) = command_signal_state(extra, blocked);
    assert_eq!(blocked, 0, "SigBlk {blocked:016x}");
    assert_eq!(
        ignored,
        0,
        "SigIgn {ignored:016x} (SIGPIPE is {:x})",
        bit(13)
    );
}

#[test]
fn exec_command_gets_empty_signal_mask_and_default_sigpipe() {
    assert_command_signal_state_is_clean(&["--exec"], &[]);
}

#[test]
fn command_gets_empty_signal_mask_and_default_sigpipe() {
    assert_command_signal_state_is_clean(&[], &[]);
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
    assert_command_signal_state_is_clean(&[], &[libc::SIGUSR1]);
}

// ---------------------------------------------------------------------------
// 8. Hostile peers on a kafka:// target: wait mode and probe
// ---------------------------------------------------------------------------

/// `kwait probe -t TIMEOUT TARGET`: asserts exit `code`, no panic, and
/// that the single line it printed holds every one of `needles`; returns
/// the run and that line.
fn probe(target: &str, timeout: &str, code: i32, needles: &[&str]) -> (Done, String) {
    let done = run_kwait(&["probe", "-t", timeout, target], &[], LIMIT);
    done.assert_no_panic();
    assert_eq!(done.code, Some(code), "{done:?}");
    let line = probe_line(&done);
    assert_contains(&line, needles);
    (done, line)
}

/// `kwait EXTRA TARGET`, which must time out: asserts exit 124, no panic,
/// and that its 'timed out' line holds every one of `needles`; returns the
/// run and that line.
fn times_out(target: &str, extra: &[&str], needles: &[&str]) -> (Done, String) {
    let mut args = extra.to_vec();
    args.push(target);
    let done = run_kwait(&args, &[], LIMIT);
    done.assert_no_panic();
    assert_eq!(done.code, Some(124), "{done:?}");
    let line = timed_out_line(&done);
    assert_contains(&line, needles);
    (done, line)
}

/// `kafka://` the fake server.
fn kafka(fake: &Fake) -> String {
    format!("kafka://{}", fake.addr())
}

/// `http://` the fake server, then `path`.
fn http(fake: &Fake, path: &str) -> String {
    format!("http://{}{path}", fake.addr())
}

#[test]
fn silent_peer_times_out_each_attempt_then_124() {
    let fake = Fake::silent();
    let target = kafka(&fake);
    let extra = ["--attempt-timeout", "300ms", "-t", "2s"];
    let (done, line) = times_out(&target, &extra, &[&target]);
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
    let target = kafka(&fake);
    let (done, line) = probe(&target, "1s", 1, &["no answer"]);
    assert!(
        line.starts_with(&format!("kwait: {target} not ready: ")),
        "{line}"
    );
    assert!(done.elapsed < Duration::from_secs(3), "{:?}", done.elapsed);
}

#[test]
fn garbage_peer_probe_exits_1() {
    let fake = Fake::garbage();
    let target = kafka(&fake);
    let (_, line) = probe(&target, "2s", 1, &["ApiVersions"]);
    assert!(
        line.starts_with(&format!("kwait: {target} not ready: {}: ", fake.addr())),
        "{line}"
    );
}

#[test]
fn garbage_peer_wait_exits_124() {
    let fake = Fake::garbage();
    times_out(&kafka(&fake), &["-t", "1s"], &["ApiVersions"]);
}

#[test]
fn huge_length_peer_probe_exits_1_not_kafka() {
    let fake = Fake::huge_length();
    let needles = ["frame length of 2147483647", "not Kafka"];
    let (done, _) = probe(&kafka(&fake), "2s", 1, &needles);
    assert!(done.elapsed < Duration::from_secs(2), "{:?}", done.elapsed);
}

#[test]
fn huge_length_peer_wait_exits_124_not_kafka() {
    let fake = Fake::huge_length();
    times_out(&kafka(&fake), &["-t", "1s"], &["not Kafka"]);
}

#[test]
fn reset_mid_frame_peer_probe_exits_1() {
    let fake = Fake::reset_mid_frame();
    let (_, line) = probe(&kafka(&fake), "2s", 1, &["reading the ApiVersions answer"]);
    assert!(line.contains("reset") || line.contains("closed"), "{line}");
}

#[test]
fn reset_mid_frame_peer_wait_exits_124() {
    let fake = Fake::reset_mid_frame();
    let (_, line) = times_out(&kafka(&fake), &["-t", "1s"], &[]);
    assert!(line.contains("reset") || line.contains("closed"), "{line}");
}

#[test]
fn unresolvable_host_probe_exits_1() {
    let target = "kafka://does-not-exist.invalid:9092";
    probe(
        target,
        "3s",
        1,
        &["cannot resolve 'does-not-exist.invalid'"],
    );
}

/// DNS failure is "not ready yet": a timeout, not a failure or usage error.
#[test]
fn unresolvable_host_is_not_ready_yet_in_wait_mode() {
    let target = "kafka://does-not-exist.invalid:9092";
    times_out(
        target,
        &["-t", "1s"],
        &["cannot resolve 'does-not-exist.invalid'"],
    );
}

// ---------------------------------------------------------------------------
// 9. tcp:// and http://
// ---------------------------------------------------------------------------

#[test]
fn probe_tcp_listener_exits_0() {
    let (_l, target) = listener();
    let (_, line) = probe(&target, "2s", 0, &[]);
    assert!(
        line.starts_with(&format!("kwait: {target} ready: accepted a connection")),
        "{line}"
    );
}

#[test]
fn probe_tcp_refused_exits_1() {
    let refused = RefusedPort::new();
    let target = refused.target("tcp");
    let (_, line) = probe(&target, "2s", 1, &[]);
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
    let done = run_kwait(&["probe", ready.as_str(), unready.as_str()], &[], LIMIT);
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
    let target = http(&fake, "/health");
    let (_, line) = probe(&target, "2s", 0, &[]);
    assert_eq!(line, format!("kwait: {target} ready: answered 200 OK"));
}

#[test]
fn probe_http_503_exits_1() {
    let fake = Fake::http("503 Service Unavailable");
    let target = http(&fake, "/health");
    let (_, line) = probe(&target, "2s", 1, &[]);
    assert_eq!(
        line,
        format!("kwait: {target} not ready: answered 503 Service Unavailable")
    );
}

#[test]
fn probe_http_301_exits_1_and_says_redirects_are_not_followed() {
    let fake = Fake::http("301 Moved Permanently");
    let needles = ["answered 301 Moved Permanently", "redirects"];
    probe(&http(&fake, "/"), "2s", 1, &needles);
}

#[test]
fn probe_http_silent_peer_exits_1() {
    let fake = Fake::silent();
    let needles = ["not ready: ", "no answer"];
    let (done, _) = probe(&http(&fake, "/health"), "1s", 1, &needles);
    assert!(done.elapsed < Duration::from_secs(3), "{:?}", done.elapsed);
}

#[test]
fn http_503_in_wait_mode_times_out_with_the_status() {
    let fake = Fake::http("503 Service Unavailable");
    let needles = ["answered 503 Service Unavailable"];
    times_out(&http(&fake, "/health"), &["-t", "1s"], &needles);
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

/// A bad target's error names it once: "target 'X': ...", without clap's
/// "invalid value 'X' for '[TARGET]...': " before it.
#[test]
fn usage_bad_target_is_named_once() {
    for args in [
        &["nosuch://x:1"][..],
        &["kafka://b:1?min-brokers=x"],
        &["zk://z:2181/a//b", "--", "true"],
        &["probe", "tcp://x"],
    ] {
        let target = args.iter().find(|a| a.contains("://")).unwrap();
        let line = usage_error(args, &[], &[&format!("kwait: target '{target}': ")]);
        assert_eq!(line.matches(target).count(), 1, "{line}");
        assert!(!line.contains("invalid value"), "{line}");
    }
}

/// A usage error of `kwait probe` points at probe's own help.
#[test]
fn probe_usage_error_points_at_probe_help() {
    let args = ["probe", "--bogus", "tcp://127.0.0.1:1"];
    let done = run_kwait(&args, &[], Duration::from_secs(10));
    done.expect(
        1,
        &["unexpected argument '--bogus' found (see kwait probe --help)"],
    );
    let args = ["--bogus", "tcp://127.0.0.1:1"];
    let done = run_kwait(&args, &[], Duration::from_secs(10));
    done.expect(2, &["(see kwait --help)"]);
}
