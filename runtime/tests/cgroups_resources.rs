//! blockIO, hugepageLimits, network, rdma, unified and cpu burst/idle on
//! the real host (v1, hybrid or pure v2), read back from the cgroup files.
//! What the host lacks (a disk, a scheduler with weights, a controller) is
//! either a counted skip or berth's named refusal checked against the host.

#[macro_use]
mod skip;

use std::path::{Path, PathBuf};

use berth::cgroups::{Cgroup, Layout};
use oci_spec::runtime::LinuxResources;

fn cg(tag: &str) -> (Cgroup, PathBuf) {
    let path = PathBuf::from(format!("/berth-test-{}-{tag}", std::process::id()));
    (Cgroup::resolve(Some(&path), "x").unwrap(), path)
}

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

fn read(dir: &Path, file: &str) -> String {
    let p = dir.join(file);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_owned()
}

fn all_gone(cg: &Cgroup) -> bool {
    cg.paths().all(|p| !p.exists())
}

/// "major:minor" of a disk (not a loop, zram or ram device), if any: the
/// test VM has none.
fn disk() -> Option<(u64, u64)> {
    let dev = std::fs::read_dir("/sys/block").ok()?.flatten().find(|e| {
        let n = e.file_name();
        let n = n.to_string_lossy();
        !n.starts_with("loop") && !n.starts_with("zram") && !n.starts_with("ram")
    })?;
    let text = std::fs::read_to_string(dev.path().join("dev")).ok()?;
    let (a, b) = text.trim().split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn hugepage_sizes() -> Vec<String> {
    std::fs::read_dir("/sys/kernel/mm/hugepages")
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let n = e.file_name().into_string().ok()?;
                    let kb: u64 = n
                        .strip_prefix("hugepages-")?
                        .strip_suffix("kB")?
                        .parse()
                        .ok()?;
                    Some(match kb {
                        k if k >= 1 << 20 => format!("{}GB", k >> 20),
                        k if k >= 1 << 10 => format!("{}MB", k >> 10),
                        k => format!("{k}KB"),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the host runs `controller`: on a v1 hierarchy (`Some(true)`), on
/// cgroup2 only (`Some(false)`), or not at all (`None`), from /proc/cgroups.
fn host_controller(controller: &str) -> Option<bool> {
    let text = std::fs::read_to_string("/proc/cgroups").ok()?;
    let on_v1 = text.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() == 4 && f[0] == controller && f[3] == "1").then(|| f[1] != "0")
    })?;
    if on_v1 {
        return Some(true);
    }
    // Hierarchy 0: on cgroup2, if a cgroup2 mount (pure or hybrid) offers it.
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .iter()
        .any(|m| {
            std::fs::read_to_string(format!("{m}/cgroup.controllers"))
                .is_ok_and(|c| c.split_whitespace().any(|x| x == controller))
        })
        .then_some(false)
}

#[test]
fn block_io_throttle_read_back() {
    require_root!();
    let Some((maj, min)) = disk() else {
        skip!("no whole disk in /sys/block to throttle");
    };
    let (cg, _) = cg("throttle");
    let v2 = cg.layout() == Layout::V2;
    let json = format!(
        r#"{{"blockIO": {{"throttleReadBpsDevice": [{{"major": {maj}, "minor": {min}, "rate": 1048576}}],
            "throttleWriteIOPSDevice": [{{"major": {maj}, "minor": {min}, "rate": 300}}]}}}}"#
    );
    cg.create(Some(&res(&json)), None).unwrap();
    let dir = cg
        .controller_path(if v2 { "io" } else { "blkio" })
        .unwrap()
        .to_owned();
    let (ok, seen) = if v2 {
        let max = read(&dir, "io.max");
        let want = format!("{maj}:{min} rbps=1048576 wbps=max riops=max wiops=300");
        (max.contains(&want), max)
    } else {
        let r = read(&dir, "blkio.throttle.read_bps_device");
        let w = read(&dir, "blkio.throttle.write_iops_device");
        let ok = r == format!("{maj}:{min} 1048576") && w == format!("{maj}:{min} 300");
        (ok, format!("{r} / {w}"))
    };
    cg.remove().unwrap();
    assert!(ok, "throttles read back: {seen}");
    assert!(all_gone(&cg));
}

