//! linux.resources: each scenario sets one controller's limits; the files
//! are checked from the host after create and by berth-check inside.
//! `relative` variants use a cgroupsPath relative to the runtime's cgroup.

use serde_json::{json, Value};

use super::{Case, Scenario};

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "linux_cgroups_memory",
        features: &["cgroup-memory"],
        run: |c| one(c, false, memory()),
    },
    Scenario {
        name: "linux_cgroups_relative_memory",
        features: &["cgroup-memory"],
        run: |c| one(c, true, memory()),
    },
    Scenario {
        name: "linux_cgroups_memory_v1",
        features: &["cgroup-v1", "cgroup-memory"],
        run: memory_v1,
    },
    Scenario {
        name: "linux_cgroups_memory_swap",
        features: &["cgroup-memory", "cgroup-memsw"],
        run: memory_swap,
    },
    Scenario {
        name: "linux_cgroups_cpus",
        features: &["cgroup-cpu", "cgroup-cpuset"],
        run: |c| one(c, false, cpus()),
    },
    Scenario {
        name: "linux_cgroups_relative_cpus",
        features: &["cgroup-cpu", "cgroup-cpuset"],
        run: |c| one(c, true, cpus()),
    },
    Scenario {
        name: "linux_cgroups_pids",
        features: &["cgroup-pids"],
        run: |c| one(c, false, pids()),
    },
    Scenario {
        name: "linux_cgroups_relative_pids",
        features: &["cgroup-pids"],
        run: |c| one(c, true, pids()),
    },
    Scenario {
        name: "linux_cgroups_devices",
        features: &["cgroup-devices"],
        run: |c| devices_denied(c, false),
    },
    Scenario {
        name: "linux_cgroups_relative_devices",
        features: &["cgroup-devices"],
        run: |c| devices_denied(c, true),
    },
    Scenario {
        name: "linux_cgroups_hugetlb",
        features: &["cgroup-hugetlb"],
        run: |c| one(c, false, hugetlb()),
    },
    Scenario {
        name: "linux_cgroups_relative_hugetlb",
        features: &["cgroup-hugetlb"],
        run: |c| one(c, true, hugetlb()),
    },
    Scenario {
        name: "linux_cgroups_blkio_throttle",
        features: &["cgroup-blkio"],
        run: blkio_throttle,
    },
    Scenario {
        name: "linux_cgroups_blkio_weight",
        features: &["cgroup-blkio", "cgroup-blkio-weight"],
        run: blkio_weight,
    },
    Scenario {
        name: "linux_cgroups_network",
        features: &["cgroup-net_cls", "cgroup-net_prio"],
        run: network,
    },
    Scenario {
        name: "linux_cgroups_unified",
        features: &["cgroup-v2", "cgroup-unified"],
        run: unified,
    },
];

fn memory() -> Value {
    json!({"memory": {"limit": 67108864, "reservation": 33554432, "disableOOMKiller": false}})
}

fn cpus() -> Value {
    json!({"cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"}})
}

fn pids() -> Value {
    json!({"pids": {"limit": 100}})
}

fn devices() -> Value {
    json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "r"},
        {"allow": true, "type": "b", "major": 7, "access": "m"},
        {"allow": true, "type": "c", "major": 136, "access": "rw"}
    ]})
}

/// The rules of devices(), with the host's /dev/kmsg (c 1:11, which they
/// deny) bound into the container: the checker's open of it must fail with
/// EPERM whatever the cgroup version (v2 rules are eBPF, with no file).
fn devices_denied(c: &mut Case, relative: bool) {
    if !std::path::Path::new("/dev/kmsg").exists() {
        c.t.skip("a denied device to open", "the host has no /dev/kmsg");
    } else if let Some(m) = c.cfg["mounts"].as_array_mut() {
        m.push(json!({"destination": "/dev/kmsg", "type": "bind", "source": "/dev/kmsg", "options": ["bind"]}));
    }
    one(c, relative, devices());
}

fn hugetlb() -> Value {
    json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]})
}

/// Sets `res` (merged over the base's device rules unless it brings its own)
/// and runs the checker, with a relative or absolute cgroupsPath.
fn one(c: &mut Case, relative: bool, res: Value) {
    let base = c.cfg["linux"]["resources"]
        .as_object_mut()
        .expect("base config has resources");
    for (k, v) in res.as_object().expect("resources are an object") {
        base.insert(k.clone(), v.clone());
    }
    // A systemd unit has no relative form: the case keeps its scope.
    if relative && !c.env.systemd {
        c.cfg["linux"]["cgroupsPath"] = json!(format!("{}/{}", c.env.prefix, c.name));
    }
    c.run_checker();
}

fn memory_v1(c: &mut Case) {
    one(
        c,
        false,
        json!({"memory": {"limit": 33554432, "swappiness": 40, "disableOOMKiller": true, "useHierarchy": true}}),
    );
}

fn memory_swap(c: &mut Case) {
    one(
        c,
        false,
        json!({"memory": {"limit": 33554432, "swap": 67108864}}),
    );
}

/// major:minor of the first whole disk, from /sys/block.
fn disk() -> Option<(u64, u64)> {
    let mut names: Vec<_> = std::fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    names.sort();
    names.iter().find_map(|n| {
        let n = n.to_string_lossy();
        if n.starts_with("loop") || n.starts_with("ram") || n.starts_with("zram") {
            return None;
        }
        let dev = std::fs::read_to_string(format!("/sys/block/{n}/dev")).ok()?;
        let (a, b) = dev.trim().split_once(':')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    })
}

fn blkio_throttle(c: &mut Case) {
    let Some((major, minor)) = disk() else {
        return c
            .t
            .skip("blockIO throttling", "no whole disk in /sys/block");
    };
    let d = |rate: u64| json!([{"major": major, "minor": minor, "rate": rate}]);
    one(
        c,
        false,
        json!({"blockIO": {
            "throttleReadBpsDevice": d(1048576), "throttleWriteBpsDevice": d(2097152),
            "throttleReadIOPSDevice": d(1000), "throttleWriteIOPSDevice": d(2000)
        }}),
    );
}

fn blkio_weight(c: &mut Case) {
    one(c, false, json!({"blockIO": {"weight": 500}}));
}

fn network(c: &mut Case) {
    one(
        c,
        false,
        json!({"network": {"classID": 1048577, "priorities": [{"name": "lo", "priority": 7}]}}),
    );
}

fn unified(c: &mut Case) {
    one(
        c,
        false,
        json!({"unified": {"pids.max": "77", "memory.high": "104857600"}}),
    );
}
