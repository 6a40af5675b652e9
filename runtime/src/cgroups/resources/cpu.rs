//! cpu and cpuset.

use oci_spec::runtime::LinuxCpu;

use super::{not_on_v2, w, Write};
use crate::cgroups::CgroupError;

/// runc's mapping of cpu.shares [2, 262144] onto cpu.weight [1, 10000].
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

pub(crate) fn cpu(out: &mut Vec<Write>, c: &LinuxCpu, v2: bool) -> Result<(), CgroupError> {
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
