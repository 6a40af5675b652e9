//! berth for one container: its state root and log, and the one way the
//! shim runs an operation, a typed `berth::api::Request` answered by a
//! `Reply`: in a forked worker of the helper (see `helper`), or by the berth
//! binary (see `runcli`).

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use berth::api::helper::Job;
use berth::api::{Reply, Request, Response, Runtime};
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
    /// The runtime binary to exec for every command; None sends requests
    /// to the helper (see helper).
    #[serde(default)]
    pub binary: Option<PathBuf>,
    pub root: PathBuf,
    pub systemd_cgroup: bool,
    pub log: PathBuf,
}

pub const SAVED: &str = "berth-shim.json";

/// Set in the shim's environment (containerd passes its own) to exec the
/// `berth` binary for every command instead of using the helper: for comparing
/// the two, and as a way out should the helper misbehave.
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

/// Whether every command execs the berth binary instead of going to the
/// helper.
pub fn exec_forced() -> bool {
    std::env::var_os(EXEC_ENV).is_some_and(|v| !v.is_empty() && v != "0")
}

/// The runtime binary for a container: the one its options name (exec'd),
/// else the helper unless `EXEC_ENV` asks for the binary per command.
pub fn choose_binary(name: Option<&str>) -> Result<Option<PathBuf>> {
    match name.filter(|n| !n.is_empty()) {
        Some(n) => find_binary(Some(n)).map(Some),
        None if exec_forced() => find_binary(None).map(Some),
        None => Ok(None),
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

    /// The runtime API object for this container's state root.
    pub fn runtime(&self) -> Runtime {
        Runtime {
            systemd_cgroup: self.systemd_cgroup,
            ..Runtime::new(&self.root)
        }
    }

    /// Run one request with `io` as the stdio of the operation (and
    /// through it of the process it starts): by the helper (see `helper`),
    /// or by the berth binary when one is chosen or no helper runs.
    pub fn request(&self, reaper: Option<&Reaper>, req: Request, io: Io) -> Result<Response> {
        let (op, id) = (req.name(), req.id().to_owned());
        let reply = match &self.binary {
            Some(binary) => crate::runcli::run(self, binary, reaper, &req, io)?,
            None if crate::helper::running() || cfg!(feature = "in-process") => {
                let job = Job {
                    runtime: self.runtime(),
                    log: self.log.clone(),
                    request: req,
                };
                crate::helper::start(&job, [io.stdin, io.stdout, io.stderr])?.wait()?
            }
            // The `delete` action of a shim without berth's code.
            None => crate::runcli::run(self, &find_binary(None)?, reaper, &req, io)?,
        };
        match reply {
            Reply::Ok(r) => Ok(r),
            Reply::Err { kind, message } => Err(Error::Runtime {
                cmd: op.to_owned(),
                id,
                kind,
                msg: message,
            }),
        }
    }
}
