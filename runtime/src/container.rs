//! Container operations: the OCI lifecycle (create, start, state, kill,
//! delete) plus run and list, on top of the state store.

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::{ContainerState, Spec};

use crate::cgroups::{Cgroup, Driver};
use crate::error::{Context, Error, Result};
use crate::process::{self, Launch};
use crate::state::{self, Dir, Status, Stored};
use crate::sys::{self, event::Watch};

mod exec;
mod pipeline;
mod release;
pub use exec::{exec, ExecOpts};
pub(crate) use pipeline::{write_pid_file, Prepared, Rollback};

/// How long berth waits for killed processes (the init, what is left in
/// the cgroup) to be gone before it reports that they did not die, and how
/// often it looks meanwhile.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);
const KILL_POLL: Duration = Duration::from_millis(2);

/// Options of `create` and `run`.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct CreateOpts {
    pub bundle: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: i32,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// The global --rootless flag: whether a cgroup the caller may not
    /// write is tolerated (see `rootless`).
    pub rootless: crate::rootless::Mode,
    /// Who manages the container's cgroup (`--systemd-cgroup`); through the
    /// API it is the `Runtime`'s choice, so it is not part of a request.
    #[serde(skip)]
    pub cgroup_driver: crate::cgroups::Driver,
}

/// The bundle's config, parsed, with the bytes it was parsed from.
pub fn load_spec(bundle: &Path) -> Result<(Spec, Vec<u8>)> {
    let path = bundle.join("config.json");
    let data = fs::read(&path).map_err(|e| Error::Config {
        path: path.clone(),
        msg: e.to_string(),
    })?;
    let spec = serde_json::from_slice(&data).map_err(|e| Error::Config {
        path,
        msg: e.to_string(),
    })?;
    Ok((spec, data))
}

/// Create the container; it is left blocked on exec.fifo. Everything made
/// on the way is undone if a later step fails.
pub fn create(root: &Path, id: &str, o: &CreateOpts) -> Result<(Dir, Stored)> {
    let _signals = crate::interrupt::catch();
    create_prepared(root, id, o, prepare(id, o)?, false)
}

/// The bundle of `o`, read and checked for a container `id`.
fn prepare(id: &str, o: &CreateOpts) -> Result<Prepared> {
    // As runc: an ordinary user's --systemd-cgroup goes to its own instance.
    let driver = match o.cgroup_driver {
        Driver::Systemd if o.rootless.systemd_user() => Driver::SystemdUser,
        d => d,
    };
    Prepared::new(id, &o.bundle, driver)
}

