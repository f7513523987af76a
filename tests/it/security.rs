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
use std::process::Stdio;
use std::time::Duration;

use crate::peers::{
    free_port, kwait_with, run_kwait, Certs, ChildGuard, Done, Fake, Running, SaslFront, Stunnel,
    StunnelConfig, Tansu, TempDir,
};

const LONG: Duration = Duration::from_secs(30);
/// "Fails fast": far below the -t the failing runs are given (30 s).
const FAST: Duration = Duration::from_secs(10);
const USER: &str = "alice";
/// Distinctive, so that finding it in output means a leak.
const PASSWORD: &str = "Pw-alice-7f3e9c";
const ALL_MECHANISMS: &str = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512";
/// What `probe` says of tansu, ready.
const READY: &str = "ready: 1 broker (111), controller 111";

/// Far beyond every -t these tests give kwait.
const LIMIT: Duration = Duration::from_secs(60);

/// What these tests check of a finished run besides [`Done::expect`].
trait Checks {
    /// Wait mode ended with exit 1 long before its -t of 30 s.
    fn expect_fatal(&self, needles: &[&str]) -> &Self;
    /// Neither stdout nor stderr holds `secret`.
    fn expect_no_secret(&self, secret: &str) -> &Self;
}

impl Checks for Done {
    fn expect_fatal(&self, needles: &[&str]) -> &Done {
        self.expect(1, needles);
        assert!(
            self.elapsed < FAST,
            "kwait {:?} took {:?} to give up:\n{}",
            self.args,
            self.elapsed,
            self.stderr
        );
        self
    }

