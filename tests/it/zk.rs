//! zk:// readiness and --clean-stale-broker against a real ZooKeeper.
//!
//! Every test starts its own ZooKeeper (Debian's 3.8, see
//! peers/zookeeper.rs) on a free loopback port and stops it by pid. A
//! crashed broker is tests/helpers/zk_broker.py (kazoo) registering
//! `/brokers/ids/<id>` the way Kafka does and then being SIGKILLed: its
//! session, and the ephemeral nodes, outlive it by the 30 s session timeout.
//! What is in ZooKeeper before and after kwait runs is read with kazoo,
//! never with kwait.

use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::peers::{
    self, four_letter, free_port, kwait_with, poll_until, run_kwait, zk_broker,
    zk_broker_registered, zk_create, zk_delete, zk_exists, zk_make_read_only, zk_stat, Certs, Dns,
    Done, Fake, Marker, Running, Stunnel, StunnelConfig, Tansu, TempDir, ZkEnsemble, ZooKeeper,
};

/// The longest any single kwait run here may take before the test fails.
const LIMIT: Duration = Duration::from_secs(40);

// ---------------------------------------------------------------------------
// Running kwait
// ---------------------------------------------------------------------------

/// `kwait ARGS -- <marker command>`.
fn with_command(args: &[&str], marker: &Marker) -> Command {
    let mut cmd = kwait_with(args, &[]);
    cmd.arg("--").args(marker.command());
    cmd
}

/// `PLAINTEXT://127.0.0.1:P` where nothing listens (P was free a moment ago).
fn dead_endpoint() -> String {
    format!("PLAINTEXT://127.0.0.1:{}", free_port())
}

/// A crashed broker `id`: registered, then SIGKILLed.
fn crashed_broker(hosts: &str, id: i32, endpoint: &str, extra: &[&str]) {
    let mut broker = zk_broker(hosts, id, endpoint, extra);
    broker.kill();
}

fn ids(id: i32) -> String {
    format!("/brokers/ids/{id}")
}

// ---------------------------------------------------------------------------
// Readiness
// ---------------------------------------------------------------------------

#[test]
fn single_server_started_after_kwait() {
    let port = free_port();
    let dir = TempDir::new("zk-late");
    let marker = Marker::new(&dir, "ran");
    let target = format!("zk://127.0.0.1:{port}");
    let mut k = Running::spawn(
        "kwait",
        &mut with_command(&[&target, "-t", "60s", "-v"], &marker),
    );
    k.wait_for_stderr(&format!("waiting for {target}"), Duration::from_secs(10));
    // It tried, and nothing was there yet.
    k.wait_for_stderr("connection refused", Duration::from_secs(10));
    assert!(
        k.running() && !marker.ran(),
        "kwait went on without ZooKeeper"
    );

    let mut zk = ZooKeeper::start(port);
    let took = zk.wait_serving(Duration::from_secs(30));
    eprintln!("zookeeper serving {took:?} after its start");
    let r = k.finish(LIMIT);
    r.expect(0, &[&format!("{target} ready after"), "COMMAND started"]);
    assert!(marker.ran(), "COMMAND did not run");
    eprintln!("kwait ran {:?} in all:\n{}", r.elapsed, r.stderr);
}

#[test]
fn one_member_of_three_answers_ruok_but_is_not_ready() {
    let member = ZkEnsemble::start_one_of_three();
    let addr = member.addr();
    let target = format!("zk://{addr}");
    let t = Duration::from_secs(5);
    assert_eq!(four_letter(&addr, "ruok", t).as_deref(), Ok("imok"));
    let srvr = four_letter(&addr, "srvr", t).expect("srvr");
    assert!(srvr.contains("not currently serving requests"), "{srvr}");

    let r = run_kwait(&["probe", &target], &[], LIMIT);
    r.expect(1, &["not ready", "no quorum"]);

    let dir = TempDir::new("zk-noquorum");
    let marker = Marker::new(&dir, "ran");
    let r = peers::run(&mut with_command(&[&target, "-t", "2s"], &marker), LIMIT);
    r.expect(124, &["timed out after 2s", &target]);
    assert!(!marker.ran(), "COMMAND ran without quorum");
    // Still the same: imok, and no session.
    assert_eq!(four_letter(&addr, "ruok", t).as_deref(), Ok("imok"));
    assert!(
        member.log().contains("ZooKeeperServer not running"),
        "the member never saw kwait's session attempts"
    );
}

#[test]
fn chroot_absent_then_present() {
    let zk = ZooKeeper::start_ready();
    let hosts = zk.addr();
    let target = format!("zk://{hosts}/kafka");

    let r = run_kwait(&["probe", &target], &[], LIMIT);
    r.expect(1, &["/kafka does not exist"]);

    let dir = TempDir::new("zk-chroot");
    let marker = Marker::new(&dir, "ran");
    let mut k = Running::spawn(
        "kwait",
        &mut with_command(&[&target, "-t", "60s", "-v"], &marker),
    );
    k.wait_for_stderr("/kafka does not exist", Duration::from_secs(10));
    assert!(k.running() && !marker.ran());
    zk_create(&hosts, "/kafka", "");
    let r = k.finish(LIMIT);
    r.expect(0, &[&format!("{target} ready after")]);
    assert!(marker.ran());

    let r = run_kwait(&["probe", &target], &[], LIMIT);
    r.expect(0, &[]);
    // The root without the chroot was ready all along.
    run_kwait(&["probe", &format!("zk://{hosts}")], &[], LIMIT).expect(0, &[]);

    // Cleaning works relative to the chroot, like Kafka's zookeeper.connect.
    let chrooted = format!("{hosts}/kafka");
    crashed_broker(&chrooted, 1, &dead_endpoint(), &["--controller"]);
    assert!(zk_exists(&hosts, "/kafka/brokers/ids/1"));
    let r = run_kwait(&[&target, "--clean-stale-broker", "1"], &[], LIMIT);
    r.expect(
        0,
        &["removed stale /brokers/ids/1", "removed stale /controller"],
    );
    assert!(!zk_exists(&hosts, "/kafka/brokers/ids/1"));
    assert!(!zk_exists(&hosts, "/kafka/controller"));
    assert!(zk_exists(&hosts, "/kafka/controller_epoch"));
}

