//! The container init: runs in the clone3 child, sets up the container in
//! the order the OCI lifecycle requires, waits on exec.fifo for `start`,
//! and execs the user process.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::sched::CloneFlags;
use nix::sys::prctl;
use nix::sys::signal::Signal;
use oci_spec::runtime::{ContainerState, Process, Spec};

use super::sync::{Channel, Msg};
use super::Launch;
use crate::cgroups::Hierarchies;
use crate::error::{Context, Error, Result};
use crate::namespaces::{self, Plan};
use crate::rootfs::{self, RootfsOpts};
use crate::{hooks, security, sys};

pub struct Ctx<'a> {
    pub l: &'a Launch<'a>,
    pub plan: &'a Plan,
    pub chan: Channel,
    pub fifo: OwnedFd,
    pub console: Option<OwnedFd>,
    /// Bind sources berth idmapped for us (taken once, by rootfs setup).
    pub idmapped: std::cell::RefCell<rootfs::IdmappedTrees>,
    /// Stay dumpable until Go: an ordinary user's berth can open our
    /// /proc/PID/{uid,gid}_map only while they belong to us, not to root.
    pub dumpable_until_go: bool,
    /// Opened by berth before the clone, to join the cgroup by ourselves.
    pub joiner: &'a crate::cgroups::Joiner,
}

pub fn run(c: Ctx) -> ! {
    // Opened while still dumpable: once non-dumpable, our /proc/self files
    // belong to the host's root, which a user namespace cannot open for
    // writing. The kernel checks CAP_SYS_TIME against the opener's
    // credentials, which are ours, so the write still works after unshare.
    let offsets = open_time_offsets(c.l.spec);
    // Non-dumpable: container processes that can see us (a shared or joined
    // pid namespace) cannot open /proc/<us>/exe, the host berth binary, nor
    // ptrace us. execve resets it for the user's program.
    // Parent-death signal: if `berth create` dies mid-setup, so do we.
    // Neither prctl fails with these arguments.
    if !c.dumpable_until_go {
        let _ = prctl::set_dumpable(false);
    }
    let _ = prctl::set_pdeathsig(Signal::SIGKILL);
    // First, while we are surely single-threaded and before we allocate
    // much: what we charge from here on is the container's. (v1 directories
    // berth makes after the clone are joined once they exist: see setup.)
    let in_cgroup = c.joiner.self_join();
    crate::interrupt::reset_in_child();
    report_panics(c.chan.0.as_raw_fd());
    match setup(&c, offsets, in_cgroup) {
        Ok(exec) => wait_for_start_and_exec(&c, exec),
        Err(e) => {
            let _ = c.chan.send(&Msg::Failed(e.child_report()));
            exit(1)
        }
    }
}

/// A panic in the init (a bug) still reaches the parent as the init's
/// error, not as a vanished peer; release builds abort on panic, so this
/// hook is the only place to say it.
fn report_panics(chan: RawFd) {
    std::panic::set_hook(Box::new(move |info| {
        let msg = [b"F".as_slice(), format!("panic: {info}").as_bytes()].concat();
        let _ = sys::proc::write_raw(chan, &msg);
        exit(1)
    }));
}

/// Skips atexit handlers and destructors that belong to the parent.
fn exit(code: i32) -> ! {
    sys::proc::exit_now(code)
}

fn process(spec: &Spec) -> &Process {
    spec.process().as_ref().expect("checked by spawn")
}

/// What remains once setup is done: the program to exec.
struct Exec {
    pid: i32,
    /// Reopens the exec fifo at start, even if the container has no /proc.
    procfs: OwnedFd,
    prepared: super::apply::Prepared,
}

