//! The command line and its `KWAIT_*` environment twins, parsed once into a
//! validated [`Plan`].
//!
//! Everything a user can get wrong is judged here, before anything connects:
//! a bad value is one line naming it and the flag, and exit 2. Command-line
//! values win over the environment (clap's `env` does exactly that).

use std::ffi::OsString;
use std::time::Duration;

use clap::builder::FalseyValueParser;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::clean;
use crate::log::{self, Level};
use crate::signals::Signo;
use crate::supervise;
use crate::target::Target;
use crate::target::{Kind, Zk};

const EXAMPLES: &str = "\
Examples:
  kwait kafka://kafka:9092 -- python -m worker
      wait until the broker really serves Kafka, then run the worker
  kwait 'kafka://k1:9092,k2:9092?min-brokers=3&topics=orders&group=billing' -t 2m
      no COMMAND: exit 0 once 3 brokers, the topic's leaders and the group's
      coordinator are there (an init container)
  kwait tcp://db:5432 http://auth:8080/health -- ./server
      several targets are waited for at once, under one deadline
  kwait zk://zookeeper:2181 --clean-stale-broker auto -- /etc/kafka/docker/run
      a ZooKeeper-mode broker's entrypoint: wait for a real ZooKeeper session,
      remove this broker's stale registration (never a live broker's), start Kafka
  kwait probe kafka://localhost:9092
      one check for a HEALTHCHECK or exec probe: exit 0 ready, 1 not

Targets:
  kafka://HOST:PORT[,HOST:PORT...][?min-brokers=N&topics=A,B&group=G]
      security: tls, ca, cert, key, tls-verify, sasl, user, password-file,
      config (a client.properties); the password in KWAIT_KAFKA_PASSWORD
  zk://HOST:PORT[,HOST:PORT...][/CHROOT]   a real session, and the chroot exists
  tcp://HOST:PORT          a connection is accepted
  http[s]://HOST[:PORT]/PATH  a GET answers 2xx

Exit codes: 0 ready, 124 timed out, 1 failed, 2 usage error,
  126/127 COMMAND not executable/not found, otherwise COMMAND's own status.";

#[derive(Parser, Debug)]
#[command(
    name = "kwait",
    version,
    about = "Wait until Kafka, ZooKeeper, TCP and HTTP dependencies are really ready, then run and supervise COMMAND.",
    override_usage = "kwait [OPTIONS] [TARGET]... [-- COMMAND [ARG]...]\n       kwait probe [OPTIONS] TARGET...",
    after_help = EXAMPLES,
    args_conflicts_with_subcommands = true,
    disable_help_subcommand = true
)]
struct Cli {
    #[command(subcommand)]
    probe: Option<Mode>,

    /// What to wait for; all at once. Also KWAIT_TARGETS (whitespace-separated)
    #[arg(value_name = "TARGET")]
    targets: Vec<Target>,

