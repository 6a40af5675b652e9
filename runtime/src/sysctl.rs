//! `linux.sysctl`: only keys that belong to a namespace the container owns
//! (as runc allows), written through the init's private procfs beneath its
//! root, so neither a key like `net/../../x` nor a symlink can reach another
//! file.

use std::io::Write;
use std::os::fd::BorrowedFd;

use nix::sched::CloneFlags;
use oci_spec::runtime::Spec;

use crate::error::{Context, Error, Result};
use crate::namespaces::Plan;

const IPC_KEYS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

fn check(key: &str, plan: &Plan) -> Result<()> {
    let need = |f: CloneFlags, what: &str| {
        if plan.has(f) {
            Ok(())
        } else {
            Err(Error::Invalid(format!(
                "sysctl {key:?} requires a private {what} namespace"
            )))
        }
    };
    if IPC_KEYS.contains(&key) || key.starts_with("fs.mqueue.") {
        need(CloneFlags::CLONE_NEWIPC, "ipc")
    } else if key.starts_with("net.") {
        need(CloneFlags::CLONE_NEWNET, "network")
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        need(CloneFlags::CLONE_NEWUTS, "uts")
    } else {
        Err(Error::Invalid(format!(
            "sysctl {key:?} is not in a separate kernel namespace"
        )))
    }
}

pub fn validate(spec: &Spec, plan: &Plan) -> Result<()> {
    for key in sysctls(spec).keys() {
        check(key, plan)?;
        if key.split(['.', '/']).any(|c| c.is_empty() || c == "..") {
            return Err(Error::Invalid(format!("sysctl {key:?} is malformed")));
        }
    }
    Ok(())
}

fn sysctls(spec: &Spec) -> std::collections::HashMap<String, String> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.sysctl().clone())
        .unwrap_or_default()
}

/// Write the sysctls through `procfs`, the init's private procfs (see
/// procfs::private), never the "/proc" path, which in a joined mount
/// namespace is the container's.
pub fn apply(spec: &Spec, plan: &Plan, procfs: BorrowedFd<'_>) -> Result<()> {
    let map = sysctls(spec);
    if map.is_empty() {
        return Ok(());
    }
    validate(spec, plan)?;
    for (k, v) in &map {
        let sub = format!("sys/{}", k.replace('.', "/"));
        let mut f = crate::procfs::open_for_write(procfs, &sub)
            .map_err(|e| Error::Invalid(format!("sysctl {k:?}: {e}")))?;
        f.write_all(v.as_bytes())
            .ctx(|| format!("sysctl {k}={v}"))?;
    }
    Ok(())
}
