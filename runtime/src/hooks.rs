//! OCI hooks: each gets the container state on stdin, its own args and env,
//! and is killed if it outlives its `timeout`.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

use crate::error::{Error, Result};

/// The hooks the lifecycle runs (process/, container.rs), in spec order.
pub const KINDS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

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

fn run(h: &Hook, state: &[u8]) -> std::result::Result<(), String> {
    let path = h.path();
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(path);
    if let Some((argv0, rest)) = args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    for kv in h.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that never reads its stdin must not fail us: ignore EPIPE.
        let _ = stdin.write_all(state);
    }
    let deadline = h
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    let status = match deadline {
        None => child.wait().map_err(|e| e.to_string())?,
        Some(d) => loop {
            if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
                break s;
            }
            if Instant::now() >= d {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{}: timed out", path.display()));
            }
            std::thread::sleep(Duration::from_millis(5));
        },
    };
    if status.success() {
        Ok(())
    } else {
        Err(format!("{}: {status}", path.display()))
    }
}
