//! From `linux.resources` to cgroup file writes. `build` validates
//! everything and does no I/O beyond reading the v2 root's controller list,
//! so that a bad config fails before any directory exists; `apply` performs
//! the writes on the directories `create` made.

use std::io;
use std::path::Path;

use oci_spec::runtime::{LinuxDevice, LinuxResources};

use super::bpf::{self, Insn};
use super::resources::{self, w, Write};
use super::{devices, fsutil, Cgroup, CgroupError, Dir, Layout};

#[derive(Debug)]
pub(super) struct Plan {
    pub(super) writes: Vec<Write>,
    /// v2: the compiled device filter.
    device_filter: Option<Vec<Insn>>,
    /// "+cpu +memory ..." for every ancestor's cgroup.subtree_control on v2,
    /// and on hybrid hosts for the controllers used on the cgroup2 mount.
    enable: String,
}

/// The controllers berth enables for containers on v2, when available.
const V2_CONTROLLERS: [&str; 5] = ["cpu", "cpuset", "io", "memory", "pids"];

pub(super) fn build(
    cg: &Cgroup,
    resources: Option<&LinuxResources>,
    devs: Option<&[LinuxDevice]>,
) -> Result<Plan, CgroupError> {
    let v2 = cg.layout == Layout::V2;
    let mut writes = Vec::new();
    // hugetlb on a hybrid host without a v1 hugetlb hierarchy: use the
    // cgroup2 mount when it offers the controller (then with v2 file names).
    let mut hybrid_v2 = Vec::new();
    if let Some(r) = resources {
        if let Some(m) = r.memory() {
            resources::memory(&mut writes, m, v2)?;
        }
        if let Some(c) = r.cpu() {
            resources::cpu(&mut writes, c, v2)?;
        }
        // 0 is "unset" (oci-spec has no None here), negative is "no limit".
        if let Some(p) = r.pids().as_ref().filter(|p| p.limit() != 0) {
            writes.push(w(
                "pids",
                "pids.max",
                resources::v2_limit(p.limit()),
                "linux.resources.pids.limit",
            ));
        }
        if let Some(b) = r.block_io() {
            resources::block_io(&mut writes, b, v2)?;
        }
        if let Some(h) = r.hugepage_limits().as_deref().filter(|h| !h.is_empty()) {
            let on_unified = cg.layout == Layout::Hybrid
                && !cg.dirs.iter().any(|d| d.has_controller("hugetlb"))
                && unified_root_offers(cg, "hugetlb")?;
            if on_unified {
                hybrid_v2.push("hugetlb");
            }
            resources::hugepages(&mut writes, h, v2 || on_unified, on_unified)?;
        }
        if let Some(n) = r.network() {
            resources::network(&mut writes, n, v2)?;
        }
        if let Some(m) = r.rdma() {
            resources::rdma(&mut writes, m)?;
        }
        if let Some(u) = r.unified() {
            resources::unified(&mut writes, u, v2)?;
        }
    }
    let rules = devices::rules(resources.and_then(|r| r.devices().as_deref()), devs)?;
    // Allow rules on top of the allow-all start state change nothing.
    let restricts = rules.iter().any(|r| !r.allow);
    let mut device_filter = None;
    if restricts && v2 && cg.user_manager().is_some() {
        // An ordinary user may not load it (see systemd's module docs).
        crate::logging::debug(|| {
            "no eBPF device filter in a user's systemd instance: the user may not load one".into()
        });
    } else if restricts && v2 {
        device_filter = Some(bpf::program(&rules)?);
    } else if restricts {
        for r in &rules {
            let file = if r.allow {
                "devices.allow"
            } else {
                "devices.deny"
            };
            for line in devices::v1_lines(r) {
                writes.push(Write {
                    field: r.field.clone(),
                    ..w("devices", file, line, "")
                });
            }
        }
    }

    let mut enable = String::new();
    if v2 {
        let root = mount_root(&cg.dirs[0]);
        // In a user's instance: what systemd delegated to it.
        let top = cg
            .user_manager()
            .map_or(root.to_path_buf(), |m| root.join(m.trim_start_matches('/')));
        let path = top.join("cgroup.controllers");
        let available = fsutil::read_file(&path).map_err(|source| match cg.user_manager() {
            Some(m) if source.kind() == io::ErrorKind::NotFound => CgroupError::NotDelegated(
                format!("the user's systemd instance has no cgroup {m} (is user@.service running? `loginctl enable-linger` starts it)"),
            ),
            _ => CgroupError::Read { path, source },
        })?;
        let available: Vec<&str> = available.split_whitespace().collect();
        let core = |x: &&Write| x.controller.is_empty();
        if let Some(x) = writes
            .iter()
            .filter(|x| !core(x))
            .find(|x| !available.contains(&&*x.controller))
        {
            if cg.user_manager().is_some() {
                return Err(CgroupError::NotDelegated(format!(
                    "{}: systemd did not delegate the {} controller to this user (it delegated \"{}\"; a drop-in for user@.service with Delegate= adds it)",
                    x.field,
                    x.controller,
                    available.join(" ")
                )));
            }
            return Err(no_controller(x));
        }
        let used = writes.iter().filter(|x| !core(x)).map(|x| &*x.controller);
        let mut wanted: Vec<&str> = V2_CONTROLLERS.iter().copied().chain(used).collect();
        wanted.sort_unstable();
        wanted.dedup();
        for c in wanted.iter().filter(|c| available.contains(c)) {
            enable.push_str(if enable.is_empty() { "+" } else { " +" });
            enable.push_str(c);
        }
    } else {
        if let Some(x) = writes.iter().find(|x| {
            !x.unified
                && !cg
                    .dirs
                    .iter()
                    .any(|d| !d.is_unified() && d.has_controller(&x.controller))
        }) {
            return Err(no_controller(x));
        }
        enable = hybrid_v2.iter().map(|c| format!("+{c}")).collect();
    }
    Ok(Plan {
        writes,
        device_filter,
        enable,
    })
}

