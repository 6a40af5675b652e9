//! The less common OCI fields: `berth features`, LSM labels, and the
//! fields berth refuses by name where this host or berth lacks them.

mod common;
#[macro_use]
mod skip;

use common::{berth_bin, Bundle};
use serde_json::{json, Value};

fn features() -> Value {
    let out = std::process::Command::new(berth_bin())
        .arg("features")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Must be the spec's structure, not just any JSON.
    let s = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str::<oci_spec::runtime::Features>(&s).expect("features.md structure");
    serde_json::from_str(&s).unwrap()
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn features_versions_hooks_namespaces() {
    let f = features();
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert_eq!(f["ociVersionMax"], "1.3.0");
    assert_eq!(
        strs(&f["hooks"]),
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ]
    );
    let mut ns = strs(&f["linux"]["namespaces"]);
    ns.sort();
    assert_eq!(
        ns,
        ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"]
    );
    let l = &f["linux"];
    assert_eq!(
        l["cgroup"],
        json!({"v1": true, "v2": true, "systemd": true, "systemdUser": false, "rdma": false})
    );
    assert_eq!(l["intelRdt"]["enabled"], false);
    assert_eq!(l["netDevices"]["enabled"], true);
    assert_eq!(l["mountExtensions"]["idmap"]["enabled"], true);
    assert_eq!(strs(&l["memoryPolicy"]["modes"]).len(), 7);
    assert!(strs(&l["memoryPolicy"]["flags"]).contains(&"MPOL_F_STATIC_NODES".to_string()));
}

/// Every mount option listed is one berth parses (a bind mount with all of
/// the per-mount ones starts; tmpcopyup is for tmpfs, tests/engines.rs).
#[test]
fn features_mount_options_are_accepted() {
    let opts = strs(&features()["mountOptions"]);
    for present in [
        "tmpcopyup",
        "rbind",
        "rro",
        "nosymfollow",
        "rprivate",
        "strictatime",
        "idmap",
        "ridmap",
    ] {
        assert!(opts.iter().any(|o| o == present), "{present} missing");
    }
    let mut b = Bundle::new("feat-mnt");
    b.sh("grep ' /mnt ' /proc/self/mountinfo");
    let per_mount: Vec<&String> = opts
        .iter()
        .filter(|o| {
            ![
                "remount",
                "mand",
                "sync",
                "dirsync",
                "lazytime",
                "iversion",
                "silent",
                "idmap",
                "ridmap",
                "tmpcopyup",
            ]
            .contains(&o.as_str())
        })
        .collect();
    b.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/mnt", "type": "bind", "source": "/tmp", "options": per_mount}),
    );
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(" /mnt "), "{out}");
    b.assert_clean();
}

