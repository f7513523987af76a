//! kwait as PID 1 of a container: start COMMAND as a child, forward signals
//! to it, reap every zombie, drain on a stop signal, and exit with its
//! status. tini's loop (research/init-anchors.md), plus the drain no init
//! program gets right: helpers left behind by the app get SIGTERM and the
//! rest of the grace window before any SIGKILL, instead of the kernel's
//! SIGKILL when PID 1 exits (tini#180, dumb-init#212).
//!
//! One synchronous loop owns `waitpid(-1)`; the main child is recognised by
//! pid inside the reap loop, never from a SIGCHLD's sender (SIGCHLDs
//! coalesce: catatonit#4). Signals come from the signalfd opened at the top
//! of `main`. No async runtime and no other thread exist here.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::libc;
use nix::unistd::Pid;

use crate::exit::Exit;
use crate::log::since;
use crate::log::{debug, error, info, warning};
use crate::signals::{Signals, Signo};

/// How the supervisor treats the app.
#[derive(Debug, Clone)]
pub struct Options {
    /// Forward to the child's whole process group instead of its pid.
    pub group: bool,
    /// How long the app has after the stop signal before SIGKILL.
    pub grace: Duration,
    /// How long the app keeps running after a stop signal before it sees it.
    pub drain_delay: Duration,
    /// `FROM -> TO` rewrites; `TO == 0` drops the signal.
    pub rewrites: Vec<(Signo, Signo)>,
}

/// The argument by which kwait re-executes itself as a supervisor only
/// ([`reexec`]); never written by a user (`kwait --help` does not show it).
pub const SUPERVISE_ONLY: &str = "--kwait-supervise-only";

/// After a wait, replaces this kwait with a fresh copy of itself that only
/// supervises COMMAND: the wait's memory (the async runtime, a Metadata answer of a
/// thousand topics, TLS state) and the command line parser's then never
/// count toward the supervisor's peak, which stays that of a process that
/// has done nothing else. The PID, the blocked signal mask and every
/// pending signal survive `execve`, so nothing sent meanwhile is lost.
/// Returns only if the exec failed (no `/proc`): then this process
/// supervises, as it is.
pub fn reexec(command: &[OsString], opts: &Options) {
    let mut argv: Vec<OsString> = vec![
        std::env::args_os().next().unwrap_or_else(|| "kwait".into()),
        SUPERVISE_ONLY.into(),
    ];
    let level = if crate::log::enabled(crate::log::Level::Debug) {
        "2"
    } else if crate::log::enabled(crate::log::Level::Info) {
        "1"
    } else {
        "0"
    };
    let rewrites: Vec<String> = opts
        .rewrites
        .iter()
        .map(|(from, to)| format!("{}:{}", from.0, to.0))
        .collect();
    // execve of /proc/self/exe names the process "exe": the new image
    // takes back this one's name, so `ps`, `pidof kwait` and `pkill kwait`
    // still find it.
    let mut name = [0u8; 16];
    // SAFETY: PR_GET_NAME writes at most 16 bytes, NUL included.
    unsafe { libc::prctl(libc::PR_GET_NAME, name.as_mut_ptr()) };
    let len = name.iter().position(|&b| b == 0).unwrap_or(0);
    argv.push(OsString::from_vec(name[..len].to_vec()));
    for word in [
        level.to_string(),
        opts.grace.as_millis().to_string(),
        opts.drain_delay.as_millis().to_string(),
        u8::from(opts.group).to_string(),
        rewrites.join(","),
    ] {
        argv.push(word.into());
    }
    argv.push("--".into());
    argv.extend(command.iter().cloned());
    // The environment as COMMAND gets it: kwait's password variables were
    // for the probes, and the supervisor has none.
    let Some(prepared) = crate::exec::Prepared::new(&argv) else {
        return;
    };
    let err = prepared.exec_path(c"/proc/self/exe");
    debug!("cannot re-execute kwait to supervise from a fresh start ({err}); supervising as it is");
}

