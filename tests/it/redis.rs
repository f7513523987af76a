//! redis:// and rediss:// against a real redis-server (Debian's, started
//! per test), and against fakes for what no server sends on demand.

use std::time::{Duration, Instant};

use crate::peers::{
    fatal_when_waiting, free_port, kwait_with, run_kwait, Certs, Done, Fake, Redis, RefusedPort,
    TempDir, Waiting,
};

const LONG: Duration = Duration::from_secs(40);

fn probe(target: &str, env: &[(&str, &str)]) -> Done {
    run_kwait(&["probe", "-t", "5s", target], env, LONG)
}

#[test]
fn started_after_kwait() {
    let port = free_port();
    let target = format!("redis://127.0.0.1:{port}/2");
    let cmd = kwait_with(
        &[target.as_str(), "-t", "30s", "-v"],
        &[("KWAIT_REDIS_PASSWORD", Redis::PASSWORD)],
    );
    let mut waiting = Waiting::spawn("redis-wait", "kwait", cmd);
    waiting.kw.wait_for_stderr("connection refused", LONG);
    assert!(!waiting.ran());
    let _redis = Redis::start(port, &["--requirepass", Redis::PASSWORD]);
    let done = waiting.kw.finish(LONG);
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert!(waiting.ran());
    assert!(done.stderr.contains("PONG, loading:0"), "{}", done.stderr);
    assert!(!done.stderr.contains(Redis::PASSWORD));
}

#[test]
fn passwords_acl_users_and_their_mistakes() {
    let redis = Redis::with_app_user(free_port(), &["--requirepass", Redis::PASSWORD]);
    let port = redis.port();
    let plain = format!("redis://127.0.0.1:{port}");
    probe(&plain, &[("REDISCLI_AUTH", Redis::PASSWORD)]).expect(0, &["PONG"]);
    let app = format!("redis://app@127.0.0.1:{port}/1");
    probe(&app, &[("KWAIT_REDIS_PASSWORD", Redis::APP_PASSWORD)]).expect(0, &["PONG"]);
    // No password: NOAUTH, fatal, fast.
    let started = Instant::now();
    let cmd = kwait_with(&[plain.as_str(), "-t", "30s"], &[]);
    let mut waiting = Waiting::spawn("redis-noauth", "kwait", cmd);
    waiting.kw.finish(LONG).expect(
        1,
        &["NOAUTH", "KWAIT_REDIS_PASSWORD", "cannot become ready"],
    );
    assert!(!waiting.ran());
    assert!(started.elapsed() < Duration::from_secs(10));
    // Wrong password, for the default user and for the ACL user.
    let wrong = [("KWAIT_REDIS_PASSWORD", "not-it")];
    for target in [&plain, &app] {
        let done = probe(target, &wrong);
        done.expect(1, &["WRONGPASS"]);
        assert!(!done.stderr.contains("not-it"));
        let done = fatal_when_waiting(target, &wrong, &["WRONGPASS", "KWAIT_REDIS_PASSWORD"]);
        assert!(!done.stderr.contains("not-it"));
    }
    // password-file=: the file's password (its last newline dropped) wins
    // over the variables; a wrong one is as fatal as a wrong variable.
    let dir = TempDir::new("redis-pwfile");
    let file = dir.path().join("password");
    let from_file = format!("{app}?password-file={}", file.display());
    std::fs::write(&file, format!("{}\n", Redis::APP_PASSWORD)).expect("write password file");
    probe(&from_file, &wrong).expect(0, &["PONG"]);
    std::fs::write(&file, "not-it\n").expect("write password file");
    let pw = [("KWAIT_REDIS_PASSWORD", Redis::APP_PASSWORD)];
    let done = fatal_when_waiting(&from_file, &pw, &["WRONGPASS", "password-file="]);
    assert!(!done.stderr.contains("not-it"));
    // A database the server does not have.
    let db = format!("redis://127.0.0.1:{port}/99");
    let pw = [("KWAIT_REDIS_PASSWORD", Redis::PASSWORD)];
    probe(&db, &pw).expect(1, &["SELECT 99", "DB index"]);
    fatal_when_waiting(&db, &pw, &["SELECT 99", "DB index", "/0 to /15"]);
}

/// A client connection that has had its PONG: Redis counts it until it
/// is dropped. Polled: the server may not have seen an earlier client
/// (the start's own readiness check) leave yet.
fn held_client(port: u16) -> std::net::TcpStream {
    use std::io::{Read, Write};
    let mut held = None;
    let mut last = Vec::new();
    crate::peers::poll_until(Duration::from_secs(10), || {
        let Ok(mut conn) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let mut answer = [0u8; 7];
        let ok = conn.write_all(b"PING\r\n").is_ok() && conn.read_exact(&mut answer).is_ok();
        last = answer.to_vec();
        if ok && &answer == b"+PONG\r\n" {
            held = Some(conn);
        }
        held.is_some()
    });
    held.unwrap_or_else(|| panic!("no PONG: {}", String::from_utf8_lossy(&last)))
}