#[test]
fn probe_exit_codes() {
    let mut zk = ZooKeeper::start_ready();
    let target = format!("zk://{}", zk.addr());

    let r = run_kwait(&["probe", &target], &[], LIMIT);
    r.expect(0, &["ready", "session 0x"]);

    let refused = format!("zk://127.0.0.1:{}", free_port());
    let r = run_kwait(&["probe", &refused], &[], LIMIT);
    r.expect(1, &["not ready"]);

    let silent = Fake::silent();
    let r = run_kwait(
        &["probe", "-t", "1s", &format!("zk://{}", silent.addr())],
        &[],
        LIMIT,
    );
    r.expect(1, &["not ready"]);
    assert!(silent.connections() >= 1);

    let status = zk.stop();
    eprintln!("zookeeper stopped: {status}");
    let r = run_kwait(&["probe", &target], &[], LIMIT);
    r.expect(1, &["not ready"]);
}

/// `probe` makes one attempt, and that attempt tries every host of the
/// connect string in turn (src/probe/zk.rs), so a HEALTHCHECK naming a whole
/// ensemble is ready while any member serves. (It once tried only the
/// first host, and reported "not ready" whenever that member was down.)
#[test]
fn probe_uses_any_member_of_the_ensemble() {
    let zk = ZooKeeper::start_ready();
    // The wait loop gets there (its second attempt uses the second host).
    let dead_first = format!("zk://127.0.0.1:{},{}", free_port(), zk.addr());
    run_kwait(&[&dead_first, "-t", "10s"], &[], LIMIT).expect(0, &["ready after"]);
    // One probe of the same connect string: the first member is down, the
    // second serves. ZooKeeper clients (and Kafka) use any member that answers.
    let r = run_kwait(&["probe", &dead_first], &[], LIMIT);
    r.expect(0, &["ready", "session 0x"]);
}

// ---------------------------------------------------------------------------
// Stale registrations
// ---------------------------------------------------------------------------

#[test]
fn stale_registration_removed_before_the_session_expires() {
    let zk = ZooKeeper::start_ready();
    let hosts = zk.addr();
    let endpoint = dead_endpoint();
    let (mut broker, registered) = zk_broker_registered(&hosts, 1, &endpoint, &["--controller"]);
    let node = zk_stat(&hosts, &ids(1)).expect("registered");
    let controller = zk_stat(&hosts, "/controller").expect("controller");
    assert!(node.owner != 0 && controller.owner == node.owner);
    assert!(node.data.contains(&endpoint), "{}", node.data);

    broker.kill();
    let killed = Instant::now();
    // The crashed broker's session, and its nodes, live on.
    assert_eq!(zk_stat(&hosts, &ids(1)), Some(node.clone()));

    let dir = TempDir::new("zk-stale");
    let marker = Marker::new(&dir, "ran");
    let r = peers::run(
        &mut with_command(
            &[&format!("zk://{hosts}"), "--clean-stale-broker", "1"],
            &marker,
        ),
        LIMIT,
    );
    let since_kill = killed.elapsed();
    r.expect(
        0,
        &[
            "removed stale /brokers/ids/1",
            &format!("owner session 0x{:x}", node.owner),
            &endpoint,
            "removed stale /controller",
            "COMMAND started",
        ],
    );
    assert!(marker.ran(), "COMMAND did not run");
    let removed_at = r.stderr.find("removed stale /brokers/ids/1").unwrap();
    let command_at = r.stderr.find("COMMAND started").unwrap();
    assert!(
        removed_at < command_at,
        "COMMAND started before the cleaning"
    );
    assert!(!zk_exists(&hosts, &ids(1)), "/brokers/ids/1 still there");
    assert!(!zk_exists(&hosts, "/controller"), "/controller still there");
    assert!(
        zk_exists(&hosts, "/controller_epoch"),
        "/controller_epoch removed"
    );

    let line = r
        .stderr
        .lines()
        .find(|l| l.contains("removed stale /brokers/ids/1"))
        .unwrap();
    // Timed from kwait's start (what a restarting broker waits), not from
    // the start of the cleaning alone: "N after kwait started (M cleaning)".
    let (_, after) = line.split_once(") ").unwrap();
    let took = after
        .strip_suffix(" cleaning)")
        .and_then(|rest| rest.split_once(" after kwait started ("))
        .map(|(total, _)| total)
        .unwrap_or_else(|| panic!("no time since kwait's start in: {line}"));
    let ms: u64 = match took.strip_suffix("ms") {
        Some(ms) => ms.parse().unwrap(),
        None => (took.trim_end_matches('s').parse::<f64>().unwrap() * 1000.0) as u64,
    };
    assert!(
        Duration::from_millis(ms) <= r.elapsed,
        "{took} since kwait's start, but the whole run took {:?}",
        r.elapsed
    );
    eprintln!(
        "kwait ran {:?} in all (start to COMMAND), {since_kill:?} after the SIGKILL; \
         the helper's session: {registered}\n{line}",
        r.elapsed
    );
    assert!(
        r.elapsed < Duration::from_secs(10),
        "kwait took {:?}",
        r.elapsed
    );
}

#[test]
fn live_registration_is_refused() {
    let zk = ZooKeeper::start_ready();
    let hosts = zk.addr();
    let tansu = Tansu::start_ready();
    let endpoint = format!("PLAINTEXT://{}", tansu.addr());
    // Its session is dead, but a Kafka broker answers where it says it lives:
    // another broker with the same id.
    crashed_broker(&hosts, 1, &endpoint, &["--controller"]);
    let before = zk_stat(&hosts, &ids(1)).expect("registered");

    let dir = TempDir::new("zk-live");
    let marker = Marker::new(&dir, "ran");
    let r = peers::run(
        &mut with_command(
            &[&format!("zk://{hosts}"), "--clean-stale-broker", "1"],
            &marker,
        ),
        LIMIT,
    );
    r.expect(1, &["a live broker holds id 1", &endpoint]);
    assert!(!marker.ran(), "COMMAND ran");
    assert_eq!(zk_stat(&hosts, &ids(1)), Some(before));
    assert!(zk_exists(&hosts, "/controller"));
}

