//! The "cgroup" mount type. With a cgroup namespace the container gets real
//! cgroup filesystems (rooted at its namespace); without one it only gets
//! bind mounts of its own cgroup directories, never the host's whole tree.
//!
//! The hierarchies come from /proc/self/cgroup and the usual layout
//! (`/sys/fs/cgroup/<controllers>`, "unified" for the hybrid cgroup2):
//! mountinfo costs tens of microseconds to generate, so it is read only
//! when a host does not follow that layout.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::ctx::Ctx;
use super::mounts;
use super::options::{MountOptions, SB_FLAGS};
use super::{mount_err, RootfsError};
use crate::mountinfo::{self, MountInfo};
use crate::sys::{self, MountAttr};

const HOST_CGROUP: &str = "/sys/fs/cgroup";

/// Mount options of cgroup v1 that are not controllers.
const NOT_CONTROLLERS: &[&str] = &[
    "rw",
    "ro",
    "xattr",
    "noprefix",
    "clone_children",
    "cpuset_v2_mode",
    "favordynmods",
    "none",
    "all",
];

/// One line of /proc/self/cgroup.
#[derive(Debug, PartialEq, Eq)]
struct Hierarchy<'a> {
    /// "" for cgroup2, else e.g. "cpu,cpuacct" or "name=systemd".
    controllers: &'a str,
    /// Our cgroup in it, as the kernel shows it to us.
    path: &'a str,
}

impl Hierarchy<'_> {
    fn is_v2(&self) -> bool {
        self.controllers.is_empty()
    }

    /// Its directory under /sys/fs/cgroup in the usual layout.
    fn dir(&self) -> String {
        if self.is_v2() {
            return "unified".into();
        }
        let names: Vec<&str> = self
            .controllers
            .split(',')
            .map(|c| c.strip_prefix("name=").unwrap_or(c))
            .collect();
        names.join(",")
    }
}

fn parse_own(text: &str) -> Vec<Hierarchy<'_>> {
    text.lines()
        .filter_map(|l| {
            let mut p = l.splitn(3, ':');
            let (_, controllers, path) = (p.next()?, p.next()?, p.next()?);
            Some(Hierarchy { controllers, path })
        })
        .collect()
}

pub(crate) fn mount(ctx: &mut Ctx<'_>, dest: &Path, o: &MountOptions) -> Result<(), RootfsError> {
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(mount_err(dest, "read /proc/self/cgroup"))?;
    let own = parse_own(&own);
    let unified = sys::statfs_type(c"/sys/fs/cgroup")
        .map_err(mount_err(dest, "statfs /sys/fs/cgroup"))?
        == sys::CGROUP2_MAGIC;
    let mut infos: Option<Vec<MountInfo>> = None;

    if unified {
        // Inside a cgroup namespace /proc/self/cgroup shows paths relative to
        // it, so there is no own directory to fall back to: a failure is final.
        if ctx.cgroupns {
            return match mounts::fresh(ctx, "cgroup2", OsStr::new("cgroup2"), dest, o, false) {
                Err(RootfsError::Mount { source, .. }) if sys::is_errno(&source, libc::EBUSY) => {
                    detached_cgroup2(ctx, dest, o)
                }
                r => r.map(drop),
            };
        }
        let h = own
            .iter()
            .find(|h| h.is_v2())
            .ok_or_else(|| invalid(dest, "no cgroup2 entry in /proc/self/cgroup"))?;
        return bind_own(ctx, h, Path::new(HOST_CGROUP), &mut infos, dest, None, o);
    }

    // v1 or hybrid: a tmpfs holding one directory per hierarchy, as on the host.
    let tmpfs = MountOptions {
        flags: libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        data: "mode=755".into(),
        propagation: o.propagation.clone(),
        ..MountOptions::default()
    };
    let top = mounts::fresh(ctx, "tmpfs", OsStr::new("tmpfs"), dest, &tmpfs, true)?
        .ok_or_else(|| invalid(dest, "tmpfs mount has no root"))?;
    for h in &own {
        let name = h.dir();
        let host_dir = Path::new(HOST_CGROUP).join(&name);
        // On a pure v1 host the cgroup2 hierarchy exists but is not mounted.
        if h.is_v2() && sys::statfs_type(c"/sys/fs/cgroup/unified").ok() != Some(sys::CGROUP2_MAGIC)
        {
            continue;
        }
        let sub = dest.join(&name);
        // Inside the tmpfs just made: nothing to resolve, nothing to undo.
        let c_name = sys::cstring(OsStr::new(&name)).map_err(mount_err(&sub, "name"))?;
        sys::mkdirat(top.as_fd(), &c_name, 0o755).map_err(mount_err(&sub, "mkdir"))?;
        let dir = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW;
        let dst = sys::openat(top.as_fd(), &c_name, dir, 0).map_err(mount_err(&sub, "open"))?;
        let dst = Rc::new(dst);
        if ctx.cgroupns {
            let (typ, data) = if h.is_v2() {
                ("cgroup2", String::new())
            } else {
                ("cgroup", h.controllers.to_string())
            };
            let co = MountOptions {
                flags: libc::MS_NOSUID
                    | libc::MS_NODEV
                    | libc::MS_NOEXEC
                    | (o.flags & libc::MS_RDONLY),
                data,
                ..MountOptions::default()
            };
            // cgroup v1 cannot be mounted from a user namespace; as above, no
            // own directory can stand in for it.
            mount_cgroupfs(ctx, typ, &sub, dst.as_fd(), &co)?;
        } else {
            bind_own(ctx, h, &host_dir, &mut infos, &sub, Some(dst), o)?;
        }
        // "cpu,cpuacct" also answers to "cpu" and "cpuacct".
        if name.contains(',') {
            for ss in name.split(',') {
                let link = sys::cstring(OsStr::new(ss)).map_err(mount_err(&sub, "name"))?;
                match sys::symlinkat(&c_name, top.as_fd(), &link) {
                    Err(e) if !sys::is_errno(&e, libc::EEXIST) => {
                        return Err(mount_err(&dest.join(ss), "symlink")(e))
                    }
                    _ => {}
                }
            }
        }
    }
    if o.flags & libc::MS_RDONLY != 0 {
        let ro = MountAttr {
            set: libc::MOUNT_ATTR_RDONLY,
            ..MountAttr::default()
        };
        sys::mount_setattr_fd(top.as_fd(), ro, false).map_err(mount_err(dest, "make read-only"))?;
    }
    Ok(())
}