    /// Overall deadline for readiness; 0 waits forever
    #[arg(short, long, env = "KWAIT_TIMEOUT", value_name = "DURATION", allow_hyphen_values = true,
          default_value = "60s", value_parser = duration)]
    timeout: Duration,

    /// Deadline of one attempt (connect, requests, answers) inside the overall one
    #[arg(long, env = "KWAIT_ATTEMPT_TIMEOUT", value_name = "DURATION", allow_hyphen_values = true,
          default_value = "5s", value_parser = positive_duration)]
    attempt_timeout: Duration,

    #[command(flatten)]
    common: Common,

    /// Replace kwait with COMMAND instead of supervising it (when another init is PID 1)
    #[arg(long, env = "KWAIT_EXEC", value_parser = FalseyValueParser::new())]
    exec: bool,

    /// Time the app has to exit after the stop signal, before SIGKILL
    #[arg(long, env = "KWAIT_GRACE", value_name = "DURATION", allow_hyphen_values = true,
          default_value = "10s", value_parser = duration)]
    grace: Duration,

    /// On SIGTERM/SIGINT, keep the app running this long before forwarding
    #[arg(long, env = "KWAIT_DRAIN_DELAY", value_name = "DURATION", allow_hyphen_values = true,
          default_value = "0s", value_parser = duration)]
    drain_delay: Duration,

    /// Forward signal FROM as TO (e.g. TERM:QUIT); TO of 0 drops FROM; repeatable
    #[arg(long, env = "KWAIT_REWRITE", value_name = "FROM:TO",
          value_parser = rewrite, value_delimiter = ',')]
    rewrite: Vec<(Signo, Signo)>,

    /// Send forwarded signals to the app's whole process group
    #[arg(long, env = "KWAIT_GROUP", value_parser = FalseyValueParser::new())]
    group: bool,

    /// Before COMMAND, remove this broker id's stale ZooKeeper registration
    /// (needs a zk:// target); `auto` reads KAFKA_BROKER_ID,
    /// KAFKA_CFG_BROKER_ID or broker.id from --server-properties
    #[arg(
        long,
        env = "KWAIT_CLEAN_STALE_BROKER",
        value_name = "ID|auto",
        allow_hyphen_values = true
    )]
    clean_stale_broker: Option<String>,

    /// Kafka's server.properties, for --clean-stale-broker auto
    #[arg(long, env = "KWAIT_SERVER_PROPERTIES", value_name = "FILE")]
    server_properties: Option<std::path::PathBuf>,

    /// With --clean-stale-broker: report what would be removed, remove nothing
    #[arg(long, env = "KWAIT_DRY_RUN", value_parser = FalseyValueParser::new())]
    dry_run: bool,

    /// The program to run once everything is ready
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

/// Options both modes share.
#[derive(Args, Debug)]
struct Common {
    /// Print errors only
    #[arg(
        short,
        long,
        env = "KWAIT_QUIET",
        value_parser = FalseyValueParser::new(),
        global = true,
        conflicts_with = "verbose"
    )]
    quiet: bool,

    /// Print every attempt's result too
    #[arg(short, long, env = "KWAIT_VERBOSE", value_parser = FalseyValueParser::new(), global = true)]
    verbose: bool,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// One check of each TARGET, for Docker HEALTHCHECK and Kubernetes exec probes
    Probe(ProbeArgs),
}

#[derive(Args, Debug)]
struct ProbeArgs {
    /// What to check
    #[arg(value_name = "TARGET", required = true)]
    targets: Vec<Target>,

    /// Deadline for the whole check
    #[arg(short, long, env = "KWAIT_PROBE_TIMEOUT", value_name = "DURATION", allow_hyphen_values = true,
          default_value = "5s", value_parser = positive_duration)]
    timeout: Duration,
}

/// `kwait probe ...` parsed on its own, so that the wait-mode options'
/// environment twins (KWAIT_TIMEOUT, KWAIT_GRACE, ...), set for the app's
/// start-up, can neither change nor break a health check.
#[derive(Parser, Debug)]
#[command(
    name = "kwait probe",
    version,
    override_usage = "kwait probe [OPTIONS] TARGET...",
    about = "One check of each TARGET, for Docker HEALTHCHECK and Kubernetes exec probes: exit 0 when all are ready, 1 otherwise.",
    disable_help_subcommand = true
)]
struct ProbeCli {
    #[command(flatten)]
    args: ProbeArgs,

    #[command(flatten)]
    common: Common,
}

/// What kwait was asked to do, validated.
#[derive(Debug)]
pub enum Plan {
    Wait(Wait),
    Probe(Probe),
}

#[derive(Debug)]
pub struct Wait {
    pub targets: Vec<Target>,
    /// `None`: no deadline (`--timeout 0`).
    pub timeout: Option<Duration>,
    pub attempt_timeout: Duration,
    pub command: Vec<OsString>,
    pub exec: bool,
    pub supervise: supervise::Options,
    /// `--clean-stale-broker`: the ensemble (the first zk:// target) and what to clean.
    pub clean: Option<(Zk, clean::Request)>,
}

