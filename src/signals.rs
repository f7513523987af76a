//! Every signal kwait can block, blocked at the top of `main` and read
//! through one signalfd.
//!
//! As PID 1 the kernel drops any signal that has no handler, so a signal that
//! arrives before kwait is ready for it would be lost
//! (research/init-anchors.md §5). Blocking first, before any thread or
//! runtime starts, keeps every signal pending until kwait reads it; threads
//! created later inherit the mask. Faults in kwait itself still kill it: the
//! kernel unblocks a synchronous SIGSEGV/SIGBUS/SIGILL/SIGFPE it raises.
//!
//! The mask is every bit of the kernel's 64-signal set, set with the raw
//! system calls: libc's `sigfillset` leaves out the signals it keeps for
//! itself (32-34 on musl, 32-33 on glibc), and one of those, sent with
//! `kill`, would otherwise end kwait with its default action and orphan the
//! app. kwait uses none of the libc features behind them (thread
//! cancellation, `setuid` across threads, timer threads).
//! This module only reads signals; deciding what each one means is the wait
//! loop's and the supervisor's job.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use nix::libc;
use nix::sys::signal::Signal;

/// A signal number as the kernel delivered it, real-time ones included
/// (which `nix::sys::signal::Signal` cannot represent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signo(pub i32);

/// Real-time signal numbers as `kill -l`, bash, procps and Docker name
/// them (glibc's SIGRTMIN is 34), whichever libc kwait is built with: musl
/// says 35, and `RTMIN+1` must mean the same signal in `--rewrite`, in
/// kwait's logs and in `docker kill -s`.
const RTMIN: i32 = 34;
const RTMAX: i32 = 64;

impl Signo {
    pub const TERM: Signo = Signo(libc::SIGTERM);
    pub const INT: Signo = Signo(libc::SIGINT);
    pub const HUP: Signo = Signo(libc::SIGHUP);
    pub const QUIT: Signo = Signo(libc::SIGQUIT);
    pub const CHLD: Signo = Signo(libc::SIGCHLD);
    pub const KILL: Signo = Signo(libc::SIGKILL);
    pub const CONT: Signo = Signo(libc::SIGCONT);
    pub const TTIN: Signo = Signo(libc::SIGTTIN);
    pub const TTOU: Signo = Signo(libc::SIGTTOU);
    pub const WINCH: Signo = Signo(libc::SIGWINCH);

    /// Signals that end kwait while it waits (128+N): `docker stop`, Ctrl-C,
    /// a closed terminal, Ctrl-\.
    pub fn stops_waiting(self) -> bool {
        matches!(self, Signo::TERM | Signo::INT | Signo::HUP | Signo::QUIT)
    }

    /// Parses `TERM`, `SIGTERM`, `term`, `15`, `RTMIN+2`, `RTMAX-1`; `0` is
    /// "none".
    pub fn parse(s: &str) -> Option<Signo> {
        let upper = s.trim().to_ascii_uppercase();
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        if let Ok(n) = name.parse::<i32>() {
            return (0..=RTMAX).contains(&n).then_some(Signo(n));
        }
        for (base, prefix, sign) in [(RTMIN, "RTMIN", '+'), (RTMAX, "RTMAX", '-')] {
            let Some(rest) = name.strip_prefix(prefix) else {
                continue;
            };
            let offset = match rest.strip_prefix(sign) {
                // Unsigned and checked: `RTMIN+-100` and `RTMIN+2147483647`
                // are not signals.
                Some(n) => i32::try_from(n.parse::<u32>().ok()?).ok()?,
                None if rest.is_empty() => 0,
                None => return None,
            };
            let n = if sign == '+' {
                base.checked_add(offset)?
            } else {
                base - offset
            };
            return (RTMIN..=RTMAX).contains(&n).then_some(Signo(n));
        }
        format!("SIG{name}")
            .parse::<Signal>()
            .ok()
            .map(|s| Signo(s as i32))
    }
}

impl fmt::Display for Signo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Signal::try_from(self.0) {
            Ok(signal) => f.write_str(signal.as_str()),
            Err(_) if self.0 >= RTMIN => write!(f, "SIGRTMIN+{}", self.0 - RTMIN),
            Err(_) => write!(f, "signal {}", self.0),
        }
    }
}

pub struct Signals {
    fd: OwnedFd,
    /// The mask kwait inherited, given back to COMMAND under `--exec`.
    inherited: KernelSet,
}

/// The kernel's signal set: bit N-1 for signal N, signals 1 to 64.
type KernelSet = u64;

