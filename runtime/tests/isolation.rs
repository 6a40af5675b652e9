//! What a container sees from inside: each configured setting is checked by
//! a shell in the container, against values the host knows.

mod common;

use common::Bundle;
use serde_json::json;

/// Run `script` in a container built from `b`, expecting exit 0; returns stdout.
fn inside(b: &mut Bundle, script: &str) -> String {
    b.sh(script);
    let (code, out, err) = b.run();
    assert_eq!(
        code, 0,
        "script failed: {script}\nstdout: {out}\nstderr: {err}"
    );
    b.assert_clean();
    out
}

#[test]
fn pid_one_and_hostname() {
    let mut b = Bundle::new("pid1");
    b.config["hostname"] = json!("boxy");
    b.config["domainname"] = json!("example.test");
    let out = inside(&mut b, "echo $$; hostname; cat /proc/sys/kernel/domainname");
    assert_eq!(out, "1\nboxy\nexample.test\n");
}

#[test]
fn namespaces_differ_from_host() {
    let mut b = Bundle::new("ns");
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "user");
    let out = inside(
        &mut b,
        "for n in pid net ipc uts mnt cgroup; do readlink /proc/self/ns/$n; done",
    );
    for line in out.lines() {
        let kind = line.split(':').next().unwrap();
        let host = std::fs::read_link(format!("/proc/self/ns/{kind}")).unwrap();
        assert_ne!(
            line,
            host.to_str().unwrap(),
            "{kind} namespace is the host's"
        );
    }
    assert_eq!(out.lines().count(), 6);
}

#[test]
fn joins_namespace_by_path() {
    let mut b = Bundle::new("nspath");
    let host_uts = std::fs::read_link("/proc/self/ns/uts").unwrap();
    let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "uts");
    ns.push(json!({"type": "uts", "path": "/proc/self/ns/uts"}));
    b.config.as_object_mut().unwrap().remove("hostname");
    let out = inside(&mut b, "readlink /proc/self/ns/uts");
    assert_eq!(out.trim(), host_uts.to_str().unwrap());
}

#[test]
fn host_filesystem_is_invisible() {
    let marker = format!("/tmp/berth-host-marker-{}", std::process::id());
    std::fs::write(&marker, "host").unwrap();
    let mut b = Bundle::new("nohost");
    let out = inside(
        &mut b,
        &format!("test -e {marker} && echo visible; ls /; cat /proc/1/cmdline | wc -c"),
    );
    std::fs::remove_file(&marker).unwrap();
    assert!(!out.contains("visible"), "{out}");
    assert!(!out.contains("work\n"), "host / visible: {out}");
}

#[test]
fn mounts_as_configured() {
    let mut b = Bundle::new("mounts");
    let host_dir = b.dir.join("shared");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("f"), "from-host").unwrap();
    b.config["mounts"].as_array_mut().unwrap().extend([
        json!({"destination": "/data", "type": "bind", "source": host_dir, "options": ["rbind", "ro", "nosuid", "nodev"]}),
        json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "mode=1777", "noexec"]}),
    ]);
    let out = inside(
        &mut b,
        "cat /data/f; echo; touch /data/x 2>/dev/null && echo data-writable; \
         grep -E ' /(data|scratch|proc|dev|sys|dev/pts|dev/shm|dev/mqueue) ' /proc/self/mountinfo",
    );
    assert!(out.starts_with("from-host\n"), "{out}");
    assert!(!out.contains("data-writable"), "{out}");
    let line = |dst: &str| {
        out.lines()
            .find(|l| l.split(' ').nth(4) == Some(dst))
            .unwrap_or_else(|| panic!("{dst} not mounted: {out}"))
            .to_string()
    };
    let data = line("/data");
    assert!(
        data.contains(" ro,") && data.contains("nosuid") && data.contains("nodev"),
        "{data}"
    );
    let scratch = line("/scratch");
    assert!(
        scratch.contains("noexec") && scratch.contains("tmpfs") && scratch.contains("size=1024k"),
        "{scratch}"
    );
    assert!(line("/proc").contains(" - proc "));
    assert!(line("/sys").contains(" - sysfs ") && line("/sys").contains(" ro,"));
    assert!(line("/dev").contains(" - tmpfs "));
    assert!(line("/dev/pts").contains(" - devpts "));
    assert!(line("/dev/shm").contains(" - tmpfs "));
    assert!(line("/dev/mqueue").contains(" - mqueue "));
}

