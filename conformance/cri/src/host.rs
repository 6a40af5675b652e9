//! What the host shows about the pod, read from /proc and the filesystem: the shim processes
//! of our containerd, mounts below our private dir, cgroups, berth state, network namespaces.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

/// Pids of the shims named `shim` (the binary's file name) started by the containerd at
/// `address`. The `-address` flag is what tells our shims from those of any other containerd.
pub fn shims_of(shim: &str, address: &str) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        // A process may exit between readdir and read: treat it as gone.
        let Ok(raw) = fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
        let is_shim = args
            .first()
            .is_some_and(|a0| a0.rsplit(|b| *b == b'/').next() == Some(shim.as_bytes()));
        let ours = args
            .windows(2)
            .any(|w| w[0] == b"-address" && w[1] == address.as_bytes());
        if is_shim && ours {
            out.insert(pid);
        }
    }
    out
}

/// Parent pid of `pid`, from /proc/<pid>/stat (the field after the parenthesised comm).
pub fn ppid(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(1)?.parse().ok()
}

/// Mount points in our mount table that lie below `dir` or whose path names `needle`.
pub fn mounts_matching(dir: &Path, needles: &[&str]) -> Vec<String> {
    let prefix = format!("{}/", dir.display());
    let table = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    table
        .lines()
        .filter_map(|l| l.split(' ').nth(1))
        .filter(|m| m.starts_with(&prefix) || needles.iter().any(|n| m.contains(n)))
        .map(str::to_owned)
        .collect()
}

/// Every file or directory below `root` (not `root` itself), as paths relative to it.
pub fn entries_below(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        out.push(p.strip_prefix(root).unwrap_or(&p).display().to_string());
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            walk(root, &p, out);
        }
    }
}

/// Cgroup directories named `rel` in any v1 hierarchy or the unified one.
pub fn cgroups_named(rel: &str) -> Vec<String> {
    let rel = rel.trim_start_matches('/');
    let Ok(rd) = fs::read_dir("/sys/fs/cgroup") else {
        return Vec::new();
    };
    rd.flatten()
        .map(|e| e.path().join(rel))
        .filter(|p| p.is_dir())
        .map(|p| p.display().to_string())
        .collect()
}

/// Names in the directory containerd 1.6 keeps pod network namespaces in.
pub fn netns_names() -> BTreeSet<String> {
    fs::read_dir("/var/run/netns")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}
