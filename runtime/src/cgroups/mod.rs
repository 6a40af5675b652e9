//! cgroup management for v1, hybrid (v1 controllers plus a cgroup2 mount at
//! /sys/fs/cgroup/unified) and pure v2 hosts.
//!
//! INTERFACE (used by `process` and `container`; keep these signatures):
//!
//! ```ignore
//! #[derive(Debug, Clone, Serialize, Deserialize)]
//! pub struct Cgroup { .. }              // serialised into the container state
//! impl Cgroup {
//!     /// Resolve `linux.cgroupsPath` (absolute, or relative to berth's own
//!     /// cgroup as runc does; None means `<own cgroup>/<id>`) on the host's
//!     /// layout. Refuses a path whose `..` leaves the cgroup root. No I/O
//!     /// besides reading /proc/self/cgroup, /proc/self/mountinfo.
//!     pub fn resolve(cgroups_path: Option<&Path>, id: &str) -> Result<Cgroup, CgroupError>;
//!     /// mkdir every hierarchy's dir and apply memory, cpu and pids limits.
//!     /// On error, removes whatever it created. An unsupported resource is an
//!     /// error naming the field.
//!     pub fn create(&self, resources: Option<&LinuxResources>) -> Result<(), CgroupError>;
//!     /// An O_DIRECTORY fd of the v2 cgroup for clone3's CLONE_INTO_CGROUP,
//!     /// only on a pure v2 host (None on v1 and hybrid).
//!     pub fn clone_into_fd(&self) -> Option<OwnedFd>;
//!     /// Write pid to cgroup.procs of every hierarchy (v1/hybrid, or v2 when
//!     /// clone_into_fd was not used).
//!     pub fn add_pid(&self, pid: i32) -> Result<(), CgroupError>;
//!     /// Pids in the container cgroup (for kill --all, delete --force).
//!     pub fn pids(&self) -> Result<Vec<i32>, CgroupError>;
//!     /// rmdir every dir this container created (retry briefly on EBUSY).
//!     /// Must not remove a pre-existing parent.
//!     pub fn remove(&self) -> Result<(), CgroupError>;
//! }
//! ```
