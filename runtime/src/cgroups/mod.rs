//! cgroup management for cgroup v1, hybrid (v1 controllers plus a cgroup2
//! mount, e.g. /sys/fs/cgroup/unified) and pure v2 hosts.
//!
//! Two drivers ([`Driver`]), chosen at create and recorded in the state:
//! cgroupfs (below: berth makes the directories), and systemd (`systemd`:
//! a transient unit holds the container, and the same file writes follow).
//! Callers use the same [`Cgroup`] methods for both.
//!
//! Life cycle, possibly spread over several berth processes:
//!
//! 1. [`Cgroup::resolve`] reads /proc/self/cgroup and /proc/self/mountinfo
//!    once and computes one directory per hierarchy. Nothing is created.
//! 2. [`Cgroup::create`] checks every requested resource first (an
//!    unsupported field fails before any mkdir), makes the directories,
//!    applies the limits, and on any error removes what it made.
//! 3. The container init joins the cgroup by itself through a [`Joiner`]:
//!    clone3's `CLONE_INTO_CGROUP` for cgroup2, and a write of `0` to each v1
//!    `tasks` file (see `join`); [`Cgroup::add_pid`] where that fails.
//!    For an init cloned before its v1 directories exist, `create` is
//!    split: [`Cgroup::precreate`] before the clone, `create` after.
//! 4. The `Cgroup` is serialised into the container state (after `create`,
//!    since it records which directories `create` made) and later
//!    deserialised by `kill`/`delete` for [`Cgroup::pids`] and
//!    [`Cgroup::remove`], by `update` for [`Cgroup::update`] (the same
//!    mapping as `create`, on the existing directories, devices left
//!    alone), and by `pause`/`resume`/`state` for [`Cgroup::set_frozen`]
//!    and [`Cgroup::is_frozen`] (see `freezer`).
//!
//! Path rules follow runc's cgroupfs drivers: an absolute `cgroupsPath` lives
//! under each hierarchy root; a relative one under berth's own cgroup of that
//! hierarchy, except on pure v2 where it is placed under the *parent* of
//! berth's own cgroup, because berth's own cgroup holds processes and so can
//! never enable controllers for a child. A `..` that would leave the
//! hierarchy root is refused.
//!
//! Device rules are applied in config order with "last matching rule wins"
//! semantics, starting from the kernel's allow-all state; runc's defaults
//! (mknod of any device, null, zero, full, random, urandom, tty, ptmx,
//! pts/*) follow the config's rules, then one rule per `linux.devices`
//! entry. On v1 they are written to devices.deny/devices.allow (so that
//! after a leading deny-all, devices.list lists the allow rules in config
//! order); on v2 they are compiled into a `BPF_PROG_TYPE_CGROUP_DEVICE`
//! program (see `bpf`). A rule set that denies nothing is not written at
//! all, since allow rules on top of allow-all change nothing.
//!
//! Resources (`resources`, a file per controller), per field, where the host
//! lacks something:
//! - memory, cpu (incl. burst, idle, cpuset), pids: v1 files, or v2 with
//!   runc's conversions (shares -> cpu.weight, memsw -> memory.swap.max).
//!   v1-only fields (swappiness, kernel, kernelTCP, realtime*,
//!   disableOOMKiller) are errors on v2; `memory.kernel` is skipped on a v1
//!   kernel without memory.kmem.limit_in_bytes (a no-op since 5.x).
//!   useHierarchy true is always so; false is refused. checkBeforeUpdate is
//!   honoured by `update` (usage above the new limit is an error).
//! - blockIO: v1 prefers BFQ's `blkio.bfq.weight[_device]` and falls back to
//!   CFQ's `blkio.weight[_device]`, as runc does; leafWeight needs CFQ
//!   (blkio.leaf_weight), so on a kernel without CFQ it is an error naming
//!   the field. v2: io.bfq.weight if BFQ offers it, else io.weight with
//!   runc's conversion; weightDevice needs io.bfq.weight (an error without
//!   it, where runc drops it silently); leafWeight is an error; throttles
//!   go to blkio.throttle.* / io.max (rate 0 lifts the limit).
//! - hugepageLimits: `hugetlb.<size>.limit_in_bytes` on a v1 hugetlb
//!   hierarchy, `hugetlb.<size>.max` on v2. A hybrid host without a v1 hugetlb
//!   hierarchy but with hugetlb on its cgroup2 mount gets the v2 files
//!   there (the controller is enabled down the cgroup2 path), since that is
//!   the only hierarchy able to enforce it. The reservation files get the
//!   same limit where the kernel has them.
//! - network: net_cls.classid / net_prio.ifpriomap, v1 only.
//! - rdma: rdma.max on v1 and v2.
//! - unified: raw file writes on pure v2 only (last, so they override typed
//!   fields); a key must be a plain file name (no "/" or ".."), and its
//!   controller must be available; an error on v1 and hybrid, as in runc.
//!
//! A missing hierarchy is an error naming the field and controller, a
//! missing file one naming the field and the file. A value that asks for
//! nothing (an empty `unified` map, `disableOOMKiller: false`) is accepted.