/// A fresh cgroup (v1, `o.data` naming the controllers) or cgroup2 mount.
fn mount_cgroupfs(
    ctx: &mut Ctx<'_>,
    typ: &str,
    dest: &Path,
    dst: BorrowedFd<'_>,
    o: &MountOptions,
) -> Result<(), RootfsError> {
    let c_typ = sys::cstring(OsStr::new(typ)).map_err(mount_err(dest, "type"))?;
    let c_data = sys::cstring(OsStr::new(&o.data)).map_err(mount_err(dest, "options"))?;
    ctx.fd_paths
        .with(dst, |target| {
            sys::mount(
                Some(c"cgroup"),
                target,
                Some(&c_typ),
                o.flags,
                (!o.data.is_empty()).then_some(c_data.as_c_str()),
            )
        })
        .map_err(mount_err(
            dest,
            format!("mount {typ} with options {:?}", o.data),
        ))?;
    if !ctx.opts.new_mntns {
        let top = ctx
            .root
            .resolve(dest, true)
            .map_err(mount_err(dest, "reopen new mount"))?;
        ctx.undo.mounts.push(top);
    }
    Ok(())
}

/// cgroup2 where the destination already is the root of a cgroup2 mount: a
/// rootless container without a network namespace binds the host's /sys
/// recursively, /sys/fs/cgroup included, and mount(2) refuses the same
/// filesystem on the same mount point (EBUSY). A detached mount moved on top
/// is not subject to that rule, and still shows the container's cgroup
/// namespace. (runc binds a cgroup directory instead.)
fn detached_cgroup2(ctx: &mut Ctx<'_>, dest: &Path, o: &MountOptions) -> Result<(), RootfsError> {
    let fs = sys::fsopen(c"cgroup2").map_err(mount_err(dest, "fsopen cgroup2"))?;
    sys::fsconfig_create(fs.as_fd()).map_err(mount_err(dest, "create cgroup2"))?;
    let attrs = [
        (libc::MS_RDONLY, libc::MOUNT_ATTR_RDONLY),
        (libc::MS_NOSUID, libc::MOUNT_ATTR_NOSUID),
        (libc::MS_NODEV, libc::MOUNT_ATTR_NODEV),
        (libc::MS_NOEXEC, libc::MOUNT_ATTR_NOEXEC),
    ]
    .iter()
    .filter(|(ms, _)| o.flags & ms != 0)
    .fold(0, |a, (_, attr)| a | attr);
    let mnt = sys::fsmount(fs.as_fd(), attrs).map_err(mount_err(dest, "fsmount cgroup2"))?;
    let dst = ctx
        .root
        .resolve(dest, true)
        .map_err(mount_err(dest, "resolve mountpoint"))?;
    sys::move_mount_fd(mnt.as_fd(), dst.as_fd()).map_err(mount_err(dest, "move_mount cgroup2"))?;
    if !ctx.opts.new_mntns {
        let top = ctx
            .root
            .resolve(dest, true)
            .map_err(mount_err(dest, "reopen new mount"))?;
        ctx.undo.mounts.push(top);
    }
    Ok(())
}

