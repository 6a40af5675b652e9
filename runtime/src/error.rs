//! The crate-wide error. Every variant renders as one line, because engines
//! (containerd, podman) show the last line of our log to their users.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid id format: {0:?}")]
    InvalidId(String),
    #[error("container with given ID already exists: {0}")]
    Exists(String),
    #[error("container does not exist: {0}")]
    NotFound(String),
    #[error("{op}: container {id} is {status}")]
    BadStatus {
        op: &'static str,
        id: String,
        status: String,
    },
    #[error("cannot delete container {id} that is not stopped: {status}")]
    NotStopped { id: String, status: String },
    #[error("invalid signal: {0:?}")]
    BadSignal(String),
    #[error("config.json: {path}: {msg}")]
    Config { path: PathBuf, msg: String },
    #[error("{0} is not supported yet")]
    Unsupported(String),
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("{ctx}: {source}")]
    Io {
        ctx: String,
        #[source]
        source: io::Error,
    },
    #[error("{ctx}: {source}")]
    Sys {
        ctx: String,
        #[source]
        source: nix::Error,
    },
    /// Something an ordinary user lacks (user namespaces, subordinate ids,
    /// a writable cgroup): the message names it.
    #[error("rootless: {0}")]
    Rootless(String),
    #[error("container init: {0}")]
    Init(String),
    #[error("exec: {0}")]
    Exec(String),
    #[error("{0}")]
    Hook(String),
    #[error("interrupted by {0}; what was made is removed")]
    Interrupted(String),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::CgroupError),
    #[error(transparent)]
    Rootfs(#[from] crate::rootfs::RootfsError),
    #[error(transparent)]
    Criu(#[from] crate::checkpoint::CriuError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error(transparent)]
    Lsm(#[from] crate::lsm::LsmError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches a context string to io and nix errors, so each error names what it was doing.
pub trait Context<T> {
    fn ctx<C: Into<String>>(self, ctx: impl FnOnce() -> C) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, io::Error> {
    fn ctx<C: Into<String>>(self, ctx: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|source| Error::Io {
            ctx: ctx().into(),
            source,
        })
    }
}

impl<T> Context<T> for std::result::Result<T, nix::Error> {
    fn ctx<C: Into<String>>(self, ctx: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|source| Error::Sys {
            ctx: ctx().into(),
            source,
        })
    }
}
