//! Configuration scenarios: each edits the base config and runs berth-check
//! inside the container (see Case::run_checker).

use serde_json::json;

use super::{Case, Scenario};

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "default",
        features: &[],
        run: default,
    },
    Scenario {
        name: "hostname",
        features: &[],
        run: hostname,
    },
    Scenario {
        name: "process",
        features: &[],
        run: process,
    },
    Scenario {
        name: "process_user",
        features: &[],
        run: process_user,
    },
    Scenario {
        name: "process_capabilities",
        features: &[],
        run: process_capabilities,
    },
    Scenario {
        name: "process_oom_score_adj",
        features: &[],
        run: oom_score_adj,
    },
    Scenario {
        name: "process_rlimits",
        features: &[],
        run: rlimits,
    },
    Scenario {
        name: "process_no_new_privileges_false",
        features: &[],
        run: nnp_false,
    },
    Scenario {
        name: "root_readonly_false",
        features: &[],
        run: root_rw,
    },
    Scenario {
        name: "mounts",
        features: &[],
        run: mounts,
    },
    Scenario {
        name: "linux_devices",
        features: &[],
        run: devices,
    },
    Scenario {
        name: "linux_masked_paths",
        features: &[],
        run: masked,
    },
    Scenario {
        name: "linux_readonly_paths",
        features: &[],
        run: readonly,
    },
    Scenario {
        name: "linux_rootfs_propagation_shared",
        features: &[],
        run: |c| propagation(c, "shared"),
    },
    Scenario {
        name: "linux_rootfs_propagation_slave",
        features: &[],
        run: |c| propagation(c, "slave"),
    },
    Scenario {
        name: "linux_rootfs_propagation_private",
        features: &[],
        run: |c| propagation(c, "private"),
    },
    Scenario {
        name: "linux_rootfs_propagation_unbindable",
        features: &[],
        run: |c| propagation(c, "unbindable"),
    },
    Scenario {
        name: "linux_seccomp",
        features: &["seccomp"],
        run: seccomp,
    },
    Scenario {
        name: "linux_sysctl",
        features: &[],
        run: sysctl,
    },
    Scenario {
        name: "linux_personality",
        features: &["personality"],
        run: personality,
    },
    Scenario {
        name: "process_io_priority",
        features: &["io-priority"],
        run: io_priority,
    },
    Scenario {
        name: "process_scheduler",
        features: &["scheduler"],
        run: scheduler,
    },
    Scenario {
        name: "linux_process_apparmor_profile",
        features: &["apparmor"],
        run: apparmor,
    },
    Scenario {
        name: "linux_mount_label",
        features: &["selinux"],
        run: selinux,
    },
    // runtime-tools' linux_mount_label on a host without SELinux: crun
    // ignores the label there and passes; a runtime that hands `context=`
    // to the kernel fails to mount.
    Scenario {
        name: "linux_mount_label_without_selinux",
        features: &["no-selinux"],
        run: mount_label_only,
    },
];

fn default(c: &mut Case) {
    c.run_checker();
}

fn hostname(c: &mut Case) {
    c.cfg["hostname"] = json!("conformance-host");
    c.cfg["domainname"] = json!("conformance.example");
    c.run_checker();
}

fn process(c: &mut Case) {
    c.cfg["process"]["args"] = json!([
        crate::bundle::CHECK_BIN,
        "/.conformance/config.json",
        "extra arg"
    ]);
    c.cfg["process"]["cwd"] = json!("/tmp");
    if let Some(e) = c.cfg["process"]["env"].as_array_mut() {
        e.push(json!("CONFORMANCE=with spaces=and equals"));
    }
    c.run_checker();
}

fn process_user(c: &mut Case) {
    c.cfg["process"]["user"] =
        json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 100], "umask": 23});
    // A non-root process keeps capabilities across exec only through the ambient set.
    let caps = json!(["CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    c.cfg["process"]["capabilities"] = json!({"bounding": caps, "effective": caps, "permitted": caps, "inheritable": caps, "ambient": caps});
    c.run_checker();
}

fn process_capabilities(c: &mut Case) {
    let caps = json!(["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SYS_CHROOT"]);
    // For uid 0, exec makes effective and permitted the whole bounding set,
    // so only inheritable and ambient can differ from it.
    c.cfg["process"]["capabilities"] = json!({
        "bounding": caps, "effective": caps, "permitted": caps,
        "inheritable": ["CAP_KILL", "CAP_NET_RAW"], "ambient": ["CAP_KILL"]
    });
    c.run_checker();
}

fn oom_score_adj(c: &mut Case) {
    // Positive: lowering it needs CAP_SYS_RESOURCE, which this VM's bounding set lacks.
    c.cfg["process"]["oomScoreAdj"] = json!(500);
    c.run_checker();
}

fn rlimits(c: &mut Case) {
    c.cfg["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 3000, "hard": 4000},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
        {"type": "RLIMIT_NPROC", "soft": 500, "hard": 1000},
        {"type": "RLIMIT_MSGQUEUE", "soft": 8192, "hard": 16384}
    ]);
    c.run_checker();
}

fn nnp_false(c: &mut Case) {
    c.cfg["process"]["noNewPrivileges"] = json!(false);
    c.run_checker();
}

fn root_rw(c: &mut Case) {
    c.cfg["root"]["readonly"] = json!(false);
    c.run_checker();
}

