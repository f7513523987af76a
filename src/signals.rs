//! The signals kwait handles, blocked at the top of `main` and read through a
//! signalfd.
//!
//! As PID 1 the kernel drops any signal that has no handler, so a signal
//! that arrives before a handler exists is lost (research/init-anchors.md).
//! Blocking first, before any thread or runtime starts, keeps every signal
//! pending until kwait reads it; threads created later inherit the mask.
//! The mask is restored before COMMAND runs. This module does not forward
//! signals to a child: that is the supervisor's job.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// Signals that end kwait while it waits (128+N), so that `docker stop`
/// and Ctrl-C work even when kwait is PID 1.
pub const STOPPING: [Signal; 4] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

pub struct Signals {
    fd: SignalFd,
    /// The mask kwait inherited, given back to COMMAND.
    inherited: SigSet,
}

impl Signals {
    /// Blocks [`STOPPING`] for the whole process and opens a signalfd for
    /// them (non-blocking, close-on-exec).
    pub fn block() -> nix::Result<Signals> {
        let mut set = SigSet::empty();
        for signal in STOPPING {
            set.add(signal);
        }
        let mut inherited = SigSet::empty();
        nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut inherited))?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        Ok(Signals { fd, inherited })
    }

    /// The next pending signal, if any; never blocks.
    pub fn pending(&self) -> Option<Signal> {
        match self.fd.read_signal() {
            Ok(Some(info)) => Signal::try_from(info.ssi_signo as i32).ok(),
            _ => None,
        }
    }

    /// Gives the calling thread back the mask kwait started with, so COMMAND
    /// starts with the signal state its parent meant it to have.
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
