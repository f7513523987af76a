//! The command line and its `KWAIT_*` environment twins, parsed once into a
//! validated [`Plan`].
//!
//! Everything a user can get wrong is judged here, before anything connects:
//! a bad value is one line naming it and the flag, and exit 2. Command-line
//! values win over the environment (clap's `env` does exactly that).

use std::ffi::OsString;
use std::time::Duration;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::clean;
use crate::log::{self, Level};
use crate::probe::kafka::Spec as Kafka;
use crate::probe::zk::Spec as Zk;
use crate::signals::Signo;
use crate::supervise;
use crate::target::Kind;
use crate::target::Target;
use crate::topics;

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
  postgres://[USER@]HOST[:PORT][/DB][?sslmode=require|verify-full&ca=PATH]
      pg_isready's rule; with KWAIT_POSTGRES_PASSWORD, PGPASSWORD or ~/.pgpass, a login
  redis[s]://[USER@]HOST[:PORT][/DBNUM][?role=master&ca=PATH&tls-verify=false]
      PONG and loading:0; the password in KWAIT_REDIS_PASSWORD or REDISCLI_AUTH
  mysql://[USER@]HOST[:PORT][/DB][?tls=true&ca=PATH&tls-verify=false]
      the greeting and a login; the password in KWAIT_MYSQL_PASSWORD or MYSQL_PWD
  amqp[s]://[USER@]HOST[:PORT][/VHOST][?ca=PATH&tls-verify=false]
      Connection.OpenOk for the vhost; the password in KWAIT_AMQP_PASSWORD

Exit codes: 0 ready, 124 timed out, 1 failed, 2 usage error,
  126/127 COMMAND not executable/not found, otherwise COMMAND's own status.";

const PROBE_ABOUT: &str = "One check of each TARGET, for Docker HEALTHCHECK and Kubernetes exec probes: exit 0 when all are ready, 1 otherwise.";

#[derive(Parser, Debug)]
#[command(
    name = "kwait",
    version,
    about = "Wait until Kafka, ZooKeeper, PostgreSQL, MySQL, Redis, RabbitMQ, TCP and HTTP dependencies are really ready, then run and supervise COMMAND.",
    override_usage = "kwait [OPTIONS] [TARGET]... [-- COMMAND [ARG]...]\n       kwait probe [OPTIONS] TARGET...",
    after_help = EXAMPLES,
    disable_help_subcommand = true
)]
struct Cli {
    #[command(subcommand)]
    probe: Option<Mode>,

    /// What to wait for; all at once. Also KWAIT_TARGETS (whitespace-separated)
    #[arg(value_name = "TARGET")]
    targets: Vec<String>,

    #[command(flatten)]
    common: Common,

    /// Deadline of one attempt (connect, requests, answers) inside the overall one [env: KWAIT_ATTEMPT_TIMEOUT]
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true,
          default_value = "5s", value_parser = positive_duration)]
    attempt_timeout: Duration,

    /// Replace kwait with COMMAND instead of supervising it (when another init is PID 1) [env: KWAIT_EXEC]
    #[arg(long)]
    exec: bool,

    /// Time the app has to exit after the stop signal, before SIGKILL [env: KWAIT_GRACE]
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true,
          default_value = "10s", value_parser = duration)]
    grace: Duration,

    /// On SIGTERM/SIGINT, keep the app running this long before forwarding [env: KWAIT_DRAIN_DELAY]
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true,
          default_value = "0s", value_parser = duration)]
    drain_delay: Duration,

    /// Forward signal FROM as TO (e.g. TERM:QUIT); TO of 0 drops FROM; repeatable [env: KWAIT_REWRITE]
    #[arg(long, value_name = "FROM:TO",
          value_parser = rewrite, value_delimiter = ',')]
    rewrite: Vec<(Signo, Signo)>,

    /// Send forwarded signals to the app's whole process group [env: KWAIT_GROUP]
    #[arg(long)]
    group: bool,

    /// Before COMMAND, remove this broker id's stale ZooKeeper registration
    /// (needs one zk:// target); `auto` reads KAFKA_BROKER_ID,
    /// KAFKA_CFG_BROKER_ID or broker.id from --server-properties [env: KWAIT_CLEAN_STALE_BROKER]
    #[arg(long, value_name = "ID|auto", allow_hyphen_values = true)]
    clean_stale_broker: Option<String>,

    /// Kafka's server.properties, for --clean-stale-broker auto [env: KWAIT_SERVER_PROPERTIES]
    #[arg(long, value_name = "FILE")]
    server_properties: Option<std::path::PathBuf>,

    /// With --clean-stale-broker or --create-topics: say what would change, change nothing [env: KWAIT_DRY_RUN]
    #[arg(long)]
    dry_run: bool,

    /// Create these topics where missing, before COMMAND (one kafka:// target):
    /// NAME:PARTITIONS:REPLICATION[:POLICY|:KEY=VALUE;...]; repeatable [env: KWAIT_CREATE_TOPICS]
    #[arg(long, value_name = "SPEC[,SPEC...]")]
    create_topics: Vec<String>,

    /// With --create-topics: an existing topic unlike its spec is fatal [env: KWAIT_STRICT_TOPICS]
    #[arg(long)]
    strict_topics: bool,

    /// The program to run once everything is ready
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

/// Options both modes share: before or after `probe` (`kwait -q probe X`).
#[derive(Args, Debug)]
struct Common {
    /// Overall deadline for readiness, 0 waits forever (default 60s) [env: KWAIT_TIMEOUT];
    /// with probe: of the whole check (default 5s) [env: KWAIT_PROBE_TIMEOUT]
    #[arg(short, long, value_name = "DURATION", allow_hyphen_values = true,
          value_parser = duration, global = true)]
    timeout: Option<Duration>,

    /// Print errors only [env: KWAIT_QUIET]
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,

    /// Print every attempt's result too [env: KWAIT_VERBOSE]
    #[arg(short, long, global = true)]
    verbose: bool,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// One check of each TARGET, for Docker HEALTHCHECK and Kubernetes exec probes
    #[command(
        override_usage = "kwait probe [OPTIONS] TARGET...",
        about = PROBE_ABOUT
    )]
    Probe(ProbeArgs),
}

#[derive(Args, Debug)]
struct ProbeArgs {
    /// What to check
    #[arg(value_name = "TARGET")]
    targets: Vec<String>,

    /// Nothing: a probe runs no COMMAND (refused with a message)
    #[arg(last = true, hide = true)]
    command: Vec<OsString>,
}

