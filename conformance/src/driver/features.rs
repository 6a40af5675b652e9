//! What this host offers. A scenario needing something missing here is
//! skipped with the reason, never counted as passed.

use std::path::Path;

use conformance::mountinfo;

pub struct Host {
    v1: Vec<String>,
    v2: Vec<String>,
    pure_v2: bool,
}

fn read(p: &str) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

impl Host {
    pub fn probe() -> Host {
        let mounts = mountinfo::read("self").unwrap_or_default();
        let mut v1 = Vec::new();
        for m in mounts.iter().filter(|m| m.fstype == "cgroup") {
            v1.extend(
                m.super_opts
                    .iter()
                    .filter(|o| !o.contains('=') && *o != "rw" && *o != "ro")
                    .cloned(),
            );
        }
        let v2_root = mounts
            .iter()
            .find(|m| m.fstype == "cgroup2" && m.root == "/")
            .map(|m| m.point.clone());
        let v2 = v2_root
            .as_deref()
            .map(|p| {
                read(&format!("{p}/cgroup.controllers"))
                    .split_whitespace()
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let pure_v2 = v2_root.as_deref() == Some("/sys/fs/cgroup");
        Host { v1, v2, pure_v2 }
    }

    fn controller(&self, c: &str) -> bool {
        let v2name = if c == "blkio" { "io" } else { c };
        self.v1.iter().any(|x| x == c) || self.v2.iter().any(|x| x == v2name)
    }

    fn v1_root_file(&self, ctrl: &str, file: &str) -> bool {
        Path::new(&format!("/sys/fs/cgroup/{ctrl}/{file}")).exists()
    }

    /// Why this host cannot run a scenario needing `feature`; None if it can.
    pub fn lacks(&self, feature: &str) -> Option<String> {
        let ok = match feature {
            "cgroup-v1" => !self.v1.is_empty(),
            "cgroup-v2" => self.pure_v2,
            // linux.resources.unified: raw v2 files, so only on pure v2.
            "cgroup-unified" => self.pure_v2,
            // v2 always filters devices (eBPF), without a controller to enable.
            "cgroup-devices" => self.pure_v2 || self.controller("devices"),
            "cgroup-memsw" => {
                self.pure_v2 || self.v1_root_file("memory", "memory.memsw.limit_in_bytes")
            }
            "cgroup-blkio-weight" => {
                self.v1_root_file("blkio", "blkio.weight")
                    || self.v1_root_file("blkio", "blkio.bfq.weight")
                    || (self.pure_v2 && self.v2.iter().any(|c| c == "io"))
            }
            "apparmor" => read("/sys/module/apparmor/parameters/enabled").trim() == "Y",
            "selinux" => Path::new("/sys/fs/selinux/enforce").exists(),
            "no-selinux" => !Path::new("/sys/fs/selinux/enforce").exists(),
            "userns" => {
                read("/proc/sys/user/max_user_namespaces")
                    .trim()
                    .parse::<u64>()
                    .unwrap_or(0)
                    > 0
            }
            "timens" => Path::new("/proc/self/ns/time").exists(),
            "seccomp" => read("/proc/self/status").contains("Seccomp:"),
            f => match f.strip_prefix("cgroup-") {
                Some(c) => self.controller(c),
                // Runtime features (hooks, ...): only --skip-feature turns them off.
                None => true,
            },
        };
        (!ok).then(|| format!("host lacks {feature}"))
    }
}
