//! `berth exec`: a new process in a running container. berth joins the
//! container's pid namespace for its children, clones a child that joins
//! the container's cgroup by itself (cgroups::Joiner), and the child joins the other namespaces through the
//! init's pidfd in one setns call before applying the process config.

use std::fs;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::sched::CloneFlags;
use nix::sys::prctl;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{Linux, Process};

use super::sync::{self, Msg};
use crate::cgroups::Cgroup;
use crate::error::{Context, Error, Result};

/// What the exec'd process is and where it goes.
pub struct ExecLaunch<'a> {
    pub process: &'a Process,
    pub linux: Option<&'a Linux>,
    /// The container init.
    pub init_pid: i32,
    pub init_pidfd: BorrowedFd<'a>,
    pub cgroup: &'a Cgroup,
    /// A sub-cgroup of the container's to join (`--cgroup`).
    pub sub_cgroup: Option<&'a Path>,
    pub console_socket: Option<&'a Path>,
    pub preserve_fds: i32,
    /// The container's state JSON, for a seccomp notify agent.
    pub state: &'a [u8],
}

const NS: [(&str, CloneFlags); 8] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("mnt", CloneFlags::CLONE_NEWNS),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("net", CloneFlags::CLONE_NEWNET),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("time", crate::namespaces::CLONE_NEWTIME),
];

/// The namespaces in which the init differs from us: joining one we are
/// already in is refused by the kernel for user namespaces.
fn differing_namespaces(pid: i32) -> CloneFlags {
    let mut f = CloneFlags::empty();
    for (name, flag) in NS {
        let theirs = fs::metadata(format!("/proc/{pid}/ns/{name}")).map(|m| m.ino());
        let ours = fs::metadata(format!("/proc/self/ns/{name}")).map(|m| m.ino());
        if let (Ok(a), Ok(b)) = (theirs, ours) {
            if a != b {
                f |= flag;
            }
        }
    }
    f
}

fn setns_pidfd(pidfd: BorrowedFd, flags: CloneFlags) -> Result<()> {
    nix::sched::setns(pidfd, flags).ctx(|| format!("join the container's namespaces {flags:?}"))
}

/// Start the process; returns its host pid once execve has succeeded.
pub fn spawn(x: &ExecLaunch) -> Result<i32> {
    let mut flags = differing_namespaces(x.init_pid);
    if flags.contains(CloneFlags::CLONE_NEWPID) {
        // Joining a pid namespace takes CAP_SYS_ADMIN in our own user
        // namespace too, which an ordinary user has only in the container's:
        // berth joins that one first (it owns it, so this needs no privilege).
        if flags.contains(CloneFlags::CLONE_NEWUSER) && !crate::rootless::is_euid_root() {
            setns_pidfd(x.init_pidfd, CloneFlags::CLONE_NEWUSER)?;
            flags -= CloneFlags::CLONE_NEWUSER;
        }
        setns_pidfd(x.init_pidfd, CloneFlags::CLONE_NEWPID)?;
    }
    let console = match (x.process.terminal().unwrap_or(false), x.console_socket) {
        (true, Some(p)) => Some(crate::console::connect(p)?),
        (true, None) => {
            return Err(Error::field(
                "process.terminal",
                "a terminal needs --console-socket",
            ))
        }
        (false, _) => None,
    };
    if let Some(sub) = x.sub_cgroup {
        check_sub_cgroup(sub)?;
    }
    let mut joiner = x.cgroup.joiner(x.sub_cgroup);
    if let Some(a) = x.process.exec_cpu_affinity() {
        crate::placement::apply_initial(a)?;
    }
    let (parent, child) = sync::pair()?;
    crate::interrupt::step("exec:clone")?;
    let pid = super::clone_joining(CloneFlags::empty(), x.cgroup, &mut joiner)?;
    if pid == 0 {
        drop(parent);
        child_main(x, flags - CloneFlags::CLONE_NEWPID, child, console, &joiner);
    }
    drop(joiner);
    drop(child);
    drop(console);
    let result = (|| -> Result<i32> {
        crate::interrupt::step("exec:go")?;
        parent
            .send(&Msg::Go(pid))
            .map_err(|e| parent.failure_sent().map_or(e, Error::Exec))?;
        loop {
            match parent.recv_fd()? {
                // EOF without a complaint: the sync socket closed on execve.
                (None, _) => return Ok(pid),
                // The child could not join its cgroup by itself.
                (Some(Msg::JoinCgroup), _) => {
                    join_cgroup(x, pid)?;
                    parent.send(&Msg::InCgroup)?;
                }
                (Some(Msg::SeccompFd), Some(fd)) => {
                    let s = x.linux.and_then(|l| l.seccomp().as_ref());
                    let s =
                        s.ok_or_else(|| Error::Exec("sync: seccomp fd without profile".into()))?;
                    crate::seccomp::send_to_agent(s, x.state, pid, fd.as_fd())?;
                }
                (Some(Msg::Failed(e)), _) => return Err(Error::Exec(e)),
                (Some(m), _) => return Err(Error::Exec(format!("sync: unexpected {m:?}"))),
            }
        }
    })();
    if result.is_err() {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        let _ = waitpid(Pid::from_raw(pid), None);
    }
    result
}

