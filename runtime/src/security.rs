//! Process credentials and limits applied by init just before exec:
//! rlimits, user and groups, capabilities, no_new_privs, oom_score_adj.

use std::str::FromStr;

use caps::{CapSet, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities, PosixRlimit, PosixRlimitType, Process};

use crate::error::{Context, Error, Result};

fn rlimit_resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

pub fn set_rlimits(limits: &[PosixRlimit]) -> Result<()> {
    let mut seen = Vec::new();
    for l in limits {
        if seen.contains(&l.typ()) {
            return Err(Error::Invalid(format!(
                "process.rlimits: duplicate type {:?}",
                l.typ()
            )));
        }
        seen.push(l.typ());
        let r = libc::rlimit {
            rlim_cur: l.soft(),
            rlim_max: l.hard(),
        };
        // SAFETY: setrlimit with a valid struct.
        if unsafe { libc::setrlimit(rlimit_resource(l.typ()), &r) } != 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| {
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
/// (rootfs::private_procfs), never the /proc path: in a mount namespace the
/// container joins, /proc is the container's to fake, and a symlink there
/// would turn this into a write to any file it names (CVE-2025-52881).
pub fn write_oom_score_adj(procfs: std::os::fd::BorrowedFd<'_>, v: i32) -> Result<()> {
    crate::rootfs::write_proc_self(procfs, "oom_score_adj", v.to_string().as_bytes())
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
    // SAFETY: prctl with constant arguments.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
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
    // SAFETY: as above.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
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
    // SAFETY: prctl with constant arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "set no_new_privs");
    }
    Ok(())
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
        return Err(Error::Invalid(format!(
            "process.ioPriority.priority {prio} is not in 0..=7"
        )));
    }
    const IOPRIO_WHO_PROCESS: i64 = 1;
    // SAFETY: ioprio_set with scalar arguments.
    let r = unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0,
            (class << 13) | prio,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "set process.ioPriority");
    }
    Ok(())
}

#[repr(C)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
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
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy,
        flags,
        nice: s.nice().unwrap_or(0),
        priority: s.priority().unwrap_or(0).max(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
    };
    // SAFETY: sched_setattr on ourselves with a fully initialised struct.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    if r != 0 {
        return Err(std::io::Error::last_os_error())
            .ctx(|| format!("set process.scheduler {:?}", s.policy()));
    }
    Ok(())
}
