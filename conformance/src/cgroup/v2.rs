//! cgroup v2 file names, with the conversions runtimes apply to v1-style values.

use serde_json::Value;

use super::{fc, FileCheck, Want};
use crate::json::{arr, i64_at, str_at, u64_at};

fn exact<T: ToString>(v: T) -> Want {
    Want::Exact(v.to_string())
}

fn max_or(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// cpu.shares (2..262144) to cpu.weight (1..10000). The spec fixes no
/// formula: runc and older crun map linearly, newer crun on a log curve
/// that keeps the default 1024 at 100. Either is accepted.
pub(crate) fn shares_to_weights(shares: u64) -> Vec<String> {
    if shares == 0 {
        return vec!["100".into()];
    }
    let linear = 1 + (shares.clamp(2, 262144) - 2) * 9999 / 262142;
    let l = (shares.clamp(2, 262144) as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    let curve = (10f64.powf(exponent)).ceil().clamp(1.0, 10000.0) as u64;
    vec![linear.to_string(), curve.to_string()]
}

pub(super) fn checks(ctrl: &str, r: &Value, out: &mut Vec<FileCheck>) {
    let mut add = |desc: &str, c: &'static str, file: &str, w: Want| out.push(fc(desc, c, file, w));
    match ctrl {
        "memory" => {
            let limit = i64_at(r, "memory.limit");
            if let Some(v) = limit {
                add("memory.limit", "memory", "memory.max", exact(max_or(v)));
            }
            if let Some(v) = i64_at(r, "memory.reservation") {
                add(
                    "memory.reservation",
                    "memory",
                    "memory.low",
                    exact(max_or(v)),
                );
            }
            // v1's memsw counts memory+swap; v2's swap.max counts swap alone.
            match (i64_at(r, "memory.swap"), limit) {
                (Some(s), _) if s < 0 => {
                    add("memory.swap", "memory", "memory.swap.max", exact("max"))
                }
                (Some(s), Some(l)) if l > 0 => add(
                    "memory.swap",
                    "memory",
                    "memory.swap.max",
                    exact((s - l).max(0)),
                ),
                _ => {}
            }
        }
        "cpu" => {
            if let Some(s) = u64_at(r, "cpu.shares") {
                add(
                    "cpu.shares",
                    "cpu",
                    "cpu.weight",
                    Want::AnyOf(shares_to_weights(s)),
                );
            }
            let quota = i64_at(r, "cpu.quota");
            let period = i64_at(r, "cpu.period");
            if quota.is_some() || period.is_some() {
                let q = quota
                    .filter(|q| *q > 0)
                    .map_or("max".into(), |q| q.to_string());
                let want = exact(format!("{q} {}", period.unwrap_or(100_000)));
                add("cpu.quota/period", "cpu", "cpu.max", want);
            }
            if let Some(b) = u64_at(r, "cpu.burst") {
                add("cpu.burst", "cpu", "cpu.max.burst", exact(b));
            }
            if let Some(i) = i64_at(r, "cpu.idle") {
                add("cpu.idle", "cpu", "cpu.idle", exact(i));
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
        "hugetlb" => {
            for h in arr(r, "hugepageLimits") {
                let (Some(size), Some(limit)) = (str_at(h, "pageSize"), u64_at(h, "limit")) else {
                    continue;
                };
                add(
                    &format!("hugepageLimits {size}"),
                    "hugetlb",
                    &format!("hugetlb.{size}.max"),
                    exact(limit),
                );
            }
        }
        // v2 device rules are an eBPF program with no file to read: the
        // checker opens the devices the rules deny (check/devices.rs).
        "blkio" => {
            // io.bfq.weight keeps the value; io.weight (no BFQ) holds the
            // runc/crun conversion from [10, 1000] to [1, 10000].
            if let Some(w) = u64_at(r, "blockIO.weight") {
                let want = Want::Weight {
                    bfq: w.to_string(),
                    fallback: "io.weight",
                    want: vec![(1 + w.saturating_sub(10) * 9999 / 990).to_string()],
                };
                add("blockIO.weight", "io", "io.bfq.weight", want);
            }
            let keys = [
                ("throttleReadBpsDevice", "rbps"),
                ("throttleWriteBpsDevice", "wbps"),
                ("throttleReadIOPSDevice", "riops"),
                ("throttleWriteIOPSDevice", "wiops"),
            ];
            for (k, key) in keys {
                for d in arr(r, &format!("blockIO.{k}")) {
                    let dev = format!(
                        "{}:{}",
                        i64_at(d, "major").unwrap_or(-1),
                        i64_at(d, "minor").unwrap_or(-1)
                    );
                    if let Some(rate) = u64_at(d, "rate") {
                        let want = Want::LineHas(vec![dev.clone(), format!("{key}={rate}")]);
                        add(&format!("blockIO.{k} {dev}"), "io", "io.max", want);
                    }
                }
            }
        }
        // v2 has no net_cls/net_prio.
        _ => {}
    }
}
