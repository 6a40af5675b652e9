//! Creating the container init.
//!
//! berth never re-executes itself: `spawn` clones the init straight from the
//! CLI process with clone3 (a fork, as the CLI is single-threaded), so the
//! child already holds the parsed config and only the kernel work remains.
//! The child is born in its cgroup2 cgroup (CLONE_INTO_CGROUP) and moves
//! itself into its v1 ones first thing (cgroups::Joiner); where that fails
//! the parent moves it, before the child needs its cgroup.
//!
//! CVE-2019-5736 (overwriting the host runtime through /proc/PID/exe): the
//! only berth process a container can see is its own init before execve,
//! and init marks itself non-dumpable first thing (an ordinary user's init
//! right after berth has written its id maps through its /proc files),
//! which denies every /proc/PID/exe and ptrace access to it from container
//! processes. After
//! execve /proc/PID/exe is the user's binary. That costs one prctl, where
//! copying the binary to a memfd on every call (crun) costs a copy of ~1 MB,
//! and runc's overlayfs sealing costs a mount.

mod apply;
mod attach;
pub mod exec;
mod init;
pub mod sync;

use std::ffi::CString;
use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::Spec;

use crate::cgroups::{Cgroup, Driver, Layout};
use crate::error::{Context, Error, Result};
use crate::namespaces::{self, Plan};
use sync::Msg;

/// Everything init needs; init reads it from its copy of our memory.
pub struct Launch<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub cgroup: &'a Cgroup,
    pub fifo: &'a Path,
    pub console_socket: Option<&'a Path>,
    pub preserve_fds: i32,
    pub no_pivot: bool,
    /// Join a fresh session keyring, so the container cannot read the
    /// caller's keys (runc's default; --no-new-keyring turns it off).
    pub new_keyring: bool,
}

/// Keep berth's own fds out of the range `--preserve-fds` hands to the
/// container. A number in 3..3+n that the caller left closed would be taken
/// by the next fd berth opens (the state directory's lock, say), and the
/// init would keep it across execve: then `start` waits on that lock
/// forever. Each hole gets a close-on-exec /dev/null, so the container still
/// sees exactly the fds the caller passed. Call it before opening anything
/// that must outlive the call.
pub fn reserve_preserved_fds(n: i32) -> Result<()> {
    for fd in 3..3i32.saturating_add(n.max(0)) {
        crate::rootfs::sys::plug_fd(fd).ctx(|| format!("reserve fd {fd} for --preserve-fds"))?;
    }
    Ok(())
}

#[repr(C)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Fork with namespace flags through clone3. Returns 0 in the child.
pub(crate) fn clone3(flags: CloneFlags, cgroup_fd: Option<RawFd>) -> Result<i32> {
    let mut args = CloneArgs {
        flags: flags.bits() as u32 as u64,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: 0,
    };
    if let Some(fd) = cgroup_fd {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    // SAFETY: clone3 without CLONE_VM behaves as fork; the CLI is
    // single-threaded, so the child's copy of the heap and locks is consistent.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error())
            .ctx(|| format!("clone3 with namespaces {flags:?}"));
    }
    Ok(r as i32)
}

/// clone3 into the joiner's cgroup2 directory, if it has one. A hybrid
/// host's cgroup2 mount may refuse `CLONE_INTO_CGROUP` (not the default
/// hierarchy in berth's view): then the parent writes the pid instead. On
/// pure v2 the error stands, as the cgroup itself is the problem.
pub(crate) fn clone_joining(
    flags: CloneFlags,
    cgroup: &Cgroup,
    joiner: &mut crate::cgroups::Joiner,
) -> Result<i32> {
    // A cgroup in a user's systemd instance may be out of reach from the
    // caller's own cgroup (no write access to the common ancestor): then
    // the parent asks systemd to move the child (Cgroup::add_pid).
    let retry = cgroup.layout() != Layout::V2 || cgroup.driver() == Driver::SystemdUser;
    match clone3(flags, joiner.clone_into_fd()) {
        Err(_) if joiner.clone_into_fd().is_some() && retry => {
            joiner.drop_clone_into();
            clone3(flags, None)
        }
        r => r,
    }
}

