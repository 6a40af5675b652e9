//! One runtime under test: its binary, its private `--root`, and the runc
//! command line every runtime here shares.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::measure::{describe_status, Finished, Running, WaitError};

pub struct Runtime {
    pub name: String,
    pub path: PathBuf,
    pub root: PathBuf,
    pub version: String,
    /// Why `exec` cannot be measured, if it cannot.
    pub exec_missing: Option<String>,
    /// Stderr of the last command (O_APPEND, truncated before each call) so
    /// a failure can quote it without a pipe reader in the timed window.
    errlog: File,
    /// Stdout of informational calls (version, help, list).
    scratch: PathBuf,
    /// Longest any one runtime call may take before it is killed.
    pub timeout: Duration,
}

impl Runtime {
    pub fn new(name: &str, path: &Path, work: &Path, timeout: Duration) -> Result<Runtime> {
        let root = work.join(format!("root.{name}"));
        fs::create_dir_all(&root).map_err(|e| Error::io("create", &root, e))?;
        let errlog_path = work.join(format!("stderr.{name}"));
        let errlog = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&errlog_path)
            .map_err(|e| Error::io("open", &errlog_path, e))?;
        let scratch = work.join(format!("probe.{name}"));
        let version = probe(path, &["--version"], &scratch, timeout)
            .map(|out| out.lines().map(str::trim).collect::<Vec<_>>().join("; "))
            .unwrap_or_else(|e| format!("unknown ({e})"));
        // A runtime without `exec` fails its `--help` (unknown subcommand);
        // once it grows one, the metric switches on by itself.
        let exec_missing = probe(path, &["exec", "--help"], &scratch, timeout)
            .err()
            .map(|_| format!("{name} exec not implemented yet"));
        Ok(Runtime {
            name: name.into(),
            path: path.into(),
            root,
            version,
            exec_missing,
            errlog,
            scratch,
            timeout,
        })
    }

    fn base(&self) -> Command {
        let mut c = Command::new(&self.path);
        c.arg("--root").arg(&self.root);
        c.stdin(Stdio::null()).stdout(Stdio::null());
        match self.errlog.try_clone() {
            Ok(f) => c.stderr(f),
            Err(_) => c.stderr(Stdio::null()),
        };
        c
    }

    pub fn create(&self, bundle: &Path, id: &str, pid_file: &Path) -> Command {
        let mut c = self.base();
        c.arg("create").arg("--bundle").arg(bundle);
        c.arg("--pid-file").arg(pid_file).arg(id);
        c
    }

    pub fn start(&self, id: &str) -> Command {
        let mut c = self.base();
        c.arg("start").arg(id);
        c
    }

    pub fn run(&self, bundle: &Path, id: &str) -> Command {
        let mut c = self.base();
        c.arg("run").arg("--bundle").arg(bundle).arg(id);
        c
    }

    pub fn exec(&self, id: &str, args: &[&str]) -> Command {
        let mut c = self.base();
        c.arg("exec").arg(id).args(args);
        c
    }

    pub fn delete(&self, id: &str, force: bool) -> Command {
        let mut c = self.base();
        c.arg("delete");
        if force {
            c.arg("--force");
        }
        c.arg(id);
        c
    }

    pub fn state(&self, id: &str) -> Command {
        let mut c = self.base();
        c.arg("state").arg(id);
        c
    }

    pub fn list(&self) -> Command {
        let mut c = self.base();
        c.arg("list");
        c
    }

    pub fn kill(&self, id: &str, signal: &str) -> Command {
        let mut c = self.base();
        c.arg("kill").arg(id).arg(signal);
        c
    }

    /// Clears the stderr log; call outside the timed window.
    pub fn reset_errlog(&self) {
        let _ = self.errlog.set_len(0);
    }

    /// Runs `cmd` (built by this runtime) to completion, timed.
    pub fn invoke(&self, mut cmd: Command) -> Result<Finished> {
        self.reset_errlog();
        let running = Running::spawn(&mut cmd).map_err(|e| Error::io("spawn", &self.path, e))?;
        self.finish(&cmd, running)
    }

    /// Waits for a command spawned earlier and turns failure into an error
    /// quoting the runtime's stderr.
    pub fn finish(&self, cmd: &Command, running: Running) -> Result<Finished> {
        let deadline = running.started() + self.timeout;
        match running.wait(deadline) {
            Ok(f) if f.status == 0 => Ok(f),
            Ok(f) => Err(Error::Command {
                runtime: self.name.clone(),
                cmd: show(cmd),
                status: describe_status(f.status),
                stderr: self.last_stderr(),
            }),
            Err(WaitError::Timeout) => Err(Error::Timeout {
                runtime: self.name.clone(),
                cmd: show(cmd),
                secs: self.timeout.as_secs(),
            }),
            Err(WaitError::Io(e)) => Err(Error::io("wait for", &self.path, e)),
        }
    }

    fn last_stderr(&self) -> String {
        let mut s = String::new();
        let mut f = &self.errlog;
        let _ = f.seek(SeekFrom::Start(0));
        let _ = f.take(4096).read_to_string(&mut s);
        let s = s.trim();
        if s.is_empty() {
            "(nothing on stderr)".into()
        } else {
            s.lines().last().unwrap_or(s).to_string()
        }
    }

    /// Ids of the containers left in this runtime's root.
    pub fn leftovers(&self) -> Vec<String> {
        let root = self.root.to_string_lossy();
        probe(
            &self.path,
            &["--root", &root, "list", "-q"],
            &self.scratch,
            self.timeout,
        )
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
    }
}

/// The command line as one would type it, for error messages.
fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs a quick informational command and returns its stdout. Output
/// goes through a file so a hanging binary can be killed at the deadline
/// without a reader thread.
fn probe(
    path: &Path,
    args: &[&str],
    scratch: &Path,
    timeout: Duration,
) -> std::result::Result<String, String> {
    let out = File::create(scratch).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(path);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(Stdio::null());
    let running = Running::spawn(&mut cmd).map_err(|e| e.to_string())?;
    let done = match running.wait(Instant::now() + timeout) {
        Ok(f) => f,
        Err(WaitError::Timeout) => return Err(format!("no answer within {} s", timeout.as_secs())),
        Err(WaitError::Io(e)) => return Err(e.to_string()),
    };
    let text = fs::read_to_string(scratch).unwrap_or_default();
    let _ = fs::remove_file(scratch);
    if done.status != 0 {
        return Err(describe_status(done.status));
    }
    Ok(text.trim().to_string())
}
