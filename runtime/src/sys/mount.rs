//! Mounting: mount(2)/umount2(2) through nix, the new mount API through
//! rustix, and mount_setattr(2), which neither wraps, raw.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::mount::{MntFlags, MsFlags};
use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, OpenTreeFlags};

use super::{cvt, EMPTY};

pub(crate) fn mount(
    source: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> io::Result<()> {
    let flags = MsFlags::from_bits_retain(flags);
    Ok(nix::mount::mount(source, target, fstype, flags, data)?)
}

pub(crate) fn umount2(target: &CStr, flags: libc::c_int) -> io::Result<()> {
    Ok(nix::mount::umount2(
        target,
        MntFlags::from_bits_retain(flags),
    )?)
}

pub(crate) fn pivot_root(new_root: &CStr, put_old: &CStr) -> io::Result<()> {
    Ok(rustix::process::pivot_root(new_root, put_old)?)
}

pub(crate) fn open_tree(
    dir: BorrowedFd<'_>,
    path: &CStr,
    flags: libc::c_uint,
) -> io::Result<OwnedFd> {
    let flags = OpenTreeFlags::from_bits_retain(flags) | OpenTreeFlags::OPEN_TREE_CLOEXEC;
    Ok(rustix::mount::open_tree(dir, path, flags)?)
}

/// Attach a detached mount (from open_tree or fsmount) on top of the inode
/// `to` refers to; no path is walked, so nothing can be redirected.
pub(crate) fn move_mount_fd(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<()> {
    let flags = MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH;
    Ok(rustix::mount::move_mount(from, EMPTY, to, EMPTY, flags)?)
}

pub(crate) fn fsopen(fstype: &CStr) -> io::Result<OwnedFd> {
    Ok(rustix::mount::fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC)?)
}

pub(crate) fn fsconfig_string(fs: BorrowedFd<'_>, key: &CStr, value: &CStr) -> io::Result<()> {
    Ok(rustix::mount::fsconfig_set_string(fs, key, value)?)
}

pub(crate) fn fsconfig_create(fs: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::mount::fsconfig_create(fs)?)
}

pub(crate) fn fsmount(fs: BorrowedFd<'_>, attr_flags: u64) -> io::Result<OwnedFd> {
    let attr = MountAttrFlags::from_bits_retain(attr_flags as u32);
    Ok(rustix::mount::fsmount(
        fs,
        FsMountFlags::FSMOUNT_CLOEXEC,
        attr,
    )?)
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MountAttr {
    pub set: u64,
    pub clr: u64,
    pub propagation: u64,
}

impl MountAttr {
    pub(crate) fn is_empty(&self) -> bool {
        self.set == 0 && self.clr == 0 && self.propagation == 0
    }
}

/// mount_setattr(fd, "", AT_EMPTY_PATH [| AT_RECURSIVE]) on the mount whose
/// root `fd` refers to.
pub(crate) fn mount_setattr_fd(
    fd: BorrowedFd<'_>,
    attr: MountAttr,
    recursive: bool,
) -> io::Result<()> {
    mount_setattr(fd, attr, 0, recursive)
}

/// mount_setattr with MOUNT_ATTR_IDMAP: idmap the detached mount `fd` with
/// the user namespace `userns`.
pub(crate) fn mount_setattr_idmap(
    fd: BorrowedFd<'_>,
    userns: BorrowedFd<'_>,
    recursive: bool,
) -> io::Result<()> {
    let attr = MountAttr {
        set: libc::MOUNT_ATTR_IDMAP,
        ..MountAttr::default()
    };
    mount_setattr(fd, attr, userns.as_raw_fd() as u64, recursive)
}

fn mount_setattr(
    fd: BorrowedFd<'_>,
    attr: MountAttr,
    userns_fd: u64,
    recursive: bool,
) -> io::Result<()> {
    let raw = libc::mount_attr {
        attr_set: attr.set,
        attr_clr: attr.clr,
        propagation: attr.propagation,
        userns_fd,
    };
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: valid fds, empty path, and a mount_attr of the declared size.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            EMPTY.as_ptr(),
            flags,
            &raw as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    })
    .map(drop)
}