/// A profile using every listed action, operator and arch loads.
#[test]
fn features_seccomp_lists_are_accepted() {
    let l = &features()["linux"]["seccomp"];
    assert_eq!(l["enabled"], true);
    assert_eq!(strs(&l["knownFlags"]).len(), 4);
    let supported = strs(&l["supportedFlags"]);
    assert!(supported.iter().all(|f| strs(&l["knownFlags"]).contains(f)));
    let mut rules = Vec::new();
    // Rarely used syscalls, one per action, so the shell still runs.
    let names = [
        "acct",
        "swapon",
        "swapoff",
        "reboot",
        "kexec_load",
        "pivot_root",
        "syslog",
        "vhangup",
    ];
    let actions: Vec<String> = strs(&l["actions"])
        .into_iter()
        .filter(|a| a != "SCMP_ACT_ALLOW" && a != "SCMP_ACT_NOTIFY")
        .collect();
    assert!(actions.len() <= names.len());
    for (a, n) in actions.iter().zip(names) {
        rules.push(json!({"names": [n], "action": a}));
    }
    for (i, op) in strs(&l["operators"]).iter().enumerate() {
        rules.push(json!({"names": ["personality"], "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 0, "value": 0x1234 + i, "valueTwo": 0, "op": op}]}));
    }
    let archs: Vec<String> = strs(&l["archs"])
        .into_iter()
        .filter(|a| ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32"].contains(&a.as_str()))
        .collect();
    assert_eq!(archs.len(), 3, "x86 arches missing from {:?}", l["archs"]);
    let mut b = Bundle::new("feat-sec");
    b.args(&["true"]);
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": archs,
        "flags": supported.iter().filter(|f| !f.contains("WAIT_KILLABLE")).collect::<Vec<_>>(),
        "syscalls": rules,
    });
    let (code, _, err) = b.run();
    assert_eq!(code, 0, "{err}");
    b.assert_clean();
}

/// Every capability listed is one a config may name.
#[test]
fn features_capabilities_are_accepted() {
    let caps = strs(&features()["linux"]["capabilities"]);
    assert!(caps.len() >= 41, "{caps:?}");
    assert!(caps.contains(&"CAP_CHECKPOINT_RESTORE".to_string()));
    let mut b = Bundle::new("feat-caps");
    b.sh("grep CapBnd /proc/self/status");
    b.config["process"]["capabilities"] = json!({"bounding": caps});
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("CapBnd"), "{out}");
    b.assert_clean();
}

/// The driver itself is tested on a systemd host (conformance/vm/systemd);
/// here, bad input and a host without systemd fail in one line, leaving
/// nothing behind.
#[test]
fn systemd_cgroup_errors_are_clear_and_leave_nothing() {
    assert_eq!(features()["linux"]["cgroup"]["systemd"], true);
    let mut b = Bundle::new("feat-sd");
    b.config["linux"]["cgroupsPath"] = json!("/not/slice-prefix-name");
    b.write();
    let args = ["--systemd-cgroup", "run", "-b", b.dir.to_str().unwrap()];
    let err = b.fails(&[&args[..], &[b.id().as_str()]].concat());
    assert!(
        err.contains("linux.cgroupsPath") && err.contains("slice:prefix:name"),
        "{err}"
    );
    b.assert_clean();
    let no_systemd = !std::path::Path::new("/run/systemd/system").exists();
    if no_systemd {
        b.config["linux"]["cgroupsPath"] = json!("system.slice:berth-test:x");
        b.write();
        let err = b.fails(&[&args[..], &[b.id().as_str()]].concat());
        assert!(err.contains("system bus"), "{err}");
        b.assert_clean();
    }
}

fn lsm_enabled(which: &str) -> bool {
    match which {
        "apparmor" => std::fs::read("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|b| b.starts_with(b"Y")),
        _ => std::path::Path::new("/sys/fs/selinux/enforce").exists(),
    }
}

#[test]
fn features_report_lsm_support() {
    let l = &features()["linux"];
    assert_eq!(l["apparmor"]["enabled"], true);
    assert_eq!(l["selinux"]["enabled"], true);
}

/// Without AppArmor a profile cannot be honoured: refused by name, as runc
/// fails too, and nothing is left.
#[test]
fn apparmor_profile_without_apparmor_is_refused() {
    if lsm_enabled("apparmor") {
        skip!("AppArmor is enabled here");
    }
    let mut b = Bundle::new("aa-off");
    b.config["process"]["apparmorProfile"] = json!("berth-test-profile");
    let err = b.fails(&["run", "-b", b.dir.to_str().unwrap(), &b.id()]);
    assert!(
        err.contains("process.apparmorProfile") && err.contains("AppArmor is not enabled"),
        "{err}"
    );
    b.assert_clean();
    // An empty profile means "none", as in runc.
    b.config["process"]["apparmorProfile"] = json!("");
    let (code, _, err) = b.run();
    assert_eq!(code, 0, "{err}");
    b.assert_clean();
}

/// With AppArmor, a profile other than the default (unconfined) confines
/// the process: /proc/self/attr/current names it. The profile is loaded
/// for the test and removed after.
#[test]
fn apparmor_profile_is_applied() {
    if !lsm_enabled("apparmor") {
        skip!("AppArmor is not enabled here");
    }
    let mut b = Bundle::new("aa-on");
    let name = format!("berth-test-{}", std::process::id());
    let file = b.dir.join("profile");
    std::fs::write(
        &file,
        format!(
            "profile {name} flags=(attach_disconnected,mediate_deleted) {{\n  file,\n  \
             capability,\n  network,\n  mount,\n  umount,\n  pivot_root,\n  signal,\n  \
             ptrace,\n  unix,\n}}\n"
        ),
    )
    .unwrap();
    let parser = |flag: &str| {
        std::process::Command::new("apparmor_parser")
            .arg(flag)
            .arg(&file)
            .status()
    };
    match parser("-r") {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            skip!("apparmor_parser is not installed")
        }
        r => assert!(r.unwrap().success(), "apparmor_parser -r"),
    }
    b.config["process"]["apparmorProfile"] = json!(name);
    b.sh("cat /proc/self/attr/current");
    let (code, out, err) = b.run();
    let _ = parser("-R");
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim_end_matches(['\n', '\0']),
        format!("{name} (enforce)")
    );
    b.assert_clean();
}

