//! Newer OCI items: idmapped mounts, linux.memoryPolicy and the `features`
//! subcommand.

use std::os::unix::fs::MetadataExt;

use serde_json::{json, Value};

use super::lifecycle::sh;
use super::{Case, Scenario};

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "idmap_mount",
        features: &["idmap", "userns"],
        run: idmap_mount,
    },
    Scenario {
        name: "memory_policy",
        features: &["mempolicy"],
        run: memory_policy,
    },
    Scenario {
        name: "features",
        features: &["features"],
        run: features,
    },
];

/// Runs the config to completion; the container's stdout.
fn run_to_end(c: &mut Case, desc: &str) -> Option<String> {
    let id = c.new_id();
    if !c.create_ok(desc, &id, &[]) {
        return None;
    }
    c.ok("start", &c.call(&["start", &id]));
    c.wait_status("process exits", &id, "stopped");
    let out = c.output(&id);
    c.ok("delete", &c.call(&["delete", &id]));
    Some(out)
}

fn idmap_mount(c: &mut Case) {
    let src = c.dir.join("idsrc");
    let made = std::fs::create_dir_all(&src)
        .and_then(|_| std::fs::write(src.join("f"), "x"))
        .and_then(|_| std::os::unix::fs::chown(src.join("f"), Some(1000), Some(2000)))
        // The user namespace's root cannot create the mount point in a host-owned rootfs.
        .and_then(|_| std::fs::create_dir_all(c.rootfs().join("data")));
    if let Err(e) = made {
        return c.t.error("prepare the idmap source", e);
    }
    let l = &mut c.cfg["linux"];
    if let Some(ns) = l["namespaces"].as_array_mut() {
        ns.push(json!({"type": "user"}));
    }
    l["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    l["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    // On-disk ids are the mapping's containerID side and show as its hostID
    // side (the kernel's map_id_down), here host 100010/100020, which the
    // container's user namespace shows as 10/20.
    let mount = json!({
        "destination": "/data", "type": "bind", "source": src, "options": ["rbind", "idmap"],
        "uidMappings": [{"containerID": 1000, "hostID": 100010, "size": 1}],
        "gidMappings": [{"containerID": 2000, "hostID": 100020, "size": 1}]
    });
    let plain =
        json!({"destination": "/plain", "type": "bind", "source": src, "options": ["rbind"]});
    let _ = std::fs::create_dir_all(c.rootfs().join("plain"));
    if let Some(m) = c.cfg["mounts"].as_array_mut() {
        m.push(mount);
        m.push(plain);
    }
    sh(c, "stat -c '%u %g' /data/f /plain/f");
    let Some(out) = run_to_end(c, "create with an idmapped mount") else {
        return;
    };
    let mut l = out.lines();
    c.t.eq(
        "the idmapped mount shows the mapped owner",
        Some("10 20"),
        l.next(),
    );
    c.t.eq(
        "a plain bind shows the overflow id",
        Some("65534 65534"),
        l.next(),
    );
    let m = std::fs::metadata(src.join("f"));
    c.t.ok(
        m.as_ref().is_ok_and(|m| (m.uid(), m.gid()) == (1000, 2000)),
        "the host file keeps its owner",
        format!("{m:?}"),
    );
    // Bad input: a mapping of size 0, which the kernel refuses.
    if let Some(m) = c.cfg["mounts"].as_array_mut() {
        m.pop();
        if let Some(last) = m.last_mut() {
            last["uidMappings"][0]["size"] = json!(0);
        }
    }
    let id = c.new_id();
    let out = c.create(&id, &[]);
    c.fails("an idmap mount with a size-0 mapping fails", &out);
}

fn memory_policy(c: &mut Case) {
    if !std::path::Path::new("/proc/self/numa_maps").exists() {
        return c
            .t
            .skip("memory policy", "kernel without NUMA (no numa_maps)");
    }
    c.cfg["ociVersion"] = json!("1.3.0");
    for (policy, want) in [
        (json!({"mode": "MPOL_BIND", "nodes": "0"}), "bind:0"),
        (json!({"mode": "MPOL_PREFERRED", "nodes": "0"}), "prefer:0"),
    ] {
        c.cfg["linux"]["memoryPolicy"] = policy.clone();
        // numa_maps' second field is each mapping's policy.
        sh(c, "cut -d' ' -f2 /proc/self/numa_maps | sort -u");
        let Some(out) = run_to_end(c, &format!("create with {policy}")) else {
            continue;
        };
        c.t.ok(
            !out.is_empty() && out.lines().all(|l| l == want),
            format!("{} applies to every mapping", policy["mode"]),
            format!("policies {out:?}"),
        );
    }
    c.cfg["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "1000"});
    let id = c.new_id();
    let out = c.create(&id, &[]);
    c.fails("a policy on a missing node fails", &out);
    c.cfg["linux"]["memoryPolicy"] = json!({"mode": "MPOL_NO_SUCH_MODE", "nodes": "0"});
    let id = c.new_id();
    let out = c.create(&id, &[]);
    c.fails("an unknown policy mode fails", &out);
}

/// "1.2.3" as a comparable triple; pre-release suffixes ignored.
fn version(v: &str) -> Option<(u64, u64, u64)> {
    let mut p = v.split(['.', '-', '+']).map(|x| x.parse::<u64>().ok());
    Some((p.next()??, p.next()??, p.next()??))
}

fn features(c: &mut Case) {
    let out = c.call(&["features"]);
    if !c.ok("features succeeds", &out) {
        return;
    }
    let f: Value = match serde_json::from_str(&out.stdout) {
        Ok(v) => v,
        Err(e) => return c.t.error("features prints JSON", e),
    };
    let min = f["ociVersionMin"].as_str().and_then(version);
    let max = f["ociVersionMax"].as_str().and_then(version);
    c.t.ok(
        max.is_some_and(|m| m >= (1, 0, 0)),
        "ociVersionMax >= 1.0.0",
        format!("ociVersionMax {}", f["ociVersionMax"]),
    );
    c.t.ok(
        min.is_some_and(|lo| max.is_some_and(|hi| lo <= hi)),
        "ociVersionMin <= ociVersionMax",
        format!("{} .. {}", f["ociVersionMin"], f["ociVersionMax"]),
    );
    let ns = conformance::json::strs(f.pointer("/linux/namespaces"));
    c.t.ok(
        ["pid", "mount", "network"]
            .iter()
            .all(|n| ns.iter().any(|x| x == n)),
        "linux.namespaces lists pid, mount and network",
        format!("{ns:?}"),
    );
    let mounts = conformance::json::strs(f.get("mountOptions"));
    c.t.ok(
        mounts.iter().any(|o| o == "bind") || mounts.iter().any(|o| o == "rbind"),
        "mountOptions lists bind",
        format!("{} options", mounts.len()),
    );
}
