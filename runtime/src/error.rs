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
    /// A config field is wrong; `field` is its path in config.json
    /// (`linux.resources.devices`, `hooks.prestart[0].timeout`).
    #[error("invalid configuration: {field}: {reason}")]
    InvalidField { field: String, reason: String },
    /// A command-line or request option is wrong; `value` is as the user
    /// gave it (quoted where that helps), or empty.
    #[error("invalid configuration: {option}{}{value}: {reason}", if value.is_empty() { "" } else { " " })]
    InvalidOption {
        option: String,
        value: String,
        reason: String,
    },
    /// Any other wrong input, said in one line.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// A file berth wrote itself (a state record, CRIU's descriptors) does
    /// not read back as what berth writes there.
    #[error("{}: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    /// JSON berth makes from its own types could not be encoded.
    #[error("encoding {what}: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
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
    /// `start` interrupted while it waited for the init to take exec.fifo.
    #[error("interrupted by {0} while waiting for the container init to be released")]
    StartInterrupted(String),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::CgroupError),
    #[error(transparent)]
    Rootfs(#[from] crate::rootfs::RootfsError),
    #[error(transparent)]
    Procfs(#[from] crate::procfs::ProcfsError),
    #[error(transparent)]
    Criu(#[from] crate::checkpoint::CriuError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error(transparent)]
    Lsm(#[from] crate::lsm::LsmError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Constructors for the typed invalid-input variants (the CLI, a binary
/// module, builds them too).
impl Error {
    /// What a container process reports to berth when its setup fails. The
    /// parent wraps it in `Init` again, so an `Init` error goes without its
    /// prefix (else the user reads "container init: container init: …").
    pub fn child_report(&self) -> String {
        match self {
            Error::Init(m) => m.clone(),
            e => e.to_string(),
        }
    }

    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::InvalidField {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn option(
        option: impl Into<String>,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Error {
        Error::InvalidOption {
            option: option.into(),
            value: value.into(),
            reason: reason.into(),
        }
    }

    /// For `map_err` on serde_json's encoders.
    pub fn encode(what: &'static str) -> impl FnOnce(serde_json::Error) -> Error {
        move |source| Error::Encode { what, source }
    }
}

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

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn a_child_init_error_is_prefixed_once_by_the_parent() {
        let child = Error::Init("set effective capabilities: EPERM".into());
        let parent = Error::Init(child.child_report());
        assert_eq!(
            parent.to_string(),
            "container init: set effective capabilities: EPERM"
        );
        let other = Error::field("process.cwd", "must be absolute");
        assert_eq!(other.child_report(), other.to_string());
    }
}