/// The weight is read back where the disk scheduler offers one (BFQ, or
/// CFQ on old v1 kernels); elsewhere (mq-deadline, none) berth must refuse
/// it naming the field and the missing file, and leave nothing.
#[test]
fn block_io_weight_read_back_or_refused_by_name() {
    require_root!();
    let (cg, _) = cg("weight");
    let v2 = cg.layout() == Layout::V2;
    let r = cg.create(Some(&res(r#"{"blockIO": {"weight": 300}}"#)), None);
    let dir = cg
        .controller_path(if v2 { "io" } else { "blkio" })
        .unwrap()
        .to_owned();
    let (bfq, other) = if v2 {
        ("io.bfq.weight", "io.weight")
    } else {
        ("blkio.bfq.weight", "blkio.weight")
    };
    let got = std::fs::read_to_string(dir.join(bfq))
        .or_else(|_| std::fs::read_to_string(dir.join(other)));
    if r.is_ok() {
        cg.remove().unwrap();
    }
    assert!(all_gone(&cg));
    match r {
        Ok(()) => {
            let got = got.unwrap_or_else(|e| {
                panic!(
                    "blockIO.weight accepted, but {} has neither {bfq} nor {other}: {e}",
                    dir.display()
                )
            });
            // BFQ keeps the value; io.weight holds runc's conversion of 300.
            assert!(
                got.contains("300") || got.contains("2930"),
                "weight read back: {got}"
            );
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.starts_with("linux.resources.blockIO.weight: this kernel has no "),
                "{msg}"
            );
            // The refusal must be the host's doing: no weight file where
            // berth looked (its parent shows the same files as the child).
            let parent = dir.parent().unwrap();
            assert!(
                !parent.join(bfq).exists() && !parent.join(other).exists(),
                "refused although {} offers a weight: {msg}",
                parent.display()
            );
        }
    }
}

#[test]
fn hugetlb_limit_read_back() {
    require_root!();
    let Some(size) = hugepage_sizes().into_iter().next() else {
        skip!("the kernel offers no huge page sizes");
    };
    let (cg, path) = cg("hugetlb");
    let r = res(&format!(
        r#"{{"hugepageLimits": [{{"pageSize": "{size}", "limit": 0}}]}}"#
    ));
    // hugetlb can be on a v1 hierarchy, or on the cgroup2 mount of hybrid
    // and pure v2 hosts.
    let v1 = cg
        .controller_path("hugetlb")
        .filter(|_| cg.layout() != Layout::V2);
    match cg.create(Some(&r), None) {
        Ok(()) => {}
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains("needs the hugetlb cgroup controller"), "{msg}");
            assert!(all_gone(&cg));
            assert_eq!(host_controller("hugetlb"), None, "refused: {msg}");
            return;
        }
    }
    let file = match v1 {
        Some(dir) => dir.join(format!("hugetlb.{size}.limit_in_bytes")),
        None => cg
            .paths()
            .last()
            .unwrap()
            .join(format!("hugetlb.{size}.max")),
    };
    assert!(file.ends_with(
        path.strip_prefix("/")
            .unwrap()
            .join(file.file_name().unwrap())
    ));
    let got = std::fs::read_to_string(&file).unwrap();
    cg.remove().unwrap();
    assert_eq!(got.trim(), "0", "{}", file.display());
    assert!(all_gone(&cg));
}

