//! The client against a stand-in for systemd's manager on a private
//! dbus-daemon: the calls, the wait for JobRemoved, and the error names
//! the driver acts on. (The real systemd is exercised by the guest test,
//! conformance/vm/systemd.)

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use zbus::object_server::SignalEmitter;
use zbus::zvariant::{ObjectPath, OwnedObjectPath, OwnedValue};

use super::super::props::Value;
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

#[test]
fn start_update_stop_against_a_stand_in_manager() {
    let Some(d) = daemon() else {
        eprintln!("skipped: no dbus-daemon on this host (Debian: dbus-daemon)");
        return;
    };
    let state = Arc::new(Mutex::new(State::default()));
    let _server = zbus::blocking::connection::Builder::address(d.1.as_str())
        .unwrap()
        .name("org.freedesktop.systemd1")
        .unwrap()
        .serve_at("/org/freedesktop/systemd1", Manager(state.clone()))
        .unwrap()
        .build()
        .unwrap();
    let bus = Bus::at(&d.1).unwrap();

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

#[test]
fn the_user_bus_is_found_as_runc_finds_it() {
    let s = |v: &str| Some(v.to_string());
    let yes = |_: &str| true;
    let no = |_: &str| false;
    // $DBUS_SESSION_BUS_ADDRESS wins, as given.
    let a = pick_user_address(s("unix:path=/x"), s("/run/user/1"), no).unwrap();
    assert_eq!(a, "unix:path=/x");
    let a = pick_user_address(None, s("/run/user/1000/"), yes).unwrap();
    assert_eq!(a, "unix:path=/run/user/1000/bus");
    let a = pick_user_address(None, s("/tmp/a b"), yes).unwrap();
    assert_eq!(a, "unix:path=/tmp/a%20b/bus");
    // Neither: one line naming what is missing and how to get it.
    let e = pick_user_address(None, s("/run/user/1000"), no)
        .unwrap_err()
        .to_string();
    assert!(e.contains("/run/user/1000/bus does not exist"), "{e}");
    assert!(e.contains("enable-linger") && !e.contains('\n'), "{e}");
    let e = pick_user_address(None, None, yes).unwrap_err().to_string();
    assert!(e.contains("XDG_RUNTIME_DIR is unset"), "{e}");
}
