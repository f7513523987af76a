//! Self-signed server certificates, as `openssl req -x509` makes them
//! (CA:TRUE by default), served by stunnel (OpenSSL): trusted when the user
//! gave that very certificate with `ca=` or `SSL_CERT_FILE`, as curl and
//! OpenSSL trust it, with its dates and host name still checked; explained
//! in words otherwise. No rustls or webpki Debug text ever reaches a user,
//! and an https:// target's hints never suggest `cert=`/`key=`, which it
//! does not take.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::peers::{
    self, free_port, kwait_with, Certs, ChildGuard, Done, Stunnel, StunnelConfig, Tansu, TempDir,
};

const LIMIT: Duration = Duration::from_secs(60);
const LONG: Duration = Duration::from_secs(30);
/// "Fails fast": far below the -t the failing runs are given (30 s).
const FAST: Duration = Duration::from_secs(10);

/// Debug text of rustls and webpki types that once reached users.
const DEBUG_TEXT: &[&str] = &[
    "Other(",
    "OtherError",
    "CaUsedAsEndEntity",
    "InvalidCertificate",
    "NotValidForName",
    "DnsName(",
    "AlertReceived",
    "CertificateRequired",
    "HandshakeFailure",
];

fn run(args: &[&str], env: &[(&str, &str)]) -> Done {
    peers::run(&mut kwait_with(args, env), LIMIT)
}

/// Asserts kwait printed none of [`DEBUG_TEXT`].
#[track_caller]
fn in_words(done: &Done) -> &Done {
    for debug in DEBUG_TEXT {
        assert!(
            !done.stderr.contains(debug),
            "{debug:?} in kwait's output:\n{}",
            done.stderr
        );
    }
    done
}

/// `probe TARGET` exits 1 and wait mode (`-t 30s`) gives up fast, both with
/// `needles` and in words.
#[track_caller]
fn fails_fast(target: &str, env: &[(&str, &str)], needles: &[&str]) {
    in_words(run(&["probe", target], env).expect(1, needles));
    let waited = run(&[target, "-t", "30s"], env);
    in_words(waited.expect(1, needles));
    assert!(waited.elapsed < FAST, "took {:?}", waited.elapsed);
}

/// `openssl req -x509` in `dir`: a self-signed P-256 certificate and key,
/// `name.pem` and `name.key`, for 2 days, with `extra` arguments (e.g. an
/// `-addext subjectAltName=...`). openssl's defaults make it CA:TRUE.
fn self_signed(dir: &Path, name: &str, subject: &str, extra: &[&str]) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", subject])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl req -x509: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

fn stunnel(
    leaf: &(PathBuf, PathBuf),
    port: u16,
    backend: u16,
    client_ca: Option<&Path>,
    extra: &[&str],
) -> Stunnel {
    Stunnel::start(
        port,
        backend,
        &StunnelConfig {
            cert: &leaf.0,
            key: &leaf.1,
            client_ca,
            extra,
        },
    )
}

