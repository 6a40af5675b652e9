//! Process credentials and limits applied by init just before exec:
//! rlimits, user and groups, capabilities, no_new_privs, oom_score_adj.

use std::str::FromStr;

use caps::{CapSet, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities, PosixRlimit, PosixRlimitType, Process};

use nix::sys::prctl;
use nix::sys::resource::{setrlimit, Resource};

use crate::error::{Context, Error, Result};
use crate::sys::{self, proc::SchedAttr};

fn rlimit_resource(t: PosixRlimitType) -> Resource {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => Resource::RLIMIT_CPU,
        RlimitFsize => Resource::RLIMIT_FSIZE,
        RlimitData => Resource::RLIMIT_DATA,
        RlimitStack => Resource::RLIMIT_STACK,
        RlimitCore => Resource::RLIMIT_CORE,
        RlimitRss => Resource::RLIMIT_RSS,
        RlimitNproc => Resource::RLIMIT_NPROC,
        RlimitNofile => Resource::RLIMIT_NOFILE,
        RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        RlimitAs => Resource::RLIMIT_AS,
        RlimitLocks => Resource::RLIMIT_LOCKS,
        RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        RlimitNice => Resource::RLIMIT_NICE,
        RlimitRtprio => Resource::RLIMIT_RTPRIO,
        RlimitRttime => Resource::RLIMIT_RTTIME,
    }
}

pub fn set_rlimits(limits: &[PosixRlimit]) -> Result<()> {
    let mut seen = Vec::new();
    for l in limits {
        if seen.contains(&l.typ()) {
            return Err(Error::field(
                "process.rlimits",
                format!("duplicate type {:?}", l.typ()),
            ));
        }
        seen.push(l.typ());
        if let Err(e) = setrlimit(rlimit_resource(l.typ()), l.soft(), l.hard()) {
            return Err(e).ctx(|| {
                format!(
                    "setrlimit {:?} soft={} hard={}",
                    l.typ(),
                    l.soft(),
                    l.hard()
                )
            });
        }
    }
    Ok(())
}

/// Written through `procfs`, the init's own procfs instance
/// (procfs::private), never the /proc path: in a mount namespace the
/// container joins, /proc is the container's to fake, and a symlink there
/// would turn this into a write to any file it names (CVE-2025-52881).
pub fn write_oom_score_adj(procfs: std::os::fd::BorrowedFd<'_>, v: i32) -> Result<()> {
    crate::procfs::write_self(procfs, "oom_score_adj", v.to_string().as_bytes())
        .ctx(|| format!("set oom_score_adj {v}"))
}

fn to_caps(set: &Option<Capabilities>) -> Result<CapsHashSet> {
    let mut out = CapsHashSet::new();
    for c in set.iter().flatten() {
        // oci-spec serialises a capability as its "CAP_*" name, which is also caps' name.
        let name = serde_json::to_value(c)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let cap = caps::Capability::from_str(&name)
            .map_err(|_| Error::Invalid(format!("unknown capability {name:?}")))?;
        out.insert(cap);
    }
    Ok(out)
}

fn setgroups_denied() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny")
}

/// Capability sets that are all present and empty. oci-spec's `Default`
/// fills every set, inheritable and ambient included, with runc's old
/// template (the CVE-2022-29162 mistake), so it must never stand for "none".
pub fn no_capabilities() -> LinuxCapabilities {
    let mut c = LinuxCapabilities::default();
    c.set_bounding(Some(Capabilities::new()));
    c.set_effective(Some(Capabilities::new()));
    c.set_permitted(Some(Capabilities::new()));
    c.set_inheritable(Some(Capabilities::new()));
    c.set_ambient(Some(Capabilities::new()));
    c
}

