//! The "cgroup" mount type. With a cgroup namespace the container gets real
//! cgroup filesystems (rooted at its namespace); without one it only gets
//! bind mounts of its own cgroup directories, never the host's whole tree.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::mountinfo::{self, MountInfo};
use super::mounts::{self, mount_err};
use super::options::{MountOptions, SB_FLAGS};
use super::sys::{self, MountAttr};
use super::{Ctx, RootfsError};

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

pub(crate) fn mount(ctx: &mut Ctx<'_>, dest: &Path, o: &MountOptions) -> Result<(), RootfsError> {
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(mount_err(dest, "read /proc/self/cgroup"))?;
    let infos = mountinfo::read().map_err(mount_err(dest, "read /proc/self/mountinfo"))?;
    let unified = sys::statfs_type(c"/sys/fs/cgroup")
        .map_err(mount_err(dest, "statfs /sys/fs/cgroup"))?
        == sys::CGROUP2_MAGIC;

    if unified {
        if ctx.cgroupns {
            match mounts::fresh(ctx, "cgroup2", OsStr::new("cgroup2"), dest, o, false) {
                // In a user namespace without its own cgroup namespace the
                // kernel refuses; the container's own directory still works.
                Err(RootfsError::Mount { source, .. })
                    if sys::is_errno(&source, libc::EPERM)
                        || sys::is_errno(&source, libc::EBUSY) => {}
                r => return r.map(drop),
            }
        }
        let h = infos
            .iter()
            .find(|m| m.fstype == "cgroup2" && m.mountpoint == HOST_CGROUP)
            .ok_or_else(|| invalid(dest, "no cgroup2 mount at /sys/fs/cgroup"))?;
        return bind_own(ctx, h, &own, dest, None, o);
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
    for h in hierarchies(&infos) {
        let name = Path::new(&h.mountpoint)
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let sub = dest.join(&name);
        // Inside the tmpfs just made: nothing to resolve, nothing to undo.
        let c_name = sys::cstring(OsStr::new(&name)).map_err(mount_err(&sub, "name"))?;
        sys::mkdirat(top.as_fd(), &c_name, 0o755).map_err(mount_err(&sub, "mkdir"))?;
        let dir = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW;
        let dst = sys::openat(top.as_fd(), &c_name, dir, 0).map_err(mount_err(&sub, "open"))?;
        let dst = Rc::new(dst);
        if ctx.cgroupns {
            let (typ, data) = if h.fstype == "cgroup2" {
                ("cgroup2", String::new())
            } else {
                ("cgroup", subsystems(h).join(","))
            };
            let co = MountOptions {
                flags: libc::MS_NOSUID
                    | libc::MS_NODEV
                    | libc::MS_NOEXEC
                    | (o.flags & libc::MS_RDONLY),
                data,
                ..MountOptions::default()
            };
            match mount_cgroupfs(ctx, typ, &sub, dst.as_fd(), &co) {
                // cgroup v1 cannot be mounted from a user namespace.
                Err(RootfsError::Mount { source, .. }) if sys::is_errno(&source, libc::EPERM) => {
                    bind_own(ctx, h, &own, &sub, Some(dst), o)?
                }
                r => r?,
            }
        } else {
            bind_own(ctx, h, &own, &sub, Some(dst), o)?;
        }
        // "cpu,cpuacct" also answers to "cpu" and "cpuacct".
        if name.contains(',') {
            let target = sys::cstring(OsStr::new(&name)).map_err(mount_err(&sub, "name"))?;
            for ss in name.split(',') {
                let link = sys::cstring(OsStr::new(ss)).map_err(mount_err(&sub, "name"))?;
                match sys::symlinkat(&target, top.as_fd(), &link) {
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
    sys::mount(
        Some(c"cgroup"),
        sys::ProcFd::new(dst).as_cstr(),
        Some(&c_typ),
        o.flags,
        (!o.data.is_empty()).then_some(c_data.as_c_str()),
    )
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

fn invalid(dest: &Path, reason: &str) -> RootfsError {
    RootfsError::Invalid {
        field: format!("mount {}", dest.display()),
        reason: reason.into(),
    }
}

/// The host's cgroup hierarchies under /sys/fs/cgroup, one per directory.
fn hierarchies(infos: &[MountInfo]) -> Vec<&MountInfo> {
    let mut out: Vec<&MountInfo> = Vec::new();
    for m in infos {
        if (m.fstype == "cgroup" || m.fstype == "cgroup2")
            && Path::new(&m.mountpoint).parent() == Some(Path::new(HOST_CGROUP))
            && !out.iter().any(|o| o.mountpoint == m.mountpoint)
        {
            out.push(m);
        }
    }
    out
}

fn subsystems(m: &MountInfo) -> Vec<&str> {
    m.super_options
        .split(',')
        .filter(|o| !NOT_CONTROLLERS.contains(o) && !o.starts_with("release_agent="))
        .collect()
}

/// Our own cgroup in hierarchy `h`, from /proc/self/cgroup.
fn own_path<'a>(h: &MountInfo, own: &'a str) -> Option<&'a str> {
    let want: BTreeSet<&str> = if h.fstype == "cgroup2" {
        BTreeSet::new()
    } else {
        subsystems(h).into_iter().collect()
    };
    own.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let id = parts.next()?;
        let controllers = parts.next()?;
        let path = parts.next()?;
        let have: BTreeSet<&str> = controllers.split(',').filter(|c| !c.is_empty()).collect();
        let v2_line = id == "0" && controllers.is_empty();
        let matches = if h.fstype == "cgroup2" {
            v2_line
        } else {
            !v2_line && have == want
        };
        matches.then_some(path)
    })
}

/// Bind the container's own directory of hierarchy `h` at `dest`.
fn bind_own(
    ctx: &mut Ctx<'_>,
    h: &MountInfo,
    own: &str,
    dest: &Path,
    dst: Option<Rc<OwnedFd>>,
    o: &MountOptions,
) -> Result<(), RootfsError> {
    let path = own_path(h, own).ok_or_else(|| {
        invalid(
            dest,
            &format!(
                "own cgroup of {} not found in /proc/self/cgroup",
                h.mountpoint
            ),
        )
    })?;
    // The host mount may itself show only a subtree (its mountinfo root).
    let rel = if h.root == "/" {
        Some(path)
    } else {
        path.strip_prefix(h.root.as_str())
            .filter(|r| r.is_empty() || r.starts_with('/'))
    }
    .ok_or_else(|| {
        invalid(
            dest,
            &format!("own cgroup {path} is outside the mount of {}", h.mountpoint),
        )
    })?;
    let source: PathBuf = Path::new(&h.mountpoint).join(rel.trim_start_matches('/'));
    let bo = MountOptions {
        flags: o.flags & !(SB_FLAGS | libc::MS_REMOUNT),
        cleared: o.cleared,
        bind: true,
        recursive_bind: true,
        propagation: o.propagation.clone(),
        rec_attr: o.rec_attr,
        data: String::new(),
    };
    mounts::bind(ctx, &source, dest, dst, &bo)
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
    fn finds_own_cgroup_per_hierarchy() {
        let mem = mi("cgroup", "/sys/fs/cgroup/memory", "/", "rw,memory");
        assert_eq!(own_path(&mem, OWN), Some("/process_api/x"));
        let cpu = mi(
            "cgroup",
            "/sys/fs/cgroup/cpu,cpuacct",
            "/",
            "rw,cpuacct,cpu",
        );
        assert_eq!(own_path(&cpu, OWN), Some("/a"));
        let sd = mi(
            "cgroup",
            "/sys/fs/cgroup/systemd",
            "/",
            "rw,xattr,name=systemd",
        );
        assert_eq!(own_path(&sd, OWN), Some("/"));
        let v2 = mi("cgroup2", "/sys/fs/cgroup/unified", "/", "rw");
        assert_eq!(own_path(&v2, OWN), Some("/b"));
        let pids = mi("cgroup", "/sys/fs/cgroup/pids", "/", "rw,pids");
        assert_eq!(own_path(&pids, OWN), None);
    }

    #[test]
    fn hierarchies_only_direct_children() {
        let infos = vec![
            mi("tmpfs", "/sys/fs/cgroup", "/", "rw"),
            mi("cgroup", "/sys/fs/cgroup/cpu", "/", "rw,cpu"),
            mi("cgroup", "/x/sys/fs/cgroup/cpu", "/", "rw,cpu"),
            mi("cgroup2", "/sys/fs/cgroup/unified", "/", "rw"),
        ];
        let h = hierarchies(&infos);
        assert_eq!(h.len(), 2);
        assert_eq!(subsystems(h[0]), vec!["cpu"]);
    }
}