#[test]
fn silent_endpoint_is_refused() {
    let zk = ZooKeeper::start_ready();
    let hosts = zk.addr();
    let silent = Fake::silent();
    let endpoint = format!("PLAINTEXT://{}", silent.addr());
    crashed_broker(&hosts, 1, &endpoint, &[]);
    let before = zk_stat(&hosts, &ids(1)).expect("registered");

    let dir = TempDir::new("zk-silent");
    let marker = Marker::new(&dir, "ran");
    let r = peers::run(
        &mut with_command(
            &[
                &format!("zk://{hosts}"),
                "--clean-stale-broker",
                "1",
                "--attempt-timeout",
                "1s",
            ],
            &marker,
        ),
        LIMIT,
    );
    r.expect(
        1,
        &[
            &format!("something accepts connections at {endpoint}"),
            "does not delete",
        ],
    );
    assert!(silent.connections() >= 1, "kwait never probed the endpoint");
    assert!(!marker.ran());
    assert_eq!(zk_stat(&hosts, &ids(1)), Some(before));
}

#[test]
fn dry_run_then_one_shot_then_nothing_to_do() {
    let zk = ZooKeeper::start_ready();
    let hosts = zk.addr();
    let target = format!("zk://{hosts}");
    crashed_broker(&hosts, 1, &dead_endpoint(), &["--controller"]);
    let node = zk_stat(&hosts, &ids(1)).expect("registered");
    let controller = zk_stat(&hosts, "/controller").expect("controller");

    let dir = TempDir::new("zk-dry");
    let marker = Marker::new(&dir, "ran");
    let r = peers::run(
        &mut with_command(
            &[&target, "--clean-stale-broker", "1", "--dry-run"],
            &marker,
        ),
        LIMIT,
    );
    r.expect(
        0,
        &[
            "--dry-run: would remove stale /brokers/ids/1",
            "--dry-run: would remove /controller",
        ],
    );
    assert!(!r.stderr.contains("removed stale"), "{}", r.stderr);
    assert!(marker.ran());
    assert_eq!(zk_stat(&hosts, &ids(1)), Some(node));
    assert_eq!(zk_stat(&hosts, "/controller"), Some(controller));

    // No COMMAND: the one-line zk-cleaner service.
    let r = run_kwait(&[&target, "--clean-stale-broker", "1"], &[], LIMIT);
    r.expect(
        0,
        &["removed stale /brokers/ids/1", "removed stale /controller"],
    );
    assert!(!zk_exists(&hosts, &ids(1)));
    assert!(!zk_exists(&hosts, "/controller"));
    assert!(zk_exists(&hosts, "/controller_epoch"));

    let r = run_kwait(&[&target, "--clean-stale-broker", "1"], &[], LIMIT);
    r.expect(0, &["no registration at /brokers/ids/1: nothing to clean"]);
}

#[test]
fn controller_of_another_session_is_left_alone() {
    let zk = ZooKeeper::start_ready();
    let hosts = zk.addr();
    // Broker 2 is alive (its session holds /controller); broker 1 crashed.
    let _alive = zk_broker(&hosts, 2, &dead_endpoint(), &["--controller"]);
    let controller = zk_stat(&hosts, "/controller").expect("controller");
    crashed_broker(&hosts, 1, &dead_endpoint(), &[]);

    let r = run_kwait(
        &[&format!("zk://{hosts}"), "--clean-stale-broker", "1"],
        &[],
        LIMIT,
    );
    r.expect(0, &["removed stale /brokers/ids/1"]);
    assert!(!r.stderr.contains("/controller"), "{}", r.stderr);
    assert!(!zk_exists(&hosts, &ids(1)));
    assert_eq!(zk_stat(&hosts, "/controller"), Some(controller));
    assert!(zk_exists(&hosts, &ids(2)));
}

// ---------------------------------------------------------------------------
// Races and safety
// ---------------------------------------------------------------------------

