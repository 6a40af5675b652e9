//! Namespaces: all new, inherited when not listed, joined by path, a path of
//! the wrong type (MUST fail), user namespace id mappings, time namespace.

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{Case, Scenario};

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "linux_ns_nopath",
        features: &[],
        run: nopath,
    },
    Scenario {
        name: "linux_ns_itype",
        features: &[],
        run: itype,
    },
    Scenario {
        name: "linux_ns_path",
        features: &[],
        run: path,
    },
    Scenario {
        name: "linux_ns_path_type",
        features: &[],
        run: path_type,
    },
    Scenario {
        name: "linux_uid_mappings",
        features: &["userns"],
        run: uid_mappings,
    },
    Scenario {
        name: "linux_ns_time",
        features: &["timens", "time-namespace"],
        run: time_ns,
    },
];

fn nopath(c: &mut Case) {
    // The base config lists every namespace but user and time, none with a path.
    c.run_checker();
}

fn itype(c: &mut Case) {
    // Only the mount namespace: the others are inherited from the runtime.
    // (No mount namespace at all would let the runtime mount over the host.)
    c.cfg["linux"]["namespaces"] = json!([{"type": "mount"}]);
    c.cfg.as_object_mut().map(|o| o.remove("hostname"));
    c.run_checker();
}

fn ino(p: &str) -> Option<u64> {
    std::fs::metadata(p).ok().map(|m| m.ino())
}

fn path(c: &mut Case) {
    let Some(pid) = c.helper(&["unshare", "--net", "--ipc", "--uts", "sleep", "600"]) else {
        return;
    };
    // unshare(1) execs sleep after unsharing; wait until its namespaces are new.
    let t0 = Instant::now();
    while ino(&format!("/proc/{pid}/ns/net")) == ino("/proc/self/ns/net")
        && t0.elapsed() < Duration::from_secs(3)
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let differs = ino(&format!("/proc/{pid}/ns/net")) != ino("/proc/self/ns/net");
    if !c.t.ok(
        differs,
        "helper holds new namespaces",
        "unshare did not take effect",
    ) {
        return;
    }
    c.cfg["linux"]["namespaces"] = json!([
        {"type": "pid"}, {"type": "mount"}, {"type": "cgroup"},
        {"type": "network", "path": format!("/proc/{pid}/ns/net")},
        {"type": "ipc", "path": format!("/proc/{pid}/ns/ipc")},
        {"type": "uts", "path": format!("/proc/{pid}/ns/uts")}
    ]);
    c.cfg.as_object_mut().map(|o| o.remove("hostname"));
    c.run_checker();
}

fn path_type(c: &mut Case) {
    let me = std::process::id();
    let cases = [
        ("network", "ipc"),
        ("ipc", "uts"),
        ("uts", "net"),
        ("cgroup", "ipc"),
        ("pid", "net"),
    ];
    for (ty, wrong) in cases {
        let saved = c.cfg.clone();
        let list = c.cfg["linux"]["namespaces"]
            .as_array_mut()
            .expect("base config has namespaces");
        list.retain(|n| n["type"] != ty);
        list.push(json!({"type": ty, "path": format!("/proc/{me}/ns/{wrong}")}));
        c.cfg.as_object_mut().map(|o| o.remove("hostname"));
        let id = c.new_id();
        let out = c.create(&id, &[]);
        c.fails(
            &format!("{ty} namespace with a path to a {wrong} namespace: create fails"),
            &out,
        );
        if out.ok() {
            c.call(&["delete", "-f", &id]);
        }
        c.cfg = saved;
    }
}

fn uid_mappings(c: &mut Case) {
    let list = c.cfg["linux"]["namespaces"]
        .as_array_mut()
        .expect("base config has namespaces");
    list.push(json!({"type": "user"}));
    c.cfg["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c.cfg["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    c.run_checker();
}

fn time_ns(c: &mut Case) {
    let list = c.cfg["linux"]["namespaces"]
        .as_array_mut()
        .expect("base config has namespaces");
    list.push(json!({"type": "time"}));
    c.cfg["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 86400, "nanosecs": 0}, "boottime": {"secs": 3600, "nanosecs": 0}});
    c.run_checker();
}
