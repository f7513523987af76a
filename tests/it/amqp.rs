//! amqp:// and amqps:// against a real RabbitMQ node (Debian's, see
//! peers/rabbitmq.rs), and hostile fakes for what no broker sends on
//! demand. A node takes seconds to boot, so each test uses one node for
//! several checks (nextest runs every test in a process of its own).

use std::time::Duration;

use crate::peers::{
    free_port, hostile, kwait_with, run_kwait, untrusted_then_unchecked, Certs, RabbitMq, Waiting,
    AMQP_PASSWORD,
};

const LIMIT: Duration = Duration::from_secs(60);
const PASSWORD: (&str, &str) = ("KWAIT_AMQP_PASSWORD", AMQP_PASSWORD);

#[test]
fn a_node_started_after_kwait_then_refusals_limits_and_stop() {
    // guest on "/", which exist from the node's first boot (app and v1
    // are added once it is up).
    let port = free_port();
    let late = format!("amqp://127.0.0.1:{port}");
    let mut w = Waiting::spawn("amqp-late", "kwait", kwait_with(&[&late, "-t", "60s"], &[]));
    w.kw.wait_for_stderr("connection refused", Duration::from_secs(10));
    let mut mq = RabbitMq::start(port, None);
    assert!(w.kw.running() && !w.ran(), "kwait went on without a broker");
    w.kw.finish(LIMIT).expect(
        0,
        &[
            &format!("{late} ready"),
            "vhost '/' open for user 'guest'",
            "COMMAND started",
        ],
    );
    assert!(w.ran());
    mq.wait_accepting();
    mq.ctl(&["add_vhost", "v1"]);
    mq.ctl(&["add_user", "app", AMQP_PASSWORD]);
    mq.ctl(&["set_permissions", "-p", "v1", "app", ".*", ".*", ".*"]);

    let port = mq.port();
    let target = format!("amqp://app@127.0.0.1:{port}/v1");
    run_kwait(&["probe", &target], &[PASSWORD], LIMIT)
        .expect(0, &["RabbitMQ", "vhost 'v1' open for user 'app'"]);
    // %2f spells the vhost "/".
    run_kwait(
        &["probe", &format!("amqp://127.0.0.1:{port}/%2f")],
        &[],
        LIMIT,
    )
    .expect(0, &["vhost '/'"]);

    let done = run_kwait(
        &[&target, "-t", "60s", "--", "true"],
        &[("KWAIT_AMQP_PASSWORD", "wrong")],
        LIMIT,
    );
    done.expect(
        1,
        &[
            "access refused for user 'app'",
            "vhost 'v1'",
            "ACCESS_REFUSED",
        ],
    );
    assert!(done.elapsed < Duration::from_secs(5), "{:?}", done.elapsed);
    let done = run_kwait(
        &[
            &format!("amqp://app@127.0.0.1:{port}/nosuch"),
            "-t",
            "60s",
            "--",
            "true",
        ],
        &[PASSWORD],
        LIMIT,
    );
    done.expect(1, &["vhost 'nosuch'", "not found"]);
    assert!(done.elapsed < Duration::from_secs(5), "{:?}", done.elapsed);

    // A connection limit reached: the broker's Connection.Close, not ready.
    mq.ctl(&["set_vhost_limits", "-p", "v1", r#"{"max-connections": 0}"#]);
    run_kwait(&["probe", &target], &[PASSWORD], LIMIT).expect(1, &["not ready", "limit"]);
    let mut w = Waiting::spawn(
        "amqp-limit",
        "kwait",
        kwait_with(&[&target, "-t", "60s"], &[PASSWORD]),
    );
    w.kw.wait_for_stderr("limit", Duration::from_secs(20));
    assert!(!w.ran());
    mq.ctl(&["clear_vhost_limits", "-p", "v1"]);
    w.kw.finish(LIMIT).expect(0, &["ready", "COMMAND started"]);

    mq.stop();
    run_kwait(&["probe", &target], &[PASSWORD], LIMIT).expect(1, &["connection refused"]);
}

#[test]
fn amqps_with_a_private_ca() {
    let certs = Certs::new();
    let mq = RabbitMq::start_ready(Some(&certs));
    let tls = mq.tls_port.expect("an AMQPS port");
    let target = format!("amqps://app@localhost:{tls}/v1?ca={}", certs.ca().display());
    run_kwait(&["probe", &target], &[PASSWORD], LIMIT).expect(0, &["vhost 'v1' open"]);
    // The test CA is not among the built-in roots: without ca=, refused
    // for good...
    let untrusted = format!("amqps://app@localhost:{tls}/v1");
    let unchecked = format!("{untrusted}?tls-verify=false");
    untrusted_then_unchecked(
        &untrusted,
        &unchecked,
        &[PASSWORD],
        "vhost 'v1' open",
        LIMIT,
    );
    // amqps:// at the plain port: a TLS handshake nobody answers in TLS.
    let wrong = format!(
        "amqps://app@localhost:{}/v1?ca={}",
        mq.port(),
        certs.ca().display()
    );
    run_kwait(&["probe", &wrong, "-t", "3s"], &[PASSWORD], LIMIT).expect(1, &["not ready"]);
}

#[test]
fn hostile_brokers_are_errors_not_allocations_or_panics() {
    let mut huge = vec![1, 0, 0, 0xff, 0xff, 0xff, 0xff];
    huge.extend([0; 16]);
    for (reply, needle) in [
        (huge, "not an AMQP 0-9-1 broker"),
        (
            b"AMQP\x00\x01\x00\x00".to_vec(),
            "does not speak AMQP 0-9-1",
        ),
        (vec![1, 0, 0, 0, 0, 0, 2, 0, 10, 0xce], "not the next step"),
        (
            vec![1, 0, 0, 0, 0, 0, 5, 0, 10, 0, 10, 0, 0xce],
            "cannot read",
        ),
        (b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec(), "HTTP"),
    ] {
        let addr = hostile(8, reply);
        let done = run_kwait(
            &["probe", &format!("amqp://{addr}"), "-t", "2s"],
            &[],
            LIMIT,
        );
        done.expect(1, &[needle]);
    }
}

#[test]
fn a_password_in_the_url_is_a_usage_error() {
    let done = run_kwait(&["amqp://app:hunter2@mq/v1", "--", "true"], &[], LIMIT);
    done.expect(2, &["KWAIT_AMQP_PASSWORD", "password-file=PATH"]);
    assert!(!done.stderr.contains("hunter2"));
}