/// `rt_sigprocmask(2)` itself, with no libc filtering of its reserved signals.
fn sigprocmask(how: libc::c_int, set: &KernelSet, old: &mut KernelSet) -> io::Result<()> {
    // SAFETY: both pointers are valid for the 8 bytes the kernel reads and
    // writes (its sigset size on x86_64).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            how,
            set as *const KernelSet,
            old as *mut KernelSet,
            std::mem::size_of::<KernelSet>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

impl Signals {
    /// Blocks every signal for the whole process (SIGKILL and SIGSTOP cannot
    /// be) and opens a non-blocking, close-on-exec signalfd for them.
    pub fn block() -> io::Result<Signals> {
        let all: KernelSet = !0;
        let mut inherited = 0;
        sigprocmask(libc::SIG_BLOCK, &all, &mut inherited)?;
        // SAFETY: `all` is valid for the 8 bytes the kernel reads.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_signalfd4,
                -1,
                &all as *const KernelSet,
                std::mem::size_of::<KernelSet>(),
                libc::SFD_NONBLOCK | libc::SFD_CLOEXEC,
            )
        };
        let fd = RawFd::try_from(fd)
            .ok()
            .filter(|fd| *fd >= 0)
            .ok_or_else(io::Error::last_os_error)?;
        // SAFETY: the kernel just returned this new descriptor; nothing else
        // owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Signals { fd, inherited })
    }

    /// The next pending signal, if any; never blocks. Signals kwait raised
    /// itself are dropped: a SIGPIPE from writing to a closed stderr (or a
    /// SIGXFSZ) is about kwait's own output, not a message for the app. So
    /// is the kernel's SIGCHLD about one of kwait's children (a SIGCHLD
    /// someone sent with `kill` is kept): the reaper learns of those by
    /// `waitpid`, not by a signal.
    pub fn pending(&self) -> Option<Signo> {
        loop {
            // SAFETY: an all-zero signalfd_siginfo is a valid value.
            let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
            let size = std::mem::size_of::<libc::signalfd_siginfo>();
            // SAFETY: `info` is valid for `size` bytes of writes.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    &mut info as *mut libc::signalfd_siginfo as *mut libc::c_void,
                    size,
                )
            };
            if usize::try_from(n).ok() != Some(size) {
                return None;
            }
            let signo = i32::try_from(info.ssi_signo).unwrap_or(0);
            if let Some(signo) = received(signo, info.ssi_code, info.ssi_pid as i32) {
                return Some(signo);
            }
        }
    }

    /// Waits up to `timeout` for a signal, taking it off the pending set in
    /// one system call (`rt_sigtimedwait`, as tini does: the shortest path
    /// from a signal to its forwarding). `None`: the time ran out, or what
    /// arrived was for kwait alone (see [`Signals::pending`]): either way,
    /// time for a reap pass.
    pub fn next(&self, timeout: Duration) -> Option<Signo> {
        let all: KernelSet = !0;
        let ts = libc::timespec {
            // At most i32::MAX seconds: fits every libc's time_t.
            tv_sec: timeout.as_secs().min(i32::MAX as u64) as _,
            tv_nsec: timeout.subsec_nanos().into(),
        };
        // SAFETY: an all-zero siginfo_t is a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: every pointer is valid for what the kernel reads or
        // writes: 8 bytes of set, one siginfo_t, one timespec.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_rt_sigtimedwait,
                &all as *const KernelSet,
                &mut info as *mut libc::siginfo_t,
                &ts as *const libc::timespec,
                std::mem::size_of::<KernelSet>(),
            )
        };
        let signo = i32::try_from(rc).ok().filter(|n| *n > 0)?;
        // SAFETY: si_pid is the sender's pid for signals from kill(2) and
        // the child's for SIGCHLD; for other codes it reads bytes the
        // kernel zeroed or filled, never uninitialised memory.
        let pid = unsafe { info.si_pid() };
        received(signo, info.si_code, pid)
    }

    /// Gives the calling thread back the mask kwait started with.
    pub fn restore_mask(&self) -> io::Result<()> {
        sigprocmask(libc::SIG_SETMASK, &self.inherited, &mut 0)
    }
}

/// Whether a signal is one to act on: not raised by kwait itself, and not
/// the kernel's SIGCHLD notice about a child (codes CLD_*, all above 0;
/// `kill` and `sigqueue` give SI_USER, SI_QUEUE, at most 0).
fn received(signo: i32, code: i32, pid: i32) -> Option<Signo> {
    if signo <= 0 || u32::try_from(pid).ok() == Some(std::process::id()) {
        return None;
    }
    if signo == libc::SIGCHLD && code > 0 {
        return None;
    }
    Some(Signo(signo))
}

impl AsRawFd for Signals {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsRawFd for &Signals {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for Signals {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(Signo::parse("TERM"), Some(Signo::TERM));
        assert_eq!(Signo::parse("sigquit"), Some(Signo::QUIT));
        assert_eq!(Signo::parse("15"), Some(Signo::TERM));
        assert_eq!(Signo::parse("0"), Some(Signo(0)));
        assert_eq!(Signo::parse("RTMIN+1"), Some(Signo(RTMIN + 1)));
        let last = RTMAX - RTMIN;
        assert_eq!(Signo::parse(&format!("RTMIN+{last}")), Some(Signo(RTMAX)));
        for bad in [
            "RTMIN+-100",
            "RTMIN+-1",
            "RTMIN+2147483647",
            "RTMIN+4294967295",
            "RTMIN+99999999999",
            &format!("RTMIN+{}", last + 1),
        ] {
            assert_eq!(Signo::parse(bad), None, "{bad}");
        }
        assert_eq!(Signo::parse("NOPE"), None);
        assert_eq!(Signo::parse("999"), None);
        assert_eq!(Signo::TERM.to_string(), "SIGTERM");
        assert_eq!(Signo(RTMIN + 2).to_string(), "SIGRTMIN+2");
        // The numbers of `kill -l` and Docker, also in a musl build.
        assert_eq!(Signo::parse("RTMIN+1"), Some(Signo(35)));
        assert_eq!(Signo::parse("SIGRTMAX-2"), Some(Signo(62)));
        assert_eq!(Signo::parse("RTMAX"), Some(Signo(64)));
        assert_eq!(Signo::parse("RTMAX-31"), None);
        assert_eq!(Signo(35).to_string(), "SIGRTMIN+1");
        assert_eq!(Signo(32).to_string(), "signal 32");
    }
}
