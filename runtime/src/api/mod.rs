//! berth's typed library API: what the `berth` command line and the
//! containerd shim both call.
//!
//! A [`Runtime`] names a state root (where berth keeps one directory per
//! container) and the few settings runc takes as global flags. Each
//! operation is one method taking the container id and, where the command
//! has options, one options struct; it returns a typed result and an
//! [`Error`] whose [`kind`](Error::kind) a caller can match on.
//!
//! # Running a container from a bundle
//!
//! ```no_run
//! use berth::api::{CreateOptions, ErrorKind, Runtime, Status};
//!
//! # fn main() -> Result<(), berth::Error> {
//! // A bundle: config.json and the rootfs it names (`berth spec` writes a template).
//! let rt = Runtime::new("/run/berth");
//! let opts = CreateOptions {
//!     bundle: "/srv/bundles/hello".into(),
//!     ..CreateOptions::default()
//! };
//! let created = rt.create("hello", &opts)?;
//! println!("init pid {}", created.pid);
//! rt.start("hello")?;
//! assert_eq!(rt.state("hello")?.status, Status::Running);
//! let usage = rt.stats("hello")?.memory.usage.usage;
//! println!("memory in use: {usage} bytes");
//! rt.kill("hello", libc::SIGTERM, false)?;
//! match rt.delete("hello", false) {
//!     // Not stopped yet: force it.
//!     Err(e) if e.kind() == ErrorKind::WrongStatus => rt.delete("hello", true)?,
//!     r => r?,
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Operations that create processes ([`Runtime::create`], [`Runtime::run`],
//! [`Runtime::exec`], [`Runtime::restore`], and [`Runtime::delete`] through
//! its hooks) fork and change process-wide state (signal masks, the log):
//! call them from a single-threaded process, as the shim does in a worker
//! forked before its threads start (see [`Request`]). The queries
//! ([`Runtime::state`], [`Runtime::stats`], [`Runtime::pids`],
//! [`Runtime::oom_watcher`], [`Runtime::list`]) only read files and are safe
//! from any thread.

mod error;
pub mod helper;
mod request;

use std::path::{Path, PathBuf};

pub use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

pub use self::error::ErrorKind;
pub use self::request::{Reply, Request, Response};
pub use crate::cgroups::stats::Stats;

/// The parts of [`Stats`].
pub mod stats {
    pub use crate::cgroups::stats::{
        Blkio, BlkioEntry, Cpu, CpuUsage, Hugetlb, Memory, MemoryEntry, Pids, Throttling,
    };
}
pub use crate::checkpoint::{
    CheckpointOpts as CheckpointOptions, CriuOpts as CriuOptions, RestoreOpts as RestoreOptions,
};
pub use crate::container::{CreateOpts as CreateOptions, ExecOpts as ExecOptions};
pub use crate::error::{Error, Result};
pub use crate::events::oom::Watcher as OomWatcher;
pub use crate::rootless::Mode as RootlessMode;
pub use crate::state::Status;

/// A container runtime rooted at one state directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Runtime {
    /// Directory holding one state directory per container.
    pub root: PathBuf,
    /// Whether a cgroup tree the caller cannot write is tolerated.
    #[serde(default)]
    pub rootless: RootlessMode,
    /// The CRIU binary for checkpoint and restore; None: `criu` from PATH.
    #[serde(default)]
    pub criu: Option<PathBuf>,
    /// Create containers in transient systemd units (the systemd cgroup
    /// driver) instead of berth's own cgroupfs directories.
    #[serde(default)]
    pub systemd_cgroup: bool,
}

/// A created container: its init waits for [`Runtime::start`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Created {
    /// Host pid of the container's init.
    pub pid: i32,
}

/// How an [`Runtime::exec`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Exec {
    /// Detached: the process runs with this host pid.
    Detached { pid: i32 },
    /// In the foreground: the process exited with this status (128 +
    /// signal when killed).
    Exited { code: i32 },
}

