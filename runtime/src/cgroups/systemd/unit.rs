//! Naming the container's systemd unit: `linux.cgroupsPath` in runc's
//! `slice:prefix:name` form, and the cgroup path systemd gives a unit in a
//! nested slice. Pure functions, unit-tested on any host.

use super::super::CgroupError;

/// The default parent slice, as runc's for a root container.
pub const DEFAULT_SLICE: &str = "system.slice";
/// The default parent slice in a user's own systemd instance, as runc's for
/// a rootless container (below the manager's cgroup, `user@<uid>.service`).
pub const USER_SLICE: &str = "user.slice";
/// The unit name prefix when `linux.cgroupsPath` is unset (runc uses "runc").
pub const DEFAULT_PREFIX: &str = "berth";

/// Where the container's unit lives and what it is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    /// The parent slice ("system.slice", "-.slice" for the root).
    pub slice: String,
    /// `<prefix>-<name>.scope`, or `<name>` when it ends in ".slice".
    pub unit: String,
}

impl Name {
    /// A unit that is a slice is parented with Wants= and holds no
    /// delegation; a scope is put into its slice with Slice= and Delegate=.
    pub fn is_slice(&self) -> bool {
        self.unit.ends_with(".slice")
    }
}

fn bad(path: &str, reason: &'static str) -> CgroupError {
    CgroupError::BadPath {
        path: path.to_owned(),
        reason,
    }
}

/// Parse `linux.cgroupsPath` for the systemd driver. Unset or empty is
/// `:berth:<id>`; an empty slice is `system.slice` (`user.slice` in a
/// user's instance). Anything but exactly three `:`-separated parts is an
/// error, as in runc.
pub fn parse(cgroups_path: Option<&str>, id: &str, user: bool) -> Result<Name, CgroupError> {
    let path = cgroups_path.unwrap_or_default();
    let (slice, prefix, name) = if path.is_empty() {
        ("", DEFAULT_PREFIX, id)
    } else {
        let parts: Vec<&str> = path.split(':').collect();
        let [slice, prefix, name] = parts[..] else {
            return Err(bad(
                path,
                "the systemd cgroup driver expects \"slice:prefix:name\"",
            ));
        };
        (slice, prefix, name)
    };
    let slice = if slice.is_empty() {
        if user {
            USER_SLICE
        } else {
            DEFAULT_SLICE
        }
    } else {
        slice
    };
    // Validated here so that a bad slice fails before anything is made.
    expand_slice(slice).map_err(|reason| bad(path, reason))?;
    if name.is_empty() || name.contains('/') {
        return Err(bad(path, "the unit name part is empty or has a \"/\""));
    }
    let unit = if name.ends_with(".slice") {
        expand_slice(name).map_err(|reason| bad(path, reason))?;
        name.to_owned()
    } else {
        if prefix.contains('/') {
            return Err(bad(path, "the prefix part has a \"/\""));
        }
        format!("{prefix}-{name}.scope")
    };
    Ok(Name {
        slice: slice.to_owned(),
        unit,
    })
}

/// The cgroup path (below the hierarchy root, starting with "/") of
/// `slice`: systemd nests a slice in the slices named by its dash-separated
/// prefixes, so `a-b-c.slice` lives in `/a.slice/a-b.slice/a-b-c.slice`.
/// `-.slice` is the root.
pub fn expand_slice(slice: &str) -> Result<String, &'static str> {
    let Some(stem) = slice.strip_suffix(".slice") else {
        return Err("a slice name must end in \".slice\"");
    };
    if slice.contains('/') {
        return Err("a slice name must not contain \"/\"");
    }
    if stem == "-" {
        return Ok("/".into());
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if part.is_empty() {
            return Err("a slice name has an empty dash-separated part");
        }
        path.push('/');
        path.push_str(&prefix);
        path.push_str(part);
        path.push_str(".slice");
        prefix.push_str(part);
        prefix.push('-');
    }
    Ok(path)
}

/// The unit's cgroup path below the hierarchy root.
pub fn cgroup_path(n: &Name) -> String {
    let slice = expand_slice(&n.slice).expect("parse checked the slice");
    if n.is_slice() {
        // A slice unit's cgroup is named by its own nesting, not its parent's.
        return expand_slice(&n.unit).expect("parse checked the unit");
    }
    if slice == "/" {
        format!("/{}", n.unit)
    } else {
        format!("{slice}/{}", n.unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_expand_as_systemd_nests_them() {
        assert_eq!(expand_slice("system.slice").unwrap(), "/system.slice");
        assert_eq!(
            expand_slice("a-b-c.slice").unwrap(),
            "/a.slice/a-b.slice/a-b-c.slice"
        );
        assert_eq!(
            expand_slice("kubepods-besteffort-pod1a2b.slice").unwrap(),
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1a2b.slice"
        );
        assert_eq!(expand_slice("-.slice").unwrap(), "/");
        for bad in [
            ".slice",
            "a--b.slice",
            "-a.slice",
            "a-.slice",
            "a.scope",
            "a/b.slice",
            "a",
        ] {
            assert!(expand_slice(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults_follow_runc_with_our_prefix() {
        let n = parse(None, "c1", false).unwrap();
        assert_eq!(n.slice, "system.slice");
        assert_eq!(n.unit, "berth-c1.scope");
        assert_eq!(cgroup_path(&n), "/system.slice/berth-c1.scope");
        assert_eq!(parse(Some(""), "c1", false).unwrap(), n);
        let n = parse(Some(":cri-containerd:abc"), "x", false).unwrap();
        assert_eq!(n.unit, "cri-containerd-abc.scope");
        assert_eq!(n.slice, "system.slice");
        // In a user's instance the default is runc's rootless one.
        let n = parse(None, "c1", true).unwrap();
        assert_eq!(cgroup_path(&n), "/user.slice/berth-c1.scope");
        let n = parse(Some("user.slice:libpod:abc"), "x", true).unwrap();
        assert_eq!(cgroup_path(&n), "/user.slice/libpod-abc.scope");
    }

    #[test]
    fn kubelet_style_paths() {
        let n = parse(
            Some("kubepods-besteffort-pod12.slice:cri-containerd:deadbeef"),
            "x",
            false,
        )
        .unwrap();
        assert_eq!(
            cgroup_path(&n),
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice/cri-containerd-deadbeef.scope"
        );
        let n = parse(Some("-.slice:p:n"), "x", false).unwrap();
        assert_eq!(cgroup_path(&n), "/p-n.scope");
        // A name ending in .slice makes a slice unit; the prefix is ignored.
        let n = parse(Some("system.slice:p:my-sub.slice"), "x", false).unwrap();
        assert!(n.is_slice());
        assert_eq!(n.unit, "my-sub.slice");
        assert_eq!(cgroup_path(&n), "/my.slice/my-sub.slice");
    }

    #[test]
    fn bad_paths_name_the_field() {
        for p in [
            "/a/b",
            "a:b",
            "a:b:c:d",
            "system:p:n",
            "a--b.slice:p:n",
            "system.slice:p:",
            "system.slice:p:a/b",
            "x/y.slice:p:n",
        ] {
            let e = parse(Some(p), "id", false).unwrap_err();
            assert!(e.to_string().starts_with("linux.cgroupsPath"), "{p}: {e}");
        }
    }
}
