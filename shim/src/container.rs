//! One container of this shim: its bundle, its berth configuration, the
//! init process and the execs, and the operations that run berth.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

fn read_pid(path: &Path) -> Result<i32> {
    let s = std::fs::read_to_string(path).map_err(Error::io("read pid file", path))?;
    s.trim()
        .parse()
        .map_err(|_| Error::invalid(path.display().to_string(), format!("not a pid: {s:?}")))
}

/// Run a berth command that starts a process (create, exec) with its stdio,
/// through a console socket when it has a terminal; returns the pid.
fn spawn_process(
    b: &Berth,
    reaper: &Reaper,
    id: &str,
    proc_: &Process,
    pid_file: &Path,
    args: &[&OsStr],
) -> Result<()> {
    let st = &proc_.stdio;
    let _ = std::fs::remove_file(pid_file);
    let mut argv: Vec<&OsStr> = args.to_vec();
    argv.push(OsStr::new("--pid-file"));
    argv.push(pid_file.as_os_str());
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
    if let Some(s) = &sock {
        argv.push(OsStr::new("--console-socket"));
        argv.push(s.path.as_os_str());
    }
    argv.push(OsStr::new(id));
    let run = b.run(Some(reaper), &argv, io, id);
    if let Err(e) = run {
        if let Some(c) = closer {
            c.lock().unwrap().take();
        }
        return Err(e);
    }
    let console = match &sock {
        Some(s) => Some(Console::start(s.receive()?, &st.stdin, &st.stdout)?),
        None => None,
    };
    let pid = read_pid(pid_file)?;
    let _ = std::fs::remove_file(pid_file);
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
        let mut args: Vec<&OsStr> = vec![
            OsStr::new("create"),
            OsStr::new("--bundle"),
            c.bundle.as_os_str(),
        ];
        if opts.no_pivot_root {
            args.push(OsStr::new("--no-pivot"));
        }
        if opts.no_new_keyring {
            args.push(OsStr::new("--no-new-keyring"));
        }
        let pid_file = c.bundle.join("init.pid");
        if let Err(e) = spawn_process(&c.berth, reaper, &c.id, &c.init, &pid_file, &args) {
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
        let r = self.berth.run(
            reaper,
            &[
                OsStr::new("delete"),
                OsStr::new("--force"),
                OsStr::new(&self.id),
            ],
            Io::null(),
            &self.id,
        );
        let r = match r {
            Err(Error::Runtime { msg, .. })
                if msg.contains("does not exist") || msg.contains("not found") =>
            {
                Ok(())
            }
            r => r,
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
            self.berth.run(
                Some(reaper),
                &[OsStr::new("start"), OsStr::new(&self.id)],
                Io::null(),
                &self.id,
            )?;
        } else {
            let spec = self.bundle.join(format!("exec-{exec_id}.json"));
            let pid_file = self.bundle.join(format!("exec-{exec_id}.pid"));
            let args = [
                OsStr::new("exec"),
                OsStr::new("--detach"),
                OsStr::new("--process"),
                spec.as_os_str(),
            ];
            let r = spawn_process(&self.berth, reaper, &self.id, p, &pid_file, &args);
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
            let sig = signal.to_string();
            let mut args = vec![OsStr::new("kill")];
            if all {
                args.push(OsStr::new("--all"));
            }
            args.extend([OsStr::new(&self.id), OsStr::new(&sig)]);
            return self.berth.run(Some(reaper), &args, Io::null(), &self.id);
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
