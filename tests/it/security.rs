//! Kafka security against real peers: TLS and mTLS through stunnel (OpenSSL)
//! in front of tansu, SASL PLAIN and SCRAM-SHA-256/512 through
//! tests/helpers/sasl_front.py (SCRAM checked by the `scramp` library), and
//! both stacked for SASL_SSL. tansu always advertises the front-most port, so
//! the advertised-listener check goes through the same TLS and SASL as the
//! bootstrap connection.
//!
//! Settings that waiting cannot fix (a wrong password, a mechanism the broker
//! does not offer, an untrusted or mismatching certificate) must end wait
//! mode with exit 1 at once, never 124 after the whole -t.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use crate::peers::{
    free_port, kwait, poll_until, Certs, ChildGuard, SaslFront, Stunnel, StunnelConfig, Tansu,
    TempDir,
};

const LONG: Duration = Duration::from_secs(30);
/// "Fails fast": far below the -t the failing runs are given (30 s).
const FAST: Duration = Duration::from_secs(10);
const USER: &str = "alice";
/// Distinctive, so that finding it in output means a leak.
const PASSWORD: &str = "Pw-alice-7f3e9c";
const ALL_MECHANISMS: &str = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512";

/// A finished kwait run.
struct Run {
    args: Vec<String>,
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Run {
    fn new(args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = kwait();
        cmd.args(args).stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let start = Instant::now();
        let out: Output = cmd.output().expect("run kwait");
        Run {
            args: args.iter().map(|a| a.to_string()).collect(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            took: start.elapsed(),
        }
    }

    /// Asserts the exit code and that stderr holds every needle.
    fn expect(&self, code: i32, needles: &[&str]) -> &Run {
        assert_eq!(
            self.code,
            Some(code),
            "kwait {:?} (took {:?}):\n{}",
            self.args,
            self.took,
            self.stderr
        );
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "kwait {:?}: missing '{needle}' in:\n{}",
                self.args,
                self.stderr
            );
        }
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        self
    }

    /// Wait mode ended with exit 1 long before its -t of 30 s.
    fn expect_fatal(&self, needles: &[&str]) -> &Run {
        self.expect(1, needles);
        assert!(
            self.took < FAST,
            "kwait {:?} took {:?} to give up:\n{}",
            self.args,
            self.took,
            self.stderr
        );
        self
    }

