//! The wait loop: exit 0 once every target is ready, KWAIT_TARGETS and
//! the timeout from argv or the environment, exit 124 at the deadline with
//! the reason, "still waiting" lines, signals while waiting (128+N, at
//! once, COMMAND never started), and the pacing of failed attempts.
//!
//! Peers are real sockets opened here (or `Fake` servers from the
//! harness); kwait processes are stopped by pid when a test ends, also
//! when it fails. Waiting is polling with a deadline, on kwait's own log
//! lines where a test must know what kwait is doing.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::peers::{
    self, kwait, kwait_as_pid1, kwait_with, listener, need, pid1_kwait, poll_until, run_kwait,
    signal_pid1_from_inside, Done, Fake, RefusedPort, Running, TempDir, Waiting,
};

/// The longest any single kwait run here may take before the test fails.
const LIMIT: Duration = Duration::from_secs(15);

fn assert_not_ran(marker: &Path, done: &Done) {
    assert!(
        !marker.exists(),
        "COMMAND ran although kwait should not have started it; stderr:\n{}",
        done.stderr
    );
}

// ---------------------------------------------------------------------------
// 1. No COMMAND: exit 0 once ready; KWAIT_TARGETS; argv wins over env
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
// 2. Timeout: 124, the reason, the flag to change; COMMAND never ran
// ---------------------------------------------------------------------------

#[test]
fn timeout_exits_124_with_reason_and_command_never_runs() {
    let dir = TempDir::new("timeout");
    let marker = dir.path().join("command-ran");
    let refused = RefusedPort::new();
    let target = refused.target("tcp");
    let mut args: Vec<&OsStr> = vec!["-t".as_ref(), "1s".as_ref(), target.as_ref()];
    args.extend(["--".as_ref(), "touch".as_ref(), marker.as_os_str()]);
    let done = peers::run(&mut kwait_with(&args, &[]), LIMIT);
    done.assert_no_panic();
    assert_eq!(done.code, Some(124), "{done:?}");
    let line = done.timed_out_line();
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
    let line = done.timed_out_line();
    assert!(
        line.starts_with(&format!(
            "kwait: timed out after 6s waiting for {target}: {reason}"
        )),
        "{line}"
    );
}

// ---------------------------------------------------------------------------
// 3. Signals while waiting: 128+N, at once, COMMAND never ran
// ---------------------------------------------------------------------------

/// A kwait waiting (`-t 30s`) for `scheme://` a refused port, started from
/// `cmd`, with a marker as COMMAND; it has said it is waiting, so its
/// signals are blocked (the first thing in main). The port refuses for as
/// long as the [`RefusedPort`] lives.
fn waiting(tag: &str, name: &str, mut cmd: Command, scheme: &str) -> (Waiting, RefusedPort) {
    let refused = RefusedPort::new();
    cmd.args(["-t", "30s"]).arg(refused.target(scheme));
    let mut w = Waiting::spawn(tag, name, cmd);
    w.kw.wait_for_stderr("kwait: waiting for", Duration::from_secs(10));
    (w, refused)
}

/// [`waiting`] as PID 1 of a new PID namespace (through `unshare`), for
/// `tcp://` the refused port.
fn waiting_as_pid1(tag: &str) -> (Waiting, RefusedPort) {
    need("nsenter");
    let (mut w, refused) = waiting(tag, "unshare kwait", kwait_as_pid1(), "tcp");
    let unshare = w.kw.child.pid();
    w.pid = pid1_kwait(unshare, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("unshare ({unshare}) has no kwait child"));
    (w, refused)
}

/// Asserts that kwait said `name` stopped it and that COMMAND never ran.
fn assert_stopped_by(w: &Waiting, name: &str, done: &Done) {
    assert!(
        done.stderr.contains(&format!(
            "kwait: stopped by {name} while waiting; COMMAND not started"
        )),
        "{}",
        done.stderr
    );
    assert_not_ran(w.marker.path(), done);
}

fn signal_while_waiting(sig: i32, name: &str, code: i32) {
    let (mut w, _refused) = waiting("signal", "kwait", kwait(), "kafka");
    let sent = Instant::now();
    w.kw.child.signal(sig);
    let status = w.kw.child.wait_exit(Duration::from_secs(5));
    let took = sent.elapsed();
    eprintln!("{name}: kwait ended {took:?} after the signal");
    let done = w.kw.finish(LIMIT);
    assert_eq!(status.code(), Some(code), "{name}: {done:?}");
    assert_stopped_by(&w, name, &done);
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
    let (mut w, _refused) = waiting_as_pid1("pid1");
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
    assert_stopped_by(&w, "SIGTERM", &done);
}

/// From inside the namespace, where the kernel drops signals PID 1 has no
/// handler for: kwait's blocked signals + signalfd must still see it.
#[test]
fn sigint_from_inside_the_namespace_to_pid1_exits_130() {
    let (mut w, _refused) = waiting_as_pid1("pid1-inside");
    signal_pid1_from_inside(w.pid, libc::SIGINT);
    let done = w.kw.finish(LIMIT);
    assert_eq!(done.code, Some(130), "{done:?}");
    assert_stopped_by(&w, "SIGINT", &done);
}

// ---------------------------------------------------------------------------
// 4. Pacing: at most 20 connection attempts a second per target
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