/// Redis at its maxclients answers a new connection with `-ERR max number
/// of clients reached` before any command: read as AUTH's or SELECT's
/// answer, it is still "wait", not a refused login or database.
#[test]
fn maxclients_reached_is_not_ready_at_auth_and_at_select() {
    // 1 is the least maxclients Redis takes. The ACL user `app` needs AUTH;
    // the default user needs none, so /1 alone makes SELECT the first.
    let redis = Redis::with_app_user(free_port(), &["--maxclients", "1"]);
    let port = redis.port();
    let held = held_client(port);
    let app = format!("redis://app@127.0.0.1:{port}/1");
    let app_pw = [("KWAIT_REDIS_PASSWORD", Redis::APP_PASSWORD)];
    let select_first = format!("redis://127.0.0.1:{port}/1");
    for (target, env) in [(&app, &app_pw[..]), (&select_first, &[][..])] {
        probe(target, env).expect(
            1,
            &["not ready", "max number of clients reached", "maxclients"],
        );
    }
    // In wait mode: still waiting, then ready once a client leaves.
    let cmd = kwait_with(&[app.as_str(), "-t", "30s", "-v"], &app_pw);
    let mut waiting = Waiting::spawn("redis-full", "kwait", cmd);
    waiting
        .kw
        .wait_for_stderr("max number of clients reached", LONG);
    assert!(waiting.kw.running() && !waiting.ran());
    drop(held);
    let done = waiting.kw.finish(LONG);
    done.expect(0, &["PONG, loading:0", "COMMAND started"]);
    assert!(!done.stderr.contains("cannot become ready"));
    assert!(waiting.ran());
}

/// Several hosts: the first that is ready wins, a refused one costs
/// nothing and a silent one only the race's stagger, not the deadline.
#[test]
fn several_hosts_the_first_ready_wins() {
    let redis = Redis::start(free_port(), &[]);
    let port = redis.port();
    let dead = RefusedPort::new();
    let dead_addr = dead.target("tcp").replace("tcp://", "");
    let silent = Fake::silent();
    let target = format!("redis://{dead_addr},127.0.0.1:{port}");
    probe(&target, &[]).expect(0, &[&format!("127.0.0.1:{port}: PONG, loading:0")]);
    let target = format!("redis://{},127.0.0.1:{port}/1", silent.addr());
    let done = run_kwait(&["probe", "-t", "20s", &target], &[], LONG);
    done.expect(0, &[&format!("127.0.0.1:{port}: PONG, loading:0")]);
    assert!(done.elapsed < Duration::from_secs(5), "{:?}", done.elapsed);
    // None ready: each address's reason.
    let target = format!("redis://{dead_addr},{}", silent.addr());
    run_kwait(&["probe", "-t", "2s", &target], &[], LONG).expect(
        1,
        &[
            &format!("connection refused at {dead_addr}"),
            "no answer within",
        ],
    );
}

/// COMMAND, supervised or exec'd, gets the app's own password variables
/// (PGPASSWORD, REDISCLI_AUTH, MYSQL_PWD) but none of kwait's
/// (`KWAIT_*_PASSWORD`), which were for the checks only.
#[test]
fn command_gets_no_kwait_password() {
    let redis = Redis::start(free_port(), &["--requirepass", Redis::PASSWORD]);
    let target = format!("redis://127.0.0.1:{}", redis.port());
    let kwait_only = [
        "KWAIT_KAFKA_PASSWORD",
        "KWAIT_POSTGRES_PASSWORD",
        "KWAIT_MYSQL_PASSWORD",
        "KWAIT_AMQP_PASSWORD",
    ];
    let mut env: Vec<(&str, &str)> = kwait_only.iter().map(|k| (*k, "kwait-only")).collect();
    env.extend([
        ("KWAIT_REDIS_PASSWORD", Redis::PASSWORD),
        ("PGPASSWORD", "apps-own"),
        ("REDISCLI_AUTH", "apps-own"),
        ("MYSQL_PWD", "apps-own"),
    ]);
    let dir = TempDir::new("redis-command-env");
    for mode in [None, Some("--exec")] {
        let file = dir.path().join(format!("env{}", mode.unwrap_or("")));
        let script = format!("env > '{}'", file.display());
        let mut args = vec![target.as_str(), "-t", "30s"];
        args.extend(mode);
        args.extend(["--", "sh", "-c", &script]);
        run_kwait(&args, &env, LONG).expect(0, &["PONG"]);
        let seen = std::fs::read_to_string(&file).expect("COMMAND wrote its environment");
        let names: Vec<&str> = seen
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, _)| k)
            .collect();
        for var in kwait_only.iter().chain(&["KWAIT_REDIS_PASSWORD"]) {
            assert!(!names.contains(var), "{mode:?}: COMMAND got {var}:\n{seen}");
        }
        assert!(!seen.contains("kwait-only") && !seen.contains(Redis::PASSWORD));
        for var in ["PGPASSWORD", "REDISCLI_AUTH", "MYSQL_PWD"] {
            assert!(
                names.contains(&var),
                "{mode:?}: COMMAND lacks {var}:\n{seen}"
            );
        }
    }
}

