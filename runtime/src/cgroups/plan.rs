//! From `linux.resources` to cgroup file writes. `build` validates
//! everything and does no I/O beyond reading the v2 root's controller list,
//! so that a bad config fails before any directory exists; `apply` performs
//! the writes on the directories `create` made.

use std::borrow::Cow;
use std::io;
use std::path::Path;

use oci_spec::runtime::{LinuxCpu, LinuxDevice, LinuxMemory, LinuxResources};

use super::bpf::{self, Insn};
use super::{devices, fsutil, Cgroup, CgroupError, Dir, Layout};

#[derive(Debug)]
pub(super) struct Write {
    /// The controller whose file this is (picks the v1 hierarchy).
    controller: &'static str,
    file: &'static str,
    value: String,
    field: Cow<'static, str>,
    /// Skipped when the kernel has no such file.
    optional: bool,
    /// v1 memory: on EINVAL, do the next write (the swap limit) first and
    /// then retry this one, since memsw must never be below the limit.
    swap_first_on_einval: bool,
}

#[derive(Debug)]
pub(super) struct Plan {
    writes: Vec<Write>,
    /// v2: the compiled device filter.
    device_filter: Option<Vec<Insn>>,
    /// v2: "+cpu +memory ..." for every ancestor's cgroup.subtree_control.
    enable: String,
}

/// The controllers berth enables for containers on v2, when available.
const V2_CONTROLLERS: [&str; 5] = ["cpu", "cpuset", "io", "memory", "pids"];

fn w(controller: &'static str, file: &'static str, value: String, field: &'static str) -> Write {
    Write {
        controller,
        file,
        value,
        field: Cow::Borrowed(field),
        optional: false,
        swap_first_on_einval: false,
    }
}

fn unsupported(field: &str) -> CgroupError {
    CgroupError::Unsupported {
        field: field.to_owned(),
    }
}

fn not_on_v2(field: &str) -> CgroupError {
    CgroupError::Invalid {
        field: field.to_owned(),
        reason: "cgroup v2 has no such limit".into(),
    }
}

/// -1 (and any negative value) is "no limit".
fn v2_limit(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

fn check_unsupported(r: &LinuxResources) -> Result<(), CgroupError> {
    if r.block_io()
        .as_ref()
        .is_some_and(|b| *b != Default::default())
    {
        return Err(unsupported("linux.resources.blockIO"));
    }
    if r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()) {
        return Err(unsupported("linux.resources.hugepageLimits"));
    }
    if r.network()
        .as_ref()
        .is_some_and(|n| *n != Default::default())
    {
        return Err(unsupported("linux.resources.network"));
    }
    if r.rdma().as_ref().is_some_and(|m| !m.is_empty()) {
        return Err(unsupported("linux.resources.rdma"));
    }
    if r.unified().as_ref().is_some_and(|m| !m.is_empty()) {
        return Err(unsupported("linux.resources.unified"));
    }
    Ok(())
}

