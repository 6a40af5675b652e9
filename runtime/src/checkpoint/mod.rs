//! `berth checkpoint` and `berth restore` through CRIU's command line,
//! configured the way runc configures CRIU for a container: the rootfs as
//! CRIU's root, host-backed mounts and joined namespaces marked external,
//! cgroups managed by CRIU under the container's own cgroup, and the init's
//! stdio pipes re-attached at restore with `--inherit-fd`.
//!
//! Images go to `--image-path` with CRIU's log (dump.log, restore.log) next
//! to them, or in `--work-path`. A failure quotes the log's errors in one
//! line and leaves nothing of berth's behind: after a failed dump the
//! container runs on; after a failed restore no state, cgroup or mount stays.

pub mod criu;
pub mod external;

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxNamespaceType;

use crate::cgroups::{Cgroup, Driver, Layout};
use crate::error::{Context, Error, Result};
use crate::state::{self, Dir, Status, Stored};
pub use criu::CriuError;

/// Options shared by checkpoint and restore.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct CriuOpts {
    pub image_path: PathBuf,
    pub work_path: Option<PathBuf>,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    /// soft (default), full, strict or ignore.
    pub manage_cgroups_mode: Option<String>,
    /// The CRIU binary (runc's global --criu); None: `criu` from PATH.
    pub program: Option<PathBuf>,
}

#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct CheckpointOpts {
    pub criu: CriuOpts,
    pub leave_running: bool,
    /// Dump memory only (CRIU pre-dump); the container keeps running.
    pub pre_dump: bool,
    /// A previous pre-dump's image directory, relative to the image path.
    pub parent_path: Option<PathBuf>,
}

#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RestoreOpts {
    pub criu: CriuOpts,
    pub bundle: PathBuf,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
}

fn cgroup_mode(o: &CriuOpts) -> Result<&str> {
    match o.manage_cgroups_mode.as_deref().unwrap_or("soft") {
        m @ ("soft" | "full" | "strict" | "ignore") => Ok(m),
        m => Err(Error::Invalid(format!(
            "--manage-cgroups-mode {m:?}: expected soft, full, strict or ignore"
        ))),
    }
}

/// Make `p` (0700, as runc does) unless it exists; absolute.
fn prepare_dir(flag: &str, p: &Path) -> Result<PathBuf> {
    if p.as_os_str().is_empty() {
        return Err(Error::Invalid(format!("{flag} must be set")));
    }
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o700).create(p) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).ctx(|| format!("{flag} {}", p.display())),
    }
    std::fs::canonicalize(p).ctx(|| format!("{flag} {}", p.display()))
}

/// CRIU reads `--prev-images-dir` relative to the images directory; check
/// it as runc does, so a bad path is our clear error rather than CRIU's.
fn check_parent_path(images: &Path, parent: &Path) -> Result<()> {
    if parent.is_absolute() {
        return Err(Error::Invalid(format!(
            "--parent-path {}: must be relative to --image-path",
            parent.display()
        )));
    }
    let real = images.join(parent);
    match std::fs::metadata(&real) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::Invalid(format!(
            "--parent-path {}: {} is not a directory",
            parent.display(),
            real.display()
        ))),
        Err(e) => Err(e).ctx(|| format!("--parent-path {}: {}", parent.display(), real.display())),
    }
}

fn common_args(r: &mut criu::Run, o: &CriuOpts, images: &Path, work: Option<&Path>) -> Result<()> {
    if let Some(p) = &o.program {
        r.args[0] = p.into();
    }
    r.arg("--images-dir").arg(images);
    if let Some(w) = work {
        r.arg("--work-dir").arg(w);
    }
    r.arg(format!("--manage-cgroups={}", cgroup_mode(o)?))
        .flag(o.tcp_established, "--tcp-established")
        .flag(o.ext_unix_sk, "--ext-unix-sk")
        .flag(o.shell_job, "--shell-job")
        .flag(o.file_locks, "--file-locks");
    Ok(())
}

