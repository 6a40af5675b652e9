//! After the pivot: read-only remounts, readonlyPaths, maskedPaths and a
//! read-only root. The container's /proc may be absent or untrusted here, so
//! everything works on fds: open_tree/move_mount/mount_setattr/fsmount.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use super::mounts::is_bind;
use super::options;
use super::resolve::{clean, Root};
use super::RootfsError;
use crate::sys::{self, MountAttr};

const RO: MountAttr = MountAttr {
    set: libc::MOUNT_ATTR_RDONLY,
    clr: 0,
    propagation: 0,
};

fn err(op: &str, path: &Path) -> impl FnOnce(io::Error) -> RootfsError {
    super::path_err(op, path)
}

/// tmpfs mounts and /dev asked to be "ro" were mounted rw by prepare().
pub(crate) fn remount_deferred_readonly(root: &Root, spec: &Spec) -> Result<(), RootfsError> {
    for m in spec.mounts().as_deref().unwrap_or(&[]) {
        let dest = clean(m.destination());
        if is_bind(m) || !(m.typ().as_deref() == Some("tmpfs") || dest == Path::new("/dev")) {
            continue;
        }
        let o = options::parse(m.options().as_deref().unwrap_or(&[]), &dest)?;
        if o.flags & libc::MS_RDONLY == 0 {
            continue;
        }
        let fd = root.resolve(&dest, false).map_err(err("resolve", &dest))?;
        sys::mount_setattr_fd(fd.as_fd(), RO, false).map_err(err("make read-only", &dest))?;
    }
    Ok(())
}

/// Resolve a masked/readonly path; None if it does not exist (ignored, as
/// runc does: the paths are a generic list across kernels).
fn lookup(root: &Root, path: &Path) -> Result<Option<OwnedFd>, RootfsError> {
    match root.resolve(path, false) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if sys::is_errno(&e, libc::ENOENT) => Ok(None),
        Err(e) => Err(err("resolve", path)(e)),
    }
}

/// Bind each path onto itself read-only. The clone takes its submounts along
/// (so nothing below disappears) but, like runc, only the top mount is made
/// read-only; nosuid/nodev/noexec and the rest are kept as they are.
pub(crate) fn readonly_paths(root: &Root, paths: &[String]) -> Result<(), RootfsError> {
    for p in paths {
        let path = clean(Path::new(p));
        let Some(dst) = lookup(root, &path)? else {
            continue;
        };
        let flags =
            libc::OPEN_TREE_CLONE | (libc::AT_RECURSIVE | libc::AT_EMPTY_PATH) as libc::c_uint;
        let tree = sys::open_tree(dst.as_fd(), sys::EMPTY, flags).map_err(err("clone", &path))?;
        sys::mount_setattr_fd(tree.as_fd(), RO, false).map_err(err("make read-only", &path))?;
        sys::move_mount_fd(tree.as_fd(), dst.as_fd())
            .map_err(err("mount read-only copy on", &path))?;
    }
    Ok(())
}

/// Hide each path: directories under an empty read-only tmpfs (one instance
/// shared by all), everything else under /dev/null.
pub(crate) fn masked_paths(root: &Root, paths: &[String]) -> Result<(), RootfsError> {
    let mut done: Vec<PathBuf> = Vec::with_capacity(paths.len());
    let mut dir_mask: Option<OwnedFd> = None;
    let mut dev_null: Option<OwnedFd> = None;
    for p in paths {
        let path = clean(Path::new(p));
        if done.contains(&path) {
            continue;
        }
        done.push(path.clone());
        let Some(dst) = lookup(root, &path)? else {
            continue;
        };
        let st = sys::fstat(dst.as_fd()).map_err(err("stat", &path))?;
        let tree = if sys::file_type(&st) == libc::S_IFDIR {
            match &dir_mask {
                Some(mask) => clone_of(mask.as_fd()).map_err(err("clone mask for", &path))?,
                None => empty_tmpfs().map_err(err("create tmpfs mask for", &path))?,
            }
        } else {
            if dev_null.is_none() {
                dev_null = Some(open_dev_null(root)?);
            }
            let null = dev_null.as_ref().map(|f| f.as_fd()).expect("just set");
            clone_of(null).map_err(err("clone /dev/null for", &path))?
        };
        sys::move_mount_fd(tree.as_fd(), dst.as_fd()).map_err(err("mask", &path))?;
        if sys::file_type(&st) == libc::S_IFDIR && dir_mask.is_none() {
            dir_mask = Some(tree);
        }
    }
    Ok(())
}

fn clone_of(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    sys::open_tree(
        fd,
        sys::EMPTY,
        libc::OPEN_TREE_CLONE | libc::AT_EMPTY_PATH as libc::c_uint,
    )
}

/// An empty, read-only tmpfs limited to the minimum size.
fn empty_tmpfs() -> io::Result<OwnedFd> {
    let fs = sys::fsopen(c"tmpfs")?;
    sys::fsconfig_string(fs.as_fd(), c"nr_blocks", c"1")?;
    if let Err(e) = sys::fsconfig_string(fs.as_fd(), c"nr_inodes", c"1") {
        // Some distribution kernels reject fewer than 2 inodes.
        if !sys::is_errno(&e, libc::EINVAL) {
            return Err(e);
        }
        sys::fsconfig_string(fs.as_fd(), c"nr_inodes", c"2")?;
    }
    sys::fsconfig_create(fs.as_fd())?;
    let attrs = libc::MOUNT_ATTR_RDONLY
        | libc::MOUNT_ATTR_NOSUID
        | libc::MOUNT_ATTR_NODEV
        | libc::MOUNT_ATTR_NOEXEC;
    sys::fsmount(fs.as_fd(), attrs)
}

/// The container's /dev/null, checked to really be the null device (char
/// 1:3) on the very fd that will be cloned, so a symlink or a fake node in the
/// image cannot turn masking into exposing some other file.
fn open_dev_null(root: &Root) -> Result<OwnedFd, RootfsError> {
    let path = Path::new("/dev/null");
    let fd = root.resolve(path, false).map_err(err("open", path))?;
    let st = sys::fstat(fd.as_fd()).map_err(err("stat", path))?;
    if sys::file_type(&st) != libc::S_IFCHR || st.st_rdev != libc::makedev(1, 3) {
        return Err(RootfsError::Invalid {
            field: "/dev/null".into(),
            reason: "not the null device (char 1:3); cannot use it to mask paths".into(),
        });
    }
    Ok(fd)
}

/// root.readonly: only the root mount itself, keeping its other flags.
pub(crate) fn readonly_root(root: &Root) -> Result<(), RootfsError> {
    sys::mount_setattr_fd(root.fd(), RO, false).map_err(err("make read-only", Path::new("/")))
}
