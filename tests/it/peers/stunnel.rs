//! stunnel terminating TLS in front of a plaintext peer: [`Stunnel`].

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{ChildGuard, Peer, TempDir};

/// stunnel (Debian's `stunnel4`, OpenSSL) terminating TLS on
/// 127.0.0.1:`port` and relaying in plaintext to 127.0.0.1:`backend`.
/// Foreground, its log in its temp dir; SIGKILLed on drop.
pub struct Stunnel(Peer);

peer_deref!(Stunnel, 0);

/// How a [`Stunnel`] listener is set up.
pub struct StunnelConfig<'a> {
    pub cert: &'a Path,
    pub key: &'a Path,
    /// Require a client certificate signed by this CA (mTLS).
    pub client_ca: Option<&'a Path>,
    /// More service-level lines, e.g. `"sslVersionMax = TLSv1.2"`.
    pub extra: &'a [&'a str],
}

impl Stunnel {
    /// Starts stunnel and waits until it accepts connections. Panics with
    /// its log if it exits first (e.g. the port was taken) or takes > 10 s.
    pub fn start(port: u16, backend: u16, config: &StunnelConfig) -> Stunnel {
        let dir = TempDir::new(&format!("stunnel-{port}"));
        let mut conf = format!(
            "foreground = yes\npid =\nsyslog = no\ndebug = 5\n\n[kafka]\n\
             accept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{backend}\ncert = {}\nkey = {}\n",
            config.cert.display(),
            config.key.display()
        );
        if let Some(ca) = config.client_ca {
            conf.push_str(&format!("verifyChain = yes\nCAfile = {}\n", ca.display()));
        }
        for line in config.extra {
            conf.push_str(line);
            conf.push('\n');
        }
        let conf_path = dir.path().join("stunnel.conf");
        std::fs::write(&conf_path, conf).expect("write stunnel.conf");
        let log = dir.path().join("stunnel.log");
        let out = File::create(&log).expect("create stunnel log");
        let err = out.try_clone().expect("clone log fd");
        let mut cmd = Command::new("stunnel");
        cmd.arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = match cmd.spawn() {
            Ok(c) => ChildGuard::new("stunnel", c),
            Err(e) => panic!("cannot run stunnel ({e}); run scripts/setup (Debian stunnel4)"),
        };
        let mut peer = Peer::new("stunnel", port, child, log).in_dir(dir);
        peer.wait_listening(Duration::from_secs(10), ":");
        Stunnel(peer)
    }
}
