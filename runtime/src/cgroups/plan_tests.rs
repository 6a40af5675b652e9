use super::*;
use crate::cgroups::layout;
use crate::cgroups::resources::shares_to_weight;

const V1_MI: &str = "\
32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu
34 31 0:31 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw - cgroup cgroup rw,devices
39 31 0:36 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
";
const V1_CG: &str = "8:pids:/\n5:devices:/\n4:memory:/\n3:cpuset:/\n1:cpu:/\n0::/\n";

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

fn hybrid() -> Cgroup {
    layout::resolve(V1_CG, V1_MI, Some(Path::new("/t")), "x").unwrap()
}

/// A pure v2 cgroup whose mount point is a temporary directory holding
/// a cgroup.controllers file with `controllers`.
fn v2(controllers: &str) -> (Cgroup, std::path::PathBuf) {
    let root = std::env::temp_dir().join(format!(
        "berth-plan-{}-{}",
        std::process::id(),
        controllers.replace(' ', "_")
    ));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("cgroup.controllers"), controllers).unwrap();
    let mi = format!("28 20 0:25 / {} rw - cgroup2 cgroup2 rw\n", root.display());
    let cg = layout::resolve("0::/init.scope\n", &mi, Some(Path::new("a/b")), "x").unwrap();
    (cg, root)
}

fn writes(p: &Plan) -> Vec<String> {
    p.writes
        .iter()
        .map(|x| format!("{}/{}={}", x.controller, x.file, x.value))
        .collect()
}

const FULL: &str = r#"{
  "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728, "kernelTCP": 1048576,
             "swappiness": 10, "disableOOMKiller": true},
  "cpu": {"shares": 512, "quota": 50000, "period": 100000, "realtimeRuntime": 1000,
          "realtimePeriod": 10000, "cpus": "0", "mems": "0"},
  "pids": {"limit": 32}
}"#;

#[test]
fn v1_writes_in_order() {
    let p = build(&hybrid(), Some(&res(FULL)), None).unwrap();
    assert_eq!(
        writes(&p),
        [
            "memory/memory.limit_in_bytes=67108864",
            "memory/memory.memsw.limit_in_bytes=134217728",
            "memory/memory.soft_limit_in_bytes=33554432",
            "memory/memory.kmem.tcp.limit_in_bytes=1048576",
            "memory/memory.swappiness=10",
            "memory/memory.oom_control=1",
            "cpu/cpu.shares=512",
            "cpu/cpu.cfs_period_us=100000",
            "cpu/cpu.cfs_quota_us=50000",
            "cpu/cpu.rt_period_us=10000",
            "cpu/cpu.rt_runtime_us=1000",
            "cpuset/cpuset.cpus=0",
            "cpuset/cpuset.mems=0",
            "pids/pids.max=32",
        ]
    );
    assert!(p.writes[0].swap_first_on_einval);
    assert!(p.device_filter.is_none() && p.enable.is_empty());
}

