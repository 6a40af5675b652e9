//! Fields of config.json that berth does not implement yet. Each one that
//! is set is an error naming it: dropping it silently would weaken the
//! isolation the user asked for.

use oci_spec::runtime::Spec;

use crate::error::{Error, Result};

/// What the spec requires of any config, checked before anything is made.
pub fn required(spec: &Spec) -> Result<()> {
    // "MUST be in SemVer v2.0.0 format"; berth implements the 1.x series.
    let v = spec.version();
    let core = v.split(['-', '+']).next().unwrap_or_default();
    let nums: Vec<&str> = core.split('.').collect();
    let semver = nums.len() == 3
        && nums
            .iter()
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if !semver || nums[0] != "1" {
        return Err(Error::field(
            "ociVersion",
            format!("{v:?} is not a 1.x SemVer version"),
        ));
    }
    if let Some(p) = spec.process() {
        if !p.cwd().is_absolute() {
            return Err(Error::field(
                "process.cwd",
                format!("{:?} must be an absolute path", p.cwd()),
            ));
        }
    }
    Ok(())
}

pub fn unsupported(spec: &Spec) -> Result<()> {
    crate::lsm::check(spec)?;
    // Refused here rather than in the init, so nothing is made first.
    let new_mntns = spec.linux().as_ref().is_some_and(|l| {
        l.namespaces().iter().flatten().any(|n| {
            n.typ() == oci_spec::runtime::LinuxNamespaceType::Mount
                && n.path().as_ref().is_none_or(|p| p.as_os_str().is_empty())
        })
    });
    crate::rootfs::check_needs_mntns(spec, new_mntns)?;
    crate::netdev::validate(spec)?;
    let mut bad: Vec<&str> = Vec::new();
    if let Some(p) = spec.process() {
        // Used by `exec` only (the spec: not for the init), checked here
        // so a bad list fails at create, not at the first exec.
        if let Some(a) = p.exec_cpu_affinity() {
            crate::placement::check_affinity(a)?;
        }
    }
    if let Some(l) = spec.linux() {
        if let Some(s) = l.seccomp() {
            crate::seccomp::validate(s)?;
        }
        if l.intel_rdt().is_some() {
            // Say which is missing: berth's support, or the host's as well.
            if !resctrl_mounted() {
                return Err(Error::field(
                    "linux.intelRdt",
                    "this host has no Intel RDT (no resctrl filesystem at /sys/fs/resctrl)",
                ));
            }
            bad.push("linux.intelRdt");
        }
        if let Some(m) = l.memory_policy() {
            crate::placement::check_mempolicy(m)?;
        }
    }
    match bad.first() {
        Some(f) => Err(Error::Unsupported((*f).to_string())),
        None => Ok(()),
    }
}

fn resctrl_mounted() -> bool {
    const RDTGROUP_SUPER_MAGIC: nix::sys::statfs::FsType =
        nix::sys::statfs::FsType(0x0765_5821 as _);
    nix::sys::statfs::statfs("/sys/fs/resctrl")
        .is_ok_and(|s| s.filesystem_type() == RDTGROUP_SUPER_MAGIC)
}
