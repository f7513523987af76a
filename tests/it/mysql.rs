//! mysql:// against a real MariaDB (Debian's, see peers/mysql.rs), started
//! by each test on a free loopback port with its own data directory, and
//! hostile fakes for what no server sends on demand.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::peers::{
    free_port, hostile, kwait_with, run_kwait, untrusted_then_unchecked, Certs, ChildGuard,
    MariaDb, Waiting, MYSQL_PASSWORD,
};

const LIMIT: Duration = Duration::from_secs(40);
const PASSWORD: (&str, &str) = ("KWAIT_MYSQL_PASSWORD", MYSQL_PASSWORD);

#[test]
fn started_after_kwait_then_command_runs() {
    let port = free_port();
    let target = format!("mysql://app@127.0.0.1:{port}/appdb");
    let mut w = Waiting::spawn(
        "mysql-late",
        "kwait",
        kwait_with(&[&target, "-t", "60s", "-v"], &[PASSWORD]),
    );
    w.kw.wait_for_stderr("connection refused", Duration::from_secs(10));
    assert!(w.kw.running() && !w.ran(), "kwait went on without MariaDB");
    let _db = MariaDb::start(port, &[]);
    let done = w.kw.finish(LIMIT);
    done.expect(
        0,
        &[
            &format!("{target} ready"),
            "logged in as app, appdb",
            "COMMAND started",
        ],
    );
    assert!(w.ran());
    // kwait never prints the password. (That COMMAND does not inherit
    // KWAIT_MYSQL_PASSWORD: redis::command_gets_no_kwait_password.)
    assert!(!done.stderr.contains(MYSQL_PASSWORD));
}

#[test]
fn without_a_user_the_greeting_and_any_login_answer_is_up() {
    let mut db = MariaDb::start_ready(free_port(), &[]);
    let target = format!("mysql://127.0.0.1:{}", db.port());
    let done = run_kwait(&["probe", &target], &[], LIMIT);
    done.expect(0, &["MariaDB", "answered a login"]);
    db.stop();
    let done = run_kwait(&["probe", &target], &[], LIMIT);
    done.expect(1, &["connection refused"]);
}

#[test]
fn wrong_password_and_unknown_database_are_fatal_and_named() {
    let db = MariaDb::start_ready(free_port(), &[]);
    let base = format!("mysql://app@127.0.0.1:{}", db.port());
    let bad = format!("{base}/appdb");
    let done = run_kwait(
        &[&bad, "-t", "60s", "--", "true"],
        &[("KWAIT_MYSQL_PASSWORD", "wrong")],
        LIMIT,
    );
    done.expect(
        1,
        &[
            "access denied for user 'app'",
            "ERROR 1045",
            "KWAIT_MYSQL_PASSWORD",
        ],
    );
    assert!(done.elapsed < Duration::from_secs(5), "{:?}", done.elapsed);
    assert!(!done.stderr.contains("wrong"), "{}", done.stderr);
    let nodb = format!("{base}/nosuchdb");
    let done = run_kwait(&[&nodb, "-t", "60s", "--", "true"], &[PASSWORD], LIMIT);
    done.expect(1, &["database 'nosuchdb'", "ERROR 104"]);
    assert!(done.elapsed < Duration::from_secs(5), "{:?}", done.elapsed);
    // MYSQL_PWD, the variable MySQL's own clients read, works too.
    let done = run_kwait(&["probe", &bad], &[("MYSQL_PWD", MYSQL_PASSWORD)], LIMIT);
    done.expect(0, &["logged in as app"]);
}

