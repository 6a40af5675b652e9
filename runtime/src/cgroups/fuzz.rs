//! The cgroup fuzz target's entry (fuzz/fuzz_targets/cgroup_plan.rs):
//! `linux.cgroupsPath` and `linux.resources` through the path rules, the
//! plan builder and the systemd property mapping, on synthetic v1, hybrid
//! and v2 hosts, with the invariants `apply` and `remove` rely on checked.
//! Nothing is created or written; v2 hosts read `cgroup.controllers` from a
//! directory made once under the temporary directory.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use oci_spec::runtime::{LinuxDevice, LinuxResources};

use super::bpf::{self, Insn};
use super::bpf_sim;
use super::plan::{self, Plan};
use super::{devices, layout, systemd, Cgroup, CgroupError, Driver, Layout};

/// v1 hierarchies: (controllers as /proc/self/cgroup names them, mount point).
const V1: [(&str, &str); 10] = [
    ("cpu,cpuacct", "/sys/fs/cgroup/cpu,cpuacct"),
    ("cpuset", "/sys/fs/cgroup/cpuset"),
    ("memory", "/sys/fs/cgroup/memory"),
    ("devices", "/sys/fs/cgroup/devices"),
    ("pids", "/sys/fs/cgroup/pids"),
    ("blkio", "/sys/fs/cgroup/blkio"),
    ("net_cls,net_prio", "/sys/fs/cgroup/net_cls,net_prio"),
    ("freezer", "/sys/fs/cgroup/freezer"),
    ("rdma", "/sys/fs/cgroup/rdma"),
    ("hugetlb", "/sys/fs/cgroup/hugetlb"),
];

/// A cgroup2 mount point holding `cgroup.controllers` with `controllers`.
fn v2_root(name: &str, controllers: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("berth-fuzz-cg-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("fuzz host dir");
    std::fs::write(dir.join("cgroup.controllers"), controllers).expect("fuzz host file");
    dir
}

/// (/proc/self/cgroup, /proc/self/mountinfo, cgroup2 mount point) of host `n`:
/// 0 pure v1, 1 hybrid, 2 hybrid without a v1 hugetlb hierarchy (hugetlb on
/// the cgroup2 mount), 3 pure v2.
fn host(n: u8) -> &'static (String, String) {
    static HOSTS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    let hosts = HOSTS.get_or_init(|| {
        let v1 = |skip_hugetlb: bool| {
            let mut own = String::new();
            let mut mi = String::new();
            for (i, (c, m)) in V1.iter().enumerate() {
                if skip_hugetlb && *c == "hugetlb" {
                    continue;
                }
                own.push_str(&format!("{}:{c}:/user.slice\n", i + 1));
                mi.push_str(&format!(
                    "{} 20 0:{} / {m} rw - cgroup cgroup rw,{c}\n",
                    30 + i,
                    30 + i
                ));
            }
            (own, mi)
        };
        let unified =
            |root: &Path| format!("60 20 0:60 / {} rw - cgroup2 cgroup2 rw\n", root.display());
        let mut out = vec![v1(false)];
        let (mut own, mut mi) = v1(false);
        own.push_str("0::/user.slice\n");
        mi.push_str(&unified(&v2_root("hybrid", "")));
        out.push((own, mi));
        let (mut own, mut mi) = v1(true);
        own.push_str("0::/user.slice\n");
        mi.push_str(&unified(&v2_root("hybrid-hugetlb", "hugetlb")));
        out.push((own, mi));
        let root = v2_root("v2", "cpuset cpu io memory hugetlb pids rdma misc");
        out.push(("0::/init.scope\n".into(), unified(&root)));
        out
    });
    &hosts[usize::from(n) % hosts.len()]
}