/// `then_start`: the caller (run) starts the container right away, so the
/// init's Detached is not waited for: the byte it writes to exec.fifo,
/// which `start` waits for, comes after it.
fn create_prepared(
    root: &Path,
    id: &str,
    o: &CreateOpts,
    mut p: Prepared,
    then_start: bool,
) -> Result<(Dir, Stored)> {
    if o.preserve_fds < 0 {
        return Err(Error::option(
            "--preserve-fds",
            o.preserve_fds.to_string(),
            "must not be negative",
        ));
    }
    let mut preserve_fds = o.preserve_fds;
    let notify_dir = crate::notify::prepare(&mut p.spec, &root.join(id), &mut preserve_fds)?;
    process::reserve_preserved_fds(preserve_fds)?;
    crate::interrupt::step("create:validated")?;

    // From here on every step is recoverable from what is on disk: see
    // CRASH-CONSISTENCY.md. Each record is written before what it names.
    let mut made = Rollback::new(Dir::create(root, id)?);
    let dir = made.dir();
    // The leaves not there yet are ours to remove should we die in mkdir.
    let planned = p.cgroup.clone();
    if p.cgroup.paths().all(|p| !p.exists()) {
        planned.claim_leaves();
    }
    crate::interrupt::step("create:dir")?;
    dir.save(&p.record(id, &planned))?;
    crate::interrupt::step("create:record")?;
    make_fifo(&dir.fifo())?;
    if let Some(d) = notify_dir.as_deref() {
        crate::notify::make_dir(d)?;
    }
    let linux = p.spec.linux().as_ref();
    let (resources, devices) = (
        linux.and_then(|l| l.resources().as_ref()),
        linux.and_then(|l| l.devices().as_deref()),
    );
    let mut plan = crate::namespaces::Plan::from_spec(&p.spec)?;
    // Where the init can join its v1 cgroup by path, berth makes it while
    // the init unshares its namespaces (Plan::unshare_early), not before the
    // clone: about 0.2 ms less on `run` (bench README). Not for an ordinary
    // user, whose cgroup may turn out to be none (without_cgroup).
    let after_clone = p.cgroup.has_v1_dirs()
        && crate::rootless::is_euid_root()
        && !o.rootless.cgroups()
        && plan.unshare_early(&p.spec);
    let cgroup = if after_clone {
        p.cgroup.precreate(resources, devices)?;
        p.cgroup.clone()
    } else {
        match p.cgroup.create(resources, devices) {
            Ok(()) => p.cgroup.clone(),
            Err(e) => without_cgroup(&p.spec, o.rootless, &p.cgroup, e)?,
        }
    };
    made.cgroup(&cgroup);
    let dir = made.dir();
    if !after_clone {
        dir.save(&p.record(id, &cgroup))?;
        crate::interrupt::step("create:cgroup")?;
    }
    let launch = Launch {
        id,
        spec: &p.spec,
        bundle: &p.bundle,
        rootfs: &p.rootfs,
        cgroup: &cgroup,
        fifo: &dir.fifo(),
        console_socket: o.console_socket.as_deref(),
        preserve_fds,
        no_pivot: o.no_pivot,
        new_keyring: !o.no_new_keyring,
    };
    let started = process::start(&launch, plan)?;
    if after_clone {
        let created = cgroup.create(resources, devices);
        // What create made (or undid): the guard's copy was taken before.
        made.cgroup(&cgroup);
        created?;
        made.dir().save(&p.record(id, &cgroup))?;
        crate::interrupt::step("create:cgroup")?;
    }
    let init = started.drive()?;
    made.child(init.pid);
    crate::interrupt::step("create:ready")?;
    let st = p.finished(id, &cgroup, init.pid)?;
    let dir = made.dir();
    // `exec` works from the config as it was at create, not as the
    // bundle's copy may have been edited since.
    dir.save_config(&p.raw_config)?;
    dir.save(&st)?;
    if let Some(pf) = &o.pid_file {
        write_pid_file(pf, init.pid)?;
    }
    crate::interrupt::step("create:saved")?;
    init.commit(!then_start)?;
    // Past the point of no return: a signal now finds a created container,
    // as if it had come just after we exited.
    let dir = made.keep();
    let _ = crate::interrupt::step("create:committed");
    Ok((dir, st))
}

/// runc's rootless rule: a caller who may not write the cgroup tree still
/// gets a container, without a cgroup, if the config names no cgroup path
/// and asks for no limit; with a limit the error names the field.
fn without_cgroup(
    spec: &Spec,
    mode: crate::rootless::Mode,
    cgroup: &Cgroup,
    e: crate::cgroups::CgroupError,
) -> Result<Cgroup> {
    if !crate::rootless::is_permission_error(&e) {
        return Err(e.into());
    }
    if !mode.cgroups() {
        if crate::rootless::is_euid_root() {
            return Err(e.into());
        }
        return Err(Error::Rootless(format!(
            "{e}: this user may not write the cgroup tree, and --rootless false asks for a cgroup"
        )));
    }
    let linux = spec.linux().as_ref();
    if let Some(field) =
        crate::rootless::requested_limit(linux.and_then(|l| l.resources().as_ref()))
    {
        return Err(Error::Rootless(format!(
            "{field}: cannot be enforced, this user may not write the cgroup tree ({e}); drop the limit or run where the user has a delegated cgroup"
        )));
    }
    if linux.is_some_and(|l| {
        l.cgroups_path()
            .as_ref()
            .is_some_and(|p| !p.as_os_str().is_empty())
    }) {
        return Err(Error::Rootless(format!(
            "linux.cgroupsPath: this user may not create it ({e})"
        )));
    }
    crate::logging::notice(&format!(
        "running without a cgroup: this user may not write the cgroup tree ({e}); pause, resume, update, ps and events need one"
    ));
    if !pipeline::has_own_pidns(spec) {
        // As with runc: nothing then finds the init's descendants.
        crate::logging::notice(
            "without a cgroup or a pid namespace of its own, kill --all and delete reach only the container's init",
        );
    }
    Ok(cgroup.none())
}