#[test]
fn too_many_connections_is_not_ready_with_its_code() {
    let db = MariaDb::start_ready(free_port(), &["--max-connections=10".to_string()]);
    // MariaDB lets max_connections + 1 in (10 is its least): hold them.
    let client = || {
        ChildGuard::spawn(
            "mariadb",
            Command::new("mariadb")
                .args(["-h127.0.0.1", &format!("-P{}", db.port()), "-uapp"])
                .args(["-e", "SELECT SLEEP(60)"])
                .env("MYSQL_PWD", MYSQL_PASSWORD)
                .stdin(Stdio::null())
                .stderr(Stdio::null()),
        )
    };
    // A probe that gets in meanwhile can make a client's login fail:
    // such a client is started again, until a probe is refused while all
    // eleven sleep.
    let mut held: Vec<ChildGuard> = (0..11).map(|_| client()).collect();
    let target = format!("mysql://app@127.0.0.1:{}/appdb", db.port());
    let mut last = None;
    let refused = crate::peers::poll_until(Duration::from_secs(30), || {
        let mut all_in = true;
        for h in &mut held {
            if h.try_wait().is_some() {
                *h = client();
                all_in = false;
            }
        }
        let done = run_kwait(&["probe", &target], &[PASSWORD], LIMIT);
        let seen = all_in && done.stderr.contains("ERROR 1040");
        last = Some(done);
        seen
    });
    let done = last.expect("a probe ran");
    assert!(refused, "never refused: {}", done.stderr);
    done.expect(1, &["not ready", "ERROR 1040", "Too many connections"]);
    for h in &mut held {
        h.kill();
    }
    let ok = crate::peers::poll_until(Duration::from_secs(10), || {
        run_kwait(&["probe", &target], &[PASSWORD], LIMIT).code == Some(0)
    });
    assert!(ok, "still refused after the connection closed");
}

#[test]
fn tls_with_a_private_ca() {
    let certs = Certs::new();
    let db = MariaDb::start_ready(free_port(), &MariaDb::tls_options(&certs));
    let ca = certs.ca();
    let target = format!(
        "mysql://app@localhost:{}/appdb?ca={}",
        db.port(),
        ca.display()
    );
    let done = run_kwait(&["probe", &target], &[PASSWORD], LIMIT);
    done.expect(0, &["logged in as app, appdb"]);
    // Another CA: the certificate is refused, which waiting cannot fix.
    let other = format!(
        "mysql://app@localhost:{}/appdb?ca={}",
        db.port(),
        certs.other_ca().display()
    );
    run_kwait(&[&other, "-t", "30s", "--", "true"], &[PASSWORD], LIMIT).expect(1, &["certificate"]);
    // The test CA is not among the built-in roots: TLS without ca= is
    // refused for good...
    let base = format!("mysql://app@localhost:{}/appdb", db.port());
    let untrusted = format!("{base}?tls=true");
    let unchecked = format!("{base}?tls-verify=false");
    untrusted_then_unchecked(
        &untrusted,
        &unchecked,
        &[PASSWORD],
        "logged in as app, appdb",
        LIMIT,
    );
    // A server without TLS says so.
    let plain = MariaDb::start_ready(free_port(), &[]);
    let target = format!("mysql://app@localhost:{}?tls=true", plain.port());
    run_kwait(&["probe", &target], &[PASSWORD], LIMIT).expect(1, &["does not offer TLS"]);
}

#[test]
fn hostile_servers_are_errors_not_allocations_or_panics() {
    for (reply, needle) in [
        (vec![0xff, 0xff, 0xff, 0, 10], "not a MySQL server"),
        (b"SSH-2.0-OpenSSH_9.2\r\n".to_vec(), "SSH"),
        (
            vec![5, 0, 0, 0, 10, b'x', 0, 1, 2],
            "not MySQL's HandshakeV10",
        ),
        (
            vec![3, 0, 0, 0, 0xff, 0x10, 0x04],
            "refused the connection: ERROR 1040",
        ),
        (vec![4, 0, 0, 0, 9, 0, 0, 0], "protocol version 9"),
    ] {
        let addr = hostile(0, reply);
        let done = run_kwait(
            &["probe", &format!("mysql://{addr}"), "-t", "2s"],
            &[],
            LIMIT,
        );
        done.expect(1, &[needle]);
    }
}

#[test]
fn a_password_in_the_url_is_a_usage_error() {
    let done = run_kwait(&["mysql://app:hunter2@db/appdb", "--", "true"], &[], LIMIT);
    done.expect(2, &["KWAIT_MYSQL_PASSWORD", "password-file=PATH"]);
    assert!(!done.stderr.contains("hunter2"));
}
