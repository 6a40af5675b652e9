//! The systemd cgroup driver (`--systemd-cgroup`), with runc's semantics:
//! the container's cgroup is a transient unit that systemd makes and owns,
//! and berth writes only what systemd cannot express.
//!
//! - `resolve` names the unit from `linux.cgroupsPath` (`unit`) and computes
//!   the directories systemd will give it: the same path in every
//!   hierarchy, as systemd lays out v1 and v2 alike. Nothing is made.
//! - `create` validates the resources and the annotations and keeps them:
//!   a scope cannot exist without a process, so it is started only when the
//!   init exists.
//! - `start` (from [`Cgroup::add_pid`] at create) starts the unit through
//!   StartTransientUnit with the init's pid, Delegate=yes, accounting on and
//!   the resources as properties (`props`), waits for the job, joins the
//!   hierarchies systemd does not manage (v1), then writes the cgroup files
//!   as the cgroupfs driver would, so that what has no property (cpu.idle,
//!   io.max, hugetlb, the device filter, `unified`) is enforced too.
//! - `update` sets the properties (SetUnitProperties, runtime) and the files.
//! - `remove` stops the unit, resets its failed state, and removes what is
//!   left of its cgroup.
//!
//! Every call to systemd goes through `bus`, whose client starts the D-Bus
//! helper binary, `berth-systemd` (`helper`, over `dbus`, speaking `wire`):
//! berth itself links no D-Bus code.
//!
//! A user's own instance (runc's rootless systemd driver, chosen by the
//! caller with runc's rule, see the rootless module): the unit goes to the systemd
//! the user bus leads to, `user.slice` by default, on cgroup v2 only. Its
//! cgroup is below the manager's own, `user@<uid>.service`, which `resolve`
//! names without a connection and `start` checks against the manager's
//! ControlGroup. Only the controllers systemd delegated to that instance
//! (user@.service's Delegate=) can be used; berth leaves the ancestors'
//! subtree_control to systemd, which the user may not write anyway, and
//! loads no eBPF device filter, which an ordinary user may not (as runc in
//! a user namespace; the container's devices are bind mounts of nodes the
//! user can open, and its user namespace cannot mknod).
//!
//! Devices: berth's own filter (eBPF on v2, devices.* on v1) is always
//! applied; an allow list is also given to systemd as DevicePolicy=strict
//! and DeviceAllow= (see `props::devices`), so that both filters agree.

mod bus;
#[cfg(feature = "systemd")]
mod dbus;
#[cfg(feature = "systemd")]
pub mod helper;
mod props;
mod unit;
mod version;
mod wire;

use std::collections::HashMap;

use oci_spec::runtime::{LinuxDevice, LinuxResources};
use serde::{Deserialize, Serialize};

use super::{devices, fsutil, plan, Cgroup, CgroupError, Layout};
pub use bus::BusError;
pub use unit::{DEFAULT_PREFIX, DEFAULT_SLICE, USER_SLICE};

/// The container's unit, recorded in the container state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unit {
    pub name: String,
    pub slice: String,
    /// Set in a user's instance: the manager's cgroup
    /// (`/user.slice/user-<uid>.slice/user@<uid>.service`); the bus is then
    /// the user bus, reached as `uid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<String>,
    #[serde(default)]
    pub uid: u32,
    /// `org.systemd.property.*` annotations, needed only at start.
    #[serde(skip)]
    extra: Vec<props::Prop>,
}

/// What `create` validated, applied by `start` once the init exists.
#[derive(Debug, Clone, Default)]
pub(super) struct Pending {
    resources: Option<LinuxResources>,
    devices: Option<Vec<LinuxDevice>>,
}

pub(super) fn resolve(
    own_cgroups: &str,
    mountinfo: &str,
    cgroups_path: Option<&str>,
    annotations: &HashMap<String, String>,
    id: &str,
    user: Option<u32>,
) -> Result<Cgroup, CgroupError> {
    if !cfg!(feature = "systemd") {
        // Built without the driver (and its helper): this is the refusal,
        // before anything is made.
        return Err(bus::BusError::NotBuilt.into());
    }
    let name = unit::parse(cgroups_path, id, user.is_some())?;
    let manager = user.map(|uid| format!("/user.slice/user-{uid}.slice/user@{uid}.service"));
    let path = format!(
        "{}{}",
        manager.as_deref().unwrap_or(""),
        unit::cgroup_path(&name)
    );
    let mut cg = super::layout::resolve(
        own_cgroups,
        mountinfo,
        Some(std::path::Path::new(&path)),
        id,
    )?;
    if user.is_some() && cg.layout != Layout::V2 {
        // As runc: systemd delegates to a user only on the unified hierarchy.
        return Err(CgroupError::NotDelegated(
            "--systemd-cgroup as an ordinary user needs cgroup v2; this host mounts cgroup v1"
                .into(),
        ));
    }
    cg.systemd = Some(Unit {
        extra: props::from_annotations(annotations)?,
        name: name.unit,
        slice: name.slice,
        manager,
        uid: user.unwrap_or(0),
    });
    Ok(cg)
}

