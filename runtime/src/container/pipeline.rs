//! What `create` and `restore` share: the bundle read and checked before
//! anything is made, the records they save (CRASH-CONSISTENCY.md: each is
//! written before what it names), the pid file, and the guard that undoes
//! everything made so far when a later step fails.

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::cgroups::{Cgroup, Driver};
use crate::error::{Context, Error, Result};
use crate::state::{self, Dir, Stored};

/// A bundle read and checked, with its cgroup resolved: nothing is made on
/// the host yet, so an error from here leaves nothing to undo.
pub(crate) struct Prepared {
    /// The bundle, canonical.
    pub bundle: PathBuf,
    pub spec: Spec,
    /// The config's bytes, saved as they were read.
    pub raw_config: Vec<u8>,
    /// The rootfs, canonical (it is no symlink and not under one).
    pub rootfs: PathBuf,
    /// The container's cgroup, not created yet.
    pub cgroup: Cgroup,
}

impl Prepared {
    /// Read and check `bundle`'s config for a container `id`.
    pub fn new(id: &str, bundle: &Path, driver: Driver) -> Result<Prepared> {
        state::validate_id(id)?;
        let bundle = fs::canonicalize(bundle).map_err(|source| Error::Io {
            ctx: format!("bundle {}", bundle.display()),
            source,
        })?;
        let (spec, raw_config) = super::load_spec(&bundle)?;
        crate::validate::required(&spec)?;
        crate::validate::unsupported(&spec)?;
        crate::userns::check(&spec)?;
        crate::hooks::validate(spec.hooks().as_ref())?;
        if let Some(s) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            crate::seccomp::check_exec_allowed(s)?;
        }
        let rootfs = rootfs(&spec, &bundle)?;
        let linux = spec.linux().as_ref();
        let cgroup = Cgroup::resolve_with(
            driver,
            linux.and_then(|l| l.cgroups_path().as_deref()),
            spec.annotations().as_ref(),
            id,
        )?;
        Ok(Prepared {
            bundle,
            spec,
            raw_config,
            rootfs,
            cgroup,
        })
    }

    /// The record of a container being made: what it names is to be
    /// removed, never started.
    pub fn record(&self, id: &str, cgroup: &Cgroup) -> Stored {
        Stored {
            id: id.to_string(),
            pid: 0,
            start_time: 0,
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: String::new(),
            annotations: Default::default(),
            cgroup: cgroup.clone(),
            own_pidns: has_own_pidns(&self.spec),
            poststart: Vec::new(),
            poststop: Vec::new(),
            creating: true,
        }
    }

    /// The final record of a container whose init is `pid`.
    pub fn finished(&self, id: &str, cgroup: &Cgroup, pid: i32) -> Result<Stored> {
        let start_time = state::proc_start_time(pid)
            .ok_or_else(|| Error::Init(format!("container init {pid} exited right away")))?;
        let hooks = self.spec.hooks().as_ref();
        Ok(Stored {
            pid,
            start_time,
            created: crate::clock::now_rfc3339(),
            annotations: self.spec.annotations().clone().unwrap_or_default(),
            poststart: hooks
                .and_then(|h| h.poststart().clone())
                .unwrap_or_default(),
            poststop: hooks.and_then(|h| h.poststop().clone()).unwrap_or_default(),
            creating: false,
            ..self.record(id, cgroup)
        })
    }
}

/// root.path under the bundle, which must be a directory, not the host's
/// "/", and neither a symlink nor under one (as runc).
fn rootfs(spec: &Spec, bundle: &Path) -> Result<PathBuf> {
    let root_path = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::field("root", "must be set"))?
        .path();
    let rootfs = bundle.join(root_path);
    if !rootfs.is_dir() {
        return Err(Error::field(
            "root.path",
            format!(
                "rootfs {} does not exist or is not a directory",
                rootfs.display()
            ),
        ));
    }
    let plain = rootfs.components().fold(PathBuf::new(), |mut p, c| {
        match c {
            std::path::Component::ParentDir => drop(p.pop()),
            std::path::Component::CurDir => {}
            c => p.push(c),
        }
        p
    });
    let real = fs::canonicalize(&rootfs).ctx(|| format!("resolve rootfs {}", rootfs.display()))?;
    if real == Path::new("/") {
        // As runc: a container on the host's own root would mount over it.
        return Err(Error::field(
            "root.path",
            format!(
                "{:?} is the host's root directory \"/\"",
                root_path.display().to_string()
            ),
        ));
    }
    // As runc: a rootfs that is a symlink, or lies under one below the
    // (resolved) bundle, is refused rather than followed.
    if real != plain {
        return Err(Error::field(
            "root.path",
            format!(
                "rootfs {} is a symlink or under one (to {})",
                plain.display(),
                real.display()
            ),
        ));
    }
    Ok(real)
}

/// The container gets a pid namespace of its own (not a joined one).
pub(crate) fn has_own_pidns(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == LinuxNamespaceType::Pid && n.path().is_none())
        })
}

/// Written atomically, as engines poll for it.
pub(crate) fn write_pid_file(p: &Path, pid: i32) -> Result<()> {
    let dir = p.parent().unwrap_or(Path::new("."));
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    fs::write(&tmp, pid.to_string()).ctx(|| format!("write pid file {}", tmp.display()))?;
    fs::rename(&tmp, p).ctx(|| format!("write pid file {}", p.display()))
}

/// What a create or restore made so far, undone on drop unless kept: the
/// init (still our child: killed and reaped), whatever runs in the cgroup,
/// the cgroup, and last the state dir.
pub(crate) struct Rollback {
    dir: Option<Dir>,
    cgroup: Option<Cgroup>,
    child: Option<i32>,
}

impl Rollback {
    pub fn new(dir: Dir) -> Rollback {
        Rollback {
            dir: Some(dir),
            cgroup: None,
            child: None,
        }
    }

    pub fn dir(&self) -> &Dir {
        self.dir.as_ref().expect("the dir is kept only by keep()")
    }

    /// The cgroup exists now (or is recorded as claimed).
    pub fn cgroup(&mut self, cgroup: &Cgroup) {
        self.cgroup = Some(cgroup.clone());
    }

    /// The container's init exists now, as our child.
    pub fn child(&mut self, pid: i32) {
        self.child = Some(pid);
    }

    /// Success: nothing is undone, and the state dir is the caller's.
    pub fn keep(mut self) -> Dir {
        self.cgroup = None;
        self.child = None;
        self.dir.take().expect("keep() is called once")
    }
}

impl Drop for Rollback {
    fn drop(&mut self) {
        if let Some(pid) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
        if let Some(cgroup) = self.cgroup.take() {
            // Hooks the init ran, or a restored tree, may have left
            // processes in the cgroup.
            let _ = super::empty_cgroup(&cgroup, super::KILL_TIMEOUT);
            let _ = cgroup.remove();
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.destroy();
        }
    }
}