/// The plan a [`reexec`] passed: log level, options and COMMAND, from the
/// words after [`SUPERVISE_ONLY`]. `None` when they are not kwait's own.
pub fn from_reexec(args: &[OsString]) -> Option<(Vec<OsString>, Options)> {
    let word = |i: usize| args.get(i).and_then(|a| a.to_str());
    if word(1)? != SUPERVISE_ONLY || word(8)? != "--" {
        return None;
    }
    if let Ok(name) = std::ffi::CString::new(args.get(2)?.as_bytes()) {
        // SAFETY: PR_SET_NAME reads a NUL-terminated string (the kernel
        // keeps its first 15 bytes).
        unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
    }
    crate::log::set_level(match word(3)? {
        "0" => crate::log::Level::Error,
        "2" => crate::log::Level::Debug,
        _ => crate::log::Level::Info,
    });
    let ms = |i: usize| word(i)?.parse::<u64>().ok().map(Duration::from_millis);
    let mut rewrites = Vec::new();
    for pair in word(7)?.split(',').filter(|p| !p.is_empty()) {
        let (from, to) = pair.split_once(':')?;
        rewrites.push((Signo(from.parse().ok()?), Signo(to.parse().ok()?)));
    }
    let opts = Options {
        grace: ms(4)?,
        drain_delay: ms(5)?,
        group: word(6)? == "1",
        rewrites,
    };
    Some((args[9..].to_vec(), opts))
}

/// How the main child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChildEnd {
    Exited(u8),
    Signaled(Signo),
}

impl ChildEnd {
    fn exit(self) -> Exit {
        match self {
            ChildEnd::Exited(n) => Exit::Child(n),
            ChildEnd::Signaled(n) => Exit::Signaled(n),
        }
    }
}

impl std::fmt::Display for ChildEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChildEnd::Exited(n) => write!(f, "exited with status {n}"),
            ChildEnd::Signaled(signo) => write!(f, "was killed by {signo}"),
        }
    }
}

/// Where the supervisor is in the app's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The app runs; signals are forwarded.
    Running,
    /// A stop signal arrived; it, and every signal after it, is held until
    /// `until` (`--drain-delay`).
    Delaying { signal: Signo, until: Instant },
    /// The stop signal was forwarded; SIGKILL at `kill_at` (`--grace`).
    Draining { kill_at: Instant },
}

/// What the running `--grace` is counted from, for the SIGKILL line: a user
/// who sent two signals must read which one the SIGKILL answers, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GraceFrom {
    /// The `nth` stop signal kwait received, `signo` as sent, `after` the
    /// first one (the first: forwarded when it came, or after
    /// `--drain-delay`).
    Stop {
        signo: Signo,
        nth: u32,
        after: Duration,
    },
    /// The app's exit: what it left behind got SIGTERM then.
    Exit,
}

/// Longest sleep between reap passes, a safety net beside SIGCHLD (tini's
/// one-second `sigtimedwait`).
const TICK: Duration = Duration::from_secs(1);
/// After SIGKILL, how long to keep reaping before giving up on a process
/// stuck in the kernel (uninterruptible sleep).
const AFTER_KILL: Duration = Duration::from_secs(2);
/// How long a signal may wait for the app to take the one sent just
/// before it: long enough for a running app to be scheduled, short enough
/// that a blocked or stopped one does not hold kwait's loop.
const TAKE_WAIT: Duration = Duration::from_millis(50);
/// How often kwait looks whether the app has taken a signal.
const CONFIRM_EVERY: Duration = Duration::from_millis(1);

/// Runs COMMAND as a child and supervises it until it and everything it left
/// behind are gone. Returns the app's exit status.
pub fn run(command: &[OsString], opts: &Options, signals: &Signals) -> Exit {
    shed_startup_pages();
    if std::process::id() != 1 {
        // Orphans of the app are then reparented to kwait, not to the real
        // init, so kwait can reap them and wait for them when draining.
        if let Err(err) = nix::sys::prctl::set_child_subreaper(true) {
            error!("cannot become a child subreaper ({err}); orphaned processes will not be reaped by kwait");
        }
    }
    let Some(program) = command.first() else {
        error!("no COMMAND to run");
        return Exit::Usage;
    };
    let Some(prepared) = crate::exec::Prepared::new(command) else {
        error!("COMMAND has an argument with a NUL byte");
        return Exit::Usage;
    };
    let tty = nix::unistd::isatty(0).unwrap_or(false);
    let pid = match spawn(&prepared, tty) {
        Ok(pid) => pid,
        Err(err) => return crate::exec::cannot_run(program, &err),
    };
    // The prepared argv and environment: the app has its own copy.
    drop(prepared);
    info!("started {} (pid {pid})", quoted(command));
    if let Some(why) = proc_unusable() {
        warning!(
            "{why}: a stopped app gets no SIGCONT after a stop signal, and processes it leaves outside its process group get no signal from kwait"
        );
    }
    shed_startup_pages();
    Supervisor {
        pid,
        opts,
        phase: Phase::Running,
        end: None,
        stop_started: None,
        stops: 0,
        grace_from: None,
        unforwarded: None,
        group_termed: false,
        remnants_termed: false,
        termed: Vec::new(),
        ended_at: None,
        held: Vec::new(),
        unconfirmed: None,
    }
    .run(signals)
}