#[derive(Debug)]
pub struct Probe {
    pub targets: Vec<Target>,
    pub timeout: Duration,
}

/// A parse that did not produce a plan: help or version text to print
/// (exit 0), or a one-line usage error (exit 2; 1 for `probe`, because
/// Docker reserves a health check's exit 2).
#[derive(Debug)]
pub enum Stop {
    Print(String),
    Usage(String),
    ProbeUsage(String),
}

/// Parses `argv`; `env` looks up the variables kwait reads besides its own
/// option twins (`KWAIT_TARGETS`, `KAFKA_BROKER_ID`, `KAFKA_CFG_BROKER_ID`).
pub fn parse<I: IntoIterator<Item = OsString>>(
    argv: I,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Plan, Stop> {
    // main() parses first thing: as good as the process's start.
    let kwait_started = std::time::Instant::now();
    let mut argv: Vec<OsString> = argv.into_iter().collect();
    if let Some(at) = probe_at(&argv) {
        // `kwait -q probe X` means `kwait probe -q X`.
        let word = argv.remove(at);
        argv.insert(1, word);
        let cli =
            ProbeCli::try_parse_from(argv.iter().skip(1)).map_err(|err| stop(&err, &argv, true))?;
        set_level(&cli.common);
        return Ok(Plan::Probe(Probe {
            targets: cli.args.targets,
            timeout: cli.args.timeout,
        }));
    }
    let cli = Cli::try_parse_from(&argv).map_err(|err| stop(&err, &argv, false))?;
    set_level(&cli.common);
    if let Some(Mode::Probe(args)) = cli.probe {
        return Ok(Plan::Probe(Probe {
            targets: args.targets,
            timeout: args.timeout,
        }));
    }

    let mut targets = cli.targets;
    if targets.is_empty() {
        for word in env("KWAIT_TARGETS")
            .as_deref()
            .unwrap_or("")
            .split_whitespace()
        {
            targets.push(
                word.parse()
                    .map_err(|e| Stop::Usage(format!("KWAIT_TARGETS: {e}")))?,
            );
        }
    }
    if targets.is_empty() && cli.command.is_empty() {
        return Err(Stop::Usage(
            "nothing to do: give a TARGET to wait for and/or -- COMMAND to run (see kwait --help)"
                .into(),
        ));
    }
    if cli.exec && cli.command.is_empty() {
        return Err(Stop::Usage("--exec needs a COMMAND after --".into()));
    }
    let clean = match &cli.clean_stale_broker {
        None if cli.dry_run => {
            return Err(Stop::Usage(
                "--dry-run only applies to --clean-stale-broker".into(),
            ))
        }
        None => None,
        Some(value) => {
            let Some(zk) = targets.iter_mut().find_map(|t| match &mut t.kind {
                Kind::Zk(zk) => Some(zk),
                _ => None,
            }) else {
                return Err(Stop::Usage(
                    "--clean-stale-broker needs a zk:// target: the ZooKeeper that holds the registration".into(),
                ));
            };
            // Kafka creates its chroot on its first start: the broker this
            // cleans for must not wait for it (src/probe/zk.rs).
            zk.missing_chroot_ok = true;
            let zk = zk.clone();
            let id =
                broker_id(value, cli.server_properties.as_deref(), &env).map_err(Stop::Usage)?;
            Some((
                zk,
                clean::Request {
                    id,
                    dry_run: cli.dry_run,
                    kwait_started,
                },
            ))
        }
    };
    for (i, (from, _)) in cli.rewrite.iter().enumerate() {
        if cli.rewrite[..i].iter().any(|(earlier, _)| earlier == from) {
            return Err(Stop::Usage(format!(
                "--rewrite: {from} is rewritten twice; keep one FROM:TO for it"
            )));
        }
    }
    Ok(Plan::Wait(Wait {
        targets,
        timeout: (!cli.timeout.is_zero()).then_some(cli.timeout),
        attempt_timeout: cli.attempt_timeout,
        command: cli.command,
        exec: cli.exec,
        supervise: supervise::Options {
            group: cli.group,
            grace: cli.grace,
            drain_delay: cli.drain_delay,
            rewrites: cli.rewrite,
        },
        clean,
    }))
}

fn set_level(common: &Common) {
    log::set_level(if common.quiet {
        Level::Error
    } else if common.verbose {
        Level::Debug
    } else {
        Level::Info
    });
}

/// Where the word `probe` is, when only options `probe` also takes come
/// before it (`kwait -q probe X`, `kwait -t 3s probe X`); 1 when it is first.
fn probe_at(argv: &[OsString]) -> Option<usize> {
    let mut i = 1;
    while let Some(arg) = argv.get(i) {
        match arg.to_str()? {
            "probe" => return Some(i),
            "-t" | "--timeout" => i += 1,
            "-q" | "-v" | "--quiet" | "--verbose" => {}
            a if a.starts_with("--timeout=") || a.starts_with("-t") => {}
            _ => return None,
        }
        i += 1;
    }
    None
}

/// Turns a clap error into help text to print, or a one-line usage error
/// that says where a bad value came from when it was not on the command line.
fn stop(err: &clap::Error, argv: &[OsString], probing: bool) -> Stop {
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        return Stop::Print(err.to_string());
    }
    // `kwait --grace 1s probe X` took `probe` for a target. A health check
    // must not exit 2 (Docker reserves it), so this is probe's usage error.
    if matches!(err.get(ContextKind::InvalidValue), Some(ContextValue::String(v)) if v == "probe") {
        return Stop::ProbeUsage(
            "'probe' must come first: kwait probe [OPTIONS] TARGET... (see kwait probe --help)"
                .into(),
        );
    }
    let mut message = one_line(
        &target_error(err).unwrap_or_else(|| err.to_string()),
        if probing {
            "kwait probe --help"
        } else {
            "kwait --help"
        },
    );
    let cmd = if probing {
        ProbeCli::command()
    } else {
        Cli::command()
    };
    for arg in cmd.get_arguments() {
        let (Some(long), Some(env)) = (arg.get_long(), arg.get_env()) else {
            continue;
        };
        let named =
            message.contains(&format!("'--{long} ")) || message.contains(&format!("'--{long}'"));
        if named && !on_argv(argv, long, arg.get_short()) && std::env::var_os(env).is_some() {
            message.push_str(&format!(" (the value came from {})", env.to_string_lossy()));
        }
    }
    if probing {
        Stop::ProbeUsage(message)
    } else {
        Stop::Usage(message)
    }
}

