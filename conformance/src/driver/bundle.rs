//! The busybox rootfs, per-case bundles and the base config every scenario edits.

use std::io;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// Where the checker and its inputs live inside the rootfs.
pub const CHECK_DIR: &str = ".conformance";
pub const CHECK_BIN: &str = "/.conformance/check";

/// Builds the shared base rootfs: static busybox with one link per applet,
/// passwd/group, and the checker. Cases hard-link it, so this runs once.
pub fn base_rootfs(dir: &Path, checker: &Path) -> io::Result<()> {
    let bb = Path::new("/bin/busybox");
    for d in ["bin", "proc", "sys", "dev", "etc", "root", "tmp", CHECK_DIR] {
        std::fs::create_dir_all(dir.join(d))?;
    }
    std::fs::set_permissions(
        dir.join("tmp"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )?;
    std::fs::copy(bb, dir.join("bin/busybox"))?;
    let list = std::process::Command::new(bb).arg("--list").output()?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if !applet.is_empty() && applet != "busybox" {
            let _ = symlink("busybox", dir.join("bin").join(applet));
        }
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )?;
    std::fs::write(
        dir.join("etc/group"),
        "root:x:0:\ntty:x:5:\nnobody:x:65534:\n",
    )?;
    std::fs::copy(checker, dir.join(CHECK_DIR).join("check"))?;
    Ok(())
}

/// Copies a tree with hard links for files (cheap, and the rootfs is
/// never written through those paths), recreating dirs and symlinks.
pub fn link_tree(src: &Path, dst: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dst)?;
    let meta = std::fs::metadata(src)?;
    std::fs::set_permissions(dst, meta.permissions())?;
    for e in std::fs::read_dir(src)? {
        let e = e?;
        let (s, d) = (e.path(), dst.join(e.file_name()));
        let ft = e.file_type()?;
        if ft.is_dir() {
            link_tree(&s, &d)?;
        } else if ft.is_symlink() {
            symlink(std::fs::read_link(&s)?, &d)?;
        } else {
            std::fs::hard_link(&s, &d).or_else(|_| std::fs::copy(&s, &d).map(|_| ()))?;
        }
    }
    Ok(())
}

/// The config every scenario starts from: what `runc spec` gives, minus the
/// terminal, plus a cgroup namespace and path, running the checker.
pub fn base_config(cgroups_path: &str) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": [CHECK_BIN],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "conformance",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "cgroupsPath": cgroups_path,
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

/// The host facts the checker cannot see from inside (see berth-check's docs).
pub fn host_facts(cfg: &Value, bundle: &Path) -> Value {
    let mut ns = serde_json::Map::new();
    for n in ["pid", "net", "mnt", "ipc", "uts", "user", "cgroup", "time"] {
        if let Ok(m) = std::fs::metadata(format!("/proc/self/ns/{n}")) {
            ns.insert(n.into(), m.ino().into());
        }
    }
    let mut nspath = serde_json::Map::new();
    for n in conformance::json::arr(cfg, "linux.namespaces") {
        let (Some(ty), Some(p)) = (
            n.get("type").and_then(Value::as_str),
            n.get("path").and_then(Value::as_str),
        ) else {
            continue;
        };
        let proc_name = match ty {
            "network" => "net",
            "mount" => "mnt",
            t => t,
        };
        if let Ok(m) = std::fs::metadata(p) {
            nspath.insert(proc_name.into(), m.ino().into());
        }
    }
    let mut bindino = serde_json::Map::new();
    for m in conformance::json::arr(cfg, "mounts") {
        let opts = conformance::json::strs(m.get("options"));
        let bind = m.get("type").and_then(Value::as_str) == Some("bind")
            || opts.iter().any(|o| o == "bind" || o == "rbind");
        let (Some(dest), Some(src)) = (
            m.get("destination").and_then(Value::as_str),
            m.get("source").and_then(Value::as_str),
        ) else {
            continue;
        };
        if bind {
            let src = if Path::new(src).is_absolute() {
                PathBuf::from(src)
            } else {
                bundle.join(src)
            };
            if let Ok(md) = std::fs::metadata(src) {
                bindino.insert(dest.into(), md.ino().into());
            }
        }
    }
    json!({"ns": ns, "nspath": nspath, "bindino": bindino})
}
