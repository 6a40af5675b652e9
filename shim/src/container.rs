//! One container of this shim: its bundle, its berth configuration, the
//! init process and the execs, and the operations that run berth.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::Arc;

use ::berth::api::{CreateOptions, Exec, ExecOptions, Request, Response};
use containerd_shim_protos::shim::shim::CreateTaskRequest;
use containerd_shim_protos::types::task::Status;

use crate::berth::{self, Berth, Io};
use crate::console::{Console, ConsoleSocket};
use crate::error::{Error, Result};
use crate::mounts;
use crate::options;
use crate::process::{self, Process};
use crate::reaper::Reaper;
use crate::stdio;

pub struct Container {
    pub id: String,
    pub bundle: PathBuf,
    pub berth: Berth,
    pub init: Arc<Process>,
    pub execs: HashMap<String, Arc<Process>>,
    /// Reaper token of the OOM watch.
    pub oom: Option<u64>,
    rootfs_mounted: bool,
}

/// Run a request that starts a process (create, exec) with its stdio,
/// through a console socket when it has a terminal, and record the pid.
/// `set_console` puts the socket's path into the request's options.
fn spawn_process(
    b: &Berth,
    reaper: &Reaper,
    id: &str,
    proc_: &Process,
    req: impl FnOnce(Option<PathBuf>) -> Request,
) -> Result<()> {
    let st = &proc_.stdio;
    let (io, closer, sock) = if st.terminal {
        if !matches!(crate::logio::parse(&st.stdout)?, crate::logio::Uri::Fifo) {
            return Err(Error::invalid(
                "stdout",
                "a file or binary log URI with a terminal is not supported by the berth shim",
            ));
        }
        let sock = ConsoleSocket::new()?;
        (Io::null(), None, Some(sock))
    } else {
        // The state root is always `<root>/<namespace>` (see create).
        let ns = b.root.file_name().and_then(OsStr::to_str).unwrap_or("");
        let (io, closer) = stdio::open(&st.stdin, &st.stdout, &st.stderr, reaper, id, ns)?;
        (io, closer, None)
    };
    let req = req(sock.as_ref().map(|s| s.path.clone()));
    let pid = match b.request(Some(reaper), req, io) {
        Ok(Response::Created(c)) => c.pid,
        Ok(Response::Exec(Exec::Detached { pid })) => pid,
        Ok(r) => {
            return Err(Error::invalid(
                "berth reply",
                format!("{r:?} names no process"),
            ))
        }
        Err(e) => {
            if let Some(c) = closer {
                c.lock().unwrap().take();
            }
            return Err(e);
        }
    };
    let console = match &sock {
        Some(s) => Some(Console::start(s.receive()?, &st.stdin, &st.stdout)?),
        None => None,
    };
    let mut s = proc_.state.lock().unwrap();
    s.pid = pid;
    s.stdin = closer;
    s.console = console;
    Ok(())
}

impl Container {
    pub fn create(req: &CreateTaskRequest, namespace: &str, reaper: &Reaper) -> Result<Container> {
        if !req.checkpoint.is_empty() {
            return Err(Error::invalid(
                "checkpoint",
                "restore is not supported by the berth shim",
            ));
        }
        let opts = options::decode(req.options.as_ref())?;
        let bundle = PathBuf::from(&req.bundle);
        let b = Berth {
            binary: berth::choose_binary(opts.binary_name.as_deref())?,
            root: opts
                .root
                .unwrap_or_else(|| PathBuf::from(berth::DEFAULT_ROOT))
                .join(namespace),
            systemd_cgroup: opts.systemd_cgroup,
            log: bundle.join("log.json"),
        };
        std::fs::create_dir_all(&b.root).map_err(Error::io("create state root", &b.root))?;
        b.save(&bundle)?;
        let rootfs = bundle.join("rootfs");
        mounts::mount_rootfs(&req.rootfs, &rootfs)?;
        let mut c = Container {
            id: req.id.clone(),
            bundle,
            berth: b,
            init: Arc::new(Process::new(process::Stdio {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
            })),
            execs: HashMap::new(),
            oom: None,
            rootfs_mounted: !req.rootfs.is_empty(),
        };
        let create = |console_socket| Request::Create {
            id: c.id.clone(),
            options: CreateOptions {
                bundle: c.bundle.clone(),
                console_socket,
                no_pivot: opts.no_pivot_root,
                no_new_keyring: opts.no_new_keyring,
                ..CreateOptions::default()
            },
        };
        if let Err(e) = spawn_process(&c.berth, reaper, &c.id, &c.init, create) {
            if let Err(ce) = c.cleanup(Some(reaper)) {
                eprintln!("berth shim: cleanup after failed create of {}: {ce}", c.id);
            }
            return Err(e);
        }
        Ok(c)
    }

