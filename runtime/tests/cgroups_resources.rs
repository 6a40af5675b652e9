//! blockIO, hugepageLimits, network, rdma, unified and cpu burst/idle on
//! the real host (v1, hybrid or pure v2), read back from the cgroup files.
//! As non-root they report "skipped" and pass.

use std::path::{Path, PathBuf};

use berth::cgroups::{Cgroup, Layout};
use oci_spec::runtime::LinuxResources;

macro_rules! require_root {
    () => {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

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

#[test]
fn block_io_throttle_and_weight_read_back() {
    require_root!();
    let (cg, _) = cg("blkio");
    let v2 = cg.layout() == Layout::V2;
    let disk = disk();
    let throttles = disk.map(|(maj, min)| {
        format!(
            r#", "throttleReadBpsDevice": [{{"major": {maj}, "minor": {min}, "rate": 1048576}}],
            "throttleWriteIOPSDevice": [{{"major": {maj}, "minor": {min}, "rate": 300}}]"#
        )
    });
    let json = format!(
        r#"{{"blockIO": {{"weight": 300{}}}}}"#,
        throttles.as_deref().unwrap_or("")
    );
    cg.create(Some(&res(&json)), None).unwrap();
    let dir = cg
        .controller_path(if v2 { "io" } else { "blkio" })
        .unwrap()
        .to_owned();
    let throttled = disk.map(|(maj, min)| {
        if v2 {
            let max = read(&dir, "io.max");
            let want = format!("{maj}:{min} rbps=1048576 wbps=max riops=max wiops=300");
            (max.contains(&want), max)
        } else {
            let r = read(&dir, "blkio.throttle.read_bps_device");
            let w = read(&dir, "blkio.throttle.write_iops_device");
            let ok = r == format!("{maj}:{min} 1048576") && w == format!("{maj}:{min} 300");
            (ok, format!("{r} / {w}"))
        }
    });
    let (bfq, other) = if v2 {
        ("io.bfq.weight", "io.weight")
    } else {
        ("blkio.bfq.weight", "blkio.weight")
    };
    let got = std::fs::read_to_string(dir.join(bfq))
        .or_else(|_| std::fs::read_to_string(dir.join(other)))
        .unwrap();
    cg.remove().unwrap();
    if let Some((ok, seen)) = throttled {
        assert!(ok, "throttles read back: {seen}");
    }
    // BFQ keeps the value; io.weight holds runc's conversion of 300.
    assert!(
        got.contains("300") || got.contains("2930"),
        "weight read back: {got}"
    );
    assert!(all_gone(&cg));
}

#[test]
fn hugetlb_limit_read_back() {
    require_root!();
    let Some(size) = hugepage_sizes().into_iter().next() else {
        eprintln!("skipped: no huge page sizes");
        return;
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

#[test]
fn missing_files_and_hierarchies_are_named_and_leave_nothing() {
    require_root!();
    let (cg, _) = cg("missing");
    let mut cases = vec![(
        r#"{"rdma": {"mlx5_0": {"hcaHandles": 2}}}"#,
        "linux.resources.rdma[\"mlx5_0\"]",
    )];
    if cg.layout() != Layout::V2 {
        cases.push((
            r#"{"network": {"classID": 1048577}}"#,
            "linux.resources.network.classID",
        ));
    }
    if cg.layout() != Layout::V2 && !Path::new("/sys/fs/cgroup/blkio/blkio.leaf_weight").exists() {
        cases.push((
            r#"{"blockIO": {"leafWeight": 300}}"#,
            "linux.resources.blockIO.leafWeight: this kernel has no /sys/fs/cgroup/blkio/",
        ));
    }
    for (json, prefix) in cases {
        match cg.create(Some(&res(json)), None) {
            Ok(()) => cg.remove().unwrap(), // the host has it
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.starts_with(prefix), "{json}: {msg}");
                assert!(!msg.contains('\n'));
            }
        }
        assert!(all_gone(&cg), "{json}");
    }
}