/// An init that is set up and holds on to its parent-death signal (and
/// waits on its channel) until [`Pending::commit`]: until the state record
/// naming it is saved, berth's death is the init's death.
pub struct Pending {
    pub pid: i32,
    chan: sync::Channel,
}

impl Pending {
    /// The state record is saved: let the init outlive berth, and wait
    /// until it has let go of its parent-death signal.
    pub fn commit(self) -> Result<()> {
        let r = self.chan.send(&Msg::Commit).and_then(|()| self.chan.recv());
        match r {
            Ok(Some(Msg::Detached)) => Ok(()),
            Ok(Some(Msg::Failed(e))) => Err(Error::Init(e)),
            Ok(_) => Err(Error::Init("container init exited during create".into())),
            Err(e) => Err(self.chan.failure_sent().map_or(e, Error::Init)),
        }
    }
}

/// Start the container init and drive it until it waits on exec.fifo.
/// `hook_state` renders the state JSON for prestart/createRuntime hooks.
/// On error the init is killed and reaped; the caller removes the cgroup.
pub fn spawn(l: &Launch, hook_state: &dyn Fn(i32) -> Vec<u8>) -> Result<Pending> {
    let mut plan = Plan::from_spec(l.spec)?;
    if let Some((fd, path)) = plan.take_pid_join() {
        namespaces::setns(&fd, CloneFlags::CLONE_NEWPID, &path)?;
    }
    let process = l
        .spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::Invalid("process property must not be empty".into()))?;
    let console = match (process.terminal().unwrap_or(false), l.console_socket) {
        (true, Some(p)) => Some(crate::console::connect(p)?),
        (true, None) => {
            return Err(Error::Invalid(
                "process.terminal is true but no --console-socket was given".into(),
            ))
        }
        (false, _) => None,
    };
    let fifo = open_path(l.fifo)?;
    // Made here, in the host user namespace; the init inherits the fds.
    let idmapped = crate::rootfs::idmapped_trees(l.spec, l.bundle)?;
    let (parent, child) = sync::pair()?;
    let mut joiner = l.cgroup.joiner(None);
    let dumpable_until_go =
        plan.new.contains(CloneFlags::CLONE_NEWUSER) && !crate::rootless::is_euid_root();
    crate::interrupt::step("create:clone")?;
    let pid = clone_joining(plan.clone_flags(), l.cgroup, &mut joiner)
        .map_err(|e| explain_clone_error(e, &plan))?;
    if pid == 0 {
        drop(parent);
        init::run(init::Ctx {
            l,
            plan: &plan,
            chan: child,
            fifo,
            console,
            idmapped: std::cell::RefCell::new(idmapped),
            dumpable_until_go,
            joiner: &joiner,
        });
    }
    drop(joiner);
    drop(idmapped);
    drop(child);
    drop(console);
    drop(fifo);
    let fail = |e: Error| {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        let _ = waitpid(Pid::from_raw(pid), None);
        e
    };
    drive(l, &plan, &parent, pid, hook_state)
        .map_err(|e| match e {
            // The init's own message beats the broken pipe it left behind.
            Error::Init(_) | Error::Hook(_) | Error::Interrupted(_) => e,
            e => parent.failure_sent().map_or(e, Error::Init),
        })
        .map_err(fail)?;
    Ok(Pending { pid, chan: parent })
}

/// A refused new user namespace names the sysctl that refuses it, if any.
fn explain_clone_error(e: Error, plan: &Plan) -> Error {
    if !plan.new.contains(CloneFlags::CLONE_NEWUSER) {
        return e;
    }
    match crate::userns::unavailable_reason(Path::new("/proc/sys")) {
        Some(why) => Error::Rootless(format!("{e}: {why}")),
        None => e,
    }
}