/// Starts COMMAND's process as std's `Command` would with `process_group(0)`
/// and a `pre_exec` closure, without std's spawn and environment machinery
/// (about 12 KB; [`crate::exec::Prepared`] is the environment): fork; in the
/// child its own process group, a clean signal state, the terminal's
/// foreground, exec. An exec that fails is reported through a close-on-exec
/// pipe, as std does: the parent reads its errno, or end of file once the
/// exec succeeded. Returns the child's pid; the loop that owns `waitpid`
/// reaps it.
fn spawn(prepared: &crate::exec::Prepared, tty: bool) -> std::io::Result<Pid> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let [from_child, to_parent] = fds;
    // SAFETY: the child makes only async-signal-safe calls, allocating
    // nothing, until it execs or exits; the parent closes what it owns.
    unsafe {
        match libc::fork() {
            -1 => {
                let err = std::io::Error::last_os_error();
                libc::close(from_child);
                libc::close(to_parent);
                Err(err)
            }
            0 => {
                libc::close(from_child);
                libc::setpgid(0, 0);
                clean_signals();
                if tty {
                    foreground();
                }
                let errno = prepared.exec().raw_os_error().unwrap_or(libc::ENOEXEC);
                libc::write(to_parent, (&errno as *const i32).cast(), 4);
                libc::_exit(127)
            }
            child => {
                libc::close(to_parent);
                let mut errno = [0u8; 4];
                let read = loop {
                    let n = libc::read(from_child, errno.as_mut_ptr().cast(), 4);
                    if n >= 0 || Errno::last() != Errno::EINTR {
                        break n;
                    }
                };
                libc::close(from_child);
                if read != 4 {
                    return Ok(Pid::from_raw(child));
                }
                // The exec failed and the child is gone: reaped here, as
                // std does, before the supervisor's loop starts.
                libc::waitpid(child, std::ptr::null_mut(), 0);
                Err(std::io::Error::from_raw_os_error(i32::from_ne_bytes(errno)))
            }
        }
    }
}

/// In the child, before exec: a clean signal state. kwait blocks every
/// signal, and the forked child inherits that mask; Rust's runtime ignores
/// SIGPIPE. An ignored or blocked signal
/// survives exec, so the app would never see `docker stop`, or die of a
/// closed pipe.
fn clean_signals() {
    // SAFETY: sigemptyset, sigprocmask and signal on stack values are
    // async-signal-safe and cannot fail with these arguments.
    unsafe {
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    }
}

/// In the child, before exec: become the terminal's foreground process
/// group, so that Ctrl-C and job control reach the app (tini does the same,
/// in the child, to avoid racing a nested init). SIGTTOU is blocked around
/// the call, or a background group asking for the terminal would be
/// stopped.
fn foreground() {
    // SAFETY: plain syscalls on stack values; errors are ignored on purpose
    // (ENOTTY, ENXIO: no controlling terminal, nothing to hand over).
    unsafe {
        let mut ttou: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut ttou);
        libc::sigaddset(&mut ttou, libc::SIGTTOU);
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, &ttou, &mut old);
        libc::tcsetpgrp(0, libc::getpid());
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
    }
}

/// COMMAND as a shell would show it, for the log: arguments with spaces or
/// quotes single-quoted, unprintable characters escaped, at most 500
/// characters.
fn quoted(command: &[OsString]) -> String {
    let mut line = String::new();
    for arg in command {
        let arg = arg.to_string_lossy();
        if !line.is_empty() {
            line.push(' ');
        }
        let plain = !arg.is_empty()
            && arg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
        if plain {
            line.push_str(&arg);
        } else {
            line.push('\'');
            line.push_str(&arg.replace('\'', "'\\''"));
            line.push('\'');
        }
    }
    crate::log::shown(&line, 500)
}

