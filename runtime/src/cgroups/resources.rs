//! The mapping of `linux.resources` memory, cpu and pids onto cgroup v1
//! and v2 files, with runc's conversions for v2 (the other resources are in
//! `resources_io`).

use std::borrow::Cow;

use oci_spec::runtime::{LinuxCpu, LinuxMemory};

use super::CgroupError;

#[derive(Debug)]
pub(super) struct Write {
    /// The controller whose file this is (picks the v1 hierarchy, and the
    /// controller to enable on v2).
    pub controller: Cow<'static, str>,
    pub file: Cow<'static, str>,
    pub value: String,
    pub field: Cow<'static, str>,
    /// Skipped when the kernel has no such file.
    pub optional: bool,
    /// v1 memory: on EINVAL, do the next write (the swap limit) first and
    /// then retry this one, since memsw must never be below the limit.
    pub swap_first_on_einval: bool,
    /// When `file` does not exist, write this file and value instead
    /// (BFQ's weight file versus CFQ's or io.weight).
    pub fallback: Option<(&'static str, String)>,
    /// Hybrid host: the file lives in the cgroup2 directory (hugetlb).
    pub unified: bool,
}

pub(super) fn w(
    controller: &'static str,
    file: &'static str,
    value: String,
    field: &'static str,
) -> Write {
    Write {
        controller: Cow::Borrowed(controller),
        file: Cow::Borrowed(file),
        value,
        field: Cow::Borrowed(field),
        optional: false,
        swap_first_on_einval: false,
        fallback: None,
        unified: false,
    }
}

pub(super) fn not_on_v2(field: &str) -> CgroupError {
    CgroupError::Invalid {
        field: field.to_owned(),
        reason: "cgroup v2 has no such limit".into(),
    }
}

/// -1 (and any negative value) is "no limit".
pub(super) fn v2_limit(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

#[allow(deprecated)] // LinuxMemory::kernel: still honoured on v1 kernels that have it
pub(super) fn memory(out: &mut Vec<Write>, m: &LinuxMemory, v2: bool) -> Result<(), CgroupError> {
    const F: &str = "linux.resources.memory";
    // checkBeforeUpdate matters only to `update` (see update.rs): a new
    // cgroup has no usage to check against.
    if m.use_hierarchy() == Some(false) {
        return Err(CgroupError::Invalid {
            field: format!("{F}.useHierarchy"),
            reason: "current kernels always account hierarchically".into(),
        });
    }
    if m.use_hierarchy() == Some(true) && !v2 {
        // Always on in current kernels, where the file may still exist.
        let mut h = w(
            "memory",
            "memory.use_hierarchy",
            "1".into(),
            "linux.resources.memory.useHierarchy",
        );
        h.optional = true;
        out.push(h);
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
        limit.swap_first_on_einval = m.swap().is_some() || v == -1;
        out.push(limit);
    }
    if let Some(v) = m.swap() {
        out.push(w(
            "memory",
            "memory.memsw.limit_in_bytes",
            v.to_string(),
            "linux.resources.memory.swap",
        ));
    } else if m.limit() == Some(-1) {
        // An unlimited memory limit lifts an old swap limit too (as runc
        // does): otherwise `update --memory -1` would stay capped by memsw.
        let mut s = w(
            "memory",
            "memory.memsw.limit_in_bytes",
            "-1".into(),
            "linux.resources.memory.swap",
        );
        s.optional = true;
        out.push(s);
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
pub(super) fn shares_to_weight(shares: u64) -> u64 {
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

pub(super) fn cpu(out: &mut Vec<Write>, c: &LinuxCpu, v2: bool) -> Result<(), CgroupError> {
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
    // Same file names on v1 and v2; a set value (0 too) is written, so that
    // `update` can also turn them off.
    if let Some(b) = c.burst() {
        let file = if v2 {
            "cpu.max.burst"
        } else {
            "cpu.cfs_burst_us"
        };
        out.push(w("cpu", file, b.to_string(), "linux.resources.cpu.burst"));
    }
    if let Some(i) = c.idle() {
        out.push(w(
            "cpu",
            "cpu.idle",
            i.to_string(),
            "linux.resources.cpu.idle",
        ));
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
