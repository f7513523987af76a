//! The command line: usage errors (exit 2, for probe 1, one line naming
//! the bad value), help and version, and which of argv and the
//! environment wins.
//!
//! Every test runs the real `kwait` binary as a subprocess and checks both
//! its exit code and what it said on stderr.

use std::time::Duration;

use crate::peers::{assert_contains, kwait, listener, run_kwait, RefusedPort};

/// The longest any single kwait run here may take before the test fails.
const LIMIT: Duration = Duration::from_secs(15);

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
        let line = done.probe_line();
        assert!(
            line.contains(&format!("{down} not ready: connection refused")),
            "{line}"
        );
    }
    let done = run_kwait(&["-t", "2s", "probe", target.as_str()], &[], LIMIT);
    assert!(done.expect(0, &[]).probe_line().contains(" ready: "));
    let done = run_kwait(&["--grace", "1s", "probe", target.as_str()], &[], LIMIT);
    done.expect(1, &[]);
    assert!(
        done.probe_line().contains("'probe' must come first"),
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
    assert!(done.probe_line().contains(" ready: "), "{}", done.stderr);
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
// 3. A bad target is named once; probe's usage errors point at its help
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// What a tired operator or a broken compose file gives kwait
// ---------------------------------------------------------------------------

/// kwait with the environment `env` (values as raw bytes), stdin from
/// /dev/null, run to completion.
fn run_with_raw_env(args: &[&str], env: &[(&str, &[u8])]) -> crate::peers::Done {
    use std::os::unix::ffi::OsStrExt;
    let mut cmd = kwait();
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, std::ffi::OsStr::from_bytes(v));
    }
    crate::peers::run(&mut cmd, LIMIT)
}

/// A value kwait cannot read (bytes that are not UTF-8, as a broken
/// `.env` file gives) is a usage error naming the variable, never "unset":
/// COMMAND must not start without the wait it was meant to have.
#[test]
fn env_values_that_are_not_utf8_are_usage_errors_naming_the_variable() {
    let dir = crate::peers::TempDir::new("env-bytes");
    let marker = crate::peers::Marker::new(&dir, "ran");
    let command = marker.command();
    let mut args: Vec<&str> = vec!["-t", "2s", "--"];
    args.extend(command.iter().map(String::as_str));
    for (name, value) in [
        ("KWAIT_TARGETS", &b"tcp://127.0.0.1:1 tcp://caf\xe9:1"[..]),
        ("KWAIT_TIMEOUT", b"1\xe9s"),
        ("KWAIT_GRACE", b"\xff"),
    ] {
        let done = run_with_raw_env(&args, &[(name, value)]);
        done.expect(2, &[name, "not UTF-8"]);
        assert_eq!(done.stderr.lines().count(), 1, "{}", done.stderr);
        assert!(!marker.ran(), "{name}: COMMAND started: {}", done.stderr);
    }
    let done = run_with_raw_env(
        &[
            "zk://127.0.0.1:1",
            "--clean-stale-broker",
            "auto",
            "-t",
            "1s",
        ],
        &[("KAFKA_BROKER_ID", b"\xe91")],
    );
    done.expect(2, &["KAFKA_BROKER_ID", "not UTF-8"]);
    assert!(
        !done.stderr.contains("found no broker id"),
        "{}",
        done.stderr
    );
}

/// An empty `KWAIT_*` (compose's `${UNSET}`) is unset: the default holds.
#[test]
fn empty_env_values_count_as_unset() {
    let (_open, target) = listener();
    for name in [
        "KWAIT_TIMEOUT",
        "KWAIT_ATTEMPT_TIMEOUT",
        "KWAIT_GRACE",
        "KWAIT_REWRITE",
    ] {
        let done = run_kwait(&[&target], &[(name, "")], LIMIT);
        done.expect(0, &["ready"]);
    }
}

/// wait-for-it's `-t 10` is seconds; kwait says so instead of "not a
/// duration".
#[test]
fn a_bare_number_is_told_to_take_a_unit() {
    usage_error(&["-t", "10", "tcp://a:1"], &[], &["'10'", "write 10s"]);
    usage_error(
        &["tcp://a:1"],
        &[("KWAIT_TIMEOUT", "30")],
        &["write 30s", "KWAIT_TIMEOUT"],
    );
}

/// Durations are shown as a user writes them: `1h`, not `60m0s`.
#[test]
fn durations_are_shown_in_their_largest_unit() {
    let done = run_kwait(
        &[
            "--grace",
            "60m",
            "--",
            "sh",
            "-c",
            "kill -TERM $PPID; sleep 5",
        ],
        &[],
        LIMIT,
    );
    assert_contains(&done.stderr, &["SIGKILL in --grace 1h if"]);
}

