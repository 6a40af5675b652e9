//! What berth and its D-Bus helper (`berth-systemd`, see `helper`) say to
//! each other: one JSON request a line on the helper's stdin, one JSON reply
//! a line on its stdout. A reply is `{"Ok": value-or-null}` or
//! `{"Err": BusError}`, so that an error reaches the user as the same one
//! line whichever process met it, with the D-Bus error name kept apart for
//! the driver to act on.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::props::Prop;

pub const UNIT_EXISTS: &str = "org.freedesktop.systemd1.UnitExists";
pub const NO_SUCH_UNIT: &str = "org.freedesktop.systemd1.NoSuchUnit";
pub const LOAD_FAILED: &str = "org.freedesktop.systemd1.LoadFailed";

/// How long a start or stop job may take, as runc allows.
pub const JOB_TIMEOUT: Duration = Duration::from_secs(30);

/// The env variable naming the helper binary, in place of the one next to
/// berth's (or the shim's) own.
pub const HELPER_ENV: &str = "BERTH_SYSTEMD_HELPER";
/// The helper's file name, installed next to berth and the shim.
pub const HELPER_NAME: &str = "berth-systemd";

/// One call of the systemd manager's API, or the connection it goes over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum Request {
    ConnectSystem,
    /// The user's bus at `address` (berth finds it in its own environment),
    /// authenticating as `uid`.
    ConnectUser {
        uid: u32,
        address: String,
    },
    /// A bus at `address` with no more ado (tests: a private dbus-daemon).
    ConnectAddress {
        address: String,
    },
    ManagerCgroup,
    Version,
    StartTransientUnit {
        unit: String,
        props: Vec<Prop>,
    },
    StopUnit {
        unit: String,
    },
    AttachProcessesToUnit {
        unit: String,
        pids: Vec<u32>,
    },
    ResetFailedUnit {
        unit: String,
    },
    SetUnitProperties {
        unit: String,
        props: Vec<Prop>,
    },
}

/// A string for the calls that return one (ManagerCgroup, Version).
pub type Reply = Result<Option<String>, BusError>;

fn no_helper(path: &str, from_env: bool) -> String {
    if from_env {
        format!("${HELPER_ENV} names {path}, which does not exist")
    } else {
        format!(
            "the systemd cgroup driver needs its D-Bus helper {path}, which does not exist: install {HELPER_NAME} next to berth (and the shim), or name it in ${HELPER_ENV}"
        )
    }
}

/// A failed systemd call, one line.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum BusError {
    #[error("this berth was built without the systemd cgroup driver (cargo feature \"systemd\")")]
    NotBuilt,
    #[error("connecting to the system bus: {0}")]
    Connect(String),
    #[error("connecting to the user bus {address}: {reason}")]
    ConnectUser { address: String, reason: String },
    #[error("--systemd-cgroup as an ordinary user needs a systemd user instance on the user bus: $DBUS_SESSION_BUS_ADDRESS is unset and {0} does not exist (a user session with dbus-user-session; `loginctl enable-linger` keeps one running)")]
    NoUserBus(String),
    #[error("no systemd call from a process whose children join another pid namespace (its D-Bus helper would start inside the container's)")]
    PidNamespace,
    #[error("the user's systemd instance runs in cgroup {actual:?}, not {expected:?} where berth placed the container's cgroup")]
    ManagerCgroup { expected: String, actual: String },
    /// `name` is the D-Bus error name systemd answered with, if any;
    /// `message` is the whole reason as the D-Bus library gave it.
    #[error("systemd {method} {unit}: {message}")]
    Call {
        method: String,
        unit: String,
        name: Option<String>,
        message: String,
    },
    #[error("systemd job for {unit} finished with {result:?}")]
    Job { unit: String, result: String },
    #[error("no reply from systemd for the {unit} job within {}s", JOB_TIMEOUT.as_secs())]
    Timeout { unit: String },
    #[error("{}", no_helper(path, *from_env))]
    NoHelper { path: String, from_env: bool },
    #[error("the systemd cgroup driver's D-Bus helper {path}: {reason}")]
    Helper { path: String, reason: String },
}