/// SIGKILL whatever runs in the cgroup (thawed, or it cannot die) until it
/// is empty or `timeout` passes; true if it emptied.
fn empty_cgroup(cgroup: &Cgroup, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut thawed = false;
    loop {
        let pids = cgroup.pids().unwrap_or_default();
        if pids.is_empty() {
            return true;
        }
        for p in pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if !thawed && cgroup.is_frozen() {
            let _ = cgroup.set_frozen(false);
            thawed = true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(KILL_POLL);
    }
}

fn make_fifo(p: &Path) -> Result<()> {
    nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o622))
        .ctx(|| format!("mkfifo {}", p.display()))?;
    // The umask may have cleared the group/other write bits the init needs
    // after it drops to a non-root user.
    nix::sys::stat::fchmodat(
        nix::fcntl::AT_FDCWD,
        p,
        nix::sys::stat::Mode::from_bits_truncate(0o622),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .ctx(|| format!("chmod {}", p.display()))
}

/// Release a created container: open the read side of exec.fifo, which
/// unblocks init, then read until EOF, which comes when init's write side
/// closes on execve (see release.rs). Anything after the first byte is
/// init's error.
pub fn start(dir: &Dir, st: &Stored) -> Result<()> {
    match st.status(&dir.path) {
        Status::Created => {}
        Status::Stopped => {
            return Err(Error::BadStatus {
                op: "cannot start a container that has stopped",
                id: st.id.clone(),
                status: "stopped".into(),
            })
        }
        Status::Creating => {
            return Err(Error::BadStatus {
                op: "cannot start a container whose create has not finished",
                id: st.id.clone(),
                status: "creating".into(),
            })
        }
        s => {
            return Err(Error::BadStatus {
                op: "cannot start an already running container",
                id: st.id.clone(),
                status: s.as_str().into(),
            })
        }
    }
    // Checked after opening: the recorded pid may since name another process.
    release_init(dir, st, |pid| pidfd_open(pid).filter(|_| st.alive()))
}

/// `start` for `run`, of the container it has just created: the init is
/// still its own unreaped child, so its pid names it and its status is
/// known (created) without reading /proc.
fn start_own(dir: &Dir, st: &Stored) -> Result<()> {
    release_init(dir, st, pidfd_open)
}