fn mounts(c: &mut Case) {
    let src = c.dir.join("bind-src");
    let _ = std::fs::create_dir_all(&src).and_then(|_| std::fs::write(src.join("file"), "x"));
    let s = src.to_string_lossy().into_owned();
    if let Some(m) = c.cfg["mounts"].as_array_mut() {
        m.extend([
            json!({"destination": "/mnt/tmpfs", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "nodev", "noexec", "noatime", "mode=700", "size=1m", "uid=1", "gid=2"]}),
            json!({"destination": "/mnt/strict", "type": "tmpfs", "source": "tmpfs", "options": ["strictatime", "rw", "nodiratime"]}),
            json!({"destination": "/mnt/bind-ro", "type": "bind", "source": s, "options": ["rbind", "ro", "nosuid", "nodev", "rprivate"]}),
            json!({"destination": "/mnt/bind-rw", "type": "none", "source": s, "options": ["bind", "rw", "relatime", "rshared"]}),
        ]);
    }
    c.run_checker();
}

fn devices(c: &mut Case) {
    c.cfg["linux"]["devices"] = json!([
        {"path": "/dev/conf-null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 0, "gid": 5},
        {"path": "/dev/conf-loop", "type": "b", "major": 7, "minor": 200, "fileMode": 0o600, "uid": 1, "gid": 1},
        {"path": "/dev/conf-fifo", "type": "p", "fileMode": 0o666},
        {"path": "/dev/conf-dir/tty", "type": "u", "major": 5, "minor": 0, "fileMode": 0o666, "uid": 0, "gid": 0}
    ]);
    c.run_checker();
}

fn masked(c: &mut Case) {
    let r = c.rootfs();
    let _ = std::fs::create_dir_all(r.join("masked-dir"))
        .and_then(|_| std::fs::write(r.join("masked-dir/secret"), "s"));
    let _ = std::fs::write(r.join("masked-file"), "secret");
    c.cfg["linux"]["maskedPaths"] = json!([
        "/masked-dir",
        "/masked-file",
        "/proc/kcore",
        "/not-there",
        "/proc/timer_list"
    ]);
    c.run_checker();
}

fn readonly(c: &mut Case) {
    let r = c.rootfs();
    let _ = std::fs::create_dir_all(r.join("ro-dir"));
    let _ = std::fs::write(r.join("ro-file"), "x");
    c.cfg["root"]["readonly"] = json!(false);
    c.cfg["linux"]["readonlyPaths"] = json!(["/ro-dir", "/ro-file", "/proc/sys", "/proc/bus"]);
    c.run_checker();
}

fn propagation(c: &mut Case, p: &str) {
    c.cfg["linux"]["rootfsPropagation"] = json!(p);
    c.run_checker();
}

fn seccomp(c: &mut Case) {
    c.cfg["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["getsid", "getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}
        ]
    });
    c.run_checker();
}

fn sysctl(c: &mut Case) {
    c.cfg["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.msgmax": "4096", "net.ipv4.ip_local_port_range": "10000 20000"});
    c.run_checker();
}

fn personality(c: &mut Case) {
    // LINUX32 changes what uname reports, so a runtime that drops it shows.
    c.cfg["linux"]["personality"] = json!({"domain": "LINUX32"});
    c.run_checker();
}

fn io_priority(c: &mut Case) {
    c.cfg["ociVersion"] = json!("1.2.0");
    c.cfg["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6});
    c.run_checker();
}

fn scheduler(c: &mut Case) {
    c.cfg["ociVersion"] = json!("1.2.0");
    c.cfg["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 5});
    c.run_checker();
}

/// A profile of our own, not the default `unconfined`, so that a runtime
/// ignoring the field fails: loaded with apparmor_parser, removed after.
fn apparmor(c: &mut Case) {
    const NAME: &str = "berth-conformance";
    let file = c.dir.join("apparmor-profile");
    let text = format!(
        "profile {NAME} flags=(attach_disconnected,mediate_deleted) {{\n  file,\n  capability,\n  \
         network,\n  mount,\n  umount,\n  pivot_root,\n  signal,\n  ptrace,\n  unix,\n}}\n"
    );
    if let Err(e) = std::fs::write(&file, text) {
        return c.t.error("write an AppArmor profile", e);
    }
    let parser = |flag: &str| {
        std::process::Command::new("apparmor_parser")
            .arg(flag)
            .arg(&file)
            .output()
    };
    match parser("-r") {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return c.t.skip(
                "process.apparmorProfile",
                "apparmor_parser is not installed",
            );
        }
        Err(e) => return c.t.error("apparmor_parser -r", e),
        Ok(o) if !o.status.success() => {
            let why = String::from_utf8_lossy(&o.stderr).trim().to_string();
            return c.t.error("apparmor_parser -r (load the test profile)", why);
        }
        Ok(_) => {}
    }
    c.cfg["process"]["apparmorProfile"] = json!(NAME);
    c.run_checker();
    let _ = parser("-R");
}

fn mount_label_only(c: &mut Case) {
    c.cfg["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0:c1,c2");
    c.run_checker();
}

fn selinux(c: &mut Case) {
    c.cfg["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0:c1,c2");
    c.cfg["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0:c1,c2");
    c.run_checker();
}
