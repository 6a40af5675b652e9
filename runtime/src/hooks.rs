//! OCI hooks: each gets the container state on stdin, its own args and env,
//! and is killed if it outlives its `timeout`.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{ContainerState, Hook, State, StateBuilder};

use crate::error::{Error, Result};
use crate::sys::event::Watch;

/// The hooks the lifecycle runs (process/, container.rs), in spec order.
pub const KINDS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// The runtime-spec's state of the container, as JSON: what a hook reads on
/// its stdin (and a seccomp agent receives). A stopped container has no pid.
pub fn state(
    id: &str,
    status: ContainerState,
    pid: i32,
    bundle: &std::path::Path,
    annotations: Option<&std::collections::HashMap<String, String>>,
) -> Vec<u8> {
    let mut b = StateBuilder::default()
        .version(crate::state::OCI_VERSION)
        .id(id)
        .status(status)
        .bundle(bundle);
    if pid > 0 && status != ContainerState::Stopped {
        b = b.pid(pid);
    }
    if let Some(a) = annotations.filter(|a| !a.is_empty()) {
        b = b.annotations(a.clone());
    }
    // Every field is given, so neither building nor serializing can fail.
    let state: State = b.build().unwrap_or_default();
    serde_json::to_vec(&state).unwrap_or_default()
}

pub fn run_all(kind: &str, hooks: &[Hook], state_json: &[u8]) -> Result<()> {
    for (i, h) in hooks.iter().enumerate() {
        run(h, state_json)
            .map_err(|e| Error::Hook(format!("error running {kind} hook #{i}: {e}")))?;
    }
    Ok(())
}

/// poststart and poststop: the runtime-spec says a failing hook is logged as
/// a warning and the remaining hooks and the lifecycle go on.
pub fn run_all_warn(kind: &str, hooks: &[Hook], state_json: &[u8]) {
    for (i, h) in hooks.iter().enumerate() {
        if let Err(e) = run(h, state_json) {
            crate::logging::warn(&format!("error running {kind} hook #{i}: {e}"));
        }
    }
}

/// The runtime spec: a hook's `timeout` MUST be greater than zero. Checked
/// at create for every kind, poststart and poststop included.
pub fn validate(hooks: Option<&oci_spec::runtime::Hooks>) -> Result<()> {
    let Some(h) = hooks else { return Ok(()) };
    let kinds = [
        ("prestart", h.prestart()),
        ("createRuntime", h.create_runtime()),
        ("createContainer", h.create_container()),
        ("startContainer", h.start_container()),
        ("poststart", h.poststart()),
        ("poststop", h.poststop()),
    ];
    for (kind, list) in kinds {
        for (i, hook) in list.iter().flatten().enumerate() {
            if let Some(t) = hook.timeout().filter(|t| *t <= 0) {
                return Err(Error::field(
                    format!("hooks.{kind}[{i}].timeout"),
                    format!("must be greater than zero, got {t}"),
                ));
            }
        }
    }
    Ok(())
}

fn run(h: &Hook, state: &[u8]) -> std::result::Result<(), String> {
    let path = h.path();
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(path);
    if let Some((argv0, rest)) = args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    // Without `env` a hook gets berth's own environment, as runc's do (Go's
    // exec.Cmd with a nil Env); `"env": []` means an empty one.
    if let Some(env) = h.env() {
        cmd.env_clear();
        for kv in env {
            if let Some((k, v)) = kv.split_once('=') {
                cmd.env(k, v);
            }
        }
    }
    // Its own process group, so a timeout kills what it started too.
    cmd.stdin(Stdio::piped()).process_group(0);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    // Armed before the state is written: a hook that never reads a large
    // state must still time out.
    let deadline = h
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t.max(1) as u64));
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let kill_group = |child: &mut std::process::Child| {
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = child.wait();
    };
    let exited = pidfd(child.id());
    let mut stdin = child.stdin.take();
    let mut written = 0;
    if let Some(s) = &stdin {
        let _ = rustix::fs::fcntl_setfl(s, rustix::fs::OFlags::NONBLOCK);
    }
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return if status.success() {
                Ok(())
            } else {
                Err(format!("{}: {status}", path.display()))
            };
        }
        if let Err(e) = crate::interrupt::check() {
            kill_group(&mut child);
            return Err(format!("{}: {e}", path.display()));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            kill_group(&mut child);
            return Err(format!("{}: timed out", path.display()));
        }
        // Feed stdin as far as the pipe takes it, then wait a little for
        // room or for the hook to exit.
        if let Some(s) = stdin.as_mut() {
            match s.write(&state[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // A hook that does not read its stdin must not fail us (EPIPE).
                Err(_) => written = state.len(),
            }
            if written >= state.len() {
                stdin = None;
            }
        }
        let mut pfds = [
            Watch::output(stdin.as_ref().map(|s| s.as_fd())),
            Watch::input(exited.as_ref().map(|f| f.as_fd())),
        ];
        // Without a pidfd the exit is only seen by polling.
        let cap = Duration::from_millis(if exited.is_some() { 100 } else { 5 });
        let wait = deadline.map_or(cap, |d| {
            d.saturating_duration_since(Instant::now()).min(cap)
        });
        // A caught signal ends it early (EINTR), and the loop checks for it.
        let _ = crate::sys::event::poll(&mut pfds, Some(wait));
    }
}

/// A pidfd of our unreaped child, which polls readable when it exits;
/// None on kernels without pidfd_open (the loop then polls by time).
fn pidfd(pid: u32) -> Option<std::os::fd::OwnedFd> {
    crate::sys::event::pidfd_open(pid as i32).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_the_runtime_specs() {
        let a = [("k".to_string(), "v".to_string())].into();
        let bundle = std::path::Path::new("/b");
        let v: serde_json::Value =
            serde_json::from_slice(&state("c1", ContainerState::Created, 42, bundle, Some(&a)))
                .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"ociVersion": crate::state::OCI_VERSION, "id": "c1",
                "status": "created", "pid": 42, "bundle": "/b", "annotations": {"k": "v"}})
        );
        let v: serde_json::Value =
            serde_json::from_slice(&state("c1", ContainerState::Stopped, 42, bundle, None))
                .unwrap();
        assert_eq!(v.get("pid"), None, "{v}");
        assert_eq!(v.get("annotations"), None, "{v}");
        assert_eq!(v["status"], "stopped");
    }
}
