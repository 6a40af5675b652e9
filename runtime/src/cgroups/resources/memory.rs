//! memory: v1's limit, memsw, soft limit, kmem, swappiness and OOM control;
//! v2's memory.max, memory.low and memory.swap.max.

use oci_spec::runtime::LinuxMemory;

use super::{not_on_v2, v2_limit, w, Write};
use crate::cgroups::CgroupError;

const F: &str = "linux.resources.memory";

pub(crate) fn memory(out: &mut Vec<Write>, m: &LinuxMemory, v2: bool) -> Result<(), CgroupError> {
    // checkBeforeUpdate matters only to `update` (Cgroup::update checks
    // it): a new cgroup has no usage to check against.
    if m.use_hierarchy() == Some(false) {
        return Err(CgroupError::Invalid {
            field: format!("{F}.useHierarchy"),
            reason: "current kernels always account hierarchically".into(),
        });
    }
    if v2 {
        return v2_files(out, m);
    }
    if m.use_hierarchy() == Some(true) {
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
    v1_limits(out, m);
    v1_other(out, m)
}

#[allow(deprecated)] // LinuxMemory::kernel: refused here, honoured on v1
fn v2_files(out: &mut Vec<Write>, m: &LinuxMemory) -> Result<(), CgroupError> {
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

/// The limit and memsw, whose order the writer may swap (see
/// `swap_first_on_einval`).
fn v1_limits(out: &mut Vec<Write>, m: &LinuxMemory) {
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
}

#[allow(deprecated)] // LinuxMemory::kernel: still honoured on v1 kernels that have it
fn v1_other(out: &mut Vec<Write>, m: &LinuxMemory) -> Result<(), CgroupError> {
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
