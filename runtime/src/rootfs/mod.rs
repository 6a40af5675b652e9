//! The container's root filesystem: mounts, /dev, pivot_root, masked and
//! readonly paths. Runs in the container init, in its mount namespace.
//!
//! The init calls three steps in order:
//! - `prepare`, before the pivot: "/" propagation (rootfsPropagation,
//!   default rslave), the rootfs bound onto itself, `mounts` in order (every
//!   path resolved inside the rootfs; a symlink never leads to a host path),
//!   the default devices and linux.devices (mknod, or a bind from the host
//!   in a user namespace), and the /dev/{fd,stdin,stdout,stderr,ptmx} links.
//!   Relative mount sources are relative to the bundle. Without a mount
//!   namespace of its own the mounts happen in the caller's and "/" is left
//!   alone.
//! - `enter`: pivot_root into the rootfs (chroot with --no-pivot or without
//!   a mount namespace).
//! - `finalize`, after the pivot: maskedPaths, readonlyPaths, root.readonly
//!   and the final rootfsPropagation of "/".
//!
//! How mounts are made: destinations are resolved to O_PATH fds by libpathrs
//! (openat2(RESOLVE_IN_ROOT), or its own checked walk where that is missing).
//! New filesystems are mounted with mount(2) onto "/proc/self/fd/N" of that
//! fd (one syscall; the host /proc is still ours before the pivot), or, in a
//! mount namespace the config joins, onto that link in the init's private
//! procfs (see fdpath.rs). Bind
//! mounts are cloned with open_tree, get their flags with mount_setattr while
//! still detached (never visible with the wrong flags) and are attached with
//! move_mount onto the destination fd. After the pivot the container's /proc
//! may be missing, so finalize() works purely on fds with the new mount API.
//! On a prepare() failure every mount it made is detached and every inode it
//! created is removed again.

mod cgroup;
mod copyup;
mod ctx;
mod devices;
mod entry;
mod fdpath;
mod idmap;
use ctx::Ctx;
pub use ctx::RootfsOpts;
pub use idmap::IdmappedTrees;
mod mounts;
mod options;
mod paths;
mod pivot;
mod resolve;

use std::io;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::sys;
use resolve::{Root, Undo};

/// The mount options berth gives a meaning to (for `berth features`).
pub fn known_mount_options() -> Vec<&'static str> {
    options::known()
}

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("{field} is not supported yet")]
    Unsupported { field: String },
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("mount {}: {op}: {source}", dest.display())]
    Mount {
        dest: PathBuf,
        op: String,
        #[source]
        source: io::Error,
    },
    #[error("device {}: {op}: {source}", path.display())]
    Device {
        path: PathBuf,
        op: String,
        #[source]
        source: io::Error,
    },
    #[error("{op} {}: {source}", path.display())]
    Path {
        op: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

pub(crate) fn mount_err(
    dest: &Path,
    op: impl Into<String>,
) -> impl FnOnce(io::Error) -> RootfsError {
    let (dest, op) = (dest.to_path_buf(), op.into());
    move |source| RootfsError::Mount { dest, op, source }
}

pub(crate) fn path_err(op: &str, path: &Path) -> impl FnOnce(io::Error) -> RootfsError {
    let (op, path) = (op.to_string(), path.to_path_buf());
    move |source| RootfsError::Path { op, path, source }
}

pub fn prepare(
    spec: &Spec,
    rootfs: &Path,
    bundle: &Path,
    opts: &RootfsOpts,
) -> Result<(), RootfsError> {
    prepare_with(
        spec,
        rootfs,
        bundle,
        opts,
        IdmappedTrees::default(),
        &mut || Ok(()),
    )
}

/// `prepare`, attaching the bind sources the runtime idmapped (see
/// `idmapped_trees`) instead of opening them again, and calling
/// `before_cgroup` once before the first cgroup mount (the caller joins its
/// cgroup and cgroup namespace there, so earlier mounts overlap that).
pub fn prepare_with(
    spec: &Spec,
    rootfs: &Path,
    bundle: &Path,
    opts: &RootfsOpts,
    idmapped: IdmappedTrees,
    before_cgroup: &mut dyn FnMut() -> Result<(), RootfsError>,
) -> Result<(), RootfsError> {
    let linux = spec.linux().as_ref();
    check_needs_mntns(spec, opts.new_mntns)?;
    let propagation = root_propagation(spec)?;
    let fd_paths = fdpath::FdPaths::new(opts.new_mntns)?;

    if opts.new_mntns {
        let root_c = sys::cstring(rootfs.as_os_str()).map_err(path_err("rootfs", rootfs))?;
        sys::mount(None, c"/", None, propagation, None)
            .map_err(path_err("set rootfsPropagation of", Path::new("/")))?;
        // rslave/rprivate already cover the rootfs' parent mount; anything
        // else (shared, unbindable, non-recursive) may leave it shared, which
        // would break pivot_root and leak the self-bind to the host.
        if propagation != libc::MS_SLAVE | libc::MS_REC
            && propagation != libc::MS_PRIVATE | libc::MS_REC
        {
            unshare_parent_mount(rootfs, propagation)?;
        }
        // pivot_root needs the new root to be a mount point.
        sys::mount(
            Some(&root_c),
            &root_c,
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        )
        .map_err(path_err("bind rootfs onto itself", rootfs))?;
    }

    // Opened after the self-bind so that every mount lands inside it.
    let root = match Root::open(rootfs) {
        Ok(r) => r,
        Err(e) => {
            if opts.new_mntns {
                if let Ok(c) = sys::cstring(rootfs.as_os_str()) {
                    let _ = sys::umount2(&c, libc::MNT_DETACH);
                }
            }
            return Err(path_err("open rootfs", rootfs)(e));
        }
    };
    let cgroupns = linux
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Cgroup));
    let mut ctx = Ctx {
        root: &root,
        bundle,
        opts,
        cgroupns,
        undo: Undo::default(),
        fd_paths: &fd_paths,
        mount_context: crate::lsm::mount_context(spec),
        user_maps: (
            linux
                .and_then(|l| l.uid_mappings().clone())
                .unwrap_or_default(),
            linux
                .and_then(|l| l.gid_mappings().clone())
                .unwrap_or_default(),
        ),
        idmapped,
    };
    match prepare_mounts(&mut ctx, spec, before_cgroup) {
        Ok(()) => Ok(()),
        Err(e) => {
            let undo = std::mem::take(&mut ctx.undo);
            undo.rollback(opts.new_mntns.then_some(&root), &fd_paths);
            Err(e)
        }
    }
}