/// One fuzz input. Panics when an invariant is broken.
pub fn fuzz_plan(
    host_n: u8,
    driver: Driver,
    cgroups_path: Option<&str>,
    id: &str,
    annotations: &HashMap<String, String>,
    resources: Option<&LinuxResources>,
    devs: Option<&[LinuxDevice]>,
) {
    let (own, mi) = host(host_n);
    let cg = match driver {
        Driver::Cgroupfs => layout::resolve(own, mi, cgroups_path.map(Path::new), id),
        Driver::Systemd => systemd::resolve(own, mi, cgroups_path, annotations, id, None),
        Driver::SystemdUser => systemd::resolve(own, mi, cgroups_path, annotations, id, Some(1000)),
    };
    let Ok(cg) = cg else { return };
    check_dirs(&cg, mi);
    round_trip(&cg);

    let built = plan::build(&cg, resources, devs);
    if let Ok(p) = &built {
        check_plan(&cg, p);
    }
    if let Some(r) = resources {
        if let Ok(p) = plan::build_update(&cg, r) {
            check_plan(&cg, &p);
            assert!(p.device_filter().is_none(), "update changes no devices");
        }
    }
    if driver == Driver::Systemd {
        let props = systemd::fuzz_properties(&cg, resources, devs);
        // The systemd driver applies the same plan, and may refuse more:
        // what it cannot say as a property (a cpu list in the kernel's
        // stride syntax, or one the kernel would refuse at the write), but
        // then with a reason naming the field.
        match (&props, &built) {
            (Ok(_), Err(e)) => panic!("systemd takes what the plan refuses: {e}"),
            (Err(CgroupError::Invalid { field, .. }), Ok(_)) => {
                assert!(field.starts_with("linux.resources."), "{props:?}")
            }
            (Err(e), Ok(_)) => panic!("systemd refuses the plan with {e:?}"),
            _ => {}
        }
        if let Ok((p, _)) = props {
            check_plan(&cg, &p);
            for x in p.writes.iter().filter(|x| x.file == "cpu.max") {
                assert!(
                    valid_cpu_max(&x.value),
                    "cpu.max rewritten to {:?}",
                    x.value
                );
            }
        }
    }
}

/// Every directory lies below its hierarchy's mount point, exactly `levels`
/// components down, with no `.` or `..`: `remove` and `mount_root` count on it.
fn check_dirs(cg: &Cgroup, mountinfo: &str) {
    assert!(!cg.dirs.is_empty());
    for d in &cg.dirs {
        let root = super::fsutil::ancestor(d, d.levels);
        assert!(
            mountinfo
                .lines()
                .any(|l| l.split(' ').nth(4) == root.to_str()),
            "{} levels up from {} is {}, not a mount point",
            d.levels,
            d.path.display(),
            root.display()
        );
        assert!(d.levels > 0, "{} is a hierarchy root", d.path.display());
        assert!(
            d.path
                .components()
                .all(|c| matches!(c, Component::RootDir | Component::Normal(_))),
            "{}",
            d.path.display()
        );
    }
}

/// The cgroup is stored in the state record and read back by every later command.
fn round_trip(cg: &Cgroup) {
    let text = serde_json::to_string(cg).expect("serialize a cgroup");
    let back: Cgroup = serde_json::from_str(&text).expect("read back a cgroup");
    assert_eq!(back.layout, cg.layout);
    assert!(back.paths().eq(cg.paths()));
    assert_eq!(back.driver(), cg.driver());
    assert_eq!(back.unit(), cg.unit());
}

