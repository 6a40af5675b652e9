//! Which namespaces the container gets: new ones (clone3 flags or unshare in
//! init) and existing ones joined by path (opened here, in the runtime's
//! namespaces, so a path is resolved the way the user wrote it).

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Context, Error, Result};

/// nix has no constant for the time namespace.
pub const CLONE_NEWTIME: CloneFlags = CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);

pub struct Plan {
    /// Namespaces to create.
    pub new: CloneFlags,
    /// Namespaces to join, in the order init must join them (user first).
    pub join: Vec<(CloneFlags, OwnedFd, String)>,
    /// New namespaces init unshares first thing, before it waits for Go,
    /// instead of being cloned with them (see [`Plan::unshare_early`]).
    pub early: CloneFlags,
}

fn flag(t: LinuxNamespaceType) -> CloneFlags {
    CloneFlags::from_bits_retain(t as i32)
}

/// Join order: the user namespace first, so the others are joined with its
/// privileges; mnt late, so paths opened before are still the runtime's.
pub const ORDER: [LinuxNamespaceType; 8] = [
    LinuxNamespaceType::User,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Time,
    LinuxNamespaceType::Mount,
];

impl Plan {
    pub fn from_spec(spec: &Spec) -> Result<Plan> {
        let mut new = CloneFlags::empty();
        let mut join = Vec::new();
        let mut seen = CloneFlags::empty();
        let nss = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .unwrap_or_default();
        for ns in &nss {
            let f = flag(ns.typ());
            if seen.contains(f) {
                return Err(Error::field(
                    "linux.namespaces",
                    format!("duplicate namespace type {}", ns.typ()),
                ));
            }
            seen |= f;
            match ns.path() {
                None => new |= f,
                Some(p) => {
                    let file = File::open(p)
                        .ctx(|| format!("open {} namespace path {}", ns.typ(), p.display()))?;
                    join.push((f, OwnedFd::from(file), p.display().to_string()));
                }
            }
        }
        join.sort_by_key(|(f, _, _)| ORDER.iter().position(|t| flag(*t) == *f));
        let plan = Plan {
            new,
            join,
            early: CloneFlags::empty(),
        };
        plan.validate(spec)?;
        Ok(plan)
    }

    pub fn has(&self, f: CloneFlags) -> bool {
        self.new.contains(f) || self.join.iter().any(|(j, _, _)| *j == f)
    }

    fn validate(&self, spec: &Spec) -> Result<()> {
        let linux = spec.linux().as_ref();
        let maps = linux.is_some_and(|l| {
            l.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
                || l.gid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        });
        let new_user = self.new.contains(CloneFlags::CLONE_NEWUSER);
        if new_user && !maps {
            return Err(Error::field(
                "linux.uidMappings",
                "a new user namespace needs linux.uidMappings and linux.gidMappings",
            ));
        }
        if maps && !new_user {
            return Err(Error::field(
                "linux.uidMappings",
                "uidMappings and gidMappings need a new user namespace",
            ));
        }
        // As runc: a UTS namespace joined by path may be given a hostname too.
        if spec.hostname().as_ref().is_some_and(|h| !h.is_empty())
            && !self.has(CloneFlags::CLONE_NEWUTS)
        {
            return Err(Error::field("hostname", "requires a new UTS namespace"));
        }
        if spec.domainname().as_ref().is_some_and(|h| !h.is_empty())
            && !self.has(CloneFlags::CLONE_NEWUTS)
        {
            return Err(Error::field("domainname", "requires a new UTS namespace"));
        }
        let joins_user = self
            .join
            .iter()
            .any(|(f, _, _)| *f == CloneFlags::CLONE_NEWUSER);
        if joins_user && self.new.contains(CloneFlags::CLONE_NEWPID) {
            return Err(Error::Unsupported(
                "a new pid namespace inside a user namespace joined by path".into(),
            ));
        }
        if linux.is_some_and(|l| l.time_offsets().is_some())
            && !self.new.contains(crate::namespaces::CLONE_NEWTIME)
        {
            return Err(Error::field(
                "linux.timeOffsets",
                "requires a new time namespace",
            ));
        }
        Ok(())
    }