/// Release a created init from exec.fifo, then run the poststart hooks.
/// `open_init` gives a pidfd of the init, or None if it is gone.
fn release_init(
    dir: &Dir,
    st: &Stored,
    open_init: impl FnOnce(i32) -> Option<OwnedFd>,
) -> Result<()> {
    let relay = crate::notify::Relay::bind(&dir.path)?;
    crate::interrupt::step("start:open")?;
    let Some(pidfd) = open_init(st.pid) else {
        return Err(Error::Init(format!("exited before start (pid {})", st.pid)));
    };
    let fifo_path = dir.fifo();
    let buf = {
        // Caught while waiting for the init, so that a SIGTERM or SIGINT
        // ends the wait with an error rather than silently.
        let _signals = crate::interrupt::catch();
        // Gone once the init is released: should we die from there on, the
        // container is not taken for a created one (whose start would wait).
        release::release(&fifo_path, &pidfd, st.pid, || {
            let _ = fs::remove_file(&fifo_path);
        })?
    };
    crate::interrupt::step("start:released")?;
    match buf.split_first() {
        Some((b'0', [])) => {}
        Some((b'0', rest)) => {
            return Err(Error::Init(String::from_utf8_lossy(rest).into_owned()));
        }
        _ => return Err(Error::Init("exited before start".into())),
    }
    if !st.poststart.is_empty() {
        let state = stored_hook_state(st, ContainerState::Running);
        if poststart_failure_stops(dir) {
            if let Err(e) = crate::hooks::run_all("poststart", &st.poststart, &state) {
                // Stopped, not destroyed: `delete` (or `run`) continues the
                // lifecycle, as with runc ≥ 1.2.
                kill_all(st, libc::SIGKILL);
                wait_gone(st, KILL_TIMEOUT);
                return Err(e);
            }
        } else {
            crate::hooks::run_all_warn("poststart", &st.poststart, &state);
        }
    }
    if let Some(r) = relay {
        r.wait(st.pid)?;
    }
    Ok(())
}

/// What a failing poststart hook means depends on the spec the config was
/// written for: up to runtime-spec 1.2 a warning, and the lifecycle goes on;
/// from 1.3.0 an error that stops the container. The config's ociVersion
/// decides, since berth implements both (features: ociVersionMax).
fn poststart_failure_stops(dir: &Dir) -> bool {
    let Ok(spec) = dir.load_config() else {
        return false;
    };
    let mut nums = spec
        .version()
        .split(['-', '+'])
        .next()
        .unwrap_or_default()
        .split('.')
        .map(|n| n.parse::<u64>().unwrap_or(0));
    let (major, minor) = (nums.next().unwrap_or(0), nums.next().unwrap_or(0));
    (major, minor) >= (1, 3)
}

fn stored_hook_state(st: &Stored, status: ContainerState) -> Vec<u8> {
    crate::hooks::state(&st.id, status, st.pid, &st.bundle, Some(&st.annotations))
}

fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    sys::event::pidfd_open(pid).ok()
}

/// Signal init through a pidfd that is checked against the stored start
/// time after it is opened, so a recycled pid is never signalled.
fn signal_init(st: &Stored, sig: i32) -> Result<()> {
    let Some(fd) = pidfd_open(st.pid) else {
        return Err(Error::BadStatus {
            op: "container not running",
            id: st.id.clone(),
            status: "stopped".into(),
        });
    };
    if !st.alive() {
        return Err(Error::BadStatus {
            op: "container not running",
            id: st.id.clone(),
            status: "stopped".into(),
        });
    }
    sys::event::pidfd_send_signal(fd.as_fd(), sig)
        .ctx(|| format!("send signal {sig} to {}", st.pid))
}

/// Signal every process of the container (best effort).
fn kill_all(st: &Stored, sig: i32) {
    let _ = signal_init(st, sig);
    if let Ok(pids) = st.cgroup.pids() {
        for p in pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::try_from(sig).ok(),
            );
        }
    }
}

pub fn kill(root: &Path, id: &str, sig: i32, all: bool) -> Result<()> {
    let dir = Dir::open(root, id)?;
    let st = dir.load()?;
    let status = st.status(&dir.path);
    if status == Status::Stopped {
        return Err(Error::BadStatus {
            op: "container not running",
            id: id.into(),
            status: "stopped".into(),
        });
    }
    let r = if all {
        kill_all(&st, sig);
        Ok(())
    } else {
        signal_init(&st, sig)
    };
    // Frozen tasks cannot act on a SIGKILL (v1) until thawed.
    if status == Status::Paused && sig == libc::SIGKILL {
        st.cgroup.set_frozen(false)?;
    }
    r
}

