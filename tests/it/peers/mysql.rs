//! A real MariaDB server (Debian's `mariadb-server`): its own data
//! directory made by `mariadb-install-db`, `mariadbd` on a free loopback
//! port as root (`--user=root`), with the user `app` (password
//! [`MYSQL_PASSWORD`], mysql_native_password) and its database `appdb`
//! created by an init file. Stopped by pid on drop.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::{need, Certs, ChildGuard, Peer, TempDir};

pub const MYSQL_PASSWORD: &str = "s3cret-my";

const INIT: &str = "CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY 's3cret-my';\n\
CREATE DATABASE IF NOT EXISTS appdb;\n\
GRANT ALL ON appdb.* TO 'app'@'%';\n";

pub struct MariaDb(Peer);

peer_deref!(MariaDb, 0);

impl MariaDb {
    /// Installs a fresh data directory and starts `mariadbd` on `port` with
    /// the `extra` options (`--max-connections=1`, TLS files); does not
    /// wait for it.
    pub fn start(port: u16, extra: &[String]) -> MariaDb {
        need("mariadbd");
        let dir = TempDir::new("mariadb");
        let data = dir.path().join("data");
        // Its own tmpdir: the bootstrap's temporary tables live there, and a
        // shared /tmp let one run lose them ("Could not remove temporary
        // table ... error: 2", then "Unknown table 'mysql.tmp_user_sys'").
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).expect("create the tmpdir");
        let tmpdir = format!("--tmpdir={}", tmp.display());
        let out = Command::new("mariadb-install-db")
            .arg(format!("--datadir={}", data.display()))
            .arg(&tmpdir)
            .args([
                "--user=root",
                "--skip-test-db",
                "--auth-root-authentication-method=normal",
            ])
            .stdin(Stdio::null())
            .output()
            .expect("run mariadb-install-db (run scripts/setup)");
        assert!(
            out.status.success(),
            "mariadb-install-db: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let init = dir.path().join("init.sql");
        std::fs::write(&init, INIT).expect("write init.sql");
        let log = dir.path().join("err.log");
        let mut cmd = Command::new("mariadbd");
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", dir.path().join("sock").display()))
            .arg(format!("--port={port}"))
            .arg(&tmpdir)
            .arg(format!("--init-file={}", init.display()))
            .arg(format!("--log-error={}", log.display()))
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .args([
                "--bind-address=127.0.0.1",
                "--user=root",
                "--skip-name-resolve",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = ChildGuard::spawn("mariadbd", &mut cmd);
        MariaDb(Peer::new("mariadbd", port, child, log).in_dir(dir))
    }

    /// [`MariaDb::start`], then waits until it accepts connections.
    pub fn start_ready(port: u16, extra: &[String]) -> MariaDb {
        let mut db = MariaDb::start(port, extra);
        db.wait_accepting(Duration::from_secs(30));
        db
    }

    pub fn wait_accepting(&mut self, timeout: Duration) {
        self.0.wait_listening(timeout, " (see its err.log)");
    }

    /// The options that turn TLS on with `certs`' server certificate.
    pub fn tls_options(certs: &Certs) -> Vec<String> {
        let (cert, key) = certs.server();
        vec![
            format!("--ssl-ca={}", certs.ca().display()),
            format!("--ssl-cert={}", cert.display()),
            format!("--ssl-key={}", key.display()),
        ]
    }
}