impl BusError {
    /// The D-Bus error name systemd answered with, if any.
    pub fn name(&self) -> Option<&str> {
        match self {
            BusError::Call { name, .. } => name.as_deref(),
            _ => None,
        }
    }
}

/// One line of JSON, for either direction.
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    // Requests and replies hold only strings, numbers and finite doubles
    // (props::parse_gvariant refuses the others): serializing cannot fail.
    let mut line = serde_json::to_vec(msg).expect("serializable");
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::super::props::Value;
    use super::*;

    #[test]
    fn requests_round_trip_as_one_line_each() {
        let props = vec![
            ("Delegate".to_string(), Value::Bool(true)),
            ("PIDs".to_string(), Value::U32s(vec![7])),
            ("AllowedCPUs".to_string(), Value::Bytes(vec![3])),
            (
                "DeviceAllow".to_string(),
                Value::Pairs(vec![("char-*".into(), "m".into())]),
            ),
            ("CPUQuotaPerSecUSec".to_string(), Value::U64(u64::MAX)),
            ("X".to_string(), Value::Double(0.5)),
            ("Description".to_string(), Value::Str("a \"b\"\nc".into())),
        ];
        for req in [
            Request::ConnectSystem,
            Request::ConnectUser {
                uid: 1000,
                address: "unix:path=/run/user/1000/bus".into(),
            },
            Request::StartTransientUnit {
                unit: "berth-x.scope".into(),
                props: props.clone(),
            },
            Request::SetUnitProperties {
                unit: "u".into(),
                props,
            },
            Request::AttachProcessesToUnit {
                unit: "u".into(),
                pids: vec![1, 2],
            },
        ] {
            let line = encode(&req);
            assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
            assert_eq!(line.last(), Some(&b'\n'));
            let back: Request = serde_json::from_slice(&line).unwrap();
            assert_eq!(back, req);
        }
        let line = String::from_utf8(encode(&Request::StopUnit { unit: "u".into() })).unwrap();
        assert_eq!(line, "{\"call\":\"stop_unit\",\"unit\":\"u\"}\n");
    }

    #[test]
    fn errors_keep_their_name_and_line_across() {
        let e = BusError::Call {
            method: "StartTransientUnit".into(),
            unit: "berth-x.scope".into(),
            name: Some(UNIT_EXISTS.into()),
            message: format!("{UNIT_EXISTS}: Unit berth-x.scope already exists."),
        };
        let reply: Reply = Err(e.clone());
        let back: Reply = serde_json::from_slice(&encode(&reply)).unwrap();
        let back = back.unwrap_err();
        assert_eq!(back.name(), Some(UNIT_EXISTS));
        assert_eq!(back.to_string(), e.to_string());
        assert_eq!(
            back.to_string(),
            "systemd StartTransientUnit berth-x.scope: org.freedesktop.systemd1.UnitExists: Unit berth-x.scope already exists."
        );
        let ok: Reply = Ok(Some("252".into()));
        let back: Reply = serde_json::from_slice(&encode(&ok)).unwrap();
        assert_eq!(back, ok);
        assert_eq!(
            BusError::Timeout { unit: "u".into() }.to_string(),
            "no reply from systemd for the u job within 30s"
        );
    }

    #[test]
    fn a_missing_helper_says_where_it_looked_and_what_to_do() {
        let e = BusError::NoHelper {
            path: "/opt/b/berth-systemd".into(),
            from_env: false,
        }
        .to_string();
        assert!(
            e.contains("/opt/b/berth-systemd") && e.contains(HELPER_ENV),
            "{e}"
        );
        assert!(!e.contains('\n'));
        let e = BusError::NoHelper {
            path: "/x".into(),
            from_env: true,
        }
        .to_string();
        assert_eq!(e, "$BERTH_SYSTEMD_HELPER names /x, which does not exist");
    }
}
