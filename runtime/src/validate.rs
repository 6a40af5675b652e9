//! Fields of config.json that berth does not implement yet. Each one that
//! is set is an error naming it: dropping it silently would weaken the
//! isolation the user asked for.

use oci_spec::runtime::Spec;

use crate::error::{Error, Result};

pub fn unsupported(spec: &Spec) -> Result<()> {
    let mut bad: Vec<&str> = Vec::new();
    if let Some(p) = spec.process() {
        if p.apparmor_profile().as_ref().is_some_and(|s| !s.is_empty()) {
            bad.push("process.apparmorProfile");
        }
        if p.selinux_label().as_ref().is_some_and(|s| !s.is_empty()) {
            bad.push("process.selinuxLabel");
        }
        if p.io_priority().is_some() {
            bad.push("process.ioPriority");
        }
        if p.scheduler().is_some() {
            bad.push("process.scheduler");
        }
        if p.exec_cpu_affinity().is_some() {
            bad.push("process.execCPUAffinity");
        }
    }
    if let Some(l) = spec.linux() {
        if let Some(s) = l.seccomp() {
            crate::seccomp::validate(s)?;
        }
        if l.intel_rdt().is_some() {
            bad.push("linux.intelRdt");
        }
        if l.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
            bad.push("linux.netDevices");
        }
        if l.memory_policy().is_some() {
            bad.push("linux.memoryPolicy");
        }
        if l.mount_label().as_ref().is_some_and(|s| !s.is_empty()) {
            bad.push("linux.mountLabel");
        }
    }
    match bad.first() {
        Some(f) => Err(Error::Unsupported((*f).to_string())),
        None => Ok(()),
    }
}