    /// Flags for clone3. cgroup and time namespaces are left to init:
    /// a cgroup namespace must be created after init has joined its cgroup
    /// (or its root would be berth's cgroup), and time offsets must be written
    /// before any process enters the new time namespace.
    pub fn clone_flags(&self) -> CloneFlags {
        if self
            .join
            .iter()
            .any(|(f, _, _)| *f == CloneFlags::CLONE_NEWUSER)
        {
            // Namespaces created after joining that user namespace are owned
            // by it; init unshares them itself.
            return CloneFlags::empty();
        }
        self.new - (CloneFlags::CLONE_NEWCGROUP | crate::namespaces::CLONE_NEWTIME) - self.early
    }

    /// What init must unshare itself, after joining.
    pub fn unshare_flags(&self) -> CloneFlags {
        self.new - self.clone_flags() - self.early
    }

    /// Leave the costly new namespaces (network, mount, ipc, uts: about
    /// 0.6 ms of kernel work here, the network one most) to init, which
    /// unshares them while berth makes the v1 cgroup directories, instead of
    /// clone3 doing it before berth can go on. Only without a user namespace,
    /// new or joined: the namespaces would then have to be made inside it,
    /// after berth has written its id maps. The network namespace stays with
    /// the clone when `linux.netDevices` are to be moved into it, which
    /// berth does before Go. Returns whether any was left.
    pub fn unshare_early(&mut self, spec: &Spec) -> bool {
        if self.has(CloneFlags::CLONE_NEWUSER) {
            return false;
        }
        let mut early =
            CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWUTS;
        if spec
            .linux()
            .as_ref()
            .and_then(|l| l.net_devices().as_ref())
            .is_none_or(|d| d.is_empty())
        {
            early |= CloneFlags::CLONE_NEWNET;
        }
        self.early = self.new & early;
        !self.early.is_empty()
    }

    /// The pid namespace is joined by the parent, since setns(CLONE_NEWPID)
    /// only affects the caller's future children.
    pub fn take_pid_join(&mut self) -> Option<(OwnedFd, String)> {
        let i = self
            .join
            .iter()
            .position(|(f, _, _)| *f == CloneFlags::CLONE_NEWPID)?;
        let (_, fd, p) = self.join.remove(i);
        Some((fd, p))
    }
}

pub fn setns(fd: &OwnedFd, f: CloneFlags, path: &str) -> Result<()> {
    nix::sched::setns(fd.as_fd(), f).ctx(|| format!("join namespace {path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        let base = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"cwd":"/","args":["true"],"user":{"uid":0,"gid":0}},"#;
        serde_json::from_str(&format!("{base}{json}}}")).unwrap()
    }

    const COSTLY: CloneFlags = CloneFlags::CLONE_NEWNET
        .union(CloneFlags::CLONE_NEWNS)
        .union(CloneFlags::CLONE_NEWIPC)
        .union(CloneFlags::CLONE_NEWUTS);

    #[test]
    fn init_unshares_the_costly_namespaces_itself() {
        let s = spec(
            r#""linux":{"namespaces":[{"type":"pid"},{"type":"network"},{"type":"ipc"},{"type":"uts"},{"type":"mount"},{"type":"cgroup"}]}"#,
        );
        let mut p = Plan::from_spec(&s).unwrap();
        assert!(p.unshare_early(&s));
        assert_eq!(p.early, COSTLY);
        // Each namespace is made exactly once: by clone3, early, or later.
        assert_eq!(p.clone_flags(), CloneFlags::CLONE_NEWPID);
        assert_eq!(p.unshare_flags(), CloneFlags::CLONE_NEWCGROUP);
    }

    #[test]
    fn net_devices_keep_the_network_namespace_with_the_clone() {
        let s = spec(
            r#""linux":{"namespaces":[{"type":"pid"},{"type":"network"},{"type":"mount"}],"netDevices":{"dummy0":{}}}"#,
        );
        let mut p = Plan::from_spec(&s).unwrap();
        assert!(p.unshare_early(&s));
        assert_eq!(p.early, CloneFlags::CLONE_NEWNS);
        assert!(p.clone_flags().contains(CloneFlags::CLONE_NEWNET));
    }

    #[test]
    fn a_user_namespace_keeps_everything_with_the_clone() {
        let s = spec(
            r#""linux":{"namespaces":[{"type":"pid"},{"type":"user"},{"type":"network"},{"type":"mount"}],"uidMappings":[{"containerID":0,"hostID":1000,"size":1}],"gidMappings":[{"containerID":0,"hostID":1000,"size":1}]}"#,
        );
        let mut p = Plan::from_spec(&s).unwrap();
        assert!(!p.unshare_early(&s));
        assert!(p.early.is_empty());
        assert!(p
            .clone_flags()
            .contains(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWUSER));
    }
}