/// linux.netDevices go into the init's network namespace: the new one it
/// was cloned with, or the one it will join by path.
fn move_net_devices(l: &Launch, plan: &Plan, pid: i32) -> Result<()> {
    if l.spec
        .linux()
        .as_ref()
        .and_then(|x| x.net_devices().as_ref())
        .is_none_or(|d| d.is_empty())
    {
        return Ok(());
    }
    if plan.new.contains(CloneFlags::CLONE_NEWNET) {
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
            .ctx(|| format!("open the network namespace of pid {pid}"))?;
        return crate::netdev::move_into(l.spec, ns.as_fd());
    }
    match plan
        .join
        .iter()
        .find(|(f, ..)| *f == CloneFlags::CLONE_NEWNET)
    {
        Some((_, fd, _)) => crate::netdev::move_into(l.spec, fd.as_fd()),
        None => Err(Error::Invalid(
            "linux.netDevices needs a network namespace".into(),
        )),
    }
}

fn drive(
    l: &Launch,
    plan: &Plan,
    chan: &sync::Channel,
    pid: i32,
    hook_state: &dyn Fn(i32) -> Vec<u8>,
) -> Result<()> {
    if plan.new.contains(CloneFlags::CLONE_NEWUSER) {
        crate::userns::write_maps(l.spec, pid)?;
    }
    move_net_devices(l, plan, pid)?;
    crate::interrupt::step("create:go")?;
    chan.send(&Msg::Go(pid))?;
    loop {
        let (msg, fd) = chan.recv_fd()?;
        match msg {
            // Init could not join its cgroup by itself (see cgroups::Joiner).
            // Moving another task between v1 cgroups waits for an RCU grace
            // period (several ms here); init sets up its rootfs meanwhile and
            // waits for InCgroup only before it needs its cgroup (init.rs).
            Some(Msg::JoinCgroup) => {
                // Init may already have failed and exited, taking its pid out
                // of reach: its own error is the one `spawn` reports then.
                l.cgroup.add_pid(pid)?;
                crate::interrupt::step("create:in-cgroup")?;
                chan.send(&Msg::InCgroup)?;
            }
            Some(Msg::SeccompFd) => {
                let fd = fd.ok_or_else(|| Error::Init("sync: seccomp fd missing".into()))?;
                let s = l.spec.linux().as_ref().and_then(|x| x.seccomp().as_ref());
                let s = s.ok_or_else(|| Error::Init("sync: seccomp fd without profile".into()))?;
                let state = crate::container::hook_state(l, pid, "creating");
                crate::seccomp::send_to_agent(s, &state, pid, fd.as_fd())?;
            }
            Some(Msg::RunHooks) => {
                let hooks = l.spec.hooks().as_ref();
                let state = hook_state(pid);
                if let Some(h) = hooks.and_then(|h| h.prestart().as_ref()) {
                    crate::hooks::run_all("prestart", h, &state)?;
                }
                if let Some(h) = hooks.and_then(|h| h.create_runtime().as_ref()) {
                    crate::hooks::run_all("createRuntime", h, &state)?;
                }
                crate::interrupt::step("create:hooks")?;
                chan.send(&Msg::HooksDone)?;
            }
            Some(Msg::Ready) => return Ok(()),
            Some(Msg::Failed(e)) => return Err(Error::Init(e)),
            Some(m) => return Err(Error::Init(format!("sync: unexpected {m:?}"))),
            None => {
                return Err(Error::Init(
                    "container init exited during setup".to_string(),
                ))
            }
        }
    }
}

fn open_path(p: &Path) -> Result<OwnedFd> {
    let c = CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::Invalid(format!("path with NUL: {}", p.display())))?;
    // SAFETY: open(2) with a valid C string.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| format!("open {}", p.display()));
    }
    // SAFETY: fresh fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
