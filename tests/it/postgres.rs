//! postgres:// against a real PostgreSQL (Debian's, started per test as
//! `nobody`), and against fakes for what no server sends on demand.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use crate::peers::{
    fatal_when_waiting, free_port, kwait_with, pg_bin, run_kwait, Certs, Done, Fake, PgOptions,
    Postgres, RefusedPort, TempDir, Waiting,
};

const LONG: Duration = Duration::from_secs(40);

fn probe(target: &str, env: &[(&str, &str)]) -> Done {
    run_kwait(&["probe", "-t", "5s", target], env, LONG)
}

fn pw() -> [(&'static str, &'static str); 1] {
    [("KWAIT_POSTGRES_PASSWORD", Postgres::PASSWORD)]
}

/// pg_isready's own verdict: 0 up, 1 rejecting (57P03), 2 no answer.
fn pg_isready(port: u16, user: &str) -> i32 {
    let out = Command::new(pg_bin("pg_isready"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            user,
            "-t",
            "5",
        ])
        .output()
        .expect("pg_isready (scripts/setup)");
    out.status.code().unwrap_or(-1)
}

#[test]
fn started_after_kwait() {
    let port = free_port();
    let target = format!("postgres://app@127.0.0.1:{port}/app");
    let cmd = kwait_with(&[target.as_str(), "-t", "30s", "-v"], &[]);
    let mut waiting = Waiting::spawn("pg-wait", "kwait", cmd);
    waiting.kw.wait_for_stderr("connection refused", LONG);
    assert!(!waiting.ran(), "COMMAND ran before postgres existed");
    let _pg = Postgres::start(port, &PgOptions::default());
    let done = waiting.kw.finish(LONG);
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert!(waiting.ran(), "{}", done.stderr);
    assert!(done.stderr.contains("pg_isready's rule"), "{}", done.stderr);
}

#[test]
fn every_password_method_logs_in_and_reaches_ready_for_query() {
    let pg = Postgres::start(free_port(), &PgOptions::default());
    pg.wait_ready();
    let port = pg.port();
    for user in ["postgres", "md5user", "scramuser", "plainuser"] {
        let target = format!("postgresql://{user}@127.0.0.1:{port}/app");
        probe(&target, &pw()).expect(0, &[&format!("logged in as {user} to database app")]);
    }
    // PGPASSWORD, libpq's own variable, and password-file= work too.
    let target = format!("postgres://scramuser@127.0.0.1:{port}/app");
    probe(&target, &[("PGPASSWORD", Postgres::PASSWORD)]).expect(0, &["ReadyForQuery"]);
    // password-file= (its last newline dropped) wins over the variables; a
    // wrong password there is fatal.
    let dir = TempDir::new("pg-pwfile");
    let file = dir.path().join("password");
    let from_file = format!("{target}?password-file={}", file.display());
    std::fs::write(&file, format!("{}\n", Postgres::PASSWORD)).expect("write password file");
    let wrong = [("KWAIT_POSTGRES_PASSWORD", "not-it")];
    probe(&from_file, &wrong).expect(0, &["logged in as scramuser to database app"]);
    std::fs::write(&file, "not-it\n").expect("write password file");
    let done = fatal_when_waiting(
        &from_file,
        &pw(),
        &["28P01", "wrong password", "password-file="],
    );
    assert!(!done.stderr.contains("not-it"), "{}", done.stderr);
    // Several hosts: a refused one first, the server second.
    let dead = RefusedPort::new();
    let dead = dead.target("tcp").replace("tcp://", "");
    let both = format!("postgres://scramuser@{dead},127.0.0.1:{port}/app");
    probe(&both, &pw()).expect(0, &[&format!("127.0.0.1:{port}: logged in as scramuser")]);
}