/// runc's validator refuses a process label without SELinux; so does berth.
#[test]
fn selinux_label_without_selinux_is_refused() {
    if lsm_enabled("selinux") {
        skip!("SELinux is enabled here");
    }
    let mut b = Bundle::new("se-off");
    b.config["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0:c1,c2");
    let err = b.fails(&["run", "-b", b.dir.to_str().unwrap(), &b.id()]);
    assert!(
        err.contains("process.selinuxLabel") && err.contains("SELinux is not enabled"),
        "{err}"
    );
    b.assert_clean();
}

/// mountLabel without SELinux is ignored (crun's behaviour, and what the
/// runtime-tools linux_mount_label test expects); with it, tmpfs gets it.
#[test]
fn mount_label_follows_selinux() {
    let label = "system_u:object_r:container_file_t:s0:c1,c2";
    let mut b = Bundle::new("mntlabel");
    b.config["linux"]["mountLabel"] = json!(label);
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=64k"]}));
    b.sh("grep ' /scratch ' /proc/self/mountinfo");
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.contains("context="), lsm_enabled("selinux"), "{out}");
    b.assert_clean();
}

/// `exec --apparmor` / `--process-label` take the same path as the config
/// fields: refused here, before anything is started in the container.
#[test]
fn exec_lsm_flags_follow_the_host() {
    let mut b = Bundle::new("exec-lsm");
    b.args(&["sleep", "100"]);
    let id = b.id();
    b.ok(&["run", "-d", "-b", b.dir.to_str().unwrap(), &id]);
    if !lsm_enabled("apparmor") {
        let err = b.fails(&["exec", "--apparmor", "p1", &id, "true"]);
        assert!(
            err.contains("process.apparmorProfile") && err.contains("\"p1\""),
            "{err}"
        );
    }
    if !lsm_enabled("selinux") {
        let err = b.fails(&[
            "exec",
            "--process-label",
            "system_u:system_r:x_t:s0",
            &id,
            "true",
        ]);
        assert!(err.contains("process.selinuxLabel"), "{err}");
    }
    // The container is untouched and still runs processes.
    assert_eq!(b.ok(&["exec", &id, "echo", "alive"]).trim(), "alive");
    b.ok(&["delete", "-f", &id]);
    b.assert_clean();
}

fn status_field(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim_start_matches(':').trim().to_string())
        .unwrap_or_else(|| panic!("{key} missing in {text}"))
}

/// The spec: execCPUAffinity is not for the init; `final` applies once the
/// exec'd process is in the cgroup, `initial` before (and, with no final,
/// the kernel keeps it: it remembers a requested affinity since 6.2).
#[test]
fn exec_cpu_affinity_initial_and_final() {
    let mut b = Bundle::new("affinity");
    b.args(&["sleep", "100"]);
    b.config["process"]["execCPUAffinity"] = json!({"final": "1"});
    let id = b.id();
    b.ok(&["run", "-d", "-b", b.dir.to_str().unwrap(), &id]);
    let st: Value = serde_json::from_str(&b.ok(&["state", &id])).unwrap();
    let init = std::fs::read_to_string(format!("/proc/{}/status", st["pid"])).unwrap();
    let all = status_field(
        &std::fs::read_to_string("/proc/self/status").unwrap(),
        "Cpus_allowed_list",
    );
    assert_eq!(
        status_field(&init, "Cpus_allowed_list"),
        all,
        "init must be untouched"
    );
    // Without -p the config's process (and its execCPUAffinity) is the base.
    let out = b.ok(&[
        "exec",
        &id,
        "grep",
        "Cpus_allowed_list",
        "/proc/self/status",
    ]);
    assert_eq!(status_field(&out, "Cpus_allowed_list"), "1");
    let mut p = b.config["process"].clone();
    p["args"] = json!(["grep", "Cpus_allowed_list", "/proc/self/status"]);
    p["execCPUAffinity"] = json!({"initial": "0"});
    let pf = b.dir.join("p.json");
    std::fs::write(&pf, p.to_string()).unwrap();
    let out = b.ok(&["exec", "-p", pf.to_str().unwrap(), &id]);
    assert_eq!(status_field(&out, "Cpus_allowed_list"), "0");
    b.ok(&["delete", "-f", &id]);
    b.assert_clean();
}

