//! PostgreSQL from Debian: [`Postgres`], a server on a free loopback port
//! with its own data directory, run as `nobody` (initdb and postgres refuse
//! root), stopped by pid.
//!
//! One cluster is made per test run ([`template`]: initdb, then roles for
//! each password method in single-user mode) and copied for each server.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use super::{ChildGuard, Peer, TempDir};

/// `nobody`, which Debian always has.
const UID: u32 = 65534;
const GID: u32 = 65534;

/// A postgres server. Roles: `postgres` (trust), `md5user` / `scramuser` /
/// `plainuser` with [`Postgres::PASSWORD`] by md5, scram-sha-256 and
/// password (cleartext) in pg_hba.conf; database `app`.
pub struct Postgres {
    peer: Peer,
    pub data: PathBuf,
}

peer_deref!(Postgres, peer);

/// How a [`Postgres`] starts.
#[derive(Default)]
pub struct PgOptions<'a> {
    /// ssl=on with this (certificate, key).
    pub ssl: Option<(&'a Path, &'a Path)>,
    /// A standby (standby.signal) with no primary and hot_standby=off: it
    /// answers every connection with SQLSTATE 57P03.
    pub standby: bool,
}

/// The binaries of Debian's newest installed PostgreSQL.
pub fn pg_bin(tool: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("no /usr/lib/postgresql: run scripts/setup (Debian postgresql)")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    versions.sort();
    versions
        .last()
        .expect("no PostgreSQL version installed: run scripts/setup")
        .join("bin")
        .join(tool)
}

fn as_nobody(cmd: &mut Command) -> &mut Command {
    cmd.uid(UID)
        .gid(GID)
        .current_dir("/tmp")
        .env_remove("PGPASSWORD")
}

fn chown_tree(path: &Path) {
    let ok = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(path)
        .status();
    assert!(ok.is_ok_and(|s| s.success()), "chown {}", path.display());
}

/// The initdb'd cluster every server starts from, made once.
fn template() -> &'static Path {
    static DIR: OnceLock<TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = TempDir::new("pg-template");
        let data = dir.path().join("data");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        chown_tree(dir.path());
        let out = as_nobody(&mut Command::new(pg_bin("initdb")))
            .args(["-D"])
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "--no-sync"])
            .output()
            .expect("run initdb: run scripts/setup (Debian postgresql)");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pw = Postgres::PASSWORD;
        let sql = format!(
            "SET password_encryption = 'md5';\n\
             CREATE ROLE md5user LOGIN PASSWORD '{pw}';\n\
             SET password_encryption = 'scram-sha-256';\n\
             CREATE ROLE scramuser LOGIN PASSWORD '{pw}';\n\
             CREATE ROLE plainuser LOGIN PASSWORD '{pw}';\n\
             CREATE DATABASE app;\n"
        );
        let mut child = as_nobody(&mut Command::new(pg_bin("postgres")))
            .args(["--single", "-D"])
            .arg(&data)
            .arg("postgres")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("postgres --single");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(sql.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "postgres --single: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\n\
             host all postgres 127.0.0.1/32 trust\n\
             host all ghost 127.0.0.1/32 trust\n\
             host all md5user 127.0.0.1/32 md5\n\
             host all plainuser 127.0.0.1/32 password\n\
             host all all 127.0.0.1/32 scram-sha-256\n",
        )
        .unwrap();
        dir
    })
    .path()
}

impl Postgres {
    pub const PASSWORD: &'static str = "pg-s3cret";

    /// Starts a server on 127.0.0.1:`port` and waits until it accepts
    /// connections (not until it is ready: that is kwait's job).
    pub fn start(port: u16, opts: &PgOptions) -> Postgres {
        let dir = TempDir::new(&format!("postgres-{port}"));
        let data = dir.path().join("data");
        let ok = Command::new("cp")
            .arg("-a")
            .arg(template().join("data"))
            .arg(&data)
            .status();
        assert!(ok.is_ok_and(|s| s.success()), "copy the template cluster");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut conf = String::from("fsync = off\nlisten_addresses = '127.0.0.1'\n");
        if let Some((cert, key)) = opts.ssl {
            std::fs::copy(cert, data.join("server.crt")).unwrap();
            std::fs::copy(key, data.join("server.key")).unwrap();
            std::fs::set_permissions(
                data.join("server.key"),
                std::fs::Permissions::from_mode(0o600),
            )
            .unwrap();
            conf.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        }
        if opts.standby {
            File::create(data.join("standby.signal")).unwrap();
            conf.push_str("hot_standby = off\nprimary_conninfo = 'host=127.0.0.1 port=1'\n");
        }
        std::fs::write(data.join("postgresql.auto.conf"), conf).unwrap();
        chown_tree(dir.path());
        let log = dir.path().join("postgres.log");
        let out = File::create(&log).expect("create postgres log");
        let err = out.try_clone().unwrap();
        let mut cmd = Command::new(pg_bin("postgres"));
        as_nobody(&mut cmd)
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(&data)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = ChildGuard::spawn("postgres", &mut cmd);
        let mut peer = Peer::new("postgres", port, child, log).in_dir(dir);
        peer.wait_listening(Duration::from_secs(20), ":");
        Postgres { peer, data }
    }

    /// Polls pg_isready until it says the server accepts connections (a
    /// fresh server answers "starting up" for a moment).
    pub fn wait_ready(&self) {
        let port = self.port().to_string();
        let up = super::poll_until(Duration::from_secs(20), || {
            Command::new(pg_bin("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &port])
                .status()
                .is_ok_and(|s| s.success())
        });
        assert!(up, "postgres not ready:\n{}", self.log());
    }

    /// SIGTERM (smart shutdown) without waiting.
    pub fn begin_shutdown(&mut self) {
        self.peer.child.signal(libc::SIGTERM);
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Immediate shutdown: the postmaster takes its backends with it.
        if self.peer.child.try_wait().is_none() {
            self.peer.child.signal(libc::SIGQUIT);
            self.peer.child.wait_timeout(Duration::from_secs(5));
        }
    }
}
