//! A SASL front (tests/helpers/sasl_front.py) in front of a plaintext
//! broker: [`SaslFront`].

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{unique_path, ChildGuard, Peer};

/// tests/helpers/sasl_front.py.
fn sasl_front_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/sasl_front.py")
}

/// tests/helpers/sasl_front.py on 127.0.0.1:`port`: answers SaslHandshake
/// and SaslAuthenticate itself (PLAIN; SCRAM through the `scramp` library)
/// and relays everything else to the broker at `broker` once the client
/// authenticated. Its log, [`Peer::log`], is its stderr: one line per
/// authentication outcome ("SCRAM-SHA-256 authenticated 'alice'", "PLAIN
/// failed for 'bob': ..."). SIGKILLed on drop.
pub struct SaslFront(Peer);

peer_deref!(SaslFront, 0);

impl SaslFront {
    /// Starts the front for `users` ("name", "password") offering
    /// `mechanisms` (comma-separated), and waits until it accepts.
    pub fn start(port: u16, broker: &str, users: &[(&str, &str)], mechanisms: &str) -> SaslFront {
        SaslFront::start_with(port, broker, users, mechanisms, &[])
    }

    /// [`SaslFront::start`] with more flags, e.g. `--impostor`.
    pub fn start_with(
        port: u16,
        broker: &str,
        users: &[(&str, &str)],
        mechanisms: &str,
        extra: &[&str],
    ) -> SaslFront {
        let log = unique_path(&format!("sasl-front-{port}.log"));
        let err = File::create(&log).expect("create sasl_front log");
        let mut cmd = Command::new("python3");
        cmd.arg(sasl_front_script())
            .arg("--listen")
            .arg(port.to_string())
            .arg("--broker")
            .arg(broker)
            .arg("--mechanisms")
            .arg(mechanisms)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err);
        for (user, password) in users {
            cmd.arg("--user").arg(format!("{user}:{password}"));
        }
        let child = ChildGuard::spawn("sasl_front.py", &mut cmd);
        let mut peer = Peer::new("sasl_front.py", port, child, log);
        peer.wait_listening(
            Duration::from_secs(20),
            "; is scramp installed (scripts/setup)?",
        );
        SaslFront(peer)
    }
}