#[test]
fn stopped_is_not_ready() {
    let mut redis = Redis::start(free_port(), &[]);
    let target = format!("redis://127.0.0.1:{}", redis.port());
    probe(&target, &[]).expect(0, &["PONG, loading:0"]);
    redis.stop();
    probe(&target, &[]).expect(1, &["connection refused"]);
}

#[test]
fn loading_a_dataset_is_not_ready() {
    // A dump of 20000 keys, loaded with a delay per key (Redis's own
    // key-load-delay, in microseconds), keeps the server LOADING for a while.
    let port = free_port();
    let dir = TempDir::new("redis-rdb2");
    std::fs::write(dir.path().join("dump.rdb"), dump_of(20000)).unwrap();
    let redis = Redis::start_in(
        dir,
        port,
        &[
            "--dbfilename",
            "dump.rdb",
            "--key-load-delay",
            "500",
            "--loading-process-events-interval-bytes",
            "1024",
        ],
    );
    let target = format!("redis://127.0.0.1:{port}");
    let done = probe(&target, &[]);
    done.expect(1, &["LOADING"]);
    let cmd = kwait_with(&[target.as_str(), "-t", "60s", "-v"], &[]);
    let mut waiting = Waiting::spawn("redis-loading", "kwait", cmd);
    let done = waiting.kw.finish(Duration::from_secs(70));
    assert_eq!(done.code, Some(0), "{}\n{}", done.stderr, redis.log());
    assert!(waiting.ran());
}

/// An RDB with `keys` keys, made by a redis-server of its own.
fn dump_of(keys: u32) -> Vec<u8> {
    let dir = TempDir::new("redis-make-rdb");
    let path = dir.path().join("dump.rdb");
    let redis = Redis::start_in(dir, free_port(), &[]);
    redis.cli(None, &["DEBUG", "POPULATE", &keys.to_string()]);
    assert!(redis.cli(None, &["SAVE"]).contains("OK"), "{}", redis.log());
    std::fs::read(path).expect("dump.rdb")
}

#[test]
fn a_replica_is_not_a_master() {
    let master = Redis::start(free_port(), &[]);
    let replica = Redis::start(
        free_port(),
        &["--replicaof", "127.0.0.1", &master.port().to_string()],
    );
    let target = format!("redis://127.0.0.1:{}?role=master", replica.port());
    probe(&target, &[]).expect(1, &["ROLE is slave", "role=master"]);
    let target = format!("redis://127.0.0.1:{}?role=master", master.port());
    probe(&target, &[]).expect(0, &["role master"]);
    // A replica whose master is gone, told not to serve stale data.
    let orphan = Redis::start(
        free_port(),
        &[
            "--replicaof",
            "127.0.0.1",
            "1",
            "--replica-serve-stale-data",
            "no",
        ],
    );
    probe(&format!("redis://127.0.0.1:{}", orphan.port()), &[]).expect(1, &["MASTERDOWN"]);
}

#[test]
fn rediss_with_a_test_ca() {
    let certs = Certs::new();
    let (cert, key) = certs.server();
    let plain = free_port();
    let tls = free_port();
    let (cert, key, ca) = (
        cert.display().to_string(),
        key.display().to_string(),
        certs.ca(),
    );
    let tls_s = tls.to_string();
    let args = [
        "--tls-port",
        &tls_s,
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-auth-clients",
        "no",
    ];
    let _redis = Redis::start(plain, &args);
    let target = format!("rediss://localhost:{tls}?ca={}", ca.display());
    probe(&target, &[]).expect(0, &["PONG"]);
    let target = format!("rediss://localhost:{tls}?ca={}", certs.other_ca().display());
    probe(&target, &[]).expect(1, &["certificate"]);
    // The test CA is not among the built-in roots: without ca=, fatal...
    let untrusted = format!("rediss://localhost:{tls}");
    fatal_when_waiting(
        &untrusted,
        &[],
        &["certificate", "not signed by a trusted CA", "ca=PATH"],
    );
    // ...unless told to check nothing, which it warns about.
    let unchecked = format!("{untrusted}?tls-verify=false");
    let warned = "warning: target 'rediss://localhost:";
    run_kwait(&[&unchecked, "-t", "30s"], &[], LONG).expect(
        0,
        &[
            "PONG",
            warned,
            "tls-verify=false: the server's certificate is not checked",
        ],
    );
}

#[test]
fn hostile_answers_are_errors_not_allocations_or_panics() {
    for fake in [
        Fake::garbage(),
        Fake::huge_length(),
        Fake::silent(),
        Fake::closing(),
    ] {
        let done = run_kwait(
            &["probe", "-t", "2s", &format!("redis://{}", fake.addr())],
            &[],
            LONG,
        );
        done.expect(1, &[]);
    }
    let fake = Fake::http("200 OK");
    let done = probe(&format!("redis://{}", fake.addr()), &[]);
    done.expect(1, &[]);
}
