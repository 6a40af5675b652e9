//! The few calls the systemd driver makes to systemd's manager over the
//! system bus, or over a user's own bus to that user's instance
//! (org.freedesktop.systemd1(5)), with zbus's blocking API. Only the D-Bus
//! helper (`helper`, the `berth-systemd` binary) uses it: zbus and its
//! threads stay out of berth and the shim.

use std::sync::mpsc;

use zbus::blocking::{Connection, MessageIterator};
use zbus::zvariant::{self, OwnedObjectPath};

use super::props::{Prop, Value};
use super::wire::{BusError, JOB_TIMEOUT};

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";

/// A failed call as the wire carries it: the D-Bus error name apart, for
/// the driver to act on, and zbus's whole message as the reason.
fn call_err(method: &str, unit: &str, e: zbus::Error) -> BusError {
    let name = match &e {
        zbus::Error::MethodError(name, ..) => Some(name.to_string()),
        _ => None,
    };
    BusError::Call {
        method: method.to_owned(),
        unit: unit.to_owned(),
        name,
        message: e.to_string(),
    }
}

/// A connection to systemd's manager.
pub struct Conn {
    conn: Connection,
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

impl Conn {
    pub fn system() -> Result<Conn, BusError> {
        let conn = Connection::system().map_err(|e| BusError::Connect(e.to_string()))?;
        Ok(Conn { conn })
    }

    /// The user's own bus at `address`, where its systemd instance is,
    /// authenticating as `uid` (the caller's uid outside any user
    /// namespace: the bus daemon compares the claim with the socket peer's
    /// credentials).
    pub fn user(uid: u32, address: &str) -> Result<Conn, BusError> {
        let conn = zbus::blocking::connection::Builder::address(address)
            .map(|b| b.user_id(uid))
            .and_then(|b| b.build())
            .map_err(|e| BusError::ConnectUser {
                address: address.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Conn { conn })
    }

    /// A bus at `address` (tests: a private dbus-daemon).
    pub fn at(address: &str) -> Result<Conn, BusError> {
        let conn = zbus::blocking::connection::Builder::address(address)
            .and_then(|b| b.build())
            .map_err(|e| BusError::Connect(e.to_string()))?;
        Ok(Conn { conn })
    }

    /// The manager's own cgroup ("ControlGroup"): for a user's instance
    /// `/user.slice/user-<uid>.slice/user@<uid>.service`.
    pub fn manager_cgroup(&self) -> Result<String, BusError> {
        self.manager_string("ControlGroup", "Get ControlGroup")
    }

    /// A string property of the Manager object; `method` names the call in
    /// an error.
    fn manager_string(&self, property: &str, method: &str) -> Result<String, BusError> {
        let err = |e| call_err(method, "the manager", e);
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

    fn call<B>(&self, method: &'static str, unit: &str, body: &B) -> Result<zbus::Message, BusError>
    where
        B: serde::Serialize + zvariant::DynamicType,
    {
        self.conn
            .call_method(Some(DEST), PATH, Some(MANAGER), method, body)
            .map_err(|e| call_err(method, unit, e))
    }

    /// Run `start` (which returns a job path) and wait for systemd's
    /// JobRemoved for that job; its result must be "done".
    fn job(
        &self,
        unit: &str,
        start: impl FnOnce() -> Result<zbus::Message, BusError>,
    ) -> Result<(), BusError> {
        let call_err = |method, e| call_err(method, unit, e);
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
        // The iterator blocks without a timeout: read it on a thread and
        // wait here with one.
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
#[path = "dbus_tests.rs"]
mod tests;