/// Switch to the process user and capability sets. The bounding set is
/// reduced first (that needs CAP_SETPCAP), KEEPCAPS lets the permitted set
/// survive setuid, and the final sets are installed after it.
pub fn apply_user_and_caps(p: &Process) -> Result<()> {
    let u = p.user();
    // No `capabilities` object means no capabilities at all, as in runc and
    // crun: a process must never keep root's full sets by omission.
    let empty = no_capabilities();
    let c = p.capabilities().as_ref().unwrap_or(&empty);
    let bounding = to_caps(c.bounding())?;
    let effective = to_caps(c.effective())?;
    let permitted = to_caps(c.permitted())?;
    let inheritable = to_caps(c.inheritable())?;
    let ambient = to_caps(c.ambient())?;
    for cap in caps::all() {
        if !bounding.contains(&cap) && caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) {
            caps::drop(None, CapSet::Bounding, cap)
                .map_err(|e| Error::Init(format!("drop bounding capability {cap}: {e}")))?;
        }
    }
    // Fails only where the securebits lock keepcaps, which then is what it must be.
    let _ = prctl::set_keepcaps(true);
    let groups: Vec<nix::unistd::Gid> = u
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| nix::unistd::Gid::from_raw(*g))
        .collect();
    match nix::unistd::setgroups(&groups) {
        Ok(()) => {}
        // A user namespace whose gid map an ordinary user wrote itself has
        // setgroups denied: nothing to set is fine (as runc), groups are not.
        Err(nix::errno::Errno::EPERM) if setgroups_denied() => {
            if !groups.is_empty() {
                return Err(Error::Rootless(
                    "process.user.additionalGids: setgroups is denied in this user namespace (a gid map of one id written without newgidmap); map the groups through /etc/subgid".into(),
                ));
            }
        }
        Err(e) => return Err(e).ctx(|| "setgroups"),
    }
    let gid = nix::unistd::Gid::from_raw(u.gid());
    nix::unistd::setresgid(gid, gid, gid).ctx(|| format!("setgid {}", u.gid()))?;
    let uid = nix::unistd::Uid::from_raw(u.uid());
    nix::unistd::setresuid(uid, uid, uid).ctx(|| format!("setuid {}", u.uid()))?;
    let _ = prctl::set_keepcaps(false);
    let set = |which, s: &CapsHashSet, name| {
        caps::set(None, which, s).map_err(|e| Error::Init(format!("set {name} capabilities: {e}")))
    };
    // Each capset call must keep effective ⊆ permitted, so shrink the
    // effective set before the permitted one.
    set(CapSet::Inheritable, &inheritable, "inheritable")?;
    set(CapSet::Effective, &effective, "effective")?;
    set(CapSet::Permitted, &permitted, "permitted")?;
    // The kernel raises an ambient capability only if it is also
    // permitted and inheritable. `runc spec` lists ambient caps that are
    // not inheritable, and runc warns and goes on there, so configs in
    // the wild depend on it: do the same.
    for cap in ambient {
        if let Err(e) = caps::raise(None, CapSet::Ambient, cap) {
            crate::logging::warn(&format!("cannot raise ambient capability {cap}: {e}"));
        }
    }
    Ok(())
}

pub fn set_no_new_privs() -> Result<()> {
    prctl::set_no_new_privs().ctx(|| "set no_new_privs")
}

/// process.ioPriority through ioprio_set(2) for this process.
pub fn set_io_priority(p: &oci_spec::runtime::LinuxIOPriority) -> Result<()> {
    use oci_spec::runtime::IOPriorityClass as C;
    let class: i64 = match p.class() {
        C::IoprioClassRt => 1,
        C::IoprioClassBe => 2,
        C::IoprioClassIdle => 3,
    };
    let prio = p.priority();
    if !(0..=7).contains(&prio) {
        return Err(Error::field(
            "process.ioPriority.priority",
            format!("{prio} is not in 0..=7"),
        ));
    }
    sys::proc::ioprio_set_self(class, prio).ctx(|| "set process.ioPriority")
}

/// process.scheduler through sched_setattr(2), which covers every policy
/// including SCHED_DEADLINE.
pub fn set_scheduler(s: &oci_spec::runtime::Scheduler) -> Result<()> {
    use oci_spec::runtime::LinuxSchedulerFlag as F;
    use oci_spec::runtime::LinuxSchedulerPolicy as P;
    let policy = match s.policy() {
        P::SchedOther => 0,
        P::SchedFifo => 1,
        P::SchedRr => 2,
        P::SchedBatch => 3,
        P::SchedIso => 4,
        P::SchedIdle => 5,
        P::SchedDeadline => 6,
    };
    let mut flags = 0u64;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            F::SchedResetOnFork => 0x01,
            F::SchedFlagReclaim => 0x02,
            F::SchedFlagDLOverrun => 0x04,
            F::SchedFlagKeepPolicy => 0x08,
            F::SchedFlagKeepParams => 0x10,
            F::SchedFlagUtilClampMin => 0x20,
            F::SchedFlagUtilClampMax => 0x40,
        };
    }
    let attr = SchedAttr {
        policy,
        flags,
        nice: s.nice().unwrap_or(0),
        priority: s.priority().unwrap_or(0).max(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
    };
    sys::proc::sched_setattr_self(&attr).ctx(|| format!("set process.scheduler {:?}", s.policy()))
}