mod bpf;
#[cfg(any(test, fuzzing))]
mod bpf_sim;
mod devices;
mod freezer;
mod fsutil;
#[cfg(fuzzing)]
pub mod fuzz;
mod join;
mod layout;
mod plan;
mod resources;
pub mod stats;
pub mod systemd;

pub use join::{Hierarchies, Joiner};

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxResources};
use serde::{Deserialize, Serialize};

/// How the host mounts its cgroup hierarchies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Only v1 hierarchies.
    V1,
    /// v1 hierarchies with the controllers, plus a cgroup2 mount that berth
    /// joins and uses only for controllers no v1 hierarchy has (hugetlb).
    Hybrid,
    /// A single cgroup2 hierarchy.
    V2,
}

/// One directory of the container's cgroup, in one hierarchy.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Dir {
    /// The hierarchy's controllers as /proc/self/cgroup names them
    /// ("cpu,cpuacct", "name=systemd"); empty for cgroup2.
    controllers: String,
    /// Absolute path of the container's cgroup directory.
    path: PathBuf,
    /// Number of components of `path` below the hierarchy's mount point.
    levels: u16,
    /// Number of trailing components of `path` that `create` made; `remove`
    /// deletes exactly these. A Cell because the public API takes `&self`.
    #[serde(default)]
    created: Cell<u16>,
}

impl Dir {
    fn is_unified(&self) -> bool {
        self.controllers.is_empty()
    }

    fn has_controller(&self, name: &str) -> bool {
        self.controllers.split(',').any(|c| c == name)
    }
}

/// Who makes and owns the container's cgroup. Chosen at create and
/// recorded in the state (see [`Cgroup::driver`]), so that every later
/// command uses the same one without being told.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Driver {
    /// berth makes the directories and writes the files itself.
    #[default]
    Cgroupfs,
    /// A transient systemd unit (`--systemd-cgroup`), see `systemd`.
    Systemd,
    /// The same in the caller's own systemd instance, on the user bus
    /// (`--systemd-cgroup` as an ordinary user), see `systemd`.
    SystemdUser,
}

/// The container's cgroup: its directory in every hierarchy of the host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cgroup {
    layout: Layout,
    dirs: Vec<Dir>,
    /// Set for the systemd driver: the container's unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    systemd: Option<systemd::Unit>,
    /// systemd driver, between `create` and the init's `add_pid`: what to
    /// apply once the unit exists.
    #[serde(skip)]
    pending: RefCell<Option<systemd::Pending>>,
}

