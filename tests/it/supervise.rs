//! kwait as PID 1 and as a subreaper: forwarding, reaping, draining, exit status.
//!
//! Every behaviour runs twice where it makes sense (`both!`): with kwait as
//! PID 1 of a fresh PID namespace (`unshare --pid --fork --mount-proc`, the
//! kernel's init rules apply: signals without a handler are dropped, orphans
//! come to kwait, and when kwait exits the kernel SIGKILLs what is left) and
//! as a plain child of the test (kwait makes itself a child subreaper).
//! research/init-anchors.md §6 is the checklist; the section numbers of
//! issue 3's test list are in the headings below.
//!
//! Apps are real programs: sh, bash, sleep, grep, ls, and a small Python
//! signal-logging child (like tini's `signals/test.py`) that appends one
//! line per signal it receives to a file. Waiting is always polling with a
//! deadline, on that file, on kwait's stderr or on /proc; every process
//! started here is stopped by pid when a test ends, also when it fails.

use std::ffi::{CStr, OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crate::peers::{
    assert_contains, children, clean_start, collect, comm, kwait, kwait_argv, kwait_as_pid1,
    kwait_as_pid1_with_the_outer_proc, listener, need, not_executable_script, pid1_kwait,
    poll_until, signal_mask, signal_pid1_from_inside, skip_under_runner, status_field, ChildGuard,
    Done, Running, TempDir,
};

/// The longest any single kwait run here may take before the test fails.
const LIMIT: Duration = Duration::from_secs(20);
/// How long a condition that needs only a process start may take.
const SHORT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Two ways to run kwait
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// PID 1 of a new PID namespace, through `unshare --pid --fork --mount-proc`.
    Pid1,
    /// A plain child of the test: kwait is a child subreaper.
    Plain,
    /// PID 1 of a new PID namespace whose /proc is the outer one's
    /// (`unshare --pid --fork`, no `--mount-proc`).
    Pid1OuterProc,
}

/// One `#[test]` per mode: `NAME::pid1` and `NAME::plain` run `NAME(mode)`,
/// as separate tests so that nextest runs them in parallel.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[test]
            fn pid1() {
                super::$name(super::Mode::Pid1)
            }
            #[test]
            fn plain() {
                super::$name(super::Mode::Plain)
            }
        }
    };
}

/// Under an emulating runner (`KWAIT_TEST_RUNNER`, see
/// [`skip_under_runner`]), a plain kwait adopts no orphans: qemu-user 7.2
/// refuses PR_SET_CHILD_SUBREAPER (EINVAL), so what the app leaves behind
/// goes to the host's init. As PID 1 the kernel brings orphans to kwait
/// anyway, so the `pid1` variant of each such test still runs. Natively:
/// false, and the test runs.
fn skip_plain_without_subreaper(mode: Mode) -> bool {
    mode == Mode::Plain
        && skip_under_runner(
            "qemu-user refuses PR_SET_CHILD_SUBREAPER (EINVAL), so orphans never reach a \
             plain kwait; the pid1 variant runs",
        )
}

/// `sigs` without the ones an emulating runner does not pass to kwait:
/// qemu-user keeps a SIGSEGV or SIGBUS sent to its process for its own
/// fault handling (measured: never forwarded). Each is left out with a
/// printed reason, under a runner only; natively `sigs` unchanged.
///
/// Real-time signals do get through, renumbered: qemu-user maps host
/// signal N to guest N-2 and back (host 32 and 33 are its C library's), so
/// the app gets the number that was sent, but kwait logs and counts 2 less
/// (measured: host 35 is logged as "signal 33", an app killed by 40 makes
/// the emulated kwait exit 128+38).
fn without_unemulated_signals(sigs: &[i32]) -> Vec<i32> {
    sigs.iter()
        .copied()
        .filter(|&sig| {
            // SEGV and BUS are qemu's own page faults; a kill-sent ILL or
            // FPE that reaches the emulated kwait outside sigtimedwait
            // kills it under load (seen in CI: kwait gone right after
            // forwarding the signal before), though kwait blocks them.
            let unemulated = [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE].contains(&sig);
            !(unemulated
                && skip_under_runner(&format!(
                    "signal {sig} left out: qemu-user takes the fault signals (SEGV, BUS, ILL, FPE) for itself"
                )))
        })
        .collect()
}

/// What kwait's stdin, stdout and stderr are.
enum Io {
    /// stdin /dev/null; stdout and stderr collected.
    Null,
    /// stdin a pipe the test writes to; stdout and stderr collected.
    Piped,
    /// All three the given terminal (a pty's slave side).
    Tty(File),
}

/// A running kwait (behind `unshare` in [`Mode::Pid1`]). Dropping it
/// SIGKILLs kwait and everything below it.
struct Kw {
    mode: Mode,
    /// kwait itself, or the `unshare` holding it.
    run: Running,
    /// kwait's pid as the test sees it (host pid), once known.
    pid: Option<u32>,
    stdin: Option<ChildStdin>,
}

/// The kwait command line for `mode`, with no `KWAIT_*` variable inherited
/// and a clean signal and fd state (see [`clean_start`]).
fn command<S: AsRef<OsStr>>(mode: Mode, args: &[S]) -> Command {
    let mut cmd = match mode {
        Mode::Plain => kwait(),
        Mode::Pid1 => kwait_as_pid1(),
        Mode::Pid1OuterProc => kwait_as_pid1_with_the_outer_proc(),
    };
    cmd.args(args);
    clean_start(&mut cmd);
    cmd
}

impl Kw {
    fn start<S: AsRef<OsStr>>(mode: Mode, args: &[S]) -> Kw {
        Kw::spawn(mode, args, Io::Null)
    }

