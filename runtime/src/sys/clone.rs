//! Making processes: clone3 (with CLONE_INTO_CGROUP), clone(2) when clone3
//! is refused, and plain fork.
//!
//! Every caller is single-threaded: the CLI never starts a thread before it
//! clones, and the shim runs berth in a helper it forked before its own
//! threads. The child therefore gets a consistent copy of the heap and of
//! every lock, which is what makes these forks sound.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::sched::CloneFlags;

#[repr(C)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// A new process. `pid` is 0 in the child.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cloned {
    pub pid: i32,
    /// The child was born in the cgroup given to [`clone`]. False when
    /// clone3 was refused and clone(2) made it instead: then it is in its
    /// parent's cgroup and must be moved.
    pub in_cgroup: bool,
}

/// clone3 with namespace flags, born in `cgroup` (a cgroup2 directory) if
/// given: a fork otherwise. Returns 0 in the child.
pub(crate) fn clone3(flags: CloneFlags, cgroup: Option<BorrowedFd<'_>>) -> io::Result<i32> {
    let mut args = CloneArgs {
        flags: flags.bits() as u32 as u64,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: 0,
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: without CLONE_VM clone3 behaves as fork, on a single-threaded
    // caller (see the module comment).
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    super::cvt(r).map(|pid| pid as i32)
}

/// clone(2) with namespace flags and no new stack: fork with namespaces.
fn clone2(flags: CloneFlags) -> io::Result<i32> {
    let flags = flags.bits() as u32 as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: as for clone3. A null stack makes the child run on a copy of
    // ours, as after fork. The tid pointers and tls are unused without
    // the flags that ask for them.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::pid_t>(),
            std::ptr::null_mut::<libc::pid_t>(),
            0 as libc::c_ulong,
        )
    };
    super::cvt(r).map(|pid| pid as i32)
}

/// clone3 was refused as a call, not for what it asked: the kernel predates
/// it (ENOSYS) or a seccomp profile around berth blocks it (ENOSYS or
/// EPERM, as Docker's and older libseccomp profiles do).
fn refused(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM))
}

/// clone3 into `cgroup`, or, where clone3 is refused, clone(2), which
/// cannot place the child in a cgroup: the caller must then move it
/// (`in_cgroup` is false). A genuine EPERM (a namespace the caller may not
/// create) fails clone(2) as well and is reported from there.
pub(crate) fn clone(flags: CloneFlags, cgroup: Option<BorrowedFd<'_>>) -> io::Result<Cloned> {
    match clone3(flags, cgroup) {
        Ok(pid) => Ok(Cloned {
            pid,
            in_cgroup: cgroup.is_some(),
        }),
        Err(e) if refused(&e) => Ok(Cloned {
            pid: clone2(flags)?,
            in_cgroup: false,
        }),
        Err(e) => Err(e),
    }
}

/// fork(2). Returns 0 in the child.
pub(crate) fn fork() -> io::Result<i32> {
    // SAFETY: single-threaded caller (see the module comment).
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => Ok(0),
        nix::unistd::ForkResult::Parent { child } => Ok(child.as_raw()),
    }
}
