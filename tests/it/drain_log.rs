//! The drain's SIGKILL line says what happened and when: which `--grace`
//! ran out, counted from which signal, how long after the first stop
//! signal, and a later stop signal that reached no one, so a repeated
//! SIGTERM is never read as the SIGKILL's cause.

use std::thread;
use std::time::{Duration, Instant};

use crate::peers::{kwait_with, skip_under_runner, Running};

const LIMIT: Duration = Duration::from_secs(30);
const SHORT: Duration = Duration::from_secs(10);

/// kwait supervising `sh -c SCRIPT` under `--grace 1s` (and `flags`), once
/// the script printed `ready`.
fn start(flags: &[&str], script: &str) -> Running {
    let mut args = vec!["--grace", "1s"];
    args.extend(flags);
    args.extend(["--", "sh", "-c", script]);
    let kw = Running::spawn("kwait", &mut kwait_with(&args, &[]));
    kw.wait_for_stdout("ready", SHORT);
    kw
}

/// The app ignores SIGTERM; a second SIGTERM 600 ms after the first gives it
/// a full --grace from then, and the SIGKILL line says so: counted from the
/// 2nd stop signal, and how long after the first.
#[test]
fn sigkill_after_a_repeated_sigterm_names_the_signal_its_grace_counts_from() {
    let mut kw = start(&[], "trap '' TERM; echo ready; exec sleep 60");
    kw.child.signal(libc::SIGTERM);
    thread::sleep(Duration::from_millis(600));
    let second = Instant::now();
    kw.child.signal(libc::SIGTERM);
    let done = kw.finish(LIMIT);
    let took = second.elapsed();
    done.expect(
        137,
        &[
            "kwait: another SIGTERM during the drain: SIGKILL now in --grace 1s",
            "SIGKILL to process group ",
            "the app is still running after --grace 1s, counted from the 2nd stop signal (SIGTERM, ",
            "ms after the first); the first stop signal came ",
        ],
    );
    assert!(
        took >= Duration::from_millis(950),
        "SIGKILL {took:?} after the second SIGTERM"
    );
}

/// One SIGTERM held by --drain-delay: the SIGKILL line counts the grace
/// from the forwarded SIGTERM and says how long the delay held it.
#[test]
fn sigkill_after_a_drain_delay_counts_from_the_forwarded_signal() {
    let mut kw = start(
        &["--drain-delay", "500ms"],
        "trap '' TERM; echo ready; exec sleep 60",
    );
    kw.child.signal(libc::SIGTERM);
    let done = kw.finish(LIMIT);
    done.expect(
        137,
        &[
            "the app is still running after --grace 1s, counted from the SIGTERM sent to it ",
            "after the stop signal (--drain-delay 500ms); the stop signal came 1.",
        ],
    );
}

/// The app exits on the first SIGTERM and leaves a TERM-ignoring helper; a
/// second SIGTERM reaches no one (the helper had its one SIGTERM). It is
/// logged when it comes, and the SIGKILL line, at the end of the grace
/// counted from the first, names it as what it was, not as the cause.
#[test]
fn a_stop_signal_after_the_app_exited_is_named_not_blamed() {
    if skip_under_runner("needs a child subreaper, which qemu-user does not emulate") {
        return;
    }
    let mut kw = start(
        &[],
        "trap 'exit 0' TERM; (trap '' TERM; echo ready; exec sleep 60) & wait",
    );
    kw.child.signal(libc::SIGTERM);
    kw.wait_for_stderr("left behind by the app", SHORT);
    thread::sleep(Duration::from_millis(500));
    kw.child.signal(libc::SIGTERM);
    let done = kw.finish(LIMIT);
    done.expect(
        0,
        &[
            "kwait: SIGTERM received after the app exited: not forwarded (what it left behind already got SIGTERM); SIGKILL stays at the end of --grace, in ",
            "1 process(es) still running at the end of --grace 1s, counted from the SIGTERM sent to the app; the first stop signal came 1",
            "; the SIGTERM that came ",
            " after the first reached no one: the app had exited, and what it left behind had its SIGTERM",
        ],
    );
}
