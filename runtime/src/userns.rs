//! The container's user namespace mappings, and what an ordinary user needs
//! for them.
//!
//! Root writes /proc/PID/{uid,gid}_map directly. An ordinary user may write
//! directly only a single mapping of its own id (the kernel's rule), and a
//! gid map only after denying setgroups in the namespace; anything else goes
//! through the setuid helpers newuidmap/newgidmap, which check the ranges
//! /etc/subuid and /etc/subgid grant (runc's scheme). Everything an ordinary
//! user could be missing is checked by [`check`] before anything is created,
//! so a refused container leaves nothing behind.

use std::path::{Path, PathBuf};
use std::process::Command;

use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

use crate::error::{Context, Error, Result};

/// How one of the two maps gets written.
#[derive(Debug, PartialEq, Eq)]
enum Method {
    /// Written to /proc/PID/*_map by berth itself.
    Direct,
    /// Through newuidmap/newgidmap at this path.
    Tool(PathBuf),
}

#[derive(Clone, Copy)]
enum Kind {
    Uid,
    Gid,
}

impl Kind {
    fn field(self) -> &'static str {
        match self {
            Kind::Uid => "linux.uidMappings",
            Kind::Gid => "linux.gidMappings",
        }
    }
    fn tool(self) -> &'static str {
        match self {
            Kind::Uid => "newuidmap",
            Kind::Gid => "newgidmap",
        }
    }
    fn subid_file(self) -> &'static str {
        match self {
            Kind::Uid => "/etc/subuid",
            Kind::Gid => "/etc/subgid",
        }
    }
    fn own_id(self) -> u32 {
        match self {
            Kind::Uid => nix::unistd::geteuid().as_raw(),
            Kind::Gid => nix::unistd::getegid().as_raw(),
        }
    }
    fn proc_file(self) -> &'static str {
        match self {
            Kind::Uid => "uid_map",
            Kind::Gid => "gid_map",
        }
    }
}

fn maps(spec: &Spec, k: Kind) -> &[LinuxIdMapping] {
    let l = spec.linux().as_ref();
    let m = match k {
        Kind::Uid => l.and_then(|l| l.uid_mappings().as_ref()),
        Kind::Gid => l.and_then(|l| l.gid_mappings().as_ref()),
    };
    m.map_or(&[], |v| v.as_slice())
}

fn ns_of(spec: &Spec, t: LinuxNamespaceType) -> Option<&oci_spec::runtime::LinuxNamespace> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .and_then(|ns| ns.iter().find(|n| n.typ() == t))
}

/// Everything an ordinary user needs for this config, checked before any
/// state is made: a user namespace the kernel lets it create, mappings it
/// may write (itself or through newuidmap/newgidmap and its subordinate
/// ranges), and mount options naming only mapped ids. No-op for root.
pub fn check(spec: &Spec) -> Result<()> {
    if crate::rootless::is_euid_root() {
        return Ok(());
    }
    let uid = nix::unistd::geteuid().as_raw();
    let Some(user_ns) = ns_of(spec, LinuxNamespaceType::User) else {
        return Err(Error::Rootless(format!(
            "running as uid {uid} (not root) needs a user namespace: add a \"user\" namespace with uidMappings and gidMappings to linux.namespaces (berth spec --rootless writes one)"
        )));
    };
    if user_ns.path().is_some() {
        return Ok(());
    }
    if let Some(why) = unavailable_reason(Path::new("/proc/sys")) {
        return Err(Error::Rootless(why));
    }
    for k in [Kind::Uid, Kind::Gid] {
        method(maps(spec, k), k)?;
    }
    let groups = spec
        .process()
        .as_ref()
        .and_then(|p| p.user().additional_gids().as_ref())
        .is_some_and(|g| !g.is_empty());
    if groups && method(maps(spec, Kind::Gid), Kind::Gid)? == Method::Direct {
        return Err(Error::Rootless(
            "process.user.additionalGids: a gid map of only your own gid is written with setgroups denied, so no group can be added; map the groups through /etc/subgid".into(),
        ));
    }
    check_mount_ids(spec)
}

