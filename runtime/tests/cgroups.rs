//! Real cgroup tests: run as root on the host (v1, hybrid or pure v2); they
//! make cgroups under /berth-test-<pid>-* and the caller's own cgroup, and
//! remove them again. As non-root each is a counted skip (see skip/mod.rs).

use std::ffi::CString;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use berth::cgroups::{Cgroup, CgroupError, Layout};
use oci_spec::runtime::{LinuxDevice, LinuxResources};

#[macro_use]
mod skip;

fn name(tag: &str) -> String {
    format!("berth-test-{}-{tag}", std::process::id())
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

/// Run `sh -c script` inside every hierarchy of `cg`; true on exit 0.
fn sh_in(cg: &Cgroup, script: &str) -> bool {
    let procs: Vec<CString> = cg
        .paths()
        .map(|p| {
            CString::new(p.join("cgroup.procs").into_os_string().into_encoded_bytes()).unwrap()
        })
        .collect();
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", script])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: only async-signal-safe syscalls between fork and exec; "0"
    // moves the writer itself.
    unsafe {
        cmd.pre_exec(move || {
            for p in &procs {
                let fd = libc::open(p.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(io::Error::last_os_error());
                }
                libc::close(fd);
            }
            Ok(())
        });
    }
    cmd.status().unwrap().success()
}

const LIMITS_V1: &str = r#"{
  "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728, "kernel": 50593792,
             "kernelTCP": 1048576, "swappiness": 10, "disableOOMKiller": true},
  "cpu": {"shares": 512, "quota": 50000, "period": 100000, "realtimeRuntime": 1000,
          "realtimePeriod": 10000, "cpus": "0", "mems": "0"},
  "pids": {"limit": 32},
  "devices": [{"allow": false, "access": "rwm"},
              {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
              {"allow": true, "type": "b", "major": 8, "minor": 20, "access": "rw"},
              {"allow": true, "type": "b", "major": 10, "minor": 200, "access": "r"}]
}"#;

const LIMITS_V2: &str = r#"{
  "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728},
  "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
  "pids": {"limit": 32},
  "devices": [{"allow": false, "access": "rwm"}]
}"#;

