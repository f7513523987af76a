//! `--exec`: replace kwait with COMMAND (execvp), for when another init is
//! PID 1, with kwait's environment minus `KWAIT_KAFKA_PASSWORD`. On success
//! this never returns; on failure the error is mapped to the contract's 127
//! (not found) or 126 (not executable), as in supervised mode.

use std::ffi::{CString, OsString};
use std::os::raw::c_char;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use nix::libc;
use nix::sys::signal::{SigHandler, Signal};

use crate::exit::Exit;
use crate::log::error;

/// COMMAND's argv and environment as execvpe(3) takes them, built before any
/// fork: the child of a fork may not allocate. The environment is kwait's
/// own minus the SASL password, which was for kwait's probes (the app has
/// its own); built here, not with remove_var, as a resolver thread may still
/// run.
pub struct Prepared {
    /// Owns the bytes the pointers below point into.
    _strings: Vec<CString>,
    argv: Vec<*const c_char>,
    envp: Vec<*const c_char>,
}

// SAFETY: the pointers point into `_strings`, owned by the same value and
// never changed after `new`; they are only read.
unsafe impl Send for Prepared {}
// SAFETY: as for Send: shared access only reads.
unsafe impl Sync for Prepared {}

impl Prepared {
    /// `None` when an argument holds a NUL byte (argv from the kernel
    /// cannot; `KWAIT_*` parsing could).
    pub fn new(command: &[OsString]) -> Option<Prepared> {
        let mut strings = Vec::new();
        for arg in command {
            strings.push(CString::new(arg.as_bytes()).ok()?);
        }
        let argc = strings.len();
        for (key, value) in std::env::vars_os() {
            if key == crate::security::PASSWORD_ENV {
                continue;
            }
            let mut entry = key.into_vec();
            entry.push(b'=');
            entry.extend_from_slice(value.as_bytes());
            // The environment cannot hold a NUL byte: none is dropped.
            strings.extend(CString::new(entry).ok());
        }
        let end = [std::ptr::null()];
        let argv = strings[..argc]
            .iter()
            .map(|s| s.as_ptr())
            .chain(end)
            .collect();
        let envp = strings[argc..]
            .iter()
            .map(|s| s.as_ptr())
            .chain(end)
            .collect();
        Some(Prepared {
            _strings: strings,
            argv,
            envp,
        })
    }

    /// execvpe(3): returns only when it failed, with why. Async-signal-safe
    /// (no allocation), so it may run between fork and exec.
    pub fn exec(&self) -> std::io::Error {
        // SAFETY: both arrays are NUL-terminated arrays of pointers to
        // NUL-terminated strings that live as long as `self`.
        unsafe { libc::execvpe(self.argv[0], self.argv.as_ptr(), self.envp.as_ptr()) };
        std::io::Error::last_os_error()
    }
}

pub fn replace(command: &[OsString]) -> Exit {
    let Some(program) = command.first() else {
        error!("no COMMAND to run");
        return Exit::Usage;
    };
    let Some(prepared) = Prepared::new(command) else {
        error!("COMMAND has an argument with a NUL byte");
        return Exit::Usage;
    };
    // Rust's runtime ignores SIGPIPE, and an ignored signal stays ignored
    // across exec: give COMMAND the default back, or it would never die of a
    // closed pipe the way it expects to.
    // SAFETY: SIG_DFL installs no handler, so nothing can run in signal
    // context.
    let _ = unsafe { nix::sys::signal::signal(Signal::SIGPIPE, SigHandler::SigDfl) };
    let err = prepared.exec();
    cannot_run(&program.to_string_lossy(), &err)
}

/// The one report of a COMMAND that did not start, for both ways of running
/// it, mapped as a shell does: 127 when it is not there, 126 when it is
/// there but cannot run, 1 when the system had no room to start it (a
/// failed fork: no memory, process limit).
pub fn cannot_run(shown: &str, err: &std::io::Error) -> Exit {
    let shown = crate::log::shown(shown, 200);
    match err.raw_os_error() {
        Some(libc::ENOENT | libc::ENOTDIR) => {
            error!("cannot run '{shown}': not found (check COMMAND and PATH)");
            Exit::NotFound
        }
        Some(libc::EAGAIN | libc::ENOMEM) => {
            error!(
                "cannot start '{shown}': {} (process or memory limits)",
                crate::net::describe(err)
            );
            Exit::Failed
        }
        _ => {
            error!(
                "cannot run '{shown}': {} (check that it is an executable file)",
                crate::net::describe(err)
            );
            Exit::NotExecutable
        }
    }
}
