//! Where a container process runs and allocates: `process.execCPUAffinity`
//! (sched_setaffinity) and `linux.memoryPolicy` (set_mempolicy).

use oci_spec::runtime::{
    ExecCPUAffinity, LinuxMemoryPolicy, MemoryPolicyFlagType as Fl, MemoryPolicyModeType as M,
};

use crate::error::{Error, Result};

/// Highest CPU / NUMA node number accepted: glibc's CPU_SETSIZE, and
/// well above any kernel's MAX_NUMNODES.
const MAX_BITS: usize = 1024;
const WORDS: usize = MAX_BITS / 64;

/// The kernel's modes (uapi mempolicy.h) for each OCI name; features
/// reports this table.
pub const MODES: &[(M, i32)] = &[
    (M::MpolDefault, 0),
    (M::MpolPreferred, 1),
    (M::MpolBind, 2),
    (M::MpolInterleave, 3),
    (M::MpolLocal, 4),
    (M::MpolPreferredMany, 5),
    (M::MpolWeightedInterleave, 6),
];
pub const FLAGS: &[(Fl, i32)] = &[
    (Fl::MpolFNumaBalancing, 1 << 13),
    (Fl::MpolFRelativeNodes, 1 << 14),
    (Fl::MpolFStaticNodes, 1 << 15),
];

/// Parse a kernel list ("0-3,7") into a bitmask.
fn parse_list(s: &str, field: &str) -> Result<[u64; WORDS]> {
    let bad = |why: &str| Error::field(field, format!("{s:?}: {why}"));
    let mut mask = [0u64; WORDS];
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let num = |n: &str| -> Result<usize> {
            let v: usize = n
                .trim()
                .parse()
                .map_err(|_| bad("want a list like 0-3,7"))?;
            if v >= MAX_BITS {
                return Err(bad(&format!("{v} is above {}", MAX_BITS - 1)));
            }
            Ok(v)
        };
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(part)?, num(part)?),
        };
        if lo > hi {
            return Err(bad(&format!("range {part} is reversed")));
        }
        for i in lo..=hi {
            mask[i / 64] |= 1 << (i % 64);
        }
    }
    if mask.iter().all(|&w| w == 0) {
        return Err(bad("the list is empty"));
    }
    Ok(mask)
}

fn set_affinity(list: &str, field: &str) -> Result<()> {
    let mask = parse_list(list, field)?;
    let mut set = nix::sched::CpuSet::new();
    for i in (0..MAX_BITS).filter(|&i| mask[i / 64] & (1 << (i % 64)) != 0) {
        set.set(i)
            .map_err(|e| Error::field(field, format!("{list:?}: cpu {i}: {e}")))?;
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .map_err(|e| Error::field(field, format!("{list:?}: sched_setaffinity: {e}")))
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.trim().is_empty())
}

/// Check both lists before anything is started.
pub fn check_affinity(a: &ExecCPUAffinity) -> Result<()> {
    if let Some(l) = non_empty(a.initial()) {
        parse_list(l, "process.execCPUAffinity.initial")?;
    }
    if let Some(l) = non_empty(a.cpu_affinity_final()) {
        parse_list(l, "process.execCPUAffinity.final")?;
    }
    Ok(())
}

/// The runtime side, before the process enters the container's cgroup:
/// berth pins itself, so the child it clones starts there.
pub fn apply_initial(a: &ExecCPUAffinity) -> Result<()> {
    match non_empty(a.initial()) {
        Some(l) => set_affinity(l, "process.execCPUAffinity.initial"),
        None => Ok(()),
    }
}

/// In the process once it is in the cgroup. Without a final list the
/// kernel decides (the spec says the runtime SHOULD NOT change it).
pub fn apply_final(a: &ExecCPUAffinity) -> Result<()> {
    match non_empty(a.cpu_affinity_final()) {
        Some(l) => set_affinity(l, "process.execCPUAffinity.final"),
        None => Ok(()),
    }
}

/// The set_mempolicy(2) arguments for `p`, checked.
fn mempolicy_args(p: &LinuxMemoryPolicy) -> Result<(i32, Option<[u64; WORDS]>)> {
    let field = "linux.memoryPolicy";
    let mode = MODES
        .iter()
        .find(|(m, _)| *m == p.mode())
        .map(|(_, v)| *v)
        .expect("MODES lists every OCI mode");
    let nodes = non_empty(p.nodes());
    let takes_nodes = !matches!(p.mode(), M::MpolDefault | M::MpolLocal);
    let mask = match (takes_nodes, nodes) {
        (true, Some(n)) => Some(parse_list(n, &format!("{field}.nodes"))?),
        (true, None) => {
            return Err(Error::Invalid(format!(
                "{field}.nodes is required for mode {}",
                p.mode()
            )))
        }
        (false, Some(_)) => {
            return Err(Error::Invalid(format!(
                "{field}.nodes must be empty for mode {}",
                p.mode()
            )))
        }
        (false, None) => None,
    };
    let mut flags = 0;
    for f in p.flags().iter().flatten() {
        flags |= FLAGS
            .iter()
            .find(|(k, _)| k == f)
            .map(|(_, v)| *v)
            .expect("FLAGS lists every OCI flag");
    }
    Ok((mode | flags, mask))
}

pub fn check_mempolicy(p: &LinuxMemoryPolicy) -> Result<()> {
    mempolicy_args(p).map(drop)
}

/// Set the calling process's NUMA policy; it survives execve.
pub fn apply_mempolicy(p: &LinuxMemoryPolicy) -> Result<()> {
    let (mode, mask) = mempolicy_args(p)?;
    if let Err(e) = crate::sys::proc::set_mempolicy(mode, mask.as_ref()) {
        return Err(Error::Invalid(format!(
            "linux.memoryPolicy {} {:?}: set_mempolicy: {e}",
            p.mode(),
            p.nodes().as_deref().unwrap_or("")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists() {
        let m = parse_list("0-3,7", "f").unwrap();
        assert_eq!(m[0], 0b1000_1111);
        assert_eq!(parse_list("64", "f").unwrap()[1], 1);
        for bad in ["", ",", "3-1", "x", "1024", "1,,a", "-1"] {
            assert!(parse_list(bad, "f").is_err(), "{bad:?} accepted");
        }
    }
}