    fn expect_no_secret(&self, secret: &str) -> &Run {
        assert!(
            !self.stdout.contains(secret) && !self.stderr.contains(secret),
            "kwait {:?} printed the secret:\nstdout: {}\nstderr: {}",
            self.args,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// `kwait probe ARGS`.
fn probe(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut all = vec!["probe"];
    all.extend(args);
    Run::new(&all, env)
}

/// `kwait TARGET -t 30s` (no COMMAND): what a failing setting must end fast.
fn wait(target: &str, env: &[(&str, &str)]) -> Run {
    Run::new(&[target, "-t", "30s"], env)
}

fn password_env() -> [(&'static str, &'static str); 1] {
    [("KWAIT_KAFKA_PASSWORD", PASSWORD)]
}

/// A kwait in wait mode in the background, stdout and stderr in files.
struct Background {
    child: ChildGuard,
    dir: TempDir,
}

impl Background {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Background {
        let dir = TempDir::new("security-wait");
        let mut cmd = kwait();
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("stdout")).expect("stdout file"))
            .stderr(std::fs::File::create(dir.path().join("stderr")).expect("stderr file"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        Background {
            child: ChildGuard::spawn("kwait", &mut cmd),
            dir,
        }
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        self.read("stderr")
    }

    fn expect_log(&self, needle: &str) {
        assert!(
            poll_until(LONG, || self.stderr().contains(needle)),
            "kwait never logged '{needle}':\n{}",
            self.stderr()
        );
    }

    fn finish(&mut self) -> i32 {
        self.child.wait_exit(LONG).code().unwrap_or(-1)
    }
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write test file");
    p
}

fn server_stunnel(certs: &Certs, port: u16, backend: u16, client_ca: Option<&Path>) -> Stunnel {
    let (cert, key) = certs.server();
    Stunnel::start(
        port,
        backend,
        &StunnelConfig {
            cert: &cert,
            key: &key,
            client_ca,
            extra: &[],
        },
    )
}

/// tansu behind stunnel, advertising `localhost:<TLS port>`.
fn tls_broker(certs: &Certs, client_ca: Option<&Path>, extra: &[&str]) -> (Tansu, Stunnel) {
    let (tansu_port, tls_port) = (free_port(), free_port());
    let tansu = Tansu::start_advertising(tansu_port, &format!("localhost:{tls_port}"));
    tansu.wait_accepting(LONG);
    let (cert, key) = certs.server();
    let tls = Stunnel::start(
        tls_port,
        tansu_port,
        &StunnelConfig {
            cert: &cert,
            key: &key,
            client_ca,
            extra,
        },
    );
    (tansu, tls)
}

/// tansu behind the SASL front, advertising `localhost:<front port>`;
/// alice's password is [`PASSWORD`].
fn sasl_broker(mechanisms: &str, extra: &[&str]) -> (Tansu, SaslFront) {
    let (tansu_port, front_port) = (free_port(), free_port());
    let tansu = Tansu::start_advertising(tansu_port, &format!("localhost:{front_port}"));
    tansu.wait_accepting(LONG);
    let front = SaslFront::start_with(
        front_port,
        &tansu.addr(),
        &[(USER, PASSWORD), ("bob", "bob-pw")],
        mechanisms,
        extra,
    );
    (tansu, front)
}

/// SASL_SSL: stunnel, then the SASL front, then tansu, which advertises
/// `localhost:<TLS port>`.
fn sasl_ssl_broker(certs: &Certs) -> (Tansu, SaslFront, Stunnel) {
    let (tansu_port, front_port, tls_port) = (free_port(), free_port(), free_port());
    let tansu = Tansu::start_advertising(tansu_port, &format!("localhost:{tls_port}"));
    tansu.wait_accepting(LONG);
    let front = SaslFront::start(
        front_port,
        &tansu.addr(),
        &[(USER, PASSWORD)],
        ALL_MECHANISMS,
    );
    let tls = server_stunnel(certs, tls_port, front_port, None);
    (tansu, front, tls)
}

/// How many connections the front authenticated with `mechanism` as alice.
fn authenticated(front: &SaslFront, mechanism: &str) -> usize {
    front
        .log()
        .matches(&format!("{mechanism} authenticated '{USER}'"))
        .count()
}

// ---------------------------------------------------------------- TLS

#[test]
fn tls_with_a_private_ca_by_name_and_by_address() {
    let certs = Certs::new();
    let (_tansu, tls) = tls_broker(&certs, None, &[]);
    let ca = path(&certs.ca());
    // The certificate has SAN DNS:localhost and IP:127.0.0.1; tansu
    // advertises localhost:<TLS port>, so the advertised-listener check
    // is a verified TLS connection too.
    for host in ["localhost", "127.0.0.1"] {
        let target = format!("kafka://{host}:{}?tls=true&ca={ca}", tls.port());
        probe(&[&target], &[]).expect(0, &["ready: 1 broker (111), controller 111"]);
    }
    // ca= alone implies TLS.
    let target = format!("kafka://localhost:{}?ca={ca}", tls.port());
    probe(&[&target], &[]).expect(0, &["ready: 1 broker (111)"]);
}

#[test]
fn tls_waits_for_the_broker_behind_the_terminator() {
    let certs = Certs::new();
    let (tansu_port, tls_port) = (free_port(), free_port());
    // The terminator is up, the broker behind it is not: TLS handshakes
    // succeed and the Kafka request then finds nothing. Not fatal.
    let _tls = server_stunnel(&certs, tls_port, tansu_port, None);
    let target = format!(
        "kafka://localhost:{tls_port}?tls=true&ca={}",
        path(&certs.ca())
    );
    let mut waiting = Background::start(&[&target, "-t", "30s", "-v"], &[]);
    // An attempt failed at the Kafka request, after the TLS handshake.
    waiting.expect_log("ApiVersions");
    assert!(
        waiting.child.try_wait().is_none(),
        "kwait gave up while the broker was merely down:\n{}",
        waiting.stderr()
    );
    let tansu = Tansu::start_advertising(tansu_port, &format!("localhost:{tls_port}"));
    tansu.wait_accepting(LONG);
    let code = waiting.finish();
    assert_eq!(code, 0, "{}", waiting.stderr());
    assert!(
        waiting.stderr().contains("ready after")
            && waiting.stderr().contains("1 broker (111), controller 111"),
        "{}",
        waiting.stderr()
    );
}

#[test]
fn tls_advertised_listener_check_verifies_the_certificate_too() {
    let certs = Certs::new();
    let (tansu_port, good_port, wrong_port) = (free_port(), free_port(), free_port());
    // Bootstrap through a good certificate; the broker advertises a
    // listener whose certificate names another host.
    let tansu = Tansu::start_advertising(tansu_port, &format!("localhost:{wrong_port}"));
    tansu.wait_accepting(LONG);
    let _good = server_stunnel(&certs, good_port, tansu_port, None);
    let (cert, key) = certs.wrong_name();
    let _wrong = Stunnel::start(
        wrong_port,
        tansu_port,
        &StunnelConfig {
            cert: &cert,
            key: &key,
            client_ca: None,
            extra: &[],
        },
    );
    let target = format!(
        "kafka://localhost:{good_port}?tls=true&ca={}",
        path(&certs.ca())
    );
    let advertised = format!("localhost:{wrong_port}");
    probe(&[&target], &[]).expect(1, &[&advertised, "does not match its host name"]);
    wait(&target, &[]).expect_fatal(&[&advertised, "does not match its host name"]);
}

#[test]
fn mtls_with_a_client_certificate() {
    let certs = Certs::new();
    let ca = certs.ca();
    let (_tansu, tls) = tls_broker(&certs, Some(&ca), &[]);
    let (cert, key) = certs.client();
    let target = format!(
        "kafka://localhost:{}?tls=true&ca={}&cert={}&key={}",
        tls.port(),
        path(&ca),
        path(&cert),
        path(&key)
    );
    probe(&[&target], &[]).expect(0, &["ready: 1 broker (111), controller 111"]);
    // cert= without key= is a usage error.
    let half = format!("kafka://localhost:{}?cert={}", tls.port(), path(&cert));
    Run::new(&[&half, "-t", "1s"], &[]).expect(2, &["cert= and key= go together"]);
}

/// stunnel requires a client certificate and kwait has none. With TLS 1.3
/// the server's refusal (alert certificate_required) arrives after the
/// client finished its handshake, on the first read.
#[test]
fn mtls_without_a_client_certificate_tls13() {
    let certs = Certs::new();
    let ca = certs.ca();
    let (_tansu, tls) = tls_broker(&certs, Some(&ca), &["sslVersionMin = TLSv1.3"]);
    let target = format!("kafka://localhost:{}?tls=true&ca={}", tls.port(), path(&ca));
    probe(&[&target], &[]).expect(1, &["client certificate", "cert="]);
    wait(&target, &[]).expect_fatal(&["client certificate", "cert="]);
}

/// The same over TLS 1.2, where the refusal ends the handshake itself.
#[test]
fn mtls_without_a_client_certificate_tls12() {
    let certs = Certs::new();
    let ca = certs.ca();
    let (_tansu, tls) = tls_broker(&certs, Some(&ca), &["sslVersionMax = TLSv1.2"]);
    let target = format!("kafka://localhost:{}?tls=true&ca={}", tls.port(), path(&ca));
    probe(&[&target], &[]).expect(1, &["client certificate", "cert="]);
    wait(&target, &[]).expect_fatal(&["client certificate", "cert="]);
}

#[test]
fn untrusted_ca_fails_fast() {
    let certs = Certs::new();
    let (_tansu, tls) = tls_broker(&certs, None, &[]);
    let port = tls.port();
    for target in [
        // Only the built-in roots.
        format!("kafka://localhost:{port}?tls=true"),
        // Another CA than the one that signed the broker's certificate.
        format!(
            "kafka://localhost:{port}?tls=true&ca={}",
            path(&certs.other_ca())
        ),
    ] {
        let needles = ["not signed by a trusted CA", "ca=PATH"];
        probe(&[&target], &[]).expect(1, &needles);
        wait(&target, &[]).expect_fatal(&needles);
    }
}

#[test]
fn wrong_host_name_fails_fast_unless_name_checks_are_off() {
    let certs = Certs::new();
    let (tansu_port, tls_port) = (free_port(), free_port());
    let tansu = Tansu::start_advertising(tansu_port, &format!("localhost:{tls_port}"));
    tansu.wait_accepting(LONG);
    let (cert, key) = certs.wrong_name();
    let _tls = Stunnel::start(
        tls_port,
        tansu_port,
        &StunnelConfig {
            cert: &cert,
            key: &key,
            client_ca: None,
            extra: &[],
        },
    );
    let ca = path(&certs.ca());
    let target = format!("kafka://localhost:{tls_port}?tls=true&ca={ca}");
    let needles = ["does not match its host name"];
    probe(&[&target], &[]).expect(1, &needles);
    wait(&target, &[]).expect_fatal(&needles);

    // Java's opt-out, ssl.endpoint.identification.algorithm empty: the chain
    // is still checked, the name is not.
    let dir = TempDir::new("no-name-check");
    let props = write(
        dir.path(),
        "client.properties",
        &format!(
            "security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location={ca}\n\
             ssl.endpoint.identification.algorithm=\n"
        ),
    );
    let target = format!("kafka://localhost:{tls_port}?config={}", path(&props));
    probe(&[&target], &[]).expect(0, &["ready: 1 broker (111)"]);

    // tls-verify=false checks nothing, and says so.
    let target = format!("kafka://localhost:{tls_port}?tls=true&tls-verify=false");
    probe(&[&target], &[]).expect(0, &["ready: 1 broker (111)", "tls-verify=false"]);
}

#[test]
fn tls_to_a_plaintext_port_is_named() {
    let tansu = Tansu::start_ready();
    let target = format!("kafka://{}?tls=true", tansu.addr());
    probe(&[&target, "-t", "2s"], &[]).expect(1, &["no TLS handshake answer", "plaintext"]);
    // Not fatal: a slow TLS listener looks the same for a while.
    Run::new(&[&target, "-t", "2s"], &[]).expect(124, &["no TLS handshake answer"]);
}

#[test]
fn plaintext_to_a_tls_port_is_named() {
    let certs = Certs::new();
    let (_tansu, tls) = tls_broker(&certs, None, &[]);
    let target = format!("kafka://localhost:{}", tls.port());
    probe(&[&target], &[]).expect(1, &["(a TLS listener? then add tls=true)"]);
    Run::new(&[&target, "-t", "2s"], &[]).expect(124, &["a TLS listener? then add tls=true"]);
}

// ---------------------------------------------------------------- SASL

#[test]
fn sasl_plain() {
    let (_tansu, front) = sasl_broker(ALL_MECHANISMS, &[]);
    let port = front.port();
    for target in [
        format!("kafka://localhost:{port}?sasl=PLAIN&user={USER}"),
        // user= alone means PLAIN, Kafka's default mechanism.
        format!("kafka://localhost:{port}?user={USER}"),
    ] {
        probe(&[&target], &password_env())
            .expect(0, &["ready: 1 broker (111), controller 111"])
            .expect_no_secret(PASSWORD);
    }
    // Bootstrap and advertised-listener connections both authenticated.
    assert!(authenticated(&front, "PLAIN") >= 4, "{}", front.log());
}

#[test]
fn sasl_scram_sha_256_with_a_password_file() {
    let (_tansu, front) = sasl_broker(ALL_MECHANISMS, &[]);
    let dir = TempDir::new("password-file");
    // A trailing newline, as `echo` writes it, is not part of the password.
    let file = write(dir.path(), "password", &format!("{PASSWORD}\n"));
    let target = format!(
        "kafka://localhost:{}?sasl=SCRAM-SHA-256&user={USER}&password-file={}",
        front.port(),
        path(&file)
    );
    probe(&[&target], &[])
        .expect(0, &["ready: 1 broker (111), controller 111"])
        .expect_no_secret(PASSWORD);
    assert!(
        authenticated(&front, "SCRAM-SHA-256") >= 2,
        "{}",
        front.log()
    );
}

#[test]
fn sasl_scram_sha_512() {
    let (_tansu, front) = sasl_broker(ALL_MECHANISMS, &[]);
    let target = format!(
        "kafka://localhost:{}?sasl=scram-sha-512&user={USER}",
        front.port()
    );
    probe(&[&target], &password_env())
        .expect(0, &["ready: 1 broker (111), controller 111"])
        .expect_no_secret(PASSWORD);
    assert!(
        authenticated(&front, "SCRAM-SHA-512") >= 2,
        "{}",
        front.log()
    );
}

#[test]
fn sasl_ssl_scram() {
    let certs = Certs::new();
    let (tansu, front, tls) = sasl_ssl_broker(&certs);
    let target = format!(
        "kafka://localhost:{}?tls=true&ca={}&sasl=SCRAM-SHA-512&user={USER}",
        tls.port(),
        path(&certs.ca())
    );
    probe(&[&target], &password_env())
        .expect(0, &["ready: 1 broker (111), controller 111"])
        .expect_no_secret(PASSWORD);
    assert!(
        authenticated(&front, "SCRAM-SHA-512") >= 2,
        "{}",
        front.log()
    );
    // Topic and group checks run on the authenticated TLS connection.
    tansu.create_topic("orders", 2);
    let checks = format!("{target}&topics=orders&group=billing");
    probe(&[&checks], &password_env()).expect(
        0,
        &[
            "topic orders (2 partitions led)",
            "group billing coordinator 111",
        ],
    );
    // Without tls the TLS port is named, with SASL or not.
    let plain = format!(
        "kafka://localhost:{}?sasl=SCRAM-SHA-512&user={USER}",
        tls.port()
    );
    probe(&[&plain], &password_env()).expect(1, &["a TLS listener? then add tls=true"]);
}

#[test]
fn sasl_wrong_password_fails_fast_naming_the_user() {
    let (_tansu, front) = sasl_broker(ALL_MECHANISMS, &[]);
    let wrong = "Not-the-pw-41d2";
    for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let target = format!(
            "kafka://localhost:{}?sasl={mechanism}&user={USER}",
            front.port()
        );
        let env = [("KWAIT_KAFKA_PASSWORD", wrong)];
        let needles = [
            &format!("SASL {mechanism} authentication failed for user '{USER}'")[..],
            "KWAIT_KAFKA_PASSWORD",
        ];
        wait(&target, &env)
            .expect_fatal(&needles)
            .expect_no_secret(wrong);
        probe(&[&target], &env)
            .expect(1, &needles)
            .expect_no_secret(wrong);
    }
    // An unknown user fails the same way (SCRAM fails it at the proof).
    let target = format!(
        "kafka://localhost:{}?sasl=SCRAM-SHA-256&user=mallory",
        front.port()
    );
    wait(&target, &password_env())
        .expect_fatal(&["authentication failed for user 'mallory'"])
        .expect_no_secret(PASSWORD);
}

#[test]
fn sasl_unsupported_mechanism_fails_fast_naming_the_offered_ones() {
    let (_tansu, front) = sasl_broker("PLAIN", &[]);
    let target = format!(
        "kafka://localhost:{}?sasl=SCRAM-SHA-256&user={USER}",
        front.port()
    );
    let needles = ["does not offer SASL SCRAM-SHA-256", "it offers PLAIN"];
    wait(&target, &password_env()).expect_fatal(&needles);
    probe(&[&target], &password_env()).expect(1, &needles);
    // A mechanism kwait does not know is a usage error before connecting.
    let target = format!("kafka://localhost:{}?sasl=GSSAPI&user={USER}", front.port());
    Run::new(&[&target, "-t", "1s"], &password_env())
        .expect(2, &["'GSSAPI' is not supported", "SCRAM-SHA-512"]);
}

#[test]
fn sasl_scram_broker_that_cannot_prove_the_password_is_refused() {
    // The front accepts any proof and answers a made-up server signature:
    // an impostor that does not know alice's password.
    let (_tansu, front) = sasl_broker(ALL_MECHANISMS, &["--impostor"]);
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let target = format!(
            "kafka://localhost:{}?sasl={mechanism}&user={USER}",
            front.port()
        );
        wait(&target, &password_env())
            .expect_fatal(&["SCRAM signature is wrong"])
            .expect_no_secret(PASSWORD);
    }
}

// ---------------------------------------------------- client.properties

/// Confluent Cloud's "Java client" snippet, verbatim in shape: single
/// quotes and runs of spaces in sasl.jaas.config, plus keys kwait ignores.
/// The test CA is private, so a PEM truststore is added.
#[test]
fn config_sasl_ssl_plain_as_confluent_cloud_prints_it() {
    let certs = Certs::new();
    let (_tansu, front, tls) = sasl_ssl_broker(&certs);
    let props = write(
        certs.dir(),
        "client.properties",
        &format!(
            "# Required connection configs for Kafka producer, consumer, and admin\n\
             bootstrap.servers=localhost:{port}\n\
             security.protocol=SASL_SSL\n\
             sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule   \
             required username='{USER}'   password='{PASSWORD}';\n\
             sasl.mechanism=PLAIN\n\
             # Required for correctness in Apache Kafka clients prior to 2.6\n\
             client.dns.lookup=use_all_dns_ips\n\
             \n\
             # Best practice for higher availability in Apache Kafka clients prior to 3.0\n\
             session.timeout.ms=45000\n\
             \n\
             # Best practice for Kafka producer to prevent data loss\n\
             acks=all\n\
             ssl.truststore.type=PEM\n\
             ssl.truststore.location={ca}\n",
            port = tls.port(),
            ca = path(&certs.ca()),
        ),
    );
    let target = format!("kafka://localhost:{}?config={}", tls.port(), path(&props));
    probe(&[&target], &[])
        .expect(0, &["ready: 1 broker (111), controller 111"])
        .expect_no_secret(PASSWORD);
    assert!(authenticated(&front, "PLAIN") >= 2, "{}", front.log());
}

/// The form Kafka's own documentation shows: double quotes, one line.
#[test]
fn config_sasl_ssl_plain_as_kafka_docs_show_it() {
    let certs = Certs::new();
    let (_tansu, front, tls) = sasl_ssl_broker(&certs);
    let props = write(
        certs.dir(),
        "client.properties",
        &format!(
            "security.protocol=SASL_SSL\n\
             sasl.mechanism=PLAIN\n\
             sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \
             username=\"{USER}\" password=\"{PASSWORD}\";\n\
             ssl.truststore.type=PEM\n\
             ssl.truststore.location={ca}\n",
            ca = path(&certs.ca()),
        ),
    );
    let target = format!("kafka://localhost:{}?config={}", tls.port(), path(&props));
    probe(&[&target], &[])
        .expect(0, &["ready: 1 broker (111), controller 111"])
        .expect_no_secret(PASSWORD);
    assert!(authenticated(&front, "PLAIN") >= 2, "{}", front.log());
}

#[test]
fn config_scram_and_ignored_keys_listed_once() {
    let (_tansu, front) = sasl_broker(ALL_MECHANISMS, &[]);
    let dir = TempDir::new("scram-config");
    let props = write(
        dir.path(),
        "client.properties",
        &format!(
            "bootstrap.servers=localhost:{port}\n\
             security.protocol=SASL_PLAINTEXT\n\
             sasl.mechanism=SCRAM-SHA-512\n\
             sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\\n    \
             username=\"{USER}\" \\\n    password=\"{PASSWORD}\";\n\
             client.id=orders-app\n\
             acks=all\n",
            port = front.port()
        ),
    );
    let target = format!("kafka://localhost:{}?config={}", front.port(), path(&props));
    let run = probe(&[&target], &[]);
    run.expect(
        0,
        &[
            "ready: 1 broker (111), controller 111",
            "keys kwait ignores: bootstrap.servers, client.id, acks",
        ],
    )
    .expect_no_secret(PASSWORD);
    assert_eq!(
        run.stderr.matches("kwait ignores").count(),
        1,
        "{}",
        run.stderr
    );
    assert!(
        authenticated(&front, "SCRAM-SHA-512") >= 2,
        "{}",
        front.log()
    );

    // Wait mode makes several attempts, still one warning; URL parameters
    // win over the file.
    let target = format!(
        "kafka://localhost:{}?config={}&sasl=SCRAM-SHA-256",
        front.port(),
        path(&props)
    );
    let run = wait(&target, &[]);
    run.expect(0, &["ready"]).expect_no_secret(PASSWORD);
    assert_eq!(
        run.stderr.matches("kwait ignores").count(),
        1,
        "{}",
        run.stderr
    );
    assert!(
        authenticated(&front, "SCRAM-SHA-256") >= 2,
        "{}",
        front.log()
    );
}

#[test]
fn config_ssl_with_pem_files_for_mtls() {
    let certs = Certs::new();
    let ca = certs.ca();
    let (_tansu, tls) = tls_broker(&certs, Some(&ca), &[]);
    let props = write(
        certs.dir(),
        "client.properties",
        &format!(
            "security.protocol=SSL\n\
             ssl.truststore.type=PEM\n\
             ssl.truststore.location={}\n\
             ssl.keystore.type=PEM\n\
             ssl.keystore.location={}\n",
            path(&ca),
            path(&certs.path("client-keystore.pem"))
        ),
    );
    let target = format!("kafka://localhost:{}?config={}", tls.port(), path(&props));
    probe(&[&target], &[]).expect(0, &["ready: 1 broker (111), controller 111"]);
}

#[test]
fn config_jks_and_pkcs12_stores_are_usage_errors_asking_for_pem() {
    let dir = TempDir::new("jks-config");
    let store = write(dir.path(), "store.jks", "not really a JKS store");
    for (text, kind) in [
        (
            format!(
                "security.protocol=SSL\nssl.truststore.location={}\nssl.truststore.password=changeit\n",
                path(&store)
            ),
            "JKS",
        ),
        (
            format!(
                "security.protocol=SSL\nssl.keystore.type=PKCS12\nssl.keystore.location={}\n",
                path(&store)
            ),
            "PKCS12",
        ),
    ] {
        let props = write(dir.path(), "client.properties", &text);
        let target = format!("kafka://localhost:9?config={}", path(&props));
        Run::new(&[&target, "-t", "1s"], &[]).expect(
            2,
            &[
                &format!("is a {kind} store, which kwait cannot read")[..],
                "PEM",
            ],
        );
    }
}

// ---------------------------------------------------------------- secrets

#[test]
fn password_in_the_url_is_a_usage_error_saying_where_it_goes() {
    let target = "kafka://localhost:9?user=alice&password=hunter2-in-url";
    Run::new(&[target, "-t", "1s"], &[]).expect(
        2,
        &[
            "a password does not go in the URL",
            "KWAIT_KAFKA_PASSWORD",
            "password-file=PATH",
        ],
    );
}

/// The refusal must not repeat the password it refuses: container logs
/// are collected and kept.
#[test]
fn password_in_the_url_is_not_echoed() {
    let target = "kafka://localhost:9?user=alice&password=hunter2-in-url";
    Run::new(&[target, "-t", "1s"], &[])
        .expect(2, &["a password does not go in the URL"])
        .expect_no_secret("hunter2-in-url");
}

#[test]
fn secrets_stay_out_of_argv_and_output() {
    let (tansu_port, front_port) = (free_port(), free_port());
    let wrong = "Wrong-pw-9b1c55";
    let target = format!("kafka://localhost:{front_port}?sasl=SCRAM-SHA-256&user={USER}");
    // Nothing there yet: kwait keeps trying, with the password in its
    // environment only.
    let mut waiting = Background::start(
        &[&target, "-t", "30s", "-v"],
        &[("KWAIT_KAFKA_PASSWORD", wrong)],
    );
    waiting.expect_log("connection refused");
    let pid = waiting.child.pid();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("read cmdline");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("read environ");
    let has = |hay: &[u8], needle: &str| hay.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(
        has(&environ, &format!("KWAIT_KAFKA_PASSWORD={wrong}")),
        "not kwait's environment? pid {pid}"
    );
    assert!(
        !has(&cmdline, wrong),
        "password in /proc/{pid}/cmdline: {}",
        String::from_utf8_lossy(&cmdline)
    );

    // The broker appears and refuses the password: exit 1, naming the user,
    // never the password.
    let tansu = Tansu::start_advertising(tansu_port, &format!("localhost:{front_port}"));
    tansu.wait_accepting(LONG);
    let front = SaslFront::start(
        front_port,
        &tansu.addr(),
        &[(USER, PASSWORD)],
        ALL_MECHANISMS,
    );
    let code = waiting.finish();
    let (stdout, stderr) = (waiting.read("stdout"), waiting.stderr());
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!("authentication failed for user '{USER}'")),
        "{stderr}"
    );
    assert!(
        !stdout.contains(wrong) && !stderr.contains(wrong),
        "password printed:\n{stdout}\n{stderr}"
    );

    // Verbose runs that succeed, from the environment and from a JAAS line,
    // print no password either.
    probe(&[&target, "-v"], &password_env())
        .expect(0, &["ready"])
        .expect_no_secret(PASSWORD);
    let dir = TempDir::new("secret-config");
    let props = write(
        dir.path(),
        "client.properties",
        &format!(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n\
             sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \
             username=\"{USER}\" password=\"{PASSWORD}\";\n"
        ),
    );
    let target = format!("kafka://localhost:{front_port}?config={}", path(&props));
    Run::new(&[&target, "-t", "30s", "-v"], &[])
        .expect(0, &["ready"])
        .expect_no_secret(PASSWORD);
    assert!(authenticated(&front, "PLAIN") >= 2, "{}", front.log());
}