#[test]
fn limits_pids_and_remove() {
    require_root!();
    let path = PathBuf::from(format!("/{}", name("limits")));
    let cg = Cgroup::resolve(Some(&path), "unused").unwrap();
    let v2 = cg.layout() == Layout::V2;
    let mut limits: serde_json::Value =
        serde_json::from_str(if v2 { LIMITS_V2 } else { LIMITS_V1 }).unwrap();
    // What needs a kernel option the host may lack is set only where the
    // host has the file; elsewhere berth must refuse it by name.
    let optional = [
        ("memory", "swap", "memory.memsw.limit_in_bytes"),
        ("memory", "kernelTCP", "memory.kmem.tcp.limit_in_bytes"),
        ("cpu", "realtimeRuntime", "cpu.rt_runtime_us"),
        ("cpu", "realtimePeriod", "cpu.rt_period_us"),
    ];
    let mut lacking = Vec::new();
    for (ctrl, key, file) in optional.iter().filter(|_| !v2) {
        if !Path::new("/sys/fs/cgroup").join(ctrl).join(file).exists() {
            let v = limits[ctrl].as_object_mut().unwrap().remove(*key).unwrap();
            lacking.push((*ctrl, *key, v));
        }
    }
    for (ctrl, key, v) in &lacking {
        let one = Cgroup::resolve(Some(&path.join("lacking")), "unused").unwrap();
        let json = serde_json::json!({ *ctrl: { *key: v } }).to_string();
        let e = one.create(Some(&res(&json)), None).unwrap_err().to_string();
        assert!(e.contains(&format!("linux.resources.{ctrl}.{key}")), "{e}");
        assert!(all_gone(&one), "{json}");
    }
    let r: LinuxResources = serde_json::from_value(limits).unwrap();
    cg.create(Some(&r), None).unwrap();
    let has = |ctrl: &str, key: &str| !lacking.iter().any(|l| (l.0, l.1) == (ctrl, key));
    assert!(cg.paths().all(|p| p.is_dir()));
    assert!(cg
        .paths()
        .all(|p| p.ends_with(path.strip_prefix("/").unwrap())));

    let mem = cg.controller_path("memory").unwrap();
    let cpu = cg.controller_path("cpu").unwrap();
    let cpuset = cg.controller_path("cpuset").unwrap();
    let pids = cg.controller_path("pids").unwrap();
    assert_eq!(read(cpuset, "cpuset.cpus"), "0");
    assert_eq!(read(cpuset, "cpuset.mems"), "0");
    assert_eq!(read(pids, "pids.max"), "32");
    if v2 {
        assert_eq!(read(mem, "memory.max"), "67108864");
        assert_eq!(read(mem, "memory.low"), "33554432");
        assert_eq!(read(mem, "memory.swap.max"), "67108864");
        assert_eq!(read(cpu, "cpu.weight"), "20");
        assert_eq!(read(cpu, "cpu.max"), "50000 100000");
    } else {
        assert_eq!(read(mem, "memory.limit_in_bytes"), "67108864");
        assert_eq!(read(mem, "memory.soft_limit_in_bytes"), "33554432");
        if has("memory", "swap") {
            assert_eq!(read(mem, "memory.memsw.limit_in_bytes"), "134217728");
        }
        if has("memory", "kernelTCP") {
            assert_eq!(read(mem, "memory.kmem.tcp.limit_in_bytes"), "1048576");
        }
        assert_eq!(read(mem, "memory.swappiness"), "10");
        assert!(read(mem, "memory.oom_control").starts_with("oom_kill_disable 1"));
        assert_eq!(read(cpu, "cpu.shares"), "512");
        assert_eq!(read(cpu, "cpu.cfs_quota_us"), "50000");
        assert_eq!(read(cpu, "cpu.cfs_period_us"), "100000");
        if has("cpu", "realtimePeriod") {
            assert_eq!(read(cpu, "cpu.rt_period_us"), "10000");
            assert_eq!(read(cpu, "cpu.rt_runtime_us"), "1000");
        }
        // The upstream suite compares config entry i with devices.list line i-1.
        let list = read(cg.controller_path("devices").unwrap(), "devices.list");
        let lines: Vec<&str> = list.lines().collect();
        assert_eq!(
            lines[..3],
            ["c 10:229 rwm", "b 8:20 rw", "b 10:200 r"],
            "{list}"
        );
        assert!(
            lines.contains(&"c 136:* rwm") && lines.contains(&"c 1:3 rwm"),
            "{list}"
        );
    }

    let mut child = Command::new("sleep").arg("100").spawn().unwrap();
    let pid = child.id() as i32;
    cg.add_pid(pid).unwrap();
    assert_eq!(cg.pids().unwrap(), [pid]);
    for p in cg.paths() {
        assert_eq!(read(p, "cgroup.procs"), pid.to_string(), "{}", p.display());
    }
    child.kill().unwrap();
    // Not reaped yet: remove() rides out the exit on EBUSY.
    cg.remove().unwrap();
    child.wait().unwrap();
    assert!(all_gone(&cg));
    cg.remove().unwrap(); // twice is fine
}

