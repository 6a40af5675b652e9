//! Performing one config mount: a new filesystem or a bind mount, onto a
//! destination resolved inside the rootfs.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use oci_spec::runtime::{LinuxIdMapping, Mount};

use super::ctx::Ctx;
use super::idmap::Idmap;
use super::options::{self, MountOptions, SB_FLAGS};
use super::resolve::clean;
use super::{copyup, mount_err, RootfsError};
use crate::sys::{self, MountAttr};

/// Paths under /proc that may be mounted over (lxcfs, CRIU); anything else
/// there could hide or fake files the runtime or the kernel rely on.
const PROC_ALLOWED: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/sys/kernel/ns_last_pid",
    "/proc/sys/crypto/fips_enabled",
];

pub(super) fn invalid(dest: &Path, reason: impl Into<String>) -> RootfsError {
    RootfsError::Invalid {
        field: format!("mount {}", dest.display()),
        reason: reason.into(),
    }
}

pub(crate) fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .as_ref()
            .is_some_and(|o| o.iter().any(|o| o == "bind" || o == "rbind"))
}

/// The idmapping a mount asks for: its own mappings, or with only
/// `idmap`/`ridmap` the container's (runc's rule). Mappings alone imply
/// `idmap`, as in runc.
pub(super) fn idmap_of(
    user_maps: &(Vec<LinuxIdMapping>, Vec<LinuxIdMapping>),
    m: &Mount,
    o: &MountOptions,
    dest: &Path,
) -> Result<Option<Idmap>, RootfsError> {
    let (uid, gid) = (m.uid_mappings(), m.gid_mappings());
    if o.idmap.is_none() && uid.is_none() && gid.is_none() {
        return Ok(None);
    }
    let (uid, gid) = match (uid, gid) {
        (Some(u), Some(g)) => (u.clone(), g.clone()),
        (None, None) => (user_maps.0.clone(), user_maps.1.clone()),
        _ => {
            return Err(invalid(
                dest,
                "uidMappings and gidMappings must be given together",
            ))
        }
    };
    if uid.is_empty() || gid.is_empty() {
        return Err(invalid(
            dest,
            "idmap needs uidMappings and gidMappings (on the mount or in linux)",
        ));
    }
    for (name, maps) in [("uidMappings", &uid), ("gidMappings", &gid)] {
        if maps.iter().any(|m| m.size() == 0) {
            return Err(invalid(dest, format!("{name}: a mapping of size 0")));
        }
    }
    Ok(Some(Idmap {
        recursive: o.idmap.unwrap_or(false),
        uid,
        gid,
    }))
}

/// Mount a new filesystem of `typ` at `dest`. Returns an fd of the new mount's
/// root when `want_top` is set.
pub(crate) fn fresh(
    ctx: &mut Ctx<'_>,
    typ: &str,
    source: &OsStr,
    dest: &Path,
    o: &MountOptions,
    want_top: bool,
) -> Result<Option<OwnedFd>, RootfsError> {
    // proc and sysfs must land on a real directory, not through a symlink in
    // the image (runc refuses the same).
    let special = typ == "proc" || typ == "sysfs";
    let (dst, existed) = match ctx.root.resolve(dest, special) {
        Ok(fd) => (Rc::new(fd), true),
        Err(e) if sys::is_errno(&e, libc::ENOENT) => (
            ctx.root
                .mkdir_missing(dest, &mut ctx.undo)
                .map_err(mount_err(dest, "create mountpoint"))?,
            false,
        ),
        Err(e) => return Err(mount_err(dest, "resolve mountpoint")(e)),
    };
    let st = sys::fstat(dst.as_fd()).map_err(mount_err(dest, "stat mountpoint"))?;
    if special && sys::file_type(&st) != libc::S_IFDIR {
        return Err(invalid(
            dest,
            format!("{typ} must be mounted on an ordinary directory"),
        ));
    }
    check_proc(ctx, dest, dst.as_fd(), typ == "proc", None)?;

    let remount = o.flags & libc::MS_REMOUNT != 0;
    let mut data = o.data.clone();
    if typ == "tmpfs" && existed && !remount {
        // Keep the mode of the directory the tmpfs covers; an explicit mode=
        // later in the list still wins.
        let mode = format!("mode={:04o}", st.st_mode & 0o7777);
        data = if data.is_empty() {
            mode
        } else {
            format!("{mode},{data}")
        };
    }
    // Filesystems whose labels come from the policy, not the mount (runc
    // leaves these unlabelled too).
    let labelled = !matches!(typ, "proc" | "sysfs" | "mqueue" | "cgroup" | "cgroup2");
    if let Some(ctx_opt) = ctx
        .mount_context
        .as_deref()
        .filter(|_| labelled && !remount)
    {
        data = if data.is_empty() {
            ctx_opt.to_string()
        } else {
            format!("{data},{ctx_opt}")
        };
    }
    let mut flags = o.flags;
    if typ == "tmpfs" || dest == Path::new("/dev") {
        // Made read-only in finalize(): /dev still needs its device nodes and
        // createContainer hooks may populate a tmpfs.
        flags &= !libc::MS_RDONLY;
    }
    let c_source = sys::cstring(source).map_err(mount_err(dest, "source"))?;
    let c_typ = sys::cstring(OsStr::new(typ)).map_err(mount_err(dest, "type"))?;
    let c_data = sys::cstring(OsStr::new(&data)).map_err(mount_err(dest, "options"))?;
    ctx.fd_paths
        .with(dst.as_fd(), |target| {
            sys::mount(
                Some(&c_source),
                target,
                Some(&c_typ),
                flags,
                (!data.is_empty()).then_some(c_data.as_c_str()),
            )
        })
        .map_err(mount_err(
            dest,
            format!("mount {typ} with options {data:?}"),
        ))?;

    let track = !ctx.opts.new_mntns;
    let copyup = o.copyup && existed && !remount;
    if !want_top && !track && !copyup && o.propagation.is_empty() && o.rec_attr.is_empty() {
        return Ok(None);
    }
    // The old fd still names the covered directory: look the path up again to
    // reach the new mount's root.
    let top = ctx
        .root
        .resolve(dest, special)
        .map_err(mount_err(dest, "reopen new mount"))?;
    if track {
        let dup = top.try_clone().map_err(mount_err(dest, "dup"))?;
        ctx.undo.mounts.push(dup);
    }
    if copyup {
        // dst still names the covered directory, top the new tmpfs.
        copyup::copy_tree(dst.as_fd(), top.as_fd()).map_err(mount_err(dest, "tmpcopyup"))?;
    }
    after_attach(dest, top.as_fd(), o)?;
    Ok(want_top.then_some(top))
}