/// A bad TARGET's own error, which names the target itself ("target 'X':
/// ..."), without clap's "invalid value 'X' for '[TARGET]...': " before it.
fn target_error(err: &clap::Error) -> Option<String> {
    use std::error::Error as _;
    if err.kind() != ErrorKind::ValueValidation {
        return None;
    }
    match err.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) if arg.contains("TARGET") => {
            err.source().map(|e| e.to_string())
        }
        _ => None,
    }
}

/// Whether option `--long` (or `-s`) is on the command line before `--`, in
/// any form clap takes: `--long V`, `--long=V`, `-s V`, `-sV`, `-qs V`.
fn on_argv(argv: &[OsString], long: &str, short: Option<char>) -> bool {
    argv.iter()
        .skip(1)
        .map(|a| a.to_string_lossy())
        .take_while(|a| a != "--")
        .any(|a| {
            if let Some(name) = a.strip_prefix("--") {
                return name.split('=').next() == Some(long);
            }
            let Some(cluster) = a.strip_prefix('-') else {
                return false;
            };
            // In `-qt5s` everything after `t` is its value.
            for c in cluster.chars() {
                if Some(c) == short {
                    return true;
                }
                if c == 't' {
                    break;
                }
            }
            false
        })
}

/// clap renders errors over several lines (usage, tips); kwait's contract is
/// one line naming the bad value.
fn one_line(rendered: &str, help: &str) -> String {
    let kept = rendered
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty() && !l.starts_with("tip:"))
        .collect::<Vec<_>>()
        .join(" ");
    let kept = kept.strip_prefix("error: ").unwrap_or(&kept);
    // clap echoes the bad value; a password in it must not reach the log.
    let kept = crate::security::redact(kept);
    format!("{kept} (see {help})")
}