fn invalid(dest: &Path, reason: &str) -> RootfsError {
    RootfsError::Invalid {
        field: format!("mount {}", dest.display()),
        reason: reason.into(),
    }
}

fn subsystems(m: &MountInfo) -> BTreeSet<&str> {
    m.super_options
        .split(',')
        .filter(|o| !NOT_CONTROLLERS.contains(o) && !o.starts_with("release_agent="))
        .collect()
}

/// Where our cgroup of `h` is on the host, per mountinfo: for hosts that
/// mount hierarchies elsewhere or only a subtree of them (nested containers).
fn source_from_mountinfo(h: &Hierarchy<'_>, infos: &[MountInfo]) -> Option<PathBuf> {
    let want: BTreeSet<&str> = h.controllers.split(',').filter(|c| !c.is_empty()).collect();
    infos
        .iter()
        .filter(|m| {
            if h.is_v2() {
                m.fstype == "cgroup2"
            } else {
                m.fstype == "cgroup" && subsystems(m) == want
            }
        })
        .find_map(|m| {
            let rel = if m.root == "/" {
                h.path
            } else {
                h.path
                    .strip_prefix(m.root.as_str())
                    .filter(|r| r.is_empty() || r.starts_with('/'))?
            };
            let source = Path::new(&m.mountpoint).join(rel.trim_start_matches('/'));
            source.exists().then_some(source)
        })
}

/// Bind the container's own directory of hierarchy `h` (mounted at
/// `host_dir` in the usual layout) at `dest`.
fn bind_own(
    ctx: &mut Ctx<'_>,
    h: &Hierarchy<'_>,
    host_dir: &Path,
    infos: &mut Option<Vec<MountInfo>>,
    dest: &Path,
    dst: Option<Rc<OwnedFd>>,
    o: &MountOptions,
) -> Result<(), RootfsError> {
    let bo = MountOptions {
        flags: o.flags & !(SB_FLAGS | libc::MS_REMOUNT),
        cleared: o.cleared,
        bind: true,
        recursive_bind: true,
        propagation: o.propagation.clone(),
        rec_attr: o.rec_attr,
        data: String::new(),
        idmap: None,
        copyup: false,
    };
    // The usual layout first; mountinfo only if our cgroup is not there.
    let source = host_dir.join(h.path.trim_start_matches('/'));
    match mounts::bind(ctx, &source, dest, dst.clone(), &bo, None) {
        Err(RootfsError::Mount { source: e, .. }) if sys::is_errno(&e, libc::ENOENT) => {}
        r => return r,
    }
    if infos.is_none() {
        *infos = Some(mountinfo::read().map_err(mount_err(dest, "read /proc/self/mountinfo"))?);
    }
    let source = source_from_mountinfo(h, infos.as_deref().unwrap_or(&[])).ok_or_else(|| {
        invalid(
            dest,
            &format!("cannot find own cgroup {} ({})", h.path, h.controllers),
        )
    })?;
    mounts::bind(ctx, &source, dest, dst, &bo, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mi(fstype: &str, mp: &str, root: &str, opts: &str) -> MountInfo {
        MountInfo {
            root: root.into(),
            mountpoint: mp.into(),
            fstype: fstype.into(),
            super_options: opts.into(),
        }
    }

    const OWN: &str = "9:name=systemd:/\n4:memory:/process_api/x\n2:cpu,cpuacct:/a\n0::/b\n";

    #[test]
    fn parses_own_cgroups_and_dirs() {
        let own = parse_own(OWN);
        assert_eq!(own.len(), 4);
        assert_eq!(own[0].dir(), "systemd");
        assert_eq!(own[1].dir(), "memory");
        assert_eq!(own[1].path, "/process_api/x");
        assert_eq!(own[2].dir(), "cpu,cpuacct");
        assert!(own[3].is_v2());
        assert_eq!(own[3].dir(), "unified");
    }

    #[test]
    fn mountinfo_fallback_strips_mount_root() {
        // A nested host: only /docker/c1 of the memory hierarchy is mounted
        // (here at "/", so that the resulting source path exists).
        let infos = vec![
            mi("cgroup", "/", "/", "rw,cpu"),
            mi("cgroup", "/", "/docker/c1", "rw,memory"),
        ];
        let h = Hierarchy {
            controllers: "memory",
            path: "/docker/c1/proc",
        };
        assert_eq!(
            source_from_mountinfo(&h, &infos),
            Some(PathBuf::from("/proc"))
        );
        let h = Hierarchy {
            controllers: "cpu",
            path: "/docker/c1/proc",
        };
        assert_eq!(source_from_mountinfo(&h, &infos), None);
        let sd = mi(
            "cgroup",
            "/sys/fs/cgroup/systemd",
            "/",
            "rw,xattr,name=systemd",
        );
        assert_eq!(subsystems(&sd), BTreeSet::from(["name=systemd"]));
    }
}