/// A container's state: the OCI state plus runc's extra fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    /// Host pid of the init (0 once stopped and gone).
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    /// runc's field, left empty in `state` (`list` fills in the owner).
    #[serde(default)]
    pub owner: String,
    #[serde(default, skip_serializing_if = "std::collections::HashMap::is_empty")]
    pub annotations: std::collections::HashMap<String, String>,
}

/// One container found by [`Runtime::list`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listed {
    pub id: String,
    /// Its state, or why its state directory could not be read.
    pub state: std::result::Result<State, String>,
}

impl State {
    fn of(st: &crate::state::Stored, status: Status) -> State {
        let j = st.json(status);
        State {
            oci_version: j.oci_version.to_owned(),
            id: j.id.to_owned(),
            pid: j.pid,
            status,
            bundle: j.bundle.to_owned(),
            rootfs: j.rootfs.to_owned(),
            created: j.created.to_owned(),
            owner: j.owner.to_owned(),
            annotations: j.annotations.clone(),
        }
    }
}

impl Runtime {
    /// A runtime keeping its state under `root` (created on first use),
    /// with the defaults of runc's global flags.
    pub fn new(root: impl Into<PathBuf>) -> Runtime {
        Runtime {
            root: root.into(),
            rootless: RootlessMode::default(),
            criu: None,
            systemd_cgroup: false,
        }
    }

    /// A runtime on the default root: /run/berth, or $XDG_RUNTIME_DIR/berth
    /// for an ordinary user.
    pub fn with_default_root() -> Result<Runtime> {
        Ok(Runtime::new(crate::rootless::default_root()?))
    }

    fn driver(&self) -> crate::cgroups::Driver {
        if self.systemd_cgroup {
            crate::cgroups::Driver::Systemd
        } else {
            crate::cgroups::Driver::Cgroupfs
        }
    }

    /// The options with the runtime's settings. Commands after create take
    /// the driver recorded in the container's state.
    fn create_opts(&self, o: &CreateOptions) -> CreateOptions {
        CreateOptions {
            rootless: self.rootless,
            cgroup_driver: self.driver(),
            ..o.clone()
        }
    }

    fn criu_opts(&self, o: &CriuOptions) -> CriuOptions {
        CriuOptions {
            program: o.program.clone().or_else(|| self.criu.clone()),
            ..o.clone()
        }
    }

    /// Create a container from `o.bundle`; its init waits for `start`.
    pub fn create(&self, id: &str, o: &CreateOptions) -> Result<Created> {
        let (_, st) = crate::container::create(&self.root, id, &self.create_opts(o))?;
        Ok(Created { pid: st.pid })
    }

    /// Let a created container's init run its process.
    pub fn start(&self, id: &str) -> Result<()> {
        let dir = crate::state::Dir::open(&self.root, id)?;
        let st = dir.load()?;
        crate::container::start(&dir, &st)
    }

    /// Create and start; unless `detach`, wait for the container (forwarding
    /// signals to it), delete it and return its exit status.
    pub fn run(&self, id: &str, o: &CreateOptions, detach: bool) -> Result<i32> {
        crate::container::run(&self.root, id, &self.create_opts(o), detach)
    }

    /// The container's state.
    pub fn state(&self, id: &str) -> Result<State> {
        let dir = crate::state::Dir::open(&self.root, id)?;
        let st = dir.load()?;
        Ok(State::of(&st, st.status(&dir.path)))
    }

    /// Every container under the root, by id.
    pub fn list(&self) -> Result<Vec<Listed>> {
        Ok(crate::container::list(&self.root)?
            .into_iter()
            .map(|l| Listed {
                state: l.row.map(|(st, status)| State::of(&st, status)),
                id: l.id,
            })
            .collect())
    }

    /// Send signal `sig` to the init, or with `all` to every process.
    pub fn kill(&self, id: &str, sig: i32, all: bool) -> Result<()> {
        crate::container::kill(&self.root, id, sig, all)
    }

