//! berth: an OCI runtime library with a thin runc-compatible CLI.
//!
//! Process model (see `process`): one binary, never re-executed. `create`
//! clones the container init directly with clone3 (joining the cgroup with
//! CLONE_INTO_CGROUP on cgroup v2), drives it over a socketpair, and leaves it
//! blocked on the `exec.fifo` until `start` opens the other end.

pub mod cgroups;
pub mod checkpoint;
pub mod cli;
pub mod console;
pub mod container;
pub mod error;
pub mod events;
pub mod features;
mod forward;
pub mod hooks;
pub mod interrupt;
pub mod logging;
pub mod lsm;
pub mod namespaces;
pub mod netdev;
pub mod notify;
pub mod ops;
pub mod placement;
pub mod process;
pub mod rootfs;
pub mod rootless;
pub mod seccomp;
pub mod security;
pub mod signal;
pub mod spec;
pub mod state;
pub mod sysctl;
pub mod userns;
pub mod validate;

pub use error::{Error, Result};