#[test]
fn exec_cpu_affinity_bad_list_is_refused() {
    let mut b = Bundle::new("affinity-bad");
    b.config["process"]["execCPUAffinity"] = json!({"initial": "0", "final": "3-1"});
    let err = b.fails(&["run", "-b", b.dir.to_str().unwrap(), &b.id()]);
    assert!(
        err.contains("process.execCPUAffinity.final") && err.contains("3-1"),
        "{err}"
    );
    b.assert_clean();
}

/// The policy is the process's: numa_maps shows it on mappings without
/// their own (mode, "=static" for MPOL_F_STATIC_NODES, then the nodes).
#[test]
fn memory_policy_is_set() {
    for (policy, want) in [
        (json!({"mode": "MPOL_BIND", "nodes": "0"}), "bind:0"),
        (
            json!({"mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}),
            "interleave=static:0",
        ),
        (json!({"mode": "MPOL_LOCAL"}), "local"),
    ] {
        let mut b = Bundle::new("mempol");
        b.config["linux"]["memoryPolicy"] = policy.clone();
        b.sh("cat /proc/self/numa_maps");
        let (code, out, err) = b.run();
        assert_eq!(code, 0, "{policy}: {err}");
        assert!(
            out.contains(&format!(" {want} ")),
            "{policy}: want {want} in {out}"
        );
        b.assert_clean();
    }
}

#[test]
fn memory_policy_errors_name_the_field() {
    for (policy, want) in [
        (
            json!({"mode": "MPOL_BIND"}),
            "linux.memoryPolicy.nodes is required",
        ),
        (
            json!({"mode": "MPOL_LOCAL", "nodes": "0"}),
            "linux.memoryPolicy.nodes must be empty",
        ),
        // No node 1000 on any test host: the kernel refuses it in the init.
        (
            json!({"mode": "MPOL_BIND", "nodes": "1000"}),
            "set_mempolicy",
        ),
    ] {
        let mut b = Bundle::new("mempol-bad");
        b.config["linux"]["memoryPolicy"] = policy.clone();
        let err = b.fails(&["run", "-b", b.dir.to_str().unwrap(), &b.id()]);
        assert!(
            err.contains(want) && err.contains("linux.memoryPolicy"),
            "{policy}: {err}"
        );
        b.assert_clean();
    }
}

fn ip(args: &[&str]) -> bool {
    std::process::Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

/// A veth end moves into the container's network namespace under its new
/// name, leaves the host, and dies with the namespace on delete.
#[test]
fn net_devices_move_into_the_container() {
    let tag = std::process::id() % 100000;
    let (host, peer) = (format!("bv{tag}a"), format!("bv{tag}b"));
    assert!(
        ip(&["link", "add", &host, "type", "veth", "peer", "name", &peer]),
        "veth"
    );
    let mut b = Bundle::new("netdev");
    b.config["linux"]["netDevices"] = json!({ &host: {"name": "ctr0"} });
    b.args(&["sleep", "100"]);
    let id = b.id();
    b.ok(&["run", "-d", "-b", b.dir.to_str().unwrap(), &id]);
    let inside = b.ok(&["exec", &id, "ls", "/sys/class/net"]);
    let on_host = std::path::Path::new("/sys/class/net").join(&host).exists();
    b.ok(&["delete", "-f", &id]);
    b.assert_clean();
    // The kernel tears a dead namespace down from a workqueue: give it time.
    let peer_path = std::path::Path::new("/sys/class/net").join(&peer);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while peer_path.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let peer_left = peer_path.exists();
    if peer_left {
        ip(&["link", "del", &peer]);
    }
    assert!(inside.split_whitespace().any(|n| n == "ctr0"), "{inside}");
    assert!(!on_host, "{host} still on the host");
    assert!(!peer_left, "veth pair outlived the container's namespace");
}

#[test]
fn net_devices_errors_name_the_field() {
    let mut b = Bundle::new("netdev-bad");
    b.config["linux"]["netDevices"] = json!({"no-such-dev0": {}});
    let err = b.fails(&["run", "-b", b.dir.to_str().unwrap(), &b.id()]);
    assert!(
        err.contains("linux.netDevices") && err.contains("does not exist"),
        "{err}"
    );
    b.assert_clean();
    b.config["linux"]["netDevices"] = json!({"lo": {"name": "a/b"}});
    let err = b.fails(&["run", "-b", b.dir.to_str().unwrap(), &b.id()]);
    assert!(err.contains("not a valid interface name"), "{err}");
    b.assert_clean();
    let ns: Vec<Value> = b.config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] != "network")
        .cloned()
        .collect();
    b.config["linux"]["namespaces"] = json!(ns);
    b.config["linux"]["netDevices"] = json!({"lo": {}});
    let err = b.fails(&["run", "-b", b.dir.to_str().unwrap(), &b.id()]);
    assert!(err.contains("needs a network namespace"), "{err}");
    b.assert_clean();
}

/// A host directory with one file owned by 1000:2000, for idmap tests.
fn owned_dir(b: &Bundle) -> std::path::PathBuf {
    let d = b.dir.join("idsrc");
    std::fs::create_dir_all(&d).unwrap();
    let f = d.join("f");
    std::fs::write(&f, "x").unwrap();
    std::os::unix::fs::chown(&f, Some(1000), Some(2000)).unwrap();
    d
}

fn idmap_mount(src: &std::path::Path, opts: &[&str], maps: Option<(Value, Value)>) -> Value {
    let mut m = json!({"destination": "/data", "type": "bind", "source": src, "options": opts});
    if let Some((u, g)) = maps {
        m["uidMappings"] = u;
        m["gidMappings"] = g;
    }
    m
}

/// Without a user namespace: the mount's own mappings decide what the
/// container sees (on-disk 1000 is shown as 5000, 2000 as 7000); the host
/// path keeps its owner.
#[test]
fn idmapped_bind_mount_with_its_own_mappings() {
    let mut b = Bundle::new("idmap");
    let src = owned_dir(&b);
    let maps = (
        json!([{"containerID": 1000, "hostID": 5000, "size": 10}]),
        json!([{"containerID": 2000, "hostID": 7000, "size": 10}]),
    );
    b.config["mounts"].as_array_mut().unwrap().push(idmap_mount(
        &src,
        &["rbind", "idmap"],
        Some(maps),
    ));
    b.sh("stat -c '%u %g' /data/f");
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "5000 7000");
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(src.join("f")).unwrap();
    assert_eq!((m.uid(), m.gid()), (1000, 2000));
    b.assert_clean();
}