/// Wait for init and the rest of the cgroup to be gone; true if they went.
fn wait_gone(st: &Stored, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    // Only a pidfd of our init, checked after opening: a recorded pid may
    // since name another process.
    if let Some(fd) = pidfd_open(st.pid).filter(|_| st.alive()) {
        // A pidfd polls readable once the process has exited.
        let _ = sys::event::poll(&mut [Watch::input(Some(fd.as_fd()))], Some(timeout));
    }
    loop {
        if !st.alive() {
            // Processes outside the init's pid namespace (or all of them,
            // without one) survive it: runc kills them too.
            let left = deadline.saturating_duration_since(Instant::now());
            return empty_cgroup(&st.cgroup, left);
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(KILL_POLL);
    }
}

/// Delete a container.
///
/// The spec says deleting a container that is not stopped MUST fail. We
/// follow it for a running container (without --force), but delete a
/// *created* one as runc does, killing its init first: containerd's runc-v2
/// shim depends on that. Its `createdState.Delete` (pkg/process/init.go,
/// `Init.delete`) calls `runc delete` without --force for a task that was
/// created and never started (`ctr task delete`, or `ctr run` whose start
/// failed), and with a strict runtime that task would be leaked.
///
/// With --force, a container whose state.json is missing, unreadable or
/// names another container is removed from what there is (see
/// [`delete_broken`]).
pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    let dir = match Dir::open_any(root, id) {
        // As runc: the shims force-delete after a failed create, when
        // nothing may exist; the id is still checked.
        Err(Error::NotFound(_)) if force => return Ok(()),
        r => r?,
    };
    let st = match dir.load() {
        Ok(st) => st,
        Err(_) if force => return delete_broken(dir, id),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotFound(id.into()))
        }
        Err(e) => return Err(e),
    };
    crate::interrupt::step("delete:loaded")?;
    let status = st.status(&dir.path);
    if status != Status::Stopped {
        if !force && !matches!(status, Status::Created | Status::Creating) {
            return Err(Error::NotStopped {
                id: id.into(),
                status: status.as_str().into(),
            });
        }
        kill_all(&st, libc::SIGKILL);
        if status == Status::Paused {
            st.cgroup.set_frozen(false)?;
        }
    }
    crate::interrupt::step("delete:killed")?;
    if !wait_gone(&st, KILL_TIMEOUT) {
        return Err(Error::Init(format!(
            "container {id} did not die after SIGKILL"
        )));
    }
    destroy(dir, &st)
}

/// `delete --force` without a usable state record: kill what runs in the
/// cgroup the container's config names (the copy saved at create, else the
/// default `<id>`), remove that cgroup's own directory and the state dir.
fn delete_broken(dir: Dir, id: &str) -> Result<()> {
    let cgroups_path = dir
        .has_config()
        .then(|| dir.load_config().ok())
        .flatten()
        .and_then(|s| s.linux().as_ref()?.cgroups_path().clone());
    let cgroup = Cgroup::resolve(cgroups_path.as_deref(), id)?;
    if cgroup.paths().any(|p| p.exists()) {
        if !empty_cgroup(&cgroup, KILL_TIMEOUT) {
            return Err(Error::Init(format!(
                "container {id} did not die after SIGKILL"
            )));
        }
        cgroup.claim_leaves();
        cgroup.remove()?;
    }
    dir.destroy()
}

fn destroy(dir: Dir, st: &Stored) -> Result<()> {
    st.cgroup.remove()?;
    crate::interrupt::point("delete:cgroup");
    let state = stored_hook_state(st, ContainerState::Stopped);
    dir.destroy()?;
    if !st.poststop.is_empty() {
        crate::hooks::run_all_warn("poststop", &st.poststop, &state);
    }
    Ok(())
}