#[test]
fn user_groups_umask_cwd_env() {
    let mut b = Bundle::new("user");
    b.config["process"]["user"] =
        json!({"uid": 1000, "gid": 1001, "additionalGids": [5, 7], "umask": 63});
    b.config["process"]["cwd"] = json!("/tmp");
    b.config["process"]["env"] = json!(["PATH=/bin", "FOO=bar baz"]);
    let out = inside(&mut b, "id -u; id -g; id -G; umask; pwd; echo \"$FOO\"");
    assert_eq!(out, "1000\n1001\n1001 5 7\n0077\n/tmp\nbar baz\n");
}

#[test]
fn readonly_root() {
    let mut b = Bundle::new("roroot");
    b.config["root"]["readonly"] = json!(true);
    let out = inside(&mut b, "touch /x 2>&1; touch /tmp/x 2>&1; true");
    assert!(out.contains("Read-only file system"), "{out}");
    let mut b = Bundle::new("rwroot");
    b.config["root"]["readonly"] = json!(false);
    let out = inside(&mut b, "touch /x && echo writable");
    assert_eq!(out, "writable\n");
}

#[test]
fn capabilities_nnp_rlimits() {
    let mut b = Bundle::new("caps");
    b.config["process"]["capabilities"] = json!({
        "bounding": ["CAP_KILL", "CAP_CHOWN"],
        "effective": ["CAP_KILL"],
        "permitted": ["CAP_KILL", "CAP_CHOWN"],
        "inheritable": ["CAP_KILL"],
        "ambient": ["CAP_KILL"],
    });
    b.config["process"]["noNewPrivileges"] = json!(true);
    // Not root: for uid 0 execve raises the effective set to the permitted one.
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.config["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1000}]);
    let out = inside(
        &mut b,
        "grep -E '^(Cap|NoNewPrivs)' /proc/self/status; ulimit -n; ulimit -Hn",
    );
    // CAP_CHOWN is bit 0, CAP_KILL bit 5. After execve a non-root process keeps
    // exactly its ambient set in permitted and effective.
    assert!(out.contains("CapBnd:\t0000000000000021"), "{out}");
    assert!(out.contains("CapPrm:\t0000000000000020"), "{out}");
    assert!(out.contains("CapEff:\t0000000000000020"), "{out}");
    assert!(out.contains("CapInh:\t0000000000000020"), "{out}");
    assert!(out.contains("CapAmb:\t0000000000000020"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    assert!(out.ends_with("512\n1000\n"), "{out}");
}

#[test]
fn sysctl_and_oom_score_adj() {
    let mut b = Bundle::new("sysctl");
    b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"});
    b.config["process"]["oomScoreAdj"] = json!(500);
    let out = inside(
        &mut b,
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni /proc/self/oom_score_adj",
    );
    assert_eq!(out, "1\n1234\n500\n");
}

#[test]
fn masked_and_readonly_paths() {
    let mut b = Bundle::new("masked");
    b.config["linux"]["maskedPaths"] = json!(["/proc/timer_list", "/proc/driver", "/nonexistent"]);
    b.config["linux"]["readonlyPaths"] = json!(["/proc/sys", "/tmp"]);
    let out = inside(
        &mut b,
        "wc -c < /proc/timer_list; ls /proc/driver | wc -l; echo 1 > /proc/sys/kernel/shmmni 2>/dev/null || echo ro-sys; \
         touch /tmp/x 2>/dev/null || echo ro-tmp",
    );
    assert_eq!(out, "0\n0\nro-sys\nro-tmp\n");
}

#[test]
fn devices_and_links() {
    let mut b = Bundle::new("dev");
    b.config["linux"]["devices"] = json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0}]);
    b.config["linux"]["resources"]["devices"] = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}
    ]);
    let out = inside(
        &mut b,
        "for d in null zero full random urandom tty fuse; do stat -c '%n %F %t:%T %a' /dev/$d; done; \
         for l in fd stdin stdout stderr ptmx; do readlink /dev/$l; done; echo x > /dev/null && echo null-ok; \
         head -c 4 /dev/zero | wc -c",
    );
    for (d, t) in [
        ("null", "1:3"),
        ("zero", "1:5"),
        ("full", "1:7"),
        ("random", "1:8"),
        ("urandom", "1:9"),
        ("tty", "5:0"),
        ("fuse", "a:e5"),
    ] {
        let want = format!("/dev/{d} character special file {t} 666");
        assert!(out.contains(&want), "missing {want}: {out}");
    }
    assert!(
        out.contains("/proc/self/fd\n/proc/self/fd/0\n/proc/self/fd/1\n/proc/self/fd/2\n"),
        "{out}"
    );
    assert!(out.contains("pts/ptmx"), "{out}");
    assert!(out.ends_with("null-ok\n4\n"), "{out}");
}