/// With a user namespace (0 -> 100000): plain `idmap` takes the container's
/// mappings, so files the host owns as 1000 are 1000 inside too, where a
/// plain bind shows the overflow id.
#[test]
fn idmapped_bind_mount_in_a_user_namespace() {
    for (opts, want) in [
        (vec!["rbind", "idmap"], "1000 2000"),
        (vec!["rbind"], "65534 65534"),
    ] {
        let mut b = Bundle::new("idmap-userns");
        let src = owned_dir(&b);
        // Root of the user namespace cannot create it in a host-owned rootfs.
        std::fs::create_dir(b.dir.join("rootfs/data")).unwrap();
        let l = &mut b.config["linux"];
        l["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        l["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        l["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        b.config["mounts"]
            .as_array_mut()
            .unwrap()
            .push(idmap_mount(&src, &opts, None));
        b.sh("stat -c '%u %g' /data/f");
        let (code, out, err) = b.run();
        assert_eq!(code, 0, "{opts:?}: {err}");
        assert_eq!(out.trim(), want, "{opts:?}");
        b.assert_clean();
    }
}

#[test]
fn idmap_errors_name_the_mount() {
    let mut b = Bundle::new("idmap-bad");
    let src = owned_dir(&b);
    let cases = [
        (idmap_mount(&src, &["rbind", "idmap"], None), "uidMappings"),
        (
            json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"],
                "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}],
                "gidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]}),
            "bind mounts only",
        ),
        (
            idmap_mount(
                &src,
                &["rbind"],
                Some((
                    json!([{"containerID": 0, "hostID": 1, "size": 0}]),
                    json!([{"containerID": 0, "hostID": 1, "size": 1}]),
                )),
            ),
            "size 0",
        ),
    ];
    for (m, want) in cases {
        let mut mounts = b.config["mounts"].clone();
        mounts.as_array_mut().unwrap().push(m.clone());
        let saved = std::mem::replace(&mut b.config["mounts"], mounts);
        let err = b.fails(&["run", "-b", b.dir.to_str().unwrap(), &b.id()]);
        assert!(err.contains("/data") && err.contains(want), "{m}: {err}");
        b.assert_clean();
        b.config["mounts"] = saved;
    }
}

/// Run berth with extra environment (the harness's `berth` takes none);
/// stdout and stderr go to files, as a container inherits them.
fn berth_env(b: &Bundle, env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    b.write();
    let (o, e) = (b.dir.join(".env-out"), b.dir.join(".env-err"));
    let status = std::process::Command::new(berth_bin())
        .arg("--root")
        .arg(&b.root)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(&b.dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .status()
        .unwrap();
    (
        status.code().unwrap_or(-1),
        std::fs::read_to_string(&o).unwrap(),
        std::fs::read_to_string(&e).unwrap(),
    )
}

/// sd_notify from the container reaches the caller's socket through berth:
/// READY=1, then MAINPID of the init. busybox has no systemd-notify, but its
/// logger writes one datagram to /dev/log, and a line of it can be READY=1.
#[test]
fn notify_socket_relays_ready() {
    let mut b = Bundle::new("notify");
    for a in ["logger", "ln", "printf"] {
        std::os::unix::fs::symlink("busybox", b.dir.join("rootfs/bin").join(a)).unwrap();
    }
    b.sh("echo $NOTIFY_SOCKET; ln -s $NOTIFY_SOCKET /dev/log; logger \"$(printf 'starting\\nREADY=1')\"; sleep 100");
    let host = b.dir.join("host.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&host).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let id = b.id();
    let (code, out, err) = berth_env(
        &b,
        &[("NOTIFY_SOCKET", host.to_str().unwrap())],
        &["run", "-d", "-b", b.dir.to_str().unwrap(), &id],
    );
    assert_eq!(code, 0, "{err}");
    let st: Value = serde_json::from_str(&b.ok(&["state", &id])).unwrap();
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).expect("READY=1 forwarded");
    assert_eq!(&buf[..n], b"READY=1\n");
    let n = sock.recv(&mut buf).expect("MAINPID forwarded");
    assert_eq!(
        String::from_utf8_lossy(&buf[..n]),
        format!("MAINPID={}\n", st["pid"])
    );
    // `run -d` returned only once the container was ready.
    assert_eq!(out.lines().next(), Some("/run/notify/notify.sock"), "{out}");
    b.ok(&["delete", "-f", &id]);
    b.assert_clean();
}

/// Without NOTIFY_SOCKET nothing is added; a container that exits without
/// READY=1 does not hang `start`.
#[test]
fn notify_socket_absent_or_never_ready() {
    let mut b = Bundle::new("notify-none");
    b.sh("echo [$NOTIFY_SOCKET]; test ! -e /run/notify");
    let (code, out, err) = b.run();
    assert_eq!((code, out.trim()), (0, "[]"), "{err}");
    b.assert_clean();
    let host = b.dir.join("host2.sock");
    let _sock = std::os::unix::net::UnixDatagram::bind(&host).unwrap();
    b.sh("true");
    let id = b.id();
    let (code, _, err) = berth_env(
        &b,
        &[("NOTIFY_SOCKET", host.to_str().unwrap())],
        &["run", "-b", b.dir.to_str().unwrap(), &id],
    );
    assert_eq!(code, 0, "{err}");
    b.assert_clean();
}

/// Socket activation: fds berth got with LISTEN_FDS (and LISTEN_PID = its
/// pid) reach the container first, announced as LISTEN_FDS=n, LISTEN_PID=1.
#[test]
fn listen_fds_pass_through() {
    let mut b = Bundle::new("listen");
    let file = b.dir.join("activation");
    std::fs::write(&file, "from-systemd").unwrap();
    b.sh("echo $LISTEN_FDS $LISTEN_PID; cat <&3");
    b.write();
    let script = format!(
        "exec 3<{}; LISTEN_FDS=1 LISTEN_PID=$$ exec {} --root {} run -b {} {}",
        file.display(),
        common::berth_bin(),
        b.root.display(),
        b.dir.display(),
        b.id()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1 1\nfrom-systemd");
    b.assert_clean();
}

#[test]
fn intel_rdt_is_refused_by_name() {
    let mut b = Bundle::new("rdt");
    b.config["linux"]["intelRdt"] = json!({"closID": "berth", "l3CacheSchema": "L3:0=f"});
    let err = b.fails(&["run", "-b", b.dir.to_str().unwrap(), &b.id()]);
    assert!(err.contains("linux.intelRdt"), "{err}");
    if !std::path::Path::new("/sys/fs/resctrl/schemata").exists() {
        assert!(err.contains("resctrl"), "{err}");
    }
    b.assert_clean();
    assert_eq!(features()["linux"]["intelRdt"]["enabled"], false);
}