/// `python3 -m http.server` on a free port, serving `/health`; its port.
fn web_server(root: &TempDir) -> (ChildGuard, u16) {
    let port = free_port();
    std::fs::write(root.path().join("health"), "ok\n").expect("write health");
    let mut server = Command::new("python3");
    server
        .args(["-m", "http.server", "--bind", "127.0.0.1"])
        .arg(port.to_string())
        .arg("--directory")
        .arg(root.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let guard = ChildGuard::spawn("python3 -m http.server", &mut server);
    peers::wait_port(&format!("127.0.0.1:{port}"), LONG).expect("http.server");
    (guard, port)
}

fn shown(p: &Path) -> String {
    p.display().to_string()
}

/// A broker behind a self-signed certificate: trusted with `ca=` naming it
/// (bootstrap and advertised-listener checks alike); without it, refused
/// at once, in words, with the fix.
#[test]
fn self_signed_broker_certificate_given_as_ca_is_trusted() {
    let dir = TempDir::new("self-signed-kafka");
    let leaf = self_signed(
        dir.path(),
        "broker",
        "/CN=localhost",
        &["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
    );
    let (tansu_port, tls_port) = (free_port(), free_port());
    let tansu = Tansu::start_advertising(tansu_port, &format!("localhost:{tls_port}"));
    tansu.wait_accepting(LONG);
    let _tls = stunnel(&leaf, tls_port, tansu_port, None, &[]);

    let target = format!(
        "kafka://localhost:{tls_port}?tls=true&ca={}",
        shown(&leaf.0)
    );
    in_words(run(&["probe", &target], &[]).expect(0, &["ready: 1 broker (111)"]));
    in_words(run(&[&target, "-t", "30s"], &[]).expect(0, &["ready after"]));

    let untrusted = format!("kafka://localhost:{tls_port}?tls=true");
    fails_fast(
        &untrusted,
        &[],
        &[
            "the server's certificate is a CA certificate (CA:TRUE, what openssl req -x509 makes by default)",
            "to trust this very certificate, give it with ca=PATH",
        ],
    );
}

/// https:// with `SSL_CERT_FILE` naming the server's own self-signed
/// certificate: trusted; one without any subjectAltName is matched by its
/// CN, as OpenSSL matches it; one for another name is refused, naming the
/// names it is for. Without SSL_CERT_FILE: refused, in words, with the
/// https fix.
#[test]
fn self_signed_https_certificate_in_ssl_cert_file_is_trusted() {
    let dir = TempDir::new("self-signed-https");
    let root = TempDir::new("self-signed-root");
    let (_server, http_port) = web_server(&root);
    let san = self_signed(
        dir.path(),
        "san",
        "/CN=localhost",
        &["-addext", "subjectAltName=DNS:localhost"],
    );
    let cn_only = self_signed(dir.path(), "cn", "/O=kwait test/CN=localhost", &[]);
    let wrong = self_signed(
        dir.path(),
        "wrong",
        "/CN=wrong.example",
        &["-addext", "subjectAltName=DNS:wrong.example"],
    );
    for (leaf, ready) in [(&san, true), (&cn_only, true), (&wrong, false)] {
        let port = free_port();
        let _tls = stunnel(leaf, port, http_port, None, &[]);
        let target = format!("https://localhost:{port}/health");
        let file = shown(&leaf.0);
        let env = [("SSL_CERT_FILE", file.as_str())];
        if ready {
            in_words(run(&["probe", &target], &env).expect(0, &["ready: answered 200 OK"]));
        } else {
            fails_fast(
                &target,
                &env,
                &["the server's certificate does not match its host name: it is for wrong.example"],
            );
        }
        if leaf == &san {
            fails_fast(
                &target,
                &[],
                &[
                    "the server's certificate is a CA certificate (CA:TRUE",
                    "to trust this very certificate, give it with SSL_CERT_FILE=PATH",
                ],
            );
        }
    }
}

/// An https server that requires a client certificate, under TLS 1.2 (the
/// refusal ends the handshake) and TLS 1.3 (it comes on the first read):
/// refused at once, saying https:// cannot send one, and never suggesting
/// `cert=`/`key=`, which https:// targets do not take.
#[test]
fn https_refused_for_want_of_a_client_certificate_names_no_cert_parameter() {
    let certs = Certs::new();
    let root = TempDir::new("mtls-root");
    let (_server, http_port) = web_server(&root);
    let ca = certs.ca();
    let file = shown(&ca);
    let env = [("SSL_CERT_FILE", file.as_str())];
    for version in ["sslVersionMax = TLSv1.2", "sslVersionMin = TLSv1.3"] {
        let port = free_port();
        let _tls = stunnel(&certs.server(), port, http_port, Some(&ca), &[version]);
        let target = format!("https://localhost:{port}/health");
        let probed = run(&["probe", &target], &env);
        in_words(probed.expect(
            1,
            &[
                "the server refused the TLS handshake with TLS alert ",
                "client certificate? https:// targets cannot send one",
            ],
        ));
        let waited = run(&[&target, "-t", "30s"], &env);
        in_words(waited.expect(1, &["https:// targets cannot send one"]));
        assert!(
            waited.elapsed < FAST,
            "{version}: took {:?}",
            waited.elapsed
        );
        for done in [&probed, &waited] {
            assert!(
                !done.stderr.contains("cert=") && !done.stderr.contains("key="),
                "{version}: an https hint names cert=/key=:\n{}",
                done.stderr
            );
        }
    }
}