#[test]
fn created_parents_go_preexisting_ones_stay() {
    require_root!();
    let top = name("nested");
    let path = PathBuf::from(format!("/{top}/a/c"));
    let cg = Cgroup::resolve(Some(&path), "unused").unwrap();
    // Pre-create "/<top>/a" in the memory hierarchy only (in a pure v2
    // host that is the single hierarchy).
    let mem_top = cg
        .controller_path("memory")
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_owned();
    std::fs::create_dir_all(mem_top.join("a")).unwrap();
    cg.create(Some(&res(r#"{"pids": {"limit": 10}}"#)), None)
        .unwrap();
    // Joining a nested cpuset cgroup on v1 works only with cpus/mems copied down.
    let mut child = Command::new("sleep").arg("100").spawn().unwrap();
    cg.add_pid(child.id() as i32).unwrap();
    assert_eq!(cg.pids().unwrap(), [child.id() as i32]);
    child.kill().unwrap();
    child.wait().unwrap();

    let json = serde_json::to_string(&cg).unwrap();
    drop(cg);
    // As `delete` would: from the saved state, in "another process".
    let saved: Cgroup = serde_json::from_str(&json).unwrap();
    saved.remove().unwrap();
    assert!(all_gone(&saved));
    for p in saved.paths() {
        let a = p.parent().unwrap();
        let top_dir = a.parent().unwrap();
        if top_dir == mem_top {
            assert!(a.is_dir(), "pre-existing {} was removed", a.display());
        } else {
            assert!(!top_dir.exists(), "{} was left behind", top_dir.display());
        }
    }
    std::fs::remove_dir(mem_top.join("a")).unwrap();
    std::fs::remove_dir(&mem_top).unwrap();
}

#[test]
fn relative_and_default_paths_are_below_own_cgroup() {
    require_root!();
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let own_in = |ctrl: &str| -> String {
        own.lines()
            .find_map(|l| {
                let mut f = l.splitn(3, ':');
                let (_, c, p) = (f.next()?, f.next()?, f.next()?);
                (c.split(',').any(|x| x == ctrl)).then(|| p.trim_end_matches('/').to_owned())
            })
            .unwrap_or_else(|| {
                // pure v2: relative paths go below the parent of our cgroup
                let p = own.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
                let parent = Path::new(p).parent().unwrap_or(Path::new("/"));
                parent.to_str().unwrap().trim_end_matches('/').to_owned()
            })
    };
    let rel = name("rel");
    let by_path = Cgroup::resolve(Some(Path::new(&rel)), "unused").unwrap();
    let by_id = Cgroup::resolve(None, &rel).unwrap();
    assert_eq!(
        serde_json::to_string(&by_path).unwrap(),
        serde_json::to_string(&by_id).unwrap()
    );
    let mem = by_path.controller_path("memory").unwrap();
    assert!(
        mem.to_str()
            .unwrap()
            .ends_with(&format!("{}/{rel}", own_in("memory"))),
        "{}",
        mem.display()
    );

    by_id
        .create(Some(&res(r#"{"memory": {"limit": 33554432}}"#)), None)
        .unwrap();
    let mut child = Command::new("sleep").arg("100").spawn().unwrap();
    by_id.add_pid(child.id() as i32).unwrap();
    assert_eq!(by_id.pids().unwrap(), [child.id() as i32]);
    child.kill().unwrap();
    child.wait().unwrap();
    by_id.remove().unwrap();
    assert!(all_gone(&by_id));
    assert!(
        mem.parent().unwrap().is_dir(),
        "our own cgroup must survive"
    );
}

#[test]
fn escapes_are_refused() {
    require_root!();
    for p in ["/../x", "/a/../../x", "../../../../../../../../x"] {
        let e = Cgroup::resolve(Some(Path::new(p)), "x").unwrap_err();
        assert!(matches!(e, CgroupError::BadPath { .. }), "{p}: {e}");
        assert!(e.to_string().contains("escapes the cgroup root"), "{e}");
    }
}

#[test]
fn errors_leave_nothing_behind() {
    require_root!();
    let cg = Cgroup::resolve(Some(Path::new(&format!("/{}/c", name("unsupported")))), "x").unwrap();
    let e = cg
        .create(Some(&res(r#"{"network": {"classID": 1048577}}"#)), None)
        .unwrap_err();
    // No net_cls hierarchy here (hybrid), or none possible (pure v2).
    assert!(
        e.to_string().starts_with("linux.resources.network.classID"),
        "{e}"
    );
    assert!(all_gone(&cg) && cg.paths().all(|p| !p.parent().unwrap().exists()));

    // Fails in the kernel, after the directories exist.
    let cg = Cgroup::resolve(Some(Path::new(&format!("/{}/c", name("badcpu")))), "x").unwrap();
    let e = cg
        .create(Some(&res(r#"{"cpu": {"cpus": "4095"}}"#)), None)
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("linux.resources.cpu.cpus: writing \"4095\" to "),
        "{msg}"
    );
    assert!(!msg.contains('\n'));
    assert!(all_gone(&cg) && cg.paths().all(|p| !p.parent().unwrap().exists()));
}

#[test]
fn pre_existing_leaf_is_joined_not_removed() {
    require_root!();
    let cg = Cgroup::resolve(Some(Path::new(&format!("/{}", name("joined")))), "x").unwrap();
    for p in cg.paths() {
        std::fs::create_dir(p).unwrap();
    }
    cg.create(Some(&res(r#"{"pids": {"limit": 7}}"#)), None)
        .unwrap();
    assert_eq!(read(cg.controller_path("pids").unwrap(), "pids.max"), "7");
    cg.remove().unwrap();
    assert!(cg.paths().all(|p| p.is_dir()));
    for p in cg.paths() {
        std::fs::remove_dir(p).unwrap();
    }
}

#[test]
fn device_rules_are_enforced() {
    require_root!();
    let deny_all = res(r#"{"devices": [{"allow": false, "access": "rwm"},
                                       {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "r"}]}"#);
    let kmsg: Vec<LinuxDevice> =
        serde_json::from_str(r#"[{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11}]"#)
            .unwrap();
    for (tag, devices, kmsg_ok) in [("dev1", None, false), ("dev2", Some(&kmsg[..]), true)] {
        let cg = Cgroup::resolve(Some(Path::new(&format!("/{}", name(tag)))), "x").unwrap();
        cg.create(Some(&deny_all), devices).unwrap();
        let got = [
            sh_in(&cg, "true < /dev/null && true > /dev/null"),
            sh_in(&cg, "true > /dev/full"),
            sh_in(&cg, "true < /dev/kmsg"),
        ];
        cg.remove().unwrap();
        assert_eq!(got, [true, true, kmsg_ok], "{tag} on {:?}", cg.layout());
    }
}

/// struct clone_args (clone3), up to the cgroup field.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// The joiner's cgroup2 fd puts a clone3 child into the cgroup2 cgroup at
/// birth: the whole cgroup on pure v2, the unified one on a hybrid host.
#[test]
fn clone_into_cgroup_fd() {
    require_root!();
    let path = format!("/{}", name("clone3"));
    let cg = Cgroup::resolve(Some(Path::new(&path)), "x").unwrap();
    cg.create(Some(&res(r#"{"pids": {"limit": 4}}"#)), None)
        .unwrap();
    let joiner = cg.joiner(None);
    let Some(fd) = joiner.clone_into_fd() else {
        assert_eq!(cg.layout(), Layout::V1, "a cgroup2 mount must give an fd");
        cg.remove().unwrap();
        skip!("no cgroup2 hierarchy on this host");
    };
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: std::os::fd::AsRawFd::as_raw_fd(&fd) as u64,
        ..Default::default()
    };
    // SAFETY: no CLONE_VM, so the child has its own copy of memory; it only
    // calls pause() until killed.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if pid == 0 {
        loop {
            // SAFETY: pause has no preconditions.
            unsafe { libc::pause() };
        }
    }
    assert!(pid > 0, "clone3: {}", io::Error::last_os_error());
    let pid = pid as i32;
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let seen = cg.pids().unwrap();
    // SAFETY: pid is our child.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
    cg.remove().unwrap();
    let unified = own.lines().find(|l| l.starts_with("0::")).unwrap_or("");
    assert!(unified.ends_with(&path), "{own}");
    if cg.layout() == Layout::V2 {
        assert_eq!(seen, [pid]);
    }
    assert!(all_gone(&cg));
}