/// `kwait probe ...` alone (probe standing for the program's name): the
/// same options and help as the `probe` subcommand, without building
/// kwait's whole command line for every health check.
#[derive(Parser, Debug)]
#[command(
    name = "kwait probe",
    override_usage = "kwait probe [OPTIONS] TARGET...",
    about = PROBE_ABOUT
)]
struct ProbeCli {
    #[command(flatten)]
    args: ProbeArgs,

    #[command(flatten)]
    common: Common,
}

/// The environment twins of options: the variable, the option's clap id,
/// and whether it is a flag (a boolean: `1`/`yes`/`true` sets it,
/// `0`/`no`/`false`/`off` leaves it unset). A twin counts only where its
/// option is not on the command line, and an empty value (compose's
/// `${UNSET}`) counts as unset. `KWAIT_TIMEOUT` is the wait's deadline and
/// `KWAIT_PROBE_TIMEOUT` the probe's, so that a start-up deadline set in
/// an image can neither change nor break its health check.
const WAIT_TWINS: &[(&str, &str, bool)] = &[
    ("KWAIT_TIMEOUT", "timeout", false),
    ("KWAIT_ATTEMPT_TIMEOUT", "attempt_timeout", false),
    ("KWAIT_EXEC", "exec", true),
    ("KWAIT_GRACE", "grace", false),
    ("KWAIT_DRAIN_DELAY", "drain_delay", false),
    ("KWAIT_REWRITE", "rewrite", false),
    ("KWAIT_GROUP", "group", true),
    ("KWAIT_CLEAN_STALE_BROKER", "clean_stale_broker", false),
    ("KWAIT_SERVER_PROPERTIES", "server_properties", false),
    ("KWAIT_DRY_RUN", "dry_run", true),
    ("KWAIT_CREATE_TOPICS", "create_topics", false),
    ("KWAIT_STRICT_TOPICS", "strict_topics", true),
    ("KWAIT_QUIET", "quiet", true),
    ("KWAIT_VERBOSE", "verbose", true),
];
const PROBE_TWINS: &[(&str, &str, bool)] = &[
    ("KWAIT_PROBE_TIMEOUT", "timeout", false),
    ("KWAIT_QUIET", "quiet", true),
    ("KWAIT_VERBOSE", "verbose", true),
];

/// The variables whose values were passed as options, each with the
/// option's long name: for "the value came from ..." in an error.
type FromEnv = Vec<(&'static str, String)>;

/// What kwait was asked to do, validated. Made once, moved once: its
/// size does not matter.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
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
    /// `--clean-stale-broker`: the ensemble (the one zk:// target) and what to clean.
    pub clean: Option<(Zk, clean::Request)>,
    /// `--create-topics`: the cluster (the one kafka:// target) and what to create.
    pub topics: Option<(Kafka, topics::Request)>,
    /// Options that have no effect as given, each a line saying why: the
    /// caller prints them once.
    pub warnings: Vec<String>,
}