#[allow(deprecated)] // LinuxMemory::kernel: still honoured on v1 kernels that have it
fn memory(out: &mut Vec<Write>, m: &LinuxMemory, v2: bool) -> Result<(), CgroupError> {
    const F: &str = "linux.resources.memory";
    if m.check_before_update() == Some(true) {
        return Err(unsupported("linux.resources.memory.checkBeforeUpdate"));
    }
    if m.use_hierarchy() == Some(false) {
        return Err(CgroupError::Invalid {
            field: format!("{F}.useHierarchy"),
            reason: "current kernels always account hierarchically".into(),
        });
    }
    if v2 {
        for (set, field) in [
            (m.kernel().is_some(), "linux.resources.memory.kernel"),
            (m.kernel_tcp().is_some(), "linux.resources.memory.kernelTCP"),
            (
                m.swappiness().is_some(),
                "linux.resources.memory.swappiness",
            ),
            (
                m.disable_oom_killer() == Some(true),
                "linux.resources.memory.disableOOMKiller",
            ),
        ] {
            if set {
                return Err(not_on_v2(field));
            }
        }
        if let Some(v) = m.limit() {
            out.push(w(
                "memory",
                "memory.max",
                v2_limit(v),
                "linux.resources.memory.limit",
            ));
        }
        if let Some(v) = m.reservation() {
            out.push(w(
                "memory",
                "memory.low",
                v2_limit(v),
                "linux.resources.memory.reservation",
            ));
        }
        if let Some(v) = v2_swap(m.swap().unwrap_or(0), m.limit().unwrap_or(0))? {
            out.push(w(
                "memory",
                "memory.swap.max",
                v,
                "linux.resources.memory.swap",
            ));
        }
        return Ok(());
    }
    if let Some(v) = m.limit() {
        let mut limit = w(
            "memory",
            "memory.limit_in_bytes",
            v.to_string(),
            "linux.resources.memory.limit",
        );
        limit.swap_first_on_einval = m.swap().is_some();
        out.push(limit);
    }
    if let Some(v) = m.swap() {
        out.push(w(
            "memory",
            "memory.memsw.limit_in_bytes",
            v.to_string(),
            "linux.resources.memory.swap",
        ));
    }
    if let Some(v) = m.reservation() {
        out.push(w(
            "memory",
            "memory.soft_limit_in_bytes",
            v.to_string(),
            "linux.resources.memory.reservation",
        ));
    }
    if let Some(v) = m.kernel() {
        // Gone from newer kernels, and a no-op since 5.x where it exists.
        let mut k = w(
            "memory",
            "memory.kmem.limit_in_bytes",
            v.to_string(),
            "linux.resources.memory.kernel",
        );
        k.optional = true;
        out.push(k);
    }
    if let Some(v) = m.kernel_tcp() {
        out.push(w(
            "memory",
            "memory.kmem.tcp.limit_in_bytes",
            v.to_string(),
            "linux.resources.memory.kernelTCP",
        ));
    }
    if let Some(v) = m.swappiness() {
        if v > 100 {
            return Err(CgroupError::Invalid {
                field: format!("{F}.swappiness"),
                reason: format!("{v} is above 100"),
            });
        }
        out.push(w(
            "memory",
            "memory.swappiness",
            v.to_string(),
            "linux.resources.memory.swappiness",
        ));
    }
    if m.disable_oom_killer() == Some(true) {
        out.push(w(
            "memory",
            "memory.oom_control",
            "1".into(),
            "linux.resources.memory.disableOOMKiller",
        ));
    }
    Ok(())
}

/// OCI's swap is memory+swap (the v1 memsw value); v2 limits swap alone.
/// 0 means unset; -1 unlimited, also when only the memory limit is -1.
fn v2_swap(swap: i64, limit: i64) -> Result<Option<String>, CgroupError> {
    let bad = |reason: &str| CgroupError::Invalid {
        field: "linux.resources.memory.swap".into(),
        reason: reason.into(),
    };
    match (swap, limit) {
        (0, -1) | (-1, _) => Ok(Some("max".into())),
        (0, _) => Ok(None),
        (_, 0 | -1) => Err(bad("a swap limit needs a memory limit")),
        (s, l) if s < l || l < 0 => Err(bad("must be at least linux.resources.memory.limit")),
        (s, l) => Ok(Some((s - l).to_string())),
    }
}