fn setup(
    c: &Ctx,
    offsets: Option<std::io::Result<std::fs::File>>,
    in_cgroup: bool,
) -> Result<Exec> {
    let l = c.l;
    let spec = l.spec;
    let p = process(spec);
    if !c.plan.early.is_empty() {
        // Meanwhile berth makes our v1 cgroup directories (Plan::unshare_early).
        let f = c.plan.early;
        nix::sched::unshare(f).ctx(|| format!("unshare {f:?}"))?;
    }
    let pid = c.chan.expect_go()?;
    // They exist now; still single-threaded, we move ourselves into them.
    let in_cgroup = in_cgroup
        && (c.plan.early.is_empty() || l.cgroup.joiner_of(None, Hierarchies::V1).self_join());
    if !in_cgroup {
        c.chan.send(&Msg::JoinCgroup)?;
    }
    if c.dumpable_until_go {
        let _ = prctl::set_dumpable(false);
    }
    let mut keep: Vec<RawFd> = vec![c.chan.0.as_raw_fd(), c.fifo.as_raw_fd()];
    keep.extend(c.console.as_ref().map(|f| f.as_raw_fd()));
    keep.extend(c.plan.join.iter().map(|(_, fd, _)| fd.as_raw_fd()));
    keep.extend(c.idmapped.borrow().raw_fds());
    if let Some(Ok(f)) = &offsets {
        keep.push(f.as_raw_fd());
    }
    super::apply::close_fds_except(3 + l.preserve_fds, &keep);

    for (flag, fd, path) in &c.plan.join {
        namespaces::setns(fd, *flag, path)?;
    }
    if c.plan.has(CloneFlags::CLONE_NEWUSER) {
        // Become root of the user namespace now that our ids are mapped.
        let root = nix::unistd::Uid::from_raw(0);
        let rootg = nix::unistd::Gid::from_raw(0);
        nix::unistd::setresgid(rootg, rootg, rootg).ctx(|| "setgid 0 in user namespace")?;
        nix::unistd::setresuid(root, root, root).ctx(|| "setuid 0 in user namespace")?;
        // A change of credentials clears the parent-death signal.
        let _ = prctl::set_pdeathsig(Signal::SIGKILL);
    }
    // The cgroup namespace waits until init is in its cgroup (join_cgroup).
    let unshare = c.plan.unshare_flags() - CloneFlags::CLONE_NEWCGROUP;
    if !unshare.is_empty() {
        nix::sched::unshare(unshare).ctx(|| format!("unshare {unshare:?}"))?;
    }
    if unshare.contains(crate::namespaces::CLONE_NEWTIME) {
        if let Some(f) = offsets {
            write_time_offsets(spec, f)?;
        }
    }
    nix::unistd::setsid().ctx(|| "setsid")?;
    if l.new_keyring {
        join_session_keyring(l.id)?;
    }
    if let Some(h) = spec.hostname().as_ref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).ctx(|| format!("set hostname {h:?}"))?;
    }
    if let Some(d) = spec.domainname().as_ref().filter(|d| !d.is_empty()) {
        rustix::system::setdomainname(d.as_bytes())
            .map_err(std::io::Error::from)
            .ctx(|| format!("set domainname {d:?}"))?;
    }
    // After the namespaces are joined: a procfs of our pid namespace.
    let procfs = crate::procfs::private()?;
    if let Some(v) = p.oom_score_adj() {
        security::write_oom_score_adj(procfs.as_fd(), v)?;
    }
    if c.plan.new.contains(CloneFlags::CLONE_NEWNET) {
        loopback_up()?;
    }
    crate::sysctl::apply(spec, c.plan, procfs.as_fd())?;

    let opts = RootfsOpts {
        no_pivot: l.no_pivot,
        new_mntns: c.plan.new.contains(CloneFlags::CLONE_NEWNS),
        in_userns: c.plan.has(CloneFlags::CLONE_NEWUSER),
    };
    let idmapped = c.idmapped.take();
    // Until init is in its cgroup, nothing may depend on it: the cgroup
    // namespace (rooted at init's cgroup when created), the cgroup mounts,
    // hooks and the user process. If the parent has to move us, the mounts
    // before the cgroup one overlap its move.
    let mut joined = false;
    let mut join_cgroup = || -> Result<()> {
        if !joined {
            if !in_cgroup {
                c.chan.expect(Msg::InCgroup)?;
            }
            if c.plan.unshare_flags().contains(CloneFlags::CLONE_NEWCGROUP) {
                nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP)
                    .ctx(|| "unshare cgroup namespace")?;
            }
            joined = true;
        }
        Ok(())
    };
    rootfs::prepare_with(spec, l.rootfs, l.bundle, &opts, idmapped, &mut || {
        join_cgroup().map_err(|e| rootfs::RootfsError::Invalid {
            field: "cgroup join".into(),
            reason: e.to_string(),
        })
    })?;
    join_cgroup()?;
    let hooks = spec.hooks().as_ref();
    if hooks.is_some_and(|h| h.prestart().is_some() || h.create_runtime().is_some()) {
        c.chan.send(&Msg::RunHooks)?;
        c.chan.expect(Msg::HooksDone)?;
    }
    if let Some(h) = hooks.and_then(|h| h.create_container().as_ref()) {
        hooks::run_all(
            "createContainer",
            h,
            &l.hook_state(pid, ContainerState::Created),
        )?;
    }
    rootfs::enter(l.rootfs, &opts)?;
    if let Some(sock) = &c.console {
        let size = p.console_size().as_ref().map(|b| (b.height(), b.width()));
        crate::console::setup(sock, size)?;
        if opts.new_mntns {
            // The slave is our stdin now.
            rootfs::mount_console(std::io::stdin().as_fd())?;
        }
    }
    rootfs::finalize(spec, &opts)?;

    let prepared = super::apply::prepare(p, spec.linux().as_ref(), &mut |fd| {
        c.chan.send_fd(&Msg::SeccompFd, fd.as_fd())
    })?;
    Ok(Exec {
        pid,
        procfs,
        prepared,
    })
}