/// libpq's password file, as psql reads it: PGPASSFILE, else ~/.pgpass;
/// `*` and `\` escapes; ignored, with a warning, unless 0600 or stricter.
#[test]
fn the_password_file_is_read_as_libpq_reads_it() {
    use std::os::unix::fs::PermissionsExt;
    let pg = Postgres::start(free_port(), &PgOptions::default());
    pg.wait_ready();
    let port = pg.port();
    let dir = TempDir::new("pgpass");
    let file = dir.path().join(".pgpass");
    let write = |text: &str, mode: u32| {
        std::fs::write(&file, text).expect("write .pgpass");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).expect("chmod");
    };
    let pw = Postgres::PASSWORD.replace('\\', "\\\\").replace(':', "\\:");
    write(
        &format!(
            "# kwait's test\n127.0.0.1:{port}:app:md5user:not-it\n*:{port}:*:scramuser:{pw}\n"
        ),
        0o600,
    );
    let home = dir.path().to_str().expect("utf-8 temp dir");
    let target = format!("postgres://scramuser@127.0.0.1:{port}/app");
    probe(&target, &[("HOME", home)]).expect(0, &["logged in as scramuser to database app"]);
    // The first matching line wins, and a wrong password there is fatal.
    let target = format!("postgres://md5user@127.0.0.1:{port}/app");
    let done = probe(&target, &[("PGPASSFILE", file.to_str().expect("utf-8"))]);
    done.expect(1, &["28P01", "wrong password", "md5user", "PGPASSFILE"]);
    assert!(!done.stderr.contains("not-it"), "{}", done.stderr);
    // Readable by the group: ignored with a warning, so pg_isready's rule.
    write(&format!("*:*:*:*:{pw}\n"), 0o640);
    let done = probe(&target, &[("HOME", home)]);
    done.expect(
        0,
        &["group or world access", "chmod 0600", "pg_isready's rule"],
    );
}

#[test]
fn wrong_password_no_database_no_role_are_fatal_and_named() {
    let pg = Postgres::start(free_port(), &PgOptions::default());
    pg.wait_ready();
    let port = pg.port();
    let wrong = [("KWAIT_POSTGRES_PASSWORD", "not-it")];
    for user in ["md5user", "scramuser", "plainuser"] {
        let target = format!("postgres://{user}@127.0.0.1:{port}/app");
        let needles = ["28P01", "wrong password", user];
        let done = fatal_when_waiting(&target, &wrong, &needles);
        assert!(!done.stderr.contains("not-it"), "{}", done.stderr);
    }
    let target = format!("postgres://scramuser@127.0.0.1:{port}/nosuchdb");
    probe(&target, &pw()).expect(1, &["3D000", "no database nosuchdb"]);
    fatal_when_waiting(&target, &pw(), &["3D000", "no database nosuchdb"]);
    // An unknown role under a password method is refused as a wrong
    // password (PostgreSQL does not tell which); under trust, as 28000.
    let target = format!("postgres://nosuchrole@127.0.0.1:{port}/app");
    probe(&target, &pw()).expect(1, &["28P01", "nosuchrole"]);
    fatal_when_waiting(&target, &pw(), &["28P01", "nosuchrole"]);
    let target = format!("postgres://ghost@127.0.0.1:{port}/app");
    probe(&target, &pw()).expect(1, &["28000", "role \"ghost\" does not exist"]);
    fatal_when_waiting(&target, &pw(), &["28000", "role \"ghost\" does not exist"]);
    // Without a password, pg_isready's rule: the server judged the login,
    // so it is up. pg_isready agrees.
    let target = format!("postgres://nosuchrole@127.0.0.1:{port}/nosuchdb");
    probe(&target, &[]).expect(0, &["pg_isready's rule"]);
    assert_eq!(pg_isready(port, "nosuchrole"), 0);
}

#[test]
fn stopped_is_not_ready() {
    let mut pg = Postgres::start(free_port(), &PgOptions::default());
    pg.wait_ready();
    let target = format!("postgres://127.0.0.1:{}", pg.port());
    probe(&target, &[]).expect(0, &["ready"]);
    pg.stop();
    probe(&target, &[]).expect(1, &["connection refused"]);
}

#[test]
fn a_standby_without_primary_is_not_ready_with_the_servers_words() {
    let pg = Postgres::start(
        free_port(),
        &PgOptions {
            standby: true,
            ..PgOptions::default()
        },
    );
    let port = pg.port();
    for (target, env) in [
        (format!("postgres://127.0.0.1:{port}"), &[][..]),
        (
            format!("postgres://scramuser@127.0.0.1:{port}/app"),
            &pw()[..],
        ),
    ] {
        // A standby says "starting up" until it has read its WAL, then
        // "not accepting connections"; both are 57P03, not ready.
        let mut last = String::new();
        let settled = crate::peers::poll_until(Duration::from_secs(20), || {
            let done = probe(&target, env);
            done.expect(1, &["SQLSTATE 57P03"]);
            last = done.stderr.clone();
            last.contains("not accepting connections")
        });
        assert!(settled, "never 'not accepting connections': {last}");
    }
    assert_eq!(pg_isready(port, "postgres"), 1, "pg_isready: rejecting");
}

