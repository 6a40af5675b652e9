//! Running as an ordinary user: runc's `--rootless` rule, the default state
//! root, and when a container may run without a cgroup.
//!
//! As in runc, `--rootless` only decides how cgroup failures are treated:
//! with the rootless rule a container whose caller cannot write the cgroup
//! tree still runs, without a cgroup, as long as it asks for no limit. The
//! user namespace itself is whatever the config says (see `userns`).

use std::path::PathBuf;

use oci_spec::runtime::LinuxResources;

use crate::error::{Context, Error, Result};

/// The value of the global `--rootless` flag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Mode {
    True,
    False,
    /// Decide from who is calling (the default).
    #[default]
    Auto,
}

impl Mode {
    /// runc's parsing: "auto" or empty, else a Go boolean (1, t, T, TRUE,
    /// true, True, and the same for false).
    pub fn parse(s: &str) -> Result<Mode> {
        match s {
            "" | "auto" => Ok(Mode::Auto),
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(Mode::True),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(Mode::False),
            _ => Err(Error::option(
                "--rootless",
                "",
                format!("{s:?} is not true, false or auto"),
            )),
        }
    }

    /// Whether cgroup permission errors are tolerated (runc's "rootless
    /// cgroup manager"): auto means yes unless the caller is root of the
    /// initial user namespace.
    pub fn cgroups(self) -> bool {
        match self {
            Mode::True => true,
            Mode::False => false,
            Mode::Auto => !is_euid_root() || in_user_namespace(),
        }
    }
}

pub fn is_euid_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether this process runs in a user namespace other than the initial one
/// (whose uid_map maps the whole id space onto itself).
pub fn in_user_namespace() -> bool {
    match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(m) => !is_identity_map(&m),
        Err(_) => false,
    }
}

fn is_identity_map(map: &str) -> bool {
    let f: Vec<&str> = map.split_whitespace().collect();
    f == ["0", "0", "4294967295"]
}

/// The state root when `--root` is not given: runc's rule. An ordinary
/// user (or root of a user namespace whose $USER is not root) with
/// $XDG_RUNTIME_DIR set uses `$XDG_RUNTIME_DIR/berth`; everyone else
/// `/run/berth` (where an ordinary user then gets "permission denied", as
/// with runc).
pub fn default_root() -> Result<PathBuf> {
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty());
    let user = std::env::var("USER").ok();
    match xdg {
        Some(x) if honor_xdg(is_euid_root(), in_user_namespace(), user.as_deref()) => {
            let root = PathBuf::from(x).join("berth");
            sticky_dir(&root)?;
            Ok(root)
        }
        _ => Ok(PathBuf::from("/run/berth")),
    }
}

/// The XDG base directory spec lets a session clean up files in
/// $XDG_RUNTIME_DIR that are not touched for 6 hours unless they are
/// sticky: runc makes its root directory 0700 plus sticky, so does berth.
fn sticky_dir(root: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .ctx(|| format!("create state root {}", root.display()))?;
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o1700))
        .ctx(|| format!("chmod state root {}", root.display()))
}

/// What to add to a failed mkdir of the state root: an ordinary user
/// without $XDG_RUNTIME_DIR lands on /run/berth, which only root may write.
pub fn state_root_hint(e: &std::io::Error) -> &'static str {
    if e.kind() == std::io::ErrorKind::PermissionDenied && !is_euid_root() {
        " (an ordinary user needs $XDG_RUNTIME_DIR set, or --root)"
    } else {
        ""
    }
}

fn honor_xdg(euid_root: bool, in_userns: bool, user: Option<&str>) -> bool {
    if !euid_root {
        return true;
    }
    // Real root keeps /run/berth even with XDG_RUNTIME_DIR=/run/user/0.
    in_userns && user != Some("root")
}

/// The first `linux.resources` field that asks for a limit, as a config
/// path. Device rules do not count: as with runc, a rootless container
/// without a cgroup gets no device cgroup, and its devices are only the
/// ones bind-mounted from the host, which the user could open anyway.
pub fn requested_limit(r: Option<&LinuxResources>) -> Option<String> {
    let mut v = serde_json::to_value(r?).ok()?;
    v.as_object_mut()?.remove("devices");
    first_request(&v, "linux.resources")
}

/// The path of the first value (in key order) that is not null or empty.
fn first_request(v: &serde_json::Value, path: &str) -> Option<String> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::Array(a) if a.is_empty() => None,
        serde_json::Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            keys.into_iter()
                .find_map(|k| first_request(&o[k.as_str()], &format!("{path}.{k}")))
        }
        _ => Some(path.to_string()),
    }
}

/// Why a cgroup error means "this user may not write the cgroup tree".
pub fn is_permission_error(e: &crate::cgroups::CgroupError) -> bool {
    use std::error::Error as _;
    let mut src = e.source();
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return matches!(
                io.raw_os_error(),
                Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS)
            );
        }
        src = s.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_like_runc() {
        assert_eq!(Mode::parse("auto").unwrap(), Mode::Auto);
        assert_eq!(Mode::parse("").unwrap(), Mode::Auto);
        assert_eq!(Mode::parse("true").unwrap(), Mode::True);
        assert_eq!(Mode::parse("1").unwrap(), Mode::True);
        assert_eq!(Mode::parse("F").unwrap(), Mode::False);
        let e = Mode::parse("yes").unwrap_err().to_string();
        assert!(e.contains("--rootless") && e.contains("yes"), "{e}");
    }

    #[test]
    fn xdg_rule() {
        assert!(honor_xdg(false, false, Some("alice")));
        assert!(!honor_xdg(true, false, Some("root")));
        assert!(!honor_xdg(true, false, None));
        assert!(honor_xdg(true, true, Some("alice")));
        assert!(!honor_xdg(true, true, Some("root")));
        assert!(is_identity_map("         0          0 4294967295\n"));
        assert!(!is_identity_map("0 1000 1\n"));
    }

    #[test]
    fn limits_are_found_devices_are_not() {
        let r: LinuxResources =
            serde_json::from_str(r#"{"devices":[{"allow":false,"access":"rwm"}],"memory":{}}"#)
                .unwrap();
        assert_eq!(requested_limit(Some(&r)), None);
        let r: LinuxResources =
            serde_json::from_str(r#"{"pids":{"limit":10},"devices":[]}"#).unwrap();
        assert_eq!(
            requested_limit(Some(&r)).as_deref(),
            Some("linux.resources.pids.limit")
        );
        let r: LinuxResources = serde_json::from_str(r#"{"memory":{"limit":1048576}}"#).unwrap();
        assert_eq!(
            requested_limit(Some(&r)).as_deref(),
            Some("linux.resources.memory.limit")
        );
        assert_eq!(requested_limit(None), None);
    }
}