fn check_sub_cgroup(sub: &Path) -> Result<()> {
    if sub.is_absolute() || sub.components().any(|c| c.as_os_str() == "..") {
        return Err(Error::option(
            "--cgroup",
            sub.display().to_string(),
            "must be a path below the container's cgroup",
        ));
    }
    Ok(())
}

fn join_cgroup(x: &ExecLaunch, pid: i32) -> Result<()> {
    match x.sub_cgroup {
        None => Ok(x.cgroup.add_pid(pid)?),
        Some(sub) => {
            for dir in x.cgroup.paths() {
                let procs = dir.join(sub).join("cgroup.procs");
                fs::write(&procs, pid.to_string())
                    .ctx(|| format!("join sub-cgroup {}", procs.display()))?;
            }
            Ok(())
        }
    }
}

fn child_main(
    x: &ExecLaunch,
    flags: CloneFlags,
    chan: sync::Channel,
    console: Option<OwnedFd>,
    joiner: &crate::cgroups::Joiner,
) -> ! {
    // See init::run for why; neither fails with these arguments.
    let _ = prctl::set_dumpable(false);
    let _ = prctl::set_pdeathsig(Signal::SIGKILL);
    // While single-threaded, as init does (see cgroups::Joiner).
    let in_cgroup = joiner.self_join();
    crate::interrupt::reset_in_child();
    let err = match child_setup(x, flags, &chan, console.as_ref(), in_cgroup) {
        Ok(prepared) => {
            // The caller may exit once we exec (-d).
            let _ = prctl::set_pdeathsig(None);
            super::apply::exec(&prepared, x.preserve_fds)
        }
        Err(e) => e,
    };
    let _ = chan.send(&Msg::Failed(err.child_report()));
    // Without running the parent's destructors.
    crate::sys::proc::exit_now(127)
}

fn child_setup(
    x: &ExecLaunch,
    flags: CloneFlags,
    chan: &sync::Channel,
    console: Option<&OwnedFd>,
    in_cgroup: bool,
) -> Result<super::apply::Prepared> {
    let _ = chan.expect_go()?;
    if !in_cgroup {
        chan.send(&Msg::JoinCgroup)?;
        chan.expect(Msg::InCgroup)?;
    }
    if let Some(a) = x.process.exec_cpu_affinity() {
        crate::placement::apply_final(a)?;
    }
    let mut keep: Vec<RawFd> = vec![chan.0.as_raw_fd(), x.init_pidfd.as_raw_fd()];
    keep.extend(console.map(|f| f.as_raw_fd()));
    super::apply::close_fds_except(3 + x.preserve_fds, &keep);
    if !flags.is_empty() {
        // One call joins them all, atomically; joining the mount namespace
        // also moves our root and cwd to the container's root.
        setns_pidfd(x.init_pidfd, flags)?;
    }
    if let Some(sock) = console {
        nix::unistd::setsid().ctx(|| "setsid")?;
        let size = x
            .process
            .console_size()
            .as_ref()
            .map(|b| (b.height(), b.width()));
        crate::console::setup(sock, size)?;
    }
    super::apply::prepare(x.process, x.linux, &mut |fd| {
        chan.send_fd(&Msg::SeccompFd, fd.as_fd())
    })
}
