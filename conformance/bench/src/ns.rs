//! The bench's own environment: one private mount namespace shared by every
//! runtime it spawns, a tmpfs work directory that vanishes with that
//! namespace, and child-subreaper status so container inits get reaped.

use std::fs;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use crate::error::{Error, Result};

const UNIFIED: &str = "/sys/fs/cgroup/unified";
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// What the host's cgroup layout was before the bench changed its view.
pub fn cgroup_layout() -> String {
    if fs_magic("/sys/fs/cgroup") == Some(CGROUP2_SUPER_MAGIC) {
        "v2".into()
    } else if fs_magic(UNIFIED) == Some(CGROUP2_SUPER_MAGIC) {
        "hybrid (v1 + cgroup2 at /sys/fs/cgroup/unified)".into()
    } else {
        "v1".into()
    }
}

// f_type is a different integer type on some architectures.
#[allow(clippy::unnecessary_cast)]
fn fs_magic(path: &str) -> Option<i64> {
    nix::sys::statfs::statfs(path)
        .ok()
        .map(|s| s.filesystem_type().0 as i64)
}

/// Enters a new mount namespace, stops propagation back to the host
/// (rslave: host mounts still show up here, ours never leave) and detaches
/// the cgroup2 mount of a hybrid host. crun 1.8.1 refuses hybrid layouts,
/// and doing this once here, rather than through a wrapper per call, means
/// every runtime sees the same cgroups and no wrapper cost is measured.
/// Returns whether a unified mount was detached.
pub fn enter_private_mount_ns() -> Result<bool> {
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| Error::sys("unshare(CLONE_NEWNS)", e))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(|e| Error::sys("make / rslave", e))?;
    match umount2(UNIFIED, MntFlags::MNT_DETACH) {
        Ok(()) => Ok(true),
        // Not a mount point or absent: a pure v1 or v2 host, nothing to hide.
        Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(false),
        Err(e) => Err(Error::sys(format!("umount2({UNIFIED}, MNT_DETACH)"), e)),
    }
}

pub fn become_subreaper() -> Result<()> {
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| Error::sys("prctl(PR_SET_CHILD_SUBREAPER)", e))
}

/// A tmpfs mounted only inside the bench's namespace: state roots and
/// bundles live in memory (as /run does for real engines), and nothing of
/// them survives the bench even if it is killed.
pub struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    pub fn create(parent: &Path) -> Result<WorkDir> {
        let path = parent.join(format!("berth-bench-{}", std::process::id()));
        fs::create_dir(&path).map_err(|e| Error::io("create work dir", &path, e))?;
        let r = mount(
            Some("tmpfs"),
            &path,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=0711"),
        );
        if let Err(e) = r {
            let _ = fs::remove_dir(&path);
            return Err(Error::sys(format!("mount tmpfs on {}", path.display()), e));
        }
        Ok(WorkDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = umount2(&self.path, MntFlags::MNT_DETACH);
        let _ = fs::remove_dir(&self.path);
    }
}

/// The bench's parent cgroup (`/NAME` in every hierarchy); runtimes create
/// one child per container and remove it on delete, the parent is removed
/// on drop.
pub struct CgroupParent {
    pub name: String,
}

impl CgroupParent {
    pub fn new() -> CgroupParent {
        CgroupParent {
            name: format!("berth-bench-{}", std::process::id()),
        }
    }

    /// Mount points of every cgroup hierarchy visible here.
    fn mounts() -> Vec<PathBuf> {
        let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
            return Vec::new();
        };
        info.lines()
            .filter_map(|l| {
                let (pre, post) = l.split_once(" - ")?;
                let fstype = post.split(' ').next()?;
                let mnt = pre.split(' ').nth(4)?;
                (fstype == "cgroup" || fstype == "cgroup2").then(|| PathBuf::from(mnt))
            })
            .collect()
    }
}

impl Drop for CgroupParent {
    fn drop(&mut self) {
        for m in Self::mounts() {
            remove_tree(&m.join(&self.name));
        }
    }
}

/// cgroupfs directories go with rmdir only, children first. A cgroup whose
/// last task just exited can stay busy for a moment, hence the retries.
fn remove_tree(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path());
            }
        }
    }
    for _ in 0..50 {
        match fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    }
    eprintln!("berth-bench: could not remove cgroup {}", dir.display());
}
