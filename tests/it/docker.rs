//! kwait in real containers, on this machine's Docker engine (TESTING.md,
//! "Containers"): `ENTRYPOINT` waiting for a broker reached by service name,
//! `docker stop` draining and grace, `HEALTHCHECK` status, compose's
//! `depends_on: service_healthy`, zombies, Ctrl-C on a `-t` container, and
//! the repository's own `Dockerfile.example`.
//!
//! There is no registry: every image is built here `FROM scratch` with COPY,
//! from the static musl kwait (`cargo build --release --target
//! x86_64-unknown-linux-musl`, which `scripts/test` runs), Debian's
//! busybox-static for a shell, and tansu's static binary for a broker.
//!
//! Every test owns a [`Stack`]: its images, containers, networks and compose
//! projects carry a name unique to the test process (`kwait-it-PID-N`), so
//! tests run in parallel, and are removed when the stack is dropped, also
//! when the test panics (after printing the containers' logs). Resources of
//! test processes that died without dropping theirs are removed by the next
//! run. Waiting is polling with a deadline: on `docker logs`, on `docker
//! inspect`, on processes. Times are read from the engine's own log
//! timestamps, so measurements across containers share one clock.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::peers::{collect, poll_every, tansu_path, ChildGuard, TempDir};

/// How long a condition that needs a container start or a probe may take.
const SHORT: Duration = Duration::from_secs(20);
/// Deadline of one docker CLI command (a build, a stop with its timeout).
const DOCKER_LIMIT: Duration = Duration::from_secs(120);
/// How often polling loops look again (every look runs the docker CLI).
const POLL: Duration = Duration::from_millis(50);

/// The broker command inside a container: tansu with in-memory storage,
/// listening on 9092 and advertising `host:9092`.
fn tansu_broker(host: &str) -> String {
    format!(
        "tansu broker --listener-url tcp://0.0.0.0:9092 \
         --advertised-listener-url tcp://{host}:9092 --storage-engine memory://tansu/"
    )
}

// ---------------------------------------------------------------------------
// What the tests need on the machine
// ---------------------------------------------------------------------------

struct Tools {
    /// The static musl kwait.
    kwait: PathBuf,
    /// A static busybox.
    busybox: PathBuf,
    /// Its applet names, each a symlink in the images' /bin.
    applets: Vec<String>,
}

/// Checks once per test process that the engine answers and the static
/// binaries exist; panics (never skips) naming scripts/setup otherwise.
fn tools() -> &'static Tools {
    static TOOLS: OnceLock<Tools> = OnceLock::new();
    TOOLS.get_or_init(|| {
        let tools = find_tools();
        remove_leftovers();
        tools
    })
}

fn find_tools() -> Tools {
    match Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
    {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "the Docker engine does not answer (`docker version`: {}): the docker:: tests need \
             a running engine; scripts/setup installs the rest",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => panic!(
            "docker CLI not found ({e}): the docker:: tests need Docker Engine and its CLI \
             (Debian's docker.io); scripts/setup installs the rest"
        ),
    }

    let busybox = PathBuf::from(std::env::var_os("KWAIT_BUSYBOX").unwrap_or("/bin/busybox".into()));
    assert!(
        is_static_elf(&busybox),
        "{} is missing or not a static binary: the docker:: tests put it into FROM scratch \
         images; run scripts/setup (Debian's busybox-static)",
        busybox.display()
    );
    let list = Command::new(&busybox)
        .arg("--list")
        .output()
        .expect("busybox --list");
    let applets = String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(str::to_owned)
        .filter(|a| !a.is_empty() && !a.contains('/'))
        .collect();

    let kwait = match std::env::var_os("KWAIT_STATIC_BIN") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/x86_64-unknown-linux-musl/release/kwait"),
    };
    let build = "cargo build --release --target x86_64-unknown-linux-musl (scripts/test runs it; \
                 scripts/setup installs the target)";
    assert!(
        is_static_elf(&kwait),
        "{} is missing or not static: the docker:: tests copy the static kwait into their \
         images; run {build}",
        kwait.display()
    );
    let built = mtime(&kwait);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Sources only: cargo rebuilds (and relinks) when one of them is newer
    // than its last build, so after a build none is newer than the binary.
    let mut sources = Vec::new();
    collect_files(&root.join("src"), &mut sources);
    let newer = sources
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "rs") && mtime(p) > built);
    if let Some(newer) = newer {
        panic!(
            "{} is older than {}: the docker:: tests would test stale code; run {build}",
            kwait.display(),
            newer.display()
        );
    }
    Tools {
        kwait,
        busybox,
        applets,
    }
}