    fn expect_no_secret(&self, secret: &str) -> &Done {
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

/// `kwait probe TARGET` with `env`: ready, and alice's password printed
/// nowhere.
fn probe_ready_as_alice(target: &str, env: &[(&str, &str)]) {
    probe(&[target], env)
        .expect(0, &[READY])
        .expect_no_secret(PASSWORD);
}

/// A setting waiting cannot fix: `probe` exits 1 and wait mode gives up
/// fast ([`Checks::expect_fatal`]), both with every one of `needles` on
/// stderr. Returns both runs.
fn fails_fast(target: &str, env: &[(&str, &str)], needles: &[&str]) -> [Done; 2] {
    let probed = probe(&[target], env);
    probed.expect(1, needles);
    let waited = wait(target, env);
    waited.expect_fatal(needles);
    [probed, waited]
}

/// `kwait probe ARGS`.
fn probe(args: &[&str], env: &[(&str, &str)]) -> Done {
    let mut all = vec!["probe"];
    all.extend(args);
    run_kwait(&all, env, LIMIT)
}

/// `kwait TARGET -t 30s` (no COMMAND): what a failing setting must end fast.
fn wait(target: &str, env: &[(&str, &str)]) -> Done {
    run_kwait(&[target, "-t", "30s"], env, LIMIT)
}

fn password_env() -> [(&'static str, &'static str); 1] {
    [("KWAIT_KAFKA_PASSWORD", PASSWORD)]
}

/// A kwait in wait mode in the background.
fn background(args: &[&str], env: &[(&str, &str)]) -> Running {
    Running::spawn("kwait", &mut kwait_with(args, env))
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write test file");
    p
}

/// stunnel on `port` relaying to `backend`, with `leaf`'s (certificate,
/// key): e.g. `certs.server()`.
fn stunnel(
    leaf: (PathBuf, PathBuf),
    port: u16,
    backend: u16,
    client_ca: Option<&Path>,
    extra: &[&str],
) -> Stunnel {
    let (cert, key) = leaf;
    Stunnel::start(
        port,
        backend,
        &StunnelConfig {
            cert: &cert,
            key: &key,
            client_ca,
            extra,
        },
    )
}

/// tansu on `port`, advertising `localhost:<front>` (the TLS or SASL front
/// to start before it), and accepting.
fn tansu_behind(port: u16, front: u16) -> Tansu {
    let tansu = Tansu::start_advertising(port, &format!("localhost:{front}"));
    tansu.wait_accepting(LONG);
    tansu
}

/// tansu behind stunnel with `leaf`'s certificate, advertising
/// `localhost:<TLS port>`.
fn tls_broker(
    leaf: (PathBuf, PathBuf),
    client_ca: Option<&Path>,
    extra: &[&str],
) -> (Tansu, Stunnel) {
    let (tansu_port, tls_port) = (free_port(), free_port());
    let tansu = tansu_behind(tansu_port, tls_port);
    let tls = stunnel(leaf, tls_port, tansu_port, client_ca, extra);
    (tansu, tls)
}

/// tansu behind the SASL front, advertising `localhost:<front port>`;
/// alice's password is [`PASSWORD`].
fn sasl_broker(mechanisms: &str, extra: &[&str]) -> (Tansu, SaslFront) {
    let (tansu_port, front_port) = (free_port(), free_port());
    let tansu = tansu_behind(tansu_port, front_port);
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
    let tansu = tansu_behind(tansu_port, tls_port);
    let front = SaslFront::start(
        front_port,
        &tansu.addr(),
        &[(USER, PASSWORD)],
        ALL_MECHANISMS,
    );
    let tls = stunnel(certs.server(), tls_port, front_port, None, &[]);
    (tansu, front, tls)
}

/// Asserts the front authenticated at least `n` connections with
/// `mechanism` as alice. A bootstrap by the very address the broker
/// advertises is one connection (it proves that listener too); by another
/// name, the advertised listener's check is a second.
#[track_caller]
fn assert_authenticated(front: &SaslFront, mechanism: &str, n: usize) {
    let log = front.log();
    let got = log
        .matches(&format!("{mechanism} authenticated '{USER}'"))
        .count();
    assert!(got >= n, "{log}");
}

/// Asserts kwait listed the keys it ignores exactly once.
#[track_caller]
fn assert_ignored_keys_listed_once(run: &Done) {
    assert_eq!(
        run.stderr.matches("kwait ignores").count(),
        1,
        "{}",
        run.stderr
    );
}

// ---------------------------------------------------------------- TLS

#[test]
fn tls_with_a_private_ca_by_name_and_by_address() {
    let certs = Certs::new();
    let (_tansu, tls) = tls_broker(certs.server(), None, &[]);
    let ca = path(&certs.ca());
    // The certificate has SAN DNS:localhost and IP:127.0.0.1; tansu
    // advertises localhost:<TLS port>, so the advertised-listener check
    // is a verified TLS connection too.
    for host in ["localhost", "127.0.0.1"] {
        let target = format!("kafka://{host}:{}?tls=true&ca={ca}", tls.port());
        probe(&[&target], &[]).expect(0, &[READY]);
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
    let _tls = stunnel(certs.server(), tls_port, tansu_port, None, &[]);
    let target = format!(
        "kafka://localhost:{tls_port}?tls=true&ca={}",
        path(&certs.ca())
    );
    let mut waiting = background(&[&target, "-t", "30s", "-v"], &[]);
    // An attempt failed at the Kafka request, after the TLS handshake.
    waiting.wait_for_stderr("ApiVersions", LONG);
    assert!(
        waiting.running(),
        "kwait gave up while the broker was merely down:\n{}",
        waiting.stderr()
    );
    let _tansu = tansu_behind(tansu_port, tls_port);
    let done = waiting.finish(LONG);
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert!(
        done.stderr.contains("ready after")
            && done.stderr.contains("1 broker (111), controller 111"),
        "{}",
        done.stderr
    );
}

#[test]
fn tls_advertised_listener_check_verifies_the_certificate_too() {
    let certs = Certs::new();
    let (tansu_port, good_port, wrong_port) = (free_port(), free_port(), free_port());
    // Bootstrap through a good certificate; the broker advertises a
    // listener whose certificate names another host.
    let _tansu = tansu_behind(tansu_port, wrong_port);
    let _good = stunnel(certs.server(), good_port, tansu_port, None, &[]);
    let _wrong = stunnel(certs.wrong_name(), wrong_port, tansu_port, None, &[]);
    let target = format!(
        "kafka://localhost:{good_port}?tls=true&ca={}",
        path(&certs.ca())
    );
    let advertised = format!("localhost:{wrong_port}");
    fails_fast(&target, &[], &[&advertised, "does not match its host name"]);
}

#[test]
fn mtls_with_a_client_certificate() {
    let certs = Certs::new();
    let ca = certs.ca();
    let (_tansu, tls) = tls_broker(certs.server(), Some(&ca), &[]);
    let (cert, key) = certs.client();
    let target = format!(
        "kafka://localhost:{}?tls=true&ca={}&cert={}&key={}",
        tls.port(),
        path(&ca),
        path(&cert),
        path(&key)
    );
    probe(&[&target], &[]).expect(0, &[READY]);
    // cert= without key= is a usage error.
    let half = format!("kafka://localhost:{}?cert={}", tls.port(), path(&cert));
    run_kwait(&[&half, "-t", "1s"], &[], LIMIT).expect(2, &["cert= and key= go together"]);
}

/// stunnel requires a client certificate (with `version`, a
/// `sslVersionMin`/`Max` line) and kwait has none.
fn mtls_without_a_client_certificate(version: &str) {
    let certs = Certs::new();
    let ca = certs.ca();
    let (_tansu, tls) = tls_broker(certs.server(), Some(&ca), &[version]);
    let target = format!("kafka://localhost:{}?tls=true&ca={}", tls.port(), path(&ca));
    fails_fast(&target, &[], &["client certificate", "cert="]);
}

/// With TLS 1.3 the server's refusal (alert certificate_required) arrives
/// after the client finished its handshake, on the first read.
#[test]
fn mtls_without_a_client_certificate_tls13() {
    mtls_without_a_client_certificate("sslVersionMin = TLSv1.3");
}

/// The same over TLS 1.2, where the refusal ends the handshake itself.
#[test]
fn mtls_without_a_client_certificate_tls12() {
    mtls_without_a_client_certificate("sslVersionMax = TLSv1.2");
}

#[test]
fn untrusted_ca_fails_fast() {
    let certs = Certs::new();
    let (_tansu, tls) = tls_broker(certs.server(), None, &[]);
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
        fails_fast(&target, &[], &needles);
    }
}

#[test]
fn wrong_host_name_fails_fast_unless_name_checks_are_off() {
    let certs = Certs::new();
    let (_tansu, tls) = tls_broker(certs.wrong_name(), None, &[]);
    let (tls_port, ca) = (tls.port(), path(&certs.ca()));
    let target = format!("kafka://localhost:{tls_port}?tls=true&ca={ca}");
    let needles = ["does not match its host name"];
    fails_fast(&target, &[], &needles);

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
    let warned = [
        "ssl.endpoint.identification.algorithm is empty",
        "host name is not checked",
    ];
    probe(&[&target], &[])
        .expect(0, &["ready: 1 broker (111)"])
        .expect(0, &warned);
    // Every time, as tls-verify=false: wait mode too.
    run_kwait(&[&target, "-t", "30s"], &[], LIMIT).expect(0, &warned);

    // tls-verify=false checks nothing, and says so.
    let target = format!("kafka://localhost:{tls_port}?tls=true&tls-verify=false");
    probe(&[&target], &[]).expect(0, &["ready: 1 broker (111)", "tls-verify=false"]);
}

#[test]
fn tls_to_a_plaintext_port_fails_fast() {
    // tansu reads the ClientHello as the start of a huge request and waits
    // for the rest; a plaintext ApiVersions at the same address proves what
    // it is.
    let tansu = Tansu::start_ready();
    let target = format!("kafka://{}?tls=true", tansu.addr());
    fails_fast(
        &target,
        &[],
        &["this is a plaintext listener", "drop tls=true"],
    );
}

#[test]
fn plaintext_to_a_tls_port_fails_fast() {
    let certs = Certs::new();
    let (_tansu, tls) = tls_broker(certs.server(), None, &[]);
    let target = format!("kafka://localhost:{}", tls.port());
    fails_fast(&target, &[], &["this is a TLS listener", "add tls=true"]);
}

/// A TLS front whose backend closes the connection: a broker restarting
/// behind a TLS terminator, or, under TLS 1.3, a broker refusing a client
/// without a certificate when the connection's reset outruns its alert. Not
/// ready, with the client-certificate question; never fatal.
#[test]
fn closed_right_after_the_tls_handshake_is_waited_for() {
    let certs = Certs::new();
    let fake = Fake::closing();
    let backend: u16 = fake
        .addr()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("fake's port");
    let port = free_port();
    let _tls = stunnel(certs.server(), port, backend, None, &[]);
    let target = format!("kafka://localhost:{port}?tls=true&ca={}", path(&certs.ca()));
    let reason = "right after the TLS handshake; does the broker require a client certificate (cert=, key=)?";
    probe(&[&target], &[]).expect(1, &[reason]);
    run_kwait(&[&target, "-t", "2s"], &[], LIMIT).expect(124, &[reason]);
}

/// A listener that accepts and closes at once (a published port with nothing
/// behind it yet, a load balancer without a healthy backend) is "not ready",
/// with TLS as without, and never fatal.
#[test]
fn accept_then_close_is_waited_for_with_and_without_tls() {
    let fake = Fake::closing();
    let addr = fake.addr();
    for (target, reason) in [
        (
            format!("kafka://{addr}?tls=true"),
            "closed the connection during the TLS handshake",
        ),
        (
            format!("kafka://{addr}"),
            "connection closed before answering",
        ),
        (
            format!("https://{addr}/health"),
            "closed the connection during the TLS handshake",
        ),
    ] {
        probe(&[&target], &[]).expect(1, &[reason]);
        let waited = run_kwait(&[&target, "-t", "2s"], &[], LIMIT);
        waited.expect(124, &[reason]);
        assert!(
            !waited.stderr.contains("is a plaintext listener")
                && !waited.stderr.contains("is a TLS listener"),
            "{target}: a closing port was taken for a wrong-protocol listener:\n{}",
            waited.stderr
        );
    }
    assert!(
        fake.connections() > 6,
        "kwait kept trying: {}",
        fake.connections()
    );
}

// ---------------------------------------------------------------- SASL

#[test]
fn sasl_plain() {
    let (_tansu, front) = sasl_broker(ALL_MECHANISMS, &[]);
    let port = front.port();
    for target in [
        format!("kafka://localhost:{port}?sasl=PLAIN&user={USER}"),
        // user= alone means PLAIN: kwait's shorthand (Kafka's default
        // sasl.mechanism is GSSAPI).
        format!("kafka://localhost:{port}?user={USER}"),
    ] {
        probe_ready_as_alice(&target, &password_env());
    }
    // Bootstrap and advertised-listener connections both authenticated.
    assert_authenticated(&front, "PLAIN", 2);
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
    probe_ready_as_alice(&target, &[]);
    assert_authenticated(&front, "SCRAM-SHA-256", 1);
}

#[test]
fn sasl_scram_sha_512() {
    let (_tansu, front) = sasl_broker(ALL_MECHANISMS, &[]);
    let target = format!(
        "kafka://localhost:{}?sasl=scram-sha-512&user={USER}",
        front.port()
    );
    probe_ready_as_alice(&target, &password_env());
    assert_authenticated(&front, "SCRAM-SHA-512", 1);
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
    probe_ready_as_alice(&target, &password_env());
    assert_authenticated(&front, "SCRAM-SHA-512", 1);
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
    probe(&[&plain], &password_env()).expect(1, &["this is a TLS listener", "add tls=true"]);
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
        for run in fails_fast(&target, &env, &needles) {
            run.expect_no_secret(wrong);
        }
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
    fails_fast(&target, &password_env(), &needles);
    // A mechanism kwait does not know is a usage error before connecting.
    let target = format!("kafka://localhost:{}?sasl=GSSAPI&user={USER}", front.port());
    run_kwait(&[&target, "-t", "1s"], &password_env(), LIMIT)
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

/// SASL set for a listener without it. tansu answers SaslHandshake with
/// UNSUPPORTED_SASL_MECHANISM listing the very mechanism asked for, so "it
/// does not offer PLAIN; it offers PLAIN" would be the message; asked for
/// a mechanism no broker has, it offers none of its own, which says what is
/// wrong.
#[test]
fn sasl_at_a_listener_without_sasl_fails_fast_saying_so() {
    let tansu = Tansu::start_ready();
    for mechanism in ["PLAIN", "SCRAM-SHA-256"] {
        let target = format!("kafka://{}?sasl={mechanism}&user={USER}", tansu.addr());
        let needles = [
            "offers none when asked which it has",
            "this listener does not take SASL",
            "drop user=/sasl=",
        ];
        for run in fails_fast(&target, &password_env(), &needles) {
            run.expect_no_secret(PASSWORD);
            assert!(!run.stderr.contains("does not offer"), "{}", run.stderr);
        }
    }
}

/// What Kafka answers a SaslHandshake with on a PLAINTEXT listener:
/// ILLEGAL_SASL_STATE, named with the fix rather than printed raw.
#[test]
fn sasl_at_a_kafka_plaintext_listener_fails_fast_saying_so() {
    let (_tansu, listener) = sasl_broker(ALL_MECHANISMS, &["--no-sasl"]);
    // The listener serves clients without SASL.
    probe(&[&format!("kafka://localhost:{}", listener.port())], &[]).expect(0, &[READY]);
    let target = format!("kafka://localhost:{}?user={USER}", listener.port());
    let needles = [
        "answers SaslHandshake with ILLEGAL_SASL_STATE (34)",
        "this listener does not take SASL",
        "use the broker's SASL listener",
    ];
    for run in fails_fast(&target, &password_env(), &needles) {
        run.expect_no_secret(PASSWORD);
    }
}

/// No SASL set for a SASL listener: Kafka answers ApiVersions, then closes
/// the connection on Metadata. A SaslHandshake on a fresh connection,
/// answered with the listener's mechanisms, proves it takes SASL.
#[test]
fn no_sasl_at_a_sasl_listener_fails_fast_naming_the_fix() {
    let (_tansu, front) = sasl_broker(ALL_MECHANISMS, &[]);
    for target in [
        format!("kafka://localhost:{}", front.port()),
        format!("kafka://127.0.0.1:{}", front.port()),
    ] {
        let needles = [
            "closed the connection on Metadata after answering ApiVersions",
            "answered with mechanisms PLAIN, SCRAM-SHA-256, SCRAM-SHA-512",
            "this is a SASL listener (add sasl= and user=, or config=",
        ];
        fails_fast(&target, &[], &needles);
    }
    // SASL_SSL with TLS set and SASL not: the proof goes through TLS too.
    let certs = Certs::new();
    let (_tansu, _front, tls) = sasl_ssl_broker(&certs);
    let target = format!(
        "kafka://localhost:{}?tls=true&ca={}",
        tls.port(),
        path(&certs.ca())
    );
    fails_fast(
        &target,
        &[],
        &["this is a SASL listener", "add sasl= and user="],
    );
}

/// A broker shutting down also answers ApiVersions and closes on Metadata,
/// but does not answer a SaslHandshake: not ready, with the SASL hint, and
/// never fatal.
#[test]
fn closed_on_metadata_without_proof_of_sasl_is_waited_for() {
    let (_tansu, front) = sasl_broker(ALL_MECHANISMS, &["--close-after-api-versions"]);
    let target = format!("kafka://localhost:{}", front.port());
    let reason = "closed the connection on Metadata after answering ApiVersions: \
                  a SASL listener does this (add sasl= and user=, or config=)";
    probe(&[&target], &[]).expect(1, &[reason]);
    let waited = run_kwait(&[&target, "-t", "2s", "-v"], &[], LIMIT);
    waited.expect(124, &[reason]);
    assert!(
        !waited.stderr.contains("this is a SASL listener"),
        "{}",
        waited.stderr
    );
}

// ---------------------------------------------------- client.properties

/// SASL_SSL with PLAIN, all from a client.properties: `props(TLS port, CA
/// file)` is its text.
fn config_sasl_ssl_plain(props: impl Fn(u16, &str) -> String) {
    let certs = Certs::new();
    let (_tansu, front, tls) = sasl_ssl_broker(&certs);
    let text = props(tls.port(), &path(&certs.ca()));
    let props = write(certs.dir(), "client.properties", &text);
    // By address: the broker advertises localhost, so its listener is
    // checked on a second connection, which must authenticate too (a
    // bootstrap by the advertised name itself proves that listener).
    let target = format!("kafka://127.0.0.1:{}?config={}", tls.port(), path(&props));
    probe_ready_as_alice(&target, &[]);
    assert_authenticated(&front, "PLAIN", 2);
}

/// Confluent Cloud's "Java client" snippet, verbatim in shape: single
/// quotes and runs of spaces in sasl.jaas.config, plus keys kwait ignores.
/// The test CA is private, so a PEM truststore is added.
#[test]
fn config_sasl_ssl_plain_as_confluent_cloud_prints_it() {
    config_sasl_ssl_plain(|port, ca| {
        format!(
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
             ssl.truststore.location={ca}\n"
        )
    });
}

/// The form Kafka's own documentation shows: double quotes, one line.
#[test]
fn config_sasl_ssl_plain_as_kafka_docs_show_it() {
    config_sasl_ssl_plain(|_, ca| {
        format!(
            "security.protocol=SASL_SSL\n\
             sasl.mechanism=PLAIN\n\
             sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \
             username=\"{USER}\" password=\"{PASSWORD}\";\n\
             ssl.truststore.type=PEM\n\
             ssl.truststore.location={ca}\n"
        )
    });
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
            READY,
            "keys kwait ignores: bootstrap.servers, client.id, acks",
        ],
    )
    .expect_no_secret(PASSWORD);
    assert_ignored_keys_listed_once(&run);
    assert_authenticated(&front, "SCRAM-SHA-512", 1);

    // Wait mode makes several attempts, still one warning; URL parameters
    // win over the file.
    let target = format!(
        "kafka://localhost:{}?config={}&sasl=SCRAM-SHA-256",
        front.port(),
        path(&props)
    );
    let run = wait(&target, &[]);
    run.expect(0, &["ready"]).expect_no_secret(PASSWORD);
    assert_ignored_keys_listed_once(&run);
    assert_authenticated(&front, "SCRAM-SHA-256", 1);
}

/// java.util.Properties takes `key value` and `key:value` as well as
/// `key=value`; a file written that way works as it does for the Java
/// client, and its unknown keys are still named.
#[test]
fn config_with_whitespace_and_colon_separators() {
    let (_tansu, front) = sasl_broker(ALL_MECHANISMS, &[]);
    let dir = TempDir::new("separators");
    let props = write(
        dir.path(),
        "client.properties",
        &format!(
            "security.protocol SASL_PLAINTEXT\n\
             sasl.mechanism:SCRAM-SHA-256\n\
             sasl.jaas.config \t org.apache.kafka.common.security.scram.ScramLoginModule required \\\n  \
             username=\"{USER}\" password=\"{PASSWORD}\";\n\
             acks all\n"
        ),
    );
    let target = format!("kafka://localhost:{}?config={}", front.port(), path(&props));
    let run = probe(&[&target], &[]);
    run.expect(0, &[READY, "keys kwait ignores: acks"])
        .expect_no_secret(PASSWORD);
    assert!(!run.stderr.contains("SASL_PLAINTEXT"), "{}", run.stderr);
    assert_authenticated(&front, "SCRAM-SHA-256", 1);
}

#[test]
fn config_ssl_with_pem_files_for_mtls() {
    let certs = Certs::new();
    let ca = certs.ca();
    let (_tansu, tls) = tls_broker(certs.server(), Some(&ca), &[]);
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
    probe(&[&target], &[]).expect(0, &[READY]);
}

/// A PEM setting without what it should hold is a usage error naming the
/// setting as the user wrote it: `ssl.truststore.location=…` in config=, not
/// kwait's own `ca`.
#[test]
fn unusable_pem_files_are_named_as_the_user_named_them() {
    let certs = Certs::new();
    let ca = certs.ca();
    let (_tansu, tls) = tls_broker(certs.server(), Some(&ca), &[]);
    let port = tls.port();
    let dir = certs.dir();
    let bad = path(&write(dir, "bad.pem", "not a certificate\n"));
    let (client, client_key) = certs.client();
    let (client, client_key) = (path(&client), path(&client_key));
    let keystore = path(&certs.path("client-keystore.pem"));
    let config = |name: &str, text: &str| {
        let file = write(dir, name, &format!("security.protocol=SSL\n{text}"));
        format!("config={}", path(&file))
    };
    let mut cases = vec![
        (
            format!("ca={bad}"),
            format!("ca={bad}: no PEM certificate in it"),
        ),
        (
            format!("ca={}&cert={bad}&key={client_key}", path(&ca)),
            format!("cert={bad}: no PEM certificate in it"),
        ),
        (
            format!("ca={}&cert={client}&key={bad}", path(&ca)),
            format!("key={bad}: no unencrypted PEM private key in it"),
        ),
    ];
    let param = config(
        "truststore.properties",
        &format!("ssl.truststore.type=PEM\nssl.truststore.location={bad}\n"),
    );
    cases.push((
        param.clone(),
        format!("{param}: ssl.truststore.location={bad}: no PEM certificate in it"),
    ));
    let param = config(
        "inline.properties",
        "ssl.truststore.type=PEM\nssl.truststore.certificates=not a certificate\n",
    );
    cases.push((
        param.clone(),
        format!("{param}: ssl.truststore.certificates: no PEM certificate in it"),
    ));
    let param = config(
        "keystore.properties",
        &format!(
            "ssl.truststore.type=PEM\nssl.truststore.location={}\n\
             ssl.keystore.type=PEM\nssl.keystore.location={bad}\n",
            path(&ca)
        ),
    );
    cases.push((
        param.clone(),
        format!("{param}: ssl.keystore.location={bad}: no PEM certificate in it"),
    ));
    for (params, needle) in cases {
        let target = format!("kafka://localhost:{port}?{params}");
        let done = run_kwait(&[&target, "-t", "30s"], &[], LIMIT);
        done.expect(2, &[&needle]);
        assert!(!done.stderr.contains(" ca: "), "{}", done.stderr);
    }
    // The same config= with a good store is a working mTLS setup.
    let param = config(
        "good.properties",
        &format!(
            "ssl.truststore.type=PEM\nssl.truststore.location={}\n\
             ssl.keystore.type=PEM\nssl.keystore.location={keystore}\n",
            path(&ca)
        ),
    );
    probe(&[&format!("kafka://localhost:{port}?{param}")], &[]).expect(0, &[READY]);
}

/// A client certificate with another certificate's key: named, both files,
/// instead of rustls' "keys may not be consistent: KeyMismatch".
#[test]
fn a_key_that_is_not_the_certificates_is_a_usage_error_naming_both() {
    let certs = Certs::new();
    let ca = certs.ca();
    let (_tansu, tls) = tls_broker(certs.server(), Some(&ca), &[]);
    let (client, client_key) = certs.client();
    let (_, other_key) = certs.wrong_name();
    let (client, client_key, other_key) = (path(&client), path(&client_key), path(&other_key));
    let base = format!("kafka://localhost:{}?ca={}", tls.port(), path(&ca));
    // The right pair works.
    probe(&[&format!("{base}&cert={client}&key={client_key}")], &[]).expect(0, &[READY]);
    let target = format!("{base}&cert={client}&key={other_key}");
    let done = run_kwait(&[&target, "-t", "30s"], &[], LIMIT);
    done.expect(
        2,
        &[&format!(
            "cert={client} and key={other_key} do not belong together (the key is not the certificate's)"
        )],
    );
    assert!(!done.stderr.contains("KeyMismatch"), "{}", done.stderr);

    // One PEM keystore holding both, as config= names it.
    let mut mixed = std::fs::read(&other_key).expect("read key");
    mixed.extend(std::fs::read(&client).expect("read cert"));
    let store = certs.path("mixed-keystore.pem");
    std::fs::write(&store, mixed).expect("write keystore");
    let props = write(
        certs.dir(),
        "mixed.properties",
        &format!(
            "security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location={}\n\
             ssl.keystore.type=PEM\nssl.keystore.location={}\n",
            path(&ca),
            path(&store)
        ),
    );
    let target = format!("kafka://localhost:{}?config={}", tls.port(), path(&props));
    run_kwait(&[&target, "-t", "30s"], &[], LIMIT).expect(
        2,
        &[&format!(
            "config={}: ssl.keystore.location={}: its key is not its certificate's",
            path(&props),
            path(&store)
        )],
    );
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
        run_kwait(&[&target, "-t", "1s"], &[], LIMIT).expect(
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
    run_kwait(&[target, "-t", "1s"], &[], LIMIT).expect(
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
    run_kwait(&[target, "-t", "1s"], &[], LIMIT)
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
    let mut waiting = background(
        &[&target, "-t", "30s", "-v"],
        &[("KWAIT_KAFKA_PASSWORD", wrong)],
    );
    waiting.wait_for_stderr("connection refused", LONG);
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
    let tansu = tansu_behind(tansu_port, front_port);
    let front = SaslFront::start(
        front_port,
        &tansu.addr(),
        &[(USER, PASSWORD)],
        ALL_MECHANISMS,
    );
    let Done {
        code,
        stdout,
        stderr,
        ..
    } = waiting.finish(LONG);
    assert_eq!(code, Some(1), "{stderr}");
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
    run_kwait(&[&target, "-t", "30s", "-v"], &[], LIMIT)
        .expect(0, &["ready"])
        .expect_no_secret(PASSWORD);
    assert_authenticated(&front, "PLAIN", 1);
}

/// Java reads the ssl.* keys only for SSL and SASL_SSL: a JKS truststore
/// left in a SASL_PLAINTEXT or PLAINTEXT file is ignored, and listed so.
#[test]
fn config_without_tls_ignores_a_leftover_jks_store() {
    let (_tansu, front) = sasl_broker(ALL_MECHANISMS, &[]);
    let dir = TempDir::new("leftover-jks");
    let store = write(dir.path(), "truststore.jks", "not really a JKS store");
    let leftover = format!(
        "ssl.truststore.location={}\nssl.truststore.password=changeit\n",
        path(&store)
    );
    let props = write(
        dir.path(),
        "sasl.properties",
        &format!(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-256\n\
             sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \
             username=\"{USER}\" password=\"{PASSWORD}\";\n{leftover}acks=all\n"
        ),
    );
    let target = format!("kafka://localhost:{}?config={}", front.port(), path(&props));
    let ignored = "keys kwait ignores: acks; TLS is off, so also ssl.truststore.location, ssl.truststore.password";
    let run = probe(&[&target], &[]);
    run.expect(0, &[READY, ignored]).expect_no_secret(PASSWORD);
    assert_ignored_keys_listed_once(&run);
    assert!(!run.stderr.contains("changeit"), "{}", run.stderr);
    assert_authenticated(&front, "SCRAM-SHA-256", 1);

    // PLAINTEXT, and a JAAS line kwait could not use (Kerberos): SASL is off,
    // so it is ignored as well.
    let tansu = Tansu::start_ready();
    let props = write(
        dir.path(),
        "plain.properties",
        &format!(
            "security.protocol=PLAINTEXT\n{leftover}ssl.truststore.type=PKCS12\n\
             sasl.jaas.config=com.sun.security.auth.module.Krb5LoginModule required;\n"
        ),
    );
    let target = format!("kafka://{}?config={}", tansu.addr(), path(&props));
    probe(&[&target], &[]).expect(
        0,
        &[
            "ready: 1 broker",
            "TLS and SASL are off, so also ssl.truststore.location, ssl.truststore.password, \
             ssl.truststore.type, sasl.jaas.config",
        ],
    );
}

#[test]
fn tls_false_beside_a_tls_setting_is_a_usage_error_naming_both() {
    let certs = Certs::new();
    let (_tansu, tls) = tls_broker(certs.server(), None, &[]);
    let ca = path(&certs.ca());
    // The same target without tls=false is a working TLS target.
    let target = format!("kafka://localhost:{}?ca={ca}", tls.port());
    probe(&[&target], &[]).expect(0, &[READY]);
    for (extra, key) in [
        (format!("tls=false&ca={ca}"), "ca="),
        (format!("ca={ca}&tls=false"), "ca="),
        ("tls=false&tls-verify=false".to_string(), "tls-verify="),
    ] {
        let target = format!("kafka://localhost:{}?{extra}", tls.port());
        let done = run_kwait(&[&target, "-t", "30s"], &[], LIMIT);
        done.expect(2, &["tls=false contradicts", key]);
        assert_eq!(done.stderr.lines().count(), 1, "{}", done.stderr);
    }
}

/// Kafka's default sasl.mechanism is GSSAPI: without one, kwait takes the
/// mechanism from the JAAS login module when the module says it.
#[test]
fn config_without_sasl_mechanism_follows_the_jaas_module() {
    let (_tansu, front) = sasl_broker(ALL_MECHANISMS, &[]);
    let dir = TempDir::new("no-mechanism");
    let jaas = |module: &str| {
        format!(
            "security.protocol=SASL_PLAINTEXT\n\
             sasl.jaas.config=org.apache.kafka.common.security.{module} required \
             username=\"{USER}\" password=\"{PASSWORD}\";\n"
        )
    };
    let plain = write(
        dir.path(),
        "plain.properties",
        &jaas("plain.PlainLoginModule"),
    );
    let target = format!("kafka://localhost:{}?config={}", front.port(), path(&plain));
    probe_ready_as_alice(&target, &[]);
    assert_authenticated(&front, "PLAIN", 1);

    // ScramLoginModule serves SCRAM-SHA-256 and -512 alike.
    let scram = write(
        dir.path(),
        "scram.properties",
        &jaas("scram.ScramLoginModule"),
    );
    let target = format!("kafka://localhost:{}?config={}", front.port(), path(&scram));
    run_kwait(&[&target, "-t", "30s"], &[], LIMIT)
        .expect(
            2,
            &[
                "ScramLoginModule",
                "sasl.mechanism=SCRAM-SHA-256",
                "sasl.mechanism=SCRAM-SHA-512",
            ],
        )
        .expect_no_secret(PASSWORD);
    // The URL's sasl= says which.
    let target = format!("{target}&sasl=SCRAM-SHA-512");
    probe_ready_as_alice(&target, &[]);
    assert_authenticated(&front, "SCRAM-SHA-512", 1);

    // No mechanism and no JAAS line: Kafka would use GSSAPI.
    let bare = write(
        dir.path(),
        "bare.properties",
        "security.protocol=SASL_PLAINTEXT\n",
    );
    let target = format!("kafka://localhost:{}?config={}", front.port(), path(&bare));
    run_kwait(&[&target, "-t", "30s"], &password_env(), LIMIT)
        .expect(2, &["GSSAPI", "set sasl.mechanism=PLAIN"]);
}

/// Files the user names are read up to 1 MiB: a huge file is a usage error
/// naming the key, not an allocation without end; a device (or a FIFO,
/// below) is refused before it is read, since its read may never end.
#[test]
fn files_larger_than_a_mib_are_usage_errors_naming_the_key() {
    let dir = TempDir::new("big-files");
    let big = dir.path().join("big.pem");
    std::fs::write(&big, vec![b'A'; (1 << 20) + 1]).expect("write big file");
    let big = path(&big);
    let pem_config = write(
        dir.path(),
        "pem.properties",
        "security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location=/dev/zero\n",
    );
    let key = write(dir.path(), "client.key", "not a key");
    for (params, key) in [
        ("ca=/dev/zero".to_string(), "ca=/dev/zero"),
        (format!("ca={big}"), &format!("ca={big}")[..]),
        (
            format!("cert=/dev/zero&key={}", path(&key)),
            "cert=/dev/zero",
        ),
        (
            format!("cert={}&key=/dev/zero", path(&key)),
            "key=/dev/zero",
        ),
        (
            format!("user={USER}&password-file=/dev/zero"),
            "password-file=/dev/zero",
        ),
        ("config=/dev/zero".to_string(), "config=/dev/zero"),
        (
            format!("config={}", path(&pem_config)),
            "ssl.truststore.location=/dev/zero",
        ),
    ] {
        let target = format!("kafka://localhost:9?{params}");
        let done = run_kwait(&[&target, "-t", "30s"], &[], LIMIT);
        let why = if key.contains("/dev/zero") {
            "is a character device"
        } else {
            "larger than 1 MiB"
        };
        done.expect(2, &[key, why]);
        assert_eq!(done.stderr.lines().count(), 1, "{}", done.stderr);
        assert!(done.elapsed < FAST, "{:?}", done.elapsed);
    }
    // A file of exactly 1 MiB is read (and then found not to be PEM).
    let limit = dir.path().join("limit.pem");
    std::fs::write(&limit, vec![b'A'; 1 << 20]).expect("write 1 MiB file");
    let target = format!("kafka://localhost:9?ca={}", path(&limit));
    let done = run_kwait(&[&target, "-t", "30s"], &[], LIMIT);
    assert_eq!(done.code, Some(2), "{}", done.stderr);
    assert!(!done.stderr.contains("larger than"), "{}", done.stderr);
}

#[test]
fn password_in_the_url_in_any_case_is_not_echoed() {
    for key in ["Password", "PASSWORD", "pAsSwOrD"] {
        let target = format!("kafka://localhost:9?user=alice&{key}=hunter2-in-url");
        run_kwait(&[&target, "-t", "1s"], &[], LIMIT)
            .expect(2, &[&format!("{key}=***")[..]])
            .expect_no_secret("hunter2-in-url");
    }
}

/// The app kwait starts (supervised or with --exec) does not inherit the
/// password kwait used for its probes.
#[test]
fn the_app_does_not_get_the_password() {
    let (_tansu, front) = sasl_broker(ALL_MECHANISMS, &[]);
    let target = format!(
        "kafka://localhost:{}?sasl=SCRAM-SHA-256&user={USER}",
        front.port()
    );
    let env = [("KWAIT_KAFKA_PASSWORD", PASSWORD), ("APP_SETTING", "kept")];
    for exec in [&[][..], &["--exec"][..]] {
        let mut args = vec![&target[..], "-t", "30s"];
        args.extend(exec);
        args.extend(["--", "sh", "-c", "env"]);
        let done = run_kwait(&args, &env, LIMIT);
        done.expect(0, &["ready"]);
        assert!(
            done.stdout.contains("APP_SETTING=kept"),
            "{exec:?}: the app's environment was not printed:\n{}",
            done.stdout
        );
        assert!(
            !done.stdout.contains("KWAIT_KAFKA_PASSWORD"),
            "{exec:?}: the app got the password:\n{}",
            done.stdout
        );
        done.expect_no_secret(PASSWORD);
    }
    // kwait itself used it: each run authenticated.
    assert_authenticated(&front, "SCRAM-SHA-256", 2);
}

/// A password in KWAIT_KAFKA_PASSWORD and another in config='s JAAS line:
/// which one is meant cannot be guessed, so neither is used.
#[test]
fn password_in_the_environment_and_in_the_config_is_a_usage_error() {
    let (_tansu, front) = sasl_broker(ALL_MECHANISMS, &[]);
    let dir = TempDir::new("two-passwords");
    let props = write(
        dir.path(),
        "client.properties",
        &format!(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n\
             sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \
             username=\"{USER}\" password=\"{PASSWORD}\";\n"
        ),
    );
    let target = format!("kafka://localhost:{}?config={}", front.port(), path(&props));
    let other = "Env-pw-3c8d21";
    let done = run_kwait(
        &[&target, "-t", "30s"],
        &[("KWAIT_KAFKA_PASSWORD", other)],
        LIMIT,
    );
    done.expect(
        2,
        &[
            "KWAIT_KAFKA_PASSWORD",
            "sasl.jaas.config",
            "config=",
            "unset KWAIT_KAFKA_PASSWORD, or remove the password from the JAAS line",
        ],
    )
    .expect_no_secret(PASSWORD)
    .expect_no_secret(other);
    assert_eq!(done.stderr.lines().count(), 1, "{}", done.stderr);
    // The fix reads as one: no redaction mark in it.
    assert!(!done.stderr.contains("***"), "{}", done.stderr);
    // Either one alone works.
    probe_ready_as_alice(&target, &[]);
    let env_only = format!("kafka://localhost:{}?sasl=PLAIN&user={USER}", front.port());
    probe_ready_as_alice(&env_only, &password_env());
    // The target's own password-file= wins over both.
    let file = write(dir.path(), "password", &format!("{PASSWORD}\n"));
    let with_file = format!("{target}&password-file={}", path(&file));
    probe_ready_as_alice(&with_file, &[("KWAIT_KAFKA_PASSWORD", other)]);
}

// ---------------------------------------------------------------- https

/// https:// uses the same TLS stack: a server whose certificate comes from a
/// private CA is refused at once, naming the cause.
#[test]
fn https_with_a_private_ca() {
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
    let _tls = stunnel(certs.server(), tls_port, http_port, None, &[]);
    // The plain server really serves the path.
    probe(&[&format!("http://127.0.0.1:{http_port}/health")], &[]).expect(0, &["ready"]);

    // The built-in roots do not know the private CA: fatal, with the hint.
    let target = format!("https://localhost:{tls_port}/health");
    wait(&target, &[]).expect_fatal(&["not signed by a trusted CA", "SSL_CERT_FILE=PATH"]);

    // SSL_CERT_FILE adds it: ready, through TLS, in probe and wait mode.
    let ca = path(&certs.ca());
    let env = [("SSL_CERT_FILE", ca.as_str())];
    probe(&[&target], &env).expect(0, &["ready: answered 200 OK"]);
    run_kwait(&[&target, "-t", "10s"], &env, LIMIT).expect(0, &["ready after"]);

    // An unreadable SSL_CERT_FILE is a usage error naming it.
    let env = [("SSL_CERT_FILE", "/nonexistent/ca.pem")];
    run_kwait(&[&target], &env, LIMIT)
        .expect(2, &["SSL_CERT_FILE=/nonexistent/ca.pem", "cannot read it"]);
}