#[test]
fn shutting_down_is_not_ready() {
    let mut pg = Postgres::start(free_port(), &PgOptions::default());
    pg.wait_ready();
    let port = pg.port();
    // A session that holds off the smart shutdown.
    let mut psql = Command::new(pg_bin("psql"))
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
        .args(["-c", "select pg_sleep(20)"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("psql");
    let target = format!("postgres://127.0.0.1:{port}");
    assert!(crate::peers::poll_until(LONG, || {
        probe(&target, &[]).code == Some(0)
    }));
    std::thread::sleep(Duration::from_millis(300));
    pg.begin_shutdown();
    let mut last = String::new();
    let seen = crate::peers::poll_until(Duration::from_secs(10), || {
        last = probe(&target, &[]).stderr;
        last.contains("shutting down")
    });
    let _ = psql.kill();
    let _ = psql.wait();
    assert!(seen, "{last}");
    assert!(last.contains("57P03"), "{last}");
}

#[test]
fn tls_with_a_test_ca() {
    let certs = Certs::new();
    let (cert, key) = certs.server();
    let pg = Postgres::start(
        free_port(),
        &PgOptions {
            ssl: Some((&cert, &key)),
            ..PgOptions::default()
        },
    );
    pg.wait_ready();
    let port = pg.port();
    let ca = certs.ca();
    let ca = ca.display();
    let full = format!("postgres://scramuser@localhost:{port}/app?sslmode=verify-full&ca={ca}");
    probe(&full, &pw()).expect(0, &["logged in as scramuser"]);
    let full = format!("postgres://localhost:{port}?sslmode=verify-full&ca={ca}");
    probe(&full, &[]).expect(0, &["ready"]);
    // require without ca=: encrypted, not checked (libpq's rule), and said.
    let require = format!("postgres://md5user@127.0.0.1:{port}/app?sslmode=require");
    probe(&require, &pw()).expect(
        0,
        &[
            "logged in as md5user",
            "warning:",
            "sslmode=require without ca=: the server's certificate is not checked",
            "give ca=PATH",
        ],
    );
    // With ca=, require checks the chain: no warning.
    let checked = format!("{require}&ca={ca}");
    let done = probe(&checked, &pw());
    done.expect(0, &["logged in as md5user"]);
    assert!(!done.stderr.contains("warning"), "{}", done.stderr);
    // The test CA is not among the built-in roots: verify-full without
    // ca= refuses the certificate, for good.
    let untrusted = format!("postgres://localhost:{port}?sslmode=verify-full");
    fatal_when_waiting(
        &untrusted,
        &[],
        &["certificate", "not signed by a trusted CA", "ca=PATH"],
    );
    // Not the CA that signed it: fatal.
    let other = format!(
        "postgres://localhost:{port}?sslmode=verify-full&ca={}",
        certs.other_ca().display()
    );
    probe(&other, &[]).expect(1, &["certificate"]);

    let plain = Postgres::start(free_port(), &PgOptions::default());
    plain.wait_ready();
    let target = format!("postgres://127.0.0.1:{}?sslmode=require", plain.port());
    probe(&target, &[]).expect(1, &["refuses TLS"]);
}

/// A server that answers anything with `answer`, for each connection.
fn answering(answer: &'static [u8]) -> (String, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let t = std::thread::spawn(move || {
        if let Ok((mut s, _)) = l.accept() {
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf);
            let _ = s.write_all(answer);
            std::thread::sleep(Duration::from_secs(3));
        }
    });
    (addr, t)
}

#[test]
fn hostile_answers_are_errors_not_allocations_or_panics() {
    for (answer, needle) in [
        (
            &b"R\x7f\xff\xff\xff\0\0\0\0"[..],
            "not PostgreSQL, or broken",
        ),
        (&b"R\0\0\0\x02"[..], "not PostgreSQL, or broken"),
        (&b"SSH-2.0-OpenSSH_9.2\r\n"[..], "an SSH server"),
        (&b"E\0\0\0\x09Cxx"[..], "no answer within"),
    ] {
        let (addr, _t) = answering(answer);
        let done = run_kwait(
            &["probe", "-t", "2s", &format!("postgres://{addr}")],
            &[],
            LONG,
        );
        done.expect(1, &[needle]);
    }
    let (addr, _t) = answering(b"X");
    probe(&format!("postgres://{addr}?sslmode=require"), &[]).expect(1, &["not PostgreSQL"]);
    for fake in [
        Fake::garbage(),
        Fake::huge_length(),
        Fake::silent(),
        Fake::closing(),
    ] {
        let done = run_kwait(
            &[
                "probe",
                "-t",
                "2s",
                &format!("postgres://scramuser@{}/app", fake.addr()),
            ],
            &pw(),
            LONG,
        );
        done.expect(1, &[]);
    }
}