    /// Remove a stopped container; `force` kills a live one first.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        crate::container::delete(&self.root, id, force)
    }

    /// Run another process in a running container.
    pub fn exec(&self, id: &str, o: &ExecOptions) -> Result<Exec> {
        let n = crate::container::exec(&self.root, id, o)?;
        Ok(if o.detach {
            Exec::Detached { pid: n }
        } else {
            Exec::Exited { code: n }
        })
    }

    /// Freeze every process of a running container.
    pub fn pause(&self, id: &str) -> Result<()> {
        crate::ops::pause(&self.root, id)
    }

    /// Thaw a paused container.
    pub fn resume(&self, id: &str) -> Result<()> {
        crate::ops::resume(&self.root, id)
    }

    /// Set the fields `resources` sets on a live container's cgroup, and
    /// record them in its stored config.
    pub fn update(&self, id: &str, resources: LinuxResources) -> Result<()> {
        crate::ops::update(&self.root, id, resources)
    }

    /// Statistics of the container's cgroup.
    pub fn stats(&self, id: &str) -> Result<Stats> {
        let dir = crate::state::Dir::open(&self.root, id)?;
        let st = dir.load()?;
        drop(dir);
        st.need_cgroup("stats")?;
        Ok(st.cgroup.stats()?)
    }

    /// Host pids of the container's processes.
    pub fn pids(&self, id: &str) -> Result<Vec<i32>> {
        crate::ops::pids(&self.root, id)
    }

    /// A watcher of the container's OOM kills (an fd to poll and a count to
    /// take), or None when its memory cgroup offers no notification.
    pub fn oom_watcher(&self, id: &str) -> Result<Option<OomWatcher>> {
        let dir = crate::state::Dir::open(&self.root, id)?;
        let st = dir.load()?;
        drop(dir);
        st.need_cgroup("events")?;
        OomWatcher::new(&st.cgroup)
    }

    /// runc's `events`: statistics every `interval` and OOM notifications
    /// as JSON lines on stdout until the container stops; with
    /// `stats_only`, one statistics line.
    pub fn events(&self, id: &str, interval: std::time::Duration, stats_only: bool) -> Result<()> {
        let o = crate::events::EventsOpts {
            stats_only,
            interval,
        };
        crate::events::run(&self.root, id, &o)
    }

    /// Checkpoint a running container with CRIU.
    pub fn checkpoint(&self, id: &str, o: &CheckpointOptions) -> Result<()> {
        let o = CheckpointOptions {
            criu: self.criu_opts(&o.criu),
            ..o.clone()
        };
        crate::checkpoint::checkpoint(&self.root, id, &o)
    }

    /// Restore a container from a CRIU checkpoint; returns the exit status
    /// (the container's unless detached).
    pub fn restore(&self, id: &str, o: &RestoreOptions) -> Result<i32> {
        let o = RestoreOptions {
            criu: self.criu_opts(&o.criu),
            ..o.clone()
        };
        crate::checkpoint::restore(&self.root, id, &o, self.driver())
    }

    /// The state root.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// The runtime-spec version berth reports in states.
pub const OCI_VERSION: &str = crate::state::OCI_VERSION;

/// A template config.json for `bundle` (`berth spec`).
pub fn write_spec(bundle: &Path, rootless: bool) -> Result<()> {
    crate::spec::write(bundle, rootless)
}

/// The implemented features (runtime-spec features.md) as JSON.
pub fn features_json() -> Result<String> {
    crate::features::json()
}

/// A signal name (KILL, SIGKILL) or number as its number.
pub fn parse_signal(s: &str) -> Result<i32> {
    crate::signal::parse(s)
}

/// A Go duration (5s, 500ms, 1m) as runc's flags take it; `flag` names the
/// option in the error.
pub fn parse_duration(flag: &str, s: &str) -> Result<std::time::Duration> {
    crate::events::duration::parse(flag, s)
}
