//! The D-Bus calls against a stand-in for systemd's manager on a private
//! dbus-daemon: the calls, the wait for JobRemoved, and the error names
//! the driver acts on; then the same through the helper's loop and berth's
//! client, as berth and `berth-systemd` talk. (The real systemd is
//! exercised by the guest test, conformance/vm/systemd.)

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use zbus::object_server::SignalEmitter;
use zbus::zvariant::{ObjectPath, OwnedObjectPath, OwnedValue};

use super::super::bus::Bus;
use super::super::props::{Prop, Value};
use super::super::wire::{NO_SUCH_UNIT, UNIT_EXISTS};
use super::*;

#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.freedesktop.systemd1")]
enum SdError {
    #[zbus(error)]
    ZBus(zbus::Error),
    UnitExists(String),
    NoSuchUnit(String),
}

#[derive(Default)]
struct State {
    units: HashSet<String>,
    /// Property names and signatures of the last start or set call.
    props: HashMap<String, String>,
    subscribed: bool,
    jobs: u32,
}

struct Manager(Arc<Mutex<State>>);

impl Manager {
    fn job(&self) -> (u32, OwnedObjectPath) {
        let mut s = self.0.lock().unwrap();
        s.jobs += 1;
        let path = format!("/org/freedesktop/systemd1/job/{}", s.jobs);
        (s.jobs, ObjectPath::try_from(path).unwrap().into())
    }

    fn record(&self, props: &[(String, OwnedValue)]) {
        let mut s = self.0.lock().unwrap();
        s.props = props
            .iter()
            .map(|(n, v)| (n.clone(), v.value_signature().to_string()))
            .collect();
    }
}

#[zbus::interface(name = "org.freedesktop.systemd1.Manager")]
impl Manager {
    fn subscribe(&self) {
        self.0.lock().unwrap().subscribed = true;
    }

    async fn start_transient_unit(
        &self,
        #[zbus(signal_emitter)] e: SignalEmitter<'_>,
        name: String,
        _mode: String,
        props: Vec<(String, OwnedValue)>,
        _aux: Vec<(String, Vec<(String, OwnedValue)>)>,
    ) -> Result<OwnedObjectPath, SdError> {
        if !self.0.lock().unwrap().units.insert(name.clone()) {
            return Err(SdError::UnitExists(format!("Unit {name} already exists.")));
        }
        self.record(&props);
        let (id, job) = self.job();
        let result = if name.starts_with("fail") {
            "failed"
        } else {
            "done"
        };
        Self::job_removed(&e, id, job.as_ref(), &name, result).await?;
        Ok(job)
    }

    async fn stop_unit(
        &self,
        #[zbus(signal_emitter)] e: SignalEmitter<'_>,
        name: String,
        _mode: String,
    ) -> Result<OwnedObjectPath, SdError> {
        if !self.0.lock().unwrap().units.remove(&name) {
            return Err(SdError::NoSuchUnit(format!("Unit {name} not loaded.")));
        }
        let (id, job) = self.job();
        Self::job_removed(&e, id, job.as_ref(), &name, "done").await?;
        Ok(job)
    }

    fn reset_failed_unit(&self, _name: String) {}

    fn attach_processes_to_unit(
        &self,
        name: String,
        sub: String,
        pids: Vec<u32>,
    ) -> Result<(), SdError> {
        if !self.0.lock().unwrap().units.contains(&name) {
            return Err(SdError::NoSuchUnit(name));
        }
        let mut s = self.0.lock().unwrap();
        s.props = HashMap::from([(format!("attach:{sub}"), format!("{pids:?}"))]);
        Ok(())
    }

    #[zbus(property)]
    fn control_group(&self) -> String {
        "/user.slice/user-1000.slice/user@1000.service".into()
    }

    #[zbus(property)]
    fn version(&self) -> String {
        "243.9-1".into()
    }

    fn set_unit_properties(
        &self,
        name: String,
        _runtime: bool,
        props: Vec<(String, OwnedValue)>,
    ) -> Result<(), SdError> {
        if !self.0.lock().unwrap().units.contains(&name) {
            return Err(SdError::NoSuchUnit(name));
        }
        self.record(&props);
        Ok(())
    }

    #[zbus(signal)]
    async fn job_removed(
        e: &SignalEmitter<'_>,
        id: u32,
        job: ObjectPath<'_>,
        unit: &str,
        result: &str,
    ) -> zbus::Result<()>;
}

/// A private dbus-daemon, killed on drop.
struct Daemon(Child, String);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn daemon() -> Option<Daemon> {
    let mut child = Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--print-address=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take()?)
        .read_line(&mut line)
        .ok()?;
    Some(Daemon(child, line.trim().to_owned()))
}

/// The stand-in manager on a private bus; None (and a note) without a
/// dbus-daemon.
fn stand_in() -> Option<(Daemon, zbus::blocking::Connection, Arc<Mutex<State>>)> {
    let Some(d) = daemon() else {
        eprintln!("skipped: no dbus-daemon on this host (Debian: dbus-daemon)");
        return None;
    };
    let state = Arc::new(Mutex::new(State::default()));
    let server = zbus::blocking::connection::Builder::address(d.1.as_str())
        .unwrap()
        .name("org.freedesktop.systemd1")
        .unwrap()
        .serve_at("/org/freedesktop/systemd1", Manager(state.clone()))
        .unwrap()
        .build()
        .unwrap();
    Some((d, server, state))
}