#[derive(Debug)]
pub struct Probe {
    pub targets: Vec<Target>,
    pub timeout: Duration,
    /// As [`Wait::warnings`].
    pub warnings: Vec<String>,
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

/// The wait's deadline when neither -t nor KWAIT_TIMEOUT gives one.
const WAIT_TIMEOUT: Duration = Duration::from_secs(60);
/// The probe's.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// clap's defaults for `--grace` and `--attempt-timeout` (their
/// `default_value`s), which [`bare`] plans with.
const GRACE: Duration = Duration::from_secs(10);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// The two commonest command lines, when no `KWAIT_*` variable is set
/// (`kwait_vars`: whether one is), planned without clap: a health check's
/// `kwait probe [-t D] [-q|-v] TARGET...` ([`quick_probe`]) and tini's
/// usage, `kwait [supervision options] -- COMMAND` ([`bare`]). Building
/// clap's parser costs more than such a run does otherwise: its pages were
/// the supervisor's peak memory, and it ran a third of a probe's
/// instructions (callgrind, a probe of the 3-broker mock: 328K -> 218K).
/// `None` for anything else, a value their parsers refuse or an option
/// given twice included: [`parse`] decides, and says what is wrong. Tests
/// hold both to clap's plans.
pub fn quick(
    args: &[OsString],
    kwait_vars: bool,
    env: impl Fn(&str) -> Option<OsString>,
) -> Option<Result<Plan, Stop>> {
    if kwait_vars {
        return None;
    }
    if args.get(1).is_some_and(|a| a == "probe") {
        return quick_probe(args, &env);
    }
    bare(args).map(|wait| Ok(Plan::Wait(wait)))
}

/// `kwait probe [-t D] [-q|-v] TARGET...`, each option at most once.
fn quick_probe(
    args: &[OsString],
    env: &impl Fn(&str) -> Option<OsString>,
) -> Option<Result<Plan, Stop>> {
    let mut common = Common {
        timeout: None,
        quiet: false,
        verbose: false,
    };
    let mut targets = Vec::new();
    let mut words = args.get(2..)?.iter();
    while let Some(word) = words.next() {
        match word.to_str()? {
            "-t" | "--timeout" if common.timeout.is_none() => {
                common.timeout = Some(duration(words.next()?.to_str()?).ok()?);
            }
            "-q" | "--quiet" if !common.quiet && !common.verbose => common.quiet = true,
            "-v" | "--verbose" if !common.verbose && !common.quiet => common.verbose = true,
            target if !target.is_empty() && !target.starts_with('-') => {
                targets.push(target.to_string());
            }
            _ => return None,
        }
    }
    if targets.is_empty() {
        return None;
    }
    let args = ProbeArgs {
        targets,
        command: Vec::new(),
    };
    Some(probe_plan(&common, &args, &[], env))
}

/// `kwait [--grace D] [--drain-delay D] [--group] [--rewrite F:T]... --
/// COMMAND [ARG]...`: nothing to wait for (VmHWM while supervising, right
/// after the binary is copied: 1,060 kB planned by clap, 740 kB without).
fn bare(args: &[OsString]) -> Option<Wait> {
    let split = args.iter().position(|a| a == "--")?;
    let command = args.get(split + 1..).filter(|c| !c.is_empty())?.to_vec();
    let mut supervise = supervise::Options {
        group: false,
        grace: GRACE,
        drain_delay: Duration::ZERO,
        rewrites: Vec::new(),
    };
    let (mut grace, mut delay) = (false, false);
    let mut words = args.get(1..split)?.iter();
    while let Some(word) = words.next() {
        let mut value = || words.next()?.to_str();
        match word.to_str()? {
            "--grace" if !grace => {
                grace = true;
                supervise.grace = duration(value()?).ok()?;
            }
            "--drain-delay" if !delay => {
                delay = true;
                supervise.drain_delay = duration(value()?).ok()?;
            }
            "--group" if !supervise.group => supervise.group = true,
            "--rewrite" => {
                for pair in value()?.split(',') {
                    let (from, to) = rewrite(pair).ok()?;
                    if supervise
                        .rewrites
                        .iter()
                        .any(|(earlier, _)| *earlier == from)
                    {
                        return None;
                    }
                    supervise.rewrites.push((from, to));
                }
            }
            _ => return None,
        }
    }
    Some(Wait {
        targets: Vec::new(),
        timeout: Some(WAIT_TIMEOUT),
        attempt_timeout: ATTEMPT_TIMEOUT,
        command,
        exec: false,
        supervise,
        clean: None,
        topics: None,
        warnings: Vec::new(),
    })
}

/// Parses `argv`; `env` is the only way to the environment: each option's
/// twin ([`WAIT_TWINS`]), `KWAIT_TARGETS`, `KAFKA_BROKER_ID` and
/// `KAFKA_CFG_BROKER_ID`. A variable set to something that is not UTF-8
/// text is a usage error naming it, never a silent "unset".
pub fn parse<I: IntoIterator<Item = OsString>>(
    argv: I,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<Plan, Stop> {
    // main() parses first thing: as good as the process's start.
    let kwait_started = std::time::Instant::now();
    let argv: Vec<OsString> = argv.into_iter().collect();
    // A target always has a scheme, so a bare `probe` word before `--` is
    // the mode (clap places it: `kwait -q probe X` is probe mode too).
    let probing = argv
        .iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "probe");
    let usage = |message: String| {
        if probing {
            Stop::ProbeUsage(message)
        } else {
            Stop::Usage(message)
        }
    };
    let var = |name: &str| env_text(&env, name, probing);

    // The twins of the options the command line does not give, as
    // options of their own (`--timeout=VALUE`), and where each came from.
    let twin_args = |given: &clap::ArgMatches,
                     command: &clap::Command,
                     twins: &[(&'static str, &str, bool)]|
     -> Result<(Vec<OsString>, FromEnv), Stop> {
        let mut args: Vec<OsString> = Vec::new();
        let mut from_env = Vec::new();
        for &(name, id, flag) in twins {
            let on_argv = given.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
            let Some(value) = var(name)? else { continue };
            if on_argv {
                continue;
            }
            let long = command
                .get_arguments()
                .find(|a| a.get_id() == id)
                .and_then(|a| a.get_long())
                .unwrap_or(id)
                .to_string();
            if flag {
                if !falsey(&value) {
                    args.push(format!("--{long}").into());
                    from_env.push((name, long));
                }
            } else {
                args.push(format!("--{long}={value}").into());
                from_env.push((name, long));
            }
        }
        Ok((args, from_env))
    };

    if argv.get(1).is_some_and(|a| a == "probe") {
        // `kwait probe ...`, the form health checks run: a parser of
        // probe's own options alone, far smaller than kwait's whole
        // command line (building and parsing that was 60 % of a probe's
        // instructions, and most of its heap; callgrind). `probe` stands
        // where clap expects the program's name.
        let mut command = ProbeCli::command();
        let probe_argv = &argv[1..];
        let cli_only = command
            .try_get_matches_from_mut(probe_argv)
            .map_err(|err| stop(&err, &[], true))?;
        let (twins, from_env) = twin_args(&cli_only, &command, PROBE_TWINS)?;
        let cli = if twins.is_empty() {
            ProbeCli::from_arg_matches(&cli_only)
        } else {
            let mut full = vec![probe_argv[0].clone()];
            full.extend(twins);
            full.extend(probe_argv[1..].iter().cloned());
            command
                .try_get_matches_from_mut(&full)
                .and_then(|matches| ProbeCli::from_arg_matches(&matches))
        }
        .map_err(|err| stop(&err, &from_env, true))?;
        return probe_plan(&cli.common, &cli.args, &from_env, &env);
    }

    // Once for the command line alone, to know which options it gives;
    // then again with the twins of the others put before it, if any are
    // set. One Command, built once.
    let mut command = Cli::command();
    let cli_only = command
        .try_get_matches_from_mut(&argv)
        .map_err(|err| stop(&err, &[], probing))?;
    let (twins, given) = match cli_only.subcommand_matches("probe") {
        Some(sub) => {
            // Only the shared options (the `Common` group) may come
            // before `probe`.
            let shared = ["timeout", "quiet", "verbose", "Common"];
            let wait_option = cli_only.ids().any(|id| {
                !shared.contains(&id.as_str())
                    && cli_only.value_source(id.as_str())
                        == Some(clap::parser::ValueSource::CommandLine)
            });
            if wait_option {
                return Err(probe_first());
            }
            (PROBE_TWINS, sub)
        }
        None => (WAIT_TWINS, &cli_only),
    };
    let (twins, from_env) = twin_args(given, &command, twins)?;
    let cli = if twins.is_empty() {
        Cli::from_arg_matches(&cli_only)
    } else {
        let mut full: Vec<OsString> = vec![argv[0].clone()];
        if probing {
            // After `probe`: its own options there.
            let at = argv.iter().position(|a| a == "probe").unwrap_or(1);
            full.extend(argv[1..=at].iter().cloned());
            full.extend(twins);
            full.extend(argv[at + 1..].iter().cloned());
        } else {
            full.extend(twins);
            full.extend(argv[1..].iter().cloned());
        }
        command
            .try_get_matches_from_mut(&full)
            .and_then(|matches| Cli::from_arg_matches(&matches))
    }
    .map_err(|err| stop(&err, &from_env, probing))?;
    if let Some(Mode::Probe(args)) = &cli.probe {
        // `kwait -q probe X`: the shared options before `probe`.
        return probe_plan(&cli.common, args, &from_env, &env);
    }
    set_level(&cli.common);
    let help = if probing {
        "kwait probe --help"
    } else {
        "kwait --help"
    };
    let mut warnings = Vec::new();
    // Targets are parsed here, not by clap: once, with their warnings
    // returned rather than printed from inside a value parser.
    let parse_targets = |raw: &[String], warnings: &mut Vec<String>| {
        raw.iter()
            .map(|t| {
                if probing && t == "probe" {
                    // `kwait tcp://b:1 probe`.
                    return Err(probe_first());
                }
                Target::parse(t, &env, warnings).map_err(|e| usage(one_line(&e, help)))
            })
            .collect::<Result<Vec<Target>, Stop>>()
    };
    let mut targets = parse_targets(&cli.targets, &mut warnings)?;
    if let Some(list) = var("KWAIT_TARGETS")? {
        if targets.is_empty() {
            for word in list.split_whitespace() {
                targets.push(
                    Target::parse(word, &env, &mut warnings).map_err(|e: String| {
                        let hint = if word.matches("://").count() > 1 && word.contains(',') {
                            " (separate targets with spaces, not commas)"
                        } else {
                            ""
                        };
                        Stop::Usage(format!("KWAIT_TARGETS: {e}{hint}"))
                    })?,
                );
            }
        } else {
            warnings.push(
                "KWAIT_TARGETS is set but not used: the command line names the targets, and those win"
                    .to_string(),
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
    let source = |id: &str| -> Option<&str> {
        let long = id.replace('_', "-");
        from_env
            .iter()
            .find(|(_, l)| *l == long)
            .map(|(name, _)| *name)
    };
    // An option that changes nothing is a mistake the user should hear of:
    // refused when it is on the command line, a warning when it comes from
    // an environment an image may set for every start.
    let mut no_effect = |id: &str, given: bool, why: &str| -> Result<(), Stop> {
        if !given {
            return Ok(());
        }
        let flag = format!("--{}", id.replace('_', "-"));
        match source(id) {
            Some(name) => {
                warnings.push(format!("{name} ({flag}) has no effect: {why}"));
                Ok(())
            }
            None => Err(Stop::Usage(format!("{flag} has no effect: {why}"))),
        }
    };
    let set = |id: &str| {
        cli_only.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
            || source(id).is_some()
    };
    if cli.exec {
        let why = "with --exec kwait is replaced by COMMAND, so nothing supervises or drains it";
        for id in ["grace", "drain_delay", "rewrite", "group"] {
            no_effect(id, set(id), why)?;
        }
    } else if cli.command.is_empty() {
        let why = "there is no COMMAND to supervise";
        for id in ["grace", "drain_delay", "rewrite", "group"] {
            no_effect(id, set(id), why)?;
        }
    }
    let auto = cli.clean_stale_broker.as_deref() == Some("auto");
    no_effect(
        "server_properties",
        cli.server_properties.is_some() && !auto,
        "it is read only by --clean-stale-broker auto",
    )?;
    no_effect(
        "strict_topics",
        cli.strict_topics && cli.create_topics.is_empty(),
        "it applies only to --create-topics",
    )?;
    let clean = match &cli.clean_stale_broker {
        None if cli.dry_run && cli.create_topics.is_empty() => {
            return Err(Stop::Usage(
                "--dry-run only applies to --clean-stale-broker and --create-topics".into(),
            ))
        }
        None => None,
        Some(value) => {
            let zks: Vec<usize> = targets
                .iter()
                .enumerate()
                .filter(|(_, t)| matches!(t.kind, Kind::Zk(_)))
                .map(|(i, _)| i)
                .collect();
            let at = match zks[..] {
                [] => {
                    return Err(Stop::Usage(
                        "--clean-stale-broker needs a zk:// target: the ZooKeeper that holds the registration".into(),
                    ))
                }
                [at] => at,
                _ => {
                    let named: Vec<String> = zks.iter().map(|&i| targets[i].to_string()).collect();
                    return Err(Stop::Usage(format!(
                        "--clean-stale-broker needs exactly one zk:// target, the ensemble that holds this \
                         broker's registration; there are {}: {} (wait for the others with tcp:// or in another step)",
                        zks.len(),
                        named.join(" ")
                    )));
                }
            };
            let Kind::Zk(zk) = &mut targets[at].kind else {
                return Err(Stop::Usage(
                    "--clean-stale-broker needs a zk:// target".into(),
                ));
            };
            // Kafka creates its chroot on its first start: the broker this
            // cleans for must not wait for it (src/probe/zk.rs).
            zk.missing_chroot_ok = true;
            let zk = zk.clone();
            let id = broker_id(value, cli.server_properties.as_deref(), &var)?;
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
    let topics = if cli.create_topics.is_empty() {
        None
    } else {
        let wanted = topics::parse(&cli.create_topics).map_err(|e| {
            Stop::Usage(match source("create_topics") {
                Some(name) => format!("{e} (the value came from {name})"),
                None => e,
            })
        })?;
        let kafkas: Vec<usize> = targets
            .iter()
            .enumerate()
            .filter(|(_, t)| matches!(t.kind, Kind::Kafka(_)))
            .map(|(i, _)| i)
            .collect();
        let [at] = kafkas[..] else {
            return Err(Stop::Usage(format!(
                "--create-topics needs exactly one kafka:// target, the cluster to create the topics in; \
                 there are {} (for another cluster, chain a second kwait before COMMAND)",
                kafkas.len()
            )));
        };
        let Kind::Kafka(kafka) = &mut targets[at].kind else {
            return Err(Stop::Usage("--create-topics: not a kafka:// target".into()));
        };
        // The topics kwait creates are checked once created: the wait
        // before must not wait for them (topics=orders beside orders:3:1).
        kafka
            .topics
            .retain(|t| !wanted.iter().any(|w| w.name == *t));
        Some((
            kafka.clone(),
            topics::Request {
                topics: wanted,
                strict: cli.strict_topics,
                dry_run: cli.dry_run,
            },
        ))
    };
    for (i, (from, _)) in cli.rewrite.iter().enumerate() {
        if cli.rewrite[..i].iter().any(|(earlier, _)| earlier == from) {
            return Err(Stop::Usage(format!(
                "--rewrite: {from} is rewritten twice; keep one FROM:TO for it"
            )));
        }
    }
    let timeout = cli.common.timeout.unwrap_or(WAIT_TIMEOUT);
    Ok(Plan::Wait(Wait {
        targets,
        timeout: (!timeout.is_zero()).then_some(timeout),
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
        topics,
        warnings,
    }))
}

/// A variable's text: `None` when unset or empty (compose's `${UNSET}`), a
/// usage error naming it when it is not UTF-8.
fn env_text(
    env: &impl Fn(&str) -> Option<OsString>,
    name: &str,
    probing: bool,
) -> Result<Option<String>, Stop> {
    match env(name) {
        None => Ok(None),
        Some(value) => match value.into_string() {
            Ok(text) if text.trim().is_empty() => Ok(None),
            Ok(text) => Ok(Some(text)),
            Err(_) => {
                let message =
                    format!("{name} is set to bytes that are not UTF-8 text: fix or unset it");
                Err(if probing {
                    Stop::ProbeUsage(message)
                } else {
                    Stop::Usage(message)
                })
            }
        },
    }
}

/// `kwait probe`'s plan from its parsed options (`from_env`: the variables
/// whose values were passed as options). Its usage errors are exit 1, not
/// 2: Docker reserves a health check's 2.
fn probe_plan(
    common: &Common,
    args: &ProbeArgs,
    from_env: &[(&str, String)],
    env: &impl Fn(&str) -> Option<OsString>,
) -> Result<Plan, Stop> {
    set_level(common);
    let mut warnings = Vec::new();
    let mut targets = Vec::with_capacity(args.targets.len());
    for raw in &args.targets {
        if raw == "probe" {
            // `kwait probe tcp://b:1 probe`.
            return Err(probe_first());
        }
        targets.push(
            Target::parse(raw, env, &mut warnings)
                .map_err(|e| Stop::ProbeUsage(one_line(&e, "kwait probe --help")))?,
        );
    }
    if !args.command.is_empty() {
        return Err(Stop::ProbeUsage(
            "kwait probe runs no COMMAND: it checks each TARGET once and exits 0 or 1 \
             (to wait and then run COMMAND: kwait TARGET... -- COMMAND)"
                .into(),
        ));
    }
    if targets.is_empty() {
        let hint = if env_text(env, "KWAIT_TARGETS", true)?.is_some() {
            " (kwait probe does not read KWAIT_TARGETS: a health check names what it checks)"
        } else {
            ""
        };
        return Err(Stop::ProbeUsage(format!(
            "kwait probe needs a TARGET: kwait probe [OPTIONS] TARGET...{hint} (see kwait probe --help)"
        )));
    }
    let timeout = common.timeout.unwrap_or(PROBE_TIMEOUT);
    if timeout.is_zero() {
        let source = from_env
            .iter()
            .find(|(_, long)| long == "timeout")
            .map_or(String::new(), |(name, _)| {
                format!(" (the value came from {name})")
            });
        return Err(Stop::ProbeUsage(format!(
            "invalid value '0' for '--timeout <DURATION>': must be more than 0{source} (see kwait probe --help)"
        )));
    }
    Ok(Plan::Probe(Probe {
        targets,
        timeout,
        warnings,
    }))
}

/// clap's rule for a boolean's value (`FalseyValueParser`): these are false,
/// anything else true.
fn falsey(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "n" | "no" | "f" | "false" | "off" | "0"
    )
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

/// The usage error for `probe` anywhere but first (`kwait --grace 1s probe
/// X`, `kwait tcp://b:1 probe`): probe's own, so a health check exits 1.
fn probe_first() -> Stop {
    Stop::ProbeUsage(
        "'probe' must come first: kwait probe [OPTIONS] TARGET... (see kwait probe --help)".into(),
    )
}

/// Turns a clap error into help text to print, or a one-line usage error
/// that says where a bad value came from when it was not on the command
/// line (`from_env`: the variables whose values kwait passed as options).
fn stop(err: &clap::Error, from_env: &[(&str, String)], probing: bool) -> Stop {
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        return Stop::Print(err.to_string());
    }
    // `kwait --grace 1s probe X` took `probe` for a target, or refused it
    // beside a wait option. A health check must not exit 2 (Docker reserves
    // it), so this is probe's usage error.
    let probe_word = matches!(err.get(ContextKind::InvalidValue), Some(ContextValue::String(v)) if v == "probe")
        || matches!(err.get(ContextKind::InvalidSubcommand), Some(ContextValue::String(v)) if v == "probe")
        || (probing
            && err.kind() == ErrorKind::ArgumentConflict
            && err.to_string().contains("'probe'"));
    if probe_word {
        return probe_first();
    }
    let mut rendered = err.to_string();
    if err.kind() == ErrorKind::UnknownArgument {
        if let Some(ContextValue::String(unknown)) = err.get(ContextKind::InvalidArg) {
            if let Some(long) = similar(unknown) {
                // clap's own "did you mean" (its `suggestions` feature)
                // costs the binary 8 KB; this is its rule, in brief.
                rendered = format!(
                    "{}; a similar argument exists: '--{long}'",
                    rendered.lines().next().unwrap_or_default()
                );
            }
        }
    }
    let mut message = one_line(
        &rendered,
        if probing {
            "kwait probe --help"
        } else {
            "kwait --help"
        },
    );
    for (name, long) in from_env {
        let named =
            message.contains(&format!("'--{long} ")) || message.contains(&format!("'--{long}'"));
        if named {
            message.push_str(&format!(" (the value came from {name})"));
        }
    }
    if probing {
        Stop::ProbeUsage(message)
    } else {
        Stop::Usage(message)
    }
}

/// The option a mistyped `--flag` most likely meant: the long name at the
/// smallest edit distance, when that is at most a third of its length.
fn similar(unknown: &str) -> Option<String> {
    let typed = unknown.strip_prefix("--")?.split('=').next()?;
    Cli::command()
        .get_arguments()
        .filter_map(|a| a.get_long())
        .map(|long| (distance(typed, long), long))
        .filter(|(d, long)| *d > 0 && *d * 3 <= long.len().max(3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, long)| long.to_string())
}

/// Levenshtein distance, one row at a time.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// clap renders errors over several lines (usage, tips); kwait's contract is
/// one line naming the bad value.
fn one_line(rendered: &str, help: &str) -> String {
    let kept = rendered
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        // clap's "did you mean" is kept; its other tips (`-- --flag`)
        // would point at COMMAND.
        .filter(|l| !l.is_empty() && (!l.starts_with("tip:") || l.contains("similar")))
        .map(|l| l.strip_prefix("tip: ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join(" ");
    let kept = kept.strip_prefix("error: ").unwrap_or(&kept);
    // clap echoes the bad value; a password in it must not reach the log.
    let kept = crate::secret::redact(kept);
    format!("{kept} (see {help})")
}

/// The longest duration kwait takes (100 years of 365.25 days): far beyond any
/// real deadline, and far enough below what `Instant + Duration` can hold
/// that no deadline computed from it overflows (which would panic PID 1).
const LONGEST: Duration = Duration::from_secs(100 * 31_557_600);

fn duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        // wait-for-it's `-t 10` means seconds; kwait wants the unit said.
        return Err(format!(
            "a number without a unit: write {s}s (or {s}ms, {s}m)"
        ));
    }
    match parse_duration(s) {
        Some(Some(d)) if d <= LONGEST => Ok(d),
        Some(_) => Err("more than 100y, the longest kwait takes".into()),
        None => Err("not a duration; write e.g. 500ms, 30s or 1m30s".into()),
    }
}

/// humantime's duration syntax (numbers, each with a unit, optionally
/// spaced: `1h 30m`, `90s`, `2days`), without the crate: `None` for
/// anything else, `Some(None)` when it overflows.
fn parse_duration(s: &str) -> Option<Option<Duration>> {
    let mut nanos: u128 = 0;
    let mut rest = s.trim_start();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let number: u128 = match rest[..digits].parse() {
            Ok(n) => n,
            Err(_) => return Some(None),
        };
        rest = rest[digits..].trim_start();
        let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit: u128 = match &rest[..letters] {
            "nsec" | "ns" => 1,
            "usec" | "us" => 1_000,
            "msec" | "ms" => 1_000_000,
            "seconds" | "second" | "sec" | "s" => 1_000_000_000,
            "minutes" | "minute" | "min" | "m" => 60_000_000_000,
            "hours" | "hour" | "hr" | "h" => 3_600_000_000_000,
            "days" | "day" | "d" => 86_400_000_000_000,
            "weeks" | "week" | "w" => 604_800_000_000_000,
            "months" | "month" | "M" => 2_630_016_000_000_000,
            "years" | "year" | "y" => 31_557_600_000_000_000,
            _ => return None,
        };
        rest = rest[letters..].trim_start();
        match number.checked_mul(unit).and_then(|n| nanos.checked_add(n)) {
            Some(n) if n <= u128::from(u64::MAX) * 1_000_000_000 => nanos = n,
            _ => return Some(None),
        }
    }
    let secs = u64::try_from(nanos / 1_000_000_000).ok();
    Some(secs.map(|s| Duration::new(s, (nanos % 1_000_000_000) as u32)))
}

/// The broker id for `--clean-stale-broker ID|auto`.
fn broker_id(
    value: &str,
    properties: Option<&std::path::Path>,
    var: &impl Fn(&str) -> Result<Option<String>, Stop>,
) -> Result<i32, Stop> {
    // Compose's `${KAFKA_BROKER_ID}` of an unset variable is an empty one:
    // empty (or blank) means unset (`var`), and the next source decides.
    let (raw, source) = if value == "auto" {
        if let Some(id) = var("KAFKA_BROKER_ID")? {
            (id, "KAFKA_BROKER_ID".to_string())
        } else if let Some(id) = var("KAFKA_CFG_BROKER_ID")? {
            (id, "KAFKA_CFG_BROKER_ID".to_string())
        } else if let Some(path) = properties {
            let text = clean::read_server_properties(path).map_err(Stop::Usage)?;
            let id = clean::broker_id_from_properties(&text)
                .ok_or_else(|| {
                    format!(
                        "--clean-stale-broker auto: no broker.id in --server-properties {}",
                        path.display()
                    )
                })
                .map_err(Stop::Usage)?;
            (id, format!("broker.id in {}", path.display()))
        } else {
            return Err(Stop::Usage(
                "--clean-stale-broker auto found no broker id: set KAFKA_BROKER_ID or \
                 KAFKA_CFG_BROKER_ID (an empty one counts as unset), or give \
                 --server-properties FILE with broker.id"
                    .into(),
            ));
        }
    } else {
        (value.to_string(), "--clean-stale-broker".to_string())
    };
    match raw.trim().parse::<i32>() {
        Ok(id) if id >= 0 => Ok(id),
        Ok(_) => Err(Stop::Usage(format!(
            "{source} is {raw}: a negative broker.id makes Kafka generate one, so there is no fixed registration to clean"
        ))),
        Err(_) => Err(Stop::Usage(format!(
            "{source}: '{raw}' is not a broker id (a whole number, or auto)"
        ))),
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

    /// `kwait [supervision options] -- COMMAND` without a parser: the very
    /// plan clap makes; anything else is left to clap.
    #[test]
    fn bare_command_is_clap_s_plan() {
        let same: &[&[&str]] = &[
            &["--", "app", "--grace", "-v"],
            &[
                "--grace",
                "3s",
                "--drain-delay",
                "1m30s",
                "--group",
                "--",
                "nginx",
            ],
            &[
                "--rewrite",
                "TERM:QUIT,HUP:0",
                "--rewrite",
                "USR1:USR2",
                "--",
                "a",
            ],
            &["--group", "--grace", "100y", "--", "a"],
        ];
        for args in same {
            let argv: Vec<OsString> = std::iter::once("kwait")
                .chain(args.iter().copied())
                .map(OsString::from)
                .collect();
            let Some(quick) = bare(&argv) else {
                panic!("{args:?}: not taken without clap")
            };
            let Ok(Plan::Wait(full)) = run(args) else {
                panic!("{args:?}: clap made no wait plan")
            };
            assert!(quick.targets.is_empty() && full.targets.is_empty());
            assert_eq!(quick.timeout, full.timeout);
            assert_eq!(quick.attempt_timeout, full.attempt_timeout);
            assert_eq!(quick.command, full.command);
            assert_eq!(quick.exec, full.exec);
            let (b, f) = (&quick.supervise, &full.supervise);
            assert_eq!(
                (b.group, b.grace, b.drain_delay),
                (f.group, f.grace, f.drain_delay),
                "{args:?}"
            );
            assert_eq!(b.rewrites, f.rewrites, "{args:?}");
            assert!(quick.clean.is_none() && full.clean.is_none());
            assert!(quick.topics.is_none() && full.topics.is_none());
            assert_eq!(quick.warnings, full.warnings);
            assert!(
                super::quick(&argv, true, |_| None).is_none(),
                "a KWAIT_ variable: clap's"
            );
        }
        let to_clap: &[&[&str]] = &[
            &["--"],
            &["app"],
            &["tcp://a:1", "--", "a"],
            &["--grace=1s", "--", "a"],
            &["--grace", "1s", "--grace", "2s", "--", "a"],
            &["--group", "--group", "--", "a"],
            &["--grace", "10", "--", "a"],
            &["--rewrite", "TERM:QUIT,TERM:HUP", "--", "a"],
            &["--rewrite", "TERM:QUIT,", "--", "a"],
            &["--exec", "--", "a"],
            &["-q", "--", "a"],
            &["--grace", "--", "a"],
        ];
        for args in to_clap {
            let argv: Vec<OsString> = std::iter::once("kwait")
                .chain(args.iter().copied())
                .map(OsString::from)
                .collect();
            assert!(bare(&argv).is_none(), "{args:?}");
        }
    }

    /// `kwait probe [-t D] [-q|-v] TARGET...` without clap: clap's plan,
    /// its errors included; anything else is left to clap.
    #[test]
    fn quick_probe_is_clap_s_plan() {
        let argv = |args: &[&str]| -> Vec<OsString> {
            std::iter::once("kwait")
                .chain(args.iter().copied())
                .map(OsString::from)
                .collect()
        };
        let same: &[&[&str]] = &[
            &["probe", "kafka://localhost:9092"],
            &["probe", "-t", "2s", "-q", "tcp://a:1", "zk://z:2181/kafka"],
            &["probe", "tcp://a:1", "--verbose", "--timeout", "1m"],
            &["probe", "postgres://app@db/app?sslmode=require"],
        ];
        for args in same {
            let Some(Ok(Plan::Probe(quick))) = quick(&argv(args), false, |_| None) else {
                panic!("{args:?}: not planned without clap")
            };
            let Ok(Plan::Probe(full)) = run(args) else {
                panic!("{args:?}: clap made no probe plan")
            };
            assert_eq!(quick.timeout, full.timeout, "{args:?}");
            assert_eq!(quick.warnings, full.warnings, "{args:?}");
            let names = |p: &Probe| {
                p.targets
                    .iter()
                    .map(|t| format!("{t:?}"))
                    .collect::<Vec<_>>()
            };
            assert_eq!(names(&quick), names(&full), "{args:?}");
        }
        // The same usage errors, word for word.
        let errors: &[&[&str]] = &[
            &["probe", "nosuch://x"],
            &["probe", "-t", "0", "tcp://a:1"],
            &["probe", "tcp://a:1", "probe"],
        ];
        for args in errors {
            let Some(Err(Stop::ProbeUsage(quick))) = quick(&argv(args), false, |_| None) else {
                panic!("{args:?}: no usage error without clap")
            };
            let Err(Stop::ProbeUsage(full)) = run(args) else {
                panic!("{args:?}: no usage error from clap")
            };
            assert_eq!(quick, full);
        }
        let to_clap: &[&[&str]] = &[
            &["probe"],
            &["probe", "--help"],
            &["probe", "-q", "-v", "tcp://a:1"],
            &["probe", "-t", "1s", "-t", "2s", "tcp://a:1"],
            &["probe", "-t", "10", "tcp://a:1"],
            &["probe", "--timeout=1s", "tcp://a:1"],
            &["probe", "tcp://a:1", "--", "echo"],
            &["probe", "-x", "tcp://a:1"],
        ];
        for args in to_clap {
            assert!(quick(&argv(args), false, |_| None).is_none(), "{args:?}");
        }
        assert!(quick(&argv(same[0]), true, |_| None).is_none());
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
        let env = |k: &str| (k == "KAFKA_CFG_BROKER_ID").then(|| "3".into());
        let Ok(Plan::Wait(w)) = parse(argv(&["zk://z:2181", "--clean-stale-broker", "auto"]), env)
        else {
            panic!()
        };
        assert_eq!(w.clean.unwrap().1.id, 3);
        // An empty KAFKA_BROKER_ID (compose's `${KAFKA_BROKER_ID}` of an
        // unset variable) is unset: the next source decides.
        let env = |k: &str| match k {
            "KAFKA_BROKER_ID" => Some(OsString::new()),
            "KAFKA_CFG_BROKER_ID" => Some(" 4 ".into()),
            _ => None,
        };
        let Ok(Plan::Wait(w)) = parse(argv(&["zk://z:2181", "--clean-stale-broker", "auto"]), env)
        else {
            panic!()
        };
        assert_eq!(w.clean.unwrap().1.id, 4);
        let env = |k: &str| k.starts_with("KAFKA_").then(|| " ".into());
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
    fn durations_as_humantime_writes_them() {
        let d = |s: &str| parse_duration(s).flatten();
        assert_eq!(d("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(d("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(d("1h 30m"), Some(Duration::from_secs(5400)));
        assert_eq!(d("2days"), Some(Duration::from_secs(172_800)));
        assert_eq!(d("1y"), Some(Duration::from_secs(31_557_600)));
        assert_eq!(d("3us"), Some(Duration::from_micros(3)));
        for bad in ["", "s", "5 x", "1.5s", "-1s", "5s!", "ms5"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
        assert_eq!(parse_duration("99999999999999999999999999999y"), Some(None));
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
    /// `kwait probe ...` has a parser of its own (ProbeCli); `kwait -q probe
    /// ...` still goes through the subcommand. Both must agree on every
    /// plan, error and help text.
    fn probe_first_parser_agrees_with_the_subcommand() {
        let env: &[(&str, &[u8])] = &[("KWAIT_PROBE_TIMEOUT", b"7s")];
        for args in [
            &["tcp://a:1"][..],
            &["-t", "2s", "tcp://a:1", "kafka://b:2"],
            &["--timeout=3s", "-v", "tcp://a:1"],
            &["-t", "0", "tcp://a:1"],
            &["-t", "5", "tcp://a:1"],
            &["-v", "-q", "tcp://a:1"],
            &["--bogus", "tcp://a:1"],
            &["--grace", "1s", "tcp://a:1"],
            &[],
            &["tcp://a:1", "--", "true"],
            &["tcp://a:1", "probe"],
            &["nosuch://x"],
            &["--help"],
        ] {
            for pairs in [&[][..], env] {
                let first = with_env(&[&["probe"][..], args].concat(), pairs);
                let sub = with_env(&[&["-q", "probe"][..], args].concat(), pairs);
                // `-q` before `probe` sets the level only.
                assert_eq!(
                    format!("{first:?}"),
                    format!("{sub:?}"),
                    "{args:?} {pairs:?}"
                );
            }
        }
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
            &["nosuch://x:1"][..],
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

    /// The environment as the tests give it: `pairs`, nothing else.
    fn with_env(args: &[&str], pairs: &[(&str, &[u8])]) -> Result<Plan, Stop> {
        use std::os::unix::ffi::OsStrExt;
        let pairs: Vec<(String, OsString)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), std::ffi::OsStr::from_bytes(v).to_owned()))
            .collect();
        parse(
            std::iter::once("kwait")
                .chain(args.iter().copied())
                .map(OsString::from),
            move |name| {
                pairs
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            },
        )
    }

    fn usage_with_env(args: &[&str], pairs: &[(&str, &[u8])]) -> String {
        match with_env(args, pairs) {
            Err(Stop::Usage(msg) | Stop::ProbeUsage(msg)) => msg,
            other => panic!("{args:?} {pairs:?}: expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn env_values_that_are_not_utf8_are_usage_errors_naming_the_variable() {
        for name in [
            "KWAIT_TARGETS",
            "KWAIT_TIMEOUT",
            "KWAIT_GRACE",
            "KWAIT_QUIET",
            "KAFKA_BROKER_ID",
        ] {
            let args: &[&str] = if name == "KAFKA_BROKER_ID" {
                &["zk://z:1", "--clean-stale-broker", "auto"]
            } else {
                &["--", "app"]
            };
            let msg = usage_with_env(args, &[(name, b"caf\xe9")]);
            assert!(msg.starts_with(name) && msg.contains("not UTF-8"), "{msg}");
        }
        let msg = usage_with_env(&["probe", "tcp://a:1"], &[("KWAIT_PROBE_TIMEOUT", b"\xff")]);
        assert!(msg.contains("KWAIT_PROBE_TIMEOUT"), "{msg}");
    }

    #[test]
    fn empty_env_values_count_as_unset() {
        let empty: &[u8] = b"";
        let Ok(Plan::Wait(w)) = with_env(
            &["--", "app"],
            &[
                ("KWAIT_TIMEOUT", empty),
                ("KWAIT_GRACE", b" "),
                ("KWAIT_REWRITE", empty),
                ("KWAIT_TARGETS", empty),
                ("KWAIT_EXEC", empty),
            ],
        ) else {
            panic!()
        };
        assert_eq!(w.timeout, Some(WAIT_TIMEOUT));
        assert_eq!(w.supervise.grace, Duration::from_secs(10));
        assert!(w.targets.is_empty() && !w.exec && w.warnings.is_empty());
        let Ok(Plan::Wait(w)) = with_env(&["--", "app"], &[("KWAIT_TIMEOUT", b"90s")]) else {
            panic!()
        };
        assert_eq!(w.timeout, Some(Duration::from_secs(90)));
        // The command line wins, in every form.
        for args in [
            &["-t", "3s", "--", "a"][..],
            &["-t3s", "--", "a"],
            &["--timeout=3s", "--", "a"],
        ] {
            let Ok(Plan::Wait(w)) = with_env(args, &[("KWAIT_TIMEOUT", b"soon")]) else {
                panic!("{args:?}")
            };
            assert_eq!(w.timeout, Some(Duration::from_secs(3)), "{args:?}");
        }
        // Booleans: clap's falsey words leave the flag unset.
        let Ok(Plan::Wait(w)) = with_env(&["--", "a"], &[("KWAIT_GROUP", b"no")]) else {
            panic!()
        };
        assert!(!w.supervise.group);
        let Ok(Plan::Wait(w)) = with_env(&["--", "a"], &[("KWAIT_GROUP", b"1")]) else {
            panic!()
        };
        assert!(w.supervise.group);
    }

    #[test]
    fn a_bare_number_is_told_to_take_a_unit() {
        let msg = usage(&["-t", "10", "tcp://a:1"]);
        assert!(msg.contains("write 10s"), "{msg}");
        let msg = usage_with_env(&["tcp://a:1"], &[("KWAIT_TIMEOUT", b"10")]);
        assert!(
            msg.contains("write 10s") && msg.contains("KWAIT_TIMEOUT"),
            "{msg}"
        );
        // 0 stays "no deadline".
        assert!(matches!(run(&["-t", "0", "tcp://a:1"]), Ok(Plan::Wait(w)) if w.timeout.is_none()));
    }

    #[test]
    fn options_without_effect() {
        for args in [
            &["--exec", "--grace", "3s", "--", "a"][..],
            &["--exec", "--drain-delay", "1s", "--", "a"],
            &["--exec", "--rewrite", "TERM:QUIT", "--", "a"],
            &["--exec", "--group", "--", "a"],
            &["--grace", "3s", "tcp://a:1"],
            &["--server-properties", "/x", "tcp://a:1"],
            &[
                "zk://z:1",
                "--clean-stale-broker",
                "1",
                "--server-properties",
                "/x",
            ],
        ] {
            let msg = usage(args);
            assert!(msg.contains("has no effect"), "{args:?}: {msg}");
        }
        // From the environment (an image's ENV): a warning, and it runs.
        let Ok(Plan::Wait(w)) = with_env(&["--exec", "--", "a"], &[("KWAIT_GRACE", b"3s")]) else {
            panic!()
        };
        assert!(
            w.warnings
                .iter()
                .any(|l| l.starts_with("KWAIT_GRACE (--grace) has no effect")),
            "{:?}",
            w.warnings
        );
    }

    #[test]
    fn env_targets_beside_command_line_targets() {
        let Ok(Plan::Wait(w)) = with_env(&["tcp://a:1"], &[("KWAIT_TARGETS", b"tcp://b:1")]) else {
            panic!()
        };
        assert_eq!(w.targets.len(), 1);
        assert!(
            w.warnings
                .iter()
                .any(|l| l.contains("KWAIT_TARGETS is set but not used")),
            "{:?}",
            w.warnings
        );
        let msg = usage_with_env(&["probe"], &[("KWAIT_TARGETS", b"tcp://b:1")]);
        assert!(msg.contains("does not read KWAIT_TARGETS"), "{msg}");
        let msg = usage_with_env(&[], &[("KWAIT_TARGETS", b"tcp://a:1,tcp://b:1")]);
        assert!(msg.contains("separate targets with spaces"), "{msg}");
    }

    #[test]
    fn clean_needs_exactly_one_zookeeper() {
        let msg = usage(&["zk://a:1", "zk://b:1", "--clean-stale-broker", "1"]);
        assert!(
            msg.contains("exactly one zk:// target") && msg.contains("zk://a:1 zk://b:1"),
            "{msg}"
        );
    }

    /// Targets read the environment only through the `env` given: the
    /// password's variable and SSL_CERT_FILE (empty is unset there too).
    #[test]
    fn targets_read_the_injected_env() {
        let sasl = ["kafka://k:1?user=alice&sasl=PLAIN", "--", "app"];
        assert!(matches!(
            with_env(&sasl, &[("KWAIT_KAFKA_PASSWORD", b"pw")]),
            Ok(Plan::Wait(_))
        ));
        for env in [&[][..], &[("KWAIT_KAFKA_PASSWORD", &b""[..])]] {
            let msg = usage_with_env(&sasl, env);
            assert!(msg.contains("needs a password"), "{msg}");
        }
        // Without the tls feature https:// is refused before the file.
        #[cfg(feature = "tls")]
        {
            let msg = usage_with_env(
                &["https://h/", "--", "app"],
                &[("SSL_CERT_FILE", b"/nonexistent/ca.pem")],
            );
            assert!(msg.contains("SSL_CERT_FILE=/nonexistent/ca.pem"), "{msg}");
        }
    }

    #[test]
    fn probe_takes_no_command() {
        assert!(
            matches!(run(&["probe", "tcp://a:1", "--", "echo"]), Err(Stop::ProbeUsage(m)) if m.contains("runs no COMMAND"))
        );
    }

    #[test]
    fn usage_errors_are_one_line_and_name_the_value() {
        for (args, needle) in [
            (&["-t", "soon", "tcp://a:1"][..], "soon"),
            (&["mongodb://db:1"][..], "mongodb"),
            (&["kafka://k"][..], "missing port"),
            (&["kafka://k:1?min-brokers=-1"][..], "-1"),
            (&[][..], "nothing to do"),
            (&["--exec", "tcp://a:1"][..], "--exec"),
            (&["--bogus"][..], "--bogus"),
            (
                &["--gracee", "1s", "--", "x"][..],
                "similar argument exists: '--grace'",
            ),
            (&["kafka://a:1,,b:2"][..], "empty address"),
            (&["http://h:80#frag"][..], "#fragment"),
            (&["PLAINTEXT://kafka:9092"][..], "write kafka://kafka:9092"),
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
