//! `--exec`: replace kwait with COMMAND (execvp), for when another init is
//! PID 1, with kwait's environment minus `KWAIT_KAFKA_PASSWORD`. On success
//! this never returns; on failure the error is mapped to the contract's 127
//! (not found) or 126 (not executable), as in supervised mode.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use nix::libc;
use nix::sys::signal::{SigHandler, Signal};

use crate::exit::Exit;
use crate::log::error;

pub fn replace(command: &[OsString]) -> Exit {
    let Some(program) = command.first() else {
        error!("no COMMAND to run");
        return Exit::Usage;
    };
    let shown = program.to_string_lossy();
    let args = match command
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(args) => args,
        Err(_) => {
            error!("COMMAND has an argument with a NUL byte");
            return Exit::Usage;
        }
    };
    // The SASL password was for kwait's probes; COMMAND does not get it.
    // Built here, not with remove_var: a resolver thread may still run.
    let env = std::env::vars_os()
        .filter(|(key, _)| key != crate::security::PASSWORD_ENV)
        .filter_map(|(key, value)| {
            let mut entry = key.into_vec();
            entry.push(b'=');
            entry.extend_from_slice(value.as_bytes());
            // The environment cannot hold a NUL byte: none is dropped.
            CString::new(entry).ok()
        })
        .collect::<Vec<_>>();
    // Rust's runtime ignores SIGPIPE, and an ignored signal stays ignored
    // across exec: give COMMAND the default back, or it would never die of a
    // closed pipe the way it expects to.
    // SAFETY: SIG_DFL installs no handler, so nothing can run in signal
    // context.
    let _ = unsafe { nix::sys::signal::signal(Signal::SIGPIPE, SigHandler::SigDfl) };
    let err = match nix::unistd::execvpe(&args[0], &args, &env) {
        Ok(never) => match never {},
        Err(err) => err,
    };
    cannot_run(&shown, &std::io::Error::from_raw_os_error(err as i32))
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
                crate::probe::describe(err)
            );
            Exit::Failed
        }
        _ => {
            error!(
                "cannot run '{shown}': {} (check that it is an executable file)",
                crate::probe::describe(err)
            );
            Exit::NotExecutable
        }
    }
}
