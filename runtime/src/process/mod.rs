//! Creating the container init.
//!
//! berth never re-executes itself: `start` clones the init straight from the
//! CLI process with clone3 (a fork, as the CLI is single-threaded), so the
//! child already holds the parsed config and only the kernel work remains.
//! The child is born in its cgroup2 cgroup (CLONE_INTO_CGROUP) and moves
//! itself into its v1 ones first thing (cgroups::Joiner); where that fails
//! the parent moves it, before the child needs its cgroup. Where the v1
//! directories can be made after the clone (`Plan::unshare_early`), the
//! child unshares its costly namespaces meanwhile and joins them once it
//! has Go. Where clone3 is refused (an old kernel, an outer seccomp
//! profile) the child comes from clone(2) and the parent moves it into the
//! cgroup2 cgroup as well.
//!
//! CVE-2019-5736 (overwriting the host runtime through /proc/PID/exe):
//! init marks itself non-dumpable first thing (an ordinary user's init
//! right after berth has written its id maps through its /proc files),
//! which keeps other container processes out of its /proc/PID/exe and
//! ptrace. Its own execve can still load berth's image into the container
//! (a `#!/proc/self/exe` entrypoint), so the commands that clone inits run
//! from a sealed copy of the binary (crate::seal).

mod apply;
pub(crate) use apply::close_fds_except;
mod attach;
pub mod exec;
mod init;
pub mod sync;

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{ContainerState, Spec};

use crate::cgroups::{Cgroup, Driver, Hierarchies, Layout};
use crate::error::{Context, Error, Result};
use crate::namespaces::{self, Plan};
use crate::sys;
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

impl Launch<'_> {
    /// The state JSON given to the create-time hooks and the seccomp agent.
    pub fn hook_state(&self, pid: i32, status: ContainerState) -> Vec<u8> {
        let annotations = self.spec.annotations().as_ref();
        crate::hooks::state(self.id, status, pid, self.bundle, annotations)
    }
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
        sys::plug_fd(fd).ctx(|| format!("reserve fd {fd} for --preserve-fds"))?;
    }
    Ok(())
}

/// clone3 into the joiner's cgroup2 directory, if it has one. A hybrid
/// host's cgroup2 mount may refuse `CLONE_INTO_CGROUP` (not the default
/// hierarchy in berth's view): then the parent writes the pid instead. On
/// pure v2 the error stands, as the cgroup itself is the problem. Where
/// clone3 itself is refused (old kernel, outer seccomp profile) the child
/// comes from clone(2) and the parent writes the pid as well.
pub(crate) fn clone_joining(
    flags: CloneFlags,
    cgroup: &Cgroup,
    joiner: &mut crate::cgroups::Joiner,
) -> Result<i32> {
    // A cgroup in a user's systemd instance may be out of reach from the
    // caller's own cgroup (no write access to the common ancestor): then
    // the parent asks systemd to move the child (Cgroup::add_pid).
    let retry = cgroup.layout() != Layout::V2 || cgroup.driver() == Driver::SystemdUser;
    let cloned = match sys::clone::clone(flags, joiner.clone_into_fd()) {
        Err(_) if joiner.clone_into_fd().is_some() && retry => {
            joiner.drop_clone_into();
            sys::clone::clone(flags, None)
        }
        r => r,
    }
    .ctx(|| format!("clone with namespaces {flags:?}"))?;
    // Also in the child: born outside its cgroup2 cgroup, it must ask.
    if !cloned.in_cgroup {
        joiner.drop_clone_into();
    }
    Ok(cloned.pid)
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
    /// until it has let go of its parent-death signal, unless `wait` is
    /// false (the caller releases it from exec.fifo next and waits for that,
    /// which the init does only after letting go).
    pub fn commit(self, wait: bool) -> Result<()> {
        if !wait {
            return self.chan.send(&Msg::Commit);
        }
        let r = self.chan.send(&Msg::Commit).and_then(|()| self.chan.recv());
        match r {
            Ok(Some(Msg::Detached)) => Ok(()),
            Ok(Some(Msg::Failed(e))) => Err(Error::Init(e)),
            Ok(_) => Err(Error::Init("exited during create".into())),
            Err(e) => Err(self.chan.failure_sent().map_or(e, Error::Init)),
        }
    }
}