    pub fn handle(&self) -> Handle {
        Handle {
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            berth: self.berth.clone(),
        }
    }

    pub fn process(&self, exec_id: &str) -> Result<&Arc<Process>> {
        if exec_id.is_empty() {
            return Ok(&self.init);
        }
        self.execs.get(exec_id).ok_or_else(|| Error::ExecNotFound {
            id: self.id.clone(),
            exec: exec_id.to_string(),
        })
    }

    /// Remove the container with berth and undo the rootfs mounts. With a
    /// reaper (the serving shim) berth's exit comes through it.
    pub fn cleanup(&mut self, reaper: Option<&Reaper>) -> Result<()> {
        let req = Request::Delete {
            id: self.id.clone(),
            force: true,
        };
        let r = match self.berth.request(reaper, req, Io::null()) {
            Err(e) if e.is_not_found() => Ok(()),
            r => r.map(drop),
        };
        if self.rootfs_mounted {
            mounts::unmount_all(&self.bundle.join("rootfs"))?;
            self.rootfs_mounted = false;
        }
        r
    }
}

/// What start and kill need of a container, cloned out of the service's
/// lock so that berth runs without holding it.
#[derive(Clone)]
pub struct Handle {
    pub id: String,
    pub bundle: PathBuf,
    pub berth: Berth,
}

impl Handle {
    /// Start the init or an exec. Takes no container lock: berth runs
    /// while State and Wait of other processes keep being answered.
    pub fn start(&self, reaper: &Reaper, exec_id: &str, p: &Process) -> Result<i32> {
        if p.state.lock().unwrap().status != Status::CREATED {
            return Err(Error::State(format!(
                "process {} of {} is not in created state",
                name(exec_id),
                self.id
            )));
        }
        if exec_id.is_empty() {
            let req = Request::Start {
                id: self.id.clone(),
            };
            self.berth.request(Some(reaper), req, Io::null())?;
        } else {
            let spec = self.bundle.join(format!("exec-{exec_id}.json"));
            let exec = |console_socket| Request::Exec {
                id: self.id.clone(),
                options: Box::new(ExecOptions {
                    process_file: Some(spec.clone()),
                    detach: true,
                    console_socket,
                    ..ExecOptions::default()
                }),
            };
            let r = spawn_process(&self.berth, reaper, &self.id, p, exec);
            let _ = std::fs::remove_file(&spec);
            r?;
        }
        let mut s = p.state.lock().unwrap();
        // The reaper may already have recorded a quick exit.
        if s.status == Status::CREATED {
            s.status = Status::RUNNING;
        }
        Ok(s.pid)
    }

    pub fn kill(
        &self,
        reaper: &Reaper,
        exec_id: &str,
        p: &Process,
        signal: u32,
        all: bool,
    ) -> Result<()> {
        let (pid, status) = {
            let s = p.state.lock().unwrap();
            (s.pid, s.status)
        };
        // NotFound for a finished process, with or without `all`: containerd's
        // CRI kills an exited task with all=true before deleting it and
        // accepts only NotFound or FailedPrecondition there (else it retries
        // forever), as the runc shim answers.
        if status == Status::STOPPED {
            return Err(Error::NotFound(format!(
                "{} (process already finished)",
                self.id
            )));
        }
        if exec_id.is_empty() {
            let req = Request::Kill {
                id: self.id.clone(),
                signal: signal as i32,
                all,
            };
            return self.berth.request(Some(reaper), req, Io::null()).map(drop);
        }
        let sig = nix::sys::signal::Signal::try_from(signal as i32)
            .map_err(|_| Error::invalid("signal", format!("{signal} is not a signal")))?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig)
            .map_err(Error::sys(format!("kill exec {exec_id} (pid {pid})")))
    }
}

pub fn name(exec_id: &str) -> &str {
    if exec_id.is_empty() {
        "init"
    } else {
        exec_id
    }
}
