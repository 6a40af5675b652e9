//! The kind of an [`Error`]: what a caller can match on without parsing
//! the message, which stays the one line runc users and engines read.

use serde::{Deserialize, Serialize};

use crate::cgroups::CgroupError;
use crate::error::Error;

/// What went wrong, in the categories a caller acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No container with that id.
    NotFound,
    /// A container with that id exists already.
    AlreadyExists,
    /// The id breaks runc's rule (letters, digits, `_+-.`).
    InvalidId,
    /// The operation is not allowed in the container's current status
    /// (start of a running container, delete of a live one, ...).
    WrongStatus,
    /// The config, an option or a request is wrong; `field` names the OCI
    /// field or option when the error knows it.
    InvalidConfig { field: Option<String> },
    /// berth does not implement `field` (never dropped silently).
    Unsupported { field: String },
    /// The configuration is valid but this host cannot enforce it (a
    /// missing cgroup controller, a cgroup the caller may not write, ...).
    HostCannotEnforce,
    /// A system call or file operation failed.
    System,
    /// The container's process, a hook, or CRIU failed.
    Failed,
    /// A signal (SIGTERM, SIGINT, SIGHUP) stopped the operation; what it had
    /// made is undone.
    Interrupted,
}

impl Error {
    /// This error's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Exists(_) => ErrorKind::AlreadyExists,
            Error::InvalidId(_) => ErrorKind::InvalidId,
            Error::BadStatus { .. } | Error::NotStopped { .. } => ErrorKind::WrongStatus,
            Error::BadSignal(_) => ErrorKind::InvalidConfig {
                field: Some("signal".into()),
            },
            Error::Config { msg, .. } | Error::Invalid(msg) => ErrorKind::InvalidConfig {
                field: field_of(msg),
            },
            Error::InvalidField { field, .. } => ErrorKind::InvalidConfig {
                field: Some(field.clone()),
            },
            Error::InvalidOption { option, .. } => ErrorKind::InvalidConfig {
                field: Some(option.clone()),
            },
            Error::Unsupported(f) => ErrorKind::Unsupported { field: f.clone() },
            Error::Rootless(_) => ErrorKind::HostCannotEnforce,
            Error::Cgroup(c) => cgroup_kind(c),
            Error::Io { .. } | Error::Sys { .. } | Error::Corrupt { .. } | Error::Encode { .. } => {
                ErrorKind::System
            }
            Error::Rootfs(_) | Error::Procfs(_) | Error::Seccomp(_) | Error::Lsm(_) => {
                ErrorKind::InvalidConfig { field: None }
            }
            Error::Init(_) | Error::Exec(_) | Error::Hook(_) | Error::Criu(_) => ErrorKind::Failed,
            Error::Interrupted(_) | Error::StartInterrupted(_) => ErrorKind::Interrupted,
        }
    }
}

fn cgroup_kind(c: &CgroupError) -> ErrorKind {
    match c {
        CgroupError::Unsupported { field } => ErrorKind::Unsupported {
            field: field.clone(),
        },
        CgroupError::Invalid { field, .. } => ErrorKind::InvalidConfig {
            field: Some(field.clone()),
        },
        CgroupError::BadPath { .. } => ErrorKind::InvalidConfig {
            field: Some("linux.cgroupsPath".into()),
        },
        CgroupError::NoController { .. } | CgroupError::HostLayout { .. } => {
            ErrorKind::HostCannotEnforce
        }
        _ => ErrorKind::System,
    }
}

/// The field an `Invalid` message starts with (`linux.resources.devices:
/// ...`, `--memory: ...`), if it starts with one.
fn field_of(msg: &str) -> Option<String> {
    let (head, _) = msg.split_once(": ")?;
    let is_field = !head.is_empty()
        && !head.contains(' ')
        && head
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '[' | ']'));
    is_field.then(|| head.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_common_errors() {
        assert_eq!(Error::NotFound("x".into()).kind(), ErrorKind::NotFound);
        assert_eq!(Error::Exists("x".into()).kind(), ErrorKind::AlreadyExists);
        let e = Error::BadStatus {
            op: "cannot start",
            id: "x".into(),
            status: "running".into(),
        };
        assert_eq!(e.kind(), ErrorKind::WrongStatus);
        let e = Error::field("linux.resources.devices", "device rules cannot be updated");
        assert_eq!(
            e.to_string(),
            "invalid configuration: linux.resources.devices: device rules cannot be updated"
        );
        assert_eq!(
            e.kind(),
            ErrorKind::InvalidConfig {
                field: Some("linux.resources.devices".into())
            }
        );
        let e = Error::Invalid("invalid format option \"x\"".into());
        assert_eq!(e.kind(), ErrorKind::InvalidConfig { field: None });
        let e = Error::option("--preserve-fds", "-3", "must not be negative");
        assert_eq!(
            e.to_string(),
            "invalid configuration: --preserve-fds -3: must not be negative"
        );
        assert_eq!(
            e.kind(),
            ErrorKind::InvalidConfig {
                field: Some("--preserve-fds".into())
            }
        );
        let e = Error::option("--rootless", "", "\"x\" is not true, false or auto");
        assert_eq!(
            e.to_string(),
            "invalid configuration: --rootless: \"x\" is not true, false or auto"
        );
        let e = Error::Cgroup(CgroupError::NoController {
            field: "linux.resources.pids".into(),
            controller: "pids".into(),
        });
        assert_eq!(e.kind(), ErrorKind::HostCannotEnforce);
    }
}
