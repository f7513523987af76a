//! A real RabbitMQ node (Debian's `rabbitmq-server`, Erlang), all of its
//! own: node name, ports (AMQP, AMQPS, distribution, and an `epmd` started
//! here on its own port), data and log directories and Erlang cookie (HOME).
//! The vhost `v1` and the user `app` (password [`AMQP_PASSWORD`]) are
//! added with `rabbitmqctl`. Stopped by pid on drop (epmd too).
//!
//! `/usr/lib/rabbitmq/bin/rabbitmq-server` is started directly: Debian's
//! `/usr/sbin` wrapper switches to the `rabbitmq` user, who cannot write a
//! test's directory.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{free_port, need, Certs, ChildGuard, Peer, TempDir};

pub const AMQP_PASSWORD: &str = "s3cret-mq";

const BIN: &str = "/usr/lib/rabbitmq/bin";

pub struct RabbitMq {
    peer: Peer,
    node: String,
    home: PathBuf,
    epmd_port: u16,
    /// The AMQPS port, when started with certificates.
    pub tls_port: Option<u16>,
    _epmd: ChildGuard,
}

peer_deref!(RabbitMq, peer);

impl RabbitMq {
    /// Starts a node on a free port (and an AMQPS port with `certs`'
    /// server certificate, if given), waits until its AMQP port accepts,
    /// and adds `v1` and `app`.
    pub fn start_ready(certs: Option<&Certs>) -> RabbitMq {
        let mut mq = RabbitMq::start(free_port(), certs);
        mq.wait_accepting();
        mq.ctl(&["add_vhost", "v1"]);
        mq.ctl(&["add_user", "app", AMQP_PASSWORD]);
        mq.ctl(&["set_permissions", "-p", "v1", "app", ".*", ".*", ".*"]);
        mq
    }

    /// Polls until its AMQP port accepts (the end of its boot).
    pub fn wait_accepting(&mut self) {
        self.peer
            .wait_listening(Duration::from_secs(60), " (see its log)");
    }

    /// Starts a node on `port`; does not wait for it. Only guest exists.
    pub fn start(port: u16, certs: Option<&Certs>) -> RabbitMq {
        need("erl");
        let dir = TempDir::new("rabbitmq");
        let epmd_port = free_port();
        let mut conf = format!("listeners.tcp.default = {port}\nloopback_users = none\n");
        let tls_port = certs.map(|c| {
            let tls = free_port();
            let (cert, key) = c.server();
            conf.push_str(&format!(
                "listeners.ssl.default = {tls}\nssl_options.cacertfile = {}\n\
                 ssl_options.certfile = {}\nssl_options.keyfile = {}\n",
                c.ca().display(),
                cert.display(),
                key.display()
            ));
            tls
        });
        std::fs::write(dir.path().join("rabbitmq.conf"), conf).expect("write rabbitmq.conf");
        std::fs::write(dir.path().join("plugins"), "[].\n").expect("write plugins");
        let epmd = ChildGuard::spawn(
            "epmd",
            Command::new("epmd")
                .args(["-port", &epmd_port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        let node = format!("kwait{port}@localhost");
        let log = dir.path().join("out.log");
        let out = std::fs::File::create(&log).expect("create the log");
        let mut cmd = Command::new(format!("{BIN}/rabbitmq-server"));
        let home = dir.path().to_path_buf();
        env(&mut cmd, &home, &node, epmd_port)
            .env("RABBITMQ_NODE_PORT", port.to_string())
            .env("RABBITMQ_DIST_PORT", free_port().to_string())
            .env("RABBITMQ_MNESIA_BASE", home.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", home.join("log"))
            .env("RABBITMQ_CONFIG_FILE", home.join("rabbitmq"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", home.join("plugins"))
            .env("RABBITMQ_PID_FILE", home.join("pid"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup the log"))
            .stderr(out);
        let child = ChildGuard::spawn("rabbitmq-server", &mut cmd);
        RabbitMq {
            peer: Peer::new("rabbitmq", port, child, log).in_dir(dir),
            node,
            home,
            epmd_port,
            tls_port,
            _epmd: epmd,
        }
    }

    /// `rabbitmqctl -n NODE ARGS`; panics with its output if it fails.
    pub fn ctl(&self, args: &[&str]) {
        let mut cmd = Command::new(format!("{BIN}/rabbitmqctl"));
        let out = env(&mut cmd, &self.home, &self.node, self.epmd_port)
            .args(["-n", &self.node])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run rabbitmqctl");
        assert!(
            out.status.success(),
            "rabbitmqctl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The node's name, for `rabbitmq-diagnostics -n`.
    pub fn node(&self) -> &str {
        &self.node
    }
}

/// The shell script may stay the parent of the Erlang VM: stop the VM
/// too, by the pid it wrote.
impl Drop for RabbitMq {
    fn drop(&mut self) {
        let pid = std::fs::read_to_string(self.home.join("pid")).unwrap_or_default();
        if let Ok(pid) = pid.trim().parse::<i32>() {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// What the server and its CLI tools share: HOME (the Erlang cookie), the
/// node's name, epmd's port.
fn env<'a>(cmd: &'a mut Command, home: &PathBuf, node: &str, epmd: u16) -> &'a mut Command {
    cmd.env("HOME", home)
        .env("RABBITMQ_NODENAME", node)
        .env("ERL_EPMD_PORT", epmd.to_string())
        .env("RABBITMQ_CONF_ENV_FILE", home.join("rabbitmq-env.conf"))
}
