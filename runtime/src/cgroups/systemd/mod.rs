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
//! Devices: berth's own filter (eBPF on v2, devices.* on v1) is always
//! applied; an allow list is also given to systemd as DevicePolicy=strict
//! and DeviceAllow= (see `props::devices`), so that both filters agree.

mod bus;
mod props;
mod unit;

use std::collections::HashMap;

use oci_spec::runtime::{LinuxDevice, LinuxResources};
use serde::{Deserialize, Serialize};

use super::{devices, fsutil, plan, Cgroup, CgroupError, Layout};
pub use bus::BusError;
pub use unit::{DEFAULT_PREFIX, DEFAULT_SLICE};

/// The container's unit, recorded in the container state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unit {
    pub name: String,
    pub slice: String,
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
) -> Result<Cgroup, CgroupError> {
    let name = unit::parse(cgroups_path, id)?;
    let path = unit::cgroup_path(&name);
    let mut cg = super::layout::resolve(
        own_cgroups,
        mountinfo,
        Some(std::path::Path::new(&path)),
        id,
    )?;
    cg.systemd = Some(Unit {
        extra: props::from_annotations(annotations)?,
        name: name.unit,
        slice: name.slice,
    });
    Ok(cg)
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
    let u = unit(cg);
    let v2 = cg.layout == Layout::V2;
    let is_slice = u.name.ends_with(".slice");
    let (plan, all) = properties(cg, pid, p)?;
    let t0 = std::time::Instant::now();
    let bus = bus::Bus::system()?;
    let t1 = t0.elapsed();
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
            let path = dir.path.join("cgroup.procs");
            fsutil::write_file(&path, pid.to_string().as_bytes())
                .map_err(|source| CgroupError::AddPid { pid, path, source })?;
        }
        plan::apply(cg, &plan)
    })();
    if let Err(e) = joined {
        let _ = stop(cg, &bus);
        return Err(e);
    }
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
    all.extend(u.extra.iter().cloned());
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
    properties(cg, 1, &pending)
}

pub(super) fn update(cg: &Cgroup, resources: &LinuxResources) -> Result<(), CgroupError> {
    let mut plan = plan::build_update(cg, resources)?;
    let props = props::from_writes(&mut plan.writes, cg.layout == Layout::V2)?;
    if !props.is_empty() {
        bus::Bus::system()?.set_unit_properties(&unit(cg).name, &props)?;
    }
    plan::apply_update(cg, &plan)
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
    stop(cg, &bus::Bus::system()?)?;
    crate::logging::debug(|| format!("systemd: {} stopped in {:?}", unit(cg).name, t0.elapsed()));
    let mut first_err = None;
    for dir in &cg.dirs {
        if let Err(e) = fsutil::remove_created(dir) {
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests;
