//! Pids of a container: the members of its init's cgroup, found through
//! /proc/<init>/cgroup (berth has no `ps`). The pids controller is preferred
//! (v1), then memory, then the unified hierarchy.

use std::path::PathBuf;

use crate::error::{Error, Result};

fn procs_file(cgroup_lines: &str) -> Vec<PathBuf> {
    let mut v1 = Vec::new();
    let mut v2 = Vec::new();
    for line in cgroup_lines.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(hier), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let path = path.trim_start_matches('/');
        if hier == "0" && ctrls.is_empty() {
            for base in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
                v2.push(PathBuf::from(base).join(path).join("cgroup.procs"));
            }
        } else if ctrls.split(',').any(|c| c == "pids") {
            v1.insert(
                0,
                PathBuf::from("/sys/fs/cgroup/pids")
                    .join(path)
                    .join("cgroup.procs"),
            );
        } else if ctrls.split(',').any(|c| c == "memory") {
            v1.push(
                PathBuf::from("/sys/fs/cgroup/memory")
                    .join(path)
                    .join("cgroup.procs"),
            );
        }
    }
    v1.extend(v2);
    v1
}

pub fn of_container(init: i32) -> Result<Vec<u32>> {
    if init <= 0 {
        return Ok(Vec::new());
    }
    let p = format!("/proc/{init}/cgroup");
    let Ok(lines) = std::fs::read_to_string(&p) else {
        // The init is gone: no processes left to list.
        return Ok(Vec::new());
    };
    for f in procs_file(&lines) {
        if let Ok(s) = std::fs::read_to_string(&f) {
            let pids: Vec<u32> = s.lines().filter_map(|l| l.trim().parse().ok()).collect();
            if pids.contains(&(init as u32)) {
                return Ok(pids);
            }
        }
    }
    Err(Error::State(format!(
        "no cgroup of pid {init} lists it (read {p})"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_pids_then_memory_then_unified() {
        let l = "12:memory:/ns/c\n5:pids:/ns/c\n0::/ns/c\n";
        let f = procs_file(l);
        assert_eq!(f[0], PathBuf::from("/sys/fs/cgroup/pids/ns/c/cgroup.procs"));
        assert_eq!(
            f[1],
            PathBuf::from("/sys/fs/cgroup/memory/ns/c/cgroup.procs")
        );
        assert_eq!(f[2], PathBuf::from("/sys/fs/cgroup/ns/c/cgroup.procs"));
    }

    #[test]
    fn own_pid_is_listed() {
        let me = std::process::id();
        assert!(of_container(me as i32).unwrap().contains(&me));
        assert!(of_container(0).unwrap().is_empty());
    }
}
