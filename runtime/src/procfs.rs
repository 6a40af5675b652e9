//! The init's private procfs: every write it makes under /proc (its
//! /proc/self files, sysctls, LSM attributes) and its reopening of the exec
//! fifo go through it, never through the "/proc" path. In a mount namespace
//! the config joins, /proc is the container's and may be a plain directory
//! or hold symlinks and mounts that redirect those writes to any file (the
//! CVE-2025-52881 class).

use std::ffi::{CStr, OsStr};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::sys;

#[derive(Debug, thiserror::Error)]
pub enum ProcfsError {
    #[error("open a procfs at /proc: {0}")]
    Open(#[source] io::Error),
    #[error("invalid /proc: not the root of a procfs; refusing to write to /proc through it")]
    NotProcfs,
}

/// A procfs of our own (see the module doc). A fresh fsopen'd instance has
/// no overmounts at all; where that is refused (an old kernel, or a user
/// namespace that does not own our pid namespace) a non-recursive clone of
/// /proc drops its overmounts, and plain /proc is the last resort. Whatever
/// the way, the result must be a procfs root.
pub fn private() -> Result<OwnedFd, ProcfsError> {
    let fresh = || -> io::Result<OwnedFd> {
        let fs = sys::fsopen(c"proc")?;
        sys::fsconfig_create(fs.as_fd())?;
        sys::fsmount(
            fs.as_fd(),
            libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOEXEC,
        )
    };
    let fd = fresh()
        .or_else(|_| {
            sys::open_tree(
                sys::CWD,
                c"/proc",
                libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC,
            )
        })
        .or_else(|_| {
            sys::openat(
                sys::CWD,
                c"/proc",
                libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
            )
        })
        .map_err(ProcfsError::Open)?;
    if !fd_is_root(fd.as_fd()).map_err(ProcfsError::Open)? {
        return Err(ProcfsError::NotProcfs);
    }
    Ok(fd)
}

fn fd_is_root(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // procfs gives its root inode number 1.
    Ok(sys::fstatfs_type(fd)? == sys::PROC_MAGIC && sys::fstat(fd)?.st_ino == 1)
}

/// Whether `path` (followed) is the root of a procfs.
pub(crate) fn is_root(path: &CStr) -> bool {
    sys::openat(sys::CWD, path, libc::O_PATH | libc::O_DIRECTORY, 0)
        .and_then(|fd| fd_is_root(fd.as_fd()))
        .unwrap_or(false)
}

/// Write `value` to /proc/self/`name` through `procfs` (from [`private`]).
pub fn write_self(procfs: BorrowedFd<'_>, name: &str, value: &[u8]) -> io::Result<()> {
    open_for_write(procfs, &format!("self/{name}"))?.write_all(value)
}

/// Open `sub` (relative to the procfs root, such as
/// "sys/net/ipv4/ip_forward") for writing through `procfs` (from
/// [`private`]). RESOLVE_BENEATH and RESOLVE_NO_XDEV: nothing outside that
/// procfs, nor mounted inside it, is reached; "self" is procfs' own plain
/// symlink to our pid.
pub fn open_for_write(procfs: BorrowedFd<'_>, sub: &str) -> io::Result<File> {
    let path = sys::cstring(OsStr::new(sub))?;
    let resolve = libc::RESOLVE_NO_XDEV | libc::RESOLVE_NO_MAGICLINKS | libc::RESOLVE_BENEATH;
    let fd = sys::openat2(procfs, &path, libc::O_WRONLY | libc::O_NOFOLLOW, resolve)?;
    Ok(File::from(fd))
}
