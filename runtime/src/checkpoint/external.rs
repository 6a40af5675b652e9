//! What CRIU must be told about the world outside the container: mounts
//! whose source is on the host, namespaces the container joined, and the
//! init's stdio. Follows how runc configures CRIU.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::cgroups::{Cgroup, Layout};
use crate::error::{Context, Error, Result};

/// Name of the file in the image directory recording the init's stdio.
pub const DESCRIPTORS: &str = "descriptors.json";

/// An external mount: its path inside the container (CRIU's key) and the
/// host path that backs it at restore.
pub struct ExtMount {
    pub dest: PathBuf,
    pub source: PathBuf,
}

fn is_bind(m: &oci_spec::runtime::Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .as_ref()
            .is_some_and(|o| o.iter().any(|x| x == "bind" || x == "rbind"))
}

fn has_ns(spec: &Spec, t: LinuxNamespaceType) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|n| n.iter().any(|ns| ns.typ() == t))
}

/// Bind mounts, the per-hierarchy cgroup bind mounts berth makes for a
/// "cgroup" mount without a cgroup namespace, and `linux.devices`.
pub fn mounts(spec: &Spec, cg: &Cgroup) -> Vec<ExtMount> {
    let mut out = Vec::new();
    let cgroupns = has_ns(spec, LinuxNamespaceType::Cgroup);
    for m in spec.mounts().as_deref().unwrap_or_default() {
        if is_bind(m) {
            if let Some(src) = m.source() {
                out.push(ExtMount {
                    dest: m.destination().clone(),
                    source: src.clone(),
                });
            }
        } else if m.typ().as_deref() == Some("cgroup") && !cgroupns && cg.layout() != Layout::V2 {
            // Each hierarchy is bound from the container's own host directory
            // to <dest>/<the hierarchy's directory name under /sys/fs/cgroup>.
            for p in cg.paths() {
                if let Some(name) = p
                    .strip_prefix("/sys/fs/cgroup")
                    .ok()
                    .and_then(|r| r.components().next())
                {
                    out.push(ExtMount {
                        dest: m.destination().join(name),
                        source: p.to_path_buf(),
                    });
                }
            }
        }
    }
    let devices = spec.linux().as_ref().and_then(|l| l.devices().as_deref());
    for d in devices.unwrap_or_default() {
        out.push(ExtMount {
            dest: d.path().clone(),
            source: d.path().clone(),
        });
    }
    out
}

/// Masked paths that are files: berth binds /dev/null over them, so they are
/// external mounts of /dev/null (directories get a tmpfs, which CRIU dumps).
pub fn masked_files(spec: &Spec, pid: i32) -> Vec<PathBuf> {
    let masked = spec
        .linux()
        .as_ref()
        .and_then(|l| l.masked_paths().as_deref());
    masked
        .unwrap_or_default()
        .iter()
        .filter(|p| {
            let inside = format!("/proc/{pid}/root/{}", p.trim_start_matches('/'));
            std::fs::metadata(inside).is_ok_and(|m| !m.is_dir())
        })
        .map(PathBuf::from)
        .collect()
}

/// Namespaces the container joined by path (net, pid): CRIU leaves them
/// alone at dump (`--external net[INODE]:KEY`) and is handed an fd of the
/// same path at restore (`--inherit-fd fd[N]:KEY`).
pub fn joined_namespaces(spec: &Spec) -> Vec<(&'static str, PathBuf)> {
    let mut out = Vec::new();
    let nss = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_deref());
    for ns in nss.unwrap_or_default() {
        let name = match ns.typ() {
            LinuxNamespaceType::Network => "net",
            LinuxNamespaceType::Pid => "pid",
            _ => continue,
        };
        if let Some(p) = ns.path() {
            out.push((name, p.clone()));
        }
    }
    out
}

pub fn ns_key(name: &str) -> String {
    let mut c = name.chars();
    let cap: String = c
        .next()
        .map(|f| f.to_ascii_uppercase())
        .into_iter()
        .chain(c)
        .collect();
    format!("extRoot{cap}NS")
}

pub fn ns_inode(path: &Path) -> Result<u64> {
    Ok(std::fs::metadata(path)
        .ctx(|| format!("namespace {}", path.display()))?
        .ino())
}

/// The init's fds 0-2 as /proc links them ("pipe:[123]", "/dev/null").
pub fn save_descriptors(images: &Path, pid: i32) -> Result<()> {
    let links: Vec<String> = (0..3)
        .map(|fd| {
            std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    let path = images.join(DESCRIPTORS);
    let json = serde_json::to_vec(&links).map_err(Error::encode("descriptors.json"))?;
    std::fs::write(&path, json).ctx(|| format!("write {}", path.display()))
}

pub fn load_descriptors(images: &Path) -> Result<Vec<String>> {
    let path = images.join(DESCRIPTORS);
    let raw = std::fs::read(&path).ctx(|| format!("read {}", path.display()))?;
    serde_json::from_slice(&raw).map_err(|e| Error::Corrupt {
        path,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys() {
        assert_eq!(super::ns_key("net"), "extRootNetNS");
        assert_eq!(super::ns_key("pid"), "extRootPidNS");
    }
}
