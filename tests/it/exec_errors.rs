//! COMMAND that exists but cannot start because something it needs is
//! missing: execve(2) says ENOENT for a file whose `#!` interpreter or ELF
//! dynamic loader (PT_INTERP) does not exist. kwait must say that the file
//! exists and name what is missing, supervised and with `--exec` alike,
//! with the shell's 127.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::peers::{kwait_with, run, Done, TempDir};

const LIMIT: Duration = Duration::from_secs(30);

fn executable(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write test file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// `kwait [--exec] -- COMMAND`, supervised and with `--exec`, with `PATH`
/// as given (or inherited).
fn both(command: &str, path: Option<&str>) -> [Done; 2] {
    let env: Vec<(&str, &str)> = path.map(|p| ("PATH", p)).into_iter().collect();
    [
        run(&mut kwait_with(&["--", command], &env), LIMIT),
        run(&mut kwait_with(&["--exec", "--", command], &env), LIMIT),
    ]
}

/// A tiny x86-64 ELF executable with one program header, PT_INTERP naming
/// `loader`: all the kernel reads before it looks for the loader.
fn elf_with_loader(loader: &str) -> Vec<u8> {
    let mut interp = loader.as_bytes().to_vec();
    interp.push(0);
    let mut elf = Vec::new();
    elf.extend(b"\x7fELF\x02\x01\x01\x00");
    elf.extend([0u8; 8]);
    elf.extend(2u16.to_le_bytes()); // ET_EXEC
    elf.extend(62u16.to_le_bytes()); // EM_X86_64
    elf.extend(1u32.to_le_bytes());
    elf.extend(0x40_0000u64.to_le_bytes()); // e_entry
    elf.extend(64u64.to_le_bytes()); // e_phoff
    elf.extend(0u64.to_le_bytes()); // e_shoff
    elf.extend(0u32.to_le_bytes());
    elf.extend(64u16.to_le_bytes()); // e_ehsize
    elf.extend(56u16.to_le_bytes()); // e_phentsize
    elf.extend(1u16.to_le_bytes()); // e_phnum
    elf.extend([0u8; 6]);
    assert_eq!(elf.len(), 64);
    elf.extend(3u32.to_le_bytes()); // PT_INTERP
    elf.extend(4u32.to_le_bytes());
    elf.extend(120u64.to_le_bytes()); // p_offset
    elf.extend([0u8; 16]);
    elf.extend((interp.len() as u64).to_le_bytes());
    elf.extend((interp.len() as u64).to_le_bytes());
    elf.extend(1u64.to_le_bytes());
    assert_eq!(elf.len(), 120);
    elf.extend(interp);
    elf
}

/// A script saved with Windows line endings: the kernel looks for
/// `/bin/sh\r`. Named with the \r visible, and the fix.
#[test]
fn crlf_script_names_its_interpreter_line() {
    let dir = TempDir::new("crlf");
    let script = executable(dir.path(), "app.sh", b"#!/bin/sh\r\necho hi\r\n");
    let shown = script.display().to_string();
    for done in both(&shown, None) {
        done.expect(
            127,
            &[
                &format!("kwait: cannot run '{shown}': the file exists, but the interpreter on its #! line, '#!/bin/sh\\r', does not exist"),
                "a Windows line ending",
                "dos2unix",
            ],
        );
    }
    // Found through PATH: the file it found is named.
    let path = format!("{}:/usr/bin:/bin", dir.path().display());
    for done in both("app.sh", Some(&path)) {
        done.expect(
            127,
            &[&format!(
                "kwait: cannot run 'app.sh': {shown} exists, but the interpreter on its #! line, '#!/bin/sh\\r', does not exist"
            )],
        );
    }
}

/// A dynamically linked binary whose loader is not in the image (glibc's
/// ld-linux in a scratch or busybox image): the loader is named, also when
/// the binary is a script's interpreter.
#[test]
fn missing_dynamic_loader_is_named() {
    let dir = TempDir::new("noloader");
    let loader = "/nonexistent/ld-kwait-test.so.2";
    let binary = executable(dir.path(), "app", &elf_with_loader(loader));
    let shown = binary.display().to_string();
    for done in both(&shown, None) {
        done.expect(
            127,
            &[
                &format!("kwait: cannot run '{shown}': the file exists, but its dynamic loader {loader} does not exist"),
                "link it statically",
            ],
        );
    }
    let script = executable(
        dir.path(),
        "wrapper.sh",
        format!("#!{shown} -x\n").as_bytes(),
    );
    let wrapper = script.display().to_string();
    for done in both(&wrapper, None) {
        done.expect(
            127,
            &[&format!(
                "kwait: cannot run '{wrapper}': the file exists, but its interpreter line '#!{shown} -x' names {shown}, which exists, but its dynamic loader {loader} does not exist"
            )],
        );
    }
}
