//! COMMAND: it starts only once the targets are ready and its exit code
//! is kwait's; a COMMAND that cannot run exits 127 or 126; with --exec
//! kwait becomes it; the signal state it starts with, with and without
//! --exec.

use std::ffi::OsStr;
use std::time::{Duration, Instant};

use crate::peers::{
    self, clean_start_blocking, kwait_with, listener, not_executable_script, run_kwait,
    signal_mask, RefusedPort, Running, TempDir,
};

/// The longest any single kwait run here may take before the test fails.
const LIMIT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------
// 1. Waiting, then running COMMAND with its own exit code
// ---------------------------------------------------------------------------

#[test]
fn waits_for_a_late_listener_then_runs_command_with_its_exit_code() {
    let dir = TempDir::new("late");
    let marker = dir.path().join("command-ran");
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
// 2. --exec: 127, 126, COMMAND's code, clean signal state
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
