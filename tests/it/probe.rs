//! One attempt against each kind of peer, as `kwait probe` reports it and
//! as the reason a wait times out: hostile peers on a kafka:// target
//! (silent, garbage, a huge frame length, reset mid-frame, a name that
//! does not resolve), and tcp:// and http:// targets.
//!
//! Peers are real sockets opened here, or `Fake` servers from the harness.

use std::time::Duration;

use crate::peers::{assert_contains, listener, run_kwait, Done, Fake, RefusedPort};

/// The longest any single kwait run here may take before the test fails.
const LIMIT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------
// 1. Hostile peers on a kafka:// target: wait mode and probe
// ---------------------------------------------------------------------------

/// `kwait probe -t TIMEOUT TARGET`: asserts exit `code`, no panic, and
/// that the single line it printed holds every one of `needles`; returns
/// the run and that line.
fn probe(target: &str, timeout: &str, code: i32, needles: &[&str]) -> (Done, String) {
    let done = run_kwait(&["probe", "-t", timeout, target], &[], LIMIT);
    done.assert_no_panic();
    assert_eq!(done.code, Some(code), "{done:?}");
    let line = done.probe_line();
    assert_contains(&line, needles);
    (done, line)
}

/// `kwait EXTRA TARGET`, which must time out: asserts exit 124, no panic,
/// and that its 'timed out' line holds every one of `needles`; returns the
/// run and that line.
fn times_out(target: &str, extra: &[&str], needles: &[&str]) -> (Done, String) {
    let mut args = extra.to_vec();
    args.push(target);
    let done = run_kwait(&args, &[], LIMIT);
    done.assert_no_panic();
    assert_eq!(done.code, Some(124), "{done:?}");
    let line = done.timed_out_line();
    assert_contains(&line, needles);
    (done, line)
}

/// `kafka://` the fake server.
fn kafka(fake: &Fake) -> String {
    format!("kafka://{}", fake.addr())
}

/// `http://` the fake server, then `path`.
fn http(fake: &Fake, path: &str) -> String {
    format!("http://{}{path}", fake.addr())
}

/// A peer that accepts and never answers: the timeout line's advice names
/// the limit that ran out, --attempt-timeout, not --timeout.
#[test]
fn a_silent_peers_timeout_line_names_attempt_timeout() {
    let fake = Fake::silent();
    let target = format!("kafka://{}", fake.addr());
    let done = run_kwait(
        &[&target, "-t", "1s", "--attempt-timeout", "300ms"],
        &[],
        LIMIT,
    );
    assert_eq!(done.code, Some(124), "{done:?}");
    let line = done.timed_out_line();
    assert!(
        line.contains("(raise --attempt-timeout, or fix the target)"),
        "{line}"
    );
}

#[test]
fn https_to_a_plaintext_server_names_the_likely_cause() {
    // A plain HTTP server reads the TLS ClientHello as a request line and
    // waits for its end: the handshake gets no answer, and kwait says why.
    let fake = Fake::http("HTTP/1.1 200 OK");
    let target = format!("https://{}/health", fake.addr());
    let done = run_kwait(
        &[&target, "-t", "1s", "--attempt-timeout", "300ms"],
        &[],
        LIMIT,
    );
    done.assert_no_panic();
    assert_eq!(done.code, Some(124), "{done:?}");
    assert!(done.stderr.contains("no TLS handshake answer"), "{done:?}");
    assert!(done.stderr.contains("use http://"), "{done:?}");
}

#[test]
fn silent_peer_times_out_each_attempt_then_124() {
    let fake = Fake::silent();
    let target = kafka(&fake);
    let extra = ["--attempt-timeout", "300ms", "-t", "2s"];
    let (done, line) = times_out(&target, &extra, &[&target]);
    assert!(
        line.contains("no answer") && (line.contains("deadline") || line.contains("within")),
        "{line}"
    );
    // Each attempt ended at its own deadline: several connections, not one.
    assert!(
        fake.connections() >= 3,
        "only {} attempts in 2 s with --attempt-timeout 300ms",
        fake.connections()
    );
    assert!(done.elapsed < Duration::from_secs(4), "{:?}", done.elapsed);
}

#[test]
fn silent_peer_probe_exits_1_at_its_timeout() {
    let fake = Fake::silent();
    let target = kafka(&fake);
    let (done, line) = probe(&target, "1s", 1, &["no answer"]);
    assert!(
        line.starts_with(&format!("kwait: {target} not ready: ")),
        "{line}"
    );
    assert!(done.elapsed < Duration::from_secs(3), "{:?}", done.elapsed);
}

#[test]
fn garbage_peer_probe_exits_1() {
    let fake = Fake::garbage();
    let target = kafka(&fake);
    let (_, line) = probe(&target, "2s", 1, &["ApiVersions"]);
    assert!(
        line.starts_with(&format!("kwait: {target} not ready: {}: ", fake.addr())),
        "{line}"
    );
}

