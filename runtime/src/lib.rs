//! berth: an OCI runtime library; the runc-compatible `berth` command and
//! the containerd shim are thin adapters over its typed API, [`api`].
//!
//! Process model (see `process`): one binary, never re-executed. `create`
//! clones the container init directly with clone3 (joining the cgroup with
//! CLONE_INTO_CGROUP on cgroup v2), drives it over a socketpair, and leaves it
//! blocked on the `exec.fifo` until `start` opens the other end.

pub mod api;

// The modules below are the implementation. The hidden public ones are
// reachable for the crate's integration tests (cgroups, rootfs, seccomp),
// its fuzz targets (events, hooks, seccomp, signal, state, validate) and the
// command line (logging, passwd); none is a stable interface.
#[doc(hidden)]
pub mod cgroups;
mod checkpoint;
mod clock;
mod console;
mod container;
mod error;
#[doc(hidden)]
pub mod events;
mod features;
mod forward;
#[doc(hidden)]
pub mod hooks;
mod interrupt;
#[doc(hidden)]
pub mod logging;
mod lsm;
mod mountinfo;
mod namespaces;
mod netdev;
mod notify;
mod ops;
#[doc(hidden)]
pub mod passwd;
mod placement;
mod process;
mod procfs;
#[doc(hidden)]
pub mod rootfs;
mod rootless;
#[doc(hidden)]
pub mod seal;
pub mod seccomp;
mod security;
#[doc(hidden)]
pub mod signal;
mod spec;
#[doc(hidden)]
pub mod state;
mod sys;
/// The berth binary's global allocator.
pub use sys::Arena;
mod sysctl;
mod userns;
#[doc(hidden)]
pub mod validate;

pub use api::{Runtime, Stats, Status};
pub use error::{Error, Result};
