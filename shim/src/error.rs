//! Errors of the shim. Every variant carries what failed and where, because
//! containerd shows only the message string to the user.

use std::path::PathBuf;

use berth::api::ErrorKind;
use containerd_shim_protos::ttrpc::{self, Code};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Sys { what: String, source: nix::Error },
    #[error("berth {cmd} {id}: {msg}")]
    Runtime {
        cmd: String,
        id: String,
        kind: berth::api::ErrorKind,
        msg: String,
    },
    #[error("container {0} not found")]
    NotFound(String),
    #[error("process {exec} of container {id} not found")]
    ExecNotFound { id: String, exec: String },
    #[error("{0} already exists")]
    Exists(String),
    #[error("{0}")]
    State(String),
    #[error("invalid {field}: {msg}")]
    Invalid { field: String, msg: String },
    #[error("shim flags: {0}")]
    Flags(String),
    #[error("protobuf {what}: {source}")]
    Proto {
        what: &'static str,
        source: containerd_shim_protos::protobuf::Error,
    },
    #[error("ttrpc {what}: {source}")]
    Ttrpc {
        what: &'static str,
        source: ttrpc::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Error::Io { what, path, source }
    }

    pub fn sys(what: impl Into<String>) -> impl FnOnce(nix::Error) -> Self {
        let what = what.into();
        move |source| Error::Sys { what, source }
    }

    /// A berth library error of operation `cmd` on container `id`.
    pub fn berth(cmd: &str, id: &str) -> impl FnOnce(berth::Error) -> Self {
        let (cmd, id) = (cmd.to_owned(), id.to_owned());
        move |e| Error::Runtime {
            cmd,
            id,
            kind: e.kind(),
            msg: e.to_string(),
        }
    }

    /// Whether berth said the container does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Error::Runtime {
                kind: ErrorKind::NotFound,
                ..
            }
        )
    }

    pub fn invalid(field: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            msg: msg.into(),
        }
    }

    /// The gRPC code containerd maps back to its errdefs (NotFound,
    /// AlreadyExists, FailedPrecondition...), so `ctr` reports the right kind.
    fn code(&self) -> Code {
        match self {
            Error::NotFound(_) | Error::ExecNotFound { .. } => Code::NOT_FOUND,
            Error::Exists(_) => Code::ALREADY_EXISTS,
            Error::State(_) => Code::FAILED_PRECONDITION,
            Error::Invalid { .. } => Code::INVALID_ARGUMENT,
            Error::Runtime { kind, .. } => match kind {
                ErrorKind::NotFound => Code::NOT_FOUND,
                ErrorKind::AlreadyExists => Code::ALREADY_EXISTS,
                ErrorKind::WrongStatus => Code::FAILED_PRECONDITION,
                _ => Code::UNKNOWN,
            },
            _ => Code::UNKNOWN,
        }
    }
}

impl From<Error> for ttrpc::Error {
    fn from(e: Error) -> Self {
        ttrpc::Error::RpcStatus(ttrpc::get_status(e.code(), e.to_string()))
    }
}