    fn spawn<S: AsRef<OsStr>>(mode: Mode, args: &[S], io: Io) -> Kw {
        let mut cmd = command(mode, args);
        match io {
            Io::Null | Io::Piped => {
                cmd.stdin(if matches!(io, Io::Piped) {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            }
            Io::Tty(slave) => {
                let dup = |f: &File| Stdio::from(f.try_clone().expect("dup pty slave"));
                cmd.stdin(dup(&slave))
                    .stdout(dup(&slave))
                    .stderr(dup(&slave));
                // A session of its own, with the pty as controlling terminal:
                // what `docker run -t` gives the container's first process.
                // SAFETY: setsid and ioctl are async-signal-safe.
                unsafe {
                    cmd.pre_exec(|| {
                        if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
            }
        }
        let name = match mode {
            Mode::Pid1 | Mode::Pid1OuterProc => "unshare kwait",
            Mode::Plain => "kwait",
        };
        // Collects stdout and stderr unless they are the terminal.
        let mut run = Running::start(name, &mut cmd);
        let stdin = run.child.child_mut().stdin.take();
        let pid = (mode == Mode::Plain).then(|| run.child.pid());
        Kw {
            mode,
            run,
            pid,
            stdin,
        }
    }

    /// kwait's pid as seen from the test. As PID 1 that is the child of
    /// `unshare`, found through /proc once it has exec'd kwait.
    fn pid(&mut self) -> u32 {
        if let Some(pid) = self.pid {
            return pid;
        }
        let unshare = self.run.child.pid();
        let pid = pid1_kwait(unshare, SHORT).unwrap_or_else(|| {
            panic!(
                "unshare ({unshare}) has no kwait child; stderr:\n{}",
                self.run.stderr()
            )
        });
        self.pid = Some(pid);
        pid
    }

    /// Sends `sig` to kwait from outside: from the test, which as PID 1 is
    /// in an ancestor namespace (the host).
    fn signal(&mut self, sig: i32) {
        let pid = self.pid();
        // SAFETY: kill(2). kwait is unreaped (our child, or unshare's while
        // unshare runs), so its pid cannot have been reused.
        let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
        assert_eq!(
            rc,
            0,
            "kill({pid}, {sig}): {}",
            std::io::Error::last_os_error()
        );
    }

    /// Sends `sig` to kwait from inside its PID namespace. Only as PID 1.
    fn signal_inside(&mut self, sig: i32) {
        assert_eq!(self.mode, Mode::Pid1, "only PID 1 has an inside");
        signal_pid1_from_inside(self.pid(), sig);
    }

    /// kwait's children (the app, orphans, unreaped zombies).
    fn children(&mut self) -> Vec<u32> {
        let pid = self.pid();
        children(pid)
    }

    /// The app's pid as seen from the test: kwait's first child, once kwait
    /// has said it started it (after its exec).
    fn app(&mut self) -> u32 {
        self.run.wait_for_stderr("kwait: started ", SHORT);
        let kids = self.children();
        *kids
            .first()
            .unwrap_or_else(|| panic!("kwait has no child; stderr:\n{}", self.run.stderr()))
    }

    fn write_stdin(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("started with Io::Piped");
        stdin
            .write_all(text.as_bytes())
            .expect("write kwait's stdin");
        stdin.flush().expect("flush kwait's stdin");
    }

    /// Closes stdin, waits for the exit (panics after `limit`), then for the
    /// pipes' EOF.
    fn finish(&mut self, limit: Duration) -> Done {
        self.stdin.take();
        self.run.finish(limit)
    }
}

impl Drop for Kw {
    fn drop(&mut self) {
        if !self.run.running() {
            return;
        }
        match self.mode {
            Mode::Pid1 | Mode::Pid1OuterProc => {
                // SIGKILL to a namespace's init from outside kills the whole
                // namespace. Only a kwait child of a still-unreaped unshare.
                let unshare = self.run.child.pid();
                for pid in children(unshare) {
                    // SAFETY: kill(2) of unshare's unreaped child.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                }
            }
            Mode::Plain => {
                // Everything below kwait first (as a subreaper it holds them
                // all), leaves last, then kwait via the guard.
                let mut all: Vec<u32> = Vec::new();
                let mut next = vec![self.run.child.pid()];
                while let Some(pid) = next.pop() {
                    let kids = children(pid);
                    all.extend(&kids);
                    next.extend(kids);
                }
                for pid in all.into_iter().rev() {
                    // SAFETY: kill(2) of a descendant read from /proc just now.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                }
            }
        }
        // The guard's own drop SIGKILLs and reaps kwait or unshare.
    }
}

// ---------------------------------------------------------------------------
// /proc, clocks, quoting
// ---------------------------------------------------------------------------

/// The fields of /proc/<pid>/stat after the command name: index 0 is the
/// state (field 3), 2 the process group (field 5), 5 tpgid (field 8).
fn stat(pid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

fn state(pid: u32) -> Option<char> {
    stat(pid)?.first()?.chars().next()
}

/// Zombies among `pid`'s children.
fn zombies(pid: u32) -> Vec<u32> {
    children(pid)
        .into_iter()
        .filter(|&c| state(c) == Some('Z'))
        .collect()
}

/// CLOCK_MONOTONIC in seconds: the clock the Python helper logs with.
fn monotonic() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we pass.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// `s` single-quoted for sh.
fn q(s: impl AsRef<OsStr>) -> String {
    format!("'{}'", s.as_ref().to_string_lossy().replace('\'', r"'\''"))
}

fn sigrtmin() -> i32 {
    libc::SIGRTMIN()
}

// ---------------------------------------------------------------------------
// The signal-logging child
// ---------------------------------------------------------------------------

/// Appends one line per event to LOG, with CLOCK_MONOTONIC seconds T:
/// "ready PID T" once it takes its signals, "N T" for each handled signal
/// N, "done T" when a linger ends.
///
/// Signals are logged in the order the kernel hands them over: the handled
/// ones are blocked and taken one at a time with sigwaitinfo, as kwait
/// itself takes its own. Handlers would not do: Python runs its handlers in
/// signal-number order when several are tripped at once (HUP before a TERM
/// delivered first), and even the C handler behind a wakeup fd can be
/// interrupted by the next signal before it writes, so that a TERM that
/// came second was recorded first (seen under load).
const HELPER: &str = r#"
import os, signal, sys, time

log = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
handled, ignored, exits, lingers = set(), set(), {}, {}
hold = None
args = sys.argv[2:]
while args:
    opt, val, args = args[0], args[1], args[2:]
    if opt == "--log":  # N,N,...: log these
        handled.update(int(n) for n in val.split(","))
    elif opt == "--exit-on":  # N:CODE: log N, then exit with CODE
        n, code = val.split(":")
        handled.add(int(n))
        exits[int(n)] = int(code)
    elif opt == "--linger":  # N:SECONDS: log N, work that long, log done, exit 0
        n, secs = val.split(":")
        handled.add(int(n))
        lingers[int(n)] = float(secs)
    elif opt == "--ignore":  # N: SIG_IGN
        ignored.add(int(val))
    elif opt == "--hold":  # MS: take the first signal late (below)
        hold = float(val) / 1000
    else:
        sys.exit("helper: unknown option " + opt)

def write(line):
    os.write(log, (line + "\n").encode())

def delivered(timeout=None):
    """The next handled signal the kernel hands over ([] at the timeout)."""
    if timeout is None:
        return [signal.sigwaitinfo(handled).si_signo]
    info = signal.sigtimedwait(handled, max(timeout, 0))
    return [] if info is None else [info.si_signo]

def on(n):
    write("%d %.6f" % (n, time.monotonic()))
    if n in lingers:
        end = time.monotonic() + lingers[n]  # the app's own shutdown work
        while (left := end - time.monotonic()) > 0:
            for m in delivered(left):
                if m in handled:
                    on(m)
        write("done %.6f" % time.monotonic())
        os._exit(0)
    if n in exits:
        os._exit(exits[n])

for n in ignored:
    signal.signal(n, signal.SIG_IGN)
signal.pthread_sigmask(signal.SIG_BLOCK, handled)
write("ready %d %.6f" % (os.getpid(), time.monotonic()))
if hold is not None:
    # An app busy for a moment (a critical section with signals blocked):
    # it takes the first signal HOLD after it became pending, or at once
    # when a second kind is pending beside it. Then the kernel hands over
    # the pending ones lowest number first, whatever order they were sent.
    while not signal.sigpending():
        time.sleep(0.0005)
    first = time.monotonic()
    while len(signal.sigpending()) < 2 and time.monotonic() - first < hold:
        time.sleep(0.0005)
while True:
    for n in delivered():
        if n in handled:
            on(n)
"#;

/// Debian's python3 when there (no pyenv shim to start first), else PATH's.
fn python() -> &'static str {
    static PY: OnceLock<&'static str> = OnceLock::new();
    PY.get_or_init(|| {
        let py = if Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3"
        } else {
            "python3"
        };
        need(py);
        py
    })
}

/// A directory with the helper script, and log files in it.
struct Scratch {
    dir: TempDir,
    script: PathBuf,
}

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = TempDir::new(tag);
        let script = dir.path().join("helper.py");
        std::fs::write(&script, HELPER).expect("write helper.py");
        Scratch { dir, script }
    }

    fn log(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// argv running the helper with `log` and `opts`.
    fn helper(&self, log: &Path, opts: &[&str]) -> Vec<OsString> {
        let mut argv: Vec<OsString> = vec![python().into(), self.script.clone().into(), log.into()];
        argv.extend(opts.iter().map(OsString::from));
        argv
    }

    /// kwait with `flags`, then `--` and the helper logging to `log` with
    /// `opts`; returns once the helper is ready.
    fn start_helper(&self, mode: Mode, flags: &[&str], log: &Path, opts: &[&str]) -> Kw {
        let mut argv: Vec<OsString> = flags.iter().map(OsString::from).collect();
        argv.push("--".into());
        argv.extend(self.helper(log, opts));
        let kw = Kw::start(mode, &argv);
        wait_ready(log, &kw);
        kw
    }

    /// The same, as one quoted sh command line.
    fn helper_sh(&self, log: &Path, opts: &[&str]) -> String {
        self.helper(log, opts)
            .iter()
            .map(q)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The helper's log lines.
fn lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The signal numbers the helper logged, in order.
fn signals(log: &Path) -> Vec<i32> {
    lines(log)
        .iter()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

/// The time (CLOCK_MONOTONIC seconds) of the first line starting with `word`.
fn logged_at(log: &Path, word: &str) -> f64 {
    let lines = lines(log);
    lines
        .iter()
        .find_map(|l| {
            let mut it = l.split_whitespace();
            (it.next() == Some(word)).then(|| it.last()?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no {word:?} line in {}: {lines:?}", log.display()))
}

/// Polls until the helper writing `log` is ready (handlers installed).
fn wait_ready(log: &Path, kw: &Kw) {
    let ok = poll_until(SHORT, || lines(log).iter().any(|l| l.starts_with("ready ")));
    assert!(
        ok,
        "helper ({}) not ready within {SHORT:?}; kwait's stderr:\n{}",
        log.display(),
        kw.run.stderr()
    );
}

/// Polls until the helper logged signal `sig`.
fn wait_logged(log: &Path, sig: i32, kw: &Kw) {
    let ok = poll_until(SHORT, || signals(log).contains(&sig));
    assert!(
        ok,
        "signal {sig} never reached the app (log {:?}); kwait's stderr:\n{}",
        lines(log),
        kw.run.stderr()
    );
}

// ---------------------------------------------------------------------------
// 1. Exit status: 0..=255 pass through, death by signal N is 128+N
// ---------------------------------------------------------------------------

fn exit_code(mode: Mode, code: u8) -> Option<i32> {
    let script = format!("exit {code}");
    let mut kw = Kw::start(mode, &["-q", "--", "sh", "-c", &script]);
    kw.finish(LIMIT).code
}

/// Runs `exit CODE` in `mode` for each of `codes`, spread over `threads`
/// threads; returns the (want, got) pairs that differ.
fn wrong_exit_codes(mode: Mode, codes: &[u8], threads: usize) -> Vec<(u8, Option<i32>)> {
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let mine: Vec<u8> = codes.iter().copied().skip(t).step_by(threads).collect();
            thread::spawn(move || {
                mine.into_iter()
                    .filter_map(|c| {
                        let got = exit_code(mode, c);
                        (got != Some(i32::from(c))).then_some((c, got))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|t| t.join().expect("thread"))
        .collect()
}

#[test]
fn exit_codes_0_to_255_pass_through() {
    // Four threads of 64 runs: ~1 s on two cores.
    let all: Vec<u8> = (0..=255).collect();
    let wrong = wrong_exit_codes(Mode::Plain, &all, 4);
    assert!(wrong.is_empty(), "(want, got): {wrong:?}");
}

#[test]
fn exit_codes_pass_through_as_pid1() {
    let sample = [
        0u8, 1, 2, 3, 42, 124, 125, 126, 127, 128, 129, 137, 143, 200, 254, 255,
    ];
    let wrong = wrong_exit_codes(Mode::Pid1, &sample, 2);
    assert!(wrong.is_empty(), "(want, got): {wrong:?}");
}

fn death_by_signal(mode: Mode) {
    // `ulimit -c 0`: a SIGSEGV must not leave a core file behind.
    let cases = [
        ("TERM", "SIGTERM", 143),
        ("KILL", "SIGKILL", 137),
        ("SEGV", "SIGSEGV", 139),
        ("INT", "SIGINT", 130),
        ("USR1", "SIGUSR1", 138),
        // A real-time signal: no name in nix's table, and once lost the
        // app's end with it.
        ("40", "SIGRTMIN+", 168),
    ];
    for (sig, name, code) in cases {
        if sig == "40"
            && skip_under_runner(
                "signal 40 left out: qemu-user renumbers real-time signals (an app killed by \
                 40 makes the emulated kwait exit 128+38)",
            )
        {
            continue;
        }
        let script = format!("ulimit -c 0; kill -{sig} $$");
        let mut kw = Kw::start(mode, &["--", "sh", "-c", &script]);
        let done = kw.finish(LIMIT);
        assert_eq!(done.code, Some(code), "{sig}: {done:?}");
        assert!(
            done.stderr
                .contains(&format!("kwait: app was killed by {name}")),
            "{sig}: {}",
            done.stderr
        );
    }
}
both!(death_by_signal);

/// Signals 32-34 are left out of libc's "all signals" (glibc and musl keep
/// them for themselves); sent with `kill`, one of them must reach the app
/// like any other, not end kwait and orphan the app.
fn signals_32_to_34_reach_the_app(mode: Mode) {
    if skip_under_runner(
        "qemu-user keeps host signals 32 and 33 for its C library and renumbers the \
         real-time ones (host 34 is the guest's 32)",
    ) {
        return;
    }
    for sig in 32..=34 {
        let mut kw = Kw::start(mode, &["--", "sleep", "30"]);
        kw.app();
        kw.signal(sig);
        let done = kw.finish(LIMIT);
        assert_eq!(done.code, Some(128 + sig), "signal {sig}: {done:?}");
        assert_contains(&done.stderr, &["kwait: app was killed by "]);
    }
}
both!(signals_32_to_34_reach_the_app);

/// The log line for the app's start shows its command as a shell would.
#[test]
fn start_line_quotes_the_command() {
    let mut kw = Kw::start(Mode::Plain, &["--", "sh", "-c", "exit 0", "it's"]);
    let done = kw.finish(LIMIT);
    done.expect(0, &[r#"kwait: started sh -c 'exit 0' 'it'\''s' (pid "#]);
}

/// kwait's stderr is a pipe nobody reads any more: each log line it writes
/// raises a SIGPIPE at kwait itself. That one is kwait's business, not a
/// signal for the app, which must run on and exit with its own status.
fn own_sigpipe_is_not_forwarded(mode: Mode) {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let mut cmd = command(mode, &["-v", "--", "sh", "-c", "sleep 0.5; exit 3"]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(writer);
    let mut guard = ChildGuard::spawn("kwait with a closed stderr", &mut cmd);
    let status = guard.wait_exit(LIMIT);
    assert_eq!(
        status.code(),
        Some(3),
        "{status:?} (141 = the app got SIGPIPE)"
    );
}
both!(own_sigpipe_is_not_forwarded);

/// An app stopped with SIGSTOP (Ctrl-Z, a debugger) still handles the stop
/// signal: kwait follows it with SIGCONT instead of leaving it pending until
/// the SIGKILL at the end of --grace.
fn stopped_app_handles_sigterm(mode: Mode) {
    let mut kw = Kw::start(
        mode,
        &[
            "--grace",
            "8s",
            "--",
            "sh",
            "-c",
            "trap 'exit 7' TERM; while :; do sleep 0.05; done",
        ],
    );
    let app = kw.app();
    let catches_term = || {
        status_field(app, "SigCgt:")
            .and_then(|hex| u64::from_str_radix(&hex, 16).ok())
            .is_some_and(|mask| mask & (1 << (libc::SIGTERM - 1)) != 0)
    };
    assert!(
        poll_until(SHORT, catches_term),
        "app {app} never set its trap"
    );
    // SAFETY: kill(2) of kwait's unreaped child.
    assert_eq!(unsafe { libc::kill(app as libc::pid_t, libc::SIGSTOP) }, 0);
    assert!(
        poll_until(SHORT, || state(app) == Some('T')),
        "app {app} never stopped"
    );
    kw.signal(libc::SIGTERM);
    let done = kw.finish(LIMIT);
    assert_eq!(
        done.code,
        Some(7),
        "137 = SIGKILLed after --grace: {done:?}"
    );
    assert!(
        !done.stderr.contains("kwait: SIGKILL to"),
        "{}",
        done.stderr
    );
}
both!(stopped_app_handles_sigterm);

// ---------------------------------------------------------------------------
// 2. Forwarding: each signal reaches the child, from outside and inside
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Outside,
    Inside,
}

fn send(kw: &mut Kw, from: Side, sig: i32) {
    match from {
        Side::Outside => kw.signal(sig),
        Side::Inside => kw.signal_inside(sig),
    }
}

/// Every catchable signal but TERM (1-31 but KILL and STOP; INT, CHLD,
/// TTIN, TTOU and the fault signals sent with kill(1) included), then
/// SIGRTMIN+1 and SIGRTMAX, one at a time (each awaited in the app's log,
/// so none coalesces), then TERM, on which the app exits 42: the app's log
/// must be exactly what was sent, in order, nothing added (no SIGCONT after
/// INT). INT alone in a second run (exit 43). With `group`, under
/// `--group`: the same, sent to the app's process group.
fn forwarding(mode: Mode, from: Side, group: bool) {
    let s = Scratch::new("fwd");
    let rt1 = sigrtmin() + 1;
    let rtmax = libc::SIGRTMAX();
    // Fault signals sent with kill(1) are forwarded too (README); a real
    // fault in kwait itself would still kill it.
    let mut all: Vec<i32> = (1..32)
        .filter(|&n| ![libc::SIGKILL, libc::SIGSTOP, libc::SIGTERM].contains(&n))
        .collect();
    all.extend([rt1, rtmax]);
    let others = without_unemulated_signals(&all);
    let list = others
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",");

    let log = s.log("term.log");
    let flags: &[&str] = if group {
        &["--group", "--grace", "30s"]
    } else {
        &["--grace", "30s"]
    };
    let mut kw = s.start_helper(mode, flags, &log, &["--log", &list, "--exit-on", "15:42"]);
    for &sig in &others {
        send(&mut kw, from, sig);
        wait_logged(&log, sig, &kw);
    }
    send(&mut kw, from, libc::SIGTERM);
    let done = kw.finish(LIMIT);
    let mut want = others.clone();
    want.push(libc::SIGTERM);
    assert_eq!(signals(&log), want, "log {:?}", lines(&log));
    assert_eq!(done.code, Some(42), "the app's own status: {done:?}");
    let to = if group { "process group" } else { "pid" };
    let mut needles: Vec<String> = [
        "forwarded SIGHUP",
        "forwarded SIGQUIT",
        "forwarded SIGUSR1",
        "forwarded SIGUSR2",
        "SIGINT sent",
        "forwarded SIGTERM",
    ]
    .iter()
    .map(|what| format!("kwait: {what} to {to} "))
    .collect();
    // The app got SIGRTMIN+1 (above); kwait's own name for it is checked
    // natively only (without_unemulated_signals: renumbered under qemu).
    if !skip_under_runner("the log line naming SIGRTMIN+1 is not checked") {
        needles.push(format!("kwait: forwarded SIGRTMIN+1 to {to} "));
    }
    let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
    assert_contains(&done.stderr, &needles);

    let log = s.log("int.log");
    let flags: &[&str] = if group { &["--group"] } else { &[] };
    let mut kw = s.start_helper(mode, flags, &log, &["--exit-on", "2:43"]);
    send(&mut kw, from, libc::SIGINT);
    let done = kw.finish(LIMIT);
    assert_eq!(signals(&log), [libc::SIGINT], "log {:?}", lines(&log));
    done.expect(43, &[&format!("kwait: SIGINT sent to {to} ")]);
}

mod forwarding {
    use super::{forwarding, Mode, Side};

    #[test]
    fn pid1_from_outside() {
        forwarding(Mode::Pid1, Side::Outside, false)
    }

    /// The kernel drops a signal sent to a namespace's init from inside
    /// unless the init handles it; kwait blocks every signal and reads them
    /// from a signalfd, and blocked signals are never dropped.
    #[test]
    fn pid1_from_inside() {
        forwarding(Mode::Pid1, Side::Inside, false)
    }

    #[test]
    fn plain() {
        forwarding(Mode::Plain, Side::Outside, false)
    }

    /// Under --group: every signal to the app's process group, once each.
    #[test]
    fn group_pid1() {
        forwarding(Mode::Pid1, Side::Outside, true)
    }

    #[test]
    fn group_plain() {
        forwarding(Mode::Plain, Side::Outside, true)
    }
}

// ---------------------------------------------------------------------------
// 3. --group and --rewrite
// ---------------------------------------------------------------------------

/// `sh -c 'helper & wait'`: shells do not forward signals. USR1 kills the
/// shell (default action) either way; only with `--group` does it reach the
/// helper too. Then the drain TERMs what the shell left behind.
fn group_reaches_grandchild_behind_sh(mode: Mode) {
    if skip_plain_without_subreaper(mode) {
        return;
    }
    let s = Scratch::new("group");
    for group in [false, true] {
        let log = s.log(if group { "group.log" } else { "nogroup.log" });
        let script = format!(
            "{} & wait",
            s.helper_sh(&log, &["--log", "10", "--exit-on", "15:0"])
        );
        let mut args = vec!["--", "sh", "-c", &script];
        if group {
            args.insert(0, "--group");
        }
        let mut kw = Kw::start(mode, &args);
        wait_ready(&log, &kw);
        kw.signal(libc::SIGUSR1);
        let done = kw.finish(LIMIT);
        assert_eq!(done.code, Some(128 + libc::SIGUSR1), "{done:?}");
        let got = signals(&log);
        if group {
            assert!(
                got.contains(&libc::SIGUSR1),
                "--group: the grandchild never got SIGUSR1: {got:?}"
            );
            assert!(
                done.stderr
                    .contains("kwait: forwarded SIGUSR1 to process group "),
                "{}",
                done.stderr
            );
        } else {
            assert_eq!(
                got,
                [libc::SIGTERM],
                "without --group only the shell gets SIGUSR1; the grandchild only the drain's SIGTERM"
            );
        }
        assert_eq!(got.last(), Some(&libc::SIGTERM), "drained: {got:?}");
    }
}
both!(group_reaches_grandchild_behind_sh);

/// nginx wants QUIT for a graceful stop.
fn rewrite_term_to_quit(mode: Mode) {
    let s = Scratch::new("rewrite");
    let log = s.log("app.log");
    let mut kw = s.start_helper(
        mode,
        &["--rewrite", "TERM:QUIT"],
        &log,
        &["--log", "15", "--exit-on", "3:0"],
    );
    kw.signal(libc::SIGTERM);
    let done = kw.finish(LIMIT);
    assert_eq!(signals(&log), [libc::SIGQUIT], "log {:?}", lines(&log));
    done.expect(0, &["kwait: SIGQUIT sent to pid "]);
}
both!(rewrite_term_to_quit);

/// `--rewrite TERM:STOP` pauses the app on `docker stop` (and SIGKILLs it
/// after --grace): the SIGCONT that follows other stop signals would undo it.
fn rewrite_term_to_stop(mode: Mode) {
    let mut kw = Kw::start(
        mode,
        &[
            "--rewrite",
            "TERM:STOP",
            "--grace",
            "2s",
            "--",
            "sleep",
            "30",
        ],
    );
    let app = kw.app();
    kw.signal(libc::SIGTERM);
    assert!(
        poll_until(SHORT, || state(app) == Some('T')),
        "the app never stopped"
    );
    thread::sleep(Duration::from_millis(300));
    assert_eq!(state(app), Some('T'), "the app was continued");
    let done = kw.finish(LIMIT);
    done.expect(137, &["kwait: SIGSTOP sent to pid "]);
}
both!(rewrite_term_to_stop);

/// Whether `sig` is pending for `pid` (SigPnd or ShdPnd in its status):
/// kwait blocks every signal, so one it has not read yet shows there.
fn pending(pid: u32, sig: i32) -> bool {
    ["SigPnd:", "ShdPnd:"].iter().any(|f| {
        status_field(pid, f)
            .and_then(|h| u64::from_str_radix(&h, 16).ok())
            .is_some_and(|m| m & (1 << (sig - 1)) != 0)
    })
}

/// `HUP:0` drops HUP: sent once kwait has read it, then USR1, which must
/// arrive: the dropped one was not merely late.
fn dropped_signals_never_reach_the_app(mode: Mode) {
    let s = Scratch::new("drop");
    let log = s.log("app.log");
    let mut kw = s.start_helper(
        mode,
        &["--rewrite", "HUP:0"],
        &log,
        &["--log", "1,10", "--exit-on", "15:0"],
    );
    kw.signal(libc::SIGHUP);
    kw.run
        .wait_for_stderr("kwait: dropped SIGHUP (--rewrite)", SHORT);
    let pid = kw.pid();
    assert!(
        poll_until(SHORT, || !pending(pid, libc::SIGHUP)),
        "kwait never read SIGHUP"
    );
    kw.signal(libc::SIGUSR1);
    wait_logged(&log, libc::SIGUSR1, &kw);
    kw.signal(libc::SIGTERM);
    let done = kw.finish(LIMIT);
    assert_eq!(
        signals(&log),
        [libc::SIGUSR1, libc::SIGTERM],
        "log {:?}",
        lines(&log)
    );
    assert_eq!(done.code, Some(0), "{done:?}");
}
both!(dropped_signals_never_reach_the_app);

// ---------------------------------------------------------------------------
// 4. Reaping: orphans leave no zombies; the SIGCHLD-coalescing hammer
// ---------------------------------------------------------------------------

/// Lines kwait -v prints for each process it reaps besides the app.
fn reaped(stderr: &str) -> usize {
    stderr
        .lines()
        .filter(|l| l.starts_with("kwait: reaped pid "))
        .count()
}

/// Polls until kwait's only child is the app (every orphan exited and was
/// reaped); panics listing what is left. Returns how long that took.
fn wait_only_app_left(kw: &mut Kw, app: u32, timeout: Duration) -> Duration {
    let start = Instant::now();
    let mut left = Vec::new();
    let ok = poll_until(timeout, || {
        left = kw.children();
        left == [app]
    });
    let zs: Vec<u32> = left
        .iter()
        .copied()
        .filter(|&c| state(c) == Some('Z'))
        .collect();
    assert!(
        ok,
        "after {timeout:?} kwait still has {} children besides the app, {} of them zombies: {zs:?}",
        left.len().saturating_sub(1),
        zs.len()
    );
    start.elapsed()
}

/// tini's reaping test, without its sleeps: 100 orphans (`(sleep &)`: the
/// subshell exits, so sleep is reparented to kwait), then all 100 SIGKILLed
/// at once by pid. None may stay a zombie; the app then ends normally.
fn reaps_100_orphans(mode: Mode) {
    if skip_plain_without_subreaper(mode) {
        return;
    }
    let script = "for i in $(seq 100); do (sleep 1000 &); done; echo spawned; read x; exit 7";
    let mut kw = Kw::spawn(mode, &["-v", "--", "sh", "-c", script], Io::Piped);
    let app = kw.app();
    kw.run.wait_for_stdout("spawned", SHORT);
    let mut orphans = Vec::new();
    let ok = poll_until(SHORT, || {
        orphans = kw
            .children()
            .into_iter()
            .filter(|&c| c != app && comm(c) == "sleep")
            .collect();
        orphans.len() == 100
    });
    assert!(ok, "{} sleeps reparented to kwait, want 100", orphans.len());
    for &pid in &orphans {
        // SAFETY: kill(2) of kwait's unreaped child.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
    let took = wait_only_app_left(&mut kw, app, SHORT);
    eprintln!("100 orphans reaped {took:?} after their SIGKILL");
    assert_eq!(zombies(kw.pid()), Vec::<u32>::new());
    kw.write_stdin("go\n");
    let done = kw.finish(LIMIT);
    assert_eq!(done.code, Some(7), "{done:?}");
    assert_eq!(reaped(&done.stderr), 100, "reaped lines");
    assert!(!done.stderr.contains("left behind"), "{}", done.stderr);
}
both!(reaps_100_orphans);

/// 5,000 short-lived orphans as fast as dash can make them.
fn reaps_5000_orphans(mode: Mode) {
    if skip_plain_without_subreaper(mode) {
        return;
    }
    let script = "for i in $(seq 5000); do (true &); done; echo spawned; read x; exit 7";
    let mut kw = Kw::spawn(mode, &["-v", "--", "sh", "-c", script], Io::Piped);
    let app = kw.app();
    let start = Instant::now();
    kw.run.wait_for_stdout("spawned", LIMIT);
    let took = wait_only_app_left(&mut kw, app, SHORT);
    eprintln!(
        "5000 orphans made in {:?}, the last reaped {took:?} after that",
        start.elapsed() - took
    );
    kw.write_stdin("go\n");
    let done = kw.finish(LIMIT);
    assert_eq!(
        done.code,
        Some(7),
        "exit code; stderr has {} lines",
        done.stderr.lines().count()
    );
    assert_eq!(reaped(&done.stderr), 5000, "reaped lines");
}
both!(reaps_5000_orphans);

/// catatonit#4: the main child and an orphan exit at about the same time,
/// so one SIGCHLD stands for both. 100 rounds, each bounded.
fn sigchld_hammer(mode: Mode) {
    need("bash");
    let script = "bash -c 'sleep 0.01 & kill -9 $BASHPID'; sleep 0.0087";
    let start = Instant::now();
    for round in 0..100 {
        let mut kw = Kw::start(mode, &["-q", "--", "bash", "-c", script]);
        let status = kw.run.child.wait_timeout(Duration::from_secs(5));
        let Some(status) = status else {
            panic!(
                "round {round}: kwait hung; children {:?}, stderr:\n{}",
                kw.children(),
                kw.run.stderr()
            );
        };
        assert_eq!(status.code(), Some(0), "round {round}: {}", kw.run.stderr());
    }
    eprintln!("100 rounds in {:?}", start.elapsed());
}
both!(sigchld_hammer);

// ---------------------------------------------------------------------------
// 5. The child's signal state, fds and stdin
// ---------------------------------------------------------------------------

/// tini's sigconf test: the app itself (grep, exec'd by kwait) reads its
/// own SigBlk and SigIgn. kwait blocks every signal and Rust ignores
/// SIGPIPE; none of that may reach the app.
fn child_signal_state_is_clean(mode: Mode) {
    // A target to wait for first, so kwait has run its tokio runtime and
    // probe sockets before COMMAND starts.
    let (_l, target) = listener();
    let mut kw = Kw::start(
        mode,
        &[
            &target,
            "--",
            "grep",
            "-E",
            "^Sig(Blk|Ign):",
            "/proc/self/status",
        ],
    );
    let done = kw.finish(LIMIT);
    assert_eq!(done.code, Some(0), "{done:?}");
    for name in ["SigBlk:", "SigIgn:"] {
        let mask = signal_mask(&done.stdout, name);
        assert_eq!(mask, 0, "{name} {mask:x} (SIGPIPE is bit {:x})", 1u64 << 12);
    }
}
both!(child_signal_state_is_clean);

/// The app (ls, exec'd by kwait) lists its own fds: 0, 1, 2 and the
/// directory it is reading, which takes the lowest free number, 3. Any fd
/// of kwait's (signalfd, probe sockets, runtime) would push it to 4.
fn child_inherits_no_fds(mode: Mode) {
    let (_l, target) = listener();
    let mut kw = Kw::start(mode, &[target.as_str(), "--", "ls", "-1", "/proc/self/fd"]);
    let done = kw.finish(LIMIT);
    assert_eq!(done.code, Some(0), "{done:?}");
    let fds: Vec<&str> = done.stdout.lines().collect();
    assert_eq!(fds, ["0", "1", "2", "3"], "the app's fds");
}
both!(child_inherits_no_fds);

/// tini's smoke test: `echo 'exit 3' | kwait -- sh`.
fn stdin_passthrough(mode: Mode) {
    let mut kw = Kw::spawn(mode, &["--", "sh"], Io::Piped);
    kw.write_stdin("echo hello from stdin\nexit 3\n");
    let done = kw.finish(LIMIT);
    assert_eq!(done.code, Some(3), "{done:?}");
    assert_eq!(done.stdout, "hello from stdin\n");
}
both!(stdin_passthrough);

// ---------------------------------------------------------------------------
// 6. Drain: what the app leaves behind gets SIGTERM and its grace window
// ---------------------------------------------------------------------------

/// Asserts the grandchild logged TERM, then "done" `linger` seconds later:
/// it had its shutdown window, and no SIGKILL (kwait's, or the kernel's when
/// a namespace's init exits) cut it short.
fn assert_drained(log: &Path, linger: f64, done: &Done) {
    let got = lines(log);
    assert!(
        got.iter().any(|l| l.starts_with("done ")),
        "the grandchild did not finish its shutdown: {got:?}\n{}",
        done.stderr
    );
    let took = logged_at(log, "done") - logged_at(log, "15");
    assert!(took >= linger * 0.9, "TERM to done {took:.3}s: {got:?}");
    assert!(
        !done.stderr.contains("kwait: SIGKILL to "),
        "{}",
        done.stderr
    );
}

/// The app exits on its own (code 3) with a TERM-handling helper still
/// running in its process group; the helper works 0.5 s after SIGTERM. As
/// PID 1 this is what tini and dumb-init get wrong (tini#180): their exit
/// makes the kernel SIGKILL the helper before its handler is done.
fn drain_after_the_app_exits_on_its_own(mode: Mode) {
    if skip_plain_without_subreaper(mode) {
        return;
    }
    let s = Scratch::new("drain-own");
    let log = s.log("helper.log");
    let script = format!(
        "{} & read x; exit 3",
        s.helper_sh(&log, &["--linger", "15:0.5"])
    );
    let mut kw = Kw::spawn(mode, &["--", "sh", "-c", &script], Io::Piped);
    wait_ready(&log, &kw);
    let t0 = Instant::now();
    kw.write_stdin("go\n");
    let done = kw.finish(LIMIT);
    eprintln!("app told to exit; kwait exited {:?} later", t0.elapsed());
    assert_eq!(done.code, Some(3), "the app's status: {done:?}");
    assert_drained(&log, 0.5, &done);
    assert!(
        t0.elapsed() >= Duration::from_millis(450),
        "kwait waited for the helper"
    );
    assert!(
        done.stderr
            .contains("kwait: 1 process(es) left behind by the app: SIGTERM"),
        "{}",
        done.stderr
    );
    assert_contains(&done.stderr, &["kwait: what the app left behind was gone "]);
}
both!(drain_after_the_app_exits_on_its_own);

/// A process that comes to kwait only after the first SIGTERM round (its
/// parent, outside the app's process group, outlives the app by a second)
/// gets its own SIGTERM when it arrives, not a SIGKILL at the end of
/// --grace. Here: the app exits 3 at once; A (setsid, so no group SIGTERM
/// reaches it) handles SIGTERM and exits a second later; its child B, a
/// loop with SIGTERM at its default, then comes to kwait.
fn late_leftovers_get_sigterm_too(mode: Mode) {
    if skip_plain_without_subreaper(mode) {
        return;
    }
    let a = r#"trap : TERM; sh -c "while :; do sleep 0.1; done" & sleep 1"#;
    let script = format!("setsid sh -c {} & sleep 0.2; exit 3", q(a));
    let mut kw = Kw::start(mode, &["--grace", "8s", "--", "sh", "-c", &script]);
    let done = kw.finish(LIMIT);
    assert_eq!(done.code, Some(3), "{done:?}");
    assert_contains(&done.stderr, &["more process(es) came to kwait: SIGTERM"]);
    assert!(
        !done.stderr.contains("kwait: SIGKILL to"),
        "B waited for the SIGKILL:\n{}",
        done.stderr
    );
}
both!(late_leftovers_get_sigterm_too);

/// The same after `docker stop`: SIGTERM to kwait; the app (the helper,
/// exec'd by sh) exits 4 at once, its TERM-handling child works 0.5 s more.
fn drain_after_sigterm(mode: Mode) {
    if skip_plain_without_subreaper(mode) {
        return;
    }
    let s = Scratch::new("drain-term");
    let helper_log = s.log("helper.log");
    let app_log = s.log("app.log");
    let script = format!(
        "{} & exec {}",
        s.helper_sh(&helper_log, &["--linger", "15:0.5"]),
        s.helper_sh(&app_log, &["--exit-on", "15:4"])
    );
    let mut kw = Kw::start(mode, &["--", "sh", "-c", &script]);
    wait_ready(&helper_log, &kw);
    wait_ready(&app_log, &kw);
    kw.signal(libc::SIGTERM);
    let done = kw.finish(LIMIT);
    assert_eq!(done.code, Some(4), "the app's status: {done:?}");
    assert_eq!(signals(&app_log), [libc::SIGTERM]);
    assert_drained(&helper_log, 0.5, &done);
    assert!(
        done.stderr.contains("kwait: drained in "),
        "{}",
        done.stderr
    );
}
both!(drain_after_sigterm);

/// A left-behind helper that ignores SIGTERM is SIGKILLed when `--grace`
/// runs out; kwait still exits with the app's own status.
fn drain_kills_a_term_ignoring_leftover_after_grace(mode: Mode) {
    if skip_plain_without_subreaper(mode) {
        return;
    }
    let s = Scratch::new("drain-ign");
    let log = s.log("helper.log");
    let script = format!(
        "{} & read x; exit 3",
        s.helper_sh(&log, &["--ignore", "15"])
    );
    let mut kw = Kw::spawn(
        mode,
        &["--grace", "1s", "--", "sh", "-c", &script],
        Io::Piped,
    );
    wait_ready(&log, &kw);
    let t0 = Instant::now();
    kw.write_stdin("go\n");
    let done = kw.finish(LIMIT);
    let took = t0.elapsed();
    eprintln!("app exited; kwait exited {took:?} later");
    assert_eq!(done.code, Some(3), "the app's status: {done:?}");
    assert!(
        took >= Duration::from_millis(950),
        "SIGKILL before --grace: {took:?}"
    );
    assert!(took <= Duration::from_secs(3), "{took:?}");
    assert!(
        done.stderr.contains("SIGKILL") && done.stderr.contains("--grace 1s"),
        "{}",
        done.stderr
    );
}
both!(drain_kills_a_term_ignoring_leftover_after_grace);

/// A process that left the app's process group (`setsid`) below a helper
/// that ignores SIGTERM: it is not kwait's child until the grace-end SIGKILL
/// kills the helper, and then it is adopted. kwait must not exit while it
/// still has a child, nor later than `--grace` allows; as a subreaper,
/// exiting would also leave it running with nobody to stop it.
fn orphan_adopted_after_the_sigkill_is_killed_too(mode: Mode) {
    if skip_plain_without_subreaper(mode) {
        return;
    }
    let s = Scratch::new("escape");
    let log = s.log("escaped.log");
    let helper = s.dir.path().join("helper.sh");
    std::fs::write(
        &helper,
        format!(
            "trap '' TERM\nsetsid {} &\nwait\n",
            s.helper_sh(&log, &["--ignore", "15"])
        ),
    )
    .expect("write helper.sh");
    let script = format!("sh {} & read x; exit 3", q(&helper));
    let mut kw = Kw::spawn(
        mode,
        &["--grace", "1s", "--", "sh", "-c", &script],
        Io::Piped,
    );
    wait_ready(&log, &kw);
    // The escaped process's pid, in the test's numbering only when plain.
    let escaped: Option<u32> = (mode == Mode::Plain).then(|| {
        lines(&log)[0]
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .expect("pid on the ready line")
    });
    let t0 = Instant::now();
    kw.write_stdin("go\n");
    kw.run.child.wait_exit(LIMIT);
    let took = t0.elapsed();
    eprintln!("app exited; kwait exited {took:?} later");
    let survived = escaped.filter(|&p| comm(p).starts_with("python"));
    if let Some(pid) = survived {
        // Stop it by pid: kwait left it behind (holding our pipes open).
        // SAFETY: kill(2) of the python helper we just identified in /proc.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
    let done = kw.finish(LIMIT);
    assert_eq!(done.code, Some(3), "the app's status: {done:?}");
    let mut wrong = Vec::new();
    if let Some(pid) = survived {
        wrong.push(format!("left the escaped process {pid} running"));
    }
    if took > Duration::from_secs(2) {
        wrong.push(format!("exited {took:?} after the app (--grace 1s)"));
    }
    assert!(wrong.is_empty(), "kwait {}", wrong.join(" and "));
}
both!(orphan_adopted_after_the_sigkill_is_killed_too);

/// kwait's own system calls, through strace: after the app exits, each
/// process it left behind in its process group gets one SIGTERM. The
/// supervisor's comment says "A process that already got SIGTERM with its
/// group does not get a second one: many apps read that as 'hurry, skip the
/// drain'", and no SIGCONT beside it. Only kill(2) calls are traced, so the
/// result does not depend on whether two SIGTERMs happen to coalesce in the
/// kernel.
#[test]
fn leftovers_get_one_sigterm_each() {
    if skip_under_runner(
        "qemu-user refuses PR_SET_CHILD_SUBREAPER (EINVAL), so a plain kwait never sees \
         the leftovers; drain_after_the_app_exits_on_its_own::pid1 covers their SIGTERM",
    ) {
        return;
    }
    need("strace");
    let dir = TempDir::new("strace");
    let trace = dir.path().join("kill.trace");
    let mut cmd = Command::new("strace");
    cmd.arg("-o")
        .arg(&trace)
        .args(["-e", "trace=kill", "--"])
        .args(kwait_argv())
        .args(["--", "sh", "-c", "sleep 30 & sleep 30 & exit 3"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    clean_start(&mut cmd);
    let mut guard = ChildGuard::spawn("strace kwait", &mut cmd);
    let status = guard.wait_exit(LIMIT);
    let mut stderr = String::new();
    if let Some(mut e) = guard.child_mut().stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    assert_eq!(status.code(), Some(3), "{stderr}");
    let trace = std::fs::read_to_string(&trace).expect("read trace");
    let terms: Vec<i64> = trace
        .lines()
        .filter(|l| l.starts_with("kill(") && l.contains(", SIGTERM)"))
        .filter_map(|l| l["kill(".len()..].split(',').next()?.trim().parse().ok())
        .collect();
    let groups = terms.iter().filter(|&&t| t < 0).count();
    let pids: Vec<i64> = terms.iter().copied().filter(|&t| t > 0).collect();
    // Both sleeps are in the app's process group (a non-interactive shell
    // does no job control): a group SIGTERM reaches them, so a SIGTERM to
    // each pid after it is a second one.
    assert_eq!(groups, 1, "one SIGTERM to the app's group:\n{trace}");
    assert!(
        pids.is_empty(),
        "a sleep got a second SIGTERM (kill(-group), then kill(pid)):\n{trace}"
    );
    // Running leftovers get their SIGTERM and nothing else: no SIGCONT.
    assert!(
        !trace.contains(", SIGCONT)"),
        "a running leftover got SIGCONT:\n{trace}"
    );
}

// ---------------------------------------------------------------------------
// 7. --grace: a TERM-ignoring app is SIGKILLed
// ---------------------------------------------------------------------------

/// Polls until `sh -c 'trap "" TERM; sleep 60'` runs its sleep (the app
/// itself if dash exec'd it, else the app's child) with SIGTERM ignored.
fn wait_term_ignoring_sleep(kw: &mut Kw) {
    let app = kw.app();
    let ok = poll_until(SHORT, || {
        std::iter::once(app).chain(children(app)).any(|p| {
            comm(p) == "sleep"
                && status_field(p, "SigIgn:")
                    .and_then(|h| u64::from_str_radix(&h, 16).ok())
                    .is_some_and(|m| m & (1 << (libc::SIGTERM - 1)) != 0)
        })
    });
    assert!(ok, "the app never ran sleep with SIGTERM ignored");
}

fn term_ignoring_app_is_killed_after_grace(mode: Mode) {
    let mut kw = Kw::start(
        mode,
        &["--grace", "1s", "--", "sh", "-c", "trap '' TERM; sleep 60"],
    );
    wait_term_ignoring_sleep(&mut kw);
    let t0 = Instant::now();
    kw.signal(libc::SIGTERM);
    let done = kw.finish(LIMIT);
    let took = t0.elapsed();
    eprintln!("stop time with --grace 1s: {took:?}");
    done.expect(
        137,
        &[
            "SIGKILL to process group ",
            "the app is still running after --grace 1s",
        ],
    );
    assert!(
        took >= Duration::from_millis(1000),
        "before --grace: {took:?}"
    );
    // The issue's grace + 100 ms is checked by the benchmark; a loaded
    // machine gets a second here.
    assert!(
        took <= Duration::from_secs(2),
        "long after --grace: {took:?}"
    );
}
both!(term_ignoring_app_is_killed_after_grace);

/// Sequences of signals, each sent once the app logged the one before:
/// the app's log is exactly the sent list. Stop signals after the first
/// (INT then TERM: Ctrl-C, then `docker stop`; the same one twice) are
/// forwarded like any other, never turned into a SIGKILL, and no SIGCONT is
/// added (the app logs CONT too); with and without --group.
fn sequences_arrive_exactly(mode: Mode) {
    let s = Scratch::new("seq");
    let (int, term, usr1, hup) = (libc::SIGINT, libc::SIGTERM, libc::SIGUSR1, libc::SIGHUP);
    let runs = [
        vec![int, term],
        vec![term, usr1, hup],
        vec![term, term, int, int, usr1, usr1],
    ];
    for (i, (group, sent)) in [false, true]
        .into_iter()
        .flat_map(|g| runs.iter().map(move |r| (g, r.clone())))
        .enumerate()
    {
        let log = s.log(&format!("app{i}.log"));
        let flags: &[&str] = if group {
            &["--group", "--grace", "30s"]
        } else {
            &["--grace", "30s"]
        };
        let mut kw = s.start_helper(
            mode,
            flags,
            &log,
            &["--log", "1,2,10,15,18", "--exit-on", "12:0"],
        );
        for (n, &sig) in sent.iter().enumerate() {
            kw.signal(sig);
            let ok = poll_until(SHORT, || signals(&log).len() > n);
            assert!(ok, "signal {sig} never reached the app: {:?}", lines(&log));
        }
        kw.signal(libc::SIGUSR2);
        let done = kw.finish(LIMIT);
        let mut want = sent.clone();
        want.push(libc::SIGUSR2);
        assert_eq!(
            signals(&log),
            want,
            "sent {sent:?} (--group: {group}); kwait: {}",
            done.stderr
        );
        assert_eq!(done.code, Some(0), "{done:?}");
        assert!(!done.stderr.contains("SIGKILL to"), "{}", done.stderr);
    }
}
both!(sequences_arrive_exactly);

/// Signals that come close together, to an app that takes them a moment
/// late (it blocks them for 20 ms once the first is pending): the second
/// is sent only once the app has taken the first, so the kernel neither
/// hands them over lowest number first (HUP before the USR1 or TERM sent
/// first) nor merges two of the same into one.
fn close_signals_keep_their_order(mode: Mode) {
    let s = Scratch::new("close");
    let (term, usr1, hup, usr2) = (libc::SIGTERM, libc::SIGUSR1, libc::SIGHUP, libc::SIGUSR2);
    for (i, pair) in [[usr1, hup], [term, hup], [term, term]].iter().enumerate() {
        let log = s.log(&format!("app{i}.log"));
        let mut kw = s.start_helper(
            mode,
            &["--grace", "30s"],
            &log,
            &["--log", "1,10,15", "--hold", "20", "--exit-on", "12:0"],
        );
        let app = kw.app();
        kw.signal(pair[0]);
        let ok = poll_until(SHORT, || pending(app, pair[0]));
        assert!(ok, "signal {} never reached the app", pair[0]);
        kw.signal(pair[1]);
        let ok = poll_until(SHORT, || signals(&log).len() >= 2);
        assert!(ok, "the app logged {:?}", lines(&log));
        kw.signal(usr2);
        let done = kw.finish(LIMIT);
        assert_eq!(
            signals(&log),
            [pair[0], pair[1], usr2],
            "sent {pair:?}, then USR2; kwait: {}",
            done.stderr
        );
        assert_eq!(done.code, Some(0), "{done:?}");
    }
}
both!(close_signals_keep_their_order);

/// PID 1 of a namespace whose /proc is still the outer one's: every pid
/// there names another process, so kwait reads none from it, says so once,
/// and still forwards exactly what it receives. With its own /proc, no
/// such warning.
#[test]
fn pid1_with_the_outer_proc_says_so_and_forwards() {
    let s = Scratch::new("outerproc");
    let (term, usr1, usr2) = (libc::SIGTERM, libc::SIGUSR1, libc::SIGUSR2);
    for (i, mode) in [Mode::Pid1OuterProc, Mode::Pid1].into_iter().enumerate() {
        let log = s.log(&format!("app{i}.log"));
        let mut kw = s.start_helper(
            mode,
            &["--grace", "30s"],
            &log,
            &["--log", "10,15", "--exit-on", "12:0"],
        );
        let sent = [term, usr1, term];
        for (n, &sig) in sent.iter().enumerate() {
            kw.signal(sig);
            let ok = poll_until(SHORT, || signals(&log).len() > n);
            assert!(ok, "signal {sig} never reached the app: {:?}", lines(&log));
        }
        kw.signal(usr2);
        let done = kw.finish(LIMIT);
        assert_eq!(
            signals(&log),
            [term, usr1, term, usr2],
            "{mode:?}: {}",
            done.stderr
        );
        assert_eq!(done.code, Some(0), "{done:?}");
        let warned = done
            .stderr
            .contains("warning: /proc is another PID namespace's");
        assert_eq!(
            warned,
            mode == Mode::Pid1OuterProc,
            "{mode:?}: {}",
            done.stderr
        );
    }
}

/// Ctrl-C, then `docker stop` a while later: the app handles INT (keeps
/// running), then TERM (shuts down in 1.5 s). The TERM gets a full --grace
/// of its own: with --grace 2s counted from the INT, the app would be
/// SIGKILLed half a second into its shutdown.
fn a_later_stop_signal_gets_a_full_grace(mode: Mode) {
    later_stop_signal(
        mode,
        &[],
        libc::SIGTERM,
        "kwait: another SIGTERM during the drain: SIGKILL now in --grace 2s",
    );
}
both!(a_later_stop_signal_gets_a_full_grace);

/// The same with `--rewrite TERM:QUIT` (nginx's graceful stop): the later
/// TERM reaches the app as QUIT and is a stop signal all the same, so the
/// app gets a full --grace from it.
fn a_later_rewritten_stop_signal_gets_a_full_grace(mode: Mode) {
    later_stop_signal(
        mode,
        &["--rewrite", "TERM:QUIT"],
        libc::SIGQUIT,
        "kwait: another SIGTERM (sent as SIGQUIT) during the drain: SIGKILL now in --grace 2s",
    );
}

/// INT, then 1.5 s later TERM, which reaches the app as `sent` and starts
/// its 1.5 s shutdown: under `--grace 2s` it finishes only if the TERM got
/// a grace of its own, which kwait logs as `said`.
fn later_stop_signal(mode: Mode, flags: &[&str], sent: i32, said: &str) {
    let s = Scratch::new("grace2");
    let log = s.log("app.log");
    let mut all = vec!["--grace", "2s"];
    all.extend_from_slice(flags);
    let linger = format!("{sent}:1.5");
    let mut kw = s.start_helper(mode, &all, &log, &["--log", "2", "--linger", &linger]);
    kw.signal(libc::SIGINT);
    wait_logged(&log, libc::SIGINT, &kw);
    thread::sleep(Duration::from_millis(1500));
    kw.signal(libc::SIGTERM);
    let done = kw.finish(LIMIT);
    done.expect(0, &[said]);
    assert_eq!(signals(&log), [libc::SIGINT, sent]);
    assert!(
        lines(&log).iter().any(|l| l.starts_with("done")),
        "{:?}",
        lines(&log)
    );
}
both!(a_later_rewritten_stop_signal_gets_a_full_grace);

// ---------------------------------------------------------------------------
// 8. --drain-delay
// ---------------------------------------------------------------------------

/// The app keeps running for `--drain-delay` after SIGTERM reaches kwait,
/// and only then sees it (the `preStop: sleep` of Kubernetes runbooks).
fn drain_delay_holds_the_signal(mode: Mode) {
    let s = Scratch::new("delay");
    let log = s.log("app.log");
    let mut kw = s.start_helper(mode, &["--drain-delay", "1s"], &log, &["--exit-on", "15:0"]);
    let t0 = monotonic();
    kw.signal(libc::SIGTERM);
    let done = kw.finish(LIMIT);
    let held = logged_at(&log, "15") - t0;
    eprintln!("the app saw SIGTERM {held:.3}s after kwait got it");
    done.expect(
        0,
        &["kwait: SIGTERM received: draining, the app keeps running for --drain-delay 1s"],
    );
    assert!(held >= 0.9, "held only {held:.3}s");
    assert!(held <= 2.5, "held {held:.3}s");
}
both!(drain_delay_holds_the_signal);

/// Documented behaviour: a second SIGTERM/SIGINT during `--drain-delay`
/// ends the delay: the held stop signal, what came after it, and the second
/// one are forwarded at once, in order, and `--grace` starts then.
fn second_term_during_drain_delay_forwards_at_once(mode: Mode) {
    let s = Scratch::new("delay2");
    let log = s.log("app.log");
    let mut kw = s.start_helper(
        mode,
        &["--drain-delay", "30s"],
        &log,
        &["--log", "1,15", "--exit-on", "10:0"],
    );
    kw.signal(libc::SIGTERM);
    kw.run
        .wait_for_stderr("the app keeps running for --drain-delay 30s", SHORT);
    kw.signal(libc::SIGHUP);
    let pid = kw.pid();
    assert!(
        poll_until(SHORT, || !pending(pid, libc::SIGHUP)),
        "HUP unread"
    );
    assert!(signals(&log).is_empty(), "forwarded during the delay");
    let t1 = monotonic();
    kw.signal(libc::SIGTERM);
    let ok = poll_until(SHORT, || signals(&log).len() >= 3);
    assert!(ok, "{:?}", lines(&log));
    let after = logged_at(&log, "15") - t1;
    eprintln!("the app saw SIGTERM {after:.3}s after the second one");
    kw.signal(libc::SIGUSR1);
    let done = kw.finish(LIMIT);
    done.expect(
        0,
        &["kwait: SIGTERM during --drain-delay: ending the delay early"],
    );
    assert!(after < 2.0, "{after:.3}s");
    assert_eq!(
        signals(&log),
        [libc::SIGTERM, libc::SIGHUP, libc::SIGTERM, libc::SIGUSR1]
    );
}
both!(second_term_during_drain_delay_forwards_at_once);

// ---------------------------------------------------------------------------
// 9. A terminal: the app is the foreground group, Ctrl-C ends it with 130
// ---------------------------------------------------------------------------

/// A fresh pseudo-terminal: (master, slave).
fn openpty() -> (File, File) {
    // SAFETY: the standard posix_openpt sequence on fds we own; ptsname_r
    // writes a NUL-terminated name into the buffer we pass.
    unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(
            master >= 0,
            "posix_openpt: {}",
            std::io::Error::last_os_error()
        );
        let master = File::from_raw_fd(master);
        assert_eq!(libc::grantpt(master.as_raw_fd()), 0, "grantpt");
        assert_eq!(libc::unlockpt(master.as_raw_fd()), 0, "unlockpt");
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(
            libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()),
            0,
            "ptsname_r"
        );
        let slave = libc::open(
            name.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        assert!(
            slave >= 0,
            "open {:?}: {}",
            CStr::from_ptr(name.as_ptr()),
            std::io::Error::last_os_error()
        );
        (master, File::from_raw_fd(slave))
    }
}

/// `docker run -it`: Ctrl-C is SIGINT from the terminal's line discipline
/// to its foreground process group, never to PID 1. kwait must make the app
/// that group (tini's outer test expects 130).
fn ctrl_c_on_a_terminal_ends_the_app_with_130(mode: Mode) {
    let (mut master, slave) = openpty();
    let mut kw = Kw::spawn(mode, &["--", "sleep", "100"], Io::Tty(slave));
    // The slave's copies now live in kwait only: the master reads EOF/EIO
    // once kwait and its app are gone.
    let output = Arc::new(Mutex::new(String::new()));
    let reader = collect(master.try_clone().expect("dup master"), output.clone());
    let found = poll_until(SHORT, || {
        output.lock().unwrap().contains("kwait: started sleep")
    });
    assert!(found, "terminal output: {:?}", output.lock().unwrap());
    let app = kw.children().first().copied().expect("kwait has a child");
    let mut fields = Vec::new();
    let foreground = poll_until(SHORT, || {
        fields = stat(app).unwrap_or_default();
        comm(app) == "sleep"
            && fields.len() > 5
            && fields[2] == app.to_string()
            && fields[5] == fields[2]
    });
    assert!(
        foreground,
        "app {app} ({}): pgrp {:?}, terminal's foreground group (tpgid) {:?}",
        comm(app),
        fields.get(2),
        fields.get(5)
    );
    master
        .write_all(b"\x03")
        .expect("write Ctrl-C to the master");
    let done = kw.finish(LIMIT);
    let _ = poll_until(Duration::from_secs(5), || reader.is_finished());
    let text = output.lock().unwrap().clone();
    eprintln!("terminal output:\n{text}");
    assert_eq!(done.code, Some(130), "terminal output:\n{text}");
    assert!(text.contains("kwait: app was killed by SIGINT"), "{text}");
}
both!(ctrl_c_on_a_terminal_ends_the_app_with_130);

// ---------------------------------------------------------------------------
// 10. exec failures in supervised mode
// ---------------------------------------------------------------------------

fn exec_failures_are_127_and_126(mode: Mode) {
    let mut kw = Kw::start(mode, &["--", "kwait-no-such-command-xyz", "arg"]);
    let done = kw.finish(LIMIT);
    done.expect(
        127,
        &["kwait: cannot run 'kwait-no-such-command-xyz': not found"],
    );
    // A file where a directory should be (ENOTDIR) is "not found" too, as
    // in a shell.
    let mut kw = Kw::start(mode, &["--", "/etc/passwd/app"]);
    kw.finish(LIMIT)
        .expect(127, &["kwait: cannot run '/etc/passwd/app': not found"]);

    let dir = TempDir::new("noexec");
    let script = not_executable_script(&dir);
    let args: Vec<&OsStr> = vec!["--".as_ref(), script.as_os_str()];
    let mut kw = Kw::start(mode, &args);
    let done = kw.finish(LIMIT);
    done.expect(
        126,
        &[&format!(
            "kwait: cannot run '{}': permission denied",
            script.display()
        )],
    );
}
both!(exec_failures_are_127_and_126);