/// Why this kernel refuses an ordinary user a new user namespace, if the
/// sysctls under `proc_sys` say so.
pub fn unavailable_reason(proc_sys: &Path) -> Option<String> {
    let read = |p: &str| {
        std::fs::read_to_string(proc_sys.join(p))
            .ok()
            .map(|s| s.trim().to_string())
    };
    if read("user/max_user_namespaces").as_deref() == Some("0") {
        return Some(
            "user namespaces are disabled: /proc/sys/user/max_user_namespaces is 0".into(),
        );
    }
    if read("kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return Some("user namespaces are disabled for ordinary users: /proc/sys/kernel/unprivileged_userns_clone is 0".into());
    }
    if read("kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        return Some("AppArmor restricts user namespaces for ordinary users: /proc/sys/kernel/apparmor_restrict_unprivileged_userns is 1".into());
    }
    None
}

/// How an ordinary user writes `m`: a single mapping of its own id
/// directly, anything else through the helper, whose subordinate ranges
/// must cover every mapping.
fn method(m: &[LinuxIdMapping], k: Kind) -> Result<Method> {
    let own = k.own_id();
    if let [one] = m {
        if one.host_id() == own && one.size() == 1 {
            return Ok(Method::Direct);
        }
    }
    let tool = find_tool(k.tool()).ok_or_else(|| {
        Error::Rootless(format!(
            "{}: mapping more than your own id ({own}) as an ordinary user needs {}, which is not installed (Debian package uidmap)",
            k.field(),
            k.tool()
        ))
    })?;
    let text = std::fs::read_to_string(k.subid_file()).unwrap_or_default();
    let name = crate::passwd::name_of(nix::unistd::geteuid().as_raw()).unwrap_or_default();
    let ranges = subid_ranges(&text, &name, nix::unistd::geteuid().as_raw());
    for x in m {
        let (start, size) = (u64::from(x.host_id()), u64::from(x.size()));
        let own_only = x.host_id() == own && x.size() == 1;
        let covered = ranges
            .iter()
            .any(|&(s, n)| start >= s && start + size <= s + n);
        if !own_only && !covered {
            let have = if ranges.is_empty() {
                format!("{} has no range for user {name:?}", k.subid_file())
            } else {
                let r: Vec<String> = ranges
                    .iter()
                    .map(|(s, n)| format!("{s}-{}", s + n - 1))
                    .collect();
                format!(
                    "{} gives user {name:?} only {}",
                    k.subid_file(),
                    r.join(", ")
                )
            };
            return Err(Error::Rootless(format!(
                "{}: host ids {start}-{} are not yours to map: {have}",
                k.field(),
                start + size.max(1) - 1
            )));
        }
    }
    Ok(Method::Tool(tool))
}

/// The ranges (start, count) a subuid/subgid file grants the user, named
/// by name or by number.
fn subid_ranges(text: &str, name: &str, id: u32) -> Vec<(u64, u64)> {
    let id = id.to_string();
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().split(':');
            let (who, start, count) = (f.next()?, f.next()?, f.next()?);
            if who != name && who != id {
                return None;
            }
            Some((start.parse().ok()?, count.parse().ok()?))
        })
        .collect()
}

fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// runc's rootless rule: a uid=/gid= mount option must name an id mapped in
/// the container, or the kernel refuses the mount with a bare EINVAL.
fn check_mount_ids(spec: &Spec) -> Result<()> {
    for m in spec.mounts().iter().flatten() {
        for o in m.options().iter().flatten() {
            for (prefix, k) in [("uid=", Kind::Uid), ("gid=", Kind::Gid)] {
                let Some(v) = o.strip_prefix(prefix) else {
                    continue;
                };
                let Ok(id) = v.parse::<u32>() else {
                    continue;
                };
                let mapped = maps(spec, k).iter().any(|x| {
                    u64::from(id) >= u64::from(x.container_id())
                        && u64::from(id) < u64::from(x.container_id()) + u64::from(x.size())
                });
                if !mapped {
                    return Err(Error::Invalid(format!(
                        "mount {}: option {o} names an id that {} does not map; drop it for a rootless container",
                        m.destination().display(),
                        k.field()
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Write the init's uid and gid maps. Runs in the parent while the init
/// waits; as an ordinary user this follows [`check`]'s plan.
pub fn write_maps(spec: &Spec, pid: i32) -> Result<()> {
    let root = crate::rootless::is_euid_root();
    for k in [Kind::Uid, Kind::Gid] {
        let m = maps(spec, k);
        let how = if root { Method::Direct } else { method(m, k)? };
        match how {
            Method::Direct => {
                if !root && matches!(k, Kind::Gid) {
                    // The kernel lets an unprivileged writer set a gid map
                    // only once setgroups is denied in the namespace.
                    std::fs::write(format!("/proc/{pid}/setgroups"), b"deny")
                        .ctx(|| format!("deny setgroups for pid {pid}"))?;
                }
                let text = format_map(m);
                std::fs::write(format!("/proc/{pid}/{}", k.proc_file()), text.as_bytes())
                    .ctx(|| format!("write {} {:?}", k.proc_file(), text.trim()))?;
            }
            Method::Tool(tool) => run_tool(&tool, pid, m)?,
        }
    }
    Ok(())
}

fn format_map(m: &[LinuxIdMapping]) -> String {
    m.iter()
        .map(|x| format!("{} {} {}\n", x.container_id(), x.host_id(), x.size()))
        .collect()
}

fn run_tool(tool: &Path, pid: i32, m: &[LinuxIdMapping]) -> Result<()> {
    let mut args = vec![pid.to_string()];
    for x in m {
        args.extend([
            x.container_id().to_string(),
            x.host_id().to_string(),
            x.size().to_string(),
        ]);
    }
    let out = Command::new(tool)
        .args(&args)
        .output()
        .ctx(|| format!("run {}", tool.display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
        return Err(Error::Rootless(format!(
            "{} {}: {} ({})",
            tool.display(),
            args.join(" "),
            last.trim(),
            out.status
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subid_lines_by_name_or_number() {
        let t = "alice:100000:65536\nbob:200000:10\n1001:300000:5\n# x\n";
        assert_eq!(subid_ranges(t, "alice", 1000), vec![(100000, 65536)]);
        assert_eq!(subid_ranges(t, "carol", 1001), vec![(300000, 5)]);
        assert!(subid_ranges(t, "dave", 7).is_empty());
    }

    #[test]
    fn sysctl_reasons() {
        let d = std::env::temp_dir().join(format!("berth-userns-test-{}", std::process::id()));
        std::fs::create_dir_all(d.join("user")).unwrap();
        std::fs::create_dir_all(d.join("kernel")).unwrap();
        std::fs::write(d.join("user/max_user_namespaces"), "15000\n").unwrap();
        assert_eq!(unavailable_reason(&d), None);
        std::fs::write(d.join("kernel/unprivileged_userns_clone"), "0\n").unwrap();
        let r = unavailable_reason(&d).unwrap();
        assert!(r.contains("unprivileged_userns_clone is 0"), "{r}");
        std::fs::write(d.join("user/max_user_namespaces"), "0\n").unwrap();
        let r = unavailable_reason(&d).unwrap();
        assert!(r.contains("max_user_namespaces is 0"), "{r}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn map_text() {
        let m: Vec<LinuxIdMapping> = serde_json::from_str(
            r#"[{"containerID":0,"hostID":1000,"size":1},{"containerID":1,"hostID":100000,"size":65536}]"#,
        )
        .unwrap();
        assert_eq!(format_map(&m), "0 1000 1\n1 100000 65536\n");
    }
}
