//! The exit-code table: the only place kwait's exit numbers appear.
//!
//! The README copies this table; tests assert it. A child's own status is
//! passed through untouched, and a signal N becomes 128+N, the shell's
//! convention that Docker and Kubernetes report too.

use std::process::ExitCode;

use crate::signals::Signo;

/// Why kwait ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// No COMMAND and every target ready; or `probe` with every target ready.
    Ready,
    /// A target was not ready before `--timeout` (the `timeout(1)` convention).
    TimedOut,
    /// A refused or failed step before COMMAND started; `probe` with a target not ready.
    Failed,
    /// Bad flags, environment or target syntax.
    Usage,
    /// COMMAND exists but cannot be executed.
    NotExecutable,
    /// COMMAND was not found.
    NotFound,
    /// kwait itself was stopped by this signal before COMMAND started.
    Signaled(Signo),
    /// The child exited with this status.
    Child(u8),
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Ready => 0,
            Exit::TimedOut => 124,
            Exit::Failed => 1,
            Exit::Usage => 2,
            Exit::NotExecutable => 126,
            Exit::NotFound => 127,
            // Signal numbers on Linux are 1..=64, so 128+N fits in a u8;
            // anything else is clamped rather than wrapped.
            Exit::Signaled(Signo(n)) => u8::try_from(128 + n.clamp(0, 127)).unwrap_or(255),
            Exit::Child(n) => n,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        assert_eq!(Exit::Ready.code(), 0);
        assert_eq!(Exit::Failed.code(), 1);
        assert_eq!(Exit::Usage.code(), 2);
        assert_eq!(Exit::TimedOut.code(), 124);
        assert_eq!(Exit::NotExecutable.code(), 126);
        assert_eq!(Exit::NotFound.code(), 127);
        assert_eq!(Exit::Signaled(Signo::TERM).code(), 143);
        assert_eq!(Exit::Signaled(Signo::INT).code(), 130);
        assert_eq!(Exit::Child(42).code(), 42);
    }
}
