//! Idmapped bind mounts (`idmap`/`ridmap`, mounts[].uidMappings and
//! gidMappings): the detached tree from open_tree gets MOUNT_ATTR_IDMAP with
//! a user namespace holding the mappings. That namespace is made by a short
//! lived child of the init, so it nests under whatever user namespace the
//! init is in; the host IDs of the mappings are translated through the
//! init's own maps, so the result is the same with or without a container
//! user namespace.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::LinuxIdMapping;
use pathrs::flags::OpenFlags;
use pathrs::procfs::{ProcfsBase, ProcfsHandleBuilder};

use super::RootfsError;

/// What an idmapped mount asks for.
#[derive(Debug, Clone, Default)]
pub(crate) struct Idmap {
    /// `ridmap`: the whole tree, not only its top mount.
    pub recursive: bool,
    pub uid: Vec<LinuxIdMapping>,
    pub gid: Vec<LinuxIdMapping>,
}

/// Idmapped bind sources made by the runtime before the init is cloned
/// (mount index, detached tree). Idmapping a host filesystem needs
/// CAP_SYS_ADMIN in the host user namespace, which an init in a container
/// user namespace lacks; it inherits these fds and only attaches them.
#[derive(Debug, Default)]
pub struct IdmappedTrees(pub(crate) Vec<(usize, OwnedFd)>);

impl IdmappedTrees {
    /// The fds the init must keep open.
    pub fn raw_fds(&self) -> Vec<i32> {
        self.0.iter().map(|(_, fd)| fd.as_raw_fd()).collect()
    }

    pub(crate) fn take(&mut self, index: usize) -> Option<OwnedFd> {
        let pos = self.0.iter().position(|(i, _)| *i == index)?;
        Some(self.0.swap_remove(pos).1)
    }
}

fn err(dest: &Path, op: impl Into<String>) -> impl FnOnce(io::Error) -> RootfsError {
    super::mount_err(dest, op)
}

/// Idmap the detached tree `tree` (the bind source of `dest`).
pub(crate) fn apply(tree: BorrowedFd<'_>, m: &Idmap, dest: &Path) -> Result<(), RootfsError> {
    let uid = translate(&m.uid, "/proc/self/uid_map").map_err(err(dest, "uidMappings"))?;
    let gid = translate(&m.gid, "/proc/self/gid_map").map_err(err(dest, "gidMappings"))?;
    let userns = userns_with(&uid, &gid).map_err(err(dest, "make the idmap user namespace"))?;
    if let Err(e) = crate::sys::mount_setattr_idmap(tree, userns.as_fd(), m.recursive) {
        let why = if e.raw_os_error() == Some(libc::EINVAL) {
            " (the source filesystem may not support idmapped mounts)"
        } else {
            ""
        };
        return Err(err(dest, format!("idmap the mount{why}"))(e));
    }
    Ok(())
}

/// Rewrite each mapping's hostID into the ID that names the same host ID in
/// our user namespace (identity outside one): the child's map is relative
/// to us. A host range we do not hold in one piece cannot be mapped.
fn translate(maps: &[LinuxIdMapping], own: &str) -> io::Result<String> {
    let mut ours = String::new();
    std::fs::File::open(own)?.read_to_string(&mut ours)?;
    let ours: Vec<[u64; 3]> = ours
        .lines()
        .filter_map(|l| {
            let v: Vec<u64> = l
                .split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect();
            (v.len() == 3).then(|| [v[0], v[1], v[2]])
        })
        .collect();
    let mut out = String::new();
    for m in maps {
        let (c, h, n) = (m.container_id() as u64, m.host_id() as u64, m.size() as u64);
        let inner = ours
            .iter()
            .find(|[_, oh, on]| h >= *oh && h + n <= oh + on)
            .map(|[oi, oh, _]| oi + (h - oh))
            .ok_or_else(|| {
                io::Error::other(format!(
                    "host IDs {h}..{} are not mapped into the runtime's user namespace",
                    h + n
                ))
            })?;
        out.push_str(&format!("{c} {inner} {n}\n"));
    }
    Ok(out)
}

/// A user namespace with these maps, held by a child that lives only until
/// its namespace fd is open.
fn userns_with(uid_map: &str, gid_map: &str) -> io::Result<OwnedFd> {
    let child = crate::sys::clone::clone(nix::sched::CloneFlags::CLONE_NEWUSER, None)?.pid;
    if child == 0 {
        // The child only waits to be killed. Dumpable, so its /proc files
        // belong to its own uid (the init's) rather than to the host root
        // owning the inherited mm, which a container init in a user
        // namespace could not open for writing.
        let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::prctl::set_dumpable(true);
        loop {
            nix::unistd::pause();
        }
    }
    let res = (|| {
        // A fresh procfs of our own pid namespace, where the child's pid
        // means the child: not /proc, nor pathrs's cached handle, which may
        // both be the host's when the init has its own pid namespace.
        let procfs = ProcfsHandleBuilder::new()
            .unmasked()
            .build()
            .map_err(io::Error::other)?;
        let pid = ProcfsBase::ProcPid(child as u32);
        for (file, map) in [("uid_map", uid_map), ("gid_map", gid_map)] {
            procfs
                .open(pid, file, OpenFlags::O_WRONLY | OpenFlags::O_CLOEXEC)
                .map_err(|e| io::Error::other(format!("open {file}: {}", chain(&e))))?
                .write_all(map.as_bytes())
                .map_err(|e| io::Error::new(e.kind(), format!("write {file} {map:?}: {e}")))?;
        }
        procfs
            .open_follow(pid, "ns/user", OpenFlags::O_RDONLY | OpenFlags::O_CLOEXEC)
            .map(OwnedFd::from)
            .map_err(|e| io::Error::other(format!("open ns/user: {}", chain(&e))))
    })();
    let child = nix::unistd::Pid::from_raw(child);
    let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(child, None);
    res
}

/// pathrs errors keep the errno in their sources.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(&format!(": {c}"));
        cur = c.source();
    }
    s
}