/// Gives back the memory of code kwait will not run again. Parsing, the
/// Kafka, ZooKeeper and TLS clients are most of the binary, and the kernel
/// maps a binary's pages in generously (fault-around), so a supervising
/// kwait would otherwise keep them resident for the app's whole life. What
/// is dropped is kwait's read-only image, from its ELF header to the end of
/// its code (the linker's `__ehdr_start` and `etext`): the binary is static
/// and not position-independent, so nothing there was ever written (no
/// relocations) and those pages stay in the page cache, to come back,
/// unchanged, on the next touch. Writable data lies after `etext` and is
/// not touched. (Reading /proc/self/smaps to find the mappings cost more
/// than the whole supervised start of `kwait -- true`.)
fn shed_startup_pages() {
    extern "C" {
        static __ehdr_start: u8;
        static etext: u8;
    }
    const PAGE: usize = 4096;
    // Only the symbols' addresses are taken; the linker defines both.
    let (start, end) = (
        std::ptr::addr_of!(__ehdr_start) as usize,
        std::ptr::addr_of!(etext) as usize,
    );
    // The last partial page of code may share its page with what follows.
    let end = end & !(PAGE - 1);
    if start % PAGE != 0 || end <= start {
        return;
    }
    // SAFETY: MADV_DONTNEED on private, file-backed, never-written pages
    // only unmaps page-cache pages; the next access faults the same bytes in
    // again from the file.
    unsafe {
        libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
    }
}

/// "2nd", "3rd", "11th": which stop signal the grace counts from.
fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// Sends a raw signal number (real-time ones too) to a pid or, negative, a
/// process group. ESRCH (already gone) is normal and ignored.
fn send(target: i32, signo: Signo) {
    // SAFETY: kill(2) and sched_yield(2) have no memory-safety
    // preconditions.
    unsafe {
        libc::kill(target, signo.0);
        // Let the receiver, woken on this CPU, run now: its handler should
        // not wait for kwait's log line and reap pass.
        libc::sched_yield();
    }
}

/// `send` of a stop signal (TERM, INT), then SIGCONT to exactly those of
/// its receivers that are stopped (Ctrl-Z, SIGSTOP), so they handle it now
/// instead of meeting SIGKILL at the end of the grace window. A running
/// process gets nothing but the signal. Not after a job-control stop
/// (`--rewrite TERM:STOP`), which SIGCONT would undo.
fn send_stop(target: i32, signo: Signo) {
    send(target, signo);
    let job_stop = [libc::SIGSTOP, libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU];
    if signo == Signo::CONT || job_stop.contains(&signo.0) {
        return;
    }
    for pid in stopped(target) {
        send(pid, Signo::CONT);
    }
}

/// Whether a signal, as received or as `--rewrite` sends it, is a stop
/// signal (TERM, INT): a TERM sent as QUIT (nginx's graceful stop) starts
/// the drain, and a later one gets the app a fresh --grace, all the same.
fn is_stop(received: Signo, sent: Signo) -> bool {
    [received, sent]
        .iter()
        .any(|s| matches!(*s, Signo::TERM | Signo::INT))
}

/// Whether /proc numbers processes as this PID namespace does (its `self`
/// is this pid). Not so under `unshare --pid --fork` without
/// `--mount-proc`, nor without a /proc: a pid read or looked up there then
/// names some other process, so kwait reads nothing by pid from it.
fn own_proc() -> bool {
    proc_unusable().is_none()
}

/// Why /proc cannot tell kwait about its processes, if it cannot; the
/// warning's opening words. Read once.
fn proc_unusable() -> Option<&'static str> {
    static WHY: std::sync::OnceLock<Option<&'static str>> = std::sync::OnceLock::new();
    *WHY.get_or_init(|| {
        let Ok(me) = std::fs::read_link("/proc/self") else {
            return Some("there is no /proc (mount one: Docker and Kubernetes do)");
        };
        if me.to_str().and_then(|p| p.parse::<u32>().ok()) == Some(std::process::id()) {
            return None;
        }
        Some(
            "/proc is another PID namespace's (run kwait under `unshare --pid --fork --mount-proc`; Docker and Kubernetes mount their own)",
        )
    })
}

/// The stopped processes among a pid (positive) or a process group
/// (negative), from their state in /proc (`T`: stopped by a signal; `t`, a
/// tracer's stop, is the tracer's business).
fn stopped(target: i32) -> Vec<i32> {
    if !own_proc() {
        return Vec::new();
    }
    let state = |pid: &str| -> Option<(char, i32)> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // "pid (comm) S ppid pgrp ...": comm may hold spaces and parentheses.
        let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
        let s = fields.next()?.chars().next()?;
        let pgrp = fields.nth(1)?.parse().ok()?;
        Some((s, pgrp))
    };
    if target > 0 {
        return match state(&target.to_string()) {
            Some(('T', _)) => vec![target],
            _ => Vec::new(),
        };
    }
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let pid = name.to_str()?;
            match state(pid)? {
                ('T', pgrp) if pgrp == -target => pid.parse().ok(),
                _ => None,
            }
        })
        .collect()
}

