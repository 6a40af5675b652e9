//! Host layout discovery from /proc/self/mountinfo and /proc/self/cgroup,
//! and `linux.cgroupsPath` resolution. Pure functions over the two texts so
//! that every layout can be unit-tested on any host.

use std::cell::Cell;
use std::path::{Component, Path, PathBuf};

use super::{Cgroup, CgroupError, Dir, Layout};

/// A cgroup or cgroup2 mount from mountinfo.
struct Mount {
    v2: bool,
    /// The hierarchy path mounted here (mountinfo field 4), unescaped.
    root: String,
    mountpoint: String,
    /// Superblock options, e.g. "rw,cpu,cpuacct".
    superopts: String,
}

fn cgroup_mounts(mountinfo: &str) -> Vec<Mount> {
    let mounts = crate::mountinfo::parse(mountinfo).into_iter();
    mounts
        .filter_map(|m| {
            let v2 = match m.fstype.as_str() {
                "cgroup2" => true,
                "cgroup" => false,
                _ => return None,
            };
            Some(Mount {
                v2,
                root: m.root,
                mountpoint: m.mountpoint,
                superopts: m.super_options,
            })
        })
        .collect()
}

/// Lexically resolve `rel` against `base` (both hierarchy paths, "/..."),
/// or None if a ".." would climb above "/".
fn clean_join(base: &str, rel: &Path) -> Option<String> {
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for c in rel.components() {
        match c {
            Component::RootDir => parts.clear(),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            // resolve() has checked that the path is UTF-8.
            Component::Normal(n) => parts.push(n.to_str()?),
            Component::Prefix(_) => return None,
        }
    }
    let mut out = String::with_capacity(base.len() + 64);
    for p in parts {
        out.push('/');
        out.push_str(p);
    }
    if out.is_empty() {
        out.push('/');
    }
    Some(out)
}

fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// Build the container's cgroup from the texts of /proc/self/cgroup and
/// /proc/self/mountinfo.
pub(super) fn resolve(
    own_cgroups: &str,
    mountinfo: &str,
    cgroups_path: Option<&Path>,
    id: &str,
) -> Result<Cgroup, CgroupError> {
    let bad = |path: &str, reason| CgroupError::BadPath {
        path: path.to_owned(),
        reason,
    };
    let requested: &Path = match cgroups_path {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => {
            if id.is_empty() || id == "." || id == ".." || id.contains('/') {
                return Err(bad(id, "unset, and the container id cannot name a cgroup"));
            }
            Path::new(id)
        }
    };
    let Some(req_str) = requested.to_str() else {
        return Err(bad(&requested.to_string_lossy(), "not UTF-8"));
    };
    let mounts = cgroup_mounts(mountinfo);
    let layout = match (mounts.iter().any(|m| !m.v2), mounts.iter().any(|m| m.v2)) {
        (true, true) => Layout::Hybrid,
        (true, false) => Layout::V1,
        (false, true) => Layout::V2,
        (false, false) => {
            return Err(CgroupError::HostLayout {
                path: "/proc/self/mountinfo".into(),
                reason: "no cgroup or cgroup2 file system is mounted".into(),
            })
        }
    };

    let mut dirs = Vec::new();
    let mut unified = None;
    for line in own_cgroups.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(hid), Some(ctrls), Some(own)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let is_v2 = hid == "0" && ctrls.is_empty();
        let mount = if is_v2 {
            mounts.iter().find(|m| m.v2)
        } else {
            mounts.iter().find(|m| {
                !m.v2
                    && ctrls
                        .split(',')
                        .all(|c| m.superopts.split(',').any(|o| o == c))
            })
        };
        // A hierarchy mounted only in another mount namespace is not ours to manage.
        let Some(mount) = mount else { continue };
        let base = if requested.is_absolute() {
            "/"
        } else if layout == Layout::V2 {
            parent_of(own)
        } else {
            own
        };
        let target =
            clean_join(base, requested).ok_or_else(|| bad(req_str, "escapes the cgroup root"))?;
        if target == "/" {
            return Err(bad(req_str, "is the cgroup root"));
        }
        let below = if mount.root == "/" {
            Some(target.as_str())
        } else {
            target
                .strip_prefix(mount.root.as_str())
                .filter(|rest| rest.starts_with('/'))
        };
        let Some(below) = below else {
            return Err(CgroupError::HostLayout {
                path: mount.mountpoint.clone().into(),
                reason: format!(
                    "cgroup {target} lies outside the mounted part ({}) of the hierarchy",
                    mount.root
                ),
            });
        };
        let dir = Dir {
            controllers: if is_v2 {
                String::new()
            } else {
                ctrls.to_owned()
            },
            path: PathBuf::from(format!("{}{below}", mount.mountpoint)),
            levels: below.split('/').filter(|p| !p.is_empty()).count() as u16,
            created: Cell::new(0),
        };
        if is_v2 {
            unified = Some(dir);
        } else {
            dirs.push(dir);
        }
    }
    dirs.extend(unified);
    if dirs.is_empty() || (layout == Layout::V2) != (dirs.len() == 1 && dirs[0].is_unified()) {
        return Err(CgroupError::HostLayout {
            path: "/proc/self/cgroup".into(),
            reason: "does not match the cgroup mounts in /proc/self/mountinfo".into(),
        });
    }
    Ok(Cgroup {
        layout,
        dirs,
        systemd: None,
        pending: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MI: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_CG: &str = "\
9:name=systemd:/
4:memory:/process_api/abc
2:cpuacct:/
1:cpu:/
0::/
";
    const V2_MI: &str = "\
20 1 0:20 / /proc rw - proc proc rw
28 20 0:25 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
";
    const V2_CG: &str = "0::/init.scope\n";

    fn paths(cg: &Cgroup) -> Vec<String> {
        cg.dirs
            .iter()
            .map(|d| format!("{}={}@{}", d.controllers, d.path.display(), d.levels))
            .collect()
    }

    #[test]
    fn hybrid_absolute_and_relative() {
        let cg = resolve(HYBRID_CG, HYBRID_MI, Some(Path::new("/a/b")), "x").unwrap();
        assert_eq!(cg.layout, Layout::Hybrid);
        assert_eq!(
            paths(&cg),
            [
                "name=systemd=/sys/fs/cgroup/systemd/a/b@2",
                "memory=/sys/fs/cgroup/memory/a/b@2",
                "cpuacct=/sys/fs/cgroup/cpuacct/a/b@2",
                "cpu=/sys/fs/cgroup/cpu/a/b@2",
                "=/sys/fs/cgroup/unified/a/b@2",
            ]
        );
        let cg = resolve(HYBRID_CG, HYBRID_MI, Some(Path::new("t/../c")), "x").unwrap();
        assert_eq!(
            paths(&cg)[1],
            "memory=/sys/fs/cgroup/memory/process_api/abc/c@3"
        );
        assert_eq!(paths(&cg)[3], "cpu=/sys/fs/cgroup/cpu/c@1");
        let cg = resolve(HYBRID_CG, HYBRID_MI, None, "ctr").unwrap();
        assert_eq!(
            paths(&cg)[1],
            "memory=/sys/fs/cgroup/memory/process_api/abc/ctr@3"
        );
    }

    #[test]
    fn v1_only_and_comounted() {
        let mi = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpuacct,cpu\n";
        let cg = resolve("3:cpu,cpuacct:/u\n", mi, Some(Path::new("k")), "x").unwrap();
        assert_eq!(cg.layout, Layout::V1);
        assert_eq!(paths(&cg), ["cpu,cpuacct=/sys/fs/cgroup/cpu,cpuacct/u/k@2"]);
        assert!(cg.dirs[0].has_controller("cpuacct"));
    }

    #[test]
    fn pure_v2_relative_goes_under_parent_of_own() {
        let cg = resolve(V2_CG, V2_MI, Some(Path::new("berth/c1")), "x").unwrap();
        assert_eq!(cg.layout, Layout::V2);
        assert_eq!(paths(&cg), ["=/sys/fs/cgroup/berth/c1@2"]);
        let cg = resolve("0::/a/b\n", V2_MI, None, "c").unwrap();
        assert_eq!(paths(&cg), ["=/sys/fs/cgroup/a/c@2"]);
    }

    #[test]
    fn escapes_and_bad_ids_are_refused() {
        for p in ["/../x", "/a/../../x", "../../../../x", "/", "/a/.."] {
            let e = resolve(HYBRID_CG, HYBRID_MI, Some(Path::new(p)), "x").unwrap_err();
            assert!(matches!(e, CgroupError::BadPath { .. }), "{p}: {e}");
            assert!(e.to_string().contains("linux.cgroupsPath"), "{e}");
        }
        // Our own cgroup is "/" in the cpu hierarchy: "../y" leaves it.
        assert!(resolve(HYBRID_CG, HYBRID_MI, Some(Path::new("../y")), "x").is_err());
        // Inside the root is fine even above our own cgroup.
        let mi = "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        let cg = resolve("4:memory:/p/q\n", mi, Some(Path::new("../y")), "x").unwrap();
        assert_eq!(paths(&cg), ["memory=/sys/fs/cgroup/memory/p/y@2"]);
        for id in ["", "..", "a/b"] {
            assert!(resolve(HYBRID_CG, HYBRID_MI, None, id).is_err(), "{id}");
        }
    }

    #[test]
    fn mount_root_and_escapes_in_mountpoint() {
        let mi = "41 31 0:38 /ns /sys/fs/my\\040cg rw - cgroup2 cgroup2 rw\n";
        let cg = resolve("0::/ns/me\n", mi, Some(Path::new("/ns/c")), "x").unwrap();
        assert_eq!(paths(&cg), ["=/sys/fs/my cg/c@1"]);
        let e = resolve("0::/ns/me\n", mi, Some(Path::new("/other")), "x").unwrap_err();
        assert!(e.to_string().contains("outside the mounted part"), "{e}");
        // A prefix that is not a whole component does not count.
        assert!(resolve("0::/ns/me\n", mi, Some(Path::new("/nsx")), "x").is_err());
    }

    #[test]
    fn no_cgroup_mounts() {
        assert!(resolve("0::/\n", "20 1 0:20 / /proc rw - proc proc rw\n", None, "x").is_err());
    }

    #[test]
    fn serde_round_trip_keeps_created() {
        let cg = resolve(V2_CG, V2_MI, None, "x").unwrap();
        cg.dirs[0].created.set(2);
        let json = serde_json::to_string(&cg).unwrap();
        let back: Cgroup = serde_json::from_str(&json).unwrap();
        assert_eq!(back.dirs[0].created.get(), 2);
        assert_eq!(back.layout, Layout::V2);
    }
}