/// A cgroup failure; every message is one line naming the path or field.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}: {reason}")]
    HostLayout { path: PathBuf, reason: String },
    #[error("linux.cgroupsPath {path:?}: {reason}")]
    BadPath { path: String, reason: &'static str },
    #[error("{field} is not supported yet")]
    Unsupported { field: String },
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{field} needs the {controller} cgroup controller, which this host does not provide")]
    NoController { field: String, controller: String },
    #[error("mkdir {path}: {source}")]
    Mkdir { path: PathBuf, source: io::Error },
    #[error("{field}: writing {value:?} to {path}: {source}")]
    Write {
        field: String,
        path: PathBuf,
        value: String,
        source: io::Error,
    },
    #[error("adding pid {pid} to {path}: {source}")]
    AddPid {
        pid: i32,
        path: PathBuf,
        source: io::Error,
    },
    #[error("linux.resources.devices: {op} of the eBPF device filter on {path}: {source}{log}")]
    Bpf {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
        /// The verifier's last log line, prefixed with ": ", if any.
        log: String,
    },
    #[error("rmdir {path}: {source}")]
    Rmdir { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Systemd(#[from] systemd::BusError),
    /// What a user's systemd instance cannot give a container.
    #[error("{0}")]
    NotDelegated(String),
}

impl Cgroup {
    /// Resolve `linux.cgroupsPath` on this host's layout (see the module docs
    /// for the path rules). `None` or an empty path means the relative path
    /// `<id>`. Reads only /proc/self/cgroup and /proc/self/mountinfo.
    pub fn resolve(cgroups_path: Option<&Path>, id: &str) -> Result<Cgroup, CgroupError> {
        let own = fsutil::read_proc("/proc/self/cgroup")?;
        let mounts = fsutil::read_proc("/proc/self/mountinfo")?;
        layout::resolve(&own, &mounts, cgroups_path, id)
    }

    /// No cgroup at all: what a rootless container runs in when its user
    /// cannot write the cgroup tree and it asks for no limit (as runc). With
    /// no directories, joining and removing do nothing and `pids` is empty;
    /// operations that need a cgroup check [`Cgroup::is_none`] first.
    pub fn none(&self) -> Cgroup {
        Cgroup {
            layout: self.layout,
            dirs: Vec::new(),
            systemd: None,
            pending: RefCell::new(None),
        }
    }

    pub fn is_none(&self) -> bool {
        self.dirs.is_empty()
    }

    /// Resolve the cgroup of a container with `driver`. For cgroupfs this is
    /// [`Cgroup::resolve`]; for systemd `cgroups_path` is runc's
    /// `slice:prefix:name` (unset: `system.slice`, prefix `berth`, the id),
    /// and `annotations` may add unit properties (`org.systemd.property.*`).
    /// `host_uid` is the caller's uid outside any user namespace, which names
    /// its systemd instance ([`Driver::SystemdUser`] only).
    pub fn resolve_with(
        driver: Driver,
        cgroups_path: Option<&Path>,
        annotations: Option<&HashMap<String, String>>,
        id: &str,
        host_uid: u32,
    ) -> Result<Cgroup, CgroupError> {
        if driver == Driver::Cgroupfs {
            return Cgroup::resolve(cgroups_path, id);
        }
        let user = (driver == Driver::SystemdUser).then_some(host_uid);
        let path = match cgroups_path.map(|p| p.to_str()) {
            Some(None) => {
                return Err(CgroupError::BadPath {
                    path: cgroups_path.unwrap_or(Path::new("")).display().to_string(),
                    reason: "not UTF-8",
                })
            }
            Some(Some(p)) => Some(p),
            None => None,
        };
        let own = fsutil::read_proc("/proc/self/cgroup")?;
        let mounts = fsutil::read_proc("/proc/self/mountinfo")?;
        let empty = HashMap::new();
        let cg = systemd::resolve(&own, &mounts, path, annotations.unwrap_or(&empty), id, user)?;
        systemd::check_bus(cg.systemd.as_ref().expect("set by resolve"))?;
        Ok(cg)
    }

    /// The driver this cgroup was created with.
    pub fn driver(&self) -> Driver {
        match &self.systemd {
            Some(u) if u.manager.is_some() => Driver::SystemdUser,
            Some(_) => Driver::Systemd,
            None => Driver::Cgroupfs,
        }
    }

    /// In a user's systemd instance: the manager's cgroup, below which
    /// berth may only use what systemd delegated.
    fn user_manager(&self) -> Option<&str> {
        self.systemd.as_ref().and_then(|u| u.manager.as_deref())
    }

    /// The systemd unit holding the container (systemd driver only).
    pub fn unit(&self) -> Option<&str> {
        self.systemd.as_ref().map(|u| u.name.as_str())
    }

    /// The host layout this cgroup was resolved on.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The container's cgroup directory in every hierarchy, the cgroup2 one
    /// (if any) last.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.dirs.iter().map(|d| d.path.as_path())
    }

    /// The directory holding `controller`'s files ("memory", "cpu", ...):
    /// the single directory on pure v2, that hierarchy's on v1 and hybrid.
    pub fn controller_path(&self, controller: &str) -> Option<&Path> {
        let dir = match self.layout {
            Layout::V2 => self.dirs.first(),
            _ => self
                .dirs
                .iter()
                .find(|d| !d.is_unified() && d.has_controller(controller)),
        };
        dir.map(|d| d.path.as_path())
    }

    /// Make every hierarchy's directory, then apply `resources` and the
    /// device rules: `linux.resources.devices` in order, then the default
    /// devices a runtime creates, then one allow rule per `linux.devices`
    /// entry. Everything is validated before the first mkdir; on any error
    /// the directories made here are removed again.
    pub fn create(
        &self,
        resources: Option<&LinuxResources>,
        devices: Option<&[LinuxDevice]>,
    ) -> Result<(), CgroupError> {
        if self.systemd.is_some() {
            // The unit needs the init's pid: started by add_pid.
            let pending = systemd::create(self, resources, devices)?;
            self.pending.replace(Some(pending));
            return Ok(());
        }
        let plan = plan::build(self, resources, devices)?;
        self.make_dirs(|_| true)?;
        plan::apply(self, &plan).inspect_err(|_| {
            let _ = self.remove();
        })
    }

    /// Whether berth makes v1 directories for this cgroup (the cgroupfs
    /// driver on a v1 or hybrid host). Those an init can join by itself
    /// after the clone, so they may be made while it sets up (see
    /// `Plan::unshare_early`); a cgroup2 one must exist before the clone.
    pub fn has_v1_dirs(&self) -> bool {
        self.systemd.is_none() && self.dirs.iter().any(|d| !d.is_unified())
    }

    /// The part of [`Cgroup::create`] needed before the init is cloned when
    /// the v1 directories are made after: check every requested resource,
    /// and make the cgroup2 directory of a hybrid host for the init to be
    /// born in. `create` makes the rest and keeps this directory (its mkdir
    /// of an existing leaf leaves what this one recorded as made).
    pub fn precreate(
        &self,
        resources: Option<&LinuxResources>,
        devices: Option<&[LinuxDevice]>,
    ) -> Result<(), CgroupError> {
        plan::build(self, resources, devices)?;
        self.make_dirs(Dir::is_unified)
    }

    /// mkdir -p the directories `pick` chooses; on an error, remove what
    /// was made (by this call or an earlier one) and return it.
    fn make_dirs(&self, pick: impl Fn(&Dir) -> bool) -> Result<(), CgroupError> {
        for dir in self.dirs.iter().filter(|d| pick(d)) {
            if let Err(e) = fsutil::mkdir_p(dir) {
                let _ = self.remove();
                return Err(e);
            }
        }
        Ok(())
    }

    /// Apply `resources` to the existing cgroup of a live container (the
    /// `update` command). Devices are left alone. With
    /// `memory.checkBeforeUpdate`, a memory limit below the current usage
    /// is refused before anything is written.
    pub fn update(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        if let Some(m) = resources.memory() {
            if let (Some(true), Some(limit)) = (m.check_before_update(), m.limit()) {
                self.check_usage(limit)?;
            }
        }
        if self.systemd.is_some() {
            return systemd::update(self, resources);
        }
        plan::update(self, resources)
    }

    fn check_usage(&self, limit: i64) -> Result<(), CgroupError> {
        let Some(dir) = self.controller_path("memory") else {
            return Ok(());
        };
        let file = if self.layout == Layout::V2 {
            "memory.current"
        } else {
            "memory.usage_in_bytes"
        };
        let path = dir.join(file);
        let text = fsutil::read_file(&path).map_err(|source| CgroupError::Read {
            path: path.clone(),
            source,
        })?;
        let usage: i64 = text.trim().parse().unwrap_or(0);
        if limit >= 0 && usage > limit {
            return Err(CgroupError::Invalid {
                field: "linux.resources.memory.limit".into(),
                reason: format!(
                    "{limit} is below the current usage {usage} (checkBeforeUpdate is set)"
                ),
            });
        }
        Ok(())
    }

    /// Write `pid` into cgroup.procs of every hierarchy: the v1 ones, and the
    /// cgroup2 one on hybrid and pure v2 hosts. For the systemd driver, the
    /// first call after `create` starts the unit with `pid` in it instead.
    pub fn add_pid(&self, pid: i32) -> Result<(), CgroupError> {
        if let Some(p) = self.pending.take() {
            return systemd::start(self, pid, &p);
        }
        let value = pid.to_string();
        for dir in &self.dirs {
            let path = dir.path.join("cgroup.procs");
            let written = fsutil::write_file(&path, value.as_bytes());
            if let (Err(e), Some(u)) = (&written, &self.systemd) {
                if u.manager.is_some() && e.kind() == io::ErrorKind::PermissionDenied {
                    // A user may move its processes only below a common
                    // ancestor it can write: its instance asks the system
                    // manager to do it (as for the init at start).
                    return systemd::attach(self, pid);
                }
            }
            written.map_err(|source| CgroupError::AddPid { pid, path, source })?;
        }
        Ok(())
    }

    /// All pids in the container cgroup. On v1 they are read from the pids
    /// hierarchy (else freezer, else memory, else the first one).
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let dir = if self.layout == Layout::V2 {
            self.dirs.first()
        } else {
            ["pids", "freezer", "memory"]
                .iter()
                .find_map(|c| self.dirs.iter().find(|d| d.has_controller(c)))
                .or_else(|| self.dirs.iter().find(|d| !d.is_unified()))
        };
        let Some(dir) = dir else {
            return Ok(Vec::new());
        };
        let path = dir.path.join("cgroup.procs");
        let text = fsutil::read_file(&path).map_err(|source| CgroupError::Read {
            path: path.clone(),
            source,
        })?;
        text.lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                l.trim().parse().map_err(|_| CgroupError::HostLayout {
                    path: path.clone(),
                    reason: format!("not a pid: {l:?}"),
                })
            })
            .collect()
    }

    /// Count each hierarchy's own directory as made by `create`, so
    /// [`Cgroup::remove`] takes it away (its parents stay unless `create`
    /// recorded them). For the state record written before `create` runs,
    /// and for a container whose record was lost: see CRASH-CONSISTENCY.md.
    pub fn claim_leaves(&self) {
        for d in &self.dirs {
            if d.created.get() == 0 {
                d.created.set(1);
            }
        }
    }

    /// rmdir the directories `create` made, deepest first. The container's
    /// own directory is retried briefly on EBUSY (its processes may have just
    /// exited) and cgroups made inside the container are removed with it; a
    /// parent still in use by another cgroup is left alone. Never removes a
    /// directory that existed before `create`. Missing directories are fine.
    pub fn remove(&self) -> Result<(), CgroupError> {
        // A unit that was never started (create failed first) needs no bus.
        if self.systemd.is_some() && self.pending.take().is_none() {
            return systemd::remove(self);
        }
        let mut first_err = None;
        for dir in &self.dirs {
            if let Err(e) = fsutil::remove_created(dir) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}
