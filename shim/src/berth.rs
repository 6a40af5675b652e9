//! Driving the `berth` binary: every container operation is one berth
//! command with the shim's state root and a JSON log, whose last error line
//! becomes the message containerd shows.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::reaper::Reaper;

/// Default state root; the namespace is appended, as containerd namespaces
/// may reuse container ids.
pub const DEFAULT_ROOT: &str = "/run/containerd/berth";

/// What a later `delete` action (a fresh shim process) needs to find the
/// container again; saved in the bundle at create.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Berth {
    pub binary: PathBuf,
    pub root: PathBuf,
    pub systemd_cgroup: bool,
    pub log: PathBuf,
}

pub const SAVED: &str = "berth-shim.json";

/// The container's three stdio streams for the berth command (and through it
/// the container process).
pub struct Io {
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
}

impl Io {
    pub fn null() -> Io {
        Io {
            stdin: Stdio::null(),
            stdout: Stdio::null(),
            stderr: Stdio::null(),
        }
    }
}

/// Find `berth`: an explicit name (a path, or looked up on PATH), else the
/// one installed next to the shim, else PATH.
pub fn find_binary(name: Option<&str>) -> Result<PathBuf> {
    let name = name.filter(|n| !n.is_empty());
    if let Some(n) = name.filter(|n| n.contains('/')) {
        return Ok(PathBuf::from(n));
    }
    if name.is_none() {
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
        {
            let p = dir.join("berth");
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    let n = name.unwrap_or("berth");
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(n))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::invalid(
                "runtime binary",
                format!("{n} not found next to the shim or on PATH"),
            )
        })
}

impl Berth {
    pub fn save(&self, bundle: &Path) -> Result<()> {
        let p = bundle.join(SAVED);
        let data = serde_json::to_vec(self).expect("serialize berth config");
        std::fs::write(&p, data).map_err(Error::io("write", p))
    }

    pub fn load(bundle: &Path) -> Result<Berth> {
        let p = bundle.join(SAVED);
        let data = std::fs::read(&p).map_err(Error::io("read", &p))?;
        serde_json::from_slice(&data)
            .map_err(|e| Error::invalid(p.display().to_string(), e.to_string()))
    }

    fn command(&self, args: &[&OsStr]) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--root").arg(&self.root);
        c.arg("--log").arg(&self.log).args(["--log-format", "json"]);
        if self.systemd_cgroup {
            c.arg("--systemd-cgroup");
        }
        c.args(args);
        c
    }

    /// Run one berth command to completion. With a reaper, the exit is
    /// collected through it (the shim reaps all its children); without one
    /// (the `delete` action) std waits as usual.
    /// `args` starts with the berth subcommand.
    pub fn run(&self, reaper: Option<&Reaper>, args: &[&OsStr], io: Io, id: &str) -> Result<()> {
        let mut cmd = self.command(args);
        cmd.stdin(io.stdin).stdout(io.stdout).stderr(io.stderr);
        let child = cmd.spawn().map_err(Error::io("exec", &self.binary))?;
        // Drop our copies of the stdio now: the container must hold the only
        // writers, or readers never see EOF.
        drop(cmd);
        self.finish(reaper, child, args, id)
    }

    /// Run one berth command that reads `input` on stdin (if any) and
    /// return what it printed on stdout.
    pub fn output(
        &self,
        reaper: Option<&Reaper>,
        args: &[&OsStr],
        input: Option<&[u8]>,
        id: &str,
    ) -> Result<Vec<u8>> {
        let mut cmd = self.command(args);
        cmd.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
        let mut child = cmd.spawn().map_err(Error::io("exec", &self.binary))?;
        drop(cmd);
        if let (Some(data), Some(mut w)) = (input, child.stdin.take()) {
            // A write error (berth exited early) shows in its exit status.
            let _ = w.write_all(data);
        }
        let mut out = Vec::new();
        if let Some(mut r) = child.stdout.take() {
            r.read_to_end(&mut out)
                .map_err(Error::io("read output of", &self.binary))?;
        }
        self.finish(reaper, child, args, id)?;
        Ok(out)
    }

    fn finish(
        &self,
        reaper: Option<&Reaper>,
        mut child: std::process::Child,
        args: &[&OsStr],
        id: &str,
    ) -> Result<()> {
        let code = match reaper {
            Some(r) => r.wait(child.id() as i32),
            None => child
                .wait()
                .map_err(Error::io("wait for", &self.binary))?
                .code()
                .unwrap_or(128),
        };
        if code == 0 {
            return Ok(());
        }
        Err(Error::Runtime {
            cmd: args
                .first()
                .unwrap_or(&OsStr::new(""))
                .to_string_lossy()
                .into_owned(),
            id: id.to_string(),
            msg: self
                .last_error()
                .unwrap_or_else(|| format!("exit status {code}")),
        })
    }

    /// The message of the last `error` line in the JSON log.
    fn last_error(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct Line {
            level: String,
            msg: String,
        }
        let f = File::open(&self.log).ok()?;
        BufReader::new(f)
            .lines()
            .map_while(|l| l.ok())
            .filter_map(|l| serde_json::from_str::<Line>(&l).ok())
            .filter(|l| l.level == "error")
            .last()
            .map(|l| l.msg)
    }
}