fn prepare_mounts(
    ctx: &mut Ctx<'_>,
    spec: &Spec,
    before_cgroup: &mut dyn FnMut() -> Result<(), RootfsError>,
) -> Result<(), RootfsError> {
    let mounts = spec.mounts().as_deref().unwrap_or(&[]);
    for (i, m) in mounts.iter().enumerate() {
        if matches!(m.typ().as_deref(), Some("cgroup" | "cgroup2")) {
            before_cgroup()?;
        }
        let tree = ctx.idmapped.take(i);
        entry::mount_entry(ctx, m, tree)?;
    }
    devices::setup(ctx, spec)
}

/// In the runtime, before the init exists: open and idmap every idmapped
/// bind source. Errors name the mount, and nothing is left (the trees are
/// detached and vanish with their fds).
pub fn idmapped_trees(spec: &Spec, bundle: &Path) -> Result<IdmappedTrees, RootfsError> {
    let linux = spec.linux().as_ref();
    let user_maps = (
        linux
            .and_then(|l| l.uid_mappings().clone())
            .unwrap_or_default(),
        linux
            .and_then(|l| l.gid_mappings().clone())
            .unwrap_or_default(),
    );
    let mut out = IdmappedTrees::default();
    let mounts = spec.mounts().as_deref().unwrap_or(&[]);
    // The common case costs no option parsing.
    let wanted = |m: &oci_spec::runtime::Mount| {
        m.uid_mappings().is_some()
            || m.gid_mappings().is_some()
            || m.options()
                .iter()
                .flatten()
                .any(|o| o == "idmap" || o == "ridmap")
    };
    if !mounts.iter().any(wanted) {
        return Ok(out);
    }
    for (i, m) in mounts.iter().enumerate() {
        if let Some(tree) = mounts::idmapped_source(m, bundle, &user_maps)? {
            out.0.push((i, tree));
        }
    }
    Ok(out)
}

pub fn enter(rootfs: &Path, opts: &RootfsOpts) -> Result<(), RootfsError> {
    pivot::enter(rootfs, opts)
}

/// After the pivot, with `terminal: true`: bind the pty slave (`slave`, an
/// fd, so no path can be swapped under us) onto /dev/console, which the
/// runtime spec requires. The mount point is made as an empty file if
/// missing; a symlink there is refused rather than followed.
pub fn mount_console(slave: std::os::fd::BorrowedFd<'_>) -> Result<(), RootfsError> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::OpenOptionsExt;
    let console = Path::new("/dev/console");
    let dev = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open("/dev")
        .map_err(path_err("open", Path::new("/dev")))?;
    match sys::mknodat(dev.as_fd(), c"console", libc::S_IFREG | 0o666, 0) {
        Err(e) if !sys::is_errno(&e, libc::EEXIST) => {
            return Err(path_err("create", console)(e));
        }
        _ => {}
    }
    let target = sys::openat(dev.as_fd(), c"console", libc::O_PATH | libc::O_NOFOLLOW, 0)
        .map_err(path_err("open", console))?;
    let st = sys::fstat(target.as_fd()).map_err(path_err("stat", console))?;
    if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
        return Err(RootfsError::Invalid {
            field: "process.terminal".into(),
            reason: "/dev/console in the rootfs is a symlink".into(),
        });
    }
    let tree = sys::open_tree(
        slave,
        c"",
        libc::OPEN_TREE_CLONE | libc::AT_EMPTY_PATH as libc::c_uint,
    )
    .map_err(path_err("clone the pty for", console))?;
    sys::move_mount_fd(tree.as_fd(), target.as_fd()).map_err(path_err("bind the pty onto", console))
}