pub fn checkpoint(root: &Path, id: &str, o: &CheckpointOpts) -> Result<()> {
    let dir = Dir::open(root, id)?;
    let st = dir.load()?;
    let status = st.status(&dir.path);
    // Paused is fine, as in runc: `ctr task checkpoint` pauses the task
    // first, and CRIU's freezer handling copes with a frozen cgroup.
    if status != Status::Running && status != Status::Paused {
        return Err(Error::BadStatus {
            op: "checkpoint",
            id: id.into(),
            status: status.as_str().into(),
        });
    }
    cgroup_mode(&o.criu)?;
    let spec = dir.load_config()?;
    let images = prepare_dir("--image-path", &o.criu.image_path)?;
    let work = o
        .criu
        .work_path
        .as_deref()
        .map(|w| prepare_dir("--work-path", w))
        .transpose()?;
    if let Some(parent) = &o.parent_path {
        check_parent_path(&images, parent)?;
    }
    let op = if o.pre_dump { "pre-dump" } else { "dump" };
    let mut r = criu::Run::new(op, work.as_deref().unwrap_or(&images), "dump.log");
    common_args(&mut r, &o.criu, &images, work.as_deref())?;
    r.arg("-t")
        .arg(st.pid.to_string())
        .arg("--root")
        .arg(&st.rootfs);
    r.flag(o.leave_running || o.pre_dump, "--leave-running");
    // Memory tracking lets the next dump copy only pages changed since.
    r.flag(o.pre_dump || o.parent_path.is_some(), "--track-mem");
    if let Some(parent) = &o.parent_path {
        r.arg("--prev-images-dir").arg(parent);
    }
    // The cgroup freezer stops every task at once; without it CRIU ptraces
    // them one by one.
    let freezer = match st.cgroup.layout() {
        Layout::V2 => st.cgroup.paths().next(),
        _ => st.cgroup.controller_path("freezer"),
    };
    if let Some(f) = freezer {
        r.arg("--freeze-cgroup").arg(f);
    }
    for (name, path) in external::joined_namespaces(&spec) {
        let ino = external::ns_inode(&path)?;
        r.arg("--external")
            .arg(format!("{name}[{ino}]:{}", external::ns_key(name)));
    }
    if !o.pre_dump {
        for m in external::mounts(&spec, &st.cgroup) {
            r.arg("--external").arg(mnt_arg(&m.dest, &m.dest));
        }
        for p in external::masked_files(&spec, st.pid) {
            r.arg("--external").arg(mnt_arg(&p, Path::new("/dev/null")));
        }
        external::save_descriptors(&images, st.pid)?;
    }
    r.exec(None, &[], !o.criu.shell_job)?;
    // delete locks the state directory itself.
    drop(dir);
    if !(o.leave_running || o.pre_dump) {
        // CRIU killed the tasks once their images were written.
        crate::container::delete(root, id, true)?;
    }
    Ok(())
}

fn mnt_arg(key: &Path, val: &Path) -> String {
    format!("mnt[{}]:{}", key.display(), val.display())
}