fn no_controller(x: &Write) -> CgroupError {
    CgroupError::NoController {
        field: x.field.clone().into_owned(),
        controller: x.controller.clone().into_owned(),
    }
}

/// Hybrid: whether the cgroup2 mount's root offers `controller`.
fn unified_root_offers(cg: &Cgroup, controller: &str) -> Result<bool, CgroupError> {
    let Some(dir) = cg.dirs.iter().find(|d| d.is_unified()) else {
        return Ok(false);
    };
    let path = mount_root(dir).join("cgroup.controllers");
    let text = fsutil::read_file(&path).map_err(|source| CgroupError::Read { path, source })?;
    Ok(text.split_whitespace().any(|c| c == controller))
}

fn mount_root(dir: &Dir) -> &Path {
    fsutil::ancestor(dir, dir.levels)
}

fn write_err(x: &Write, path: &Path, value: &str, source: io::Error) -> CgroupError {
    if source.kind() == io::ErrorKind::NotFound {
        return CgroupError::Invalid {
            field: x.field.clone().into_owned(),
            reason: format!("this kernel has no {}", path.display()),
        };
    }
    CgroupError::Write {
        field: x.field.clone().into_owned(),
        path: path.to_owned(),
        value: value.to_owned(),
        source,
    }
}

/// One write, or its fallback file when the first does not exist.
fn write_one(w: &mut fsutil::Writer, x: &Write, dir: &Path) -> Result<(), CgroupError> {
    let path = dir.join(&*x.file);
    match w.write(&path, x.value.as_bytes()) {
        Err(e) if e.kind() == io::ErrorKind::NotFound && x.optional => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound && x.fallback.is_some() => {
            let (file, value) = x.fallback.as_ref().expect("checked");
            let path = dir.join(file);
            w.write(&path, value.as_bytes())
                .map_err(|e| write_err(x, &path, value, e))
        }
        r => r.map_err(|e| write_err(x, &path, &x.value, e)),
    }
}

fn run_writes<'a>(
    writes: &[Write],
    dir_of: impl Fn(&Write) -> &'a Path,
) -> Result<(), CgroupError> {
    let w = &mut fsutil::Writer::default();
    let mut i = 0;
    while i < writes.len() {
        let x = &writes[i];
        match write_one(w, x, dir_of(x)) {
            Err(CgroupError::Write { source, .. })
                if x.swap_first_on_einval && source.raw_os_error() == Some(libc::EINVAL) =>
            {
                let Some(next) = writes.get(i + 1) else {
                    return write_one(w, x, dir_of(x));
                };
                write_one(w, next, dir_of(next))?;
                write_one(w, x, dir_of(x))?;
                i += 1;
            }
            r => r?,
        }
        i += 1;
    }
    Ok(())
}

/// A new v1 cpuset cgroup starts with empty cpus and mems, and a task
/// cannot join it then: copy them down from the nearest ancestor that has
/// them into every level `create` made.
fn fill_cpuset(dir: &Dir, plan: &Plan) -> Result<(), CgroupError> {
    let made = dir.created.get();
    if made == 0 {
        return Ok(());
    }
    let sets = |f: &str| plan.writes.iter().any(|x| x.file == f);
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let mut value = String::new();
        for k in made..=dir.levels {
            let path = fsutil::ancestor(dir, k).join(file);
            value =
                fsutil::read_file(&path).map_err(|source| CgroupError::Read { path, source })?;
            if !value.trim().is_empty() {
                break;
            }
        }
        let lowest = u16::from(sets(file));
        for k in (lowest..made).rev() {
            let path = fsutil::ancestor(dir, k).join(file);
            fsutil::write_file(&path, value.trim().as_bytes()).map_err(|source| {
                CgroupError::Write {
                    field: "cpuset of a new v1 cgroup".into(),
                    path,
                    value: value.trim().to_owned(),
                    source,
                }
            })?;
        }
    }
    Ok(())
}

