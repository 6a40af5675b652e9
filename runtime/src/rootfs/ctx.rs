//! What every mount step is given: the rootfs, the options, and what to
//! undo. Its own file so that the steps (entry, mounts, cgroup, devices)
//! share it without depending on mod.rs, which calls them.

use std::path::Path;

use super::fdpath::FdPaths;
use super::idmap::IdmappedTrees;
use super::resolve::{Root, Undo};

#[derive(Debug, Clone, Copy, Default)]
pub struct RootfsOpts {
    /// --no-pivot: MS_MOVE the rootfs onto "/" and chroot instead of pivot_root.
    pub no_pivot: bool,
    /// The init has its own mount namespace (config has a mount namespace).
    pub new_mntns: bool,
    /// The init is in a user namespace: mknod is not allowed there.
    pub in_userns: bool,
}

/// Everything a mount step needs. `undo` collects what to take back if a
/// later step fails.
pub(crate) struct Ctx<'a> {
    pub root: &'a Root,
    pub bundle: &'a Path,
    pub opts: &'a RootfsOpts,
    pub cgroupns: bool,
    pub undo: Undo,
    /// Paths naming fds, for mount(2) and readlink.
    pub fd_paths: &'a FdPaths,
    /// `context="..."` for new filesystems (linux.mountLabel, SELinux only).
    pub mount_context: Option<String>,
    /// linux.uidMappings and gidMappings, for `idmap` without its own.
    pub user_maps: (
        Vec<oci_spec::runtime::LinuxIdMapping>,
        Vec<oci_spec::runtime::LinuxIdMapping>,
    ),
    /// Bind sources the runtime already idmapped, by mount index.
    pub idmapped: IdmappedTrees,
}
