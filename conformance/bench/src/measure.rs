//! Spawning a runtime and timing it. The clock runs from just before
//! `spawn` to just after `wait4` returns; the only extra work inside that
//! window is one `pidfd_open` and one `poll` (for the timeout), the same for
//! every runtime.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::time::{Duration, Instant};

/// One finished runtime process.
pub struct Finished {
    pub wall: Duration,
    /// `ru_maxrss` from `wait4` in KiB: the runtime process itself, or the
    /// largest of its waited-for descendants if bigger (Linux semantics).
    pub maxrss_kib: u64,
    pub status: i32,
}

/// Why a spawned process gave no result.
pub enum WaitError {
    Timeout,
    Io(io::Error),
}

/// A spawned process that has not been reaped yet.
pub struct Running {
    pid: libc::pid_t,
    pidfd: OwnedFd,
    started: Instant,
}

pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just handed us this fd and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Blocks until the process behind `pidfd` has exited or `deadline` passes;
/// works for processes that are not our children too.
pub fn poll_exit(pidfd: &OwnedFd, deadline: Instant) -> Result<(), WaitError> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        let mut p = libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, count 1.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        match n {
            1 => return Ok(()),
            0 => return Err(WaitError::Timeout),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(WaitError::Io(e));
                }
            }
        }
    }
}

/// Reaps `pid` (a child) and returns its raw status and `ru_maxrss`.
pub fn wait4(pid: libc::pid_t, flags: i32) -> io::Result<Option<(i32, u64)>> {
    let mut status = 0;
    // SAFETY: rusage is plain old data; wait4 fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid out-pointers for status and rusage.
        let r = unsafe { libc::wait4(pid, &mut status, flags, &mut ru) };
        if r > 0 {
            return Ok(Some((status, ru.ru_maxrss.max(0) as u64)));
        }
        if r == 0 {
            return Ok(None);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

impl Running {
    pub fn spawn(cmd: &mut Command) -> io::Result<Running> {
        let started = Instant::now();
        let child = cmd.spawn()?;
        let pid = child.id() as libc::pid_t;
        // std's Child does not reap on drop; wait4 below does.
        drop(child);
        let pidfd = match pidfd_open(pid) {
            Ok(fd) => fd,
            Err(e) => {
                let _ = wait4(pid, 0);
                return Err(e);
            }
        };
        Ok(Running {
            pid,
            pidfd,
            started,
        })
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    /// Waits until the process exits or `deadline`; on timeout it is
    /// killed and reaped so nothing is left behind.
    pub fn wait(self, deadline: Instant) -> Result<Finished, WaitError> {
        match poll_exit(&self.pidfd, deadline) {
            Ok(()) => {}
            Err(e) => {
                // SAFETY: pidfd_send_signal on our own pidfd.
                unsafe {
                    libc::syscall(
                        libc::SYS_pidfd_send_signal,
                        self.pidfd.as_raw_fd(),
                        libc::SIGKILL,
                        std::ptr::null::<libc::siginfo_t>(),
                        0,
                    )
                };
                let _ = wait4(self.pid, 0);
                return Err(e);
            }
        }
        match wait4(self.pid, 0) {
            Ok(Some((status, maxrss_kib))) => Ok(Finished {
                wall: self.started.elapsed(),
                maxrss_kib,
                status,
            }),
            Ok(None) => Err(WaitError::Io(io::Error::other("wait4 returned no child"))),
            Err(e) => Err(WaitError::Io(e)),
        }
    }
}

/// Describes a raw wait status the way a shell would.
pub fn describe_status(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!("exited {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("wait status {status:#x}")
    }
}

/// Reaps every exited child without blocking. With the bench as child
/// subreaper, container inits and runtime helpers that outlive their parent
/// land here; nobody else would reap them (this host's pid 1 does not).
pub fn reap_strays() {
    while let Ok(Some(_)) = wait4(-1, libc::WNOHANG) {}
}
