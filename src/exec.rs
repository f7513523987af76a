//! `--exec`: replace kwait with COMMAND (execvp), for when another init is
//! PID 1, with kwait's environment minus `KWAIT_KAFKA_PASSWORD`. On success
//! this never returns; on failure the error is mapped to the contract's 127
//! (not found) or 126 (not executable), as in supervised mode.
//!
//! A "not found" for a file that exists is explained: execve(2) says ENOENT
//! too when the file's `#!` interpreter or its ELF dynamic loader
//! (PT_INTERP) is missing — a CRLF script, a glibc binary in a scratch or
//! busybox image. kwait reads the file's first bytes to say which; it never
//! runs anything to find out.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::os::raw::c_char;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

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
            if crate::secret::for_kwait_only(key.as_bytes()) {
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

    /// execve(2) of `path` with this argv and environment (argv[0] stays
    /// what it is): returns only when it failed.
    pub fn exec_path(&self, path: &std::ffi::CStr) -> std::io::Error {
        // SAFETY: as for `exec`; `path` is NUL-terminated.
        unsafe { libc::execve(path.as_ptr(), self.argv.as_ptr(), self.envp.as_ptr()) };
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
    cannot_run(program, &err)
}

/// The one report of a COMMAND that did not start, for both ways of running
/// it, mapped as a shell does: 127 when it is not there, 126 when it is
/// there but cannot run, 1 when the system had no room to start it (a
/// failed fork: no memory, process limit).
pub fn cannot_run(program: &OsStr, err: &std::io::Error) -> Exit {
    let shown = crate::log::shown(&program.to_string_lossy(), 200);
    // ENOENT for a file that is there: what is missing is what it needs.
    if let (Some(libc::ENOENT), Some(path)) = (err.raw_os_error(), found(program)) {
        let what = if path.as_os_str() == program {
            "the file exists".to_string()
        } else {
            format!("{} exists", crate::log::shown(&path.to_string_lossy(), 200))
        };
        let why = explain(&path, 0).unwrap_or_else(|| {
            "the system cannot find something it needs to start it (its #! interpreter or its dynamic loader)".into()
        });
        error!("cannot run '{shown}': {what}, but {why}");
        return Exit::NotFound;
    }
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

/// The file execvp(3) would have run for `program`: itself when it holds a
/// `/`, else the first regular file of that name in `PATH` (musl's default
/// when unset). `None` when there is none: then "not found" is the truth.
fn found(program: &OsStr) -> Option<PathBuf> {
    let bytes = program.as_bytes();
    if bytes.is_empty() {
        return None;
    }
    let is_file = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.is_file());
    if bytes.contains(&b'/') {
        let path = PathBuf::from(program);
        return is_file(&path).then_some(path);
    }
    let search = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/bin:/usr/bin".into());
    search.as_bytes().split(|&b| b == b':').find_map(|dir| {
        // An empty entry is the current directory, as execvp(3) reads it.
        let dir = if dir.is_empty() { b".".as_slice() } else { dir };
        let path = Path::new(OsStr::from_bytes(dir)).join(program);
        is_file(&path).then_some(path)
    })
}

/// How deep `#!` interpreters may nest: the kernel's own limit
/// (BINPRM_MAX_RECURSION, fs/exec.c).
const MAX_NESTING: u8 = 4;

/// Why execve(2) says ENOENT for `path`, an existing file: the interpreter
/// its `#!` line names, or the dynamic loader its ELF header names, does
/// not exist (or, nested, is itself a file whose interpreter or loader is
/// missing). Reads at most the first 256 bytes (what the kernel reads for
/// `#!`, BINPRM_BUF_SIZE) and the ELF program headers; any file that is
/// not what it claims to be gives `None`, never a panic.
fn explain(path: &Path, depth: u8) -> Option<String> {
    if !std::fs::metadata(path).ok()?.is_file() {
        return None;
    }
    // O_NONBLOCK: a file swapped for a FIFO after the check must not hang.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let mut head = [0u8; 256];
    let n = file.read_at(&mut head, 0).ok()?;
    let head = head.get(..n)?;
    if let Some(line) = head.strip_prefix(b"#!") {
        let line = line.split(|&b| b == b'\n').next().unwrap_or_default();
        let shown = crate::log::shown(&String::from_utf8_lossy(&head[..line.len() + 2]), 120);
        // The kernel's reading: the interpreter is the first word after
        // "#!", ended by a space, a tab or the line's end; a \r is part of it.
        let start = line.iter().position(|&b| b != b' ' && b != b'\t')?;
        let word = &line[start..];
        let end = word
            .iter()
            .position(|&b| b == b' ' || b == b'\t')
            .unwrap_or(word.len());
        let interpreter = Path::new(OsStr::from_bytes(&word[..end]));
        let named = crate::log::shown(&interpreter.to_string_lossy(), 120);
        if std::fs::metadata(interpreter).is_ok() {
            let inner = if depth < MAX_NESTING {
                explain(interpreter, depth + 1)?
            } else {
                return None;
            };
            return Some(format!(
                "its interpreter line '{shown}' names {named}, which exists, but {inner}"
            ));
        }
        let hint = if word[..end].ends_with(b"\r") {
            "the \\r is a Windows line ending: convert the file with dos2unix, or sed -i 's/\\r$//' FILE"
        } else {
            "install it, or correct the #! line"
        };
        return Some(format!(
            "the interpreter on its #! line, '{shown}', does not exist ({hint})"
        ));
    }
    let loader = elf_interpreter(&file, head)?;
    let loader = Path::new(OsStr::from_bytes(&loader));
    if std::fs::metadata(loader).is_ok() {
        return None;
    }
    Some(format!(
        "its dynamic loader {} does not exist (a binary linked against a C library this image lacks, e.g. glibc in a scratch, busybox or Alpine image: link it statically, or use a base image with that library)",
        crate::log::shown(&loader.to_string_lossy(), 120)
    ))
}

/// The PT_INTERP path of an ELF file whose first bytes are `head`: the
/// dynamic loader the kernel starts for it. `None` for anything that is not
/// an ELF with one (a static binary has none), or that is malformed.
fn elf_interpreter(file: &File, head: &[u8]) -> Option<Vec<u8>> {
    if head.get(..4)? != b"\x7fELF" {
        return None;
    }
    let wide = match head.get(4)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let little = match head.get(5)? {
        1 => true,
        2 => false,
        _ => return None,
    };
    let int = |bytes: &[u8], at: usize, len: usize| -> Option<u64> {
        let field = bytes.get(at..at.checked_add(len)?)?;
        let mut value = 0u64;
        for i in 0..len {
            let b = if little { field[len - 1 - i] } else { field[i] };
            value = value << 8 | u64::from(b);
        }
        Some(value)
    };
    // e_phoff, e_phentsize, e_phnum (the System V ABI's ELF header).
    let (phoff, phentsize, phnum) = if wide {
        (
            int(head, 0x20, 8)?,
            int(head, 0x36, 2)?,
            int(head, 0x38, 2)?,
        )
    } else {
        (
            int(head, 0x1c, 4)?,
            int(head, 0x2a, 2)?,
            int(head, 0x2c, 2)?,
        )
    };
    let entry = if wide { 56 } else { 32 };
    if phentsize < entry || phnum > 512 {
        return None;
    }
    let mut header = [0u8; 56];
    let header = header.get_mut(..usize::try_from(entry).ok()?)?;
    for i in 0..phnum {
        file.read_exact_at(header, phoff.checked_add(i.checked_mul(phentsize)?)?)
            .ok()?;
        const PT_INTERP: u64 = 3;
        if int(header, 0, 4)? != PT_INTERP {
            continue;
        }
        let (offset, size) = if wide {
            (int(header, 8, 8)?, int(header, 32, 8)?)
        } else {
            (int(header, 4, 4)?, int(header, 16, 4)?)
        };
        // The kernel refuses a loader path longer than PATH_MAX.
        if size == 0 || size > 4096 {
            return None;
        }
        let mut name = vec![0u8; usize::try_from(size).ok()?];
        file.read_exact_at(&mut name, offset).ok()?;
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        name.truncate(end);
        return Some(name);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{elf_interpreter, explain};
    use std::io::Write;

    fn temp(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("kwait-exec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(bytes)
            .unwrap();
        path
    }

    #[test]
    fn crlf_script_names_its_line() {
        let path = temp("crlf", b"#!/bin/sh\r\necho hi\n");
        let why = explain(&path, 0).unwrap();
        assert!(why.contains("'#!/bin/sh\\r'"), "{why}");
        assert!(why.contains("dos2unix"), "{why}");
    }

    #[test]
    fn garbage_elf_headers_give_none() {
        let path = temp("garbage", b"\x7fELF\x02\x01\x01");
        let file = std::fs::File::open(&path).unwrap();
        assert_eq!(elf_interpreter(&file, b"\x7fELF\x02\x01\x01"), None);
        let mut head = vec![0u8; 64];
        head[..6].copy_from_slice(b"\x7fELF\x02\x01");
        head[0x20..0x28].copy_from_slice(&u64::MAX.to_le_bytes());
        head[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        head[0x38..0x3a].copy_from_slice(&3u16.to_le_bytes());
        assert_eq!(elf_interpreter(&file, &head), None);
        assert_eq!(explain(&path, 0), None);
    }
}