// ---------------------------------------------------------------- https

/// https:// uses the same TLS stack: a server whose certificate comes from a
/// private CA is refused at once, naming the cause.
#[test]
fn https_with_a_private_ca_fails_fast() {
    let certs = Certs::new();
    let (http_port, tls_port) = (free_port(), free_port());
    let web = TempDir::new("https-root");
    std::fs::write(web.path().join("health"), "ok\n").expect("write health");
    let mut server = std::process::Command::new("python3");
    server
        .args(["-m", "http.server", "--bind", "127.0.0.1"])
        .arg(http_port.to_string())
        .arg("--directory")
        .arg(web.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _server = ChildGuard::spawn("python3 -m http.server", &mut server);
    crate::peers::wait_port(&format!("127.0.0.1:{http_port}"), LONG).expect("http.server");
    let _tls = server_stunnel(&certs, tls_port, http_port, None);
    // The plain server really serves the path.
    probe(&[&format!("http://127.0.0.1:{http_port}/health")], &[]).expect(0, &["ready"]);

    let target = format!("https://localhost:{tls_port}/health");
    let run = wait(&target, &[]);
    run.expect_fatal(&["not signed by a trusted CA"]);
    // The hint must be one the user can follow: if it says ca=PATH, an
    // https:// target must take ca=PATH.
    if run.stderr.contains("ca=PATH") {
        let with_ca = format!("{target}?ca={}", path(&certs.ca()));
        probe(&[&with_ca], &[]).expect(0, &["ready"]);
    }
}
