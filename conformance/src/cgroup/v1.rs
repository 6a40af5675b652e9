//! cgroup v1 file names and the values the kernel reads back.

use serde_json::Value;

use super::{fc, FileCheck, Want};
use crate::json::{arr, i64_at, str_at, u64_at};

/// v1 reads an unlimited (-1) memory or kmem value back as the page-rounded maximum.
const V1_UNLIMITED: &str = "9223372036854771712";

fn mem(v: i64) -> Want {
    Want::Exact(if v < 0 {
        V1_UNLIMITED.into()
    } else {
        v.to_string()
    })
}

fn exact<T: ToString>(v: T) -> Want {
    Want::Exact(v.to_string())
}

/// v1 lists a rule as `type major:minor access`, `*` for a wildcard number.
fn dev_rule(d: &Value) -> Option<String> {
    let num = |k: &str| match d.get(k).and_then(Value::as_i64) {
        Some(n) if n >= 0 => n.to_string(),
        _ => "*".into(),
    };
    let ty = d.get("type").and_then(Value::as_str).unwrap_or("a");
    let acc = d.get("access").and_then(Value::as_str).unwrap_or("rwm");
    let access: String = ['r', 'w', 'm']
        .iter()
        .filter(|c| acc.contains(**c))
        .collect();
    (!access.is_empty()).then(|| format!("{ty} {}:{} {access}", num("major"), num("minor")))
}

fn devices(r: &Value, out: &mut Vec<FileCheck>) {
    let rules = arr(r, "devices");
    let deny_all = |d: &Value| {
        d.get("allow") == Some(&Value::Bool(false)) && dev_rule(d).as_deref() == Some("a *:* rwm")
    };
    // Only a list that starts from "deny everything" has a checkable result:
    // each later allow rule shows up as a line, and the wildcard is gone.
    let Some(start) = rules.iter().rposition(deny_all) else {
        return;
    };
    let mut allowed_all = false;
    for d in &rules[start + 1..] {
        let Some(rule) = dev_rule(d) else { continue };
        if d.get("allow") == Some(&Value::Bool(true)) {
            allowed_all |= rule == "a *:* rwm";
            out.push(fc(
                format!("devices allow {rule}"),
                "devices",
                "devices.list",
                Want::DeviceAllowed(rule),
            ));
        }
    }
    if !allowed_all {
        let w = Want::NoLine("a *:* rwm".into());
        out.push(fc(
            "devices deny-all took effect",
            "devices",
            "devices.list",
            w,
        ));
    }
}

