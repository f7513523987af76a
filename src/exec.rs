//! `--exec`: replace kwait with COMMAND (execvp), for when another init is
//! PID 1, with kwait's environment minus `KWAIT_KAFKA_PASSWORD`. On success
//! this never returns; on failure the error is mapped to the contract's 127
//! (not found) or 126 (not executable).

use std::ffi::{CString, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use nix::errno::Errno;
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
    match err {
        Errno::ENOENT | Errno::ENOTDIR => {
            error!("cannot run '{shown}': not found (check COMMAND and PATH)");
            Exit::NotFound
        }
        other => {
            error!(
                "cannot run '{shown}': {} (check that it is an executable file)",
                other.desc().to_ascii_lowercase()
            );
            Exit::NotExecutable
        }
    }
}
