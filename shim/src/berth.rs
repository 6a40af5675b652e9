//! Driving the `berth` binary: every container operation is one berth
//! command with the shim's state root and a JSON log, whose last error line
//! becomes the message containerd shows.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::fcntl::OFlag;
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
    /// The runtime binary to exec for every command; None runs berth's code
    /// linked into the shim (see helper).
    #[serde(default)]
    pub binary: Option<PathBuf>,
    pub root: PathBuf,
    pub systemd_cgroup: bool,
    pub log: PathBuf,
}

pub const SAVED: &str = "berth-shim.json";

/// Set in the shim's environment (containerd passes its own) to exec the
/// `berth` binary instead of running the linked-in library: for comparing
/// the two, and as a way out should the library path misbehave.
pub const EXEC_ENV: &str = "BERTH_SHIM_EXEC";

/// The container's three stdio streams for the berth command (and through it
/// the container process); None is /dev/null.
pub struct Io {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

impl Io {
    pub fn null() -> Io {
        Io {
            stdin: None,
            stdout: None,
            stderr: None,
        }
    }
}

/// Whether every command execs the berth binary: always in a shim built
/// without the `in-process` feature.
pub fn exec_forced() -> bool {
    !cfg!(feature = "in-process")
        || std::env::var_os(EXEC_ENV).is_some_and(|v| !v.is_empty() && v != "0")
}

/// The runtime binary for a container: the one its options name (exec'd),
/// else berth's own code in the shim unless `EXEC_ENV` asks for the binary.
pub fn choose_binary(name: Option<&str>) -> Result<Option<PathBuf>> {
    match name.filter(|n| !n.is_empty()) {
        Some(n) => find_binary(Some(n)).map(Some),
        None if exec_forced() => find_binary(None).map(Some),
        None => Ok(None),
    }
}

/// Find `berth`: an explicit name (a path, or looked up on PATH), else the
/// one installed next to the shim, else PATH.
fn find_binary(name: Option<&str>) -> Result<PathBuf> {
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

    fn argv<'a>(&'a self, args: &[&'a OsStr]) -> Vec<&'a OsStr> {
        let mut v: Vec<&OsStr> = vec![
            OsStr::new("berth"),
            OsStr::new("--root"),
            self.root.as_os_str(),
            OsStr::new("--log"),
            self.log.as_os_str(),
            OsStr::new("--log-format"),
            OsStr::new("json"),
        ];
        if self.systemd_cgroup {
            v.push(OsStr::new("--systemd-cgroup"));
        }
        v.extend_from_slice(args);
        v
    }

    /// Start one berth command. `args` starts with the berth subcommand.
    fn start(&self, args: &[&OsStr], io: Io) -> Result<Running> {
        let argv = self.argv(args);
        let Some(binary) = &self.binary else {
            #[cfg(feature = "in-process")]
            return Ok(Running::Worker(crate::helper::start(
                &argv,
                [io.stdin, io.stdout, io.stderr],
            )?));
            #[cfg(not(feature = "in-process"))]
            return Err(Error::invalid(
                "runtime binary",
                "none saved, and this shim was built without in-process berth",
            ));
        };
        let stdio = |f: Option<OwnedFd>| f.map_or_else(Stdio::null, Stdio::from);
        let mut cmd = Command::new(binary);
        cmd.args(&argv[1..]);
        cmd.stdin(stdio(io.stdin))
            .stdout(stdio(io.stdout))
            .stderr(stdio(io.stderr));
        let child = cmd.spawn().map_err(Error::io("exec", binary))?;
        // Drop our copies of the stdio now: the container must hold the only
        // writers, or readers never see EOF.
        drop(cmd);
        Ok(Running::Exec(child))
    }

    /// Run one berth command. `args` starts with the berth subcommand.
    pub fn run(&self, reaper: Option<&Reaper>, args: &[&OsStr], io: Io, id: &str) -> Result<()> {
        let code = self.start(args, io)?.wait(reaper)?;
        self.finish(code, args, id)
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
        let pipe = || nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(Error::sys("pipe"));
        let (out_r, out_w) = pipe()?;
        let (in_r, in_w) = match input {
            Some(_) => pipe().map(|(r, w)| (Some(r), Some(w)))?,
            None => (None, None),
        };
        let io = Io {
            stdin: in_r,
            stdout: Some(out_w),
            stderr: None,
        };
        let running = self.start(args, io)?;
        if let (Some(data), Some(w)) = (input, in_w) {
            // A write error (berth exited early) shows in its exit status.
            let _ = File::from(w).write_all(data);
        }
        let mut out = Vec::new();
        let read = File::from(out_r).read_to_end(&mut out);
        let code = running.wait(reaper)?;
        read.map_err(Error::io("read output of berth", args[0]))?;
        self.finish(code, args, id)?;
        Ok(out)
    }

    fn finish(&self, code: i32, args: &[&OsStr], id: &str) -> Result<()> {
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

/// A berth command under way.
enum Running {
    Exec(std::process::Child),
    #[cfg(feature = "in-process")]
    Worker(crate::helper::Pending),
}

impl Running {
    /// Its exit code. An exec'd binary is collected through the reaper when
    /// there is one (the shim reaps all its children); without one (the
    /// `delete` action) std waits as usual.
    fn wait(self, reaper: Option<&Reaper>) -> Result<i32> {
        match (self, reaper) {
            #[cfg(feature = "in-process")]
            (Running::Worker(p), _) => p.wait(),
            (Running::Exec(c), Some(r)) => Ok(r.wait(c.id() as i32)),
            (Running::Exec(mut c), None) => Ok(c
                .wait()
                .map_err(Error::io("wait for", "berth"))?
                .code()
                .unwrap_or(128)),
        }
    }
}