/// Clone the container init; [`Started::drive`] sets it up until it waits
/// on exec.fifo. On error the init is killed and reaped; the caller removes
/// the cgroup. With `plan.early` set (`Plan::unshare_early`) the cgroup's
/// v1 directories need not exist yet: berth makes them in between, while
/// init unshares its namespaces, and init joins them by path once it has
/// Go.
pub fn start<'a>(l: &'a Launch<'a>, mut plan: Plan) -> Result<Started<'a>> {
    if let Some((fd, path)) = plan.take_pid_join() {
        namespaces::setns(&fd, CloneFlags::CLONE_NEWPID, &path)?;
    }
    let process = l
        .spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::field("process", "must be set"))?;
    let console = match (process.terminal().unwrap_or(false), l.console_socket) {
        (true, Some(p)) => Some(crate::console::connect(p)?),
        (true, None) => {
            return Err(Error::field(
                "process.terminal",
                "is true but no --console-socket was given",
            ))
        }
        (false, _) => None,
    };
    let fifo = open_path(l.fifo)?;
    // Made here, in the host user namespace; the init inherits the fds.
    let idmapped = crate::rootfs::idmapped_trees(l.spec, l.bundle)?;
    let (parent, child) = sync::pair()?;
    let which = if plan.early.is_empty() {
        Hierarchies::All
    } else {
        Hierarchies::Cgroup2
    };
    let mut joiner = l.cgroup.joiner_of(None, which);
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
    Ok(Started {
        l,
        plan,
        chan: Some(parent),
        pid,
    })
}

/// A cloned init that waits for Go. Dropped before [`Started::drive`] has
/// handed it on, it is killed and reaped.
pub struct Started<'a> {
    l: &'a Launch<'a>,
    plan: Plan,
    /// Taken by a successful drive, with the init, into [`Pending`].
    chan: Option<sync::Channel>,
    pub pid: i32,
}

impl Started<'_> {
    /// Let the init go on, and serve it until it waits on exec.fifo.
    pub fn drive(mut self) -> Result<Pending> {
        let chan = self.chan.as_ref().expect("driven once");
        drive(self.l, &self.plan, chan, self.pid).map_err(|e| match e {
            // The init's own message beats the broken pipe it left behind.
            Error::Init(_) | Error::Hook(_) | Error::Interrupted(_) => e,
            e => chan.failure_sent().map_or(e, Error::Init),
        })?;
        let chan = self.chan.take().expect("driven once");
        Ok(Pending {
            pid: self.pid,
            chan,
        })
    }
}

impl Drop for Started<'_> {
    fn drop(&mut self) {
        if self.chan.is_some() {
            let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(self.pid), None);
        }
    }
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
        None => Err(Error::field(
            "linux.netDevices",
            "needs a network namespace",
        )),
    }
}

fn drive(l: &Launch, plan: &Plan, chan: &sync::Channel, pid: i32) -> Result<()> {
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
                // of reach: its own error is the one `drive` reports then.
                l.cgroup.add_pid(pid)?;
                crate::interrupt::step("create:in-cgroup")?;
                chan.send(&Msg::InCgroup)?;
            }
            Some(Msg::SeccompFd) => {
                let fd = fd.ok_or_else(|| Error::Init("sync: seccomp fd missing".into()))?;
                let s = l.spec.linux().as_ref().and_then(|x| x.seccomp().as_ref());
                let s = s.ok_or_else(|| Error::Init("sync: seccomp fd without profile".into()))?;
                let state = l.hook_state(pid, ContainerState::Creating);
                crate::seccomp::send_to_agent(s, &state, pid, fd.as_fd())?;
            }
            Some(Msg::RunHooks) => {
                let hooks = l.spec.hooks().as_ref();
                let state = l.hook_state(pid, ContainerState::Created);
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
            None => return Err(Error::Init("exited during setup".to_string())),
        }
    }
}

fn open_path(p: &Path) -> Result<OwnedFd> {
    let c = sys::cstring(p.as_os_str())
        .map_err(|_| Error::Invalid(format!("path with NUL: {}", p.display())))?;
    sys::openat(sys::CWD, &c, libc::O_PATH, 0).ctx(|| format!("open {}", p.display()))
}
