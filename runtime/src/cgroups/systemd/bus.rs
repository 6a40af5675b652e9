//! The few calls berth makes to systemd's manager over the system bus, or
//! over a user's own bus to that user's instance (org.freedesktop.systemd1(5)),
//! with zbus's blocking API.
//!
//! zbus runs its socket reader on threads of its own. berth connects only
//! after the container init has been cloned (systemd needs the init's pid
//! anyway), and with every signal blocked while the connection lives, so
//! that those threads inherit a full mask: a SIGTERM that `run` forwards to
//! the container can never be taken by a zbus thread instead.

use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{SigSet, SigmaskHow};
use zbus::blocking::{Connection, MessageIterator};
use zbus::zvariant::{self, OwnedObjectPath};

use super::props::{Prop, Value};

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// How long a start or stop job may take, as runc allows.
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

/// A failed systemd call, one line. zbus's error is boxed: it is large.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("connecting to the system bus: {0}")]
    Connect(Box<zbus::Error>),
    #[error("connecting to the user bus {address}: {source}")]
    ConnectUser {
        address: String,
        source: Box<zbus::Error>,
    },
    #[error("--systemd-cgroup as an ordinary user needs a systemd user instance on the user bus: $DBUS_SESSION_BUS_ADDRESS is unset and {0} does not exist (a user session with dbus-user-session; `loginctl enable-linger` keeps one running)")]
    NoUserBus(String),
    #[error("no bus connection from a process whose children join another pid namespace (it cannot start threads)")]
    PidNamespace,
    #[error("the user's systemd instance runs in cgroup {actual:?}, not {expected:?} where berth placed the container's cgroup")]
    ManagerCgroup { expected: String, actual: String },
    #[error("systemd {method} {unit}: {source}")]
    Call {
        method: &'static str,
        unit: String,
        source: Box<zbus::Error>,
    },
    #[error("systemd job for {unit} finished with {result:?}")]
    Job { unit: String, result: String },
    #[error("no reply from systemd for the {unit} job within {JOB_TIMEOUT:?}")]
    Timeout { unit: String },
}

impl BusError {
    /// The D-Bus error name systemd answered with, if any.
    pub fn name(&self) -> Option<&str> {
        match self {
            BusError::Call { source, .. } => match &**source {
                zbus::Error::MethodError(name, ..) => Some(name.as_str()),
                _ => None,
            },
            _ => None,
        }
    }
}

pub const UNIT_EXISTS: &str = "org.freedesktop.systemd1.UnitExists";
pub const NO_SUCH_UNIT: &str = "org.freedesktop.systemd1.NoSuchUnit";
pub const LOAD_FAILED: &str = "org.freedesktop.systemd1.LoadFailed";

/// Restores the signal mask when dropped.
struct MaskGuard(SigSet);

impl MaskGuard {
    fn block_all() -> MaskGuard {
        let mut old = SigSet::empty();
        let _ = nix::sys::signal::pthread_sigmask(
            SigmaskHow::SIG_BLOCK,
            Some(&SigSet::all()),
            Some(&mut old),
        );
        MaskGuard(old)
    }
}

impl Drop for MaskGuard {
    fn drop(&mut self) {
        let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.0), None);
    }
}

/// A connection to systemd's manager.
pub struct Bus {
    conn: Connection,
    // Dropped after `conn`: its threads are gone or blocked by then.
    _mask: MaskGuard,
}

/// The D-Bus form of a property value.
fn variant(v: &Value) -> zvariant::Value<'_> {
    match v {
        Value::Bool(b) => zvariant::Value::from(*b),
        Value::Byte(n) => zvariant::Value::from(*n),
        Value::I16(n) => zvariant::Value::from(*n),
        Value::U16(n) => zvariant::Value::from(*n),
        Value::I32(n) => zvariant::Value::from(*n),
        Value::U32(n) => zvariant::Value::from(*n),
        Value::I64(n) => zvariant::Value::from(*n),
        Value::U64(n) => zvariant::Value::from(*n),
        Value::Double(d) => zvariant::Value::from(*d),
        Value::Str(s) => zvariant::Value::from(s.as_str()),
        Value::Bytes(b) => zvariant::Value::from(b.clone()),
        Value::U32s(v) => zvariant::Value::from(v.clone()),
        Value::Strs(v) => zvariant::Value::from(v.clone()),
        Value::Pairs(v) => zvariant::Value::from(v.clone()),
    }
}