/// A file kwait would read that is a FIFO, a pipe or a terminal could
/// block it for ever, with every signal blocked (`docker stop` would wait
/// for its SIGKILL): refused at once, naming the setting.
#[test]
fn files_that_could_block_are_refused_naming_the_setting() {
    let dir = crate::peers::TempDir::new("fifo");
    let fifo = dir.path().join("ca.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let fifo = fifo.to_string_lossy().into_owned();
    let ca = format!("kafka://localhost:9?tls=true&ca={fifo}");
    let cases: [(Vec<&str>, &str); 3] = [
        (vec![&ca, "-t", "2s"], "ca="),
        (
            vec![
                "zk://127.0.0.1:1",
                "--clean-stale-broker",
                "auto",
                "--server-properties",
                &fifo,
                "-t",
                "2s",
            ],
            "--server-properties",
        ),
        (
            vec![
                "kafka://localhost:9?user=alice&password-file=/dev/stdin",
                "-t",
                "2s",
            ],
            "password-file=/dev/stdin",
        ),
    ];
    for (args, setting) in cases {
        let mut cmd = kwait();
        cmd.args(&args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        // stdin: a pipe whose writer (this test) stays silent.
        let mut running = crate::peers::Running::start("kwait", &mut cmd);
        let done = running.finish(LIMIT);
        done.expect(2, &[setting, "kwait reads only regular files"]);
        assert!(done.elapsed < Duration::from_secs(2), "{:?}", done.elapsed);
    }
}

/// Options that would do nothing are refused, not silently accepted: with
/// --exec nothing supervises the app, so the drain settings would be lost.
#[test]
fn options_without_effect_are_refused() {
    for (args, needle) in [
        (
            &["--exec", "--drain-delay", "5s", "--", "true"][..],
            "--drain-delay has no effect",
        ),
        (
            &["--exec", "--grace", "5s", "--", "true"],
            "--grace has no effect",
        ),
        (
            &["--exec", "--rewrite", "TERM:QUIT", "--", "true"],
            "--rewrite has no effect",
        ),
        (
            &["--exec", "--group", "--", "true"],
            "--group has no effect",
        ),
        (&["--grace", "5s", "tcp://a:1"], "no COMMAND to supervise"),
        (
            &["--server-properties", "/x", "tcp://a:1", "--", "true"],
            "--clean-stale-broker auto",
        ),
    ] {
        usage_error(args, &[], &[needle]);
    }
    // From an image's environment: a warning, and COMMAND still runs.
    let done = run_kwait(&["--exec", "--", "true"], &[("KWAIT_GRACE", "5s")], LIMIT);
    done.expect(0, &["warning: KWAIT_GRACE (--grace) has no effect"]);
}

/// KWAIT_TARGETS beside command-line targets, or given to probe, is
/// said to be unused; commas in it get a hint.
#[test]
fn env_targets_that_are_not_used_are_named() {
    let (_open, target) = listener();
    let done = run_kwait(&[&target], &[("KWAIT_TARGETS", "tcp://127.0.0.1:1")], LIMIT);
    done.expect(0, &["KWAIT_TARGETS is set but not used"]);
    usage_error(
        &["probe"],
        &[("KWAIT_TARGETS", &target)],
        &["does not read KWAIT_TARGETS"],
    );
    usage_error(
        &[],
        &[("KWAIT_TARGETS", "tcp://a:1,tcp://b:1")],
        &["KWAIT_TARGETS", "separate targets with spaces"],
    );
}

/// Two ZooKeeper targets: which one holds the registration? Neither is
/// guessed.
#[test]
fn clean_with_two_zookeeper_targets_is_refused() {
    usage_error(
        &[
            "zk://a:2181",
            "zk://b:2181/kafka",
            "--clean-stale-broker",
            "1",
        ],
        &[],
        &["exactly one zk:// target", "zk://a:2181 zk://b:2181/kafka"],
    );
}

/// Parser messages that say what is wrong and what to write.
#[test]
fn target_mistakes_are_named() {
    usage_error(
        &["kafka://a:1,,b:2"],
        &[],
        &["empty address in the list 'a:1,,b:2'"],
    );
    usage_error(&["http://h:80#frag"], &[], &["#fragment is never sent"]);
    usage_error(
        &["PLAINTEXT://kafka:9092"],
        &[],
        &[
            "Kafka listener's security protocol",
            "write kafka://kafka:9092",
        ],
    );
    usage_error(
        &["--gracee", "1s", "--", "true"],
        &[],
        &["similar argument exists: '--grace'"],
    );
    usage_error(
        &["probe", "tcp://a:1", "--", "echo"],
        &[],
        &["probe runs no COMMAND"],
    );
    // A pasted 100 KB host name: refused, and shown once, shortened.
    let host = "a".repeat(100_000);
    let line = usage_error(&[&format!("tcp://{host}:1")], &[], &["at most 253"]);
    assert!(line.len() < 1000, "{} bytes", line.len());
}

/// A password file that is not UTF-8 text is refused: converting its bytes
/// would send a password that is not the file's.
#[test]
fn a_password_file_that_is_not_utf8_is_refused() {
    let dir = crate::peers::TempDir::new("pw-bytes");
    let file = dir.path().join("password");
    std::fs::write(&file, b"caf\xe9\n").unwrap();
    let target = format!(
        "kafka://localhost:9?user=alice&password-file={}",
        file.display()
    );
    let done = run_kwait(&[&target, "-t", "2s"], &[], LIMIT);
    done.expect(2, &["password-file=", "is not UTF-8 text"]);
}