#[test]
fn garbage_peer_wait_exits_124() {
    let fake = Fake::garbage();
    times_out(&kafka(&fake), &["-t", "1s"], &["ApiVersions"]);
}

#[test]
fn huge_length_peer_probe_exits_1_not_kafka() {
    let fake = Fake::huge_length();
    let needles = ["frame length of 2147483647", "not Kafka"];
    let (done, _) = probe(&kafka(&fake), "2s", 1, &needles);
    assert!(done.elapsed < Duration::from_secs(2), "{:?}", done.elapsed);
}

#[test]
fn huge_length_peer_wait_exits_124_not_kafka() {
    let fake = Fake::huge_length();
    times_out(&kafka(&fake), &["-t", "1s"], &["not Kafka"]);
}

#[test]
fn reset_mid_frame_peer_probe_exits_1() {
    let fake = Fake::reset_mid_frame();
    let (_, line) = probe(&kafka(&fake), "2s", 1, &["reading the ApiVersions answer"]);
    assert!(line.contains("reset") || line.contains("closed"), "{line}");
}

#[test]
fn reset_mid_frame_peer_wait_exits_124() {
    let fake = Fake::reset_mid_frame();
    let (_, line) = times_out(&kafka(&fake), &["-t", "1s"], &[]);
    assert!(line.contains("reset") || line.contains("closed"), "{line}");
}

#[test]
fn unresolvable_host_probe_exits_1() {
    let target = "kafka://does-not-exist.invalid:9092";
    probe(
        target,
        "3s",
        1,
        &["cannot resolve 'does-not-exist.invalid'"],
    );
}

/// DNS failure is "not ready yet": a timeout, not a failure or usage error.
#[test]
fn unresolvable_host_is_not_ready_yet_in_wait_mode() {
    let target = "kafka://does-not-exist.invalid:9092";
    times_out(
        target,
        &["-t", "1s"],
        &["cannot resolve 'does-not-exist.invalid'"],
    );
}

// ---------------------------------------------------------------------------
// 2. tcp:// and http://
// ---------------------------------------------------------------------------

#[test]
fn probe_tcp_listener_exits_0() {
    let (_l, target) = listener();
    let (_, line) = probe(&target, "2s", 0, &[]);
    assert!(
        line.starts_with(&format!("kwait: {target} ready: accepted a connection")),
        "{line}"
    );
}

#[test]
fn probe_tcp_refused_exits_1() {
    let refused = RefusedPort::new();
    let target = refused.target("tcp");
    let (_, line) = probe(&target, "2s", 1, &[]);
    assert!(
        line.starts_with(&format!("kwait: {target} not ready: connection refused")),
        "{line}"
    );
}

#[test]
fn probe_several_targets_one_line_each_and_1_if_any_not_ready() {
    let (_l, ready) = listener();
    let refused = RefusedPort::new();
    let unready = refused.target("tcp");
    let done = run_kwait(&["probe", ready.as_str(), unready.as_str()], &[], LIMIT);
    assert_eq!(done.code, Some(1), "{done:?}");
    let lines: Vec<&str> = done.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!("kwait: {ready} ready")),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with(&format!("kwait: {unready} not ready")),
        "{lines:?}"
    );
}

#[test]
fn probe_http_200_exits_0() {
    let fake = Fake::http("HTTP/1.1 200 OK");
    let target = http(&fake, "/health");
    let (_, line) = probe(&target, "2s", 0, &[]);
    assert_eq!(line, format!("kwait: {target} ready: answered 200 OK"));
}

#[test]
fn probe_http_503_exits_1() {
    let fake = Fake::http("503 Service Unavailable");
    let target = http(&fake, "/health");
    let (_, line) = probe(&target, "2s", 1, &[]);
    assert_eq!(
        line,
        format!("kwait: {target} not ready: answered 503 Service Unavailable")
    );
}

#[test]
fn probe_http_301_exits_1_and_says_redirects_are_not_followed() {
    let fake = Fake::http("301 Moved Permanently");
    let needles = ["answered 301 Moved Permanently", "redirects"];
    probe(&http(&fake, "/"), "2s", 1, &needles);
}

#[test]
fn probe_http_silent_peer_exits_1() {
    let fake = Fake::silent();
    let needles = ["not ready: ", "no answer"];
    let (done, _) = probe(&http(&fake, "/health"), "1s", 1, &needles);
    assert!(done.elapsed < Duration::from_secs(3), "{:?}", done.elapsed);
}

#[test]
fn http_503_in_wait_mode_times_out_with_the_status() {
    let fake = Fake::http("503 Service Unavailable");
    let needles = ["answered 503 Service Unavailable"];
    times_out(&http(&fake, "/health"), &["-t", "1s"], &needles);
}