#[test]
fn user_namespace_mapping() {
    let mut b = Bundle::new("userns");
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    // The rootfs belongs to host root, which is unmapped: keep it read-only and world-readable.
    let out = inside(&mut b, "cat /proc/self/uid_map /proc/self/gid_map; id -u");
    let norm: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(norm, ["0 100000 65536", "0 100000 65536", "0"], "{out}");
}

#[test]
fn cgroup_limits_applied() {
    let mut b = Bundle::new("limits");
    b.config["linux"]["resources"]["memory"] = json!({"limit": 67108864});
    b.config["linux"]["resources"]["pids"] = json!({"limit": 42});
    b.config["linux"]["resources"]["cpu"] = json!({"quota": 50000, "period": 100000});
    let cg = b.cgroup.clone();
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    // The container's own cgroup files are read from the host while it runs.
    let script = if v2 {
        format!("cat /sys/fs/cgroup{cg}/memory.max /sys/fs/cgroup{cg}/pids.max /sys/fs/cgroup{cg}/cpu.max")
    } else {
        format!(
            "cat /sys/fs/cgroup/memory{cg}/memory.limit_in_bytes /sys/fs/cgroup/pids{cg}/pids.max \
             /sys/fs/cgroup/cpu{cg}/cpu.cfs_quota_us"
        )
    };
    b.args(&["sleep", "100"]);
    let id = b.id();
    b.ok(&["run", "-d", "-b", b.dir.to_str().unwrap(), &id]);
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout).to_string();
    let st: serde_json::Value = serde_json::from_str(&b.ok(&["state", &id])).unwrap();
    let pid = st["pid"].as_i64().unwrap();
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    b.ok(&["delete", "-f", &id]);
    b.assert_clean();
    if v2 {
        assert_eq!(out, "67108864\n42\n50000 100000\n");
    } else {
        assert_eq!(out, "67108864\n42\n50000\n");
    }
    assert!(
        own.lines().any(|l| l.ends_with(&cg)),
        "init not in {cg}: {own}"
    );
}

#[test]
fn seccomp_denying_getcwd_does_not_break_setup() {
    // berth's own cwd check must happen before a profile that denies it
    // (runc 1.1.5 on Debian fails exactly this upstream case).
    let mut b = Bundle::new("seccwd");
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]
    });
    let out = inside(&mut b, "echo started");
    assert_eq!(out, "started\n");
}

#[test]
fn ambient_caps_not_inheritable_are_skipped_as_runc_does() {
    // `runc spec` writes ambient caps without listing them as inheritable;
    // the kernel cannot raise those, and runc goes on without them.
    let mut b = Bundle::new("ambient");
    b.config["process"]["capabilities"] = json!({
        "bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"],
        "ambient": ["CAP_KILL"]
    });
    let out = inside(&mut b, "grep CapAmb /proc/self/status");
    assert_eq!(out, "CapAmb:\t0000000000000000\n");
}

/// The recursive atime options as mountinfo shows them: "rnorelatime"
/// leaves the default relatime, as runc, youki and "norelatime" do (it was
/// strictatime); "rstrictatime" and "rnoatime" take effect.
#[test]
fn recursive_atime_options() {
    let mut b = Bundle::new("ratime");
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    for (dest, opt) in [
        ("/m1", "rnorelatime"),
        ("/m2", "rstrictatime"),
        ("/m3", "rnoatime"),
    ] {
        mounts.push(
            json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": [opt]}),
        );
    }
    let out = inside(
        &mut b,
        "for m in /m1 /m2 /m3; do awk -v m=$m '$5 == m {print m, $6}' /proc/self/mountinfo; done",
    );
    let atime = |line: &str| {
        let opts: Vec<&str> = line.split_whitespace().nth(1).unwrap().split(',').collect();
        ["relatime", "noatime"]
            .into_iter()
            .find(|o| opts.contains(o))
            .unwrap_or("strictatime")
            .to_string()
    };
    let got: Vec<String> = out.lines().map(atime).collect();
    assert_eq!(got, ["relatime", "strictatime", "noatime"], "{out}");
}