#[test]
fn v1_devices_only_when_something_is_denied() {
    let p = build(&hybrid(), None, None).unwrap();
    assert!(p.writes.is_empty());
    let r = res(r#"{"devices": [{"allow": false, "access": "rwm"},
                               {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"}]}"#);
    let p = build(&hybrid(), Some(&r), None).unwrap();
    let w = writes(&p);
    assert_eq!(w[0], "devices/devices.deny=a");
    assert_eq!(w[1], "devices/devices.allow=c 10:229 rwm");
    assert_eq!(w[2], "devices/devices.allow=c *:* m");
    assert_eq!(p.writes[1].field, "linux.resources.devices[1]");
}

#[test]
fn v1_missing_controller_names_field_and_controller() {
    let cg = layout::resolve(
        "4:memory:/\n",
        "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
        Some(Path::new("/t")),
        "x",
    )
    .unwrap();
    let e = build(&cg, Some(&res(r#"{"pids": {"limit": 5}}"#)), None).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("linux.resources.pids.limit") && msg.contains("pids"),
        "{msg}"
    );
    let e = build(&cg, Some(&res(r#"{"devices": [{"allow": false}]}"#)), None).unwrap_err();
    assert!(e.to_string().contains("devices"), "{e}");
}

#[test]
fn v2_conversions() {
    let (cg, root) = v2("cpuset cpu io memory hugetlb pids rdma misc");
    let r = res(
        r#"{"memory": {"limit": 67108864, "reservation": 33554432, "swap": 100663296},
                    "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"},
                    "pids": {"limit": -1},
                    "devices": [{"allow": false, "access": "rwm"}]}"#,
    );
    let p = build(&cg, Some(&r), None).unwrap();
    assert_eq!(
        writes(&p),
        [
            "memory/memory.max=67108864",
            "memory/memory.low=33554432",
            "memory/memory.swap.max=33554432",
            "cpu/cpu.weight=20",
            "cpu/cpu.max=50000 100000",
            "cpuset/cpuset.cpus=0",
            "pids/pids.max=max",
        ]
    );
    assert!(p.device_filter.is_some());
    assert_eq!(p.enable, "+cpu +cpuset +io +memory +pids");
    // berth's own cgroup is /init.scope: "a/b" lands under its parent.
    assert_eq!(cg.dirs[0].path, root.join("a/b"));
    assert_eq!(shares_to_weight(1024), 39);
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(1), 1);
    assert_eq!(shares_to_weight(262_144), 10_000);
    assert_eq!(shares_to_weight(u64::MAX), 10_000);

    let cpu_max = |json: &str| writes(&build(&cg, Some(&res(json)), None).unwrap());
    assert_eq!(cpu_max(r#"{"cpu": {"quota": -1}}"#), ["cpu/cpu.max=max"]);
    assert_eq!(
        cpu_max(r#"{"cpu": {"period": 20000}}"#),
        ["cpu/cpu.max=max 20000"]
    );
    assert_eq!(
        cpu_max(r#"{"memory": {"limit": -1}}"#),
        ["memory/memory.max=max", "memory/memory.swap.max=max"]
    );
    assert_eq!(
        cpu_max(r#"{"memory": {"limit": 5, "swap": -1}}"#),
        ["memory/memory.max=5", "memory/memory.swap.max=max"]
    );
    for bad in [
        r#"{"memory": {"swap": 10}}"#,
        r#"{"memory": {"limit": 10, "swap": 5}}"#,
    ] {
        let e = build(&cg, Some(&res(bad)), None).unwrap_err();
        assert!(
            e.to_string().starts_with("linux.resources.memory.swap:"),
            "{e}"
        );
    }
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn v2_rejects_v1_only_fields_and_missing_controllers() {
    let (cg, root) = v2("memory pids");
    for (json, field) in [
        (
            r#"{"memory": {"swappiness": 5}}"#,
            "linux.resources.memory.swappiness",
        ),
        (
            r#"{"memory": {"kernel": 5}}"#,
            "linux.resources.memory.kernel",
        ),
        (
            r#"{"memory": {"kernelTCP": 5}}"#,
            "linux.resources.memory.kernelTCP",
        ),
        (
            r#"{"memory": {"disableOOMKiller": true}}"#,
            "linux.resources.memory.disableOOMKiller",
        ),
        (
            r#"{"cpu": {"realtimeRuntime": 5}}"#,
            "linux.resources.cpu.realtimeRuntime",
        ),
        (r#"{"cpu": {"shares": 5}}"#, "linux.resources.cpu.shares"),
    ] {
        let e = build(&cg, Some(&res(json)), None).unwrap_err().to_string();
        assert!(e.starts_with(field), "{json}: {e}");
    }
    assert!(build(
        &cg,
        Some(&res(r#"{"memory": {"disableOOMKiller": false}}"#)),
        None
    )
    .is_ok());
    assert_eq!(build(&cg, None, None).unwrap().enable, "+memory +pids");
    std::fs::remove_dir_all(root).unwrap();
}

const V1_ALL_MI: &str = "\
37 31 0:34 / /sys/fs/cgroup/blkio rw - cgroup cgroup rw,blkio
38 31 0:35 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup rw,net_cls,net_prio
39 31 0:36 / /sys/fs/cgroup/hugetlb rw - cgroup cgroup rw,hugetlb
";

#[test]
fn v1_block_io_hugetlb_network() {
    let cg = layout::resolve(
        "7:blkio:/\n6:net_cls,net_prio:/\n5:hugetlb:/\n",
        V1_ALL_MI,
        Some(Path::new("/t")),
        "x",
    )
    .unwrap();
    let json = r#"{
      "blockIO": {"weight": 300, "leafWeight": 200,
                  "weightDevice": [{"major": 8, "minor": 0, "weight": 50, "leafWeight": 60}],
                  "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                  "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 0}]},
      "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
      "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]},
      "cpu": {"burst": 1000, "idle": 1}
    }"#;
    let e = build(&cg, Some(&res(json)), None).unwrap_err().to_string();
    assert_eq!(
        e,
        "linux.resources.cpu.burst needs the cpu cgroup controller, which this host does not provide"
    );
    let mut r = res(json);
    r.set_cpu(None);
    let p = build(&cg, Some(&r), None).unwrap();
    assert_eq!(
        writes(&p),
        [
            "blkio/blkio.bfq.weight=300",
            "blkio/blkio.leaf_weight=200",
            "blkio/blkio.bfq.weight_device=8:0 50",
            "blkio/blkio.leaf_weight_device=8:0 60",
            "blkio/blkio.throttle.read_bps_device=8:0 1048576",
            "blkio/blkio.throttle.write_iops_device=8:0 0",
            "hugetlb/hugetlb.2MB.limit_in_bytes=4194304",
            "hugetlb/hugetlb.2MB.rsvd.limit_in_bytes=4194304",
            "net_cls/net_cls.classid=1048577",
            "net_prio/net_prio.ifpriomap=eth0 5",
        ]
    );
    assert_eq!(
        p.writes[0].fallback,
        Some(("blkio.weight", "300".to_owned()))
    );
    assert!(p.writes[7].optional && !p.writes[6].optional);
    // hybrid() has no blkio hierarchy.
    let e = build(
        &hybrid(),
        Some(&res(r#"{"blockIO": {"weight": 10}}"#)),
        None,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "linux.resources.blockIO.weight needs the blkio cgroup controller, which this host does not provide"
    );
    for (json, msg) in [
        (
            r#"{"unified": {"memory.high": "1"}}"#,
            "linux.resources.unified[\"memory.high\"]: needs a pure cgroup v2 host",
        ),
        (
            r#"{"hugepageLimits": [{"pageSize": "../2MB", "limit": 1}]}"#,
            "linux.resources.hugepageLimits[0].pageSize: \"../2MB\" is not a page size such as \"2MB\"",
        ),
        (
            r#"{"memory": {"swappiness": 101}}"#,
            "linux.resources.memory.swappiness: 101 is above 100",
        ),
    ] {
        let e = build(&cg, Some(&res(json)), None).unwrap_err();
        assert_eq!(e.to_string(), msg);
    }
    // Present but asking for nothing is fine.
    let ok = r#"{"blockIO": {}, "hugepageLimits": [], "unified": {}, "network": {},
                 "memory": {"checkBeforeUpdate": true}}"#;
    assert!(build(&cg, Some(&res(ok)), None).unwrap().writes.is_empty());
}

#[test]
fn v2_block_io_hugetlb_rdma_unified() {
    let (cg, root) = v2("cpu io memory pids hugetlb rdma misc");
    let json = r#"{
      "blockIO": {"weight": 1000,
                  "weightDevice": [{"major": 8, "minor": 0, "weight": 50}],
                  "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 0}],
                  "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 300}]},
      "hugepageLimits": [{"pageSize": "1GB", "limit": -1}],
      "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}, "b": {}},
      "cpu": {"burst": 1000, "idle": 1},
      "unified": {"misc.max": "x 1", "cgroup.max.depth": "3"}
    }"#;
    let p = build(&cg, Some(&res(json)), None).unwrap();
    assert_eq!(
        writes(&p),
        [
            "cpu/cpu.max.burst=1000",
            "cpu/cpu.idle=1",
            "io/io.bfq.weight=1000",
            "io/io.bfq.weight=8:0 50",
            "io/io.max=8:0 rbps=max",
            "io/io.max=8:16 wiops=300",
            "hugetlb/hugetlb.1GB.max=max",
            "hugetlb/hugetlb.1GB.rsvd.max=max",
            "rdma/rdma.max=mlx5_1 hca_handle=3 hca_object=10000",
            "/cgroup.max.depth=3",
            "misc/misc.max=x 1",
        ]
    );
    assert_eq!(
        p.writes[2].fallback,
        Some(("io.weight", "10000".to_owned()))
    );
    assert_eq!(p.enable, "+cpu +hugetlb +io +memory +misc +pids +rdma");
    for (json, msg) in [
        (
            r#"{"unified": {"../x.max": "1"}}"#,
            "linux.resources.unified[\"../x.max\"]: not a cgroup file name",
        ),
        (
            r#"{"unified": {"a/memory.max": "1"}}"#,
            "linux.resources.unified[\"a/memory.max\"]: not a cgroup file name",
        ),
        (
            r#"{"unified": {"net_cls.classid": "1"}}"#,
            "linux.resources.unified[\"net_cls.classid\"] needs the net_cls cgroup controller, which this host does not provide",
        ),
        (
            r#"{"blockIO": {"leafWeight": 10}}"#,
            "linux.resources.blockIO.leafWeight: cgroup v2 has no such limit",
        ),
        (
            r#"{"network": {"classID": 1}}"#,
            "linux.resources.network.classID: cgroup v2 has no such limit",
        ),
    ] {
        let e = build(&cg, Some(&res(json)), None).unwrap_err();
        assert_eq!(e.to_string(), msg);
    }
    std::fs::remove_dir_all(root).unwrap();
}