#[test]
fn cpu_burst_and_idle_read_back() {
    require_root!();
    let (cg, _) = cg("burst");
    let r = res(r#"{"cpu": {"quota": 50000, "period": 100000, "burst": 20000, "idle": 1}}"#);
    cg.create(Some(&r), None).unwrap();
    let dir = cg.controller_path("cpu").unwrap().to_owned();
    let burst = if cg.layout() == Layout::V2 {
        read(&dir, "cpu.max.burst")
    } else {
        read(&dir, "cpu.cfs_burst_us")
    };
    let idle = read(&dir, "cpu.idle");
    cg.remove().unwrap();
    assert_eq!((burst.as_str(), idle.as_str()), ("20000", "1"));
    assert!(all_gone(&cg));
}

#[test]
fn unified_files_on_v2_and_refused_elsewhere() {
    require_root!();
    let (cg, _) = cg("unified");
    let r = res(r#"{"unified": {"pids.max": "9", "memory.high": "33554432"}}"#);
    if cg.layout() != Layout::V2 {
        let e = cg.create(Some(&r), None).unwrap_err().to_string();
        assert_eq!(
            e,
            "linux.resources.unified[\"memory.high\"]: needs a pure cgroup v2 host"
        );
        assert!(all_gone(&cg));
        return;
    }
    cg.create(Some(&r), None).unwrap();
    let dir = cg.paths().next().unwrap().to_owned();
    let got = (read(&dir, "pids.max"), read(&dir, "memory.high"));
    cg.remove().unwrap();
    assert_eq!(got, ("9".to_owned(), "33554432".to_owned()));
}

/// Creates `json` and returns the read-back of `file` in `controller`'s
/// directory, or berth's error, leaving nothing either way.
fn create_and_read(tag: &str, json: &str, controller: &str, file: &str) -> Result<String, String> {
    let (cg, _) = cg(tag);
    let r = cg.create(Some(&res(json)), None);
    let got = r.as_ref().map(|()| {
        let dir = cg.controller_path(controller).unwrap().to_owned();
        read(&dir, file)
    });
    if r.is_ok() {
        cg.remove().unwrap();
    }
    assert!(all_gone(&cg), "{json}");
    got.map_err(|e| {
        let msg = e.to_string();
        assert!(!msg.contains('\n'), "{msg}");
        msg
    })
}

/// rdma.max holds the limit where the controller and the device exist;
/// otherwise the refusal names the entry (the kernel rejects unknown
/// devices, so on a host without RDMA hardware this is always the refusal).
#[test]
fn rdma_limit_read_back_or_refused_by_name() {
    require_root!();
    let json = r#"{"rdma": {"mlx5_0": {"hcaHandles": 2}}}"#;
    match create_and_read("rdma", json, "rdma", "rdma.max") {
        Ok(got) => assert!(
            got.lines()
                .any(|l| l.starts_with("mlx5_0 ") && l.contains("hca_handle=2")),
            "rdma.max: {got}"
        ),
        Err(msg) => assert!(msg.starts_with("linux.resources.rdma[\"mlx5_0\"]"), "{msg}"),
    }
}

/// net_cls.classid and net_prio.ifpriomap read back on a host with those
/// v1 hierarchies; refused by name where the host has none (pure v2, or a
/// hybrid host that mounts neither).
#[test]
fn network_class_and_priorities_read_back_or_refused_by_name() {
    require_root!();
    let json = r#"{"network": {"classID": 1048577}}"#;
    match create_and_read("netcls", json, "net_cls", "net_cls.classid") {
        Ok(got) => assert_eq!(got, "1048577"),
        Err(msg) => {
            assert!(msg.starts_with("linux.resources.network.classID"), "{msg}");
            assert_ne!(host_controller("net_cls"), Some(true), "refused: {msg}");
        }
    }
    let json = r#"{"network": {"priorities": [{"name": "lo", "priority": 7}]}}"#;
    match create_and_read("netprio", json, "net_prio", "net_prio.ifpriomap") {
        Ok(got) => assert!(got.lines().any(|l| l == "lo 7"), "ifpriomap: {got}"),
        Err(msg) => {
            assert!(
                msg.starts_with("linux.resources.network.priorities"),
                "{msg}"
            );
            assert_ne!(host_controller("net_prio"), Some(true), "refused: {msg}");
        }
    }
}

/// CFQ's leaf weight: read back where blkio offers it, else refused by name.
#[test]
fn block_io_leaf_weight_read_back_or_refused_by_name() {
    require_root!();
    let json = r#"{"blockIO": {"leafWeight": 300}}"#;
    let (cg, _) = cg("probe");
    if cg.layout() == Layout::V2 {
        let msg = create_and_read("leaf", json, "io", "io.weight").unwrap_err();
        assert!(
            msg.starts_with("linux.resources.blockIO.leafWeight"),
            "{msg}"
        );
        return;
    }
    match create_and_read("leaf", json, "blkio", "blkio.leaf_weight") {
        Ok(got) => assert_eq!(got, "300"),
        Err(msg) => {
            assert!(
                msg.starts_with("linux.resources.blockIO.leafWeight: this kernel has no "),
                "{msg}"
            );
            assert!(!Path::new("/sys/fs/cgroup/blkio/blkio.leaf_weight").exists());
        }
    }
}
