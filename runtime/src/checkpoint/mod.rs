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

use crate::cgroups::{Driver, Layout};
use crate::container::{write_pid_file, Prepared, Rollback};
use crate::error::{Context, Error, Result};
use crate::state::{Dir, Status};
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
        m => Err(Error::option(
            "--manage-cgroups-mode",
            format!("{m:?}"),
            "expected soft, full, strict or ignore",
        )),
    }
}

/// Make `p` (0700, as runc does) unless it exists; absolute.
fn prepare_dir(flag: &str, p: &Path) -> Result<PathBuf> {
    if p.as_os_str().is_empty() {
        return Err(Error::option(flag, "", "must be set"));
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
        return Err(Error::option(
            "--parent-path",
            parent.display().to_string(),
            "must be relative to --image-path",
        ));
    }
    let real = images.join(parent);
    match std::fs::metadata(&real) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::option(
            "--parent-path",
            parent.display().to_string(),
            format!("{} is not a directory", real.display()),
        )),
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
/// use (the container's, unless detached). The bundle is prepared and the
/// records saved as by `create` (CRASH-CONSISTENCY.md, "restore").
/// With the systemd driver the unit is started by the CRIU process itself
/// (see `criu::child`), as runc puts CRIU's pid in it: CRIU restores the
/// tasks into its own cgroup.
pub fn restore(root: &Path, id: &str, o: &RestoreOpts, driver: Driver) -> Result<i32> {
    cgroup_mode(&o.criu)?;
    if o.console_socket.is_some() {
        // CRIU hands the new pty master over only in its RPC (swrk) mode.
        return Err(Error::Unsupported(
            "restore --console-socket (a terminal needs criu's swrk mode)".into(),
        ));
    }
    let p = Prepared::new(id, &o.bundle, driver)?;
    let images = std::fs::canonicalize(&o.criu.image_path)
        .ctx(|| format!("--image-path {}", o.criu.image_path.display()))?;
    let descriptors = external::load_descriptors(&images)?;
    let work = o
        .criu
        .work_path
        .as_deref()
        .map(|w| prepare_dir("--work-path", w))
        .transpose()?;
    crate::interrupt::step("restore:validated")?;

    let mut made = Rollback::new(Dir::create(root, id)?);
    let planned = p.cgroup.clone();
    if p.cgroup.paths().all(|p| !p.exists()) {
        planned.claim_leaves();
    }
    crate::interrupt::step("restore:dir")?;
    made.dir().save(&p.record(id, &planned))?;
    crate::interrupt::step("restore:record")?;
    let linux = p.spec.linux().as_ref();
    let cgroup = p.cgroup.clone();
    cgroup.create(
        linux.and_then(|l| l.resources().as_ref()),
        linux.and_then(|l| l.devices().as_deref()),
    )?;
    made.cgroup(&cgroup);
    made.dir().save(&p.record(id, &cgroup))?;
    crate::interrupt::step("restore:cgroup")?;
    let state_dir = made.dir().path.clone();
    let criu_root = CriuRoot::bind(&p.rootfs, &made.dir().criu_root())?;
    crate::interrupt::step("restore:mounted")?;

    let pidfile = state_dir.join("criu.pid");
    let mut r = criu::Run::new("restore", work.as_deref().unwrap_or(&images), "restore.log");
    common_args(&mut r, &o.criu, &images, work.as_deref())?;
    r.arg("--root").arg(&criu_root.0);
    r.arg("--restore-detached")
        .arg("--restore-sibling")
        .arg("--evasive-devices");
    r.arg("--pidfile").arg(&pidfile);
    for m in external::mounts(&p.spec, &cgroup) {
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
    for (name, path) in external::joined_namespaces(&p.spec) {
        let f = std::fs::File::open(&path).ctx(|| format!("namespace {}", path.display()))?;
        let target = 3 + ns_files.len() as i32;
        r.arg("--inherit-fd")
            .arg(format!("fd[{target}]:{}", external::ns_key(name)));
        ns_files.push((f, target));
    }
    let fds: Vec<_> = ns_files.iter().map(|(f, t)| (f.as_raw_fd(), *t)).collect();
    r.exec(Some(&cgroup), &fds, false)?;
    drop(criu_root);

    // The restored tree runs in the recorded cgroup: from here a failure
    // (or `delete -f` after a crash) kills it with the cgroup.
    let pid_text =
        std::fs::read_to_string(&pidfile).ctx(|| format!("read {}", pidfile.display()))?;
    let _ = std::fs::remove_file(&pidfile);
    let pid: i32 = pid_text
        .trim()
        .parse()
        .map_err(|_| Error::Init(format!("criu pidfile: {pid_text:?}")))?;
    // --restore-sibling: the restored init is our child.
    made.child(pid);
    crate::interrupt::step("restore:restored")?;
    let st = p.finished(id, &cgroup, pid)?;
    made.dir().save_config(&p.raw_config)?;
    made.dir().save(&st)?;
    if let Some(pf) = &o.pid_file {
        write_pid_file(pf, pid)?;
    }
    crate::interrupt::step("restore:saved")?;
    drop(made.keep());
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
    crate::sys::mount(Some(&s), &d, None, libc::MS_BIND | libc::MS_REC, None)
        .ctx(|| format!("bind {} to {}", src.display(), dst.display()))
}

/// CRIU's root: the rootfs bound on a directory in the state dir,
/// unmounted and removed on drop (after CRIU ran, or on a failure).
struct CriuRoot(PathBuf);

impl CriuRoot {
    fn bind(rootfs: &Path, at: &Path) -> Result<CriuRoot> {
        std::fs::create_dir(at).ctx(|| format!("mkdir {}", at.display()))?;
        if let Err(e) = bind(rootfs, at) {
            let _ = std::fs::remove_dir(at);
            return Err(e);
        }
        Ok(CriuRoot(at.to_path_buf()))
    }
}

impl Drop for CriuRoot {
    fn drop(&mut self) {
        if let Ok(c) = CString::new(self.0.as_os_str().as_encoded_bytes()) {
            let _ = crate::sys::umount2(&c, libc::MNT_DETACH);
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}
