//! Every signal kwait can block, blocked at the top of `main` and read
//! through one signalfd.
//!
//! As PID 1 the kernel drops any signal that has no handler, so a signal that
//! arrives before kwait is ready for it would be lost
//! (research/init-anchors.md §5). Blocking first, before any thread or
//! runtime starts, keeps every signal pending until kwait reads it; threads
//! created later inherit the mask. Faults in kwait itself still kill it: the
//! kernel unblocks a synchronous SIGSEGV/SIGBUS/SIGILL/SIGFPE it raises.
//! This module only reads signals; deciding what each one means is the wait
//! loop's and the supervisor's job.

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use nix::libc;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// A signal number as the kernel delivered it, real-time ones included
/// (which `nix::sys::signal::Signal` cannot represent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signo(pub i32);

impl Signo {
    pub const TERM: Signo = Signo(libc::SIGTERM);
    pub const INT: Signo = Signo(libc::SIGINT);
    pub const HUP: Signo = Signo(libc::SIGHUP);
    pub const QUIT: Signo = Signo(libc::SIGQUIT);
    pub const CHLD: Signo = Signo(libc::SIGCHLD);
    pub const KILL: Signo = Signo(libc::SIGKILL);
    pub const TTIN: Signo = Signo(libc::SIGTTIN);
    pub const TTOU: Signo = Signo(libc::SIGTTOU);
    pub const WINCH: Signo = Signo(libc::SIGWINCH);

    /// Signals that end kwait while it waits (128+N): `docker stop`, Ctrl-C,
    /// a closed terminal, Ctrl-\.
    pub fn stops_waiting(self) -> bool {
        matches!(self, Signo::TERM | Signo::INT | Signo::HUP | Signo::QUIT)
    }

    /// Parses `TERM`, `SIGTERM`, `term`, `15`, `RTMIN+2`; `0` is "none".
    pub fn parse(s: &str) -> Option<Signo> {
        let upper = s.trim().to_ascii_uppercase();
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        if let Ok(n) = name.parse::<i32>() {
            return (0..=libc::SIGRTMAX()).contains(&n).then_some(Signo(n));
        }
        if let Some(rest) = name.strip_prefix("RTMIN") {
            let offset = match rest.strip_prefix('+') {
                // Unsigned and checked: `RTMIN+-100` and `RTMIN+2147483647`
                // are not signals.
                Some(n) => i32::try_from(n.parse::<u32>().ok()?).ok()?,
                None if rest.is_empty() => 0,
                None => return None,
            };
            let n = libc::SIGRTMIN().checked_add(offset)?;
            return (n <= libc::SIGRTMAX()).then_some(Signo(n));
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
            Err(_) if self.0 >= libc::SIGRTMIN() => {
                write!(f, "SIGRTMIN+{}", self.0 - libc::SIGRTMIN())
            }
            Err(_) => write!(f, "signal {}", self.0),
        }
    }
}

pub struct Signals {
    fd: SignalFd,
    /// The mask kwait inherited, given back to COMMAND under `--exec`.
    inherited: SigSet,
}

impl Signals {
    /// Blocks every signal for the whole process (SIGKILL and SIGSTOP cannot
    /// be) and opens a non-blocking, close-on-exec signalfd for them.
    pub fn block() -> nix::Result<Signals> {
        let all = SigSet::all();
        let mut inherited = SigSet::empty();
        nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&all), Some(&mut inherited))?;
        let fd = SignalFd::with_flags(&all, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        Ok(Signals { fd, inherited })
    }

    /// The next pending signal, if any; never blocks.
    pub fn pending(&self) -> Option<Signo> {
        match self.fd.read_signal() {
            Ok(Some(info)) => i32::try_from(info.ssi_signo).ok().map(Signo),
            _ => None,
        }
    }

    /// Waits up to `timeout` for a signal.
    pub fn next(&self, timeout: Duration) -> Option<Signo> {
        if let Some(signo) = self.pending() {
            return Some(signo);
        }
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        // EINTR cannot happen with every signal blocked, but is harmless:
        // the caller loops.
        let _ = poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        );
        self.pending()
    }

    /// Gives the calling thread back the mask kwait started with.
    pub fn restore_mask(&self) -> nix::Result<()> {
        nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.inherited), None)
    }
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
        assert_eq!(Signo::parse("RTMIN+1"), Some(Signo(libc::SIGRTMIN() + 1)));
        let last = libc::SIGRTMAX() - libc::SIGRTMIN();
        assert_eq!(
            Signo::parse(&format!("RTMIN+{last}")),
            Some(Signo(libc::SIGRTMAX()))
        );
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
        assert_eq!(Signo(libc::SIGRTMIN() + 2).to_string(), "SIGRTMIN+2");
    }
}