/// Bind-mount `source` (a host path) at `dest` inside the rootfs, onto `dst`
/// when the caller already holds the destination's fd.
pub(crate) fn bind(
    ctx: &mut Ctx<'_>,
    source: &Path,
    dest: &Path,
    dst: Option<Rc<OwnedFd>>,
    o: &MountOptions,
    idmap: Option<&Idmap>,
) -> Result<(), RootfsError> {
    if o.flags & SB_FLAGS != 0 {
        return Err(invalid(
            dest,
            "sync, dirsync, mand, lazytime, silent and iversion are filesystem options; a bind mount cannot set them",
        ));
    }
    if !o.data.is_empty() {
        // mount(2) ignores data for MS_BIND, and runc and crun pass such
        // configs through, so engines and the upstream suite rely on them
        // being accepted. Say so in the log rather than fail.
        crate::logging::warn(&format!(
            "mount {}: options {:?} have no effect on a bind mount",
            dest.display(),
            o.data
        ));
    }
    let c_source = sys::cstring(source.as_os_str()).map_err(mount_err(dest, "source"))?;
    let mut flags = libc::OPEN_TREE_CLONE;
    if o.recursive_bind {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    let tree = sys::open_tree(sys::CWD, &c_source, flags).map_err(mount_err(
        dest,
        format!("open bind source {}", source.display()),
    ))?;
    if let Some(m) = idmap {
        super::idmap::apply(tree.as_fd(), m, dest)?;
    }
    bind_tree(ctx, tree, dest, dst, o)
}

/// Attach a detached bind source at `dest`.
pub(super) fn bind_tree(
    ctx: &mut Ctx<'_>,
    tree: OwnedFd,
    dest: &Path,
    dst: Option<Rc<OwnedFd>>,
    o: &MountOptions,
) -> Result<(), RootfsError> {
    let dst = match dst {
        Some(fd) => fd,
        None => resolve_or_create_for(ctx, dest, tree.as_fd())?,
    };
    check_proc(ctx, dest, dst.as_fd(), false, Some(tree.as_fd()))?;
    attach(ctx, dest, tree, dst.as_fd(), o)
}

/// The runtime's half of an idmapped bind mount: the source opened as a
/// detached tree and idmapped, or None for a mount that is not idmapped.
pub(crate) fn idmapped_source(
    m: &Mount,
    bundle: &Path,
    user_maps: &(Vec<LinuxIdMapping>, Vec<LinuxIdMapping>),
) -> Result<Option<OwnedFd>, RootfsError> {
    let dest = clean(m.destination());
    let o = options::parse(m.options().as_deref().unwrap_or(&[]), &dest)?;
    let Some(idmap) = idmap_of(user_maps, m, &o, &dest)? else {
        return Ok(None);
    };
    let typ = m.typ().as_deref().unwrap_or("");
    let Some(source) = m.source().as_deref().filter(|_| o.bind || typ == "bind") else {
        // mount_entry reports these.
        return Ok(None);
    };
    let source = if source.is_absolute() {
        source.to_path_buf()
    } else {
        bundle.join(source)
    };
    let c_source = sys::cstring(source.as_os_str()).map_err(mount_err(&dest, "source"))?;
    let mut flags = libc::OPEN_TREE_CLONE;
    if o.recursive_bind {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    let tree = sys::open_tree(sys::CWD, &c_source, flags).map_err(mount_err(
        &dest,
        format!("open bind source {}", source.display()),
    ))?;
    super::idmap::apply(tree.as_fd(), &idmap, &dest)?;
    Ok(Some(tree))
}

/// Resolve `dest`, or create it as a directory or an empty file depending on
/// what `source` (an fd of the mount to put there) is.
pub(crate) fn resolve_or_create_for(
    ctx: &mut Ctx<'_>,
    dest: &Path,
    source: BorrowedFd<'_>,
) -> Result<Rc<OwnedFd>, RootfsError> {
    match ctx.root.resolve(dest, false) {
        Ok(fd) => Ok(Rc::new(fd)),
        Err(e) if sys::is_errno(&e, libc::ENOENT) => {
            let st = sys::fstat(source).map_err(mount_err(dest, "stat bind source"))?;
            if sys::file_type(&st) == libc::S_IFDIR {
                ctx.root.mkdir_missing(dest, &mut ctx.undo)
            } else {
                ctx.root.create_file(dest, &mut ctx.undo).map(Rc::new)
            }
            .map_err(mount_err(dest, "create mountpoint"))
        }
        Err(e) => Err(mount_err(dest, "resolve mountpoint")(e)),
    }
}

/// Give a detached tree its flags, attach it onto `dst`, then set
/// propagation (which only means something once attached).
pub(crate) fn attach(
    ctx: &mut Ctx<'_>,
    dest: &Path,
    tree: OwnedFd,
    dst: BorrowedFd<'_>,
    o: &MountOptions,
) -> Result<(), RootfsError> {
    let attr = o.bind_attr();
    if !attr.is_empty() {
        sys::mount_setattr_fd(tree.as_fd(), attr, false)
            .map_err(mount_err(dest, "set bind mount flags"))?;
    }
    sys::move_mount_fd(tree.as_fd(), dst).map_err(mount_err(dest, "attach mount"))?;
    // After move_mount the tree fd names the attached mount.
    let res = after_attach(dest, tree.as_fd(), o);
    if !ctx.opts.new_mntns {
        ctx.undo.mounts.push(tree);
    }
    res
}

fn after_attach(dest: &Path, top: BorrowedFd<'_>, o: &MountOptions) -> Result<(), RootfsError> {
    if !o.rec_attr.is_empty() {
        sys::mount_setattr_fd(top, o.rec_attr, true)
            .map_err(mount_err(dest, "set recursive mount flags"))?;
    }
    for &(flag, recursive) in &o.propagation {
        let attr = MountAttr {
            propagation: flag,
            ..MountAttr::default()
        };
        sys::mount_setattr_fd(top, attr, recursive)
            .map_err(mount_err(dest, "set mount propagation"))?;
    }
    Ok(())
}

/// Refuse mounts that would cover /proc with something that is not a procfs,
/// or cover files inside a procfs other than the few lxcfs/CRIU ones. Checked
/// on the resolved fd, so a symlink in the image cannot sneak past it.
fn check_proc(
    ctx: &Ctx<'_>,
    dest: &Path,
    dst: BorrowedFd<'_>,
    is_proc_fs: bool,
    bind_source: Option<BorrowedFd<'_>>,
) -> Result<(), RootfsError> {
    let on_proc =
        sys::fstatfs_type(dst).map_err(mount_err(dest, "statfs mountpoint"))? == sys::PROC_MAGIC;
    let at_proc_dir = dest == Path::new("/proc");
    if !on_proc && !at_proc_dir {
        return Ok(());
    }
    // procfs gives its root inode number 1 and nothing else.
    let is_proc_root = at_proc_dir
        || sys::fstat(dst)
            .map_err(mount_err(dest, "stat mountpoint"))?
            .st_ino
            == 1;
    if is_proc_root {
        let source_is_proc = match bind_source {
            Some(src) => {
                sys::fstatfs_type(src).map_err(mount_err(dest, "statfs bind source"))?
                    == sys::PROC_MAGIC
            }
            None => is_proc_fs,
        };
        return if source_is_proc {
            Ok(())
        } else {
            Err(invalid(dest, "only a procfs can be mounted on /proc"))
        };
    }
    let real = ctx
        .fd_paths
        .read_link(dst)
        .map_err(mount_err(dest, "read mountpoint path"))?;
    let in_root = in_root_path(ctx, &real);
    if PROC_ALLOWED
        .iter()
        .any(|p| in_root.as_deref() == Some(Path::new(p)))
    {
        Ok(())
    } else {
        Err(invalid(
            dest,
            format!(
                "{} is inside a procfs; mounting over it is not allowed",
                in_root.unwrap_or(real).display()
            ),
        ))
    }
}

/// The path of a host path inside the rootfs, from /proc/self/fd readlink.
fn in_root_path(ctx: &Ctx<'_>, real: &Path) -> Option<PathBuf> {
    let rootfs = ctx.fd_paths.read_link(ctx.root.fd()).ok()?;
    real.strip_prefix(&rootfs)
        .ok()
        .map(|p| Path::new("/").join(p))
}