fn wait_for_start_and_exec(c: &Ctx, e: Exec) -> ! {
    if c.chan.send(&Msg::Ready).is_err() {
        exit(1);
    }
    // Until `create` has saved the state record naming us, its death is
    // ours (an init nothing on disk names could never be deleted). Plain
    // read(2): a seccomp profile may already be loaded.
    let mut b = [0u8; 8];
    let n = nix::unistd::read(&c.chan.0, &mut b);
    if n != Ok(1) || b[0] != b'K' {
        exit(1);
    }
    // `create` exits after Detached, and that must not kill us.
    let _ = prctl::set_pdeathsig(None);
    // The record naming us is saved, so we live on even if nobody reads
    // the answer: `run` does not wait for it (it waits for our byte on
    // exec.fifo), and a `create` that died since leaves a created container.
    let _ = c.chan.send(&Msg::Detached);
    let sub = CString::new(format!("self/fd/{}", c.fifo.as_raw_fd())).expect("no NUL");
    // Whatever follows the byte that released us is an error `start` reports.
    let fail = |mut fifo: &std::fs::File, err: Error| -> ! {
        let _ = fifo.write_all(err.to_string().as_bytes());
        exit(127)
    };
    let fifo = loop {
        // Blocks until `start` opens the read side.
        let Ok(fifo) = sys::openat(e.procfs.as_fd(), &sub, libc::O_WRONLY, 0) else {
            exit(1);
        };
        let fifo = std::fs::File::from(fifo);
        match (&fifo).write_all(b"0") {
            Ok(()) => break fifo,
            // That `start` left (killed, interrupted) before reading: we
            // are still created, and wait for the next. SIGPIPE is ignored.
            Err(err) if err.raw_os_error() == Some(libc::EPIPE) => {}
            Err(err) => fail(
                &fifo,
                Error::Io {
                    ctx: "write exec fifo".into(),
                    source: err,
                },
            ),
        }
    };
    drop(e.procfs);
    let spec = c.l.spec;
    if let Some(h) = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().as_ref())
    {
        let state = c.l.hook_state(e.pid, ContainerState::Created);
        // A startContainer hook without its own env gets the container
        // process's, as with runc (its init holds that environment when it
        // runs the hook); engines rely on it. An explicit `env`, even an
        // empty one, is used as given.
        let process_env: Vec<String> = e.prepared.env().collect();
        let h: Vec<_> = h
            .iter()
            .map(|hook| {
                let mut hook = hook.clone();
                if hook.env().is_none() {
                    hook.set_env(Some(process_env.clone()));
                }
                hook
            })
            .collect();
        if let Err(err) = hooks::run_all("startContainer", &h, &state) {
            fail(&fifo, err);
        }
    }
    // Everything above the preserved fds closes on exec: that includes the
    // fifo, whose closing tells `start` that the exec happened (EOF).
    let err = super::apply::exec(&e.prepared, c.l.preserve_fds);
    fail(&fifo, err)
}

fn loopback_up() -> Result<()> {
    sys::proc::link_up(c"lo").ctx(|| "bring up loopback")
}

/// `/proc/self/timens_offsets`, opened for writing, when the config sets
/// time offsets.
fn open_time_offsets(spec: &Spec) -> Option<std::io::Result<std::fs::File>> {
    spec.linux().as_ref()?.time_offsets().as_ref()?;
    Some(
        std::fs::OpenOptions::new()
            .write(true)
            .open("/proc/self/timens_offsets"),
    )
}

fn write_time_offsets(spec: &Spec, file: std::io::Result<std::fs::File>) -> Result<()> {
    let Some(offs) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref())
    else {
        return Ok(());
    };
    let mut s = String::new();
    for (clock, o) in offs {
        s.push_str(&format!(
            "{clock} {} {}\n",
            o.secs().unwrap_or(0),
            o.nanosecs().unwrap_or(0)
        ));
    }
    // One write: the kernel takes all offsets of a write at once.
    file.and_then(|mut f| f.write_all(s.as_bytes()))
        .ctx(|| "write /proc/self/timens_offsets (linux.timeOffsets)")
}

fn join_session_keyring(id: &str) -> Result<()> {
    let name = CString::new(format!("_ses.{id}")).expect("ids have no NUL");
    match sys::proc::join_session_keyring(&name) {
        // Kernels without keyrings (or seccomp'd callers) get no keyring, as with runc.
        Err(e) if e.raw_os_error() != Some(libc::ENOSYS) => Err(e).ctx(|| "join session keyring"),
        _ => Ok(()),
    }
}
