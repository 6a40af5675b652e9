//! The pod under the systemd cgroup driver (`--systemd`), as a kubelet with
//! `cgroupDriver: systemd` lays it out: the parent is a slice such as
//! `kubepods-besteffort-pod<uid>.slice`, containerd's CRI turns it into the
//! cgroupsPath `<slice>:cri-containerd:<id>`, and each container must be the
//! transient unit `cri-containerd-<id>.scope` in that slice.

use std::process::Command;

use crate::report::{want_eq, Report};

/// The cgroup directory of a slice, relative to the cgroup root: systemd nests
/// `a-b-c.slice` as `a.slice/a-b.slice/a-b-c.slice` (systemd.slice(5)).
/// Written here from the man page, apart from berth's own expansion.
pub fn slice_dir(slice: &str) -> String {
    let stem = slice.strip_suffix(".slice").unwrap_or(slice);
    let parts: Vec<&str> = stem.split('-').collect();
    (1..=parts.len())
        .map(|n| format!("/{}.slice", parts[..n].join("-")))
        .collect()
}

pub fn scope(id: &str) -> String {
    format!("cri-containerd-{id}.scope")
}

fn show(unit: &str, prop: &str) -> String {
    Command::new("systemctl")
        .args(["show", "-p", prop, "--value", unit])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|e| format!("systemctl: {e}"))
}

/// The unified-hierarchy cgroup of `pid` (the `0::` line).
fn cgroup_of(pid: u32) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_string)
}

/// While the pod runs: each process (name, container id, pid) is in its
/// container's scope (or below it: crun uses a sub-cgroup), and the scope is
/// an active unit of the pod's slice.
pub fn check_running(parent: &str, rep: &mut Report, procs: &[(String, String, u32)]) {
    let dir = slice_dir(parent);
    for (name, id, pid) in procs {
        let unit = scope(id);
        let want = format!("{dir}/{unit}");
        let r = match cgroup_of(*pid) {
            Some(cg) if cg == want || cg.starts_with(&format!("{want}/")) => Ok(()),
            other => Err(format!("pid {pid}: cgroup {other:?}, want {want}")),
        };
        rep.check(&format!("{name}: in its scope in the pod slice"), r);
        rep.check(
            &format!("{name}: scope active"),
            want_eq("ActiveState", "active", &show(&unit, "ActiveState")),
        );
        rep.check(
            &format!("{name}: scope in the pod slice"),
            want_eq("Slice", parent, &show(&unit, "Slice")),
        );
    }
}

/// After teardown: no scope unit of the pod is loaded (nor failed), and the
/// slice's cgroup has no container cgroup left.
pub fn leaks(parent: &str, rep: &mut Report, ids: &[String]) {
    let left: Vec<String> = ids
        .iter()
        .map(|id| scope(id))
        .filter(|u| show(u, "LoadState") != "not-found" && show(u, "ActiveState") != "inactive")
        .map(|u| {
            format!(
                "{u} ({}/{})",
                show(&u, "LoadState"),
                show(&u, "ActiveState")
            )
        })
        .collect();
    rep.check(
        "no scope unit left",
        want_eq("units", Vec::<String>::new(), left),
    );
    let dir = std::path::PathBuf::from(format!("/sys/fs/cgroup{}", slice_dir(parent)));
    let cg: Vec<String> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path().display().to_string())
                .collect()
        })
        .unwrap_or_default();
    rep.check(
        "no container cgroup left",
        want_eq("cgroups", Vec::<String>::new(), cg),
    );
}

#[cfg(test)]
mod tests {
    use super::slice_dir;

    #[test]
    fn nested_slices() {
        assert_eq!(
            slice_dir("kubepods-besteffort-pod12.slice"),
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice"
        );
        assert_eq!(slice_dir("system.slice"), "/system.slice");
    }
}