/// Restore a checkpointed container as `id`; returns the exit status to
/// use (the container's, unless detached).
/// With the systemd driver the unit is started by the CRIU process itself
/// (see `criu::child`), as runc puts CRIU's pid in it: CRIU restores the
/// tasks into its own cgroup.
pub fn restore(root: &Path, id: &str, o: &RestoreOpts, driver: Driver) -> Result<i32> {
    state::validate_id(id)?;
    cgroup_mode(&o.criu)?;
    if o.console_socket.is_some() {
        // CRIU hands the new pty master over only in its RPC (swrk) mode.
        return Err(Error::Unsupported(
            "restore --console-socket (a terminal needs criu's swrk mode)".into(),
        ));
    }
    let images = std::fs::canonicalize(&o.criu.image_path)
        .ctx(|| format!("--image-path {}", o.criu.image_path.display()))?;
    let descriptors = external::load_descriptors(&images)?;
    let bundle =
        std::fs::canonicalize(&o.bundle).ctx(|| format!("bundle {}", o.bundle.display()))?;
    let (spec, raw) = crate::container::load_spec(&bundle)?;
    crate::validate::required(&spec)?;
    crate::validate::unsupported(&spec)?;
    let root_path = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_default();
    let rootfs = std::fs::canonicalize(bundle.join(&root_path))
        .ctx(|| format!("rootfs {}", root_path.display()))?;
    let work = o
        .criu
        .work_path
        .as_deref()
        .map(|w| prepare_dir("--work-path", w))
        .transpose()?;
    let linux = spec.linux().as_ref();
    let cgroup = Cgroup::resolve_with(
        driver,
        linux.and_then(|l| l.cgroups_path().as_deref()),
        spec.annotations().as_ref(),
        id,
    )?;

    let dir = Dir::create(root, id)?;
    let state_dir = dir.path.clone();
    let mut made = Made {
        dir: Some(dir),
        cgroup: None,
        mount: None,
    };
    made.dir.as_ref().map(|d| d.save_config(&raw)).transpose()?;
    cgroup.create(
        linux.and_then(|l| l.resources().as_ref()),
        linux.and_then(|l| l.devices().as_deref()),
    )?;
    made.cgroup = Some(cgroup.clone());
    let criu_root = state_dir.join("criu-root");
    std::fs::create_dir(&criu_root).ctx(|| format!("mkdir {}", criu_root.display()))?;
    bind(&rootfs, &criu_root)?;
    made.mount = Some(criu_root.clone());

    let pidfile = state_dir.join("criu.pid");
    let mut r = criu::Run::new("restore", work.as_deref().unwrap_or(&images), "restore.log");
    common_args(&mut r, &o.criu, &images, work.as_deref())?;
    r.arg("--root").arg(&criu_root);
    r.arg("--restore-detached")
        .arg("--restore-sibling")
        .arg("--evasive-devices");
    r.arg("--pidfile").arg(&pidfile);
    for m in external::mounts(&spec, &cgroup) {
        r.arg("--external").arg(mnt_arg(&m.dest, &m.source));
    }
    let masked = linux
        .and_then(|l| l.masked_paths().as_ref())
        .is_some_and(|m| !m.is_empty());
    if masked {
        r.arg("--external")
            .arg(mnt_arg(Path::new("/dev/null"), Path::new("/dev/null")));
    }
    for (fd, link) in descriptors.iter().enumerate() {
        if link.contains("pipe:") {
            r.arg("--inherit-fd").arg(format!("fd[{fd}]:{link}"));
        }
    }
    let mut ns_files = Vec::new();
    for (name, path) in external::joined_namespaces(&spec) {
        let f = std::fs::File::open(&path).ctx(|| format!("namespace {}", path.display()))?;
        let target = 3 + ns_files.len() as i32;
        r.arg("--inherit-fd")
            .arg(format!("fd[{target}]:{}", external::ns_key(name)));
        ns_files.push((f, target));
    }
    let fds: Vec<_> = ns_files.iter().map(|(f, t)| (f.as_raw_fd(), *t)).collect();
    r.exec(Some(&cgroup), &fds, false)?;
    made.unmount();

    let pid_text =
        std::fs::read_to_string(&pidfile).ctx(|| format!("read {}", pidfile.display()))?;
    let _ = std::fs::remove_file(&pidfile);
    let pid: i32 = pid_text
        .trim()
        .parse()
        .map_err(|_| Error::Init(format!("criu pidfile: {pid_text:?}")))?;
    let start_time = state::proc_start_time(pid)
        .ok_or_else(|| Error::Init(format!("restored init {pid} exited at once")))?;
    let hooks = spec.hooks().as_ref();
    let st = Stored {
        id: id.into(),
        pid,
        start_time,
        bundle,
        rootfs,
        created: state::now_rfc3339(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        cgroup,
        own_pidns: linux
            .and_then(|l| l.namespaces().as_ref())
            .is_some_and(|n| {
                n.iter()
                    .any(|ns| ns.typ() == LinuxNamespaceType::Pid && ns.path().is_none())
            }),
        poststart: hooks
            .and_then(|h| h.poststart().clone())
            .unwrap_or_default(),
        poststop: hooks.and_then(|h| h.poststop().clone()).unwrap_or_default(),
        creating: false,
    };
    if let Some(d) = made.dir.as_ref() {
        d.save(&st)?;
    }
    if let Some(p) = &o.pid_file {
        std::fs::write(p, pid.to_string()).ctx(|| format!("write pid file {}", p.display()))?;
    }
    made.keep();
    if o.detach {
        return Ok(0);
    }
    let sigs = crate::forward::block()?;
    let code = crate::forward::wait_forwarding(&sigs, pid);
    crate::container::delete(root, id, true)?;
    Ok(code)
}

fn bind(src: &Path, dst: &Path) -> Result<()> {
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_encoded_bytes()).map_err(|e| Error::Invalid(e.to_string()))
    };
    let (s, d) = (c(src)?, c(dst)?);
    // CRIU's root must be a mount point whose parent is not overmounted.
    // SAFETY: valid NUL-terminated paths; no fstype or data.
    let rc = unsafe {
        libc::mount(
            s.as_ptr(),
            d.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND | libc::MS_REC,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .ctx(|| format!("bind {} to {}", src.display(), dst.display()));
    }
    Ok(())
}

/// What restore made so far, undone on drop unless kept; the CRIU root
/// mount goes in any case.
struct Made {
    dir: Option<Dir>,
    cgroup: Option<Cgroup>,
    mount: Option<PathBuf>,
}

impl Made {
    fn unmount(&mut self) {
        if let Some(m) = self.mount.take() {
            if let Ok(c) = CString::new(m.as_os_str().as_encoded_bytes()) {
                // SAFETY: unmounting our own bind mount.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
            let _ = std::fs::remove_dir(&m);
        }
    }

    fn keep(&mut self) {
        self.dir = None;
        self.cgroup = None;
    }
}

impl Drop for Made {
    fn drop(&mut self) {
        self.unmount();
        if let Some(cg) = self.cgroup.take() {
            if let Ok(pids) = cg.pids() {
                for p in pids {
                    // SAFETY: killing leftovers of a failed restore in our cgroup.
                    unsafe { libc::kill(p, libc::SIGKILL) };
                }
            }
            let _ = cg.remove();
        }
        if let Some(d) = self.dir.take() {
            let _ = d.destroy();
        }
    }
}