pub(super) fn checks(ctrl: &str, r: &Value, out: &mut Vec<FileCheck>) {
    let mut add = |desc: &str, c: &'static str, file: &str, w: Want| out.push(fc(desc, c, file, w));
    match ctrl {
        "memory" => {
            let m = [
                ("limit", "memory.limit_in_bytes"),
                ("reservation", "memory.soft_limit_in_bytes"),
                ("swap", "memory.memsw.limit_in_bytes"),
                ("kernel", "memory.kmem.limit_in_bytes"),
                ("kernelTCP", "memory.kmem.tcp.limit_in_bytes"),
            ];
            for (k, file) in m {
                if let Some(v) = i64_at(r, &format!("memory.{k}")) {
                    add(&format!("memory.{k}"), "memory", file, mem(v));
                }
            }
            if let Some(v) = u64_at(r, "memory.swappiness") {
                add("memory.swappiness", "memory", "memory.swappiness", exact(v));
            }
            if let Some(b) = r
                .pointer("/memory/disableOOMKiller")
                .and_then(Value::as_bool)
            {
                let w = Want::Line(format!("oom_kill_disable {}", u8::from(b)));
                add("memory.disableOOMKiller", "memory", "memory.oom_control", w);
            }
            if let Some(b) = r.pointer("/memory/useHierarchy").and_then(Value::as_bool) {
                add(
                    "memory.useHierarchy",
                    "memory",
                    "memory.use_hierarchy",
                    exact(u8::from(b)),
                );
            }
        }
        "cpu" => {
            let m = [
                ("shares", "cpu.shares"),
                ("quota", "cpu.cfs_quota_us"),
                ("period", "cpu.cfs_period_us"),
                ("burst", "cpu.cfs_burst_us"),
                ("realtimeRuntime", "cpu.rt_runtime_us"),
                ("realtimePeriod", "cpu.rt_period_us"),
                ("idle", "cpu.idle"),
            ];
            for (k, file) in m {
                if let Some(v) = i64_at(r, &format!("cpu.{k}")) {
                    add(&format!("cpu.{k}"), "cpu", file, exact(v));
                }
            }
        }
        "cpuset" => {
            for k in ["cpus", "mems"] {
                if let Some(v) = str_at(r, &format!("cpu.{k}")) {
                    add(
                        &format!("cpu.{k}"),
                        "cpuset",
                        &format!("cpuset.{k}"),
                        exact(v),
                    );
                }
            }
        }
        "pids" => {
            if let Some(v) = i64_at(r, "pids.limit") {
                let w = if v <= 0 { exact("max") } else { exact(v) };
                add("pids.limit", "pids", "pids.max", w);
            }
        }
        "blkio" => blkio(r, out),
        "hugetlb" => {
            for h in arr(r, "hugepageLimits") {
                let (Some(size), Some(limit)) = (str_at(h, "pageSize"), u64_at(h, "limit")) else {
                    continue;
                };
                let file = format!("hugetlb.{size}.limit_in_bytes");
                add(
                    &format!("hugepageLimits {size}"),
                    "hugetlb",
                    &file,
                    exact(limit),
                );
            }
        }
        "net_cls" => {
            if let Some(v) = u64_at(r, "network.classID") {
                add("network.classID", "net_cls", "net_cls.classid", exact(v));
            }
        }
        "net_prio" => {
            for p in arr(r, "network.priorities") {
                let (Some(n), Some(v)) = (str_at(p, "name"), u64_at(p, "priority")) else {
                    continue;
                };
                let w = Want::Line(format!("{n} {v}"));
                add(
                    &format!("network.priorities {n}"),
                    "net_prio",
                    "net_prio.ifpriomap",
                    w,
                );
            }
        }
        "devices" => devices(r, out),
        _ => {}
    }
}

fn blkio(r: &Value, out: &mut Vec<FileCheck>) {
    // BFQ's file where that scheduler runs (kernels without CFQ), else CFQ's.
    if let Some(v) = u64_at(r, "blockIO.weight") {
        let want = Want::Weight {
            bfq: v.to_string(),
            fallback: "blkio.weight",
            want: vec![v.to_string()],
        };
        out.push(fc("blockIO.weight", "blkio", "blkio.bfq.weight", want));
    }
    if let Some(v) = u64_at(r, "blockIO.leafWeight") {
        let file = "blkio.leaf_weight";
        out.push(fc("blockIO.leafWeight", "blkio", file, exact(v)));
    }
    let dev = |d: &Value| {
        format!(
            "{}:{}",
            i64_at(d, "major").unwrap_or(-1),
            i64_at(d, "minor").unwrap_or(-1)
        )
    };
    for d in arr(r, "blockIO.weightDevice") {
        for (k, file) in [
            ("weight", "blkio.weight_device"),
            ("leafWeight", "blkio.leaf_weight_device"),
        ] {
            if let Some(w) = u64_at(d, k) {
                let want = Want::Line(format!("{} {w}", dev(d)));
                out.push(fc(
                    format!("blockIO.weightDevice {} {k}", dev(d)),
                    "blkio",
                    file,
                    want,
                ));
            }
        }
    }
    let throttles = [
        ("throttleReadBpsDevice", "blkio.throttle.read_bps_device"),
        ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device"),
        ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device"),
        (
            "throttleWriteIOPSDevice",
            "blkio.throttle.write_iops_device",
        ),
    ];
    for (k, file) in throttles {
        for d in arr(r, &format!("blockIO.{k}")) {
            if let Some(rate) = u64_at(d, "rate") {
                let want = Want::Line(format!("{} {rate}", dev(d)));
                out.push(fc(format!("blockIO.{k} {}", dev(d)), "blkio", file, want));
            }
        }
    }
}
