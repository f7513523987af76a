//! redis-server from Debian: [`Redis`], on a free loopback port with its own
//! directory, stopped by pid.

use std::fs::File;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{ChildGuard, Peer, TempDir};

/// A redis-server. The default user's password, when set, is
/// [`Redis::PASSWORD`]; the ACL user `app` has [`Redis::APP_PASSWORD`].
pub struct Redis(Peer);

peer_deref!(Redis, 0);

impl Redis {
    pub const PASSWORD: &'static str = "s3cret-default";
    pub const APP_PASSWORD: &'static str = "s3cret-app";

    /// Starts redis-server on 127.0.0.1:`port` with `args` after the
    /// defaults (`--requirepass`, `--tls-port 0 ...`); waits until it
    /// accepts connections.
    pub fn start(port: u16, args: &[&str]) -> Redis {
        let dir = TempDir::new(&format!("redis-{port}"));
        Redis::start_in(dir, port, args)
    }

    /// As [`Redis::start`], with the ACL user `app` ([`Redis::APP_PASSWORD`],
    /// every key, channel and command) after `args`.
    pub fn with_app_user(port: u16, args: &[&str]) -> Redis {
        let acl = format!(">{}", Redis::APP_PASSWORD);
        let mut all = args.to_vec();
        all.extend(["--user", "app", "on", &acl, "~*", "&*", "+@all"]);
        Redis::start(port, &all)
    }

    /// As [`Redis::start`], in `dir` (which may hold a dump.rdb to load).
    pub fn start_in(dir: TempDir, port: u16, args: &[&str]) -> Redis {
        let log = dir.path().join("redis.log");
        let out = File::create(&log).expect("create redis log");
        let err = out.try_clone().expect("clone log fd");
        let mut cmd = Command::new("redis-server");
        cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--port", &port.to_string(), "--dir"])
            .arg(dir.path())
            .args(["--enable-debug-command", "yes"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = match cmd.spawn() {
            Ok(c) => ChildGuard::new("redis-server", c),
            Err(e) => {
                panic!("cannot run redis-server ({e}); run scripts/setup (Debian redis-server)")
            }
        };
        let listen = args
            .windows(2)
            .find(|w| w[0] == "--tls-port")
            .and_then(|w| w[1].parse().ok())
            .unwrap_or(port);
        let mut peer = Peer::new("redis-server", listen, child, log).in_dir(dir);
        peer.wait_listening(Duration::from_secs(10), ":");
        Redis(peer)
    }

    /// redis-cli against it (plaintext port), with `auth` as REDISCLI_AUTH.
    pub fn cli(&self, auth: Option<&str>, args: &[&str]) -> String {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port().to_string()])
            .args(args);
        if let Some(a) = auth {
            cmd.env("REDISCLI_AUTH", a);
        }
        let out = cmd.output().expect("run redis-cli (scripts/setup)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}
