//! Linux security modules: the AppArmor profile and SELinux label a
//! container process gets on execve, and the SELinux context of the
//! filesystems berth mounts for it.
//!
//! Without the LSM on the host, berth does what the peers do (checked
//! against runc 1.1.5 and crun 1.8.1 on this VM, and their sources):
//! - `process.apparmorProfile`: an error naming the field (runc fails when the
//!   kernel rejects the attr write; berth says why before anything is made).
//! - `process.selinuxLabel`: an error naming the field, as runc's config
//!   validator ("selinux label is specified in config, but selinux is
//!   disabled or not supported") and crun both refuse it.
//! - `linux.mountLabel`: ignored, as crun does (its add_selinux_mount_label
//!   only adds `context=` where SELinux is enabled) and as the runtime-tools
//!   linux_mount_label test expects; runc 1.1.5 instead passes `context=` to
//!   the kernel and fails with EINVAL, which berth does not follow.

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};

use oci_spec::runtime::{Process, Spec};

/// Whether berth can apply an AppArmor profile / SELinux label at all (the
/// features.md meaning of "enabled"): true, the host decides per container.
pub const APPARMOR: bool = true;
pub const SELINUX: bool = true;

#[derive(Debug, thiserror::Error)]
pub enum LsmError {
    #[error("{field} {value:?} is set but {lsm} is not enabled on this host")]
    NotEnabled {
        field: &'static str,
        value: String,
        lsm: &'static str,
    },
    #[error("{field} {value:?}: {op}: {reason}")]
    Apply {
        field: &'static str,
        value: String,
        op: String,
        reason: String,
    },
}

/// AppArmor is loaded and enforcing profiles (the module's own switch;
/// securityfs need not be mounted for the attr interface to work).
pub fn apparmor_enabled() -> bool {
    std::fs::read("/sys/module/apparmor/parameters/enabled").is_ok_and(|b| b.starts_with(b"Y"))
}

/// SELinux is enabled when selinuxfs is mounted where libselinux looks.
pub fn selinux_enabled() -> bool {
    const SELINUX_MAGIC: libc::c_long = 0xf97c_ff8c;
    nix::sys::statfs::statfs("/sys/fs/selinux")
        .is_ok_and(|s| s.filesystem_type().0 as libc::c_long == SELINUX_MAGIC)
}

fn set(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// Refuse what this host cannot apply, before anything is created.
pub fn check_process(p: &Process) -> Result<(), LsmError> {
    if let Some(v) = set(p.apparmor_profile()) {
        if !apparmor_enabled() {
            return Err(not_enabled("process.apparmorProfile", v, "AppArmor"));
        }
    }
    if let Some(v) = set(p.selinux_label()) {
        if !selinux_enabled() {
            return Err(not_enabled("process.selinuxLabel", v, "SELinux"));
        }
    }
    Ok(())
}

pub fn check(spec: &Spec) -> Result<(), LsmError> {
    spec.process().as_ref().map_or(Ok(()), check_process)
}

fn not_enabled(field: &'static str, v: &str, lsm: &'static str) -> LsmError {
    LsmError::NotEnabled {
        field,
        value: v.to_string(),
        lsm,
    }
}

/// The `context=` mount data for `linux.mountLabel`, or None where it is
/// unset or SELinux is off.
pub fn mount_context(spec: &Spec) -> Option<String> {
    let label = set(spec.linux().as_ref()?.mount_label())?;
    selinux_enabled().then(|| format!("context=\"{label}\""))
}

/// Ask the kernel to switch the calling process to its profile and label
/// at the next execve. Written through a private procfs, so a container's
/// /proc (absent, or overmounted) cannot redirect the write.
pub fn apply_on_exec(p: &Process) -> Result<(), LsmError> {
    let aa = set(p.apparmor_profile());
    let se = set(p.selinux_label());
    if aa.is_none() && se.is_none() {
        return Ok(());
    }
    // Checked again: `exec` reaches here without create's validation.
    check_process(p)?;
    let procfs = crate::procfs::private().map_err(|e| LsmError::Apply {
        field: if aa.is_some() {
            "process.apparmorProfile"
        } else {
            "process.selinuxLabel"
        },
        value: aa.or(se).unwrap_or_default().to_string(),
        op: "open procfs".into(),
        reason: e.to_string(),
    })?;
    if let Some(profile) = aa {
        // The LSM-specific file exists on kernels with LSM stacking; the
        // shared one is what older kernels have.
        let cmd = format!("exec {profile}");
        write_attr(procfs.as_fd(), &["attr/apparmor/exec", "attr/exec"], &cmd)
            .map_err(|(op, reason)| apply_err("process.apparmorProfile", profile, op, reason))?;
    }
    if let Some(label) = se {
        write_attr(procfs.as_fd(), &["attr/exec"], label)
            .map_err(|(op, reason)| apply_err("process.selinuxLabel", label, op, reason))?;
    }
    Ok(())
}

fn apply_err(field: &'static str, v: &str, op: String, reason: String) -> LsmError {
    LsmError::Apply {
        field,
        value: v.to_string(),
        op,
        reason,
    }
}

/// Write `value` to the first of `paths` (under /proc/self) that exists.
fn write_attr(procfs: BorrowedFd<'_>, paths: &[&str], value: &str) -> Result<(), (String, String)> {
    let mut last = None;
    for path in paths {
        match crate::procfs::open_for_write(procfs, &format!("self/{path}")) {
            Ok(mut f) => {
                return f
                    .write_all(value.as_bytes())
                    .map_err(|e| (format!("write /proc/self/{path}"), e.to_string()));
            }
            Err(e) => last = Some((format!("open /proc/self/{path}"), e.to_string())),
        }
    }
    Err(last.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_context_needs_selinux() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "linux": {"mountLabel": "system_u:object_r:container_file_t:s0"}
        }))
        .unwrap();
        let want = selinux_enabled()
            .then(|| "context=\"system_u:object_r:container_file_t:s0\"".to_string());
        assert_eq!(mount_context(&spec), want);
    }
}
