//! Errors carry what was being done and on which path, runtime or command, so
//! a failed benchmark says why without a rerun under strace.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{op}: {source}")]
    Sys { op: String, source: nix::Error },
    #[error("{runtime}: `{cmd}` {status}: {stderr}")]
    Command {
        runtime: String,
        cmd: String,
        status: String,
        stderr: String,
    },
    #[error("{runtime}: `{cmd}` did not finish within {secs} s (killed)")]
    Timeout {
        runtime: String,
        cmd: String,
        secs: u64,
    },
    #[error("JSON {}: {source}", path.display())]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("bad option: {0}")]
    Usage(String),
    #[error("interrupted")]
    Interrupted,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            what,
            path: path.into(),
            source,
        }
    }

    pub fn sys(op: impl Into<String>, source: nix::Error) -> Self {
        Error::Sys {
            op: op.into(),
            source,
        }
    }
}