/// The `a(sv)` argument of StartTransientUnit and SetUnitProperties.
pub fn encode(props: &[Prop]) -> Vec<(&str, zvariant::Value<'_>)> {
    props
        .iter()
        .map(|(n, v)| (n.as_str(), variant(v)))
        .collect()
}

/// The user bus, as runc finds it: $DBUS_SESSION_BUS_ADDRESS if set, else
/// `$XDG_RUNTIME_DIR/bus` if that socket exists. Checked at create before
/// anything is made, so a missing bus fails first.
pub fn user_address() -> Result<String, BusError> {
    let env = |k| std::env::var(k).ok().filter(|v: &String| !v.is_empty());
    pick_user_address(
        env("DBUS_SESSION_BUS_ADDRESS"),
        env("XDG_RUNTIME_DIR"),
        |p| std::path::Path::new(p).exists(),
    )
}

fn pick_user_address(
    session: Option<String>,
    xdg: Option<String>,
    exists: impl Fn(&str) -> bool,
) -> Result<String, BusError> {
    if let Some(a) = session {
        return Ok(a);
    }
    let Some(xdg) = xdg else {
        return Err(BusError::NoUserBus(
            "$XDG_RUNTIME_DIR/bus ($XDG_RUNTIME_DIR is unset)".into(),
        ));
    };
    let path = format!("{}/bus", xdg.trim_end_matches('/'));
    if !exists(&path) {
        return Err(BusError::NoUserBus(path));
    }
    Ok(format!("unix:path={}", escape_address_value(&path)))
}

