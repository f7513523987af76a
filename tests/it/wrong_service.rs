//! A `kafka://` (or `http://`) target pointed at another service's port:
//! kwait names the service from its first bytes and, for Kafka, gives up at
//! once, in probe and wait mode alike, instead of reporting a frame length
//! and retrying for the whole timeout. Real servers where this machine has
//! them (Python's http.server, OpenSSH's sshd, redis-server); AMQP through
//! a fake that sends RabbitMQ's real answer, since no broker of it is here.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use crate::peers::{self, free_port, kwait_with, poll_until, wait_port, ChildGuard, Done, TempDir};

const LONG: Duration = Duration::from_secs(30);

fn run(args: &[&str]) -> Done {
    peers::run(&mut kwait_with(args, &[]), LONG)
}

/// A wait with a long timeout must end at once, exit 1, saying `what`.
fn wait_gives_up_at_once(target: &str, what: &str) {
    let done = run(&["-t", "20s", target, "--", "true"]);
    done.expect(1, &[what, "not a Kafka listener"]);
    assert!(done.elapsed < Duration::from_secs(5), "{:?}", done.elapsed);
}

/// Python's http.server on a free port, serving `dir`.
fn http_server(dir: &TempDir) -> (ChildGuard, String) {
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
    let server = ChildGuard::spawn("python3 -m http.server", &mut cmd);
    let addr = format!("127.0.0.1:{port}");
    wait_port(&addr, LONG).expect("http.server listening");
    (server, addr)
}

#[test]
fn kafka_target_at_an_http_server() {
    let dir = TempDir::new("wrong-http");
    let (_server, addr) = http_server(&dir);
    let target = format!("kafka://{addr}");
    run(&["probe", &target]).expect(1, &["this is an HTTP server, not a Kafka listener"]);
    wait_gives_up_at_once(&target, "this is an HTTP server");
}

/// OpenSSH's sshd on a free port with a host key of its own, no config.
fn sshd(dir: &TempDir) -> (ChildGuard, String) {
    let sshd = Path::new("/usr/sbin/sshd");
    assert!(
        sshd.is_file(),
        "{} is missing: run scripts/setup (openssh-server)",
        sshd.display()
    );
    let key = dir.path().join("host_key");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(made.success(), "ssh-keygen failed");
    // sshd refuses to start without its privilege-separation directory.
    std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
    let port = free_port();
    let mut cmd = Command::new(sshd);
    cmd.args(["-D", "-e", "-f", "/dev/null", "-p", &port.to_string()])
        .args(["-o", "ListenAddress=127.0.0.1", "-o", "PidFile=none", "-h"])
        .arg(&key)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let server = ChildGuard::spawn("sshd", &mut cmd);
    let addr = format!("127.0.0.1:{port}");
    wait_port(&addr, LONG).expect("sshd listening");
    (server, addr)
}

#[test]
fn kafka_and_http_targets_at_an_ssh_server() {
    let dir = TempDir::new("wrong-ssh");
    let (_server, addr) = sshd(&dir);
    let target = format!("kafka://{addr}");
    run(&["probe", &target]).expect(
        1,
        &["answered ApiVersions with 'SSH-': this is an SSH server, not a Kafka listener"],
    );
    wait_gives_up_at_once(&target, "this is an SSH server");
    run(&["probe", &format!("http://{addr}/")]).expect(
        1,
        &[
            "answered 'SSH-2.0-OpenSSH",
            "this is an SSH server, not HTTP",
        ],
    );
}

/// redis-server answers nothing to a Kafka request (its inline parser
/// looks for a newline with strchr, which stops at the request's leading
/// zero byte), but a Redis at its client limit greets every new connection
/// with "-ERR max number of clients reached": that is what kwait can name.
#[test]
fn kafka_target_at_a_redis_server() {
    let dir = TempDir::new("wrong-redis");
    let port = free_port();
    let mut cmd = Command::new("redis-server");
    cmd.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--maxclients",
        "1",
    ])
    .arg("--dir")
    .arg(dir.path())
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    let _server = ChildGuard::spawn("redis-server (run scripts/setup if missing)", &mut cmd);
    let addr = format!("127.0.0.1:{port}");
    wait_port(&addr, LONG).expect("redis-server listening");
    // Take the one client slot: a connection Redis does not greet with
    // "-ERR" (wait_port's own may still hold the slot for a moment).
    let mut held = None;
    let taken = poll_until(LONG, || {
        let Ok(mut s) = TcpStream::connect(&addr) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(300)));
        let mut greeting = [0u8; 64];
        let silent = matches!(s.read(&mut greeting), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut);
        if silent {
            held = Some(s);
        }
        silent
    });
    assert!(taken, "no silent connection to redis-server at {addr}");
    let target = format!("kafka://{addr}");
    run(&["probe", &target]).expect(1, &["'-ERR': this is a Redis server, not a Kafka listener"]);
    wait_gives_up_at_once(&target, "this is a Redis server");
}

/// A fake AMQP broker: it reads the client's first 8 bytes and answers, as
/// RabbitMQ does to a protocol header it does not take (AMQP 0-9-1
/// §4.2.2), with its own header, then closes.
#[test]
fn kafka_target_at_an_amqp_broker_fake() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut header = [0u8; 8];
            if s.read_exact(&mut header).is_ok() {
                let _ = s.write_all(b"AMQP\x00\x00\x09\x01");
            }
        }
    });
    let target = format!("kafka://{addr}");
    run(&["probe", &target]).expect(
        1,
        &["this is an AMQP broker (RabbitMQ?), not a Kafka listener"],
    );
    wait_gives_up_at_once(&target, "this is an AMQP broker");
}
