//! Calls the runtime under test through its runc-compatible CLI, with a
//! private --root, files (never pipes) for stdio and a timeout on every call.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Runtime {
    pub bin: PathBuf,
    pub root: PathBuf,
    pub timeout: Duration,
    /// Scratch directory for the stdio files of each call.
    pub scratch: PathBuf,
    /// Pass --systemd-cgroup (a global flag) on every call.
    pub systemd_cgroup: bool,
}

/// The result of one call; `code` is None when the call timed out.
#[derive(Debug)]
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// A one-line reason for reports.
    pub fn why(&self) -> String {
        let err = last_line(&self.stderr);
        match self.code {
            None => "timed out".into(),
            Some(c) => format!("exit {c}: {err}"),
        }
    }
}

/// Waits for `child` up to `limit`; kills its process group on expiry.
pub fn wait(child: &mut std::process::Child, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    let mut nap = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(st)) => {
                return Some(st.code().unwrap_or_else(|| {
                    128 + std::os::unix::process::ExitStatusExt::signal(&st).unwrap_or(0)
                }))
            }
            Ok(None) if start.elapsed() < limit => {
                std::thread::sleep(nap);
                nap = (nap * 2).min(Duration::from_millis(20));
            }
            _ => {
                // SAFETY: kill(2) on the group we created for this child.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                let _ = child.wait();
                return None;
            }
        }
    }
}

impl Runtime {
    /// Runs `RUNTIME --root ROOT args...`. stdout/stderr go to files: a
    /// created container keeps them open, so pipes would never reach EOF.
    pub fn call(&self, args: &[&str]) -> Out {
        self.call_io(args, None)
    }

    /// Like `call`, but the child's stdout and stderr (and so the
    /// container's, for create/run) go to `io`.
    pub fn call_io(&self, args: &[&str], io: Option<(&Path, &Path)>) -> Out {
        let (o, e) = match io {
            Some((o, e)) => (o.to_path_buf(), e.to_path_buf()),
            None => (self.scratch.join("call.out"), self.scratch.join("call.err")),
        };
        let files = File::create(&o)
            .and_then(|a| Ok((a, File::options().create(true).append(true).open(&e)?)));
        let (fo, fe) = match files {
            Ok(f) => f,
            Err(err) => {
                return Out {
                    code: Some(-1),
                    stdout: String::new(),
                    stderr: format!("{}: {err}", o.display()),
                }
            }
        };
        let start_len = std::fs::metadata(&e).map(|m| m.len()).unwrap_or(0);
        let mut cmd = Command::new(&self.bin);
        if self.systemd_cgroup {
            cmd.arg("--systemd-cgroup");
        }
        cmd.arg("--root").arg(&self.root).args(args);
        cmd.stdin(Stdio::null())
            .stdout(fo)
            .stderr(fe)
            .process_group(0);
        let code = match cmd.spawn() {
            Ok(mut child) => wait(&mut child, self.timeout),
            Err(err) => {
                return Out {
                    code: Some(-1),
                    stdout: String::new(),
                    stderr: format!("spawn {}: {err}", self.bin.display()),
                }
            }
        };
        let stdout = std::fs::read_to_string(&o).unwrap_or_default();
        let all = std::fs::read(&e).unwrap_or_default();
        let stderr =
            String::from_utf8_lossy(&all[start_len.min(all.len() as u64) as usize..]).into_owned();
        Out {
            code,
            stdout,
            stderr,
        }
    }

    /// `state ID` parsed, or the reason it failed.
    pub fn state(&self, id: &str) -> Result<Value, String> {
        let out = self.call(&["state", id]);
        if !out.ok() {
            return Err(out.why());
        }
        serde_json::from_str(&out.stdout)
            .map_err(|e| format!("state is not JSON ({e}): {:?}", out.stdout))
    }

    pub fn status(&self, id: &str) -> Option<String> {
        self.state(id)
            .ok()?
            .get("status")?
            .as_str()
            .map(str::to_string)
    }

    /// Polls until the status is `want`; returns the last status seen.
    pub fn wait_status(&self, id: &str, want: &str, limit: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            let s = self.status(id);
            if s.as_deref() == Some(want) {
                return Ok(());
            }
            if start.elapsed() > limit {
                return Err(format!("status {s:?} after {limit:?}, wanted {want}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Best-effort removal of a container, whatever its state.
    pub fn force_delete(&self, id: &str) {
        if self.state(id).is_ok() {
            self.call(&["kill", id, "KILL"]);
            self.call(&["delete", "-f", id]);
        }
    }
}

/// The last line of a command's stderr, cut to 160 characters: the error
/// a runtime reports, for reports.
pub fn last_line(stderr: &str) -> String {
    stderr
        .trim()
        .lines()
        .last()
        .unwrap_or("")
        .chars()
        .take(160)
        .collect()
}