/// The calls the driver makes, whichever way they go.
trait Api {
    fn start_transient_unit(&self, unit: &str, props: &[Prop]) -> Result<(), BusError>;
    fn stop_unit(&self, unit: &str) -> Result<(), BusError>;
    fn attach_processes_to_unit(&self, unit: &str, pids: &[u32]) -> Result<(), BusError>;
    fn manager_cgroup(&self) -> Result<String, BusError>;
    fn version(&self) -> Result<String, BusError>;
    fn reset_failed_unit(&self, unit: &str) -> Result<(), BusError>;
    fn set_unit_properties(&self, unit: &str, props: &[Prop]) -> Result<(), BusError>;
}

macro_rules! api {
    ($t:ty) => {
        impl Api for $t {
            fn start_transient_unit(&self, u: &str, p: &[Prop]) -> Result<(), BusError> {
                <$t>::start_transient_unit(self, u, p)
            }
            fn stop_unit(&self, u: &str) -> Result<(), BusError> {
                <$t>::stop_unit(self, u)
            }
            fn attach_processes_to_unit(&self, u: &str, p: &[u32]) -> Result<(), BusError> {
                <$t>::attach_processes_to_unit(self, u, p)
            }
            fn manager_cgroup(&self) -> Result<String, BusError> {
                <$t>::manager_cgroup(self)
            }
            fn version(&self) -> Result<String, BusError> {
                <$t>::version(self)
            }
            fn reset_failed_unit(&self, u: &str) -> Result<(), BusError> {
                <$t>::reset_failed_unit(self, u)
            }
            fn set_unit_properties(&self, u: &str, p: &[Prop]) -> Result<(), BusError> {
                <$t>::set_unit_properties(self, u, p)
            }
        }
    };
}
api!(Conn);
api!(Bus);

#[test]
fn start_update_stop_against_a_stand_in_manager() {
    let Some((d, _server, state)) = stand_in() else {
        return;
    };
    exercise(&Conn::at(&d.1).unwrap(), &state);
}

#[test]
fn the_same_through_the_helper_loop_and_berths_client() {
    let Some((d, _server, state)) = stand_in() else {
        return;
    };
    let (client_tx, helper_rx) = UnixStream::pair().unwrap();
    let (helper_tx, client_rx) = UnixStream::pair().unwrap();
    let helper = std::thread::spawn(move || {
        super::super::helper::serve(BufReader::new(helper_rx), helper_tx)
    });
    let bus = Bus::over(client_tx.into(), client_rx.into());
    // A call before the connection is the helper's error, not a hang.
    let e = bus.version().unwrap_err().to_string();
    assert!(e.contains("before any connection"), "{e}");
    bus.connect_to(&d.1).unwrap();
    exercise(&bus, &state);
    drop(bus);
    helper.join().unwrap().unwrap();
}

fn exercise(bus: &impl Api, state: &Mutex<State>) {
    let mut props = super::super::props::base("t-x.scope", "system.slice", false, Some(1), true);
    props.push(("AllowedCPUs".into(), Value::Bytes(vec![1])));
    bus.start_transient_unit("t-x.scope", &props).unwrap();
    {
        let s = state.lock().unwrap();
        assert!(s.subscribed);
        assert_eq!(s.props["PIDs"], "au");
        assert_eq!(s.props["Delegate"], "b");
        assert_eq!(s.props["AllowedCPUs"], "ay");
    }
    // The driver retries after ResetFailedUnit on exactly this name.
    let e = bus.start_transient_unit("t-x.scope", &props).unwrap_err();
    assert_eq!(e.name(), Some(UNIT_EXISTS), "{e}");
    assert!(e.to_string().contains("t-x.scope"), "{e}");

    // exec's way into a user's unit, and the user manager's own cgroup.
    bus.attach_processes_to_unit("t-x.scope", &[42]).unwrap();
    assert_eq!(state.lock().unwrap().props["attach:"], "[42]");
    assert_eq!(
        bus.manager_cgroup().unwrap(),
        "/user.slice/user-1000.slice/user@1000.service"
    );

    let upd = vec![("MemoryMax".to_string(), Value::U64(1 << 20))];
    bus.set_unit_properties("t-x.scope", &upd).unwrap();
    assert_eq!(state.lock().unwrap().props["MemoryMax"], "t");

    // A job that does not end "done" is an error naming its result.
    let e = bus
        .start_transient_unit("fail-y.scope", &props)
        .unwrap_err();
    assert!(e.to_string().contains("\"failed\""), "{e}");

    bus.stop_unit("t-x.scope").unwrap();
    assert!(state.lock().unwrap().units.len() == 1);
    let e = bus.stop_unit("t-x.scope").unwrap_err();
    assert_eq!(e.name(), Some(NO_SUCH_UNIT), "{e}");
    bus.reset_failed_unit("t-x.scope").unwrap();

    // An older systemd's version is read for the gating (see `version`).
    assert_eq!(bus.version().unwrap(), "243.9-1");
}
