//! `exec`: a new process in a running container, with runc's options.

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use super::{pidfd_open, stored_hook_state, write_pid_file};
use crate::error::{Context, Error, Result};
use crate::process;
use crate::state::{Dir, Status};

/// Options of `exec`.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ExecOpts {
    /// A process.json replacing the container's process (`--process`).
    pub process_file: Option<PathBuf>,
    pub args: Vec<String>,
    pub tty: bool,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: i32,
    pub detach: bool,
    pub env: Vec<String>,
    pub cwd: Option<PathBuf>,
    /// `uid[:gid]`
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub apparmor: Option<String>,
    pub process_label: Option<String>,
    pub cgroup: Option<String>,
    pub ignore_paused: bool,
}

/// The process `exec` runs: runc's rules, the container's process with the
/// command line's overrides, unless a whole process.json is given.
fn exec_process(spec: &Spec, o: &ExecOpts) -> Result<oci_spec::runtime::Process> {
    if let Some(f) = &o.process_file {
        let data = fs::read(f).map_err(|e| Error::Config {
            path: f.clone(),
            msg: e.to_string(),
        })?;
        return serde_json::from_slice(&data).map_err(|e| Error::Config {
            path: f.clone(),
            msg: e.to_string(),
        });
    }
    if o.args.is_empty() {
        return Err(Error::Invalid("exec needs a command (or --process)".into()));
    }
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_args(Some(o.args.clone()));
    p.set_terminal(Some(o.tty));
    p.set_console_size(None);
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &o.env {
        let key = kv.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some(c) = &o.cwd {
        p.set_cwd(c.clone());
    }
    let mut user = p.user().clone();
    if let Some(u) = &o.user {
        let bad = || Error::option("--user", format!("{u:?}"), "want uid[:gid]");
        let (uid, gid) = match u.split_once(':') {
            Some((a, b)) => (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?),
            None => (u.parse().map_err(|_| bad())?, 0),
        };
        user.set_uid(uid);
        user.set_gid(gid);
    }
    if !o.additional_gids.is_empty() {
        user.set_additional_gids(Some(o.additional_gids.clone()));
    }
    p.set_user(user);
    if !o.caps.is_empty() {
        // runc ≥ 1.1.2 (CVE-2022-29162): `--cap` grants a capability in the
        // bounding, effective and permitted sets only. Putting it in the
        // inheritable (and so ambient) set would let a file with inheritable
        // file capabilities gain them across execve.
        let mut c = p
            .capabilities()
            .clone()
            .unwrap_or_else(crate::security::no_capabilities);
        for name in &o.caps {
            let cap: oci_spec::runtime::Capability =
                serde_json::from_value(serde_json::json!(name))
                    .map_err(|_| Error::Invalid(format!("unknown capability {name:?}")))?;
            let add = |s: &Option<oci_spec::runtime::Capabilities>| {
                let mut s = s.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            c.set_bounding(add(c.bounding()));
            c.set_effective(add(c.effective()));
            c.set_permitted(add(c.permitted()));
        }
        p.set_capabilities(Some(c));
    }
    if o.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if o.apparmor.is_some() {
        p.set_apparmor_profile(o.apparmor.clone());
    }
    if o.process_label.is_some() {
        p.set_selinux_label(o.process_label.clone());
    }
    crate::lsm::check_process(&p)?;
    if let Some(a) = p.exec_cpu_affinity() {
        crate::placement::check_affinity(a)?;
    }
    Ok(p)
}

/// Run a process in a container. In the foreground, returns its exit
/// status; detached, returns its pid once it has been executed.
pub fn exec(root: &Path, id: &str, o: &ExecOpts) -> Result<i32> {
    if o.preserve_fds < 0 {
        return Err(Error::option(
            "--preserve-fds",
            o.preserve_fds.to_string(),
            "must not be negative",
        ));
    }
    process::reserve_preserved_fds(o.preserve_fds)?;
    let dir = Dir::open(root, id)?;
    let st = dir.load()?;
    match st.status(&dir.path) {
        Status::Stopped => {
            return Err(Error::BadStatus {
                op: "cannot exec in a stopped container",
                id: id.into(),
                status: "stopped".into(),
            })
        }
        Status::Paused if !o.ignore_paused => {
            return Err(Error::BadStatus {
                op: "cannot exec in a paused container (use --ignore-paused)",
                id: id.into(),
                status: "paused".into(),
            })
        }
        _ => {}
    }
    let spec = dir.load_config()?;
    let process = exec_process(&spec, o)?;
    let pidfd = pidfd_open(st.pid)
        .filter(|_| st.alive())
        .ok_or_else(|| Error::BadStatus {
            op: "cannot exec in a stopped container",
            id: id.into(),
            status: "stopped".into(),
        })?;
    let sub = match &o.cgroup {
        Some(c) if c.contains(':') => {
            return Err(Error::Unsupported(
                "exec --cgroup with a controller list".into(),
            ))
        }
        Some(c) => Some(PathBuf::from(c)),
        None => None,
    };
    let state = stored_hook_state(&st, oci_spec::runtime::ContainerState::Running);
    // `exec -t` in the foreground without a console socket: berth keeps the
    // pty and relays it, as runc does.
    let own_tty = process.terminal().unwrap_or(false) && o.console_socket.is_none() && !o.detach;
    let own_sock = dir
        .path
        .join(format!(".exec-{}.console", std::process::id()));
    let listener = if own_tty {
        let _ = fs::remove_file(&own_sock);
        Some(
            std::os::unix::net::UnixListener::bind(&own_sock)
                .ctx(|| format!("bind console socket {}", own_sock.display()))?,
        )
    } else {
        None
    };
    let console_socket = if own_tty {
        Some(own_sock.as_path())
    } else {
        o.console_socket.as_deref()
    };
    use std::os::fd::AsFd;
    let launch = process::exec::ExecLaunch {
        process: &process,
        linux: spec.linux().as_ref(),
        init_pid: st.pid,
        init_pidfd: pidfd.as_fd(),
        cgroup: &st.cgroup,
        sub_cgroup: sub.as_deref(),
        console_socket,
        preserve_fds: o.preserve_fds,
        state: &state,
    };
    // Blocked before the child exists, so no signal meant for it is lost;
    // the child unblocks them just before execve.
    let sigs = if o.detach {
        None
    } else {
        Some(crate::forward::block()?)
    };
    // The lock is not held while the process joins the container: with
    // --ignore-paused it waits frozen in the cgroup until `resume`, and
    // `resume` takes the lock (runc holds none here either). The pidfd and
    // the stored cgroup are all the spawn needs.
    drop(dir);
    let spawned = process::exec::spawn(&launch);
    if listener.is_some() {
        let _ = fs::remove_file(&own_sock);
    }
    let pid = spawned?;
    if let Some(p) = &o.pid_file {
        write_pid_file(p, pid)?;
    }
    let master = match &listener {
        Some(l) => Some(crate::console::receive(l)?),
        None => None,
    };
    match (sigs, master) {
        (None, _) => Ok(pid),
        (Some(sigs), Some(m)) => Ok(crate::forward::wait_relaying(&sigs, pid, m)),
        (Some(sigs), None) => Ok(crate::forward::wait_forwarding(&sigs, pid)),
    }
}