struct Supervisor<'a> {
    pid: Pid,
    opts: &'a Options,
    phase: Phase,
    end: Option<ChildEnd>,
    /// When the first stop signal arrived, for "drained in 1.2s".
    stop_started: Option<Instant>,
    /// How many stop signals (TERM, INT, as received or as rewritten)
    /// arrived, for "the 2nd stop signal".
    stops: u32,
    /// What the running `--grace` counts from, and since when.
    grace_from: Option<(Instant, GraceFrom)>,
    /// The last stop signal that reached nobody (the app had exited), and
    /// how long after the first it came: the SIGKILL line names it, so it
    /// is not mistaken for the SIGKILL's cause.
    unforwarded: Option<(Signo, Duration)>,
    /// Whether the app's process group already got SIGTERM (`--group`).
    group_termed: bool,
    /// Whether what the app left behind already got SIGTERM.
    remnants_termed: bool,
    /// Leftover pids already seen (and signalled) after the app's exit, sorted.
    termed: Vec<i32>,
    /// When the main child was reaped.
    ended_at: Option<Instant>,
    /// Signals that arrived during `--drain-delay`, as received and as to
    /// be sent: forwarded, in order, after the held stop signal.
    held: Vec<(Signo, Signo)>,
    /// The last signal sent to the app, and when, until kwait has seen the
    /// app take it (or [`TAKE_WAIT`] has passed): a signal that comes
    /// meanwhile waits for that ([`Supervisor::taken`]). Confirmed between
    /// signals, so the next one, the common case, is sent at once.
    unconfirmed: Option<(Signo, Instant)>,
}

