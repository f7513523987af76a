//! Files the user names (`ca=`, `password-file=`, `config=`,
//! `SSL_CERT_FILE`, `--server-properties`): regular files only, read
//! bounded, with errors that say how the user named them.

use std::io::Read;
use std::path::Path;

/// The most kwait reads of a file the user names: PEM certificates and keys,
/// a password, a client.properties, a server.properties are all far
/// smaller. A bound, so that `ca=/dev/zero` is an error, not an allocation
/// without end (in PID 1).
const MAX_FILE: u64 = 1 << 20;

/// A file the user named, at most [`MAX_FILE`] bytes. `named` is how the
/// user named it (`target 'kafka://…': ca=/x`, `--server-properties /x`),
/// which starts either error; `larger` says what a larger file cannot be.
/// Every user file goes through here, so all are bounded alike.
///
/// Only a regular file is read: a FIFO (`mkfifo`), a pipe or a terminal
/// (`/dev/stdin`) or a device can block a read forever, and kwait reads
/// these files with every signal blocked, so `docker stop` would wait for
/// its SIGKILL. The file is opened non-blocking (opening a FIFO blocks
/// until a writer comes) and its type checked on the open file.
pub fn read(path: &Path, named: &str, larger: &str) -> Result<Vec<u8>, String> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let cannot =
        |e: std::io::Error| format!("{named}: cannot read it ({})", crate::net::describe(&e));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(cannot)?;
    let kind = file.metadata().map_err(cannot)?.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO or pipe"
        } else if kind.is_char_device() {
            "a character device (a terminal, /dev/stdin, /dev/zero)"
        } else if kind.is_block_device() {
            "a block device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(format!(
            "{named}: is {what}: kwait reads only regular files, since a read from \
             anything else can block forever; name the file itself"
        ));
    }
    let mut bytes = Vec::new();
    (&mut file)
        .take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(format!("{named}: larger than 1 MiB, {larger}"));
    }
    Ok(bytes)
}