/// The bus of the unit's manager: the system's, or the user's.
fn connect(u: &Unit) -> Result<bus::Bus, bus::BusError> {
    // The helper would be born in the pid namespace this process's children
    // go to (exec, after joining the container's): inside the container,
    // where it must never run. exec forks its attach helper before joining
    // (process/attach.rs); anything else is refused.
    let ns = |p| std::fs::read_link(p).ok();
    if ns("/proc/self/ns/pid") != ns("/proc/self/ns/pid_for_children") {
        return Err(bus::BusError::PidNamespace);
    }
    if u.manager.is_some() {
        bus::Bus::user(u.uid)
    } else {
        bus::Bus::system()
    }
}

/// Where an ordinary user's container fails first when there is no user
/// bus: before anything is made.
pub(super) fn check_bus(u: &Unit) -> Result<(), CgroupError> {
    if u.manager.is_some() {
        bus::user_address()?;
    }
    Ok(())
}

pub(super) fn create(
    cg: &Cgroup,
    resources: Option<&LinuxResources>,
    devices: Option<&[LinuxDevice]>,
) -> Result<Pending, CgroupError> {
    let mut plan = plan::build(cg, resources, devices)?;
    props::from_writes(&mut plan.writes, cg.layout == Layout::V2)?;
    Ok(Pending {
        resources: resources.cloned(),
        devices: devices.map(<[_]>::to_vec),
    })
}

fn unit(cg: &Cgroup) -> &Unit {
    cg.systemd.as_ref().expect("called for the systemd driver")
}

pub(super) fn start(cg: &Cgroup, pid: i32, p: &Pending) -> Result<(), CgroupError> {
    // 0 is the calling process, as for the cgroup files (restore's CRIU).
    let pid = if pid == 0 {
        std::process::id() as i32
    } else {
        pid
    };
    let u = unit(cg);
    let v2 = cg.layout == Layout::V2;
    let is_slice = u.name.ends_with(".slice");
    let (plan, mut all) = properties(cg, pid, p)?;
    let t0 = std::time::Instant::now();
    let bus = connect(u)?;
    if let Some(expected) = &u.manager {
        let actual = bus.manager_cgroup()?;
        if &actual != expected {
            return Err(bus::BusError::ManagerCgroup {
                expected: expected.clone(),
                actual,
            }
            .into());
        }
    }
    let t1 = t0.elapsed();
    gate(&bus, &mut all);
    // Annotations are the user's own properties: passed as given.
    all.extend(u.extra.iter().cloned());
    if let Err(e) = bus.start_transient_unit(&u.name, &all) {
        if e.name() != Some(bus::UNIT_EXISTS) {
            return Err(e.into());
        }
        // As runc: it may be a failed leftover; let systemd drop it, retry once.
        let _ = bus.reset_failed_unit(&u.name);
        bus.start_transient_unit(&u.name, &all)?;
    }
    crate::logging::debug(|| {
        format!(
            "systemd: connected in {t1:?}, {} started in {:?}",
            u.name,
            t0.elapsed() - t1
        )
    });
    let joined = (|| {
        for dir in &cg.dirs {
            if v2 && !is_slice {
                // systemd made it; remove() still cleans up what is inside.
                dir.created.set(1);
                continue;
            }
            fsutil::mkdir_p(dir)?;
            dir.created.set(dir.created.get().max(1));
        }
        // The files before the pid: a new v1 cpuset cgroup (a hierarchy
        // systemd does not manage) takes no task until apply has filled its
        // cpus and mems.
        plan::apply(cg, &plan)?;
        for dir in cg.dirs.iter().filter(|_| !v2 || is_slice) {
            let path = dir.path.join("cgroup.procs");
            fsutil::write_file(&path, pid.to_string().as_bytes())
                .map_err(|source| CgroupError::AddPid { pid, path, source })?;
        }
        Ok(())
    })();
    if let Err(e) = joined {
        let _ = stop(cg, &bus);
        return Err(e);
    }
    Ok(())
}

