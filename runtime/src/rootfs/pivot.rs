//! Switching the process root to the prepared rootfs.

use std::os::fd::AsFd;
use std::path::Path;

use super::{path_err, sys, RootfsError, RootfsOpts};
use crate::mountinfo;

pub(crate) fn enter(rootfs: &Path, opts: &RootfsOpts) -> Result<(), RootfsError> {
    let c = sys::cstring(rootfs.as_os_str()).map_err(path_err("rootfs", rootfs))?;
    if !opts.new_mntns {
        sys::chroot(&c).map_err(path_err("chroot", rootfs))?;
    } else if opts.no_pivot {
        move_root(rootfs, &c)?;
    } else {
        pivot(rootfs, &c)?;
    }
    sys::chdir(c"/").map_err(path_err("chdir", Path::new("/")))
}

/// pivot_root(".", ".") from inside the new root stacks the old root on top
/// of it; detaching that leaves only the new root, with no put_old directory
/// needed in the image.
fn pivot(rootfs: &Path, c: &std::ffi::CStr) -> Result<(), RootfsError> {
    let dir = libc::O_PATH | libc::O_DIRECTORY;
    let new_root = sys::openat(sys::CWD, c, dir, 0).map_err(path_err("open", rootfs))?;
    let old_root = sys::openat(sys::CWD, c"/", dir, 0).map_err(path_err("open", Path::new("/")))?;
    sys::fchdir(new_root.as_fd()).map_err(path_err("chdir", rootfs))?;
    sys::pivot_root(c".", c".").map_err(path_err("pivot_root", rootfs))?;
    // The kernel does not promise where "." points after the pivot; go to the
    // old root explicitly before detaching it.
    sys::fchdir(old_root.as_fd()).map_err(path_err("chdir to old root", Path::new("/")))?;
    // Slave first so that the detach cannot propagate to the host's mounts.
    sys::mount(None, c".", None, libc::MS_SLAVE | libc::MS_REC, None)
        .map_err(path_err("make old root rslave", Path::new("/")))?;
    sys::umount2(c".", libc::MNT_DETACH).map_err(path_err("detach old root", Path::new("/")))
}

/// --no-pivot: move the rootfs mount onto "/" and chroot into it. The host's
/// mount tree stays reachable in this namespace, so first take away every
/// full proc and sysfs mount outside the rootfs: while one is visible the
/// kernel lets the container mount a fresh, unmasked procfs or sysfs.
fn move_root(rootfs: &Path, c: &std::ffi::CStr) -> Result<(), RootfsError> {
    let infos = mountinfo::read().map_err(path_err("read", Path::new("/proc/self/mountinfo")))?;
    // mountinfo shows resolved paths; compare against the resolved rootfs.
    let rootfs = &std::fs::canonicalize(rootfs).map_err(path_err("resolve", rootfs))?;
    for m in infos.iter().filter(|m| {
        m.root == "/"
            && (m.fstype == "proc" || m.fstype == "sysfs")
            && !Path::new(&m.mountpoint).starts_with(rootfs)
    }) {
        let p = Path::new(&m.mountpoint);
        let mp = sys::cstring(p.as_os_str()).map_err(path_err("mountpoint", p))?;
        match sys::mount(None, &mp, None, libc::MS_SLAVE | libc::MS_REC, None) {
            // Already gone with an earlier, covering unmount.
            Err(e) if sys::is_errno(&e, libc::ENOENT) => continue,
            Err(e) => return Err(path_err("make rslave", p)(e)),
            Ok(()) => {}
        }
        match sys::umount2(&mp, libc::MNT_DETACH) {
            Ok(()) => {}
            // Locked (user namespace): cover it instead.
            Err(e) if sys::is_errno(&e, libc::EINVAL) || sys::is_errno(&e, libc::EPERM) => {
                sys::mount(Some(c"tmpfs"), &mp, Some(c"tmpfs"), 0, None)
                    .map_err(path_err("cover", p))?;
            }
            Err(e) => return Err(path_err("unmount", p)(e)),
        }
    }
    let new_root = sys::openat(sys::CWD, c, libc::O_PATH | libc::O_DIRECTORY, 0)
        .map_err(path_err("open", rootfs))?;
    sys::fchdir(new_root.as_fd()).map_err(path_err("chdir", rootfs))?;
    sys::mount(Some(c), c"/", None, libc::MS_MOVE, None)
        .map_err(path_err("move rootfs onto /", rootfs))?;
    sys::chroot(c".").map_err(path_err("chroot", rootfs))
}
