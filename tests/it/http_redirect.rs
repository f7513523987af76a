//! An http target that redirects shows where to (its Location header,
//! escaped and bounded), so the user can point the target there.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use crate::peers::{self, free_port, kwait_with, wait_port, ChildGuard, TempDir};

/// Python's http.server redirects a directory asked for without its
/// trailing slash: 301, Location: /docs/.
#[test]
fn a_redirect_shows_its_location() {
    let dir = TempDir::new("redirect");
    std::fs::create_dir(dir.path().join("docs")).expect("mkdir docs");
    let port = free_port();
    let mut cmd = Command::new("python3");
    cmd.args([
        "-m",
        "http.server",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--directory",
    ])
    .arg(dir.path())
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    let _server = ChildGuard::spawn("python3 -m http.server", &mut cmd);
    let addr = format!("127.0.0.1:{port}");
    wait_port(&addr, Duration::from_secs(30)).expect("http.server listening");
    let target = format!("http://{addr}/docs");
    peers::run(
        &mut kwait_with(&["probe", &target], &[]),
        Duration::from_secs(30),
    )
    .expect(
        1,
        &["answered 301 Moved Permanently (Location: /docs/); kwait does not follow redirects"],
    );
}

/// A hostile Location (control characters, 10 KB) is escaped and cut: the
/// reason stays one short line. A fake server, since no real one sends that.
#[test]
fn a_hostile_location_is_escaped_and_bounded() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let long = "x".repeat(10_000);
            let answer = format!(
                "HTTP/1.1 302 Found\r\nLocation: /a\x1b[31mb/{long}\r\nContent-Length: 0\r\n\r\n"
            );
            let _ = s.write_all(answer.as_bytes());
        }
    });
    let done = peers::run(
        &mut kwait_with(&["probe", &format!("http://{addr}/")], &[]),
        Duration::from_secs(30),
    );
    done.expect(1, &["answered 302 Found (Location: /a\\u{1b}[31mb/xxx"]);
    assert!(!done.stderr.contains('\x1b'), "{}", done.stderr);
    assert!(done.stderr.len() < 600, "{}", done.stderr);
}
