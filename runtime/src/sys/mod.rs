//! The crate's one syscall layer. Everything else calls these safe
//! functions; `unsafe` lives here and nowhere else in berth.
//!
//! nix and rustix wrap most calls. What neither has is a raw libc call,
//! wrapped once: clone3 and clone, mount_setattr, keyctl, ioprio_set,
//! sched_setattr, set_mempolicy, close_range, pidfd_send_signal (any
//! signal number), the seccomp and bpf loads, SIOCSIFFLAGS; and the steps a
//! forked child takes on bare fd numbers or without allocating (execve
//! with prebuilt arrays, dup2, write, _exit). The modules:
//! - [`fs`] holds fd-relative file calls, which never follow a path a
//!   symlink could redirect;
//! - [`mount`] the old and the new mount API;
//! - [`clone`] clone3 with CLONE_INTO_CGROUP, falling back to clone(2);
//! - [`proc`] process attributes (scheduling, keyrings, exec, exit);
//! - [`event`] pidfds, timerfd, eventfd, inotify, poll;
//! - [`signal`] dispositions;
//! - [`tty`] pseudo-terminals;
//! - [`bpf`] loading seccomp and cgroup BPF programs;
//! - `entry` the berth binary's entry point, which runs before libc does
//!   (x86-64 glibc and musl).

mod arena;
pub use arena::Arena;
pub(crate) mod bpf;
pub(crate) mod clone;
#[cfg(all(
    target_arch = "x86_64",
    target_os = "linux",
    any(target_env = "gnu", target_env = "musl")
))]
mod entry;
pub(crate) mod event;
mod fs;
mod mount;
pub(crate) mod proc;
pub(crate) mod signal;
pub(crate) mod tty;

pub(crate) use fs::*;
pub(crate) use mount::*;

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

pub(crate) const EMPTY: &CStr = c"";

fn cvt(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

pub(crate) fn cstring(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

pub(crate) fn is_errno(err: &io::Error, errno: libc::c_int) -> bool {
    err.raw_os_error() == Some(errno)
}

/// Take ownership of an fd number the kernel just installed for us (an
/// SCM_RIGHTS message). Fails if nothing holds it.
pub(crate) fn adopt_fd(n: RawFd) -> io::Result<OwnedFd> {
    if n < 0 || !fd_is_open(n) {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: the number is open and the caller's to own from now on: it
    // was handed to this process and nothing else in berth holds it.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

fn fd_is_open(n: RawFd) -> bool {
    // SAFETY: F_GETFD only reads the flags of whatever fd `n` is.
    unsafe { libc::fcntl(n, libc::F_GETFD) >= 0 }
}

/// "/proc/self/fd/N" without a heap allocation: mount(2) and umount2(2) only
/// take paths, and this magic link names exactly the inode behind the fd.
pub(crate) struct ProcFd([u8; 32]);

impl ProcFd {
    pub(crate) fn new(fd: BorrowedFd<'_>) -> Self {
        const PREFIX: &[u8] = b"/proc/self/fd/";
        let mut buf = [0u8; 32];
        buf[..PREFIX.len()].copy_from_slice(PREFIX);
        let mut digits = [0u8; 12];
        let mut n = fd.as_raw_fd() as u32;
        let mut len = 0;
        loop {
            digits[len] = b'0' + (n % 10) as u8;
            len += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for i in 0..len {
            buf[PREFIX.len() + i] = digits[len - 1 - i];
        }
        ProcFd(buf)
    }

    pub(crate) fn as_cstr(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.0).expect("buffer is NUL-terminated")
    }
}

/// Make sure fd `n` is taken: if nothing holds it, put /dev/null there,
/// close-on-exec. Returns whether it was free.
pub(crate) fn plug_fd(n: RawFd) -> io::Result<bool> {
    if fd_is_open(n) {
        return Ok(false);
    }
    // std opens it close-on-exec. The fd is leaked on purpose: it keeps
    // the number taken for as long as the process lives.
    let null = std::fs::File::open("/dev/null")?;
    if null.as_raw_fd() != n {
        // SAFETY: dup3 onto a number nothing holds.
        cvt(unsafe { libc::dup3(null.as_raw_fd(), n, libc::O_CLOEXEC) } as libc::c_long)?;
        return Ok(true);
    }
    std::mem::forget(null);
    Ok(true)
}