#[test]
fn what_it_does_not_understand_is_refused() {
    let zk = ZooKeeper::start_ready();
    let hosts = zk.addr();
    let target = format!("zk://{hosts}");
    crashed_broker(&hosts, 2, &dead_endpoint(), &["--persistent"]);
    crashed_broker(&hosts, 3, &dead_endpoint(), &["--data", "not json"]);
    crashed_broker(&hosts, 4, &dead_endpoint(), &["--data", r#"{"version":5}"#]);
    let persistent = zk_stat(&hosts, &ids(2)).expect("id 2");
    assert_eq!(persistent.owner, 0);

    let dir = TempDir::new("zk-refuse");
    let marker = Marker::new(&dir, "ran");
    let r = peers::run(
        &mut with_command(&[&target, "--clean-stale-broker", "2"], &marker),
        LIMIT,
    );
    r.expect(1, &["/brokers/ids/2 is a persistent znode", "refusing"]);
    assert_eq!(zk_stat(&hosts, &ids(2)), Some(persistent));

    for id in [3, 4] {
        let before = zk_stat(&hosts, &ids(id)).expect("registered");
        assert!(before.owner != 0);
        let r = peers::run(
            &mut with_command(&[&target, "--clean-stale-broker", &id.to_string()], &marker),
            LIMIT,
        );
        r.expect(
            1,
            &[&format!(
                "/brokers/ids/{id} holds data kwait cannot read as a broker registration"
            )],
        );
        assert_eq!(zk_stat(&hosts, &ids(id)), Some(before));
    }

    // ACL-protected: ZooKeeper answers NoAuth to the delete.
    crashed_broker(&hosts, 5, &dead_endpoint(), &[]);
    let before = zk_stat(&hosts, &ids(5)).expect("registered");
    zk_make_read_only(&hosts, "/brokers/ids");
    let r = peers::run(
        &mut with_command(&[&target, "--clean-stale-broker", "5"], &marker),
        LIMIT,
    );
    r.expect(
        1,
        &["refused to delete /brokers/ids/5 (NoAuth)", "ACL-protected"],
    );
    assert_eq!(zk_stat(&hosts, &ids(5)), Some(before));
    assert!(!marker.ran(), "COMMAND ran after a refusal");
}

#[test]
fn auto_without_an_id_is_a_usage_error() {
    // Judged before anything connects: nothing listens at the target.
    let target = format!("zk://127.0.0.1:{}", free_port());
    let dir = TempDir::new("zk-auto-usage");
    let marker = Marker::new(&dir, "ran");
    let props = dir.path().join("server.properties");
    std::fs::write(&props, "# broker.id=1\nlog.dirs=/var/lib/kafka\n").unwrap();
    let props = props.to_string_lossy().into_owned();
    let missing = dir.path().join("missing.properties");
    let missing = missing.to_string_lossy().into_owned();

    let cases: [(&[&str], Option<&str>, &str); 5] = [
        (&[], None, "found no broker id"),
        (&["--server-properties", &props], None, "no broker.id in"),
        (&["--server-properties", &missing], None, "cannot read it"),
        // A device is refused before it is read: its read may not end.
        (
            &["--server-properties", "/dev/zero"],
            None,
            "--server-properties /dev/zero: is a character device",
        ),
        (&[], Some("-1"), "negative broker.id"),
    ];
    for (extra, env, needle) in cases {
        let mut args = vec![target.as_str(), "--clean-stale-broker", "auto"];
        args.extend_from_slice(extra);
        let mut cmd = with_command(&args, &marker);
        if let Some(id) = env {
            cmd.env("KAFKA_BROKER_ID", id);
        }
        let r = peers::run(&mut cmd, LIMIT);
        r.expect(2, &[needle]);
        assert!(
            r.elapsed < Duration::from_secs(5),
            "a usage error waited {:?}",
            r.elapsed
        );
    }
    assert!(!marker.ran());
}

#[test]
fn auto_reads_the_environment_and_server_properties() {
    let zk = ZooKeeper::start_ready();
    let hosts = zk.addr();
    let target = format!("zk://{hosts}");
    for id in 1..=3 {
        crashed_broker(&hosts, id, &dead_endpoint(), &[]);
    }
    crashed_broker(&hosts, 4, &dead_endpoint(), &[]);
    let dir = TempDir::new("zk-auto");
    let props = dir.path().join("server.properties");
    // Java's Properties (Kafka's loader) keeps the last assignment, and a
    // key may end at whitespace: this file says broker.id 3.
    std::fs::write(
        &props,
        "broker.id=4\nlog.dirs=/var/lib/kafka\n# broker.id=5\nbroker.id 3\n",
    )
    .unwrap();
    let props = props.to_string_lossy().into_owned();

    let mut cmd = kwait_with::<&str>(&[&target, "--clean-stale-broker", "auto"], &[]);
    cmd.env("KAFKA_BROKER_ID", "1");
    peers::run(&mut cmd, LIMIT).expect(0, &["removed stale /brokers/ids/1"]);
    assert!(!zk_exists(&hosts, &ids(1)));
    assert!(zk_exists(&hosts, &ids(2)) && zk_exists(&hosts, &ids(3)));

    // An empty KAFKA_BROKER_ID, as compose's `${KAFKA_BROKER_ID}` of an
    // unset variable gives, is unset (it was once "'' is not a broker id").
    let mut cmd = kwait_with::<&str>(&[&target, "--clean-stale-broker", "auto"], &[]);
    cmd.env("KAFKA_BROKER_ID", "")
        .env("KAFKA_CFG_BROKER_ID", "2");
    peers::run(&mut cmd, LIMIT).expect(0, &["removed stale /brokers/ids/2"]);
    assert!(!zk_exists(&hosts, &ids(2)));
    assert!(zk_exists(&hosts, &ids(3)));

    // Both empty: server.properties decides.
    let mut cmd = kwait_with::<&str>(
        &[
            &target,
            "--clean-stale-broker",
            "auto",
            "--server-properties",
            &props,
        ],
        &[],
    );
    cmd.env("KAFKA_BROKER_ID", "")
        .env("KAFKA_CFG_BROKER_ID", "");
    peers::run(&mut cmd, LIMIT).expect(0, &["removed stale /brokers/ids/3"]);
    assert!(!zk_exists(&hosts, &ids(3)));
    assert!(zk_exists(&hosts, &ids(4)), "the first broker.id won");

    std::fs::write(dir.path().join("server.properties"), "broker.id:4\n").unwrap();
    let mut cmd = kwait_with::<&str>(
        &[
            &target,
            "--clean-stale-broker",
            "auto",
            "--server-properties",
            &props,
        ],
        &[],
    );
    peers::run(&mut cmd, LIMIT).expect(0, &["removed stale /brokers/ids/4"]);
    assert!(!zk_exists(&hosts, &ids(4)));
}

// ---------------------------------------------------------------------------
// What a znode says is untrusted
// ---------------------------------------------------------------------------

/// A registration as Kafka writes it at `endpoints` (JSON strings, already
/// quoted and escaped), registered at `timestamp` (JSON).
fn registration(endpoints: &[String], timestamp: &str) -> String {
    format!(
        r#"{{"features":{{}},"listener_security_protocol_map":{{"PLAINTEXT":"PLAINTEXT"}},"endpoints":[{}],"jmx_port":-1,"host":null,"port":-1,"timestamp":{timestamp},"version":5}}"#,
        endpoints.join(",")
    )
}

fn quoted(endpoint: &str) -> String {
    format!("\"{endpoint}\"")
}

/// Every line kwait wrote is one of its own, and short.
#[track_caller]
fn one_short_line_each(r: &Done) {
    for line in r.stderr.lines() {
        assert!(
            line.starts_with("kwait: ") && line.len() < 1000 && !line.contains('\u{1b}'),
            "a line kwait did not write, or too long ({} bytes):\n{line}",
            line.len()
        );
    }
}

#[test]
fn registration_time_beyond_year_9999_is_shown_as_written() {
    let zk = ZooKeeper::start_ready();
    let hosts = zk.addr();
    let target = format!("zk://{hosts}");
    let endpoint = dead_endpoint();
    let data = registration(&[quoted(&endpoint)], r#""999999999999999999""#);
    crashed_broker(&hosts, 1, &endpoint, &["--data", &data]);
    // humantime formats up to year 9999; this is about year 31 690 000.
    let r = run_kwait(
        &[&target, "--clean-stale-broker", "1", "--dry-run"],
        &[],
        LIMIT,
    );
    r.expect(
        0,
        &[
            "would remove stale /brokers/ids/1",
            "registered at timestamp 999999999999999999",
        ],
    );
    let r = run_kwait(&[&target, "--clean-stale-broker", "1"], &[], LIMIT);
    r.expect(
        0,
        &[
            "removed stale /brokers/ids/1",
            "registered at timestamp 999999999999999999",
        ],
    );
    assert!(!zk_exists(&hosts, &ids(1)));
}

#[test]
fn znode_text_reaches_the_log_on_one_bounded_line() {
    let zk = ZooKeeper::start_ready();
    let hosts = zk.addr();
    let target = format!("zk://{hosts}");
    let port = free_port();
    // A listener name that would forge a log line and colour the terminal,
    // and a long one; /controller's data likewise, and 100 KB of it.
    let forged =
        format!("EVIL\\nkwait: removed stale /brokers/ids/9\\u001b[31m://127.0.0.1:{port}");
    let long = format!("{}://127.0.0.1:{port}", "L".repeat(5000));
    let data = registration(&[quoted(&forged), quoted(&long)], r#""1700000000000""#);
    let controller = format!(
        "{{\"brokerid\":1}}\nkwait: forged\x1b[31m{}",
        "c".repeat(100_000)
    );
    crashed_broker(
        &hosts,
        1,
        &dead_endpoint(),
        &[
            "--data",
            &data,
            "--controller",
            "--controller-data",
            &controller,
        ],
    );
    for dry_run in [true, false] {
        let mut args = vec![target.as_str(), "--clean-stale-broker", "1"];
        if dry_run {
            args.push("--dry-run");
        }
        let r = run_kwait(&args, &[], LIMIT);
        r.expect(
            0,
            &[
                "EVIL\\nkwait: removed stale /brokers/ids/9\\u{1b}[31m://127.0.0.1:",
                "LLLL…",
                "/controller ({\"brokerid\":1}\\nkwait: forged\\u{1b}[31mccc",
                "ccc…), owned by the same dead session",
            ],
        );
        one_short_line_each(&r);
    }
    assert!(!zk_exists(&hosts, &ids(1)));
    assert!(!zk_exists(&hosts, "/controller"));
}

#[test]
fn more_endpoints_than_listeners_are_refused_unprobed() {
    let zk = ZooKeeper::start_ready();
    let hosts = zk.addr();
    let target = format!("zk://{hosts}");
    // Sixteen endpoints are checked (and found dead)...
    let sixteen: Vec<String> = (0..16).map(|_| quoted(&dead_endpoint())).collect();
    let data = registration(&sixteen, r#""1700000000000""#);
    crashed_broker(&hosts, 1, &dead_endpoint(), &["--data", &data]);
    run_kwait(&[&target, "--clean-stale-broker", "1"], &[], LIMIT)
        .expect(0, &["removed stale /brokers/ids/1"]);
    assert!(!zk_exists(&hosts, &ids(1)));

    // ...a seventeenth makes it a node kwait does not understand: refused
    // before one connection is opened (a silent listener counts them).
    let silent = Fake::silent();
    let mut many = vec![quoted(&format!("PLAINTEXT://{}", silent.addr())); 1000];
    many.push(quoted(&dead_endpoint()));
    for endpoints in [&many[..17], &many[..]] {
        let data = registration(endpoints, r#""1700000000000""#);
        crashed_broker(&hosts, 2, &dead_endpoint(), &["--data", &data]);
        let before = zk_stat(&hosts, &ids(2)).expect("registered");
        let r = run_kwait(&[&target, "--clean-stale-broker", "2"], &[], LIMIT);
        r.expect(
            1,
            &[
                "/brokers/ids/2 holds data kwait cannot read as a broker registration",
                &format!("{} endpoints, more than the 16", endpoints.len()),
            ],
        );
        assert_eq!(zk_stat(&hosts, &ids(2)), Some(before));
        assert_eq!(
            silent.connections(),
            0,
            "kwait probed a refused registration"
        );
        assert!(zk_delete(&hosts, &ids(2)));
    }
}

/// tansu behind stunnel (TLS), tansu advertising `localhost:<TLS port>`.
fn tls_broker(certs: &Certs) -> (Tansu, Stunnel) {
    let (tansu_port, tls_port) = (free_port(), free_port());
    let tansu = Tansu::start_advertising(tansu_port, &format!("localhost:{tls_port}"));
    tansu.wait_accepting(Duration::from_secs(10));
    let (cert, key) = certs.server();
    let config = StunnelConfig {
        cert: &cert,
        key: &key,
        client_ca: None,
        extra: &[],
    };
    (tansu, Stunnel::start(tls_port, tansu_port, &config))
}

#[test]
fn tls_registration_is_probed_over_tls() {
    let zk = ZooKeeper::start_ready();
    let hosts = zk.addr();
    let target = format!("zk://{hosts}");
    let certs = Certs::new();
    let (mut tansu, mut tls) = tls_broker(&certs);
    // An SSL listener, and a listener named INTERNAL that the registration's
    // listener_security_protocol_map says is SASL_SSL: both TLS.
    let ssl = format!("SSL://localhost:{}", tls.port());
    let internal = format!("INTERNAL://localhost:{}", tls.port());
    crashed_broker(&hosts, 1, &ssl, &["--controller"]);
    crashed_broker(&hosts, 2, &internal, &["--protocol", "SASL_SSL"]);
    let (one, two) = (zk_stat(&hosts, &ids(1)), zk_stat(&hosts, &ids(2)));
    assert!(one
        .as_ref()
        .is_some_and(|n| n.data.contains(r#"{"SSL": "SSL"}"#)));
    assert!(two
        .as_ref()
        .is_some_and(|n| n.data.contains(r#"{"INTERNAL": "SASL_SSL"}"#)));

    // A Kafka broker answers ApiVersions there over TLS (spoken plainly, a
    // TLS listener would not answer Kafka: "something accepts", not this).
    for (id, endpoint) in [(1, &ssl), (2, &internal)] {
        let r = run_kwait(
            &[&target, "--clean-stale-broker", &id.to_string()],
            &[],
            LIMIT,
        );
        r.expect(1, &[&format!("a live broker holds id {id}"), endpoint]);
    }
    assert_eq!(zk_stat(&hosts, &ids(1)), one);
    assert_eq!(zk_stat(&hosts, &ids(2)), two);
    assert!(zk_exists(&hosts, "/controller"));

    // The broker goes, its TLS front stays: something still completes TLS
    // handshakes there, and kwait cannot prove the broker dead.
    tansu.stop();
    let r = run_kwait(&[&target, "--clean-stale-broker", "1"], &[], LIMIT);
    r.expect(
        1,
        &[
            &format!("something accepts connections at {ssl}"),
            "does not delete",
        ],
    );
    assert_eq!(zk_stat(&hosts, &ids(1)), one);

    // Nothing at all there any more: stale.
    tls.stop();
    let r = run_kwait(&[&target, "--clean-stale-broker", "1"], &[], LIMIT);
    r.expect(
        0,
        &[
            "removed stale /brokers/ids/1",
            &ssl,
            "removed stale /controller",
        ],
    );
    let r = run_kwait(&[&target, "--clean-stale-broker", "2"], &[], LIMIT);
    r.expect(0, &["removed stale /brokers/ids/2", &internal]);
    assert!(!zk_exists(&hosts, &ids(1)) && !zk_exists(&hosts, &ids(2)));
}

/// The liveness check speaks TLS without a client certificate (README,
/// "Stale broker registrations"): a live broker behind mutual TLS refuses
/// the handshake (TLS 1.2) or the first request after it (TLS 1.3), yet
/// something accepts connections there, so its registration stays.
#[test]
fn mtls_registration_is_not_deleted() {
    let zk = ZooKeeper::start_ready();
    let hosts = zk.addr();
    let target = format!("zk://{hosts}");
    let certs = Certs::new();
    let tansu = Tansu::start_ready();
    let backend = tansu.port();
    let (cert, key) = certs.server();
    let ca = certs.ca();
    for (id, extra) in [(1, &[][..]), (2, &["sslVersionMax = TLSv1.2"][..])] {
        let config = StunnelConfig {
            cert: &cert,
            key: &key,
            client_ca: Some(&ca),
            extra,
        };
        let tls = Stunnel::start(free_port(), backend, &config);
        let endpoint = format!("SSL://localhost:{}", tls.port());
        crashed_broker(&hosts, id, &endpoint, &[]);
        let before = zk_stat(&hosts, &ids(id)).expect("registered");
        let r = run_kwait(
            &[&target, "--clean-stale-broker", &id.to_string()],
            &[],
            LIMIT,
        );
        r.expect(
            1,
            &[
                &format!("something accepts connections at {endpoint}"),
                "does not delete",
            ],
        );
        assert_eq!(zk_stat(&hosts, &ids(id)), Some(before), "{extra:?}");
    }
}

/// A loopback listener whose accept queue is full (backlog 0, one connection
/// queued and never accepted): the kernel drops the SYNs of any further
/// connection, which stays in SYN_SENT — kwait's liveness probe of a
/// registered endpoint is held right there, between its read of the node and
/// its re-read. [`SynGate::open`] closes the listener, so the next SYN
/// retransmission is refused: to kwait, nothing lives at the endpoint.
struct SynGate {
    listener: Option<TcpListener>,
    filler: Option<TcpStream>,
    port: u16,
}

impl SynGate {
    fn new() -> SynGate {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind gate");
        // SAFETY: listen(2) on a socket this function owns.
        let rc = unsafe { libc::listen(listener.as_raw_fd(), 0) };
        assert_eq!(rc, 0, "listen(fd, 0)");
        let addr = listener.local_addr().expect("local_addr");
        let filler = TcpStream::connect(addr).expect("fill the accept queue");
        // The gate holds: another connection gets nowhere.
        let probe = TcpStream::connect_timeout(&addr, Duration::from_millis(300));
        assert!(probe.is_err(), "the full accept queue let a connection in");
        SynGate {
            listener: Some(listener),
            filler: Some(filler),
            port: addr.port(),
        }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Whether some socket is in SYN_SENT towards the gate.
    fn held(&self) -> bool {
        let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
            return false;
        };
        let port = format!(":{:04X}", self.port);
        table.lines().skip(1).any(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            f.len() > 3 && f[2].ends_with(&port) && f[3] == "02"
        })
    }

    fn open(&mut self) {
        self.listener.take();
        self.filler.take();
    }
}

/// A crashed broker `id` whose registered endpoint is a fresh [`SynGate`],
/// and `kwait zk://HOSTS --clean-stale-broker ID -- <marker command>`, held
/// in its liveness probe of that endpoint: it has read the node and not yet
/// re-read it. Returns the gate, the endpoint and kwait.
fn held_at_the_gate(hosts: &str, id: i32, marker: &Marker) -> (SynGate, String, Running) {
    let gate = SynGate::new();
    let gated = format!("PLAINTEXT://{}", gate.addr());
    crashed_broker(hosts, id, &gated, &[]);
    let target = format!("zk://{hosts}");
    let id = id.to_string();
    let args = [
        &target,
        "--clean-stale-broker",
        &id,
        "--attempt-timeout",
        "30s",
    ];
    let k = Running::spawn("kwait", &mut with_command(&args, marker));
    assert!(
        poll_until(Duration::from_secs(20), || gate.held()),
        "kwait never probed {gated}; stderr:\n{}",
        k.stderr()
    );
    (gate, gated, k)
}

#[test]
fn node_recreated_between_read_and_delete_is_not_deleted() {
    let zk = ZooKeeper::start_ready();
    let hosts = zk.addr();
    let tansu = Tansu::start_ready();
    let dir = TempDir::new("zk-race");

    let marker = Marker::new(&dir, "ran");
    let (mut gate, gated, mut k) = held_at_the_gate(&hosts, 1, &marker);
    let old = zk_stat(&hosts, &ids(1)).expect("registered");
    // kwait has read the node and is probing its endpoint. Meanwhile the dead
    // session's node goes and a live broker with the same id registers anew:
    // a new node (czxid, owner), at the same data version.
    assert!(zk_delete(&hosts, &ids(1)));
    let tansu_endpoint = format!("PLAINTEXT://{}", tansu.addr());
    let _live = zk_broker(&hosts, 1, &tansu_endpoint, &[]);
    let new = zk_stat(&hosts, &ids(1)).expect("re-registered");
    assert_ne!(new.czxid, old.czxid);
    assert_ne!(new.owner, old.owner);
    assert_eq!(
        new.version, old.version,
        "only czxid and owner tell them apart"
    );
    assert!(
        gate.held() && k.running(),
        "kwait left its probe before the swap was done; the test proves nothing:\n{}",
        k.stderr()
    );
    gate.open();
    let r = k.finish(LIMIT);
    r.expect(
        1,
        &[
            &format!("{gated} does not answer"),
            "/brokers/ids/1 changed while kwait checked it; looking again",
            "a live broker holds id 1",
            &tansu_endpoint,
        ],
    );
    assert!(!marker.ran(), "COMMAND ran");
    assert_eq!(zk_stat(&hosts, &ids(1)), Some(new));
    eprintln!(
        "swapped while held; kwait ran {:?}:\n{}",
        r.elapsed, r.stderr
    );

    // The same hold, but the node just goes away (its session expired).
    let marker = Marker::new(&dir, "ran2");
    let (mut gate, _, mut k) = held_at_the_gate(&hosts, 2, &marker);
    assert!(zk_delete(&hosts, &ids(2)));
    assert!(gate.held() && k.running());
    gate.open();
    let r = k.finish(LIMIT);
    r.expect(
        0,
        &[
            "/brokers/ids/2 disappeared while kwait checked it",
            "COMMAND started",
        ],
    );
    assert!(marker.ran());
}

// ---------------------------------------------------------------------------
// A chroot Kafka has not created yet, and a root that hints at a chroot
// ---------------------------------------------------------------------------

/// Kafka creates its chroot on its first start, so the broker's own
/// entrypoint, `kwait zk://HOST/kafka --clean-stale-broker ID -- kafka`,
/// must not wait for it: on a fresh cluster nothing is registered there,
/// nothing is cleaned, and Kafka starts. (kwait once waited for the chroot
/// and timed out: the broker could never start.) A plain wait on the same
/// target still waits for the chroot.
#[test]
fn cleaning_under_a_chroot_kafka_has_not_created_yet() {
    let zk = ZooKeeper::start_ready();
    let hosts = zk.addr();
    let target = format!("zk://{hosts}/kafka");
    let dir = TempDir::new("zk-fresh-chroot");

    let marker = Marker::new(&dir, "fresh");
    let r = peers::run(
        &mut with_command(&[&target, "--clean-stale-broker", "1", "-t", "5s"], &marker),
        LIMIT,
    );
    r.expect(
        0,
        &[
            &format!("{target} ready after"),
            "no registration at /kafka/brokers/ids/1 (its chroot does not exist yet: Kafka \
             creates it on its first start): nothing to clean",
            "nothing to clean",
            "COMMAND started",
        ],
    );
    assert!(marker.ran(), "COMMAND did not run");
    assert!(!zk_exists(&hosts, "/kafka"), "kwait created the chroot");

    // Without cleaning, the chroot is still waited for; the reason reads as
    // one sentence with one fix.
    let marker = Marker::new(&dir, "plain");
    let r = peers::run(&mut with_command(&[&target, "-t", "1s"], &marker), LIMIT);
    r.expect(
        124,
        &["the chroot /kafka does not exist yet: Kafka creates it on its first start"],
    );
    assert!(!marker.ran());
    let line = r.stderr.lines().find(|l| l.contains("timed out")).unwrap();
    assert_eq!(line.matches("fix the target").count(), 1, "{line}");

    // The chroot exists, /brokers not yet (Kafka is creating it).
    zk_create(&hosts, "/kafka", "");
    let r = run_kwait(&[&target, "--clean-stale-broker", "1"], &[], LIMIT);
    r.expect(
        0,
        &["no registration at /kafka/brokers/ids/1: nothing to clean"],
    );

    // A crashed broker's registration under the chroot is removed, and
    // Kafka starts.
    crashed_broker(&format!("{hosts}/kafka"), 1, &dead_endpoint(), &[]);
    let marker = Marker::new(&dir, "stale");
    let r = peers::run(
        &mut with_command(&[&target, "--clean-stale-broker", "1"], &marker),
        LIMIT,
    );
    r.expect(0, &["removed stale /brokers/ids/1", "COMMAND started"]);
    assert!(marker.ran());
    assert!(!zk_exists(&hosts, "/kafka/brokers/ids/1"));
}

/// A target without the chroot Kafka uses finds nothing at /brokers/ids/N:
/// kwait says where it looked, and, since the root has no /brokers but
/// other nodes, that Kafka's zookeeper.connect may end in a chroot.
#[test]
fn a_root_without_brokers_hints_at_a_chroot() {
    let zk = ZooKeeper::start_ready();
    let hosts = zk.addr();
    let target = format!("zk://{hosts}");
    crashed_broker(&format!("{hosts}/kafka"), 1, &dead_endpoint(), &[]);

    let r = run_kwait(&[&target, "--clean-stale-broker", "1"], &[], LIMIT);
    r.expect(
        0,
        &[
            "no registration at /brokers/ids/1: nothing to clean",
            "warning: ZooKeeper's root has no /brokers, but other nodes (/kafka, 1 in all)",
            "if Kafka's zookeeper.connect ends in a chroot (host:2181/kafka?), put it in the \
             target too (zk://host:2181/kafka)",
        ],
    );
    assert!(zk_exists(&hosts, "/kafka/brokers/ids/1"));

    // A root that does have /brokers: nothing to hint at.
    zk_create(&hosts, "/brokers/ids", "");
    let r = run_kwait(&[&target, "--clean-stale-broker", "1"], &[], LIMIT);
    r.expect(0, &["no registration at /brokers/ids/1: nothing to clean"]);
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);

    // An empty ZooKeeper (only its own /zookeeper): nothing to hint at.
    let empty = ZooKeeper::start_ready();
    let r = run_kwait(
        &[
            &format!("zk://{}", empty.addr()),
            "--clean-stale-broker",
            "1",
        ],
        &[],
        LIMIT,
    );
    r.expect(0, &["no registration at /brokers/ids/1: nothing to clean"]);
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
}

// ---------------------------------------------------------------------------
// What kwait cannot read or resolve
// ---------------------------------------------------------------------------

/// kazoo on `path`: `unreadable` sets its ACL to world:anyone with every
/// permission but read; `exists` (which needs no read permission) prints
/// whether it exists.
fn kazoo_acl(hosts: &str, op: &str, path: &str) -> String {
    let script = r#"
import sys
from kazoo.client import KazooClient
from kazoo.security import make_acl
zk = KazooClient(hosts=sys.argv[1], timeout=10)
zk.start(timeout=15)
op, path = sys.argv[2], sys.argv[3]
if op == "unreadable":
    zk.set_acls(path, [make_acl("world", "anyone", write=True, create=True, delete=True, admin=True)])
    print("unreadable")
else:
    print(zk.exists(path) is not None)
zk.stop()
zk.close()
"#;
    let out = Command::new("python3")
        .args(["-c", script, hosts, op, path])
        .output()
        .expect("python3 (kazoo)");
    assert!(
        out.status.success(),
        "kazoo {op} {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A /controller kwait cannot read is left, and kwait says so (it once
/// went on as if there were none).
#[test]
fn unreadable_controller_is_left_with_a_warning() {
    let zk = ZooKeeper::start_ready();
    let hosts = zk.addr();
    crashed_broker(&hosts, 1, &dead_endpoint(), &["--controller"]);
    assert_eq!(kazoo_acl(&hosts, "unreadable", "/controller"), "unreadable");

    let r = run_kwait(
        &[&format!("zk://{hosts}"), "--clean-stale-broker", "1"],
        &[],
        LIMIT,
    );
    r.expect(
        0,
        &[
            "warning: could not read /controller (ZooKeeper answered NoAuth (-102)): left as it \
             is; if the dead session holds it",
            "removed stale /brokers/ids/1",
        ],
    );
    assert!(!zk_exists(&hosts, &ids(1)));
    assert_eq!(
        kazoo_acl(&hosts, "exists", "/controller"),
        "True",
        "kwait removed /controller"
    );
}

/// `kwait ARGS` in a mount namespace of its own whose /etc/resolv.conf
/// names only `dns`.
fn with_resolver(dns: &Dns, dir: &TempDir, args: &[&str]) -> Command {
    let mut cmd = peers::kwait_with_resolver(dns.ip(), "timeout:1 attempts:1", None, dir);
    cmd.args(args);
    cmd
}

/// A registered endpoint whose name DNS does not answer for (a temporary
/// failure, a lookup that runs out of time) may belong to a live broker:
/// kwait refuses to delete. Only a definite "no such name" counts as gone.
/// (kwait once took every failed lookup for a dead broker.)
#[test]
fn endpoint_names_dns_cannot_answer_are_not_deleted() {
    let zk = ZooKeeper::start_ready();
    let hosts = zk.addr();
    let target = format!("zk://{hosts}");
    let dns = Dns::start();
    let dir = TempDir::new("zk-dns");
    crashed_broker(&hosts, 1, "PLAINTEXT://kafka-1.flaky.test:9092", &[]);
    crashed_broker(&hosts, 2, "PLAINTEXT://kafka-2.slow.test:9092", &[]);
    crashed_broker(&hosts, 3, "PLAINTEXT://kafka-3.gone.test:9092", &[]);

    // SERVFAIL: kwait's resolver takes it as the server's answer at once.
    // No answer at all: kwait's 500 ms runs out first.
    for (id, host, attempt_timeout, why) in [
        (
            1,
            "kafka-1.flaky.test",
            "3s",
            "cannot resolve 'kafka-1.flaky.test' yet",
        ),
        (
            2,
            "kafka-2.slow.test",
            "500ms",
            "cannot resolve 'kafka-2.slow.test' yet: no DNS answer from",
        ),
    ] {
        let before = zk_stat(&hosts, &ids(id)).expect("registered");
        let args = [
            target.as_str(),
            "--clean-stale-broker",
            &id.to_string(),
            "--attempt-timeout",
            attempt_timeout,
        ];
        let r = peers::run(&mut with_resolver(&dns, &dir, &args), LIMIT);
        r.expect(
            1,
            &[
                &format!(
                    "cannot tell whether broker {id} is alive at PLAINTEXT://{host}:9092 \
                     (registered in /brokers/ids/{id}): the lookup of {host} failed temporarily"
                ),
                why,
                "not deleting",
            ],
        );
        assert_eq!(zk_stat(&hosts, &ids(id)), Some(before), "{}", r.stderr);
    }

    let args = [target.as_str(), "--clean-stale-broker", "3"];
    let r = peers::run(&mut with_resolver(&dns, &dir, &args), LIMIT);
    r.expect(
        0,
        &[
            "PLAINTEXT://kafka-3.gone.test:9092 does not answer (cannot resolve",
            "removed stale /brokers/ids/3",
        ],
    );
    assert!(!zk_exists(&hosts, &ids(3)));
}

// ---------------------------------------------------------------------------
// Not ZooKeeper
// ---------------------------------------------------------------------------

/// A zk:// target at a port that is not ZooKeeper's (a Kafka broker, a
/// server answering garbage) says so, not "malformed session answer".
#[test]
fn a_port_that_is_not_zookeeper_says_so() {
    let tansu = Tansu::start_ready();
    let garbage = Fake::garbage();
    let huge = Fake::huge_length();
    let cut = Fake::reset_mid_frame();
    for addr in [tansu.addr(), garbage.addr(), huge.addr(), cut.addr()] {
        let r = run_kwait(&["probe", "-t", "2s", &format!("zk://{addr}")], &[], LIMIT);
        r.expect(
            1,
            &[&format!(
                "{addr}: no ZooKeeper answer to the session request (is this ZooKeeper's client port?)"
            )],
        );
        assert!(!r.stderr.contains("malformed"), "{}", r.stderr);
        one_short_line_each(&r);
    }
    // A port that closes at once: ZooKeeper without quorum does that too.
    let closing = Fake::closing();
    let r = run_kwait(
        &["probe", "-t", "2s", &format!("zk://{}", closing.addr())],
        &[],
        LIMIT,
    );
    r.expect(
        1,
        &["connection closed at the session request: no quorum yet"],
    );
}