impl Supervisor<'_> {
    fn run(mut self, signals: &Signals) -> Exit {
        loop {
            let now = Instant::now();
            let wake = match self.phase {
                Phase::Running => now + TICK,
                Phase::Delaying { until, .. } => until,
                Phase::Draining { kill_at } => kill_at,
            };
            let mut wait = wake.saturating_duration_since(now).min(TICK);
            if self.unconfirmed.is_some() {
                wait = wait.min(CONFIRM_EVERY);
            }
            if let Some(signo) = signals.next(wait) {
                self.on_signal(signo);
            }
            self.confirm();
            let all_gone = self.reap();
            if let Some(end) = self.end {
                if all_gone {
                    return self.finish(end);
                }
                self.after_main_exit();
            }
            let now = Instant::now();
            match self.phase {
                Phase::Delaying { signal, until } if now >= until => self.forward_stop(signal),
                Phase::Draining { kill_at } if now >= kill_at => {
                    self.kill_all();
                    return self.finish_after_kill();
                }
                _ => {}
            }
        }
    }

    /// One signal kwait received, for the app: forwarded exactly once, in
    /// the order received, with nothing added (`--rewrite` may change it or
    /// drop it). The first TERM or INT (as received or as rewritten) starts
    /// the drain.
    fn on_signal(&mut self, received: Signo) {
        let signo = self
            .opts
            .rewrites
            .iter()
            .find(|(from, _)| *from == received)
            .map_or(received, |&(_, to)| to);
        if signo.0 == 0 {
            info!("dropped {received} (--rewrite)");
            return;
        }
        let stop = is_stop(received, signo);
        if stop {
            self.stops = self.stops.saturating_add(1);
        }
        if let Phase::Delaying { signal, .. } = self.phase {
            if stop {
                // Another stop signal: someone who does not want to wait
                // for the delay. Everything is forwarded now, in order.
                info!("{received} during --drain-delay: ending the delay early");
                self.held.push((received, signo));
                self.forward_stop(signal);
            } else {
                self.held.push((received, signo));
            }
            return;
        }
        if stop && self.stop_started.is_none() {
            self.on_stop(received, signo);
        } else {
            self.forward(received, signo);
        }
    }

    /// The first TERM or INT: the drain.
    fn on_stop(&mut self, received: Signo, signo: Signo) {
        if received != signo {
            info!("{received} rewritten to {signo} (--rewrite)");
        }
        self.stop_started = Some(Instant::now());
        if self.end.is_some() {
            let left = match self.phase {
                Phase::Draining { kill_at } => format!(
                    "; SIGKILL in {} if anything is still running",
                    since(kill_at.saturating_duration_since(Instant::now()))
                ),
                _ => String::new(),
            };
            info!("{received} received: the app has exited, already draining what it left behind{left}");
            self.unforwarded = Some((received, Duration::ZERO));
        } else if self.opts.drain_delay.is_zero() {
            self.forward_stop(signo);
        } else {
            info!(
                "{received} received: draining, the app keeps running for --drain-delay {} before it gets {signo}",
                since(self.opts.drain_delay)
            );
            self.phase = Phase::Delaying {
                signal: signo,
                until: Instant::now() + self.opts.drain_delay,
            };
        }
    }

    /// From `now`, the grace window counts from the `nth` stop signal,
    /// `signo` (the SIGKILL line says so).
    fn grace_counts_from(&mut self, now: Instant, signo: Signo, nth: u32) {
        let after = self
            .stop_started
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        self.grace_from = Some((now, GraceFrom::Stop { signo, nth, after }));
    }

    /// Forwards the stop signal and starts the grace period, then what was
    /// held behind it.
    fn forward_stop(&mut self, signo: Signo) {
        let now = Instant::now();
        self.phase = Phase::Draining {
            kill_at: now + self.opts.grace,
        };
        if self.end.is_none() {
            self.grace_counts_from(now, signo, 1);
            self.deliver(signo, true);
            info!(
                "{signo} sent to {}; SIGKILL in --grace {} if it is still running",
                self.whom(),
                since(self.opts.grace)
            );
        }
        if self.opts.group && signo == Signo::TERM {
            self.group_termed = true;
        }
        for (received, signo) in std::mem::take(&mut self.held) {
            self.forward(received, signo);
        }
    }

    /// Sends one signal to the app (its group with `--group`); a stop
    /// signal also continues those of its receivers that are stopped
    /// ([`send_stop`]). Right after another signal, first lets the app take
    /// that one ([`Supervisor::taken`]).
    fn deliver(&mut self, signo: Signo, stop: bool) {
        if let Some((previous, at)) = self.unconfirmed.take() {
            self.taken(previous, at + TAKE_WAIT);
        }
        if stop {
            send_stop(self.target(), signo);
        } else {
            send(self.target(), signo);
        }
        if own_proc() {
            self.unconfirmed = Some((signo, Instant::now()));
        }
    }

    /// Between signals: whether the app has taken the last one yet.
    fn confirm(&mut self) {
        if let Some((signo, at)) = self.unconfirmed {
            if at.elapsed() >= TAKE_WAIT || !self.pending(signo) {
                self.unconfirmed = None;
            }
        }
    }

    /// Before the next of signals that come close together: waits (at
    /// most [`TAKE_WAIT`]) until the app has taken `previous` off its
    /// pending set, so the kernel neither merges two of the same nor
    /// delivers them in number order (it hands a process its pending
    /// standard signals lowest number first) instead of the order kwait
    /// received them. An app that blocks `previous`, or is stopped, for
    /// longer gets the next one anyway: kwait never holds a signal back
    /// for long.
    fn taken(&self, previous: Signo, until: Instant) {
        while Instant::now() < until && self.pending(previous) {
            std::thread::sleep(CONFIRM_EVERY);
        }
    }

    /// Whether `signo` is pending for the app (SigPnd or ShdPnd in its
    /// /proc status). Asked only with kwait's own /proc ([`Supervisor::deliver`]).
    fn pending(&self, signo: Signo) -> bool {
        let Some(bit) = u32::try_from(signo.0 - 1).ok().filter(|b| *b < 64) else {
            return false;
        };
        let text =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        text.lines().any(|l| {
            let mask = l
                .strip_prefix("SigPnd:")
                .or_else(|| l.strip_prefix("ShdPnd:"));
            mask.and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
                .is_some_and(|m| m & (1 << bit) != 0)
        })
    }

    /// Sends one signal to the app. A later stop signal during the drain
    /// (`docker stop` after a Ctrl-C) is forwarded like any other and gives
    /// the app a full --grace from now: kwait never SIGKILLs early because
    /// a second signal came.
    fn forward(&mut self, received: Signo, signo: Signo) {
        if self.end.is_some() {
            // Never signal a reaped pid: it may have been reused. What the
            // app left behind had its one SIGTERM.
            if matches!(received, Signo::TERM | Signo::INT) {
                let first = self.stop_started.map_or(Duration::ZERO, |t| t.elapsed());
                self.unforwarded = Some((received, first));
                if let Phase::Draining { kill_at } = self.phase {
                    info!(
                        "{received} received after the app exited: not forwarded (what it left behind already got SIGTERM); SIGKILL stays at the end of --grace, in {}",
                        since(kill_at.saturating_duration_since(Instant::now()))
                    );
                }
            }
            return;
        }
        let stop = is_stop(received, signo);
        self.deliver(signo, stop);
        if received == signo {
            if signo == Signo::WINCH {
                debug!("forwarded {signo} to {}", self.whom());
            } else {
                info!("forwarded {signo} to {}", self.whom());
            }
        } else {
            info!("rewrote {received} to {signo}, sent to {}", self.whom());
        }
        if let Phase::Draining { kill_at } = self.phase {
            let fresh = Instant::now() + self.opts.grace;
            if stop && fresh > kill_at {
                let sent = if received == signo {
                    String::new()
                } else {
                    format!(" (sent as {signo})")
                };
                info!(
                    "another {received}{sent} during the drain: SIGKILL now in --grace {} if it is still running",
                    since(self.opts.grace)
                );
                self.phase = Phase::Draining { kill_at: fresh };
                self.grace_counts_from(Instant::now(), signo, self.stops.max(2));
            }
        }
    }

    /// Where forwarded signals go: the app's pid, or its group (`--group`).
    fn target(&self) -> i32 {
        if self.opts.group {
            -self.pid.as_raw()
        } else {
            self.pid.as_raw()
        }
    }

    fn whom(&self) -> String {
        if self.opts.group {
            format!("process group {}", self.pid)
        } else {
            format!("pid {}", self.pid)
        }
    }

    /// Reaps every exited child (SIGCHLDs coalesce, so one signal may stand
    /// for many). Returns true when kwait has no children left at all.
    /// libc's waitpid, not nix's: nix cannot represent a death by a
    /// real-time signal and would lose the app's end after reaping it.
    fn reap(&mut self) -> bool {
        loop {
            let mut status = 0;
            // SAFETY: waitpid(2) writes one int to a valid pointer.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid == 0 {
                return false;
            }
            if pid < 0 {
                match Errno::last() {
                    Errno::EINTR => continue,
                    Errno::ECHILD => return true,
                    err => {
                        error!("waitpid failed: {err}");
                        return false;
                    }
                }
            }
            let end = if libc::WIFEXITED(status) {
                ChildEnd::Exited(libc::WEXITSTATUS(status).clamp(0, 255) as u8)
            } else if libc::WIFSIGNALED(status) {
                ChildEnd::Signaled(Signo(libc::WTERMSIG(status)))
            } else {
                continue;
            };
            if pid == self.pid.as_raw() {
                self.main_exited(end);
            } else {
                debug!("reaped pid {pid}, which {end}");
            }
        }
    }

    fn main_exited(&mut self, end: ChildEnd) {
        match self.stop_started {
            Some(t) => info!("app {end} ({} after the stop signal)", since(t.elapsed())),
            None => info!("app {end}"),
        }
        self.end = Some(end);
        self.ended_at = Some(Instant::now());
        if !matches!(self.phase, Phase::Draining { .. }) {
            // The app ended on its own (or during --drain-delay): whatever it
            // left behind gets a fresh grace window.
            self.phase = Phase::Draining {
                kill_at: Instant::now() + self.opts.grace,
            };
            self.grace_from = Some((Instant::now(), GraceFrom::Exit));
        }
    }

    /// The main child is gone but some of its processes are not: each gets
    /// SIGTERM once (and SIGCONT, if it is stopped), and the rest of the
    /// grace window. Listed again on every pass: a process whose parent
    /// exits later comes to kwait then, and gets its SIGTERM then.
    fn after_main_exit(&mut self) {
        let first = !self.remnants_termed;
        self.remnants_termed = true;
        let mut left = self.remnants();
        left.sort_unstable();
        self.termed.retain(|pid| left.binary_search(pid).is_ok());
        left.retain(|pid| self.termed.binary_search(pid).is_err());
        if first {
            info!(
                "{} process(es) left behind by the app: SIGTERM, then SIGKILL after the rest of --grace",
                left.len().max(1)
            );
            if !self.group_termed {
                send_stop(-self.pid.as_raw(), Signo::TERM);
                self.group_termed = true;
            }
        } else if !left.is_empty() {
            info!(
                "{} more process(es) came to kwait: SIGTERM, then SIGKILL at the end of --grace",
                left.len()
            );
        }
        for &pid in &left {
            // A process that already got SIGTERM with its group does not get
            // a second one: many apps read that as "hurry, skip the drain".
            let in_group = nix::unistd::getpgid(Some(Pid::from_raw(pid))) == Ok(self.pid);
            if !in_group {
                send_stop(pid, Signo::TERM);
            }
        }
        self.termed.extend(left);
        self.termed.sort_unstable();
    }

    /// kwait's living children: as PID 1 or a subreaper, every orphan of the
    /// app is one. Listed from /proc; unreaped, so their pids are not reused.
    fn remnants(&self) -> Vec<i32> {
        let mut pids = Vec::new();
        if !own_proc() {
            return pids;
        }
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return pids;
        };
        for task in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
                pids.extend(
                    text.split_whitespace()
                        .filter_map(|p| p.parse::<i32>().ok()),
                );
            }
        }
        pids
    }

    fn kill_all(&mut self) {
        let left = self.remnants();
        error!(
            "SIGKILL to process group {} and kwait's children: {}",
            self.pid,
            self.why_kill(left.len())
        );
        send(-self.pid.as_raw(), Signo::KILL);
        for pid in left {
            send(pid, Signo::KILL);
        }
    }

    /// Why the SIGKILL comes now: who is still running, which `--grace`
    /// ran out counted from what, how long after the first stop signal, and
    /// a later stop signal that reached nobody (it is not the cause).
    fn why_kill(&self, left: usize) -> String {
        let grace = since(self.opts.grace);
        let mut why = if self.end.is_none() {
            format!("the app is still running after --grace {grace}")
        } else {
            format!(
                "{} process(es) still running at the end of --grace {grace}",
                left.max(1)
            )
        };
        let whose = if self.end.is_none() { "it" } else { "the app" };
        match self.grace_from {
            Some((
                _,
                GraceFrom::Stop {
                    signo,
                    nth: 1,
                    after,
                },
            )) => {
                why.push_str(&format!(", counted from the {signo} sent to {whose}"));
                if !self.opts.drain_delay.is_zero() && !after.is_zero() {
                    why.push_str(&format!(
                        " {} after the stop signal (--drain-delay {})",
                        since(after),
                        since(self.opts.drain_delay)
                    ));
                }
            }
            Some((_, GraceFrom::Stop { signo, nth, after })) => why.push_str(&format!(
                ", counted from the {} stop signal ({signo}, {} after the first)",
                ordinal(nth),
                since(after)
            )),
            Some((at, GraceFrom::Exit)) => why.push_str(&format!(
                ", counted from the app's exit {} ago",
                since(at.elapsed())
            )),
            None => {}
        }
        if let Some(t) = self.stop_started {
            let which = if self.stops > 1 { "first " } else { "" };
            why.push_str(&format!(
                "; the {which}stop signal came {} ago",
                since(t.elapsed())
            ));
        }
        if let Some((signo, after)) = self.unforwarded {
            let when = if after.is_zero() {
                String::new()
            } else {
                format!(" that came {} after the first", since(after))
            };
            why.push_str(&format!(
                "; the {signo}{when} reached no one: the app had exited, and what it left behind had its SIGTERM"
            ));
        }
        why
    }

    fn finish_after_kill(mut self) -> Exit {
        let until = Instant::now() + AFTER_KILL;
        while Instant::now() < until {
            if self.reap() && self.end.is_some() {
                break;
            }
            // A process whose parent the SIGKILL just took is adopted by
            // kwait only now: it gets its SIGKILL too.
            for pid in self.remnants() {
                send(pid, Signo::KILL);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        match self.end {
            Some(end) => self.finish(end),
            None => {
                error!("the app (pid {}) did not die after SIGKILL", self.pid);
                Exit::Failed
            }
        }
    }

    fn finish(&self, end: ChildEnd) -> Exit {
        match (self.stop_started, self.ended_at) {
            (Some(t), _) => info!("drained in {}", since(t.elapsed())),
            (None, Some(t)) if self.remnants_termed => info!(
                "what the app left behind was gone {} after it exited",
                since(t.elapsed())
            ),
            _ => {}
        }
        end.exit()
    }
}

#[cfg(test)]
mod tests {
    use super::ordinal;

    #[test]
    fn ordinals() {
        let got: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 112]
            .into_iter()
            .map(ordinal)
            .collect();
        assert_eq!(
            got,
            [
                "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st",
                "112th"
            ]
        );
    }
}
