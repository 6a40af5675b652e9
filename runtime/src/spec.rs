//! `berth spec`: a template config.json, as `runc spec` writes one.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use oci_spec::runtime::{
    LinuxIdMappingBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, MountBuilder, Spec,
};

use crate::error::{Context, Error, Result};

pub fn template(rootless: bool) -> Result<Spec> {
    let mut spec = Spec::default();
    spec.set_hostname(Some("berth".into()));
    if let Some(p) = spec.process_mut() {
        p.set_args(Some(vec!["sh".into()]));
        p.set_terminal(Some(true));
        // oci-spec's default fills the inheritable set too; runc's template
        // has none since CVE-2022-29162, and neither does ours.
        if let Some(mut c) = p.capabilities().clone() {
            c.set_inheritable(None);
            p.set_capabilities(Some(c));
        }
    }
    if let Some(r) = spec.root_mut() {
        r.set_readonly(Some(true));
    }
    if rootless {
        to_rootless(&mut spec)?;
    }
    Ok(spec)
}

/// runc's rootless template: a user namespace mapping the caller's own uid
/// and gid to root (written without newuidmap), no network namespace (the
/// host's network stays usable), /sys bound from the host (a new sysfs needs
/// a network namespace owned by the user namespace), no uid=/gid= mount
/// option (those ids are not mapped) and no resources (nothing to enforce
/// them without a delegated cgroup).
fn to_rootless(spec: &mut Spec) -> Result<()> {
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    let map = |host: u32| {
        LinuxIdMappingBuilder::default()
            .container_id(0u32)
            .host_id(host)
            .size(1u32)
            .build()
            .map_err(|e| Error::Invalid(e.to_string()))
    };
    let linux = spec.linux_mut().as_mut().expect("default spec has linux");
    let mut ns = linux.namespaces().clone().unwrap_or_default();
    ns.retain(|n| {
        !matches!(
            n.typ(),
            LinuxNamespaceType::Network | LinuxNamespaceType::User
        )
    });
    ns.push(
        LinuxNamespaceBuilder::default()
            .typ(LinuxNamespaceType::User)
            .build()
            .map_err(|e| Error::Invalid(e.to_string()))?,
    );
    linux.set_namespaces(Some(ns));
    linux.set_uid_mappings(Some(vec![map(uid)?]));
    linux.set_gid_mappings(Some(vec![map(gid)?]));
    linux.set_resources(None);
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    for m in &mut mounts {
        if m.destination() == Path::new("/sys") {
            *m = MountBuilder::default()
                .destination("/sys")
                .typ("none")
                .source("/sys")
                .options(
                    ["rbind", "nosuid", "noexec", "nodev", "ro"]
                        .map(String::from)
                        .to_vec(),
                )
                .build()
                .map_err(|e| Error::Invalid(e.to_string()))?;
            continue;
        }
        if let Some(o) = m.options().clone() {
            let kept = o
                .into_iter()
                .filter(|o| !o.starts_with("uid=") && !o.starts_with("gid="))
                .collect();
            m.set_options(Some(kept));
        }
    }
    spec.set_mounts(Some(mounts));
    Ok(())
}

pub fn write(bundle: &Path, rootless: bool) -> Result<()> {
    let path = bundle.join("config.json");
    let spec = template(rootless)?;
    let data = serde_json::to_vec_pretty(&spec).map_err(Error::encode("config.json"))?;
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .ctx(|| format!("create {}", path.display()))?;
    f.write_all(&data)
        .ctx(|| format!("write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rootless_template_is_runcs() {
        let s = template(true).unwrap();
        let linux = s.linux().as_ref().unwrap();
        let ns: Vec<_> = linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| n.typ())
            .collect();
        assert!(ns.contains(&LinuxNamespaceType::User));
        assert!(!ns.contains(&LinuxNamespaceType::Network));
        let uid = nix::unistd::geteuid().as_raw();
        let m = &linux.uid_mappings().as_ref().unwrap()[0];
        assert_eq!((m.container_id(), m.host_id(), m.size()), (0, uid, 1));
        assert!(linux.resources().is_none());
        let mounts = s.mounts().as_ref().unwrap();
        let sys = mounts
            .iter()
            .find(|m| m.destination() == Path::new("/sys"))
            .unwrap();
        assert_eq!(sys.source().as_deref(), Some(Path::new("/sys")));
        assert!(sys
            .options()
            .as_ref()
            .unwrap()
            .contains(&"rbind".to_string()));
        for m in mounts {
            for o in m.options().iter().flatten() {
                assert!(!o.starts_with("gid=") && !o.starts_with("uid="), "{o}");
            }
        }
    }
}