/// The longest duration kwait takes (humantime's 100 years): far beyond any
/// real deadline, and far enough below what `Instant + Duration` can hold
/// that no deadline computed from it overflows (which would panic PID 1).
const LONGEST: Duration = Duration::from_secs(100 * 31_557_600);

fn duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    match humantime::parse_duration(s) {
        Ok(d) if d <= LONGEST => Ok(d),
        Ok(_) | Err(humantime::DurationError::NumberOverflow) => {
            Err("more than 100y, the longest kwait takes".into())
        }
        Err(_) => Err("not a duration; write e.g. 500ms, 30s or 1m30s".into()),
    }
}

/// The broker id for `--clean-stale-broker ID|auto`.
fn broker_id(
    value: &str,
    properties: Option<&std::path::Path>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<i32, String> {
    // Compose's `${KAFKA_BROKER_ID}` of an unset variable is an empty one:
    // empty (or blank) means unset, and the next source decides.
    let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let (raw, source) = if value == "auto" {
        if let Some(id) = env("KAFKA_BROKER_ID") {
            (id, "KAFKA_BROKER_ID".to_string())
        } else if let Some(id) = env("KAFKA_CFG_BROKER_ID") {
            (id, "KAFKA_CFG_BROKER_ID".to_string())
        } else if let Some(path) = properties {
            let text = clean::read_server_properties(path)?;
            let id = clean::broker_id_from_properties(&text).ok_or_else(|| {
                format!(
                    "--clean-stale-broker auto: no broker.id in --server-properties {}",
                    path.display()
                )
            })?;
            (id, format!("broker.id in {}", path.display()))
        } else {
            return Err(
                "--clean-stale-broker auto found no broker id: set KAFKA_BROKER_ID or \
                 KAFKA_CFG_BROKER_ID (an empty one counts as unset), or give \
                 --server-properties FILE with broker.id"
                    .into(),
            );
        }
    } else {
        (value.to_string(), "--clean-stale-broker".to_string())
    };
    match raw.trim().parse::<i32>() {
        Ok(id) if id >= 0 => Ok(id),
        Ok(_) => Err(format!(
            "{source} is {raw}: a negative broker.id makes Kafka generate one, so there is no fixed registration to clean"
        )),
        Err(_) => Err(format!("{source}: '{raw}' is not a broker id (a whole number, or auto)")),
    }
}

fn rewrite(s: &str) -> Result<(Signo, Signo), String> {
    let (from, to) = s.split_once(':').ok_or("write FROM:TO, e.g. TERM:QUIT")?;
    let from = Signo::parse(from).ok_or_else(|| format!("unknown signal '{from}'"))?;
    let to = Signo::parse(to).ok_or_else(|| format!("unknown signal '{to}'"))?;
    if matches!(from, Signo(0) | Signo::KILL | Signo::CHLD) || from.0 == nix::libc::SIGSTOP {
        return Err(format!("{from} cannot be rewritten"));
    }
    Ok((from, to))
}

fn positive_duration(s: &str) -> Result<Duration, String> {
    match duration(s)? {
        d if d.is_zero() => Err("must be more than 0".into()),
        d => Ok(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Plan, Stop> {
        parse(
            std::iter::once("kwait")
                .chain(args.iter().copied())
                .map(OsString::from),
            |_| None,
        )
    }

    fn usage(args: &[&str]) -> String {
        match run(args) {
            Err(Stop::Usage(msg)) => msg,
            other => panic!("{args:?}: expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn supervise_options() {
        let Ok(Plan::Wait(w)) = run(&[
            "--grace",
            "3s",
            "--drain-delay",
            "1s",
            "--rewrite",
            "TERM:QUIT,HUP:0",
            "--group",
            "--",
            "nginx",
        ]) else {
            panic!("not a wait plan")
        };
        assert_eq!(w.supervise.grace, Duration::from_secs(3));
        assert_eq!(w.supervise.drain_delay, Duration::from_secs(1));
        assert_eq!(
            w.supervise.rewrites,
            [(Signo::TERM, Signo::QUIT), (Signo::HUP, Signo(0))]
        );
        assert!(w.supervise.group);
        let Ok(Plan::Wait(w)) = run(&["--", "app"]) else {
            panic!()
        };
        assert_eq!(w.supervise.grace, Duration::from_secs(10));
        assert!(
            w.supervise.drain_delay.is_zero()
                && w.supervise.rewrites.is_empty()
                && !w.supervise.group
        );
    }

    #[test]
    fn wait_plan() {
        let Ok(Plan::Wait(w)) = run(&[
            "kafka://k:9092",
            "tcp://db:5432",
            "-t",
            "90s",
            "--",
            "app",
            "-x",
        ]) else {
            panic!("not a wait plan")
        };
        assert_eq!(w.targets.len(), 2);
        assert_eq!(w.timeout, Some(Duration::from_secs(90)));
        assert_eq!(w.command, ["app", "-x"]);
        assert!(!w.exec);
        let Ok(Plan::Wait(w)) = run(&["-t", "0", "tcp://a:1"]) else {
            panic!()
        };
        assert_eq!(w.timeout, None);
    }

    #[test]
    fn clean_plan() {
        let argv = |args: &[&str]| {
            std::iter::once("kwait")
                .chain(args.iter().copied())
                .map(OsString::from)
                .collect::<Vec<_>>()
        };
        let Ok(Plan::Wait(w)) = parse(
            argv(&[
                "zk://z:2181/kafka",
                "--clean-stale-broker",
                "7",
                "--dry-run",
            ]),
            |_| None,
        ) else {
            panic!()
        };
        let (zk, req) = w.clean.unwrap();
        assert_eq!(zk.chroot, "/kafka");
        assert_eq!((req.id, req.dry_run), (7, true));
        // The target cleaned is also the one waited for: there a missing
        // chroot is a fresh cluster, ready.
        assert!(zk.missing_chroot_ok);
        assert!(matches!(&w.targets[0].kind, Kind::Zk(z) if z.missing_chroot_ok));
        let Ok(Plan::Wait(w)) = parse(argv(&["zk://z:2181/kafka"]), |_| None) else {
            panic!()
        };
        assert!(matches!(&w.targets[0].kind, Kind::Zk(z) if !z.missing_chroot_ok));
        let env = |k: &str| (k == "KAFKA_CFG_BROKER_ID").then(|| "3".to_string());
        let Ok(Plan::Wait(w)) = parse(argv(&["zk://z:2181", "--clean-stale-broker", "auto"]), env)
        else {
            panic!()
        };
        assert_eq!(w.clean.unwrap().1.id, 3);
        // An empty KAFKA_BROKER_ID (compose's `${KAFKA_BROKER_ID}` of an
        // unset variable) is unset: the next source decides.
        let env = |k: &str| match k {
            "KAFKA_BROKER_ID" => Some(String::new()),
            "KAFKA_CFG_BROKER_ID" => Some(" 4 ".to_string()),
            _ => None,
        };
        let Ok(Plan::Wait(w)) = parse(argv(&["zk://z:2181", "--clean-stale-broker", "auto"]), env)
        else {
            panic!()
        };
        assert_eq!(w.clean.unwrap().1.id, 4);
        let env = |k: &str| k.starts_with("KAFKA_").then(|| " ".to_string());
        match parse(argv(&["zk://z:1", "--clean-stale-broker", "auto"]), env) {
            Err(Stop::Usage(msg)) => assert!(msg.contains("found no broker id"), "{msg}"),
            other => panic!("{other:?}"),
        }
        for (args, needle) in [
            (
                &["zk://z:1", "--clean-stale-broker", "auto"][..],
                "found no broker id",
            ),
            (
                &["tcp://z:1", "--clean-stale-broker", "1"][..],
                "needs a zk:// target",
            ),
            (
                &["zk://z:1", "--clean-stale-broker", "x"][..],
                "'x' is not a broker id",
            ),
            (&["zk://z:1", "--clean-stale-broker", "-1"][..], "negative"),
            (&["zk://z:1", "--dry-run"][..], "--dry-run only"),
            (
                &[
                    "zk://z:1",
                    "--clean-stale-broker",
                    "auto",
                    "--server-properties",
                    "/nonexistent",
                ][..],
                "cannot read",
            ),
        ] {
            match parse(argv(args), |_| None) {
                Err(Stop::Usage(msg)) => assert!(msg.contains(needle), "{args:?}: {msg}"),
                other => panic!("{args:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn probe_usage_is_not_exit_2() {
        assert!(matches!(run(&["probe"]), Err(Stop::ProbeUsage(m)) if m.contains("TARGET")));
        assert!(
            matches!(run(&["probe", "x://y"]), Err(Stop::ProbeUsage(m)) if m.contains("unknown scheme"))
        );
    }

    #[test]
    fn durations_over_100_years_are_usage_errors() {
        let huge = ["18446744073709551615s", "500000000000y", "101y"];
        for flag in ["-t", "--attempt-timeout", "--grace", "--drain-delay"] {
            for value in huge {
                let msg = usage(&[flag, value, "tcp://a:1", "--", "x"]);
                assert!(msg.contains(value) && msg.contains("100y"), "{msg}");
            }
        }
        for value in huge {
            let args = ["probe", "-t", value, "tcp://a:1"];
            assert!(matches!(run(&args), Err(Stop::ProbeUsage(m)) if m.contains("100y")));
        }
        let Ok(Plan::Wait(w)) = run(&["-t", "100y", "--grace", "100y", "--", "x"]) else {
            panic!()
        };
        assert_eq!(w.timeout, Some(LONGEST));
        assert_eq!(w.supervise.grace, LONGEST);
    }

    #[test]
    fn probe_after_options_it_takes() {
        for (args, timeout) in [
            (&["-q", "probe", "tcp://a:1"][..], 5),
            (&["--verbose", "probe", "tcp://a:1"], 5),
            (&["-t", "3s", "probe", "tcp://a:1"], 3),
            (&["-t3s", "-q", "probe", "tcp://a:1"], 3),
            (&["--timeout=3s", "probe", "tcp://a:1"], 3),
        ] {
            let Ok(Plan::Probe(p)) = run(args) else {
                panic!("{args:?}: not a probe plan")
            };
            assert_eq!(p.targets.len(), 1, "{args:?}");
            assert_eq!(p.timeout, Duration::from_secs(timeout), "{args:?}");
        }
        // Options probe does not take: it must come first, and a health
        // check never exits 2.
        for args in [
            &["--grace", "1s", "probe", "tcp://a:1"][..],
            &["tcp://b:1", "probe"],
        ] {
            assert!(
                matches!(run(args), Err(Stop::ProbeUsage(m)) if m.contains("'probe' must come first")),
                "{args:?}"
            );
        }
    }

    #[test]
    fn options_found_on_argv_in_every_form() {
        let argv = |args: &[&str]| {
            std::iter::once("kwait")
                .chain(args.iter().copied())
                .map(OsString::from)
                .collect::<Vec<_>>()
        };
        let t = |args: &[&str]| on_argv(&argv(args), "timeout", Some('t'));
        assert!(t(&["-t", "soon"]));
        assert!(t(&["-tsoon"]));
        assert!(t(&["-qt", "soon"]));
        assert!(t(&["--timeout", "soon"]));
        assert!(t(&["--timeout=soon"]));
        assert!(!t(&["tcp://a:1"]));
        assert!(!t(&["--timeouts"]));
        assert!(!t(&["-q"]));
        assert!(!t(&["--", "app", "-t", "1"]));
        let q = |args: &[&str]| on_argv(&argv(args), "quiet", Some('q'));
        assert!(q(&["-q"]) && q(&["-vq"]) && q(&["--quiet"]));
        assert!(!q(&["-tq"]), "q is -t's value there");
        let grace = |args: &[&str]| on_argv(&argv(args), "grace", None);
        assert!(grace(&["--grace=soon"]) && !grace(&["-g"]));
    }

    #[test]
    fn probe_plan() {
        let Ok(Plan::Probe(p)) = run(&["probe", "kafka://localhost:9092"]) else {
            panic!("not a probe plan")
        };
        assert_eq!(p.timeout, Duration::from_secs(5));
        assert_eq!(p.targets.len(), 1);
    }

    #[test]
    fn env_targets() {
        let plan = parse(["kwait".into()], |k| {
            (k == "KWAIT_TARGETS").then(|| " tcp://a:1\n kafka://b:2 ".into())
        });
        let Ok(Plan::Wait(w)) = plan else { panic!() };
        assert_eq!(w.targets.len(), 2);
        let plan = parse(["kwait".into()], |k| {
            (k == "KWAIT_TARGETS").then(|| "bad".into())
        });
        assert!(matches!(plan, Err(Stop::Usage(m)) if m.starts_with("KWAIT_TARGETS: ")));
    }

    #[test]
    fn a_bad_target_is_named_once() {
        for args in [
            &["redis://x:1"][..],
            &["kafka://b:1?min-brokers=x"],
            &["probe", "zk://z"],
        ] {
            let msg = match run(args) {
                Err(Stop::Usage(m) | Stop::ProbeUsage(m)) => m,
                other => panic!("{args:?}: {other:?}"),
            };
            let target = args[args.len() - 1];
            assert!(msg.starts_with(&format!("target '{target}': ")), "{msg}");
            assert_eq!(msg.matches(target).count(), 1, "{msg}");
        }
    }

    #[test]
    fn usage_errors_are_one_line_and_name_the_value() {
        for (args, needle) in [
            (&["-t", "soon", "tcp://a:1"][..], "soon"),
            (&["mysql://db:1"][..], "mysql"),
            (&["kafka://k"][..], "missing port"),
            (&["kafka://k:1?min-brokers=-1"][..], "-1"),
            (&[][..], "nothing to do"),
            (&["--exec", "tcp://a:1"][..], "--exec"),
            (&["--bogus"][..], "--bogus"),
            (&["--rewrite", "TERM", "--", "x"][..], "FROM:TO"),
            (&["--rewrite", "TERM:NOPE", "--", "x"][..], "NOPE"),
            (&["--rewrite", "KILL:TERM", "--", "x"][..], "SIGKILL cannot"),
            (&["--grace", "forever", "--", "x"][..], "forever"),
        ] {
            let msg = usage(args);
            assert!(msg.contains(needle), "{args:?}: {msg}");
            assert!(!msg.contains('\n'), "{args:?}: {msg}");
        }
    }
}