/// D-Bus address values escape every byte outside `[-0-9A-Za-z_/.\\*]`.
fn escape_address_value(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-_/.\\*".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

impl Bus {
    pub fn system() -> Result<Bus, BusError> {
        let mask = MaskGuard::block_all();
        let conn = Connection::system().map_err(|e| BusError::Connect(Box::new(e)))?;
        Ok(Bus { conn, _mask: mask })
    }

    /// The caller's own bus, where its systemd instance is, authenticating
    /// as `uid` (the caller's uid outside any user namespace: the bus
    /// daemon compares the claim with the socket peer's credentials).
    pub fn user(uid: u32) -> Result<Bus, BusError> {
        let address = user_address()?;
        let mask = MaskGuard::block_all();
        let conn = zbus::blocking::connection::Builder::address(address.as_str())
            .map(|b| b.user_id(uid))
            .and_then(|b| b.build())
            .map_err(|e| BusError::ConnectUser {
                address,
                source: Box::new(e),
            })?;
        Ok(Bus { conn, _mask: mask })
    }

    /// The manager's own cgroup ("ControlGroup"): for a user's instance
    /// `/user.slice/user-<uid>.slice/user@<uid>.service`.
    pub fn manager_cgroup(&self) -> Result<String, BusError> {
        self.manager_string("ControlGroup", "Get ControlGroup")
    }

    /// A string property of the Manager object; `method` names the call in
    /// an error.
    fn manager_string(&self, property: &str, method: &'static str) -> Result<String, BusError> {
        let err = |source: zbus::Error| BusError::Call {
            method,
            unit: "the manager".into(),
            source: Box::new(source),
        };
        let v = self
            .conn
            .call_method(
                Some(DEST),
                PATH,
                Some("org.freedesktop.DBus.Properties"),
                "Get",
                &(MANAGER, property),
            )
            .and_then(|m| m.body().deserialize::<zvariant::OwnedValue>())
            .map_err(err)?;
        String::try_from(v).map_err(|e| err(zbus::Error::Variant(e)))
    }

    /// A bus at `address` (tests: a private dbus-daemon).
    #[cfg(test)]
    pub fn at(address: &str) -> Result<Bus, BusError> {
        let mask = MaskGuard::block_all();
        let conn = zbus::blocking::connection::Builder::address(address)
            .and_then(|b| b.build())
            .map_err(|e| BusError::Connect(Box::new(e)))?;
        Ok(Bus { conn, _mask: mask })
    }

    fn call<B>(&self, method: &'static str, unit: &str, body: &B) -> Result<zbus::Message, BusError>
    where
        B: serde::Serialize + zvariant::DynamicType,
    {
        self.conn
            .call_method(Some(DEST), PATH, Some(MANAGER), method, body)
            .map_err(|source| BusError::Call {
                method,
                unit: unit.to_owned(),
                source: Box::new(source),
            })
    }

    /// Run `start` (which returns a job path) and wait for systemd's
    /// JobRemoved for that job; its result must be "done".
    fn job(
        &self,
        unit: &str,
        start: impl FnOnce() -> Result<zbus::Message, BusError>,
    ) -> Result<(), BusError> {
        let call_err = |method, source| BusError::Call {
            method,
            unit: unit.to_owned(),
            source: Box::new(source),
        };
        // Signals go only to subscribed clients; the match is added before
        // the job starts so that its end cannot be missed.
        self.call("Subscribe", unit, &())?;
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .sender(DEST)
            .and_then(|b| b.interface(MANAGER))
            .and_then(|b| b.member("JobRemoved"))
            .map_err(|e| call_err("AddMatch", e))?
            .build();
        let signals = MessageIterator::for_match_rule(rule, &self.conn, Some(64))
            .map_err(|e| call_err("AddMatch", e))?;
        let reply = start()?;
        let job: OwnedObjectPath = reply
            .body()
            .deserialize()
            .map_err(|e| call_err("(job reply)", e))?;
        // The iterator blocks without a timeout: read it on a thread (it
        // inherits the full signal mask) and wait here with one.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for msg in signals.flatten() {
                let body = msg.body();
                let Ok((_, path, _, result)) =
                    body.deserialize::<(u32, OwnedObjectPath, String, String)>()
                else {
                    continue;
                };
                if path == job {
                    let _ = tx.send(result);
                    return;
                }
            }
        });
        match rx.recv_timeout(JOB_TIMEOUT) {
            Ok(r) if r == "done" => Ok(()),
            Ok(result) => Err(BusError::Job {
                unit: unit.to_owned(),
                result,
            }),
            Err(_) => Err(BusError::Timeout {
                unit: unit.to_owned(),
            }),
        }
    }

    pub fn start_transient_unit(&self, unit: &str, props: &[Prop]) -> Result<(), BusError> {
        let aux: Vec<(&str, Vec<(&str, zvariant::Value)>)> = Vec::new();
        self.job(unit, || {
            self.call(
                "StartTransientUnit",
                unit,
                &(unit, "replace", encode(props), aux),
            )
        })
    }

    pub fn stop_unit(&self, unit: &str) -> Result<(), BusError> {
        self.job(unit, || self.call("StopUnit", unit, &(unit, "replace")))
    }

    /// Move processes into a unit's own cgroup ("" is the unit's cgroup).
    pub fn attach_processes_to_unit(&self, unit: &str, pids: &[u32]) -> Result<(), BusError> {
        self.call("AttachProcessesToUnit", unit, &(unit, "", pids))
            .map(drop)
    }

    /// The Manager's Version property, e.g. "252.39-1~deb12u2".
    pub fn version(&self) -> Result<String, BusError> {
        self.manager_string("Version", "Get Version")
    }

    pub fn reset_failed_unit(&self, unit: &str) -> Result<(), BusError> {
        self.call("ResetFailedUnit", unit, &(unit,)).map(drop)
    }

    pub fn set_unit_properties(&self, unit: &str, props: &[Prop]) -> Result<(), BusError> {
        self.call("SetUnitProperties", unit, &(unit, true, encode(props)))
            .map(drop)
    }
}

#[cfg(test)]
#[path = "bus_tests.rs"]
mod tests;