fn check_plan(cg: &Cgroup, p: &Plan) {
    for x in &p.writes {
        // The file is joined to the cgroup directory: one plain name.
        let mut parts = Path::new(&*x.file).components();
        assert!(
            matches!(parts.next(), Some(Component::Normal(_))) && parts.next().is_none(),
            "{} writes to {:?}",
            x.field,
            x.file
        );
        assert!(!x.file.contains('/'), "{:?}", x.file);
        if let Some((f, _)) = &x.fallback {
            assert!(!f.contains('/') && *f != "..", "{f:?}");
        }
        match cg.layout {
            // apply finds each write's directory by its controller (and
            // expects to): the builder must have refused what has none.
            Layout::V1 | Layout::Hybrid => assert!(
                if x.unified {
                    cg.dirs.iter().any(|d| d.is_unified())
                } else {
                    cg.dirs
                        .iter()
                        .any(|d| !d.is_unified() && d.has_controller(&x.controller))
                },
                "{} ({}) has no hierarchy",
                x.field,
                x.controller
            ),
            Layout::V2 => assert!(!x.unified),
        }
        if x.controller == "devices" {
            check_v1_device_line(&x.value);
        }
    }
    for c in p.enable().split(' ').filter(|c| !c.is_empty()) {
        assert!(c.len() > 1 && c.starts_with('+'), "enable {:?}", p.enable());
    }
    if let Some(insns) = p.device_filter() {
        assert_eq!(cg.layout, Layout::V2);
        check_bpf(insns);
    }
}

/// "a" or "<c|b> <major|*>:<minor|*> <rwm>".
fn check_v1_device_line(line: &str) {
    if line == "a" {
        return;
    }
    let f: Vec<&str> = line.split(' ').collect();
    let num = |s: &str| s == "*" || s.parse::<u32>().is_ok();
    let ok = f.len() == 3
        && (f[0] == "c" || f[0] == "b")
        && f[1].split_once(':').is_some_and(|(a, b)| num(a) && num(b))
        && !f[2].is_empty()
        && f[2].chars().all(|c| "rwm".contains(c));
    assert!(ok, "devices line {line:?}");
}

/// The verifier's first checks: every jump lands inside the program, on an
/// instruction, and the last instruction returns.
fn check_bpf(insns: &[Insn]) {
    assert!(!insns.is_empty());
    assert_eq!(insns.last().map(|i| i.code), Some(bpf::EXIT));
    for (i, x) in insns.iter().enumerate() {
        if matches!(x.code, bpf::JA | bpf::JNE_K | bpf::JSET_K) {
            let to = i as i64 + 1 + i64::from(x.off);
            assert!(
                to > i as i64 && (to as usize) < insns.len(),
                "jump at {i} to {to} of {}",
                insns.len()
            );
        }
    }
}

/// "max|N [N]", as the kernel reads cpu.max.
fn valid_cpu_max(v: &str) -> bool {
    let mut f = v.split(' ');
    let quota = f
        .next()
        .is_some_and(|q| q == "max" || q.parse::<u64>().is_ok());
    let period = f.next().is_none_or(|p| p.parse::<u64>().is_ok());
    quota && period && f.next().is_none()
}

/// The device rules alone: their v1 lines, and the v2 program run by an
/// interpreter against the rules' meaning for every device type and
/// access and for the device numbers the rules name (and their neighbours).
pub fn fuzz_device_rules(
    configured: Option<&[oci_spec::runtime::LinuxDeviceCgroup]>,
    devs: Option<&[LinuxDevice]>,
) {
    let Ok(rules) = devices::rules(configured, devs) else {
        return;
    };
    for r in &rules {
        for line in devices::v1_lines(r) {
            check_v1_device_line(&line);
        }
    }
    let Ok(insns) = bpf::program(&rules) else {
        return;
    };
    check_bpf(&insns);
    let mut numbers: Vec<u32> = vec![0, 1];
    for r in &rules {
        for n in [r.major, r.minor].into_iter().flatten() {
            numbers.extend([n, n.wrapping_add(1)]);
        }
    }
    // What a device can have (12-bit majors, 20-bit minors); the filter
    // never matches a number above i32::MAX, which is right for no device has it.
    numbers.retain(|n| *n < 1 << 20);
    numbers.sort_unstable();
    numbers.dedup();
    numbers.truncate(12);
    for typ in [1, 2] {
        for access in 1..8 {
            for &major in &numbers {
                for &minor in &numbers {
                    assert_eq!(
                        bpf_sim::run(&insns, typ, access, major, minor),
                        bpf_sim::model(&rules, typ, access, major, minor),
                        "type {typ} access {access} {major}:{minor}"
                    );
                }
            }
        }
    }
}