/// The mount options parser, for the fuzz targets (fuzz/).
#[cfg(fuzzing)]
pub fn fuzz_mount_options(options: &[String]) {
    let _ = options::parse(options, Path::new("/fuzz"));
}

pub fn finalize(spec: &Spec, opts: &RootfsOpts) -> Result<(), RootfsError> {
    check_needs_mntns(spec, opts.new_mntns)?;
    if !opts.new_mntns {
        return Ok(());
    }
    // runc applies shared/unbindable to the new "/" right after the pivot;
    // slave/private were already applied to the whole tree in prepare().
    let propagation = root_propagation(spec)?;
    if propagation & (libc::MS_SLAVE | libc::MS_PRIVATE) == 0 {
        sys::mount(None, c"/", None, propagation, None)
            .map_err(path_err("set rootfsPropagation of", Path::new("/")))?;
    }
    let root = Root::open(Path::new("/")).map_err(path_err("open", Path::new("/")))?;
    paths::remount_deferred_readonly(&root, spec)?;
    if let Some(linux) = spec.linux() {
        paths::readonly_paths(&root, linux.readonly_paths().as_deref().unwrap_or(&[]))?;
        paths::masked_paths(&root, linux.masked_paths().as_deref().unwrap_or(&[]))?;
    }
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        paths::readonly_root(&root)?;
    }
    Ok(())
}

/// maskedPaths, readonlyPaths and a read-only root are done with mounts that
/// would land in the caller's (host) namespace without a mount namespace.
/// Checked by `create` before anything is made, and again by the init.
pub fn check_needs_mntns(spec: &Spec, new_mntns: bool) -> Result<(), RootfsError> {
    if new_mntns {
        return Ok(());
    }
    let nonempty = |v: Option<&Vec<String>>| v.is_some_and(|v| !v.is_empty());
    let field = if let Some(l) = spec.linux() {
        if nonempty(l.masked_paths().as_ref()) {
            Some("linux.maskedPaths")
        } else if nonempty(l.readonly_paths().as_ref()) {
            Some("linux.readonlyPaths")
        } else {
            None
        }
    } else {
        None
    };
    let field = field.or_else(|| {
        (spec.root().as_ref().and_then(|r| r.readonly()) == Some(true)).then_some("root.readonly")
    });
    match field {
        Some(f) => Err(RootfsError::Invalid {
            field: f.into(),
            reason: "requires a mount namespace".into(),
        }),
        None => Ok(()),
    }
}

fn root_propagation(spec: &Spec) -> Result<libc::c_ulong, RootfsError> {
    let value = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
        .unwrap_or("");
    let rec = libc::MS_REC;
    Ok(match value {
        "" | "rslave" => libc::MS_SLAVE | rec,
        "slave" => libc::MS_SLAVE,
        "private" => libc::MS_PRIVATE,
        "rprivate" => libc::MS_PRIVATE | rec,
        "shared" => libc::MS_SHARED,
        "rshared" => libc::MS_SHARED | rec,
        "unbindable" => libc::MS_UNBINDABLE,
        "runbindable" => libc::MS_UNBINDABLE | rec,
        other => {
            return Err(RootfsError::Invalid {
                field: "linux.rootfsPropagation".into(),
                reason: format!("unknown value {other:?}"),
            })
        }
    })
}

/// Make the mount that holds the rootfs private (slave when a slave
/// propagation was asked for), walking up to the nearest mount point.
fn unshare_parent_mount(rootfs: &Path, propagation: libc::c_ulong) -> Result<(), RootfsError> {
    let flag = if propagation & libc::MS_SLAVE != 0 {
        libc::MS_SLAVE
    } else {
        libc::MS_PRIVATE
    };
    let mut path = rootfs;
    loop {
        let c = sys::cstring(path.as_os_str()).map_err(path_err("rootfs", path))?;
        match sys::mount(None, &c, None, flag, None) {
            Ok(()) => return Ok(()),
            // EINVAL: not a mount point; try its parent.
            Err(e) if sys::is_errno(&e, libc::EINVAL) && path.parent().is_some() => {
                path = path.parent().unwrap_or(Path::new("/"));
            }
            Err(e) => return Err(path_err("make parent mount private", path)(e)),
        }
    }
}