fn mtime(p: &Path) -> SystemTime {
    fs::metadata(p)
        .and_then(|m| m.modified())
        .unwrap_or(UNIX_EPOCH)
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            collect_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Whether `path` is a 64-bit ELF executable without a program interpreter
/// (PT_INTERP): it runs in an image that has no libc and no loader.
fn is_static_elf(path: &Path) -> bool {
    let Ok(bytes) = fs::read(path) else {
        return false;
    };
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(bytes[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).all(|i| {
        let o = phoff + i * phentsize;
        o + 4 <= bytes.len() && u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap()) != 3
    })
}

/// Removes the containers, compose projects, networks and images of test
/// processes that no longer run (killed before their stacks were dropped).
fn remove_leftovers() {
    let dead = |name: &str| {
        name.strip_prefix("kwait-it-")
            .and_then(|rest| rest.split(['-', '_']).next())
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
    };
    let list = |args: &[&str]| -> Vec<String> {
        let out = docker(args);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|n| dead(n))
            .map(str::to_owned)
            .collect()
    };
    let containers = list(&[
        "ps",
        "-a",
        "--filter",
        "name=kwait-it-",
        "--format",
        "{{.Names}}",
    ]);
    if !containers.is_empty() {
        docker(&[&["rm", "-f", "-v"], &strs(&containers)[..]].concat());
    }
    let networks = list(&[
        "network",
        "ls",
        "--filter",
        "name=kwait-it-",
        "--format",
        "{{.Name}}",
    ]);
    if !networks.is_empty() {
        docker(&[&["network", "rm"], &strs(&networks)[..]].concat());
    }
    let images = list(&[
        "images",
        "--filter",
        "reference=kwait-it-*",
        "--format",
        "{{.Repository}}",
    ]);
    if !images.is_empty() {
        docker(&[&["rmi", "-f"], &strs(&images)[..]].concat());
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

// ---------------------------------------------------------------------------
// The docker CLI
// ---------------------------------------------------------------------------

struct Out {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Out {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).trim().to_owned()
    }

    fn err(&self) -> String {
        String::from_utf8_lossy(&self.stderr).trim().to_owned()
    }
}

/// Runs `cmd` (docker, docker-compose, python3: a tool, never kwait) to
/// completion, killed after [`DOCKER_LIMIT`]; panics if it cannot start
/// or does not end.
fn run_tool(cmd: &mut Command) -> Out {
    try_run_tool(cmd).unwrap_or_else(|e| panic!("{e}"))
}

/// [`run_tool`] without panicking, for clean-up in `Drop`.
fn try_run_tool(cmd: &mut Command) -> Result<Out, String> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    let mut child = ChildGuard::new("docker", child);
    let reader = |r: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = reader(child.child_mut().stdout.take().map(|s| Box::new(s) as _));
    let stderr = reader(child.child_mut().stderr.take().map(|s| Box::new(s) as _));
    let Some(status) = child.wait_timeout(DOCKER_LIMIT) else {
        return Err(format!("{cmd:?} still running after {DOCKER_LIMIT:?}"));
    };
    Ok(Out {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

fn docker(args: &[&str]) -> Out {
    run_tool(Command::new("docker").args(args))
}

/// `docker ARGS` for clean-up and diagnosis: never panics, reports a
/// failure, returns stdout and stderr.
fn docker_quiet(args: &[&str]) -> (String, String) {
    match try_run_tool(Command::new("docker").args(args)) {
        Ok(out) => {
            if !out.status.success() {
                eprintln!("clean-up: docker {}: {}", args.join(" "), out.err());
            }
            (
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
        Err(e) => {
            eprintln!("clean-up: {e}");
            Default::default()
        }
    }
}

/// `docker ARGS`, which must succeed; returns its trimmed stdout.
fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {} failed ({}): {}",
        args.join(" "),
        out.status,
        out.err()
    );
    out.text()
}

/// Polls `cond` every [`POLL`] until it is true or `timeout` passes.
fn poll(timeout: Duration, cond: impl FnMut() -> bool) -> bool {
    poll_every(POLL, timeout, cond)
}

/// Nanoseconds since the epoch, on the clock of the engine's timestamps.
fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// An RFC 3339 UTC timestamp as Docker writes it ("2026-01-02T03:04:05.123456789Z")
/// in nanoseconds since the epoch.
fn parse_ts(s: &str) -> Option<i128> {
    let (date, time) = s.trim().split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.strip_suffix('Z')?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.split(':').map(|x| x.parse::<i64>().ok());
    let (h, mi, sec) = (t.next()??, t.next()??, t.next()??);
    let digits: String = frac.chars().chain("000000000".chars()).take(9).collect();
    let nanos: i64 = digits.parse().ok()?;
    // Days from 1970-01-01 to y-m-day (Howard Hinnant's days_from_civil).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3_600 + mi * 60 + sec;
    Some(secs as i128 * 1_000_000_000 + nanos as i128)
}

fn ms(ns: i128) -> f64 {
    ns as f64 / 1e6
}

// ---------------------------------------------------------------------------
// A test's images, containers, networks and compose projects
// ---------------------------------------------------------------------------

/// A file of an image's root or a build context.
enum Src<'a> {
    /// A file on this machine (hard-linked into the context when possible).
    Copy(&'a Path),
    /// A text file with this mode.
    Text(&'a str, u32),
}

/// Everything one test creates in the engine, removed on drop.
struct Stack {
    /// `kwait-it-PID-N`, the prefix of every name.
    id: String,
    containers: Vec<String>,
    /// Compose projects: (name, compose file).
    projects: Vec<(String, PathBuf)>,
    networks: Vec<String>,
    images: Vec<String>,
    dirs: Vec<TempDir>,
}

impl Stack {
    fn new() -> Stack {
        tools();
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        Stack {
            id: format!("kwait-it-{}-{n}", std::process::id()),
            containers: Vec::new(),
            projects: Vec::new(),
            networks: Vec::new(),
            images: Vec::new(),
            dirs: Vec::new(),
        }
    }

    fn name(&self, what: &str) -> String {
        format!("{}-{what}", self.id)
    }

    fn dir(&mut self, tag: &str) -> PathBuf {
        let dir = TempDir::new(tag);
        let path = dir.path().to_owned();
        self.dirs.push(dir);
        path
    }

    /// A user-defined bridge network: containers on it reach each other by
    /// name and alias, through Docker's DNS.
    fn network(&mut self) -> String {
        let name = self.name("net");
        self.networks.push(name.clone());
        docker_ok(&["network", "create", &name]);
        name
    }

    /// Builds an image from a fresh context holding `files`, after
    /// `prepare` ran on the context directory, and `dockerfile` written as
    /// its Dockerfile (unless `extra` names another one with `-f`).
    fn build(
        &mut self,
        what: &str,
        dockerfile: &str,
        files: &[(&str, Src)],
        extra: &[&str],
        prepare: impl Fn(&Path),
    ) -> String {
        let ctx = self.dir(what);
        for (rel, src) in files {
            let dest = ctx.join(rel);
            fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
            match src {
                Src::Copy(from) => {
                    if fs::hard_link(from, &dest).is_err() {
                        fs::copy(from, &dest).unwrap_or_else(|e| panic!("copy {from:?}: {e}"));
                    }
                }
                Src::Text(text, mode) => {
                    fs::write(&dest, text).expect("write");
                    fs::set_permissions(&dest, fs::Permissions::from_mode(*mode)).expect("chmod");
                }
            }
        }
        prepare(&ctx);
        let tag = self.name(what);
        self.images.push(tag.clone());
        let mut args = vec!["build", "-q", "-t", &tag];
        if !extra.contains(&"-f") {
            fs::write(ctx.join("Dockerfile"), dockerfile).expect("write Dockerfile");
            args.extend(["-f", "Dockerfile"]);
        }
        args.extend(extra);
        args.push(".");
        let out = run_tool(Command::new("docker").args(&args).current_dir(&ctx));
        assert!(
            out.status.success(),
            "docker build of {tag} failed: {}",
            out.err()
        );
        tag
    }

    /// A FROM scratch image whose root holds busybox (every applet a
    /// symlink in /bin), an empty /tmp, kwait and tansu in /usr/local/bin
    /// if asked, and then the instructions `more`.
    fn rootfs_image(&mut self, what: &str, kwait: bool, tansu: bool, more: &str) -> String {
        let t = tools();
        let tansu_bin = tansu.then(tansu_path);
        let mut files = vec![("root/bin/busybox", Src::Copy(&t.busybox))];
        if kwait {
            files.push(("root/usr/local/bin/kwait", Src::Copy(&t.kwait)));
        }
        if let Some(p) = &tansu_bin {
            files.push(("root/usr/local/bin/tansu", Src::Copy(p)));
        }
        // A file naming this stack makes the COPY layer unique: no layer is
        // shared with (and removed under) another test's images.
        let id = format!("{}\n", self.id);
        files.push(("root/etc/kwait-test", Src::Text(&id, 0o644)));
        files.push(("root/tmp/.keep", Src::Text("", 0o644)));
        // Few instructions: the legacy builder commits a container for each.
        // PATH is the engine's default (/usr/local/bin and /bin among it).
        let dockerfile = format!("FROM scratch\nCOPY root/ /\n{more}");
        // Symlinks made in the context survive COPY: no RUN, so building
        // needs no container.
        let applets = |ctx: &Path| {
            for a in &t.applets {
                let link = ctx.join("root/bin").join(a);
                if fs::symlink_metadata(&link).is_err() {
                    symlink("busybox", &link).expect("symlink");
                }
            }
            let tmp = ctx.join("root/tmp");
            fs::set_permissions(tmp, fs::Permissions::from_mode(0o1777)).expect("chmod /tmp");
        };
        self.build(what, &dockerfile, &files, &[], applets)
    }

    /// busybox + kwait: an app container.
    fn app_image(&mut self) -> String {
        self.rootfs_image("app", true, false, "")
    }

    /// busybox + kwait + tansu, with the broker's HEALTHCHECK in exec form,
    /// checked every 300 ms.
    fn broker_image(&mut self) -> String {
        self.rootfs_image(
            "broker",
            true,
            true,
            "HEALTHCHECK --interval=300ms --timeout=3s --retries=2 \
             CMD [\"kwait\", \"probe\", \"kafka://localhost:9092\"]\n",
        )
    }

    /// `docker run -d --name <id>-what ARGS...`; returns the container's name.
    fn docker_run(&mut self, what: &str, args: &[&str]) -> String {
        let name = self.name(what);
        self.containers.push(name.clone());
        docker_ok(&[&["run", "-d", "--name", &name], args].concat());
        name
    }

    /// A container of the [`Stack::app_image`] (built now) named `<id>-app`:
    /// `docker run -d DOCKER_ARGS <image> kwait KWAIT_ARGS -- sh -c SCRIPT`.
    fn run_app(&mut self, docker_args: &[&str], kwait_args: &[&str], script: &str) -> String {
        let img = self.app_image();
        let mut args = docker_args.to_vec();
        args.extend([img.as_str(), "kwait"]);
        args.extend(kwait_args);
        args.extend(["--", "sh", "-c", script]);
        self.docker_run("app", &args)
    }

    /// `docker logs -t`: every line of stdout and stderr with the engine's
    /// timestamp, in time order.
    fn lines(&self, container: &str) -> Vec<(i128, String)> {
        let out = docker(&["logs", "-t", container]);
        let mut lines: Vec<(i128, String)> = [out.stdout, out.stderr]
            .iter()
            .flat_map(|b| {
                String::from_utf8_lossy(b)
                    .lines()
                    .filter_map(|l| {
                        let (ts, text) = l.split_once(' ').unwrap_or((l, ""));
                        Some((parse_ts(ts)?, text.trim_end_matches('\r').to_owned()))
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        lines.sort_by_key(|(ts, _)| *ts);
        lines
    }

    fn logs(&self, container: &str) -> String {
        self.lines(container)
            .into_iter()
            .map(|(_, l)| l + "\n")
            .collect()
    }

    /// The first log line containing `needle`, with its timestamp, polling
    /// for it up to `timeout`.
    fn wait_line(&self, container: &str, needle: &str, timeout: Duration) -> (i128, String) {
        let mut found = None;
        poll(timeout, || {
            found = self.line(container, needle);
            found.is_some()
        });
        found.unwrap_or_else(|| {
            panic!(
                "{container}: no log line with {needle:?} within {timeout:?}; logs:\n{}",
                self.logs(container)
            )
        })
    }

    /// The first log line holding `needle`. kwait's start line quotes the
    /// app's script, which holds the very words the app later prints: it
    /// counts only when the needle is about it.
    fn line(&self, container: &str, needle: &str) -> Option<(i128, String)> {
        let about_start = needle.starts_with("kwait: started");
        self.lines(container)
            .into_iter()
            .find(|(_, l)| l.contains(needle) && (about_start || !l.starts_with("kwait: started ")))
    }

    fn inspect(&self, container: &str, format: &str) -> String {
        docker_ok(&["inspect", "-f", format, container])
    }

    /// Polls until the container has exited; returns its exit code.
    fn wait_exit(&self, container: &str, timeout: Duration) -> i32 {
        let done = poll(timeout, || {
            self.inspect(container, "{{.State.Status}}") == "exited"
        });
        assert!(
            done,
            "{container} still running after {timeout:?}; logs:\n{}",
            self.logs(container)
        );
        let code = self.inspect(container, "{{.State.ExitCode}}");
        code.parse()
            .unwrap_or_else(|_| panic!("exit code {code:?}"))
    }

    /// Polls `{{.State.Health.Status}}` until it is `want`; returns when it
    /// was seen (nanoseconds since the epoch).
    fn wait_health(&self, container: &str, want: &str, timeout: Duration) -> i128 {
        let mut last = String::new();
        let ok = poll(timeout, || {
            last = self.inspect(container, "{{.State.Health.Status}}");
            last == want
        });
        assert!(
            ok,
            "{container}: health {last:?}, not {want:?}, after {timeout:?}; health: {}\nlogs:\n{}",
            self.inspect(container, "{{json .State.Health}}"),
            self.logs(container)
        );
        now_ns()
    }

    /// `docker stop -t T`, timed from this side.
    fn stop(&self, container: &str, docker_timeout: u32) -> Duration {
        let t = docker_timeout.to_string();
        let start = Instant::now();
        docker_ok(&["stop", "-t", &t, container]);
        start.elapsed()
    }

    /// Writes `yaml` as a compose file and returns (project, file) for
    /// `docker-compose -p PROJECT -f FILE`; the project is taken down on drop.
    fn compose_project(&mut self, yaml: &str) -> (String, PathBuf) {
        let dir = self.dir("compose");
        let file = dir.join("compose.yml");
        fs::write(&file, yaml).expect("write compose file");
        let project = self.id.clone();
        self.projects.push((project.clone(), file.clone()));
        (project, file)
    }

    /// The container of compose service `service` in `project`, if it exists.
    fn compose_container(&self, project: &str, service: &str) -> Option<String> {
        let out = docker_ok(&[
            "ps",
            "-a",
            "--filter",
            &format!("label=com.docker.compose.project={project}"),
            "--filter",
            &format!("label=com.docker.compose.service={service}"),
            "--format",
            "{{.Names}}",
        ]);
        out.lines().next().map(str::to_owned)
    }

    /// Prints what the containers said: a failed test's diagnosis.
    fn dump(&self) {
        let mut names = self.containers.clone();
        for (project, _) in &self.projects {
            let (out, _) = docker_quiet(&[
                "ps",
                "-a",
                "--filter",
                &format!("label=com.docker.compose.project={project}"),
                "--format",
                "{{.Names}}",
            ]);
            names.extend(out.lines().map(str::to_owned));
        }
        for c in names {
            let (state, _) = docker_quiet(&["inspect", "-f", "{{json .State}}", &c]);
            let (out, err) = docker_quiet(&["logs", "-t", "--tail", "80", &c]);
            eprintln!("--- {c}: {}\n{out}{err}", state.trim_end());
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if thread::panicking() {
            self.dump();
        }
        if !self.containers.is_empty() {
            docker_quiet(&[&["rm", "-f", "-v"], &strs(&self.containers)[..]].concat());
        }
        for (project, file) in &self.projects {
            let file = file.to_string_lossy();
            let down = try_run_tool(Command::new("docker-compose").args([
                "-p",
                project,
                "-f",
                &file,
                "down",
                "-v",
                "-t",
                "1",
                "--remove-orphans",
            ]));
            if !down.is_ok_and(|o| o.status.success()) {
                // Without compose: its containers by label, then its network.
                let label = format!("label=com.docker.compose.project={project}");
                let (ids, _) = docker_quiet(&["ps", "-aq", "--filter", &label]);
                let ids: Vec<&str> = ids.lines().collect();
                if !ids.is_empty() {
                    docker_quiet(&[&["rm", "-f", "-v"], &ids[..]].concat());
                }
                docker_quiet(&["network", "rm", &format!("{project}_default")]);
            }
        }
        if !self.networks.is_empty() {
            docker_quiet(&[&["network", "rm"], &strs(&self.networks)[..]].concat());
        }
        let images: Vec<String> = self.images.iter().rev().cloned().collect();
        if !images.is_empty() {
            docker_quiet(&[&["rmi", "-f"], &strs(&images)[..]].concat());
        }
    }
}

// ---------------------------------------------------------------------------
// The scenarios
// ---------------------------------------------------------------------------

/// The app's ENTRYPOINT waits for `broker:9092` on a user-defined network.
/// The broker container comes seconds later: first the name does not
/// resolve; then port 9092 is open but answers no Kafka (busybox nc echoing
/// bytes back, like a broker that binds before it serves); then tansu
/// serves. The app must start only then, and soon.
#[test]
fn app_waits_for_broker_by_service_name() {
    let mut s = Stack::new();
    let broker_img = s.broker_image();
    let net = s.network();

    let app = s.run_app(
        &["--network", &net],
        &["-v", "--timeout", "60s", "kafka://broker:9092"],
        "echo 'app: started'",
    );
    let created = Instant::now();
    s.wait_line(&app, "cannot resolve 'broker'", SHORT);
    // Seconds later, and the app must not have started meanwhile.
    while created.elapsed() < Duration::from_secs(2) {
        assert!(s.line(&app, "app: started").is_none(), "{}", s.logs(&app));
        thread::sleep(POLL * 4);
    }

    let placeholder = format!(
        "nc -ll -p 9092 -e cat & nc=$!\n\
         echo 'broker: port 9092 open, not Kafka yet'\n\
         until [ -e /tmp/go ]; do usleep 20000; done\n\
         kill $nc; killall -q nc cat\n\
         # nc's forked children may still hold the listening socket.\n\
         while pidof nc cat >/dev/null; do usleep 10000; done\n\
         exec {}",
        tansu_broker("broker")
    );
    let broker = s.docker_run(
        "broker",
        &[
            "--network",
            &net,
            "--network-alias",
            "broker",
            &broker_img,
            "sh",
            "-c",
            &placeholder,
        ],
    );
    // kwait now reaches the open port and gets no Kafka answer (not just a
    // refused connection while nc starts).
    let mut open = None;
    poll(SHORT, || {
        open = s.lines(&app).into_iter().find(|(_, l)| {
            l.contains("kafka://broker:9092:") && !l.contains("resolve") && !l.contains("refused")
        });
        open.is_some()
    });
    let open =
        open.unwrap_or_else(|| panic!("kwait never reached the open port:\n{}", s.logs(&app)));
    eprintln!("kwait on the open, non-Kafka port: {}", open.1);
    assert!(s.line(&app, "app: started").is_none(), "{}", s.logs(&app));
    assert_eq!(s.inspect(&app, "{{.State.Status}}"), "running");

    docker_ok(&["exec", &broker, "touch", "/tmp/go"]);
    assert_eq!(s.wait_exit(&app, SHORT), 0, "{}", s.logs(&app));

    let (ready_ts, _) = s.wait_line(&broker, "ready in", SHORT);
    let (_, ready) = s.wait_line(&app, "kafka://broker:9092 ready after", SHORT);
    let (kwait_start_ts, _) = s.wait_line(&app, "kwait: started sh", SHORT);
    let (app_ts, _) = s.wait_line(&app, "app: started", SHORT);
    assert!(ready.contains("1 broker (111), controller 111"), "{ready}");
    assert!(
        app_ts > ready_ts,
        "the app started before the broker was ready:\n{}\n{}",
        s.logs(&broker),
        s.logs(&app)
    );
    eprintln!("{ready}");
    eprintln!(
        "measured: broker ready (tansu 'ready in') -> kwait started the app {:.1} ms, \
         -> the app's first line {:.1} ms (engine log timestamps)",
        ms(kwait_start_ts - ready_ts),
        ms(app_ts - ready_ts)
    );
}

/// `docker stop`: kwait holds SIGTERM for --drain-delay 1s with the app still
/// running, forwards it, the app drains for 1 s and exits 0. The container
/// exits 0, after drain-delay + drain, well within drain-delay + grace.
#[test]
fn docker_stop_drains_the_app() {
    let mut s = Stack::new();
    let app = s.run_app(
        &[],
        &["--drain-delay", "1s", "--grace", "5s"],
        "trap 'echo \"app: got SIGTERM, draining\"; sleep 1; echo \"app: drained\"; exit 0' TERM\n\
         echo 'app: started'\n\
         sleep 1000000 & wait $!",
    );
    s.wait_line(&app, "app: started", SHORT);
    let stop_ns = now_ns();
    let took = s.stop(&app, 10);
    let code = s.inspect(&app, "{{.State.ExitCode}}");
    let (term_ts, _) = s.wait_line(&app, "app: got SIGTERM", SHORT);
    s.wait_line(&app, "app: drained", SHORT);
    let term_after = ms(term_ts - stop_ns);
    eprintln!(
        "measured: docker stop with --drain-delay 1s and a 1 s drain took {took:?}; \
         SIGTERM reached the app {term_after:.0} ms after docker stop began; exit {code}"
    );
    assert_eq!(code, "0", "{}", s.logs(&app));
    assert!(
        term_after >= 950.0,
        "SIGTERM before --drain-delay passed: {}",
        s.logs(&app)
    );
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(6),
        "stop took {took:?}, expected drain-delay 1s + drain 1s, below drain-delay + grace 6s"
    );
    s.wait_line(&app, "kwait: app exited with status 0", SHORT);
}

/// Ctrl-C (`docker run` without -t proxies it as SIGINT to PID 1; here
/// `docker kill -s INT`), then `docker stop` two seconds later: the app
/// handles INT and keeps running, then drains on TERM for 2 s. The TERM
/// gets its own full --grace 3s: the app exits 0, not SIGKILLed at once as
/// a "second stop signal", nor one second into its drain by a grace counted
/// from the INT.
#[test]
fn docker_stop_after_ctrl_c_gets_the_full_grace() {
    let mut s = Stack::new();
    let app = s.run_app(
        &[],
        &["--grace", "3s"],
        "trap 'echo \"app: got SIGINT\"' INT\n\
         trap 'echo \"app: got SIGTERM, draining\"; sleep 2; echo \"app: drained\"; exit 0' TERM\n\
         echo 'app: started'\n\
         while :; do sleep 1000000 & wait $!; done",
    );
    s.wait_line(&app, "app: started", SHORT);
    docker_ok(&["kill", "-s", "INT", &app]);
    s.wait_line(&app, "app: got SIGINT", SHORT);
    std::thread::sleep(Duration::from_secs(2));
    let took = s.stop(&app, 20);
    let code = s.inspect(&app, "{{.State.ExitCode}}");
    eprintln!("measured: docker stop 2 s after a Ctrl-C took {took:?}; exit {code}");
    assert_eq!(code, "0", "{}", s.logs(&app));
    s.wait_line(&app, "app: drained", SHORT);
    assert!(!s.logs(&app).contains("SIGKILL to"), "{}", s.logs(&app));
}

/// An app that ignores SIGTERM is SIGKILLed by kwait after --grace 2s, long
/// before Docker's own `-t 10`: exit 137 after about 2 s.
#[test]
fn docker_stop_kills_a_term_ignoring_app_after_grace() {
    let mut s = Stack::new();
    let app = s.run_app(
        &[],
        &["--grace", "2s"],
        "trap '' TERM; echo 'app: started, ignoring SIGTERM'; while :; do sleep 1; done",
    );
    s.wait_line(&app, "app: started", SHORT);
    let took = s.stop(&app, 10);
    let code = s.inspect(&app, "{{.State.ExitCode}}");
    eprintln!("measured: docker stop -t 10 of a TERM-ignoring app under --grace 2s took {took:?}; exit {code}");
    assert_eq!(code, "137", "{}", s.logs(&app));
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(6),
        "stop took {took:?}: expected --grace 2s, not Docker's 10 s"
    );
    s.wait_line(&app, "app was killed by SIGKILL", SHORT);
}

/// `HEALTHCHECK CMD ["kwait", "probe", "kafka://localhost:9092"]` in a broker
/// container: healthy once tansu serves; unhealthy once tansu inside is
/// stopped (the container keeps running).
#[test]
fn healthcheck_follows_the_broker() {
    let mut s = Stack::new();
    let img = s.broker_image();
    assert_eq!(
        s.inspect(&img, "{{json .Config.Healthcheck.Test}}"),
        r#"["CMD","kwait","probe","kafka://localhost:9092"]"#
    );
    let script = format!(
        "{} & wait; echo 'broker: tansu stopped'; exec sleep 1000000",
        tansu_broker("localhost")
    );
    let broker = s.docker_run("broker", &[&img, "kwait", "--", "sh", "-c", &script]);
    let started = parse_ts(&s.inspect(&broker, "{{.State.StartedAt}}")).expect("StartedAt");
    let healthy = s.wait_health(&broker, "healthy", SHORT);
    let log = s.inspect(&broker, "{{json .State.Health.Log}}");
    assert!(log.contains("ready: 1 broker (111)"), "{log}");

    let kill_ns = now_ns();
    docker_ok(&["exec", &broker, "killall", "tansu"]);
    s.wait_line(&broker, "broker: tansu stopped", SHORT);
    let unhealthy = s.wait_health(&broker, "unhealthy", SHORT);
    assert_eq!(s.inspect(&broker, "{{.State.Status}}"), "running");
    let log = s.inspect(&broker, "{{json .State.Health.Log}}");
    assert!(log.contains("not ready"), "{log}");
    eprintln!(
        "measured: container start -> healthy seen {:.0} ms; tansu stopped -> unhealthy seen {:.0} ms \
         (interval 300ms, retries 2)",
        ms(healthy - started),
        ms(unhealthy - kill_ns)
    );
}

/// compose: `depends_on: condition: service_healthy` holds the app while
/// the broker's kwait health check fails, and starts it once it passes.
#[test]
fn compose_holds_the_app_until_the_broker_is_healthy() {
    let mut s = Stack::new();
    let app_img = s.app_image();
    let broker_img = s.broker_image();
    let broker_cmd = format!(
        "echo 'broker: waiting for /tmp/go'; until [ -e /tmp/go ]; do usleep 20000; done; exec {}",
        tansu_broker("broker")
    );
    let yaml = format!(
        r#"version: "2.4"
services:
  broker:
    image: {broker_img}
    command: ["kwait", "--", "sh", "-c", {broker_cmd:?}]
    healthcheck:
      test: ["CMD", "kwait", "probe", "kafka://localhost:9092"]
      interval: 300ms
      timeout: 3s
      retries: 2
      start_period: 60s
  app:
    image: {app_img}
    depends_on:
      broker:
        condition: service_healthy
    command: ["sh", "-c", "kwait probe kafka://broker:9092 && echo 'app: started, the broker serves'"]
"#
    );
    let (project, file) = s.compose_project(&yaml);
    let file_s = file.to_string_lossy().into_owned();
    let out = try_run_tool(Command::new("docker-compose").args(["-f", &file_s, "config", "-q"]))
        .unwrap_or_else(|e| {
            panic!("{e}: this test needs Debian's docker-compose; run scripts/setup")
        });
    assert!(
        out.status.success(),
        "docker-compose config: {}\n{yaml}",
        out.err()
    );

    let mut up = ChildGuard::spawn(
        "docker-compose up",
        Command::new("docker-compose")
            .args(["-p", &project, "-f", &file_s, "up", "-d"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let mut broker = None;
    assert!(
        poll(SHORT, || {
            broker = s.compose_container(&project, "broker");
            broker.is_some()
        }),
        "compose never created the broker"
    );
    let broker = broker.unwrap_or_default();
    s.wait_line(&broker, "broker: waiting", SHORT);
    // A few failed checks while compose holds the app back.
    assert!(
        poll(SHORT, || s
            .inspect(&broker, "{{len .State.Health.Log}}")
            .parse()
            .unwrap_or(0)
            >= 3),
        "no health checks ran: {}",
        s.inspect(&broker, "{{json .State.Health}}")
    );
    assert_eq!(s.inspect(&broker, "{{.State.Health.Status}}"), "starting");
    assert_eq!(
        s.compose_container(&project, "app"),
        None,
        "the app was created before the broker was healthy"
    );
    assert!(
        up.try_wait().is_none(),
        "docker-compose up returned while the broker was not healthy"
    );

    docker_ok(&["exec", &broker, "touch", "/tmp/go"]);
    // Collect every health check while compose waits (the engine keeps the
    // last 5 only): (end of the check, exit code).
    let mut checks = std::collections::BTreeSet::new();
    let done = poll(Duration::from_secs(60), || {
        let log = s.inspect(
            &broker,
            "{{range .State.Health.Log}}{{json .End}} {{.ExitCode}}\n{{end}}",
        );
        checks.extend(log.lines().filter_map(|l| {
            let (end, code) = l.split_once(' ')?;
            Some((parse_ts(end.trim_matches('"'))?, code.to_owned()))
        }));
        up.try_wait().is_some()
    });
    assert!(
        done,
        "docker-compose up still running 60 s after the broker started"
    );
    let status = up.wait_exit(SHORT);
    let mut err = String::new();
    if let Some(mut e) = up.child_mut().stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(status.success(), "docker-compose up: {status}\n{err}");
    let app = s.compose_container(&project, "app").expect("app container");
    assert_eq!(s.wait_exit(&app, SHORT), 0, "{}", s.logs(&app));
    s.wait_line(&app, "app: started, the broker serves", SHORT);

    let app_started = parse_ts(&s.inspect(&app, "{{.State.StartedAt}}")).expect("StartedAt");
    let (ready_ts, _) = s.wait_line(&broker, "ready in", SHORT);
    let first_ok = checks
        .iter()
        .find(|(_, code)| code == "0")
        .map(|(end, _)| *end)
        .unwrap_or_else(|| panic!("no passing health check seen: {checks:?}"));
    let failed = checks.iter().filter(|(_, code)| code != "0").count();
    assert!(failed >= 3, "{checks:?}");
    assert!(
        app_started > first_ok,
        "the app started before the first passing check: {checks:?}"
    );
    eprintln!(
        "measured: tansu ready -> first passing kwait probe {:.0} ms -> compose started the app {:.0} ms \
         (healthcheck interval 300ms)",
        ms(first_ok - ready_ts),
        ms(app_started - first_ok)
    );
}

/// An app leaving 20 orphans behind: they are re-parented to kwait (PID 1
/// of the container), which reaps them when they exit; no zombie remains
/// while the app still runs.
#[test]
fn orphans_leave_no_zombies() {
    let mut s = Stack::new();
    let app = s.run_app(
        &[],
        &[],
        "i=0; while [ $i -lt 20 ]; do (sleep 2 &); i=$((i+1)); done\n\
         echo 'app: 20 orphans made'; exec sleep 1000000",
    );
    s.wait_line(&app, "app: 20 orphans made", SHORT);
    let ps = || docker_ok(&["exec", &app, "ps", "-o", "pid,ppid,stat,args"]);
    let orphans = |out: &str| {
        out.lines()
            .filter(|l| l.ends_with("sleep 2"))
            .filter(|l| l.split_whitespace().nth(1) == Some("1"))
            .count()
    };
    let zombies = |out: &str| {
        out.lines()
            .filter(|l| {
                l.split_whitespace()
                    .nth(2)
                    .is_some_and(|st| st.starts_with('Z'))
            })
            .count()
    };
    let first = ps();
    assert_eq!(
        orphans(&first),
        20,
        "orphans not adopted by kwait (PID 1):\n{first}"
    );
    let mut last = String::new();
    let gone = poll(SHORT, || {
        last = ps();
        !last.lines().any(|l| l.ends_with("sleep 2")) && zombies(&last) == 0
    });
    assert!(gone, "orphans or zombies left:\n{last}");
    assert!(last.contains("sleep 1000000"), "the app stopped:\n{last}");
    assert_eq!(s.inspect(&app, "{{.State.Status}}"), "running");
}

/// `docker run -t` and SIGINT (what Ctrl-C sends to PID 1 through `docker
/// kill -s INT`): the app dies of SIGINT, the container exits 130.
#[test]
fn tty_container_sigint_exits_130() {
    let mut s = Stack::new();
    let app = s.run_app(
        &["-t"],
        &[],
        "echo \"app: started on $(tty)\"; exec sleep 1000000",
    );
    s.wait_line(&app, "app: started on /dev/pts/", SHORT);
    docker_ok(&["kill", "-s", "INT", &app]);
    assert_eq!(s.wait_exit(&app, SHORT), 130, "{}", s.logs(&app));
    s.wait_line(&app, "app was killed by SIGINT", SHORT);
}

/// `docker run -it` in a real terminal (script(1)'s pty) and Ctrl-C typed
/// into it: the container's terminal sends SIGINT to its foreground group,
/// which kwait made the app's; `docker run` exits 130.
#[test]
fn tty_ctrl_c_exits_130() {
    let mut s = Stack::new();
    let img = s.app_image();
    let name = s.name("tty");
    s.containers.push(name.clone());
    let inner = format!(
        "docker run -it --name {name} {img} kwait -- sh -c 'echo app: started; exec sleep 1000000'"
    );
    let mut script = ChildGuard::spawn(
        "script",
        Command::new("script")
            .args(["-qfec", &inner, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    );
    let seen = Arc::new(Mutex::new(String::new()));
    let stdout = script.child_mut().stdout.take().expect("stdout");
    collect(stdout, Arc::clone(&seen));
    let text = || seen.lock().unwrap().clone();
    assert!(
        poll(SHORT, || text().contains("app: started")),
        "no app output in the terminal: {:?}",
        text()
    );
    let mut stdin = script.child_mut().stdin.take().expect("stdin");
    stdin.write_all(b"\x03").expect("type Ctrl-C");
    stdin.flush().expect("flush");
    let status = script.wait_exit(SHORT);
    assert_eq!(status.code(), Some(130), "terminal:\n{}", text());
    assert_eq!(s.inspect(&name, "{{.State.ExitCode}}"), "130");
}

/// In a container without IPv6 (Docker's default), `localhost` resolves to
/// 127.0.0.1 and ::1. With nothing listening, the probe's reason must say
/// what an operator can act on: the connection was refused.
#[test]
fn probe_of_a_stopped_local_broker_says_connection_refused() {
    let mut s = Stack::new();
    let img = s.app_image();
    let out = docker(&[
        "run",
        "--rm",
        "--name",
        &s.name("probe"),
        &img,
        "kwait",
        "probe",
        "kafka://localhost:9092",
    ]);
    let err = out.err();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("connection refused"),
        "kwait probe kafka://localhost:9092 (nothing listening, no IPv6 in the container) \
         gave: {err}"
    );
}

/// The repository's Dockerfile.example, built as is with local bases
/// (APP_BASE: busybox; KWAIT_IMAGE: an image holding only /kwait) and run:
/// its ENTRYPOINT waits for `kafka`, the app serves, its HEALTHCHECK turns
/// healthy, and `docker stop` drains it to exit 0.
#[test]
fn dockerfile_example_builds_and_runs() {
    let mut s = Stack::new();
    let t = tools();
    let id = format!("{}\n", s.id);
    let base = s.rootfs_image("base", false, false, "");
    let kwait_img = s.build(
        "kwait",
        // /kwait, and a file naming this stack so no layer is shared.
        "FROM scratch\nCOPY kwait kwait-test /\n",
        &[
            ("kwait", Src::Copy(&t.kwait)),
            ("kwait-test", Src::Text(&id, 0o644)),
        ],
        &[],
        |_| {},
    );
    let broker_img = s.broker_image();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile.example");
    let example = example.to_string_lossy().into_owned();
    let serve = "#!/bin/sh\n\
                 # The test's stand-in for `python -m app`: busybox httpd on :8000.\n\
                 httpd -f -p 8000 -h /app/www & pid=$!\n\
                 trap 'echo \"app: SIGTERM: draining\"; kill $pid; wait $pid; echo \"app: drained\"; exit 0' TERM\n\
                 echo 'app: serving on :8000'\n\
                 wait $pid\n";
    let kwait_arg = format!("KWAIT_IMAGE={kwait_img}");
    let base_arg = format!("APP_BASE={base}");
    let img = s.build(
        "example",
        "",
        &[
            ("serve.sh", Src::Text(serve, 0o755)),
            ("www/healthz", Src::Text("ok\n", 0o644)),
        ],
        &[
            "-f",
            &example,
            "--build-arg",
            &kwait_arg,
            "--build-arg",
            &base_arg,
        ],
        |_| {},
    );
    assert_eq!(s.inspect(&img, "{{.Config.User}}"), "10001:10001");
    assert_eq!(s.inspect(&img, "{{.Config.StopSignal}}"), "SIGTERM");
    let entrypoint = s.inspect(&img, "{{json .Config.Entrypoint}}");
    assert!(
        entrypoint.starts_with(r#"["kwait","kafka://kafka:9092""#),
        "{entrypoint}"
    );

    let net = s.network();
    let app = s.docker_run(
        "app",
        &[
            "--network",
            &net,
            "--health-interval",
            "300ms",
            &img,
            "/app/serve.sh",
        ],
    );
    s.wait_line(&app, "kwait: waiting for kafka://kafka:9092", SHORT);
    assert!(s.line(&app, "app: serving").is_none());
    s.docker_run(
        "kafka",
        &[
            "--network",
            &net,
            "--network-alias",
            "kafka",
            &broker_img,
            "sh",
            "-c",
            &tansu_broker("kafka"),
        ],
    );
    s.wait_line(&app, "kafka://kafka:9092 ready after", SHORT);
    s.wait_line(&app, "app: serving on :8000", SHORT);
    s.wait_health(&app, "healthy", SHORT);
    let took = s.stop(&app, 25);
    eprintln!("measured: docker stop of the Dockerfile.example container took {took:?}");
    assert_eq!(
        s.inspect(&app, "{{.State.ExitCode}}"),
        "0",
        "{}",
        s.logs(&app)
    );
    s.wait_line(&app, "app: drained", SHORT);
    assert!(took < Duration::from_secs(20), "stop took {took:?}");
}

/// The examples users copy: examples/compose.yml is valid for compose, and
/// every kwait command line in it and in examples/k8s (entrypoints, commands,
/// healthchecks and exec probes, with their KWAIT_*/KAFKA_* environment)
/// parses with this kwait: a wait ends 124 at `-t 1ms` (0 with no target), a
/// probe says "not ready" (nothing runs here), never a usage error.
#[test]
fn examples_parse_with_this_kwait() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let compose = root.join("examples/compose.yml");
    let config = run_tool(
        Command::new("docker-compose")
            .arg("-f")
            .arg(&compose)
            .args(["config", "-q"])
            .env("KWAIT_BIN", &tools().kwait),
    );
    assert!(
        config.status.success(),
        "docker-compose config: {}",
        config.err()
    );

    // Every list whose program is kwait, with the environment beside it.
    let extract = r#"
import sys, yaml
def env_of(node):
    env = node.get("environment") or node.get("env") or {}
    if isinstance(env, list):
        env = {e["name"]: e.get("value", "") for e in env if isinstance(e, dict)}
    return {k: str(v) for k, v in env.items()}
def walk(node, where, env):
    if isinstance(node, dict):
        if "image" in node:
            env = env_of(node)
        for key, value in node.items():
            if isinstance(value, list) and value and all(isinstance(v, (str, int)) for v in value):
                argv = [str(v) for v in value]
                if argv[0] == "CMD":
                    argv = argv[1:]
                if argv and argv[0] == "kwait":
                    env_s = "\x1e".join(f"{k}={v}" for k, v in env.items())
                    print(f"{where}/{key}\x1f" + "\x1e".join(argv[1:]) + "\x1f" + env_s)
            walk(value, f"{where}/{key}", env)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            walk(value, f"{where}[{i}]", env)
for path in sys.argv[1:]:
    with open(path) as f:
        for n, doc in enumerate(yaml.safe_load_all(f)):
            walk(doc, f"{path.rsplit('/', 1)[-1]}#{n}", {})
"#;
    let mut files = vec![compose];
    for entry in fs::read_dir(root.join("examples/k8s")).expect("examples/k8s") {
        files.push(entry.expect("entry").path());
    }
    let found = run_tool(Command::new("python3").arg("-c").arg(extract).args(&files));
    assert!(
        found.status.success(),
        "reading the examples: {}",
        found.err()
    );
    let listed = found.text();

    let mut checked = 0;
    for line in listed.lines() {
        let mut fields = line.split('\x1f');
        let (Some(place), Some(args), Some(env)) = (fields.next(), fields.next(), fields.next())
        else {
            panic!("unreadable extract line {line:?}");
        };
        let args: Vec<String> = args.split('\x1e').map(str::to_owned).collect();
        let mut cmd = Command::new(&tools().kwait);
        cmd.env_clear();
        for pair in env.split('\x1e').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').expect("k=v");
            cmd.env(k, v);
        }
        let probe = args.first().map(String::as_str) == Some("probe");
        if probe {
            cmd.args(&args);
        } else {
            // Options and targets as written, a 1 ms deadline, and `true`
            // for the app.
            let options = args.split(|a| a == "--").next().unwrap_or(&[]);
            let mut timeout_given = false;
            let mut next_is_timeout = false;
            for arg in options {
                if next_is_timeout {
                    cmd.arg("1ms");
                    next_is_timeout = false;
                } else if arg == "-t" || arg == "--timeout" {
                    cmd.arg(arg);
                    next_is_timeout = true;
                    timeout_given = true;
                } else {
                    cmd.arg(arg);
                }
            }
            if !timeout_given {
                cmd.args(["-t", "1ms"]);
            }
            if args.iter().any(|a| a == "--") {
                cmd.args(["--", "true"]);
            }
        }
        let out = run_tool(&mut cmd);
        let code = out.status.code();
        let stderr = out.err();
        let text = format!("{place}: kwait {args:?} -> {code:?}\n{stderr}");
        assert!(!stderr.contains("kwait --help"), "a usage error: {text}");
        if probe {
            assert_eq!(code, Some(1), "{text}");
            assert!(stderr.contains("not ready"), "{text}");
        } else {
            assert!(matches!(code, Some(0 | 124)), "{text}");
        }
        eprintln!("ok {place}: kwait {} -> {code:?}", args.join(" "));
        checked += 1;
    }
    // compose: 2 entrypoints + 3 healthchecks; k8s: 4 commands + 3 probes.
    assert!(
        checked >= 12,
        "only {checked} kwait command lines found:\n{listed}"
    );
}

/// `examples/kwait.Dockerfile`, as is, from a context laid out like
/// `scripts/release`'s dist/: each build puts the binary of its platform at
/// /kwait. `--build-arg TARGETARCH=...` stands in for the value buildx
/// passes per platform (no buildx here); without it, as from a plain
/// `docker build` on the legacy builder, the image holds the amd64 binary
/// and runs here.
#[test]
fn kwait_dockerfile_picks_the_binary_of_the_platform() {
    let mut s = Stack::new();
    let t = tools();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let aarch64 = root.join("target/aarch64-unknown-linux-musl/release/kwait");
    let machine = |p: &Path| {
        fs::read(p)
            .ok()
            .and_then(|b| Some(u16::from_le_bytes([*b.get(0x12)?, *b.get(0x13)?])))
    };
    assert!(
        is_static_elf(&aarch64) && machine(&aarch64) == Some(183),
        "{} is missing or not a static aarch64 ELF: run cargo build --release --target \
         aarch64-unknown-linux-musl (scripts/test runs it; scripts/setup installs the toolchain)",
        aarch64.display()
    );
    let recipe = root.join("examples/kwait.Dockerfile");
    let recipe = recipe.to_string_lossy().into_owned();
    let files = [
        ("kwait-x86_64", Src::Copy(&t.kwait)),
        ("kwait-aarch64", Src::Copy(&aarch64)),
    ];
    let out = s.dir("kwait-out");
    for (what, arch, want) in [
        ("kwait-noarg", None, &t.kwait),
        ("kwait-amd64", Some("amd64"), &t.kwait),
        ("kwait-arm64", Some("arm64"), &aarch64),
    ] {
        let arg = arch.map(|a| format!("TARGETARCH={a}"));
        let mut extra = vec!["-f", recipe.as_str()];
        if let Some(arg) = &arg {
            extra.extend(["--build-arg", arg.as_str()]);
        }
        let img = s.build(what, "", &files, &extra, |_| {});
        assert_eq!(
            s.inspect(&img, "{{json .Config.Entrypoint}}"),
            r#"["/kwait"]"#
        );
        let name = s.name(what);
        s.containers.push(name.clone());
        docker_ok(&["create", "--name", &name, &img]);
        let copy = out.join(what);
        let copy_s = copy.to_string_lossy().into_owned();
        docker_ok(&["cp", &format!("{name}:/kwait"), &copy_s]);
        assert!(
            fs::read(&copy).ok() == fs::read(want).ok(),
            "{what} (TARGETARCH {arch:?}): /kwait is not {}",
            want.display()
        );
        if arch != Some("arm64") {
            let version = docker_ok(&["run", "--rm", &img, "--version"]);
            assert!(version.starts_with("kwait "), "{what}: {version:?}");
        }
    }
}