/// `update`: the writes of `resources` (devices are not updatable, as in
/// runc) on the existing directories, with no cpuset copying.
pub(super) fn update(cg: &Cgroup, resources: &LinuxResources) -> Result<(), CgroupError> {
    apply_update(cg, &build_update(cg, resources)?)
}

/// The plan of an `update`: devices are left alone.
pub(super) fn build_update(cg: &Cgroup, resources: &LinuxResources) -> Result<Plan, CgroupError> {
    let mut r = resources.clone();
    r.set_devices(None);
    build(cg, Some(&r), None)
}

pub(super) fn apply_update(cg: &Cgroup, plan: &Plan) -> Result<(), CgroupError> {
    apply_inner(cg, plan, false)
}

pub(super) fn apply(cg: &Cgroup, plan: &Plan) -> Result<(), CgroupError> {
    apply_inner(cg, plan, true)
}

fn apply_inner(cg: &Cgroup, plan: &Plan, new: bool) -> Result<(), CgroupError> {
    if cg.layout == Layout::V2 {
        let dir = &cg.dirs[0];
        // systemd enables what it delegated down to a user's unit; the
        // levels above are not the user's to write.
        if !plan.enable.is_empty() && cg.user_manager().is_none() {
            for k in (1..=dir.levels).rev() {
                enable_controllers(fsutil::ancestor(dir, k), &plan.enable)?;
            }
        }
        run_writes(&plan.writes, |_| &dir.path)?;
        if let Some(insns) = plan.device_filter.as_ref().filter(|_| new) {
            bpf::attach(&dir.path, insns)?;
        }
        return Ok(());
    }
    if let Some(dir) = cg.dirs.iter().find(|d| d.has_controller("cpuset")) {
        if new {
            fill_cpuset(dir, plan)?;
        }
    }
    let unified = cg.dirs.iter().find(|d| d.is_unified());
    if let (Some(dir), false) = (unified, plan.enable.is_empty()) {
        // A v2 controller must be enabled on every level down from the
        // root, so on a hybrid host this changes cgroups berth does not own
        // (the unified root). What berth switches on there is marked on the
        // cgroup itself and switched off again by `remove` once no cgroup
        // below uses it.
        let made = dir.created.get();
        for k in (1..=dir.levels).rev() {
            let at = fsutil::ancestor(dir, k);
            let before = if new && k >= made {
                fsutil::read_file(&at.join("cgroup.subtree_control")).ok()
            } else {
                None
            };
            enable_controllers(at, &plan.enable)?;
            if let Some(before) = before {
                let missing: Vec<&str> = plan
                    .enable
                    .split(' ')
                    .map(|c| c.trim_start_matches('+'))
                    .filter(|c| !before.split_whitespace().any(|b| b == *c))
                    .collect();
                fsutil::mark_switched_on(at, &missing);
            }
        }
    }
    run_writes(&plan.writes, |x| {
        let dir = if x.unified {
            unified
        } else {
            cg.dirs
                .iter()
                .find(|d| !d.is_unified() && d.has_controller(&x.controller))
        };
        &dir.expect("build checked every controller").path
    })
}

/// Write `enable` to dir's cgroup.subtree_control; if the kernel refuses
/// the whole set, retry with what this level actually offers.
fn enable_controllers(dir: &Path, enable: &str) -> Result<(), CgroupError> {
    let path = dir.join("cgroup.subtree_control");
    let err = |value: &str, source| CgroupError::Write {
        field: "enabling cgroup v2 controllers".into(),
        path: path.clone(),
        value: value.to_owned(),
        source,
    };
    let Err(first) = fsutil::write_file(&path, enable.as_bytes()) else {
        return Ok(());
    };
    let here = dir.join("cgroup.controllers");
    let Ok(offered) = fsutil::read_file(&here) else {
        return Err(err(enable, first));
    };
    let offered: Vec<&str> = offered.split_whitespace().collect();
    let subset: Vec<&str> = enable
        .split(' ')
        .filter(|c| offered.contains(&&c[1..]))
        .collect();
    if subset.is_empty() {
        return Ok(());
    }
    let subset = subset.join(" ");
    fsutil::write_file(&path, subset.as_bytes()).map_err(|e| err(&subset, e))
}

#[cfg(fuzzing)]
impl Plan {
    pub(super) fn device_filter(&self) -> Option<&[Insn]> {
        self.device_filter.as_deref()
    }

    pub(super) fn enable(&self) -> &str {
        &self.enable
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
