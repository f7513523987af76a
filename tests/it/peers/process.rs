//! Processes as the kernel shows them: how a child starts ([`clean_start`],
//! the way a container's first process does) and what /proc says about a
//! pid (children, command name, signal masks, status fields).

use std::process::Command;

/// The kernel's `struct sigaction`, for a raw rt_sigaction(2).
#[repr(C)]
struct RawSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// Makes `cmd` start the way a container's first process does: every signal
/// at its default disposition, none blocked, and no inherited fd >= 3 (they
/// are marked close-on-exec).
///
/// The test process is not such a parent: glibc's posix_spawn (used by
/// nextest and by `Command` without `pre_exec`) leaves its internal signals
/// 32 and 33 ignored, an ignored signal stays ignored across exec, and the
/// test runner may hand down fds of its own. Raw rt_sigaction, because
/// glibc's sigaction refuses 32 and 33.
pub fn clean_start(cmd: &mut Command) {
    clean_start_blocking(cmd, &[]);
}

/// [`clean_start`], but with exactly `blocked` (signal numbers) blocked.
pub fn clean_start_blocking(cmd: &mut Command, blocked: &[i32]) {
    // Built before fork: the closure below must not allocate.
    // SAFETY: sigset operations on a local, zero-initialised set.
    let mask = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &sig in blocked {
            libc::sigaddset(&mut set, sig);
        }
        set
    };
    let reset = move || {
        let dfl = RawSigaction {
            handler: libc::SIG_DFL,
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        for sig in 1..=64 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                // SAFETY: async-signal-safe syscall with a valid struct.
                unsafe {
                    libc::syscall(
                        libc::SYS_rt_sigaction,
                        sig,
                        &dfl as *const RawSigaction,
                        std::ptr::null_mut::<RawSigaction>(),
                        8usize,
                    )
                };
            }
        }
        // SAFETY: sigprocmask, fcntl and close_range: all
        // async-signal-safe, nothing allocated.
        unsafe {
            if libc::sigprocmask(libc::SIG_SETMASK, &mask, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // CLOSE_RANGE_CLOEXEC (Linux 5.11); the loop is the fallback.
            const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
            if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC) != 0 {
                for fd in 3..4096 {
                    let flags = libc::fcntl(fd, libc::F_GETFD);
                    if flags >= 0 {
                        libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
                    }
                }
            }
        }
        Ok(())
    };
    // SAFETY: the closure makes only async-signal-safe calls and allocates
    // nothing.
    unsafe { std::os::unix::process::CommandExt::pre_exec(cmd, reset) };
}

/// The pids `/proc/<pid>/task/*/children` lists: `pid`'s living children
/// and its unreaped zombies. Empty once `pid` is gone.
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// The command name of `pid` (`/proc/<pid>/comm`), empty once it is gone.
pub fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// The signal mask in field `name` (`"SigBlk:"`, `"SigIgn:"`, ...) of
/// `status`, a copy of some `/proc/<pid>/status`; panics if it is missing.
pub fn signal_mask(status: &str, name: &str) -> u64 {
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .unwrap_or_else(|| panic!("no {name} in {status:?}"))
        .trim();
    u64::from_str_radix(hex, 16).unwrap_or_else(|e| panic!("{name} {hex}: {e}"))
}

/// The value of field `name` (e.g. `"NSpid:"`) in `/proc/<pid>/status`.
pub fn status_field(pid: u32, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .map(|v| v.trim().to_owned())
}