/// runc's mapping of cpu.shares [2, 262144] onto cpu.weight [1, 10000].
fn shares_to_weight(shares: u64) -> u64 {
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

fn cpu(out: &mut Vec<Write>, c: &LinuxCpu, v2: bool) -> Result<(), CgroupError> {
    if c.idle().is_some_and(|v| v != 0) {
        return Err(unsupported("linux.resources.cpu.idle"));
    }
    if c.burst().is_some_and(|v| v != 0) {
        return Err(unsupported("linux.resources.cpu.burst"));
    }
    let shares = c.shares().filter(|&v| v != 0);
    let quota = c.quota().filter(|&v| v != 0);
    let period = c.period().filter(|&v| v != 0);
    let rt_runtime = c.realtime_runtime().filter(|&v| v != 0);
    let rt_period = c.realtime_period().filter(|&v| v != 0);
    if v2 {
        if rt_runtime.is_some() {
            return Err(not_on_v2("linux.resources.cpu.realtimeRuntime"));
        }
        if rt_period.is_some() {
            return Err(not_on_v2("linux.resources.cpu.realtimePeriod"));
        }
        if let Some(s) = shares {
            out.push(w(
                "cpu",
                "cpu.weight",
                shares_to_weight(s).to_string(),
                "linux.resources.cpu.shares",
            ));
        }
        if quota.is_some() || period.is_some() {
            // "max" alone keeps the period the kernel has.
            let mut v = quota
                .filter(|&q| q > 0)
                .map_or_else(|| "max".to_string(), |q| q.to_string());
            if let Some(p) = period {
                v = format!("{v} {p}");
            }
            out.push(w("cpu", "cpu.max", v, "linux.resources.cpu.quota"));
        }
    } else {
        if let Some(s) = shares {
            out.push(w(
                "cpu",
                "cpu.shares",
                s.to_string(),
                "linux.resources.cpu.shares",
            ));
        }
        // Period first: the kernel checks quota against the current period.
        if let Some(p) = period {
            out.push(w(
                "cpu",
                "cpu.cfs_period_us",
                p.to_string(),
                "linux.resources.cpu.period",
            ));
        }
        if let Some(q) = quota {
            out.push(w(
                "cpu",
                "cpu.cfs_quota_us",
                q.to_string(),
                "linux.resources.cpu.quota",
            ));
        }
        if let Some(p) = rt_period {
            out.push(w(
                "cpu",
                "cpu.rt_period_us",
                p.to_string(),
                "linux.resources.cpu.realtimePeriod",
            ));
        }
        if let Some(r) = rt_runtime {
            out.push(w(
                "cpu",
                "cpu.rt_runtime_us",
                r.to_string(),
                "linux.resources.cpu.realtimeRuntime",
            ));
        }
    }
    if let Some(v) = c.cpus().as_deref().filter(|v| !v.is_empty()) {
        out.push(w(
            "cpuset",
            "cpuset.cpus",
            v.to_owned(),
            "linux.resources.cpu.cpus",
        ));
    }
    if let Some(v) = c.mems().as_deref().filter(|v| !v.is_empty()) {
        out.push(w(
            "cpuset",
            "cpuset.mems",
            v.to_owned(),
            "linux.resources.cpu.mems",
        ));
    }
    Ok(())
}

pub(super) fn build(
    cg: &Cgroup,
    resources: Option<&LinuxResources>,
    devs: Option<&[LinuxDevice]>,
) -> Result<Plan, CgroupError> {
    let v2 = cg.layout == Layout::V2;
    let mut writes = Vec::new();
    if let Some(r) = resources {
        check_unsupported(r)?;
        if let Some(m) = r.memory() {
            memory(&mut writes, m, v2)?;
        }
        if let Some(c) = r.cpu() {
            cpu(&mut writes, c, v2)?;
        }
        // 0 is "unset" (oci-spec has no None here), negative is "no limit".
        if let Some(p) = r.pids().as_ref().filter(|p| p.limit() != 0) {
            writes.push(w(
                "pids",
                "pids.max",
                v2_limit(p.limit()),
                "linux.resources.pids.limit",
            ));
        }
    }
    let rules = devices::rules(resources.and_then(|r| r.devices().as_deref()), devs)?;
    // Allow rules on top of the allow-all start state change nothing.
    let restricts = rules.iter().any(|r| !r.allow);
    let mut device_filter = None;
    if restricts && v2 {
        device_filter = Some(bpf::program(&rules));
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
        let path = root.join("cgroup.controllers");
        let available =
            fsutil::read_file(&path).map_err(|source| CgroupError::Read { path, source })?;
        let available: Vec<&str> = available.split_whitespace().collect();
        if let Some(x) = writes.iter().find(|x| !available.contains(&x.controller)) {
            return Err(no_controller(x));
        }
        for c in V2_CONTROLLERS.iter().filter(|c| available.contains(c)) {
            enable.push_str(if enable.is_empty() { "+" } else { " +" });
            enable.push_str(c);
        }
    } else if let Some(x) = writes.iter().find(|x| {
        !cg.dirs
            .iter()
            .any(|d| !d.is_unified() && d.has_controller(x.controller))
    }) {
        return Err(no_controller(x));
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
        controller: x.controller,
    }
}

fn mount_root(dir: &Dir) -> &Path {
    ancestor(dir, dir.levels)
}

fn ancestor(dir: &Dir, k: u16) -> &Path {
    dir.path
        .ancestors()
        .nth(usize::from(k))
        .unwrap_or(Path::new("/"))
}

fn write_err(x: &Write, path: &Path, source: io::Error) -> CgroupError {
    CgroupError::Write {
        field: x.field.clone().into_owned(),
        path: path.to_owned(),
        value: x.value.clone(),
        source,
    }
}

fn run_writes<'a>(
    writes: &[Write],
    dir_of: impl Fn(&Write) -> &'a Path,
) -> Result<(), CgroupError> {
    let mut i = 0;
    while i < writes.len() {
        let x = &writes[i];
        let path = dir_of(x).join(x.file);
        match fsutil::write_file(&path, x.value.as_bytes()) {
            Ok(()) => {}
            Err(e) if x.optional && e.kind() == io::ErrorKind::NotFound => {}
            Err(e) if x.swap_first_on_einval && e.raw_os_error() == Some(libc::EINVAL) => {
                if let Some(next) = writes.get(i + 1) {
                    let next_path = dir_of(next).join(next.file);
                    fsutil::write_file(&next_path, next.value.as_bytes())
                        .map_err(|e| write_err(next, &next_path, e))?;
                    fsutil::write_file(&path, x.value.as_bytes())
                        .map_err(|e| write_err(x, &path, e))?;
                    i += 1;
                } else {
                    return Err(write_err(x, &path, e));
                }
            }
            Err(e) => return Err(write_err(x, &path, e)),
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
    let sets = |f| plan.writes.iter().any(|x| x.file == f);
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let mut value = String::new();
        for k in made..=dir.levels {
            let path = ancestor(dir, k).join(file);
            value =
                fsutil::read_file(&path).map_err(|source| CgroupError::Read { path, source })?;
            if !value.trim().is_empty() {
                break;
            }
        }
        let lowest = u16::from(sets(file));
        for k in (lowest..made).rev() {
            let path = ancestor(dir, k).join(file);
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

pub(super) fn apply(cg: &Cgroup, plan: &Plan) -> Result<(), CgroupError> {
    if cg.layout == Layout::V2 {
        let dir = &cg.dirs[0];
        if !plan.enable.is_empty() {
            for k in (1..=dir.levels).rev() {
                enable_controllers(ancestor(dir, k), &plan.enable)?;
            }
        }
        run_writes(&plan.writes, |_| &dir.path)?;
        if let Some(insns) = &plan.device_filter {
            bpf::attach(&dir.path, insns)?;
        }
        return Ok(());
    }
    if let Some(dir) = cg.dirs.iter().find(|d| d.has_controller("cpuset")) {
        fill_cpuset(dir, plan)?;
    }
    run_writes(&plan.writes, |x| {
        let dir = cg
            .dirs
            .iter()
            .find(|d| !d.is_unified() && d.has_controller(x.controller));
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

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
