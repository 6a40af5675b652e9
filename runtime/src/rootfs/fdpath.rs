//! Naming an fd by path, for the calls that take only paths (mount(2) onto
//! a new filesystem's mountpoint, umount2(2), readlink): its magic link
//! "self/fd/N" in a procfs.
//!
//! In a mount namespace of the init's own (a copy of berth's, before the
//! pivot) "/proc" is berth's procfs. In one the config joins it is the
//! other container's, and its "/proc/self/fd/N" may be a symlink to any
//! path, which would move our mounts there (the CVE-2025-52881 class):
//! there the link is taken in the init's private procfs instead, as a
//! relative path from a cwd moved there for the one call.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use super::RootfsError;
use crate::sys;

pub(crate) struct FdPaths {
    /// The private procfs; None where "/proc" is berth's own.
    procfs: Option<OwnedFd>,
}

impl FdPaths {
    pub(crate) fn new(new_mntns: bool) -> Result<FdPaths, RootfsError> {
        if new_mntns {
            return Ok(FdPaths { procfs: None });
        }
        let procfs = crate::procfs::private().map_err(|e| RootfsError::Invalid {
            field: "/proc".into(),
            reason: e.to_string(),
        })?;
        Ok(FdPaths {
            procfs: Some(procfs),
        })
    }

    /// Call `f` with a path that names `fd`.
    pub(crate) fn with<T>(
        &self,
        fd: BorrowedFd<'_>,
        f: impl FnOnce(&CStr) -> io::Result<T>,
    ) -> io::Result<T> {
        let Some(procfs) = &self.procfs else {
            return f(sys::ProcFd::new(fd).as_cstr());
        };
        // Our cwd, to come back to: also through the private procfs.
        let cwd = sys::openat(
            procfs.as_fd(),
            c"self/cwd",
            libc::O_PATH | libc::O_DIRECTORY,
            0,
        )?;
        sys::fchdir(procfs.as_fd())?;
        let r = f(&relative(fd));
        sys::fchdir(cwd.as_fd())?;
        r
    }

    /// The path `fd` names, as the kernel reports it.
    pub(crate) fn read_link(&self, fd: BorrowedFd<'_>) -> io::Result<PathBuf> {
        match &self.procfs {
            Some(procfs) => sys::readlinkat(procfs.as_fd(), &relative(fd)),
            None => std::fs::read_link(
                sys::ProcFd::new(fd)
                    .as_cstr()
                    .to_str()
                    .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?,
            ),
        }
    }
}

fn relative(fd: BorrowedFd<'_>) -> CString {
    CString::new(format!("self/fd/{}", fd.as_raw_fd())).expect("no NUL")
}
