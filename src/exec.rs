//! `--exec`: replace kwait with COMMAND (execvp), for when another init is
//! PID 1. On success this never returns; on failure the error is mapped to
//! the contract's 127 (not found) or 126 (not executable).

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;

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
    let err = match nix::unistd::execvp(&args[0], &args) {
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
                other.desc().to_lowercase()
            );
            Exit::NotExecutable
        }
    }
}