/// Move `pid` into the unit through its manager (AttachProcessesToUnit).
pub(super) fn attach(cg: &Cgroup, pid: i32) -> Result<(), CgroupError> {
    let u = unit(cg);
    let pid = u32::try_from(pid).map_err(|_| CgroupError::Invalid {
        field: "pid".into(),
        reason: format!("{pid} is not a pid"),
    })?;
    connect(u)?.attach_processes_to_unit(&u.name, &[pid])?;
    Ok(())
}

/// The unit's properties and the file writes that go with them.
fn properties(
    cg: &Cgroup,
    pid: i32,
    p: &Pending,
) -> Result<(plan::Plan, Vec<props::Prop>), CgroupError> {
    let u = unit(cg);
    let v2 = cg.layout == Layout::V2;
    let mut plan = plan::build(cg, p.resources.as_ref(), p.devices.as_deref())?;
    let is_slice = u.name.ends_with(".slice");
    // systemd refuses PIDs for a slice: its init joins through the files.
    let mut all = props::base(&u.name, &u.slice, is_slice, (!is_slice).then_some(pid), v2);
    all.extend(props::from_writes(&mut plan.writes, v2)?);
    let rules = devices::rules(
        p.resources.as_ref().and_then(|r| r.devices().as_deref()),
        p.devices.as_deref(),
    )?;
    all.extend(props::devices(&rules));
    Ok((plan, all))
}

/// `create` then `start`'s properties, without the bus (the fuzz target).
#[cfg(fuzzing)]
pub(super) fn fuzz_properties(
    cg: &Cgroup,
    resources: Option<&LinuxResources>,
    devices: Option<&[LinuxDevice]>,
) -> Result<(plan::Plan, Vec<props::Prop>), CgroupError> {
    let pending = create(cg, resources, devices)?;
    let (plan, mut all) = properties(cg, 1, &pending)?;
    all.extend(unit(cg).extra.iter().cloned());
    Ok((plan, all))
}

pub(super) fn update(cg: &Cgroup, resources: &LinuxResources) -> Result<(), CgroupError> {
    let mut plan = plan::build_update(cg, resources)?;
    let mut props = props::from_writes(&mut plan.writes, cg.layout == Layout::V2)?;
    if !props.is_empty() {
        let bus = connect(unit(cg))?;
        gate(&bus, &mut props);
        if !props.is_empty() {
            bus.set_unit_properties(&unit(cg).name, &props)?;
        }
    }
    plan::apply_update(cg, &plan)
}

/// Leaves out the properties the running systemd is too old for (see
/// `version`); the version is asked for only when one is present. A
/// version that cannot be read leaves them in: systemd then names any it
/// refuses.
fn gate(bus: &bus::Bus, props: &mut Vec<props::Prop>) {
    if !version::matters(props) {
        return;
    }
    let Some(v) = bus.version().ok().and_then(|v| version::parse(&v)) else {
        return;
    };
    let dropped = version::gate(props, v);
    if !dropped.is_empty() {
        crate::logging::debug(|| {
            format!("systemd {v} predates {dropped:?}: set through the cgroup files only")
        });
    }
}

fn stop(cg: &Cgroup, bus: &bus::Bus) -> Result<(), CgroupError> {
    let name = &unit(cg).name;
    match bus.stop_unit(name) {
        Err(e) if e.name() != Some(bus::NO_SUCH_UNIT) && e.name() != Some(bus::LOAD_FAILED) => {
            return Err(e.into());
        }
        _ => {}
    }
    // A unit whose processes were killed may be "failed": drop it.
    let _ = bus.reset_failed_unit(name);
    Ok(())
}

pub(super) fn remove(cg: &Cgroup) -> Result<(), CgroupError> {
    let t0 = std::time::Instant::now();
    stop(cg, &connect(unit(cg))?)?;
    crate::logging::debug(|| format!("systemd: {} stopped in {:?}", unit(cg).name, t0.elapsed()));
    let mut first_err = None;
    for dir in &cg.dirs {
        if let Err(e) = fsutil::remove_created(dir) {
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

#[cfg(all(test, feature = "systemd"))]
mod tests;