/// `run`: create and start; unless detached, wait for the container,
/// forwarding signals to it, then delete it and return its exit status.
pub fn run(root: &Path, id: &str, o: &CreateOpts, detach: bool) -> Result<i32> {
    // Until the container runs, a SIGTERM removes it (see create).
    let _signals = crate::interrupt::catch();
    let p = prepare(id, o)?;
    // A terminal with nobody to hand it to: berth keeps the pty master and
    // relays it, as `runc run` does for an interactive container.
    let terminal = p.spec.process().as_ref().and_then(|p| p.terminal());
    if !detach && o.console_socket.is_none() && terminal.unwrap_or(false) {
        return run_with_own_tty(root, id, o, p);
    }
    let (dir, st) = create_prepared(root, id, o, p, true)?;
    if detach {
        let started = crate::interrupt::step("run:created").and_then(|()| start_own(&dir, &st));
        if let Err(e) = started {
            let _ = force_destroy(dir, &st);
            return Err(e);
        }
        return Ok(0);
    }
    let started = crate::interrupt::step("run:created")
        .and_then(|()| crate::forward::block())
        .and_then(|sigs| start_own(&dir, &st).map(|()| sigs));
    let sigs = match started {
        Ok(sigs) => sigs,
        Err(e) => {
            let _ = force_destroy(dir, &st);
            return Err(e);
        }
    };
    drop(dir);
    let code = crate::forward::wait_forwarding(&sigs, st.pid);
    let dir = Dir::open(root, id)?;
    destroy(dir, &st)?;
    Ok(code)
}

fn run_with_own_tty(root: &Path, id: &str, o: &CreateOpts, p: Prepared) -> Result<i32> {
    fs::create_dir_all(root).ctx(|| format!("create state root {}", root.display()))?;
    // The init connects while `create` runs and queues the master on this
    // socket; we accept it afterwards, so no second thread is needed.
    let sock = root.join(format!(".{id}.console"));
    let _ = fs::remove_file(&sock);
    let listener = std::os::unix::net::UnixListener::bind(&sock)
        .ctx(|| format!("bind console socket {}", sock.display()))?;
    let mut o2 = o.clone();
    o2.console_socket = Some(sock.clone());
    let created = create_prepared(root, id, &o2, p, true);
    let _ = fs::remove_file(&sock);
    let (dir, st) = created?;
    let master = match crate::console::receive(&listener) {
        Ok(m) => m,
        Err(e) => {
            let _ = force_destroy(dir, &st);
            return Err(e);
        }
    };
    let sigs = crate::forward::block()?;
    if let Err(e) = start_own(&dir, &st) {
        let _ = force_destroy(dir, &st);
        return Err(e);
    }
    drop(dir);
    let code = crate::forward::wait_relaying(&sigs, st.pid, master);
    let dir = Dir::open(root, id)?;
    destroy(dir, &st)?;
    Ok(code)
}

fn force_destroy(dir: Dir, st: &Stored) -> Result<()> {
    kill_all(st, libc::SIGKILL);
    wait_gone(st, KILL_TIMEOUT);
    destroy(dir, st)
}

/// One row of `list`: a container, or a state directory whose record is
/// missing or unreadable (shown as "unknown" rather than hidden, so the
/// operator sees what `delete --force` has to remove).
pub struct Listed {
    pub id: String,
    pub row: std::result::Result<(Stored, Status), String>,
}

pub fn list(root: &Path) -> Result<Vec<Listed>> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).ctx(|| format!("read {}", root.display())),
    };
    for ent in entries.flatten() {
        let path = ent.path();
        let id = ent.file_name().to_string_lossy().into_owned();
        if !ent.file_type().is_ok_and(|t| t.is_dir()) || state::validate_id(&id).is_err() {
            continue;
        }
        // Read without the lock: a container being created holds it.
        let row = state::load(&path)
            .map(|st| {
                let status = st.status(&path);
                (st, status)
            })
            .map_err(|e| e.to_string());
        out.push(Listed { id, row });
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}
